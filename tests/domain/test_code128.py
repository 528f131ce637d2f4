"""Code 128 set C: the table's known values and shape, checksums, quiet zones, and a decode of the
SVG back to the digits by reading the bar widths."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.code128 import SVG, decode
from yibao.formats import code128


def as_bits(pattern: str) -> str:
    return "".join(("1" if i % 2 == 0 else "0") * int(w) for i, w in enumerate(pattern))


def test_known_symbols_from_the_standard():
    assert as_bits(code128.PATTERNS[0]) == "11011001100"
    assert as_bits(code128.PATTERNS[code128.START_C]) == "11010011100"
    assert as_bits(code128.PATTERNS[code128.STOP]) == "1100011101011"
    assert as_bits(code128.PATTERNS[99]) == "10111011110"  # Code C / value 99


def test_every_symbol_is_three_bars_and_three_spaces_over_eleven_modules_with_even_bars():
    assert len(code128.PATTERNS) == 107 and len(set(code128.PATTERNS)) == 107
    for value, pattern in enumerate(code128.PATTERNS[:106]):
        assert len(pattern) == 6 and sum(map(int, pattern)) == 11, value
        assert sum(int(w) for w in pattern[0::2]) % 2 == 0, value  # the standard's parity: bars cover an even number of modules
        assert all(1 <= int(w) <= 4 for w in pattern), value
    assert sum(map(int, code128.PATTERNS[code128.STOP])) == 13


def test_checksum_worked_example():
    # Start C (105) + 1·12 + 2·34 = 185; 185 mod 103 = 82
    assert code128.symbols("1234") == [105, 12, 34, 82, 106]


@pytest.mark.parametrize("bad", ["", "123", "12a4", "１２"])
def test_only_an_even_number_of_ascii_digits(bad):
    with pytest.raises(ValueError):
        code128.symbols(bad)


@given(st.integers(1, 12).flatmap(lambda n: st.text("0123456789", min_size=2 * n, max_size=2 * n)), st.integers(1, 4))
def test_the_svg_decodes_back_to_the_digits(digits, module):
    assert decode(code128.svg(digits, module=module), module) == digits


def test_a_payment_code_barcode_has_its_digits_as_caption_and_the_right_size():
    text = code128.svg("91123456780712345678")
    root = ET.fromstring(text)
    assert root.find(f"{SVG}text").text == "9112 3456 7807 1234 5678"
    # start + 10 pairs + checksum = 12 symbols of 11 modules, stop 13, quiet zones 2 × 10; 2 px per module
    assert int(root.get("width")) == (12 * 11 + 13 + 20) * 2
