"""RatioSchedule against an exact model: bands, zero-ratio bands, starts inside later bands, caps on boundaries."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import assume, given
from hypothesis import strategies as st

from yibao.domain.money import RATIO_ONE
from yibao.domain.policy import Band, RatioSchedule


@st.composite
def schedules(draw) -> RatioSchedule:
    limits = sorted(set(draw(st.lists(st.integers(1, 200_000), max_size=4))))
    ratios = [draw(st.sampled_from((0, 100_000, 500_000, 900_000, RATIO_ONE, 333_333))) for _ in range(len(limits) + 1)]
    return RatioSchedule(tuple(Band(u, r) for u, r in zip(limits, ratios)) + (Band(None, ratios[-1]),))


def model_pay(s: RatioSchedule, start: int, cost: Fraction | int) -> Fraction:
    """The payment on [start, start + cost), integrated band by band in exact fractions."""
    total, lo = Fraction(0), Fraction(0)
    end = start + Fraction(cost)
    for band in s.bands:
        hi = Fraction(band.upto) if band.upto is not None else end
        a, b = max(lo, Fraction(start)), min(hi, end)
        if b > a:
            total += Fraction(band.ratio, RATIO_ONE) * (b - a)
        lo = hi
    return total


@given(schedules(), st.integers(0, 300_000), st.integers(0, 300_000))
def test_pay_exact_is_the_integral(s, start, amount):
    assert Fraction(s.pay_exact(start, amount), RATIO_ONE) == model_pay(s, start, amount)


@given(schedules(), st.integers(0, 300_000), st.integers(1, 300_000), st.data())
def test_cost_to_pay_is_the_smallest_cost_reaching_the_payment(s, start, amount, data):
    total = model_pay(s, start, amount)
    assume(total >= 1)
    target = data.draw(st.integers(1, int(total)))
    num, den = s.cost_to_pay(start, target)
    cost = Fraction(num, den)
    assert model_pay(s, start, cost) == target
    if cost > 0:  # a little less cost pays less
        assert model_pay(s, start, cost - Fraction(1, 1000)) < target


@given(schedules(), st.integers(0, 300_000), st.integers(0, 300_000))
def test_paying_width_counts_only_paying_bands(s, a, width):
    b = a + width
    expected = sum(max(0, min(b, band.upto if band.upto is not None else b) - max(a, lo))
                   for band, lo in zip(s.bands, [0] + [x.upto for x in s.bands[:-1]]) if band.ratio)
    assert s.paying_width(a, b) == expected
