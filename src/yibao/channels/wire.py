"""Values at the wire edge, shared by every connector's transformers: amounts, times, holder tokens.

Inside, money is integer fen; institutions carry yuan strings with two decimals ("12.30") or, as
UnionPay does, fen as a digit string. Both conversions are exact string arithmetic, never float.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # institutions stamp times and statement days in Beijing time

_YUAN = re.compile(r"^(0|[1-9][0-9]{0,13})\.([0-9]{2})$")
_FEN = re.compile(r"^(0|[1-9][0-9]{0,15})$")


class WireError(ValueError):
    """A value on the wire that is not what the format says it must be."""


def fen_to_yuan(fen: int) -> str:
    """12345 → "123.45". Wire amounts are never negative (a refund says so by its kind)."""
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise WireError(f"amount must be a non-negative integer of fen, got {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    """"123.45" → 12345. Exactly two decimals, as institutions send them; anything else is refused."""
    m = _YUAN.match(text) if isinstance(text, str) else None
    if not m:
        raise WireError(f"not a yuan amount with two decimals: {text!r}")
    return int(m.group(1)) * 100 + int(m.group(2))


def fen_to_digits(fen: int) -> str:
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise WireError(f"amount must be a non-negative integer of fen, got {fen!r}")
    return str(fen)


def digits_to_fen(text: str) -> int:
    if not isinstance(text, str) or not _FEN.match(text):
        raise WireError(f"not an amount in fen: {text!r}")
    return int(text)


def china_time(at: datetime) -> datetime:
    return at.astimezone(CHINA)


def rfc3339(at: datetime) -> str:
    """WeChat Pay's form: 2026-11-22T17:00:00+08:00."""
    return china_time(at).isoformat(timespec="seconds")


def parse_rfc3339(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise WireError(f"not an RFC 3339 time: {text!r}") from None
    if at.tzinfo is None:
        raise WireError(f"time without an offset: {text!r}")
    return at


def plain_time(at: datetime) -> str:
    """Alipay's form: 2026-11-22 17:00:00 in Beijing time."""
    return china_time(at).strftime("%Y-%m-%d %H:%M:%S")


_PLAIN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def parse_plain_time(text: str) -> datetime:
    if isinstance(text, str) and _PLAIN.fullmatch(text):  # the usual, zero-padded form: parsed in C, the same result
        try:
            return datetime.fromisoformat(text).replace(tzinfo=CHINA)
        except ValueError:
            raise WireError(f"not a time like 2026-11-22 17:00:00: {text!r}") from None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except (TypeError, ValueError):
        raise WireError(f"not a time like 2026-11-22 17:00:00: {text!r}") from None


def compact_time(at: datetime) -> str:
    """UnionPay's form: 20261122170000 in Beijing time."""
    return china_time(at).strftime("%Y%m%d%H%M%S")


def parse_compact_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CHINA)
    except (TypeError, ValueError):
        raise WireError(f"not a time like 20261122170000: {text!r}") from None


def holder_token(key: bytes, person_id: str, institution: str) -> str:
    """The opaque name a payment institution knows a holder by: a keyed hash, different for each
    institution (so two institutions cannot join their records on it) and useless without the key."""
    digest = hmac.new(key, f"holder-token\x00{institution}\x00{person_id}".encode(), hashlib.sha256).digest()
    return "ht_" + base64.urlsafe_b64encode(digest[:24]).decode()
