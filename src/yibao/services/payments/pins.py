"""A holder's 6-digit payment PIN (支付密码): set, change, and check it for a waiting payment.

Stored as scrypt over an HMAC of the PIN under a keyring purpose key, with a random salt: a million
PINs are quick to try against a bare hash, so a database copy without the keyring must be useless.
The hash takes tens of milliseconds, so it is computed *outside* any unit of work (`pin_hash`, on a
worker thread); the units only compare and count. A wrong old PIN when changing it is counted and
committed before the refusal is raised; after MAX_FAILED the PIN is locked for LOCK_FOR.

Every check of a PIN goes through `check` (or `verify`, its yes/no): to confirm a payment, to pay a bill,
to change the PIN, a card's PIN tomorrow. Wrong PINs are counted per HOLDER across all of them
(`PER_HOLDER`, in the attempts table), like a wallet's payment password: after `MAX_FAILED` wrong within
`HOLDER_WINDOW` the holder's PIN is locked — the right one too — with Retry-After until the oldest of them
leaves the window; a right PIN ends the count. (Each payment also counts its own: the fifth wrong PIN on
one payment voids it.) The check, the count and the answer are one unit per holder at a time, so parallel
guesses get no more answers than the limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import Conflict, InputError, TooManyAttempts, YibaoError
from yibao.services import Context
from yibao.services.access import attempts
from yibao.services.books import audit
from yibao.services.people import persons as people
from yibao.store.tables import payment_pins as PP

MAX_FAILED = 5
LOCK_FOR = timedelta(minutes=30)
HOLDER_WINDOW = timedelta(hours=3)
PER_HOLDER = attempts.Counter("pin:holder", AttemptLimit(MAX_FAILED, HOLDER_WINDOW), resets=True)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def check_format(pin: str, field: str = "pin") -> None:
    if not (isinstance(pin, str) and len(pin) == 6 and pin.isascii() and pin.isdigit()):
        raise InputError(field, "pin_format", "支付密码应为6位数字", "must be 6 digits")


def check_strength(pin: str, field: str = "pin") -> None:
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:])}
    if len(set(digits)) == 1 or steps in ({1}, {-1}):
        raise InputError(field, "pin_too_simple", "支付密码过于简单（相同或连续数字）", "too simple: repeated or consecutive digits")


def new_salt() -> str:
    return secrets.token_hex(16)


def pin_hash(keyring: Keyring, pin: str, salt: str) -> str:
    """Slow on purpose (CPU-bound): call it off the event loop and outside any unit of work."""
    keyed = hmac.new(keyring.purpose_key("payment pin v1"), pin.encode(), hashlib.sha256).digest()
    return hashlib.scrypt(keyed, salt=bytes.fromhex(salt), **_SCRYPT).hex()


@dataclass(frozen=True)
class StoredPin:
    salt: str
    pin_hash: str
    failed: int
    locked_until: datetime | None


def stored(conn: Connection, person_id: str) -> StoredPin | None:
    r = conn.execute(select(PP).where(PP.c.person_id == person_id)).first()
    if r is None:
        return None
    locked = r.locked_until if r.locked_until is None or r.locked_until.tzinfo else r.locked_until.replace(tzinfo=timezone.utc)
    return StoredPin(r.salt, r.pin_hash, int(r.failed), locked)


def matches(pin: StoredPin | None, candidate: str | None) -> bool | None:
    """None when no PIN is set; else whether the candidate hash (made with pin.salt) is the stored one."""
    if pin is None:
        return None
    return candidate is not None and hmac.compare_digest(pin.pin_hash, candidate)


def set_pin(conn: Connection, now: datetime, *, person_id: str, salt: str, new_hash: str, old_candidate: str | None,
            old_salt: str | None, actor: str) -> dict | YibaoError:
    """Set the PIN, or change it (``old_candidate`` is the old PIN hashed with ``old_salt``, the salt read before).

    A wrong old PIN is counted and returned (the caller raises it after commit).
    """
    person = people.require(conn, person_id)
    current = conn.execute(select(PP).where(PP.c.person_id == person_id).with_for_update()).first()
    if current is not None:
        attempts.serialise(conn, PER_HOLDER.kind, person_id)
        wait = PER_HOLDER.wait(conn, now, person_id)
        if wait is not None:  # wrong PINs elsewhere (a payment, a bill) lock the change too
            raise pin_locked("old_pin", wait)
    if current is None:
        conn.execute(PP.insert().values(person_id=person_id, region=person.region, pin_hash=new_hash, salt=salt, failed=0,
                                        updated_at=now, created_at=now))
        audit.append(conn, region=person.region, actor=actor, action="payment_pin.set", subject=person_id, detail={}, now=now)
        return {"psn_no": person_id, "pin_set": True, "changed": False}
    pin = stored(conn, person_id)
    assert pin is not None
    if pin.locked_until is not None and pin.locked_until > now:
        seconds = max(1, int((pin.locked_until - now).total_seconds()))
        raise TooManyAttempts("old_pin", "pin_locked", f"原支付密码错误次数过多，请{seconds}秒后再试",
                              f"too many wrong PINs; try again in {seconds} s", seconds)
    if old_candidate is None:
        raise Conflict("old_pin", "old_pin_required", "修改支付密码须提供原密码", "changing the PIN needs the old PIN")
    if old_salt != pin.salt or not hmac.compare_digest(pin.pin_hash, old_candidate):
        PER_HOLDER.count(conn, now, person_id, region=person.region)  # the holder's one count, whatever the door
        failed = pin.failed + 1
        locked = now + LOCK_FOR if failed >= MAX_FAILED else None
        conn.execute(update(PP).where(PP.c.person_id == person_id).values(failed=0 if locked else failed, locked_until=locked))
        audit.append(conn, region=person.region, actor=actor, action="payment_pin.wrong", subject=person_id,
                     detail={"failed": failed, "locked": locked is not None}, now=now)
        if locked:
            return TooManyAttempts("old_pin", "pin_locked", "原支付密码错误次数过多，已锁定30分钟", "too many wrong PINs; locked for 30 minutes",
                                   int(LOCK_FOR.total_seconds()))
        return InputError("old_pin", "pin_wrong", f"原支付密码错误，还可尝试{MAX_FAILED - failed}次",
                          f"wrong old PIN; {MAX_FAILED - failed} attempts left")
    PER_HOLDER.count(conn, now, person_id, failed=False, region=person.region)  # the right old PIN ends the count
    conn.execute(update(PP).where(PP.c.person_id == person_id).values(pin_hash=new_hash, salt=salt, failed=0, locked_until=None,
                                                                      updated_at=now))
    audit.append(conn, region=person.region, actor=actor, action="payment_pin.change", subject=person_id, detail={}, now=now)
    return {"psn_no": person_id, "pin_set": True, "changed": True}


async def change(ctx: Context, *, person_id: str, pin: str, old_pin: str | None, actor: str) -> dict:
    """Set or change the payment PIN: the slow hashes off the event loop and outside any unit; a wrong old PIN
    is counted (committed) and then raised."""
    check_format(pin)
    check_strength(pin)
    if old_pin is not None:
        check_format(old_pin, "old_pin")
    current = await ctx.run(lambda c: stored(c, person_id), write=False)
    old = None
    if current is not None and old_pin is not None:
        old = await asyncio.to_thread(pin_hash, ctx.keyring, old_pin, current.salt)
    salt = new_salt()
    new_hash = await asyncio.to_thread(pin_hash, ctx.keyring, pin, salt)
    now = ctx.now()
    result = await ctx.run(lambda c: set_pin(c, now, person_id=person_id, salt=salt, new_hash=new_hash, old_candidate=old,
                                             old_salt=current.salt if current else None, actor=actor))
    if isinstance(result, Exception):
        raise result
    return result


def pin_locked(field: str, wait: int) -> TooManyAttempts:
    minutes = max(1, -(-wait // 60))
    return TooManyAttempts(field, "pin_locked", f"支付密码错误次数过多，已锁定，请{minutes}分钟后再试",
                           f"too many wrong PINs: the PIN is locked; try again in {minutes} min", wait)


@dataclass(frozen=True)
class PinCheck:
    ok: bool | None  # None: no PIN is set
    left: int  # wrong PINs the holder may still type before the lock


def wait_for(conn: Connection, now: datetime, person_id: str) -> int | None:
    """Seconds until the holder may type a PIN again (None: now)."""
    return PER_HOLDER.wait(conn, now, person_id)


def count(conn: Connection, now: datetime, person_id: str, ok: bool | None, field: str = "pin") -> PinCheck | TooManyAttempts:
    """The unit after the hash: the holder's turn, the lock checked again (a parallel guess may have reached it:
    then this PIN's outcome is not told), the outcome counted. A refusal is returned, to commit with the count."""
    attempts.serialise(conn, PER_HOLDER.kind, person_id)
    wait = PER_HOLDER.wait(conn, now, person_id)
    if wait is not None:
        return pin_locked(field, wait)
    if ok is None:
        return PinCheck(None, PER_HOLDER.rule.limit)
    region = people.region_of(conn, person_id)
    PER_HOLDER.count(conn, now, person_id, failed=not ok, region=region)
    return PinCheck(ok, PER_HOLDER.left(conn, now, person_id))


async def check(ctx: Context, person_id: str, pin: str, field: str = "pin") -> PinCheck:
    """Whether ``pin`` is the person's PIN, counted per holder: the lock first (`TooManyAttempts`, Retry-After,
    before anything is hashed), the hash off the event loop and outside any unit, then the count (one unit)."""
    check_format(pin, field)
    now = ctx.now()
    current, wait = await ctx.run(lambda c: (stored(c, person_id), wait_for(c, now, person_id)), write=False)
    if wait is not None:
        raise pin_locked(field, wait)
    candidate = await asyncio.to_thread(pin_hash, ctx.keyring, pin, current.salt) if current else None
    ok = matches(current, candidate)
    result = await ctx.run(lambda c: count(c, ctx.now(), person_id, ok, field))
    if isinstance(result, TooManyAttempts):
        raise result
    return result


async def verify(ctx: Context, person_id: str, pin: str) -> bool | None:
    """Whether ``pin`` is the person's PIN (None: none is set), through `check`: counted per holder, refused with
    `TooManyAttempts` while the holder's PIN is locked."""
    return (await check(ctx, person_id, pin)).ok
