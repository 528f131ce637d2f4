"""The national interface gateway's doors (FSI): nonces seen within the timestamp window, and sign-ins.

A signed request carries a nonce; the same nonce from the same institution within the window is a
replay and is refused. Each nonce is kept until its window has passed (then deleted, a few at a time,
by the requests that follow), so the table holds one window's worth of requests.

9001 signs an operator in and answers the `sign_no` every later message carries; 9002 signs it out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.formats.fsi import beijing
from yibao.store.sql import Sql
from yibao.store.tables import fsi_signins as SI

_CLAIM = Sql("""INSERT INTO fsi_nonces (institution_id, nonce, region, expires_at, created_at)
                VALUES (:institution_id, :nonce, :region, :expires_at, :now) ON CONFLICT DO NOTHING RETURNING nonce""")
_PURGE = Sql("DELETE FROM fsi_nonces WHERE institution_id = :institution_id AND expires_at < :now")


def nonce_reused() -> Conflict:
    return Conflict("x-tif-nonce", "nonce_reused", "该随机数（x-tif-nonce）已使用过，疑似重放请求", "this nonce was already used: a replayed request")


def claim_nonce(conn: Connection, now: datetime, *, institution_id: str, region: str, nonce: str, window: timedelta,
                purge: bool = True) -> None:
    """Claim the nonce for the window (raises `nonce_reused` if it was seen within it); with ``purge``, drop this
    institution's expired ones (a caller may do that on some requests only: they are only dead weight)."""
    if purge:
        _PURGE(conn, {"institution_id": institution_id, "now": now})
    if _CLAIM(conn, {"institution_id": institution_id, "nonce": nonce, "region": region, "expires_at": now + 2 * window,
                     "now": now}).first() is None:
        raise nonce_reused()


@dataclass(frozen=True)
class SignIn:
    sign_no: str
    institution_id: str
    opter_no: str
    status: str
    created_at: datetime


def _check_text(value: object, field: str, max_length: int, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise InputError(field, "required", "缺少必填字段", "is required")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InputError(field, "invalid_text", f"应为不超过{max_length}个字符的字符串", f"must be text of at most {max_length} characters")
    return value


def sign_in(conn: Connection, now: datetime, *, institution_id: str, region: str, opter_no: object, mac: object = None,
            ip: object = None) -> SignIn:
    opter = _check_text(opter_no, "signIn.opter_no", 30, required=True)
    assert opter is not None
    sign_no = f"{beijing(now):%Y%m%d%H%M%S}{secrets.token_hex(8).upper()}"  # the nation's clock: Beijing time
    conn.execute(SI.insert().values(sign_no=sign_no, region=region, institution_id=institution_id, opter_no=opter,
                                    mac=_check_text(mac, "signIn.mac", 40, required=False), ip=_check_text(ip, "signIn.ip", 60, required=False),
                                    status="in", created_at=now))
    return SignIn(sign_no, institution_id, opter, "in", now)


def sign_out(conn: Connection, now: datetime, *, institution_id: str, sign_no: object, opter_no: object) -> SignIn:
    number = _check_text(sign_no, "signOut.sign_no", 30, required=True)
    opter = _check_text(opter_no, "signOut.opter_no", 30, required=True)
    row = conn.execute(select(SI).where(SI.c.sign_no == number, SI.c.institution_id == institution_id)).first()
    if row is None or row.opter_no != opter:
        raise NotFound("signOut.sign_no", "not_found", "签到编号不存在", "no such sign-in")
    if row.status == "in":
        conn.execute(update(SI).where(SI.c.sign_no == number).values(status="out", signed_out_at=now))
    return SignIn(row.sign_no, row.institution_id, row.opter_no, "out", row.created_at)


_SIGNED_IN = Sql("SELECT status FROM fsi_signins WHERE sign_no = :sign_no AND institution_id = :institution_id")  # every message


def signed_in(conn: Connection, *, institution_id: str, sign_no: str) -> bool:
    row = _SIGNED_IN(conn, {"sign_no": sign_no, "institution_id": institution_id}).first()
    return row is not None and row.status == "in"
