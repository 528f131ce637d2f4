"""The dynamic payment code (动态医保码): its format, its MAC and its check digit. Pure; no I/O.

A code is 20 decimal digits, the same value in the QR and in the Code 128 barcode:

    91 SSSSSSSS CC MMMMMMM D
    │  │        │  │       └ Damm check digit over the 19 digits before it: catches every single-digit
    │  │        │  │         error and every swap of two neighbours before any look-up (typed codes)
    │  │        │  └ MAC: HMAC-SHA256(key, slot ‖ full counter), reduced to 7 digits
    │  │        └ the card's code counter modulo 100
    │  └ slot: a random 8-digit token the platform gave the card; opaque, no PII
    └ prefix 91: tells a scanner this is a medical-insurance code, not a wallet's (guess: WeChat uses
      10–15, Alipay 25–30, UnionPay 62; no published 医保码 prefix was found)

The MAC covers the *full* counter while the code carries only its last two digits: the platform
rebuilds the full counter from the card's latest one, so an unused code from 100 refreshes ago does
not become valid again when the two digits come round (its MAC was over the old counter).
Single use and "replaced by a newer code" are the platform's records, not the format's.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from yibao.domain.errors import InputError

PREFIX = "91"
LENGTH = 20
SLOT_DIGITS = 8
COUNTER_DIGITS = 2
MAC_DIGITS = 7
COUNTER_MODULUS = 10**COUNTER_DIGITS
MAC_PURPOSE = "paycode mac v1"  # the keyring derives the MAC key for this purpose only

# Damm's totally anti-symmetric quasigroup of order 10 (H. M. Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm(digits: str) -> int:
    """The Damm check digit of ``digits``; a string with its check digit appended yields 0."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


@dataclass(frozen=True)
class PaycodeParts:
    """What a well-formed code says, before the platform has verified anything."""

    slot: str
    counter_residue: int
    mac: str


def mac(key: bytes, slot: str, counter: int) -> str:
    """The 7-digit MAC of (slot, full counter). 64 bits of HMAC reduced mod 10^7: the bias is < 10^-12."""
    digest = hmac.new(key, f"{PREFIX}|{slot}|{counter}".encode("ascii"), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**MAC_DIGITS:0{MAC_DIGITS}d}"


def encode(key: bytes, slot: str, counter: int) -> str:
    """The code for a card's slot and its counter (1, 2, … one per issue)."""
    if len(slot) != SLOT_DIGITS or not slot.isdigit() or not slot.isascii():
        raise ValueError(f"a slot is {SLOT_DIGITS} digits, got {slot!r}")
    if counter < 1:
        raise ValueError("counters start at 1")
    body = f"{PREFIX}{slot}{counter % COUNTER_MODULUS:0{COUNTER_DIGITS}d}{mac(key, slot, counter)}"
    return body + str(damm(body))


def parse(code: str) -> PaycodeParts:
    """Split a scanned or typed code, refusing one that is not ours or was misread (no key needed)."""
    code = code.strip()
    if len(code) != LENGTH or not (code.isascii() and code.isdigit()):
        raise InputError("code", "paycode_format", f"医保支付码应为{LENGTH}位数字", f"a payment code is {LENGTH} digits")
    if not code.startswith(PREFIX):
        raise InputError("code", "paycode_not_medical", f"这不是医保支付码（医保支付码以{PREFIX}开头）",
                         f"this is not a medical-insurance payment code (those start with {PREFIX})")
    if damm(code) != 0:
        raise InputError("code", "paycode_check_digit", "支付码校验位不符，请重新扫码或核对输入",
                         "the code's check digit does not match; scan again or check what was typed")
    at = len(PREFIX)
    slot = code[at:at + SLOT_DIGITS]
    at += SLOT_DIGITS
    residue = int(code[at:at + COUNTER_DIGITS])
    at += COUNTER_DIGITS
    return PaycodeParts(slot, residue, code[at:at + MAC_DIGITS])


def full_counter(residue: int, latest: int) -> int | None:
    """The newest counter not after ``latest`` that ends in ``residue``; None if there is none."""
    candidate = latest - ((latest - residue) % COUNTER_MODULUS)
    return candidate if candidate >= 1 else None


def verify(key: bytes, parts: PaycodeParts, counter: int) -> bool:
    """Whether the code's MAC is the platform's for (slot, counter); constant-time."""
    return counter % COUNTER_MODULUS == parts.counter_residue and hmac.compare_digest(mac(key, parts.slot, counter), parts.mac)
