"""Money, ratios and quantities as exact integers.

Inside yibao an amount is an ``int`` of fen (0.01 yuan). A ratio is an ``int`` of
parts per million (``RATIO_ONE`` = 100%), so any decimal ratio with up to six places is
exact. A quantity is an ``int`` of 1/10000 units, matching the national interface's
``cnt`` numeric(16,4). Yuan strings exist only at the edges (parse_yuan/format_yuan).

Every derived amount is rounded ROUND_HALF_UP exactly once, by ``div_round_half_up``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from yibao.domain.errors import InputError

RATIO_SCALE = 1_000_000
RATIO_ONE = RATIO_SCALE
QTY_SCALE = 10_000
# The largest amount stored anywhere (a line or visit total, a transfer, an account side), in fen:
# the national money fields are numeric(16,2), and it keeps every sum far from BIGINT's limit.
MAX_FEN = 10**16 - 1

_DECIMAL_RE = re.compile(r"^([0-9]+)(?:\.([0-9]+))?$")  # ASCII digits only


def div_round_half_up(numerator: int, denominator: int) -> int:
    """Integer division rounded half away from zero (四舍五入)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((2 * -numerator + denominator) // (2 * denominator))


def apply_ratio(amount_fen: int, ratio_ppm: int) -> int:
    """amount × ratio, rounded half up to the fen once."""
    return div_round_half_up(amount_fen * ratio_ppm, RATIO_SCALE)


def _decimal_text(value: object, field: str, what_zh: str, what_en: str) -> str:
    """Normalise str / int / Decimal input to a plain decimal string, or raise InputError."""
    if isinstance(value, bool) or value is None:
        raise InputError(field, "invalid_number", f"{what_zh}应为十进制字符串，不能为空或布尔值", f"{what_en} must be a decimal string, not {str(value).lower() if value is not None else 'null'}")
    if isinstance(value, float):
        # A float has already lost exactness (or is NaN/Infinity); refuse instead of guessing.
        raise InputError(field, "float_not_allowed", f"{what_zh}请用十进制字符串表示，例如 \"12.50\"",
                         f"{what_en} must be a decimal string such as \"12.50\"")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InputError(field, "invalid_number", f"{what_zh}必须是有限数字", f"{what_en} must be a finite number")
        if not -30 <= value.adjusted() <= 30:  # refuse 1E+100000000 before formatting it
            raise InputError(field, "too_large", f"{what_zh}超出范围", f"{what_en} is out of range")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InputError(field, "invalid_number", f"{what_zh}必须是数字字符串", f"{what_en} must be a decimal string, got {type(value).__name__}")
    if text == "":
        raise InputError(field, "empty", f"{what_zh}不能为空", f"{what_en} is empty")
    if text.startswith("-"):
        raise InputError(field, "negative", f"{what_zh}不能为负数：{text}", f"{what_en} must not be negative: {text!r}")
    if text.startswith("+"):
        text = text[1:]
    if not _DECIMAL_RE.match(text):
        raise InputError(field, "invalid_number", f"{what_zh}不是有效的数字：{text}", f"{what_en} is not a decimal number: {text!r}")
    return text


# National fields are numeric(16,2) for money and numeric(16,4) for counts: bound the whole part.
_MAX_WHOLE_DIGITS = {2: 14, 4: 12, 6: 1}


def _scaled(text: str, places: int, field: str, what_zh: str, what_en: str) -> int:
    whole, _, frac = text.partition(".")
    limit = _MAX_WHOLE_DIGITS[places]
    if len(whole.lstrip("0")) > limit:
        raise InputError(field, "too_large", f"{what_zh}过大：整数部分最多{limit}位", f"{what_en} is too large: at most {limit} digits before the point")
    if len(frac) > places:
        # Trailing zeros beyond the scale are harmless ("12.500"); real digits are not.
        if frac[places:].strip("0"):
            raise InputError(field, "too_many_decimals", f"{what_zh}最多{places}位小数：{text}",
                             f"{what_en} allows at most {places} decimal places: {text!r}")
        frac = frac[:places]
    return int(whole) * 10**places + int((frac or "0").ljust(places, "0"))


def parse_yuan(value: object, field: str = "amount") -> int:
    """Parse a non-negative yuan amount ("12.50", 12, Decimal("12.5")) into fen."""
    text = _decimal_text(value, field, "金额", "amount")
    return _scaled(text, 2, field, "金额", "amount")


def parse_ratio(value: object, field: str = "ratio") -> int:
    """Parse a ratio between 0 and 1 ("0.10") into parts per million."""
    text = _decimal_text(value, field, "比例", "ratio")
    ppm = _scaled(text, 6, field, "比例", "ratio")
    if ppm > RATIO_ONE:
        raise InputError(field, "ratio_above_one", f"比例不能大于1：{text}", f"ratio must be between 0 and 1: {text!r}")
    return ppm


def parse_quantity(value: object, field: str = "quantity") -> int:
    """Parse a positive quantity ("2", "0.5") into 1/10000 units."""
    text = _decimal_text(value, field, "数量", "quantity")
    units = _scaled(text, 4, field, "数量", "quantity")
    if units == 0:
        raise InputError(field, "not_positive", f"数量必须大于0：{text}", f"quantity must be greater than 0: {text!r}")
    return units


def format_yuan(fen: int) -> str:
    """12345 -> "123.45"; -5 -> "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def format_ratio(ppm: int) -> str:
    """100000 -> "10%"; 925000 -> "92.5%"."""
    text = str(Decimal(ppm) / Decimal(10_000))
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def ratio_to_text(ppm: int) -> str:
    """900000 -> "0.9000": the national numeric(5,4) form of a ratio."""
    return f"{ppm // RATIO_SCALE}.{ppm % RATIO_SCALE // 100:04d}"
