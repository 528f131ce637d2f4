"""Resident identity numbers (GB 11643-1999): format, checksum and birth date. Pure."""

from __future__ import annotations

from datetime import date

from yibao.domain.errors import InputError

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def parse_id_number(value: object, field: str = "id_number") -> tuple[str, date]:
    """Validate an 18-character ID number; returns it normalised and the birth date it carries."""
    if not isinstance(value, str):
        raise InputError(field, "invalid_id_number", "身份证号应为18位字符串", "must be an 18-character ID number string")
    text = value.strip().upper()
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise InputError(field, "invalid_id_number", "身份证号应为17位数字加1位校验码", "must be 17 digits and a check character (0-9 or X)")
    if check_digit(text[:17]) != text[17]:
        raise InputError(field, "id_number_checksum", "身份证号校验码不正确", "the ID number's check character is wrong")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InputError(field, "id_number_birth_date", "身份证号中的出生日期无效", "the birth date inside the ID number is invalid") from None
    return text, born


def make_id_number(area: str, born: date, serial: int) -> str:
    """For demo data and tests: a valid number for a 6-digit area code, birth date and 3-digit serial."""
    first17 = f"{area}{born:%Y%m%d}{serial:03d}"
    return first17 + check_digit(first17)


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
