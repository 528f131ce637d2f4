"""Names people type — a person's, a relative's, an institution's. Pure.

A name is shown back on pages, receipts and in the operators' lists, so what cannot be seen must not be
in it: a bidirectional override (U+202E) turns "张三" into text that reads otherwise than it is stored,
and a zero-width joiner makes two names that look the same differ. Refused: every format character
(Unicode category Cf — the bidi controls, zero-width spaces and joiners, the soft hyphen …), control
characters (Cc) and the line and paragraph separators (Zl, Zp).
"""

from __future__ import annotations

import unicodedata

from yibao.domain.errors import InputError

_INVISIBLE = frozenset({"Cf", "Cc", "Zl", "Zp"})


def invisible(text: str) -> str | None:
    """The first invisible format, control or separator character in ``text`` (None when there is none)."""
    return next((ch for ch in text if unicodedata.category(ch) in _INVISIBLE), None)


def check_name(value: object, field: str = "name", *, max_length: int = 50, noun_zh: str = "姓名") -> str:
    """The name as typed, without surrounding spaces; refused naming ``field`` when it is empty, too long, or
    carries an invisible character (said by its code point, since it cannot be seen). ``noun_zh``: 姓名 for a
    person, 名称 for an institution."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > max_length:
        raise InputError(field, "invalid_text", f"{noun_zh}应为1–{max_length}个字符", f"must be 1–{max_length} characters")
    bad = invisible(text)
    if bad is not None:
        point = f"U+{ord(bad):04X}"
        raise InputError(field, "invisible_character", f"{noun_zh}中含有不可见的控制或格式字符（{point}），请删除后重新输入",
                         f"contains an invisible control or format character ({point}); remove it and type the name again")
    return text
