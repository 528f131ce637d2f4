"""The payment-code format: round trip, every single-digit change refused, MACs not forgeable."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from yibao.crypto.pii import Keyring
from yibao.domain import paycode
from yibao.domain.errors import InputError

KEY = Keyring(bytes(range(32))).purpose_key(paycode.MAC_PURPOSE)
OTHER_KEY = Keyring(bytes(range(1, 33))).purpose_key(paycode.MAC_PURPOSE)

slots = st.integers(0, 10**paycode.SLOT_DIGITS - 1).map(lambda n: f"{n:0{paycode.SLOT_DIGITS}d}")
counters = st.integers(1, 10**9)


def test_damm_known_answers():
    assert paycode.damm("572") == 4  # Damm's worked example
    assert paycode.damm("5724") == 0
    assert paycode.damm("") == 0


def test_the_layout():
    code = paycode.encode(KEY, "12345678", 307)
    assert len(code) == 20 and code.isdigit() and code.startswith("91")
    assert code[2:10] == "12345678" and code[10:12] == "07"
    assert code[12:19] == paycode.mac(KEY, "12345678", 307)
    assert paycode.parse(code) == paycode.PaycodeParts("12345678", 7, code[12:19])


@given(slots, counters)
def test_round_trip(slot, counter):
    code = paycode.encode(KEY, slot, counter)
    parts = paycode.parse(code)
    assert (parts.slot, parts.counter_residue) == (slot, counter % 100)
    assert paycode.verify(KEY, parts, counter)
    assert paycode.full_counter(parts.counter_residue, counter) == counter


@given(slots, counters, st.integers(0, 19), st.integers(1, 9))
def test_any_single_digit_change_is_refused_before_any_lookup(slot, counter, position, delta):
    code = paycode.encode(KEY, slot, counter)
    changed = code[:position] + str((int(code[position]) + delta) % 10) + code[position + 1:]
    with pytest.raises(InputError) as exc:
        paycode.parse(changed)
    assert exc.value.code in ("paycode_not_medical", "paycode_check_digit") and exc.value.field == "code"


@given(slots, counters, st.integers(0, 18))
def test_swapping_two_neighbouring_digits_is_refused(slot, counter, position):
    code = paycode.encode(KEY, slot, counter)
    assume(code[position] != code[position + 1])
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2:]
    with pytest.raises(InputError):
        paycode.parse(swapped)


@given(slots, counters)
def test_a_code_made_with_another_key_fails_the_mac(slot, counter):
    forged = paycode.encode(OTHER_KEY, slot, counter)  # well formed, right check digit, wrong key
    assume(forged != paycode.encode(KEY, slot, counter))  # 1 in 10^7 the MACs agree
    assert not paycode.verify(KEY, paycode.parse(forged), counter)


@given(slots, counters, st.integers(0, 10**7 - 1))
def test_a_guessed_mac_with_a_valid_check_digit_fails(slot, counter, guess):
    body = f"91{slot}{counter % 100:02d}{guess:07d}"
    assume(f"{guess:07d}" != paycode.mac(KEY, slot, counter))
    parts = paycode.parse(body + str(paycode.damm(body)))
    assert not paycode.verify(KEY, parts, counter)


@given(slots, st.integers(101, 10**6))
def test_the_same_two_digits_one_hundred_refreshes_later_do_not_revive_an_old_code(slot, counter):
    old = paycode.encode(KEY, slot, counter - 100)
    parts = paycode.parse(old)
    assert paycode.full_counter(parts.counter_residue, counter) == counter  # the platform reads it as the newest
    assert not paycode.verify(KEY, parts, counter) or old == paycode.encode(KEY, slot, counter)


def test_full_counter_finds_the_newest_counter_with_those_digits():
    assert paycode.full_counter(7, 307) == 307
    assert paycode.full_counter(6, 307) == 306
    assert paycode.full_counter(8, 307) == 208
    assert paycode.full_counter(8, 7) is None  # no counter 8 has been issued yet, nor any before it ending in 08
    assert paycode.full_counter(0, 99) is None  # counters start at 1


@pytest.mark.parametrize("text, code", [
    ("", "paycode_format"),
    ("9112345678", "paycode_format"),
    ("9112345678071234567x", "paycode_format"),
    ("９１１２３４５６７８０７１２３４５６７８", "paycode_format"),  # full-width digits are digits to str.isdigit
    ("13123456780712345678", "paycode_not_medical"),  # a wallet's code
])
def test_malformed_codes_name_the_rule(text, code):
    with pytest.raises(InputError) as exc:
        paycode.parse(text)
    assert exc.value.code == code and exc.value.field == "code"
    assert exc.value.message_zh and exc.value.message_en


def test_encode_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError):
        paycode.encode(KEY, "1234567", 1)
    with pytest.raises(ValueError):
        paycode.encode(KEY, "12345678", 0)


def test_purpose_keys_differ_per_purpose_and_master():
    ring = Keyring(bytes(range(32)))
    assert ring.purpose_key("a") != ring.purpose_key("b")
    assert ring.purpose_key("a") == Keyring(bytes(range(32))).purpose_key("a")
    assert ring.purpose_key("a") != Keyring(bytes(range(1, 33))).purpose_key("a")
    assert len(ring.purpose_key("a")) == 32
