from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.errors import InputError
from yibao.domain.money import apply_ratio, div_round_half_up, format_ratio, format_yuan, parse_quantity, parse_ratio, parse_yuan


@pytest.mark.parametrize("text, fen", [
    ("12.50", 1250), ("12.5", 1250), ("12", 1200), ("0", 0), ("0.01", 1), (" 7.00 ", 700),
    ("12.500", 1250), ("+3.10", 310), (15, 1500), (Decimal("12.34"), 1234), ("100176.00", 10017600),
])
def test_parse_yuan_accepts(text, fen):
    assert parse_yuan(text, "f") == fen


@pytest.mark.parametrize("text, code", [
    ("12.345", "too_many_decimals"), ("-1", "negative"), ("abc", "invalid_number"), ("", "empty"),
    ("1e3", "invalid_number"), ("NaN", "invalid_number"), (12.5, "float_not_allowed"), (None, "invalid_number"),
    (True, "invalid_number"), ("1,000.00", "invalid_number"), (Decimal("Infinity"), "invalid_number"), ([], "invalid_number"),
])
def test_parse_yuan_refuses_with_the_field_and_rule(text, code):
    with pytest.raises(InputError) as err:
        parse_yuan(text, "lines[0].unit_price")
    assert err.value.field == "lines[0].unit_price"
    assert err.value.code == code
    assert err.value.message_zh and err.value.message_en
    assert "lines[0].unit_price" in str(err.value)


def test_error_messages_name_the_value():
    with pytest.raises(InputError, match="12.345"):
        parse_yuan("12.345", "x")
    with pytest.raises(InputError, match="must not be negative"):
        parse_yuan("-1", "x")


@pytest.mark.parametrize("n, d, q", [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (-5, 10, -1), (-4, 10, 0), (0, 7, 0), (1, 3, 0), (2, 3, 1)])
def test_round_half_up(n, d, q):
    assert div_round_half_up(n, d) == q


def test_apply_ratio_rounds_half_up_once():
    assert apply_ratio(5, 500_000) == 3  # 2.5 fen -> 3
    assert apply_ratio(1001, 100_000) == 100  # 100.1 -> 100
    assert apply_ratio(1005, 100_000) == 101  # 100.5 -> 101
    assert apply_ratio(10017600, 50_000) == 500880  # 5% of 100,176.00 = 5008.80


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_yuan_round_trip(fen):
    text = format_yuan(fen)
    if fen >= 0:
        assert parse_yuan(text) == fen
    assert Decimal(text) * 100 == fen


@given(st.integers(0, 10**9), st.integers(0, 1_000_000))
def test_apply_ratio_matches_decimal_half_up(amount, ppm):
    from decimal import ROUND_HALF_UP
    expected = (Decimal(amount) * Decimal(ppm) / Decimal(1_000_000)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert apply_ratio(amount, ppm) == int(expected)


def test_ratios_and_quantities():
    assert parse_ratio("0.10") == 100_000
    assert parse_ratio("1") == 1_000_000
    assert parse_ratio("0.925") == 925_000
    assert format_ratio(925_000) == "92.5%"
    assert format_ratio(100_000) == "10%"
    with pytest.raises(InputError, match="between 0 and 1"):
        parse_ratio("1.5", "r")
    with pytest.raises(InputError, match="at most 6"):
        parse_ratio("0.1234567", "r")
    assert parse_quantity("2") == 20_000
    assert parse_quantity("0.5") == 5_000
    with pytest.raises(InputError, match="greater than 0"):
        parse_quantity("0", "q")
    with pytest.raises(InputError, match="at most 4"):
        parse_quantity("1.00001", "q")


def test_only_ascii_digits_and_bounded_exponents():
    with pytest.raises(InputError):
        parse_yuan("١٢.٥٠", "x")  # Arabic-Indic digits
    with pytest.raises(InputError, match="out of range"):
        parse_yuan(Decimal("1E+100000000"), "x")  # refused before it is formatted into 100 MB of digits
