"""Region (统筹区, admdvs) names: the one table of the names people read beside a six-digit code. Pure.

A page, a receipt or an explanation line says 宁波市（330200） — or Ningbo (330200) in English — not the bare code.
A code outside the table is shown as it is. The policy files carry the same names (region_name: "宁波市 Ningbo");
tests/domain/test_policy_files.py keeps the two in step.
"""

from __future__ import annotations

NAMES: dict[str, tuple[str, str]] = {
    "330200": ("宁波市", "Ningbo"),
    "370200": ("青岛市", "Qingdao"),
    "440300": ("深圳市", "Shenzhen"),
}


def name(code: str, lang: str = "zh") -> str | None:
    """宁波市 or Ningbo; None for a code outside the table."""
    known = NAMES.get(code)
    return None if known is None else known[1 if lang == "en" else 0]


def label(code: str, lang: str = "zh") -> str:
    """宁波市（330200） or Ningbo (330200); the code alone when the table does not know it."""
    known = name(code, lang)
    if known is None:
        return code
    return f"{known} ({code})" if lang == "en" else f"{known}（{code}）"
