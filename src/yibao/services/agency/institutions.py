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
from yibao.domain.names import check_name
from yibao.domain.policy import LEVEL_ZH, LEVELS
from yibao.services.agency.policies import require_known_region
from yibao.services.agency.regions import ensure_region
from yibao.services.books import audit, ledger
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


HOSPITAL_LEVELS = tuple(level for level in LEVELS if level != "pharmacy")


def _check_level(kind: str, level: str) -> None:
    """A hospital has a hospital level (community, level 1–3); a pharmacy has the level pharmacy. Said in words."""
    hospital_zh = "、".join(f"{LEVEL_ZH[lv]}（{lv}）" for lv in HOSPITAL_LEVELS)
    if level not in LEVELS:
        raise InputError("level", "invalid_level", f"级别应为医院的{hospital_zh}之一，或药店的“药店”（pharmacy）",
                         "the level must be a hospital's community, level1, level2 or level3, or pharmacy for a pharmacy")
    if kind == "pharmacy" and level != "pharmacy":
        raise InputError("level", "invalid_level",
                         f"药店的级别应为“药店”（pharmacy）；“{LEVEL_ZH[level]}”（{level}）是医院的级别，药店不能选",
                         f"a pharmacy's level must be pharmacy; {level} is a hospital's level")
    if kind == "hospital" and level == "pharmacy":
        raise InputError("level", "invalid_level", f"医院的级别应为{hospital_zh}之一；“药店”（pharmacy）只用于药店",
                         "a hospital's level must be community, level1, level2 or level3; pharmacy is only for a pharmacy")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def admit(conn: Connection, now: datetime, *, code: str, region: str, name: str, kind: str, level: str,
          actor: str, secret: str | None = None) -> tuple[Institution, str]:
    """Admit an institution; returns it and its API secret (shown once, stored hashed)."""
    if not (code.isalnum() and 6 <= len(code) <= 20):
        raise InputError("code", "invalid_code", "机构编码应为6–20位字母或数字", "must be 6–20 letters or digits (fixmedins_code)")
    name = check_name(name, max_length=200, noun_zh="名称")  # shown on every receipt and list: nothing invisible in it
    require_known_region(region)
    if kind not in ("hospital", "pharmacy"):
        raise InputError("kind", "invalid_choice", "机构类型应为 hospital 或 pharmacy", "must be hospital or pharmacy")
    _check_level(kind, level)
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


def bad_credentials(field: str = "Authorization") -> Unauthorized:
    return Unauthorized(field, "bad_credentials", "机构凭证无效", "invalid institution credentials")


def with_secret(conn: Connection, code: str, secret: str) -> Institution | None:
    """The institution whose credential this is, whatever its status; None for a wrong code or secret."""
    r = conn.execute(select(I).where(I.c.id == code)).first()
    if r is None or not hmac.compare_digest(r.secret_hash, secret_hash(secret)):
        return None
    return _row(r)


def authenticate(conn: Connection, code: str, secret: str) -> Institution:
    inst = with_secret(conn, code, secret)
    if inst is None or inst.status != "active":
        raise bad_credentials()
    return inst


def list_all(conn: Connection, region: str | None = None) -> list[Institution]:
    q = select(I).order_by(I.c.region, I.c.id)
    if region:
        q = q.where(I.c.region == region)
    return [_row(r) for r in conn.execute(q).all()]
