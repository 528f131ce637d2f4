"""Wire-edge values: fen ↔ yuan exact both ways, canonical k=v strings, holder tokens, request types."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.channels import AgreementRequest, PaymentRequest, RefundRequest, holder_token
from yibao.channels.crypto import canonical_kv
from yibao.channels.wire import WireError, digits_to_fen, fen_to_digits, fen_to_yuan, yuan_to_fen

FEN = st.integers(min_value=0, max_value=10**15)


@given(FEN)
def test_fen_to_yuan_and_back_is_exact(fen):
    text = fen_to_yuan(fen)
    assert yuan_to_fen(text) == fen
    assert Decimal(text) * 100 == fen  # the same number, not a float's neighbour
    assert digits_to_fen(fen_to_digits(fen)) == fen


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=99))
def test_yuan_text_with_two_decimals_parses_to_its_fen(whole, cents):
    assert yuan_to_fen(f"{whole}.{cents:02d}") == whole * 100 + cents


@pytest.mark.parametrize("bad", ["1.2", "1.234", "-1.00", "01.00", "1,00", "1e2", " 1.00", "", "１.００", "NaN"])
def test_yuan_text_that_is_not_two_decimals_is_refused(bad):
    with pytest.raises(WireError):
        yuan_to_fen(bad)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "100"])
def test_only_non_negative_integer_fen_goes_on_the_wire(bad):
    with pytest.raises(WireError):
        fen_to_yuan(bad)


KEYS = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="=&"), min_size=1, max_size=12)
VALUES = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="&"), max_size=20)


@given(st.dictionaries(KEYS, VALUES, max_size=12))
def test_canonical_kv_is_sorted_by_ascii_excludes_sign_and_empties_and_ignores_insertion_order(params):
    text = canonical_kv(params, exclude=("sign", "sign_type"))
    shuffled = dict(reversed(list(params.items())))
    assert canonical_kv(shuffled, exclude=("sign", "sign_type")) == text
    pairs = [p.split("=", 1) for p in text.split("&")] if text else []
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys, key=lambda k: k.encode())  # byte order, as the institutions sort
    assert dict(pairs) == {k: v for k, v in params.items() if k not in ("sign", "sign_type") and v != ""}


def test_canonical_kv_matches_alipays_documented_shape():
    params = {"sign_type": "RSA2", "sign": "xyz", "b": "2", "a": "1", "c": "", "app_id": "2021", "biz_content": '{"x":"y z"}'}
    assert canonical_kv(params, exclude=("sign", "sign_type")) == 'a=1&app_id=2021&b=2&biz_content={"x":"y z"}'


def test_holder_tokens_are_opaque_per_institution_and_refuse_id_numbers():
    a, b = holder_token(b"s" * 32, "P440300000001", "wxpay"), holder_token(b"s" * 32, "P440300000001", "alipay")
    assert a != b and "P4403" not in a and holder_token(b"s" * 32, "P440300000001", "wxpay") == a
    AgreementRequest("A1234567", a, 100)
    for bad in ("440301199001011234", "44030119900101123X", "李明李明李明李明李明李明李明李明", "short"):
        with pytest.raises(ValueError):
            AgreementRequest("A1234567", bad, 100)


def test_request_types_have_no_field_for_a_fund_share():
    for cls in (PaymentRequest, RefundRequest, AgreementRequest):
        names = {f.name for f in dataclasses.fields(cls)}
        assert not names & {"pool_fund", "fund", "fund_pay", "hifp_pay", "acct_pay", "account_pay", "insurance", "id_number", "name"}
    with pytest.raises(TypeError):
        PaymentRequest("T1234567", 100, "门诊", "AG1", pool_fund=500)  # type: ignore[call-arg]


@pytest.mark.parametrize("kw", [dict(amount_fen=0), dict(amount_fen=-1), dict(amount_fen=1.0), dict(out_trade_no="短"),
                                dict(description=""), dict(description="两行\n#第二行"), dict(description="身份证440301199001011234")])
def test_payment_requests_refuse_bad_values(kw):
    base = dict(out_trade_no="T1234567", amount_fen=100, description="门诊", agreement_no="AG1")
    with pytest.raises(ValueError):
        PaymentRequest(**{**base, **kw})


def test_a_refund_cannot_exceed_the_payment():
    RefundRequest("T1234567", "R1234567", 100, 100)
    with pytest.raises(ValueError):
        RefundRequest("T1234567", "R1234567", 101, 100)
