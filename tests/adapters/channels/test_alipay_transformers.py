"""alipay transformers without HTTP: RSA2 over sorted k=v both ways, answers' signed text, notifications, statements."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.channels import BadSignature, PaymentRequest, StatementError
from yibao.channels.alipay import transformers as tx
from yibao.channels.crypto import canonical_kv, generate_rsa_key, rsa_sign, rsa_verify
from yibao.sandbox.channels.alipay import AlipaySandboxConfig, render_statement
from yibao.sandbox.channels.core import RefundRec, TradeRec

APP, ALIPAY, OTHER = generate_rsa_key(), generate_rsa_key(), generate_rsa_key()
CFG = tx.AlipayConfig("http://ali", "2021000122600001", APP, ALIPAY.public_key())
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)


def test_request_parameters_are_signed_over_the_sorted_string_including_sign_type():
    params = tx.request_params(CFG, "alipay.trade.pay", tx.pay_biz(PaymentRequest("T1234567", 1234, "门诊缴费", "AG1")), NOW)
    assert params["timestamp"] == "2026-11-22 17:30:00" and '"total_amount":"12.34"' in params["biz_content"]
    message = canonical_kv(params, exclude=("sign",)).encode()
    assert message.startswith(b"app_id=") and b"sign_type=RSA2" in message
    assert rsa_verify(APP.public_key(), message, params["sign"])
    assert not rsa_verify(APP.public_key(), message.replace(b"12.34", b"1.34"), params["sign"])
    assert not rsa_verify(OTHER.public_key(), message, params["sign"])


def answer(node: str, inner: str, key=ALIPAY) -> bytes:
    return ('{"' + node + '": ' + inner + ',"sign":"' + rsa_sign(key, inner.encode()) + '"}').encode()


def test_an_answer_is_verified_over_the_exact_text_of_its_response_node():
    inner = '{"code":"10000","msg":"Success","out_trade_no":"T1234567","total_amount":"1.00", "x": {"y": "}"}}'
    data = tx.open_answer(CFG, "alipay.trade.query", answer("alipay_trade_query_response", inner))
    assert data["out_trade_no"] == "T1234567"
    with pytest.raises(BadSignature):
        tx.open_answer(CFG, "alipay.trade.query", answer("alipay_trade_query_response", inner).replace(b"1.00", b"9.00"))
    with pytest.raises(BadSignature):
        tx.open_answer(CFG, "alipay.trade.query", answer("alipay_trade_query_response", inner, key=OTHER))
    assert tx.signed_part('{"a_response":{"k":"v"},"sign":"s"}', "a_response") == '{"k":"v"}'


def notify(params: dict[str, str], key=ALIPAY, tamper: dict[str, str] | None = None) -> bytes:
    full = {"app_id": CFG.app_id, "sign_type": "RSA2", "charset": "utf-8", **params}
    full["sign"] = rsa_sign(key, canonical_kv(full, exclude=("sign", "sign_type")).encode())
    return urlencode({**full, **(tamper or {})}).encode()


PAID = {"notify_type": "trade_status_sync", "notify_id": "N1", "out_trade_no": "T1234567", "trade_no": "AP1",
        "trade_status": "TRADE_SUCCESS", "total_amount": "88.80", "gmt_payment": "2026-11-22 17:30:00"}


def test_a_notification_verifies_and_parses_and_a_changed_field_is_refused():
    n = tx.parse_notification(CFG, notify(PAID))
    assert (n.kind, n.status, n.amount_fen, n.out_trade_no, n.event_id) == ("payment", "succeeded", 88_80, "T1234567", "N1")
    for body in (notify(PAID, tamper={"total_amount": "0.01"}), notify(PAID, key=OTHER), notify(PAID, tamper={"app_id": "2088"}),
                 b"%%%", notify({**PAID, "notify_type": "weird"})):
        with pytest.raises(BadSignature):
            tx.parse_notification(CFG, body)
    assert tx.ack(True).body == b"success" and tx.ack(False).body != b"success"


def test_a_refund_notification_carries_the_cumulative_refund_fee_and_perhaps_this_refunds_amount():
    n = tx.parse_notification(CFG, notify({**PAID, "out_biz_no": "R1234567", "refund_fee": "50.00", "send_back_fee": "20.00"}))
    assert (n.kind, n.out_refund_no, n.amount_fen) == ("refund", "R1234567", 20_00)
    n = tx.parse_notification(CFG, notify({**PAID, "out_biz_no": "R1234567", "refund_fee": "50.00"}))  # send_back_fee is optional
    assert (n.kind, n.out_refund_no, n.amount_fen) == ("refund", "R1234567", None)


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=1, max_value=10**10), max_size=6), st.lists(st.integers(min_value=1, max_value=10**6), max_size=3),
       st.text(alphabet=st.sampled_from('药,"# x'), min_size=1, max_size=8))
def test_a_rendered_statement_parses_back_to_the_same_totals(amounts, refund_amounts, desc):
    at = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    trades = [TradeRec(f"T{i:08d}", f"AP{i}", a, desc, "AG", "succeeded", None, at, paid_at=at + timedelta(seconds=i))
              for i, a in enumerate(amounts)]
    refunds = [RefundRec(f"T{i:08d}", f"R{i:08d}", f"APR{i}", f"AP{i}", a, "succeeded", None, at) for i, a in enumerate(refund_amounts)]
    content = render_statement(AlipaySandboxConfig(ALIPAY, CFG.app_id, APP.public_key()), date(2026, 11, 22), trades, refunds)
    parsed = tx.parse_statement("alipay", content, date(2026, 11, 22))
    assert [r.amount_fen for r in parsed.rows if r.kind == "trade"] == amounts
    assert [(r.out_refund_no, r.amount_fen) for r in parsed.rows if r.kind == "refund"] == [(r.out_refund_no, r.amount_fen) for r in refunds]
    with pytest.raises(StatementError):  # another day's file
        tx.parse_statement("alipay", content, date(2026, 11, 23))
    with pytest.raises(StatementError):  # not a zip
        tx.parse_statement("alipay", content[:-30], date(2026, 11, 22))


# ---- medical-insurance trades (alipay.commerce.medical.trade.*) ---------------------------------------------------

def wallet_form(action: str, fields: dict[str, str], *, at: datetime = NOW, key=ALIPAY, notify_type: str | None = None) -> bytes:
    params = {"app_id": CFG.app_id, "notify_id": "N-" + action, "notify_time": tx.plain_time(at), "sign_type": "RSA2", "charset": "utf-8",
              "notify_type": notify_type or tx.wallet_notify_type(action), **fields}
    params["sign"] = rsa_sign(key, canonical_kv(params, exclude=("sign", "sign_type")).encode())
    return urlencode(params).encode()


def test_a_wallet_request_is_alipay_s_in_the_platform_s_names_or_refused():
    check = {"pay_order_id": "PO1", "pay_auth_no": "AUTH1", "trade_no": "YK1", "gov_amount": "200.00", "account_amount": "12.34",
             "other_amount": "0.00", "real_amount": "x.1"}
    req = tx.open_wallet_request(CFG, "check", wallet_form("check", check), NOW + timedelta(minutes=4))
    assert (req.nonce, req.nonce_field, req.name("med_ins_self_fee"), req.name("mix_trade_no")) == ("N-check", "notify_id", "account_amount", "trade_no")
    assert dict(req.values or {}) == {"pay_order_id": "PO1", "pay_auth_no": "AUTH1", "mix_trade_no": "YK1", "med_ins_gov_fee": 20000,
                                      "med_ins_self_fee": 1234, "med_ins_other_fee": 0, "med_ins_cash_fee": "x.1", "mix_pay_type": None}
    result = tx.open_wallet_request(CFG, "result", wallet_form("result", {"pay_order_id": "PO1", "trade_no": "YK1", "real_amount": "0.00"}), NOW)
    assert (result.values or {})["self_pay_status"] == "NO_SELF_PAY"  # no own_pay_status: the trade has no self-pay part
    paid = tx.open_wallet_request(CFG, "result", wallet_form("result", {"own_pay_status": "PAY_SUCCESS"}), NOW)
    assert (paid.values or {})["self_pay_status"] == "SELF_PAY_SUCCESS"
    for body, at in ((wallet_form("check", check, key=OTHER), NOW), (wallet_form("check", check), NOW + timedelta(minutes=6)),
                     (wallet_form("check", check, notify_type=tx.wallet_notify_type("result")), NOW), (b"not=a=form&&", NOW)):
        with pytest.raises(BadSignature):
            tx.open_wallet_request(CFG, "check", body, at)
    assert tx.wallet_answer({"pay_order_id": "PO1", "med_ins_cash_fee": 501, "med_ins_pay_status": "MED_INS_PAY_SUCCESS"}) == {
        "pay_order_id": "PO1", "real_amount": "5.01", "medical_pay_status": "PAY_SUCCESS"}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"trade_status": "WAIT_BUYER_PAY", "medical_pay_status": "WAIT_PAY", "own_pay_status": "WAIT_PAY"},
     ("MIX_PAY_CREATED", "SELF_PAY_CREATED", "MED_INS_PAY_CREATED")),
    ({"trade_status": "TRADE_SUCCESS", "medical_pay_status": "PAY_SUCCESS", "own_pay_status": "PAY_SUCCESS", "gmt_own_paid": "x"},
     ("MIX_PAY_SUCCESS", "SELF_PAY_SUCCESS", "MED_INS_PAY_SUCCESS")),
    ({"trade_status": "TRADE_SUCCESS", "medical_pay_status": "PAY_SUCCESS"}, ("MIX_PAY_SUCCESS", "NO_SELF_PAY", "MED_INS_PAY_SUCCESS")),
    ({"trade_status": "TRADE_CLOSED", "medical_pay_status": "PAY_FAIL", "own_pay_status": "PAY_FAIL"},
     ("MIX_PAY_FAIL", "SELF_PAY_FAIL", "MED_INS_PAY_FAIL")),  # closed unpaid: failed
    ({"trade_status": "TRADE_CLOSED", "medical_pay_status": "PAY_FAIL", "own_pay_status": "REFUND_SUCCESS", "gmt_own_paid": "x"},
     ("MIX_PAY_REFUND", "SELF_PAY_REFUND", "MED_INS_PAY_FAIL")),  # closed after the self-pay part was paid: given back
    ({"trade_status": "TRADE_SUCCESS", "own_pay_status": "PAY_SUCCESS"}, ("MIX_PAY_SUCCESS", "SELF_PAY_SUCCESS", "NO_MED_INS_PAY")),
])
def test_alipay_s_medical_trade_reads_as_a_mixed_order(fields: dict[str, str], expected: tuple[str, str, str]):
    found = tx.med_ins_order_from({"trade_no": "YK1", "pay_order_id": "PO1", "real_amount": "1.25", **fields})
    assert (found.mix_trade_no, found.pay_order_id, found.cash_fen) == ("YK1", "PO1", 125)
    assert (found.mix_pay_status, found.self_pay_status, found.med_ins_pay_status) == expected


@pytest.mark.parametrize("fields", [{"trade_status": "TRADE_FINISHED"}, {"trade_status": "TRADE_SUCCESS", "own_pay_status": "PAID"},
                                    {"trade_status": "TRADE_SUCCESS", "pay_order_id": ""}])
def test_a_medical_trade_in_unknown_terms_is_no_answer(fields: dict[str, str]):
    from yibao.channels.wire import WireError

    with pytest.raises(WireError):
        tx.med_ins_order_from({"trade_no": "YK1", "pay_order_id": "PO1", **fields})
