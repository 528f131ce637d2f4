"""Payment institutions (移动支付机构): the agency's admission records.

Seed 002: the platform is open to every legal payment institution and designates none; the agency
admits (准入) and suspends. Holders bind their e-cards to admitted ones (people/bindings.py); how the
platform reaches each one is its connector configuration (agency/connectors.py).
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
from yibao.domain.names import check_name
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.policies import require_known_region
from yibao.services.books import audit
from yibao.store.rows import one_or
from yibao.store.tables import audit_log as L
from yibao.store.tables import channel_configs as CC
from yibao.store.tables import payment_institutions as PI

KINDS = ("wallet", "bank")
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
    r = one_or(conn, PI, PI.c.id == pi_id, lock=lock)
    return _row(r) if r else None


def check_details(*, pi_id: str, region: str, name: str, kind: str, admission_ref: str | None) -> str:
    """The admission's fields, each refused by name; the name as it will be stored."""
    if not _ID.match(pi_id or ""):
        raise InputError("id", "invalid_id", "机构标识应为2–40位字母、数字、_ . -", "must be 2–40 letters, digits, _ . or -")
    require_known_region(region)
    if kind not in KINDS:
        raise InputError("kind", "invalid_choice", "类型应为 wallet 或 bank", "must be wallet or bank")
    name = check_name(name, max_length=200, noun_zh="名称")
    if admission_ref is not None and (not admission_ref.strip() or len(admission_ref) > 80):
        raise InputError("admission_ref", "invalid_text", "准入文号应为1–80个字符", "must be 1–80 characters")
    return name


def register(conn: Connection, now: datetime, *, pi_id: str, region: str, name: str, kind: str, actor: str) -> PaymentInstitution:
    """Record an institution the agency is about to admit (status ``registered``, 已登记待接入): its connector can then be
    configured and tested; nobody can bind it until it is admitted (`agency.admission`). An institution already on
    record is returned as it is, if it is in the same region."""
    name = check_details(pi_id=pi_id, region=region, name=name, kind=kind, admission_ref=None)
    existing = get(conn, pi_id, lock=True)
    if existing is not None:
        if existing.region != region:
            raise Conflict("region", "region_differs", "该支付机构属于另一个统筹区", f"payment institution {pi_id} belongs to region {existing.region}")
        return existing
    conn.execute(PI.insert().values(id=pi_id, region=region, name=name.strip(), kind=kind, status="registered", created_at=now))
    audit.append(conn, region=region, actor=actor, action="payment_institution.register", subject=pi_id, detail={"kind": kind}, now=now)
    return get(conn, pi_id)  # type: ignore[return-value]


def admit(conn: Connection, now: datetime, *, pi_id: str, region: str, name: str, kind: str, admission_ref: str,
          actor: str) -> PaymentInstitution:
    """Record the agency's admission decision; a suspended (or registered) institution is admitted by a new decision.

    The record only: the pages and the API admit through `agency.admission`, which first tests the institution's
    connector (an institution nobody can pay through is not admitted); the demo's and the tests' worlds record it
    directly and configure the connector in the same start-up."""
    name = check_details(pi_id=pi_id, region=region, name=name, kind=kind, admission_ref=admission_ref)
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


def list_admitted(conn: Connection, region: str, *, connected: bool = False) -> list[PaymentInstitution]:
    """The region's admitted institutions; ``connected``: only those the platform has a connector for (what a holder is
    offered to bind)."""
    found = list_all(conn, region, "admitted")
    if not connected:
        return found
    configured = set(conn.execute(select(CC.c.payment_institution_id).where(CC.c.region == region)).scalars())
    return [pi for pi in found if pi.id in configured]
