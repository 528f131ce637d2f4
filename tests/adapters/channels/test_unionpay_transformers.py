"""unionpay transformers without HTTP: digest-then-RSA signatures with certId, notifications, statements."""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.channels import BadSignature, PaymentRequest, StatementError
from yibao.channels.crypto import canonical_kv, generate_rsa_key, key_serial, rsa_verify
from yibao.channels.unionpay import transformers as tx
from yibao.sandbox.channels.core import RefundRec, TradeRec
from yibao.sandbox.channels.unionpay import render_statement

MERCHANT, UNIONPAY, OTHER = generate_rsa_key(), generate_rsa_key(), generate_rsa_key()
CFG = tx.UnionPayConfig("http://up", "777290058110048", key_serial(MERCHANT), MERCHANT, key_serial(UNIONPAY), UNIONPAY.public_key())
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)


def test_the_signature_is_rsa_over_the_hex_sha256_of_the_sorted_string():
    params = tx.pay_params(CFG, PaymentRequest("T1234567", 1234, "门诊缴费", "TOKEN1"), NOW)
    assert params["txnAmt"] == "1234" and params["txnTime"] == "20261122173000" and params["certId"] == key_serial(MERCHANT)
    digest = hashlib.sha256(canonical_kv(params, exclude=("signature",)).encode()).hexdigest().encode()
    assert rsa_verify(MERCHANT.public_key(), digest, params["signature"])
    assert tx.verify(MERCHANT.public_key(), key_serial(MERCHANT), params)
    assert not tx.verify(MERCHANT.public_key(), key_serial(MERCHANT), {**params, "txnAmt": "1235"})
    assert not tx.verify(OTHER.public_key(), key_serial(MERCHANT), params)
    assert not tx.verify(MERCHANT.public_key(), key_serial(OTHER), params)  # the certId must name the expected key


def notification(params: dict[str, str], key=UNIONPAY) -> bytes:
    return urlencode(tx.sign(key, {**params, "certId": key_serial(key)})).encode()


PAID = {"txnType": "01", "merId": CFG.mer_id, "orderId": "T1234567", "queryId": "UP1", "txnAmt": "8880", "respCode": "00"}


def test_notifications_verify_and_parse_and_forgeries_are_refused():
    n = tx.parse_notification(CFG, notification(PAID))
    assert (n.kind, n.status, n.amount_fen, n.out_trade_no, n.trade_no) == ("payment", "succeeded", 88_80, "T1234567", "UP1")
    refund = tx.parse_notification(CFG, notification({**PAID, "txnType": "04", "orderId": "R1234567", "origOrderId": "T1234567",
                                                      "txnAmt": "100"}))
    assert (refund.kind, refund.out_refund_no, refund.out_trade_no, refund.amount_fen) == ("refund", "R1234567", "T1234567", 100)
    good = notification(PAID)
    for body in (good.replace(b"txnAmt=8880", b"txnAmt=1"), notification(PAID, key=OTHER), notification({**PAID, "merId": "1"}), b"a"):
        with pytest.raises(BadSignature):
            tx.parse_notification(CFG, body)


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=1, max_value=10**10), max_size=6), st.lists(st.integers(min_value=1, max_value=10**6), max_size=3))
def test_a_packed_statement_unpacks_and_parses_to_the_same_totals(amounts, refund_amounts):
    at = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    trades = [TradeRec(f"T{i:08d}", f"UP{i}", a, "门诊", "TK", "succeeded", None, at, paid_at=at + timedelta(seconds=i))
              for i, a in enumerate(amounts)]
    refunds = [RefundRec(f"T{i:08d}", f"R{i:08d}", f"UPR{i}", f"UP{i}", a, "succeeded", None, at) for i, a in enumerate(refund_amounts)]
    packed = base64.b64encode(zlib.compress(render_statement(trades, refunds).encode())).decode()
    parsed = tx.parse_statement("unionpay", tx.unpack_file(packed), date(2026, 11, 22))
    assert sorted(r.amount_fen for r in parsed.rows if r.kind == "trade") == sorted(amounts)
    assert (parsed.trade_total_fen, parsed.refund_count, parsed.refund_total_fen) == (sum(amounts), len(refunds), sum(refund_amounts))


def test_a_statement_with_a_wrong_total_is_refused():
    text = render_statement([TradeRec("T00000001", "UP1", 500, "x", "TK", "succeeded", None, NOW, paid_at=NOW)], [])
    assert tx.parse_statement("unionpay", text, date(2026, 11, 22)).trade_total_fen == 500
    with pytest.raises(StatementError):
        tx.parse_statement("unionpay", text.replace("TOTAL|1|5.00", "TOTAL|1|5.01"), date(2026, 11, 22))
