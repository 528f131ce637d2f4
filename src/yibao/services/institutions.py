"""Designated institutions (定点医药机构): admission, credentials and their ledger accounts."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, InputError, Unauthorized
from yibao.domain.ledger import institution_cash, institution_receivable
from yibao.domain.policy import LEVELS
from yibao.services import audit, ledger
from yibao.services.regions import ensure_region
from yibao.store.tables import institutions as I


@dataclass(frozen=True)
class Institution:
    id: str
    region: str
    name: str
    kind: str
    level: str
    status: str


def _row(r) -> Institution:  # noqa: ANN001
    return Institution(r.id, r.region, r.name, r.kind, r.level, r.status)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def admit(conn: Connection, now: datetime, *, code: str, region: str, name: str, kind: str, level: str,
          actor: str, secret: str | None = None) -> tuple[Institution, str]:
    """Admit an institution; returns it and its API secret (shown once, stored hashed)."""
    if not (code.isalnum() and 6 <= len(code) <= 20):
        raise InputError("code", "invalid_code", "机构编码应为6–20位字母或数字", "must be 6–20 letters or digits (fixmedins_code)")
    if not (len(region) == 6 and region.isdigit()):
        raise InputError("region", "invalid_region", "统筹区代码应为6位数字", "must be a 6-digit region code")
    if kind not in ("hospital", "pharmacy"):
        raise InputError("kind", "invalid_choice", "机构类型应为 hospital 或 pharmacy", "must be hospital or pharmacy")
    if level not in LEVELS or (kind == "pharmacy") != (level == "pharmacy"):
        raise InputError("level", "invalid_level", "级别应为 community/level1/level2/level3（医院）或 pharmacy（药店）",
                         "must be community, level1, level2 or level3 for a hospital, pharmacy for a pharmacy")
    if conn.execute(select(I.c.id).where(I.c.id == code)).first():
        raise Conflict("code", "institution_exists", f"机构 {code} 已存在", f"institution {code} already exists")
    secret = secret or secrets.token_urlsafe(24)
    conn.execute(I.insert().values(id=code, region=region, name=name, kind=kind, level=level, status="active",
                                   secret_hash=secret_hash(secret), created_at=now))
    ensure_region(conn, region, now)
    ledger.ensure_account(conn, institution_receivable(code), region, "institution_receivable", now, owner_id=code)
    ledger.ensure_account(conn, institution_cash(code), region, "institution_cash", now, owner_id=code)
    audit.append(conn, region=region, actor=actor, action="institution.admit", subject=code, detail={"name": name, "level": level}, now=now)
    return Institution(code, region, name, kind, level, "active"), secret


def get(conn: Connection, code: str) -> Institution | None:
    r = conn.execute(select(I).where(I.c.id == code)).first()
    return _row(r) if r else None


def authenticate(conn: Connection, code: str, secret: str) -> Institution:
    r = conn.execute(select(I).where(I.c.id == code)).first()
    if r is None or not hmac.compare_digest(r.secret_hash, secret_hash(secret)) or r.status != "active":
        raise Unauthorized("Authorization", "bad_credentials", "机构凭证无效", "invalid institution credentials")
    return _row(r)


def list_all(conn: Connection, region: str | None = None) -> list[Institution]:
    q = select(I).order_by(I.c.region, I.c.id)
    if region:
        q = q.where(I.c.region == region)
    return [_row(r) for r in conn.execute(q).all()]
