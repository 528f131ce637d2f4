"""Holder log-in by SMS code, the session every log-in opens, a session by its token (who it belongs to while
valid; logging out) — and the cashier's and operator's page sessions. Only a token's hash is stored, and
log-out deletes it: a copied cookie stops working at once.

The code: six random digits, stored only as an HMAC under a keyring purpose key bound to the phone (a
database copy without the keyring cannot try the million codes), sent by text message between units
(`send_code`: the SMS gateway is an outside party; services/access/sms.py). Limits, per subject, whatever
the door (API or page):
- per phone: one code per `SEND_SPACING` (a repeat within it is answered the same and sends nothing),
  `SENDS_PER_PHONE` codes, and `WRONG_PER_PHONE` wrong codes across all its codes — then the phone is locked
  (a right code after the lock is refused too) until the oldest failure leaves the window; a right code
  ends the count;
- per client address: `SENDS_PER_ADDRESS` code requests and `WRONG_PER_ADDRESS` wrong codes;
- per code: `MAX_ATTEMPTS` tries.
Sends are counted for every phone asked about, enrolled or not, so the answers tell no one apart.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_phone
from yibao.domain.attempts import AttemptLimit
from yibao.domain.errors import InputError, TooManyAttempts, Unauthorized, YibaoError
from yibao.services import Context
from yibao.services.access import sms
from yibao.services.access.attempts import Counter, serialise, subject_of
from yibao.services.people import persons as people
from yibao.store.tables import console_sessions as CS
from yibao.store.tables import sessions as SES
from yibao.store.tables import sms_codes as SMS

CODE_TTL = timedelta(minutes=5)
SESSION_TTL = timedelta(hours=12)
CONSOLE_TTL = timedelta(hours=8)  # a cashier's shift, an operator's day
MAX_ATTEMPTS = 5  # per code
SEND_SPACING = timedelta(seconds=30)
SENDS_PER_PHONE = Counter("sms_send:phone", AttemptLimit(5, timedelta(hours=1)))
SENDS_PER_ADDRESS = Counter("sms_send:address", AttemptLimit(20, timedelta(hours=1)))
WRONG_PER_PHONE = Counter("sms_code:phone", AttemptLimit(10, timedelta(hours=24)), resets=True)
WRONG_PER_ADDRESS = Counter("sms_code:address", AttemptLimit(20, timedelta(hours=1)))


def _h(text: str) -> str:
    """A session token's hash: the token is 256 random bits, so a plain digest cannot be reversed."""
    return hashlib.sha256(text.encode()).hexdigest()


def code_hash(keyring: Keyring, phone_hash: str, code: str) -> str:
    """A log-in code as stored: HMAC under its own purpose key, bound to the phone (six digits are a million
    tries for a bare hash; without the keyring, none)."""
    return hmac.new(keyring.purpose_key("sms log-in code v1"), f"{phone_hash}\x1f{code}".encode(), hashlib.sha256).hexdigest()


def _check_phone(phone: str) -> None:
    if not (isinstance(phone, str) and phone.isascii() and phone.isdigit() and len(phone) == 11):
        raise InputError("phone", "invalid_phone", "手机号应为11位数字", "must be an 11-digit mobile number")


def _minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def _too_many_sends(wait: int) -> TooManyAttempts:
    return TooManyAttempts("phone", "sms_send_limited", f"获取验证码过于频繁，请{_minutes(wait)}分钟后再试",
                           f"too many codes asked for: try again in {_minutes(wait)} min", wait)


def _phone_locked(wait: int) -> TooManyAttempts:
    return TooManyAttempts("code", "sms_code_locked", f"验证码错误次数过多，该手机号的短信登录已暂停，请{_minutes(wait)}分钟后再试，或使用实名登录",
                           f"too many wrong codes: SMS log-in for this number is paused; try again in {_minutes(wait)} min, "
                           "or log in with your real name", wait)


def _address_locked(field: str, wait: int) -> TooManyAttempts:
    return TooManyAttempts(field, "sms_address_limited", f"来自您网络的短信登录尝试过多，请{_minutes(wait)}分钟后再试",
                           f"too many SMS log-in attempts from your network: try again in {_minutes(wait)} min", wait)


class Issued(NamedTuple):
    code: str  # in memory only, until the gateway has it
    region: str


def issue_code(conn: Connection, keyring: Keyring, now: datetime, *, phone: str, address: str | None = None) -> Issued | YibaoError | None:
    """The unit before the text: the limits, then — for an enrolled phone outside the spacing — a new code, stored
    as its keyed hash. Returns the code to send, None when nothing is to be sent, or a refusal (counted first)."""
    _check_phone(phone)
    phone_subject = keyring.lookup_hash(phone)
    addr = subject_of(keyring, "address", address) if address else None
    if addr:
        serialise(conn, SENDS_PER_ADDRESS.kind, addr)
        wait = SENDS_PER_ADDRESS.wait(conn, now, addr)
        if wait is not None:
            return _address_locked("phone", wait)
        SENDS_PER_ADDRESS.count(conn, now, addr)
    serialise(conn, SENDS_PER_PHONE.kind, phone_subject)
    wait = WRONG_PER_PHONE.wait(conn, now, phone_subject)
    if wait is not None:
        return _phone_locked(wait)
    last = SENDS_PER_PHONE.seen(conn, now, phone_subject, failed=True)
    if last is not None and last > now - SEND_SPACING:
        return None  # one code per 30 s per phone: a repeat is answered the same, and sends nothing
    wait = SENDS_PER_PHONE.wait(conn, now, phone_subject)
    if wait is not None:
        return _too_many_sends(wait)
    SENDS_PER_PHONE.count(conn, now, phone_subject)
    person = people.find_by_phone(conn, keyring, phone)
    if person is None:
        return None
    code = f"{secrets.randbelow(10**6):06d}"
    conn.execute(SMS.insert().values(region=person.region, phone_hash=phone_subject, code_hash=code_hash(keyring, phone_subject, code),
                                     expires_at=now + CODE_TTL, attempts=0, used=False, created_at=now))
    return Issued(code, person.region)


def code_text(code: str) -> str:
    return f"【医保】您的登录验证码为 {code}，5分钟内有效。Your yibao log-in code is {code}."


async def send_code(ctx: Context, *, phone: str, address: str | None = None) -> dict:
    """Send a 6-digit code if the phone belongs to an insured person; answer the same either way. No SMS gateway
    configured: 503, said before anything is counted. The text goes out after the code's unit commits."""
    _check_phone(phone)
    gateway = ctx.texter()
    now = ctx.now()
    issued = await ctx.run(lambda c: issue_code(c, ctx.keyring, now, phone=phone, address=address))
    if isinstance(issued, YibaoError):
        raise issued
    if issued is not None:
        await sms.send(gateway, phone=phone, text=code_text(issued.code))
    return {"sent": True, "phone": mask_phone(phone), "expires_in": int(CODE_TTL.total_seconds())}


def verify_code(conn: Connection, keyring: Keyring, now: datetime, *, phone: str, code: str,
                address: str | None = None) -> dict | YibaoError:
    """A session for the right code; for a wrong one, the refusal is *returned* so the caller commits the
    counted attempt before raising it (raising here would roll the count back: unlimited guessing)."""
    _check_phone(phone)
    phone_subject = keyring.lookup_hash(phone)
    addr = subject_of(keyring, "address", address) if address else None
    if addr:
        serialise(conn, WRONG_PER_ADDRESS.kind, addr)
        wait = WRONG_PER_ADDRESS.wait(conn, now, addr)
        if wait is not None:
            return _address_locked("code", wait)
    serialise(conn, SENDS_PER_PHONE.kind, phone_subject)
    wait = WRONG_PER_PHONE.wait(conn, now, phone_subject)
    if wait is not None:
        return _phone_locked(wait)
    row = conn.execute(select(SMS).where(SMS.c.phone_hash == phone_subject, SMS.c.used.is_(False), SMS.c.expires_at > now)
                       .order_by(SMS.c.id.desc()).with_for_update()).first()
    if row is None or row.attempts >= MAX_ATTEMPTS:
        if addr:
            WRONG_PER_ADDRESS.count(conn, now, addr)  # no live code to guess: a probe, counted against the address only
        return Unauthorized("code", "code_invalid", "验证码无效、已过期或错误次数过多，请重新获取",
                            "the code is invalid, expired or tried too often; request a new one")
    given = code if isinstance(code, str) else ""
    if not hmac.compare_digest(row.code_hash, code_hash(keyring, phone_subject, given)):
        conn.execute(update(SMS).where(SMS.c.id == row.id).values(attempts=row.attempts + 1))
        WRONG_PER_PHONE.count(conn, now, phone_subject)
        if addr:
            WRONG_PER_ADDRESS.count(conn, now, addr)
        wait = WRONG_PER_PHONE.wait(conn, now, phone_subject)
        if wait is not None:
            return _phone_locked(wait)
        left = min(MAX_ATTEMPTS - row.attempts - 1, WRONG_PER_PHONE.left(conn, now, phone_subject))
        return Unauthorized("code", "code_wrong", f"验证码错误，还可尝试{left}次", f"wrong code; {left} attempts left")
    conn.execute(update(SMS).where(SMS.c.id == row.id).values(used=True))
    WRONG_PER_PHONE.count(conn, now, phone_subject, failed=False)  # a right code ends the phone's count
    person = people.find_by_phone(conn, keyring, phone)
    assert person is not None
    return open_session(conn, now, person)


def open_session(conn: Connection, now: datetime, person: people.Person) -> dict:
    """A new session for a person who proved who they are (SMS code, or real name and face: face_login.py)."""
    token = secrets.token_urlsafe(32)
    conn.execute(SES.insert().values(token_hash=_h(token), region=person.region, person_id=person.id,
                                     expires_at=now + SESSION_TTL, created_at=now))
    return {"token": token, "psn_no": person.id, "expires_at": (now + SESSION_TTL).isoformat()}


# ---- a session by its token (the API's bearer token, the pages' cookie) -----------------------------


class Holder(NamedTuple):
    person_id: str
    region: str


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def holder_of(conn: Connection, token: str, now: datetime) -> Holder | None:
    """The session's person while it is unexpired; None for an unknown or expired token."""
    if not token:
        return None
    row = conn.execute(select(SES.c.person_id, SES.c.region, SES.c.expires_at).where(SES.c.token_hash == _h(token))).first()
    if row is None:
        return None
    return Holder(row.person_id, row.region) if _utc(row.expires_at) > now else None


def end(conn: Connection, token: str) -> None:
    """Log out: the token stops working at once (a copied cookie included)."""
    conn.execute(delete(SES).where(SES.c.token_hash == _h(token)))


# ---- the cashier's and the operator's page sessions -------------------------------------------------


class Console(NamedTuple):
    area: str  # cashier | admin
    principal: str  # the institution id | the operator's name
    region: str


def open_console(conn: Connection, now: datetime, *, area: str, principal: str, region: str) -> str:
    """A page session for a cashier (an institution) or an operator who presented a credential: the cookie's
    token. Sessions past their expiry are cleared on the way."""
    token = secrets.token_urlsafe(32)
    conn.execute(delete(CS).where(CS.c.expires_at <= now))
    conn.execute(CS.insert().values(token_hash=_h(token), region=region, area=area, principal=principal,
                                    expires_at=now + CONSOLE_TTL, created_at=now))
    return token


def console_of(conn: Connection, token: str, area: str, now: datetime) -> Console | None:
    """The session of ``area`` this token opened, while unexpired (an institution's never passes as an operator's)."""
    if not token:
        return None
    row = conn.execute(select(CS.c.area, CS.c.principal, CS.c.region, CS.c.expires_at).where(CS.c.token_hash == _h(token))).first()
    if row is None or row.area != area or _utc(row.expires_at) <= now:
        return None
    return Console(row.area, row.principal, row.region)


def end_console(conn: Connection, token: str) -> None:
    """Log out of the console: the cookie stops working at once."""
    if token:
        conn.execute(delete(CS).where(CS.c.token_hash == _h(token)))


def console_since(conn: Connection, token: str) -> datetime | None:
    """When the console session this token opened began (the log-in): the start of the cashier's shift."""
    if not token:
        return None
    row = conn.execute(select(CS.c.created_at).where(CS.c.token_hash == _h(token))).first()
    return _utc(row.created_at) if row else None
