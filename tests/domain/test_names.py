"""A typed name: stripped, 1–N characters, nothing invisible — every format character (Cf: bidi controls, zero-width
spaces and joiners, the soft hyphen …), control characters (Cc), line and paragraph separators (Zl, Zp). Pure."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.errors import InputError
from yibao.domain.names import check_name, invisible

INVISIBLE = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u200b", "\u200c", "\u200d", "\u2060",
             "\ufeff", "\u00ad", "\u2028", "\u2029", "\u0007", "\t", "\n"]


@pytest.mark.parametrize("ch", INVISIBLE)
def test_each_invisible_character_is_refused_by_its_code_point(ch):
    with pytest.raises(InputError) as exc:
        check_name(f"张{ch}三", "child_name")
    assert (exc.value.field, exc.value.code) == ("child_name", "invisible_character")
    point = f"U+{ord(ch):04X}"
    assert point in exc.value.message_zh and point in exc.value.message_en


def test_names_as_people_have_them_are_kept():
    assert check_name("  欧阳娜娜 ") == "欧阳娜娜"
    assert check_name("阿依古丽·买买提") == "阿依古丽·买买提"
    assert check_name("O'Brien-Smith Jr.") == "O'Brien-Smith Jr."
    assert check_name("x" * 200, max_length=200, noun_zh="名称") == "x" * 200


@pytest.mark.parametrize("value", ["", "   ", None, 5, "x" * 51])
def test_empty_too_long_or_not_text_is_refused(value):
    with pytest.raises(InputError) as exc:
        check_name(value)
    assert (exc.value.field, exc.value.code) == ("name", "invalid_text")


@given(st.text(min_size=1, max_size=40))
def test_a_name_is_accepted_exactly_when_it_shows_every_character(text):
    hidden = any(unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp") for c in text.strip())
    try:
        check_name(text)
    except InputError as exc:
        assert exc.code == "invisible_character" if text.strip() else exc.code == "invalid_text"
        assert hidden or not text.strip()
    else:
        assert not hidden and invisible(text.strip()) is None
