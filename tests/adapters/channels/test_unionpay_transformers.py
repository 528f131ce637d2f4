"""unionpay transformers without HTTP: the raw answer text, the signed string, MMDD times, ZM records, trust anchors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adapters.channels import acp_reference as sdk
from yibao.channels import StatementError
from yibao.channels.crypto import generate_rsa_key
from yibao.channels.unionpay import transformers as tx
from yibao.channels.wire import CHINA, WireError
from yibao.sandbox.channels.core import RefundRec, TradeRec
from yibao.sandbox.channels.unionpay import day_of_settle_date, render_statement

MERCHANT = generate_rsa_key()
CA = sdk.make_ca()
CFG = tx.UnionPayConfig("http://up", "777290058110048", tx.cert_id_of(MERCHANT), MERCHANT, CA.root, CA.middle)


def test_answer_text_keeps_nested_values_whole_and_refuses_nameless_fields():
    text = "a=1&tokenPayData={token=62&trId=6200}&list=[x=1&y=2]&signPubKeyCert=-----BEGIN==\r\nAB+/=&empty="
    assert tx.parse_answer_text(text) == {"a": "1", "tokenPayData": "{token=62&trId=6200}", "list": "[x=1&y=2]",
                                          "signPubKeyCert": "-----BEGIN==\r\nAB+/=", "empty": ""}
    assert tx.parse_answer_text(text) == sdk.parse_q_string(text)
    for bad in ("=1&b=2", "a=1&b", "a&b=1"):
        with pytest.raises(WireError):
            tx.parse_answer_text(bad)


@settings(max_examples=30)
@given(st.dictionaries(st.sampled_from(["txnAmt", "orderId", "reqReserved", "backUrl", "txnTime", "zz"]), st.text(min_size=0, max_size=12)))
def test_our_request_signature_is_the_sdks(fields):
    ours = tx.sign(CFG, fields)
    theirs = sdk.sign(fields, MERCHANT, CFG.cert_id)
    assert ours == theirs and sdk.verify_request(ours, MERCHANT.public_key())


def test_mmdd_times_take_the_year_nearest_the_order():
    assert tx._year_of("0101000005", datetime(2026, 12, 31, 23, 59, 58, tzinfo=CHINA)) == datetime(2027, 1, 1, 0, 0, 5, tzinfo=CHINA)
    assert tx._year_of("1231235958", datetime(2027, 1, 1, 0, 1, tzinfo=CHINA)).year == 2026
    with pytest.raises(WireError):
        tx._year_of("1399000000", datetime(2027, 1, 1, tzinfo=CHINA))
    assert day_of_settle_date("1231", date(2027, 1, 2)) == date(2026, 12, 31)


def test_trust_anchors_are_a_middle_and_its_root():
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    middle, root = tx.trust_anchors(pem(CA.root) + pem(CA.middle))
    assert (middle, root) == (CA.middle, CA.root)
    for bad in (pem(CA.root), pem(CA.middle) + pem(sdk.make_ca().root), pem(CA.signer) + pem(CA.middle)):
        with pytest.raises(ValueError):
            tx.trust_anchors(bad)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**10), max_size=6), st.lists(st.integers(min_value=1, max_value=10**6), max_size=3))
def test_the_sandboxs_zm_file_parses_to_its_own_totals(amounts, refund_amounts):
    at = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    trades = [TradeRec(f"T{i:08d}", f"UPT20261122{i:010d}", a, "门诊", "TK", "succeeded", None, at, paid_at=at + timedelta(seconds=i))
              for i, a in enumerate(amounts)]
    refunds = [RefundRec(f"T{i:08d}", f"R{i:08d}", f"UPR20261122{i:010d}", f"UPT20261122{i:010d}", a, "succeeded", None, at)
               for i, a in enumerate(refund_amounts)]
    text = render_statement(trades, refunds, CFG.mer_id)
    content = tx.zip_file_content({f"INN26112288ZM_{CFG.mer_id}": text.encode("gbk"), f"INN26112288ZME_{CFG.mer_id}": b""})
    parsed = tx.parse_statement("unionpay", tx.zm_text(tx.unpack_file(content), CFG.mer_id), date(2026, 11, 22), CFG.mer_id)
    assert sorted(r.amount_fen for r in parsed.rows if r.kind == "trade") == sorted(amounts)
    assert (parsed.trade_total_fen, parsed.refund_count, parsed.refund_total_fen) == (sum(amounts), len(refunds), sum(refund_amounts))
    assert all(r.out_trade_no == f"T{i:08d}" for i, r in enumerate(x for x in parsed.rows if x.kind == "refund") if amounts[i:])


def test_a_file_without_its_zm_member_is_refused():
    with pytest.raises(WireError):
        tx.zm_text(tx.unpack_file(tx.zip_file_content({"README": b""})), CFG.mer_id)
    with pytest.raises(StatementError):
        tx.parse_statement("unionpay", "S22 short\r\n", date(2026, 11, 22), CFG.mer_id)
