"""Payment institutions (移动支付机构): the agency's admission records, and e-card bindings to them.

Seed 002: the platform is open to every legal payment institution and designates none; the
agency admits (准入) and suspends. A holder binds their active e-card to any admitted institution
of their region — one or several — and keeps exactly one default among the bound ones. Each
binding carries a password-free limit: cash up to it is collected without asking the holder
again; it ranges from 0.00 (always ask; the default) to MAX_PASSWORD_FREE.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.policies import require_known_region
from yibao.services.books import audit
from yibao.services.people import cards
from yibao.store.tables import audit_log as L
from yibao.store.tables import ecard_bindings as B
from yibao.store.tables import payment_institutions as PI
from yibao.store.tables import persons as P

KINDS = ("wallet", "bank")
MAX_PASSWORD_FREE = 200_000  # fen: 2000.00 yuan
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,39}$")


@dataclass(frozen=True)
class PaymentInstitution:
    id: str
    region: str
    name: str
    kind: str
    status: str
    admitted_at: datetime | None
    admission_ref: str | None


def _row(r) -> PaymentInstitution:  # noqa: ANN001
    return PaymentInstitution(r.id, r.region, r.name, r.kind, r.status, r.admitted_at, r.admission_ref)


def view(pi: PaymentInstitution) -> dict[str, Any]:
    return {"id": pi.id, "region": pi.region, "name": pi.name, "kind": pi.kind, "status": pi.status,
            "admitted_at": iso_utc(pi.admitted_at), "admission_ref": pi.admission_ref}


def get(conn: Connection, pi_id: str, *, lock: bool = False) -> PaymentInstitution | None:
    q = select(PI).where(PI.c.id == pi_id)
    r = conn.execute(q.with_for_update() if lock else q).first()
    return _row(r) if r else None


def admit(conn: Connection, now: datetime, *, pi_id: str, region: str, name: str, kind: str, admission_ref: str,
          actor: str) -> PaymentInstitution:
    """Record the agency's admission decision; a suspended institution is admitted again by a new decision."""
    if not _ID.match(pi_id or ""):
        raise InputError("id", "invalid_id", "机构标识应为2–40位字母、数字、_ . -", "must be 2–40 letters, digits, _ . or -")
    require_known_region(region)
    if kind not in KINDS:
        raise InputError("kind", "invalid_choice", "类型应为 wallet 或 bank", "must be wallet or bank")
    if not name.strip() or len(name) > 200:
        raise InputError("name", "invalid_text", "名称应为1–200个字符", "must be 1–200 characters")
    if not admission_ref.strip() or len(admission_ref) > 80:
        raise InputError("admission_ref", "invalid_text", "准入文号应为1–80个字符", "must be 1–80 characters")
    existing = get(conn, pi_id, lock=True)
    if existing is None:
        conn.execute(PI.insert().values(id=pi_id, region=region, name=name.strip(), kind=kind, status="admitted", admitted_at=now,
                                        admission_ref=admission_ref.strip(), created_at=now))
    elif existing.status == "admitted":
        raise Conflict("id", "already_admitted", f"支付机构 {pi_id} 已准入", f"payment institution {pi_id} is already admitted")
    elif existing.region != region:
        raise Conflict("region", "region_differs", "该支付机构属于另一个统筹区", f"payment institution {pi_id} belongs to region {existing.region}")
    else:
        conn.execute(update(PI).where(PI.c.id == pi_id).values(name=name.strip(), kind=kind, status="admitted", admitted_at=now,
                                                                admission_ref=admission_ref.strip()))
    audit.append(conn, region=region, actor=actor, action="payment_institution.admit", subject=pi_id,
                 detail={"admission_ref": admission_ref.strip(), "kind": kind}, now=now)
    return get(conn, pi_id)  # type: ignore[return-value]


def suspend(conn: Connection, now: datetime, *, pi_id: str, reason: str | None, actor: str) -> PaymentInstitution:
    """Stop new bindings to the institution; existing bindings stay on record. The reason (optional over the API)
    is kept in the audit log with the time (`suspensions`)."""
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 200:
        raise InputError("reason", "invalid_text", "暂停原因应不超过200个字符", "must be at most 200 characters")
    pi = get(conn, pi_id, lock=True)
    if pi is None:
        raise NotFound("id", "not_found", "支付机构不存在", "payment institution not found")
    if pi.status != "admitted":
        raise Conflict("id", "not_admitted", "该支付机构未处于准入状态", f"the payment institution is {pi.status}")
    conn.execute(update(PI).where(PI.c.id == pi_id).values(status="suspended"))
    audit.append(conn, region=pi.region, actor=actor, action="payment_institution.suspend", subject=pi_id,
                 detail={"reason": reason or ""}, now=now)
    return get(conn, pi_id)  # type: ignore[return-value]


@dataclass(frozen=True)
class Suspension:
    at: datetime
    reason: str  # "" when none was given (the admin API takes it as optional)
    actor: str


def suspensions(conn: Connection, institutions: list[PaymentInstitution]) -> dict[str, Suspension]:
    """When, why and by whom each suspended institution of ``institutions`` was last suspended: from the audit log,
    where `suspend` records the decision (the admission record keeps only the admission)."""
    suspended = {pi.id: pi.region for pi in institutions if pi.status == "suspended"}
    if not suspended:
        return {}
    rows = conn.execute(select(L.c.region, L.c.subject, L.c.at, L.c.actor, L.c.detail)
                        .where(L.c.action == "payment_institution.suspend", L.c.subject.in_(sorted(suspended)))
                        .order_by(L.c.at, L.c.seq)).all()
    out: dict[str, Suspension] = {}
    for r in rows:  # oldest first: the latest suspension wins
        if suspended[r.subject] == r.region:
            at = r.at.replace(tzinfo=timezone.utc) if r.at.tzinfo is None else r.at
            out[r.subject] = Suspension(at, str(json.loads(r.detail).get("reason") or ""), r.actor)
    return out


def list_all(conn: Connection, region: str | None = None, status: str | None = None) -> list[PaymentInstitution]:
    q = select(PI).order_by(PI.c.region, PI.c.id)
    if region:
        q = q.where(PI.c.region == region)
    if status:
        q = q.where(PI.c.status == status)
    return [_row(r) for r in conn.execute(q).all()]


def list_admitted(conn: Connection, region: str) -> list[PaymentInstitution]:
    return list_all(conn, region, "admitted")


# ---- bindings ----------------------------------------------------------------------------------

def _holder_ecard(conn: Connection, holder_id: str) -> cards.Card:
    """The holder's active e-card, locked: binding changes of one card are serialised on it."""
    card = cards.active_ecard(conn, holder_id, lock=True)
    if card is None:
        raise Conflict("ecard", "no_active_ecard", "请先开通电子社保卡", "open an electronic social-security card first")
    return card


def _check_limit(limit: int) -> None:
    if not 0 <= limit <= MAX_PASSWORD_FREE:
        raise InputError("password_free_limit", "limit_out_of_range", f"免密额度应在0.00至{format_yuan(MAX_PASSWORD_FREE)}元之间",
                         f"must be between 0.00 and {format_yuan(MAX_PASSWORD_FREE)} yuan")


def _binding(conn: Connection, card_id: str, pi_id: str) -> Any:
    return conn.execute(select(B).where(B.c.card_id == card_id, B.c.payment_institution_id == pi_id)).first()


def _bound(conn: Connection, card_id: str, pi_id: str) -> Any:
    row = _binding(conn, card_id, pi_id)
    if row is None or row.status != "bound":
        raise NotFound("payment_institution_id", "not_bound", "未绑定该支付机构", "the e-card is not bound to this payment institution")
    return row


def _make_default(conn: Connection, card_id: str, pi_id: str, now: datetime) -> None:
    conn.execute(update(B).where(B.c.card_id == card_id, B.c.is_default.is_(True), B.c.payment_institution_id != pi_id)
                 .values(is_default=False, updated_at=now))
    conn.execute(update(B).where(B.c.card_id == card_id, B.c.payment_institution_id == pi_id).values(is_default=True, updated_at=now))


def _audit(conn: Connection, card: cards.Card, now: datetime, actor: str, action: str, pi_id: str, **detail: Any) -> None:
    audit.append(conn, region=card.region, actor=actor, action=action, subject=card.person_id,
                 detail={"card_id": card.id, "payment_institution_id": pi_id, **detail}, now=now)


def bind(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, password_free_limit: int = 0, make_default: bool = False,
         actor: str) -> list[dict[str, Any]]:
    """Bind the holder's e-card to an admitted institution of their region; the first binding is the default."""
    _check_limit(password_free_limit)
    card = _holder_ecard(conn, holder_id)
    pi = get(conn, pi_id)
    if pi is None or pi.region != card.region:
        raise NotFound("payment_institution_id", "not_found", "本统筹区没有该支付机构", "no such payment institution in your region")
    if pi.status != "admitted":
        raise Conflict("payment_institution_id", "not_admitted", "该支付机构未准入或已暂停，不能绑定",
                       "this payment institution is not admitted (or suspended); it cannot be bound")
    row = _binding(conn, card.id, pi_id)
    if row is not None and row.status == "bound":
        raise Conflict("payment_institution_id", "already_bound", "已绑定该支付机构", "the e-card is already bound to this payment institution")
    first = conn.execute(select(B.c.id).where(B.c.card_id == card.id, B.c.status == "bound")).first() is None
    values = dict(status="bound", is_default=False, password_free_limit=password_free_limit, updated_at=now)
    if row is None:
        conn.execute(B.insert().values(region=card.region, card_id=card.id, payment_institution_id=pi_id, created_at=now, **values))
    else:
        conn.execute(update(B).where(B.c.id == row.id).values(**values))
    if first or make_default:
        _make_default(conn, card.id, pi_id, now)
    _audit(conn, card, now, actor, "ecard.bind", pi_id, password_free_limit=password_free_limit)
    return bindings(conn, holder_id)


def set_default(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> list[dict[str, Any]]:
    card = _holder_ecard(conn, holder_id)
    _bound(conn, card.id, pi_id)
    _make_default(conn, card.id, pi_id, now)
    _audit(conn, card, now, actor, "ecard.default", pi_id)
    return bindings(conn, holder_id)


def set_limit(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, password_free_limit: int, actor: str) -> list[dict[str, Any]]:
    _check_limit(password_free_limit)
    card = _holder_ecard(conn, holder_id)
    row = _bound(conn, card.id, pi_id)
    conn.execute(update(B).where(B.c.id == row.id).values(password_free_limit=password_free_limit, updated_at=now))
    _audit(conn, card, now, actor, "ecard.limit", pi_id, password_free_limit=password_free_limit)
    return bindings(conn, holder_id)


def unbind(conn: Connection, now: datetime, *, holder_id: str, pi_id: str, actor: str) -> list[dict[str, Any]]:
    """Unbind; if it was the default, the earliest remaining binding becomes the default."""
    card = _holder_ecard(conn, holder_id)
    row = _bound(conn, card.id, pi_id)
    conn.execute(update(B).where(B.c.id == row.id).values(status="unbound", is_default=False, updated_at=now))
    if row.is_default:
        successor = conn.execute(select(B.c.payment_institution_id).where(B.c.card_id == card.id, B.c.status == "bound")
                                 .order_by(B.c.created_at, B.c.id)).first()
        if successor is not None:
            _make_default(conn, card.id, successor.payment_institution_id, now)
    _audit(conn, card, now, actor, "ecard.unbind", pi_id)
    return bindings(conn, holder_id)


def bindings(conn: Connection, holder_id: str) -> list[dict[str, Any]]:
    """The holder's current bindings (of the active e-card), default first."""
    card = cards.active_ecard(conn, holder_id)
    if card is None:
        return []
    rows = conn.execute(select(B, PI.c.name, PI.c.kind, PI.c.status.label("institution_status"))
                        .join(PI, PI.c.id == B.c.payment_institution_id)
                        .where(B.c.card_id == card.id, B.c.status == "bound").order_by(B.c.is_default.desc(), B.c.created_at, B.c.id)).all()
    return [{"payment_institution_id": r.payment_institution_id, "name": r.name, "kind": r.kind, "institution_status": r.institution_status,
             "default": r.is_default, "password_free_limit": format_yuan(r.password_free_limit), "updated_at": iso_utc(r.updated_at)}
            for r in rows]


def holder_region(conn: Connection, holder_id: str) -> str:
    row = conn.execute(select(P.c.region).where(P.c.id == holder_id)).first()
    if row is None:
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return row.region
