"""Holder log-in by SMS code, the session every log-in opens, and a session by its token (who it
belongs to while valid; logging out). Only the token's hash is stored.

The code goes out by text message (sms.py).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_phone
from yibao.domain.errors import InputError, Unauthorized
from yibao.services.access import sms
from yibao.services.people import persons as people
from yibao.store.tables import sessions as SES
from yibao.store.tables import sms_codes as SMS

CODE_TTL = timedelta(minutes=5)
SESSION_TTL = timedelta(hours=12)
MAX_ATTEMPTS = 5


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_phone(phone: str) -> None:
    if not (isinstance(phone, str) and phone.isdigit() and len(phone) == 11):
        raise InputError("phone", "invalid_phone", "手机号应为11位数字", "must be an 11-digit mobile number")


def send_code(conn: Connection, keyring: Keyring, now: datetime, *, phone: str) -> dict:
    """Send a 6-digit code if the phone belongs to an insured person; answer the same either way."""
    _check_phone(phone)
    person = people.find_by_phone(conn, keyring, phone)
    if person is not None:
        recent = conn.execute(select(SMS.c.id).where(SMS.c.phone_hash == keyring.lookup_hash(phone),
                                                     SMS.c.created_at > now - timedelta(seconds=30))).first()
        if recent is None:  # at most one code per 30 s per phone
            code = f"{secrets.randbelow(10**6):06d}"
            conn.execute(SMS.insert().values(region=person.region, phone_hash=keyring.lookup_hash(phone), code_hash=_h(code),
                                             expires_at=now + CODE_TTL, attempts=0, used=False, created_at=now))
            sms.send(conn, keyring, now, region=person.region, phone=phone,
                     text=f"【医保】您的登录验证码为 {code}，5分钟内有效。Your yibao log-in code is {code}.")
    return {"sent": True, "phone": mask_phone(phone), "expires_in": int(CODE_TTL.total_seconds())}


def verify_code(conn: Connection, keyring: Keyring, now: datetime, *, phone: str, code: str) -> dict | Unauthorized:
    """A session for the right code; for a wrong one, the refusal is *returned* so the caller commits the
    counted attempt before raising it (raising here would roll the count back: unlimited guessing)."""
    _check_phone(phone)
    row = conn.execute(select(SMS).where(SMS.c.phone_hash == keyring.lookup_hash(phone), SMS.c.used.is_(False), SMS.c.expires_at > now)
                       .order_by(SMS.c.id.desc()).with_for_update()).first()
    if row is None or row.attempts >= MAX_ATTEMPTS:
        return Unauthorized("code", "code_invalid", "验证码无效、已过期或错误次数过多，请重新获取",
                            "the code is invalid, expired or tried too often; request a new one")
    if row.code_hash != _h(code):
        conn.execute(update(SMS).where(SMS.c.id == row.id).values(attempts=row.attempts + 1))
        return Unauthorized("code", "code_wrong", f"验证码错误，还可尝试{MAX_ATTEMPTS - row.attempts - 1}次",
                            f"wrong code; {MAX_ATTEMPTS - row.attempts - 1} attempts left")
    conn.execute(update(SMS).where(SMS.c.id == row.id).values(used=True))
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


def holder_of(conn: Connection, token: str, now: datetime) -> Holder | None:
    """The session's person while it is unexpired; None for an unknown or expired token."""
    if not token:
        return None
    row = conn.execute(select(SES.c.person_id, SES.c.region, SES.c.expires_at).where(SES.c.token_hash == _h(token))).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
    return Holder(row.person_id, row.region) if expires > now else None


def end(conn: Connection, token: str) -> None:
    """Log out: the token stops working at once (a copied cookie included)."""
    conn.execute(delete(SES).where(SES.c.token_hash == _h(token)))
