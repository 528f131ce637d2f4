"""The mixed order's amount identity (WeChat Pay 医保支付), for any amounts: exactly the orders whose parts add up pass,
and a fen off anywhere is named by the field that breaks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.med_ins import Parts, identity_error, mix_pay_type

fen = st.integers(min_value=0, max_value=10**9)


@given(fen, fen, fen, fen, fen, fen)
def test_an_order_whose_parts_add_up_passes(gov, self_, other, cash, add, reduce):
    reduce = min(reduce, cash + add)  # a reduction never makes the wallet's amount negative
    parts = Parts(gov, self_, other, cash)
    wechat = cash + add - reduce
    assert identity_error(parts, total_fee=gov + self_ + other + wechat + reduce, wechat_pay_cash_fee=wechat, additions=add,
                          reductions=reduce) is None


@given(fen, fen, fen, fen, st.integers(min_value=1, max_value=10**6), st.booleans())
def test_a_fen_off_is_named_by_the_field_that_breaks(gov, self_, other, cash, off, in_total):
    parts = Parts(gov, self_, other, cash)
    total = gov + self_ + other + cash
    if in_total:
        assert identity_error(parts, total_fee=total + off, wechat_pay_cash_fee=cash) == "total_fee"
        if total >= off:
            assert identity_error(parts, total_fee=total - off, wechat_pay_cash_fee=cash) == "total_fee"
    else:
        assert identity_error(parts, total_fee=total + off, wechat_pay_cash_fee=cash + off) == "wechat_pay_cash_fee"


@given(fen, fen, fen, fen)
def test_the_type_follows_the_parts(gov, self_, other, cash):
    kind = mix_pay_type(Parts(gov, self_, other, cash))
    insurance = gov + self_ + other > 0
    assert kind == ("CASH_AND_INSURANCE" if insurance and cash else "INSURANCE_ONLY" if insurance else "CASH_ONLY")
