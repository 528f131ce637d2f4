"""wxpay transformers without HTTP: signatures both ways, notification decryption, statements."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.channels import BadSignature, StatementError
from yibao.channels.crypto import aes_gcm_encrypt, generate_rsa_key, key_serial, rsa_sign, rsa_verify
from yibao.channels.wxpay import transformers as tx
from yibao.sandbox.channels.core import RefundRec, TradeRec
from yibao.sandbox.channels.wxpay import WxPaySandboxConfig, render_statement

MERCHANT, PLATFORM, OTHER = generate_rsa_key(), generate_rsa_key(), generate_rsa_key()
V3 = secrets.token_bytes(32)
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)
CFG = tx.WxPayConfig("http://wx", "1900000109", "wxapp", key_serial(MERCHANT), MERCHANT, key_serial(PLATFORM), PLATFORM.public_key(), V3)


def signed(body: bytes, key=PLATFORM, at: datetime = NOW) -> dict[str, str]:
    ts, nonce = str(int(at.timestamp())), "n" * 32
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": key_serial(key),
            "Wechatpay-Signature": rsa_sign(key, tx.response_message(ts, nonce, body)), "Wechatpay-Signature-Type": tx.SCHEME}


def test_the_authorization_header_verifies_with_the_merchant_public_key_and_nothing_else():
    body = b'{"out_trade_no":"T1234567","amount":{"total":100}}'
    header = tx.authorization(CFG, "POST", "/v3/papay/pay/transactions/apply", body, "1795000000", "abc")
    f = tx.parse_authorization(header)
    assert f is not None and f["mchid"] == "1900000109" and f["serial_no"] == key_serial(MERCHANT)
    msg = tx.request_message("POST", "/v3/papay/pay/transactions/apply", f["timestamp"], f["nonce_str"], body)
    assert rsa_verify(MERCHANT.public_key(), msg, f["signature"])
    assert not rsa_verify(OTHER.public_key(), msg, f["signature"])
    tampered = tx.request_message("POST", "/v3/papay/pay/transactions/apply", f["timestamp"], f["nonce_str"], body.replace(b"100", b"1"))
    assert not rsa_verify(MERCHANT.public_key(), tampered, f["signature"])
    assert tx.parse_authorization("Bearer x") is None and tx.parse_authorization(header.replace('nonce_str="abc",', "")) is None


def test_answers_verify_only_untouched_recent_and_from_the_configured_key():
    body = b'{"ok":true}'
    tx.verify_signed(CFG, signed(body), body, NOW, "answer")
    for headers, data in [(signed(body), b'{"ok":false}'), (signed(body, OTHER), body),
                          ({**signed(body), "Wechatpay-Serial": key_serial(OTHER)}, body),
                          (signed(body, at=NOW - timedelta(minutes=6)), body), ({}, body)]:
        with pytest.raises(BadSignature):
            tx.verify_signed(CFG, headers, data, NOW, "answer")


def notification(resource: dict, event_type: str = "TRANSACTION.SUCCESS", key: bytes = V3) -> bytes:
    nonce = "abcdefghijkl"
    return json.dumps({"id": "EV1", "event_type": event_type, "resource": {
        "algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "transaction",
        "ciphertext": aes_gcm_encrypt(key, nonce.encode(), b"transaction", json.dumps(resource).encode())}}).encode()


TRADE = {"out_trade_no": "T1234567", "transaction_id": "WX1", "trade_state": "SUCCESS", "amount": {"total": 12345},
         "success_time": "2026-11-22T17:30:00+08:00"}


def test_a_notification_is_verified_decrypted_and_parsed():
    body = notification(TRADE)
    n = tx.parse_notification(CFG, signed(body), body, NOW)
    assert (n.kind, n.status, n.out_trade_no, n.trade_no, n.amount_fen, n.event_id) == ("payment", "succeeded", "T1234567", "WX1", 12345, "EV1")


def test_a_notification_encrypted_under_another_key_is_refused_even_when_signed():
    body = notification(TRADE, key=secrets.token_bytes(32))
    with pytest.raises(BadSignature):
        tx.parse_notification(CFG, signed(body), body, NOW)


def test_a_notification_with_a_changed_amount_is_refused():
    body = notification(TRADE)
    headers = signed(body)
    forged = notification({**TRADE, "amount": {"total": 1}})
    with pytest.raises(BadSignature):
        tx.parse_notification(CFG, headers, forged, NOW)


def trade(no: str, fen: int, at: datetime, desc: str = "门诊") -> TradeRec:
    return TradeRec(no, "WX" + no, fen, desc, "AG", "succeeded", None, at, paid_at=at)


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=1, max_value=10**10), max_size=8), st.lists(st.integers(min_value=1, max_value=10**6), max_size=4),
       st.text(alphabet=st.sampled_from('门诊,"` \'药x'), min_size=1, max_size=10))
def test_a_rendered_statement_parses_back_to_the_same_rows_and_totals(amounts, refund_amounts, desc):
    cfg = WxPaySandboxConfig(PLATFORM, "1900000109", "wxapp", MERCHANT.public_key(), V3)
    at = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    trades = [trade(f"T{i:08d}", a, at + timedelta(seconds=i), desc) for i, a in enumerate(amounts)]
    refunds = [RefundRec(f"T{i:08d}", f"R{i:08d}", f"WXR{i}", f"WXT{i}", a, "succeeded", None, at + timedelta(minutes=1))
               for i, a in enumerate(refund_amounts)]
    st_ = tx.parse_statement("wxpay", render_statement(cfg, trades, refunds).decode(), date(2026, 11, 22))
    assert sorted((r.out_trade_no, r.amount_fen) for r in st_.rows if r.kind == "trade") == sorted((t.out_trade_no, t.amount_fen) for t in trades)
    assert [r.amount_fen for r in st_.rows if r.kind == "refund"] == refund_amounts
    assert (st_.trade_total_fen, st_.refund_total_fen) == (sum(amounts), sum(refund_amounts))


def test_a_statement_whose_summary_disagrees_with_its_rows_is_refused():
    cfg = WxPaySandboxConfig(PLATFORM, "1900000109", "wxapp", MERCHANT.public_key(), V3)
    text = render_statement(cfg, [trade("T00000001", 1000, NOW)], []).decode()
    assert tx.parse_statement("wxpay", text, date(2026, 11, 22)).trade_total_fen == 1000
    with pytest.raises(StatementError):
        tx.parse_statement("wxpay", "`10.01".join(text.rsplit("`10.00", 1)), date(2026, 11, 22))  # the summary's total
    with pytest.raises(StatementError):
        tx.parse_statement("wxpay", text.replace("`T00000001", "T00000001"), date(2026, 11, 22))
    with pytest.raises(StatementError):
        tx.parse_statement("wxpay", "garbage", date(2026, 11, 22))
