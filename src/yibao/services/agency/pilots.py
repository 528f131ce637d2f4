"""Pilot governance (seed 002; docs/governance.md): an institution applies to its agency to take mobile-mode payments
(one-code, face, mobile, credit) with an implementation plan and a security risk-assessment report (and who assessed
it); a pooling region applies to the province likewise. The agency's review approves (an agreement: backstop
liability, the recourse clause with the payment institutions, a one-year term) or rejects with a reason. An agreement
is renewed for another year, suspended and restored by the agency. Every step is audited.

`require` is the one check the payment services make before a mobile-mode payment starts (services/payments: onecode,
face, bills, and credit at the hold): an institution without an agreement in force — none, expired, suspended, not
covering the mode — is refused with the agreement named, while counter settlement goes on. Owns pilot_applications,
pilot_documents, pilot_agreements."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from yibao.domain import files as file_rules
from yibao.domain import pilot as rules
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.pilot import Agreement
from yibao.formats.fsi import beijing
from yibao.formats.timefmt import iso_utc
from yibao.services.agency import institutions
from yibao.services.agency.policies import require_known_region
from yibao.services.books import audit
from yibao.store.db import Retry
from yibao.store.rows import one_or
from yibao.store.sql import Sql, as_date
from yibao.store.tables import pilot_agreements as AG
from yibao.store.tables import pilot_applications as AP
from yibao.store.tables import pilot_documents as D

APPLICANTS = ("institution", "region")
DOCUMENT_KINDS = {"plan": ("实施方案", "implementation plan"), "risk_report": ("安全风险评估报告", "security risk-assessment report")}
DEFAULT_RECOURSE = ("因移动支付造成医保基金损失的，由本机构先行承担兜底责任，并依据与支付机构的协议向其追偿 "
                    "The institution bears fund losses caused by mobile payment first and recovers them from the payment institution "
                    "under their agreement")


def today(now: datetime) -> date:
    return beijing(now).date()


def _agreement(r: Any) -> Agreement:
    return Agreement(r.id, r.applicant, r.institution_id, r.region, tuple(r.modes.split(",")), r.starts_on, r.expires_on, r.status,
                     r.status_reason)


def _new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(8).upper()}"


def _holder(applicant: str, institution_id: str | None, region: str) -> Any:
    return AG.c.institution_id == institution_id if applicant == "institution" else (AG.c.region == region) & (AG.c.applicant == "region")


_INSTITUTION_AGREEMENTS = Sql("""SELECT id, applicant, institution_id, region, modes, starts_on, expires_on, status, status_reason
                                  FROM pilot_agreements WHERE institution_id = :institution_id AND status IN ('active', 'suspended')
                                  ORDER BY starts_on DESC, created_at DESC""")


def in_force(conn: Connection, day: date, *, institution_id: str | None = None, region: str | None = None) -> Agreement | None:
    """The agreement that governs ``day``: the latest one begun by then (active, suspended, or expired — the refusal
    names it); else one not yet begun; None: never any."""
    if institution_id is not None:  # every payment asks this: prepared SQL (store/sql.py), not Core
        rows = [r._replace(starts_on=as_date(r.starts_on), expires_on=as_date(r.expires_on))
                for r in _INSTITUTION_AGREEMENTS(conn, {"institution_id": institution_id})]
    else:
        rows = conn.execute(select(AG).where(AG.c.status.in_(("active", "suspended")), AG.c.applicant == "region", AG.c.region == region)
                            .order_by(AG.c.starts_on.desc(), AG.c.created_at.desc())).all()
    begun = [r for r in rows if r.starts_on <= day]
    return _agreement(begun[0] if begun else rows[-1]) if rows else None


def in_force_all(conn: Connection, day: date) -> tuple[dict[str, Agreement], dict[str, Agreement]]:
    """`in_force` for every holder at once (the rollout's read model): per institution, and per region (region agreements)."""
    rows = conn.execute(select(AG).where(AG.c.status.in_(("active", "suspended"))).order_by(AG.c.starts_on.desc(), AG.c.created_at.desc())).all()
    held: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        held.setdefault(("institution", r.institution_id) if r.applicant == "institution" else ("region", r.region), []).append(r)
    by_institution: dict[str, Agreement] = {}
    by_region: dict[str, Agreement] = {}
    for (kind, key), mine in held.items():
        begun = [r for r in mine if r.starts_on <= day]
        (by_institution if kind == "institution" else by_region)[key] = _agreement(begun[0] if begun else mine[-1])
    return by_institution, by_region


def require(conn: Connection, now: datetime, *, institution_id: str, mode: str) -> None:
    """Raise the refusal (Forbidden, naming the agreement) unless the institution may take a ``mode`` payment today."""
    day = today(now)
    refused = rules.refusal(in_force(conn, day, institution_id=institution_id), mode, day, institution_id)
    if refused is not None:
        raise refused


# ---- applications ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Document:
    kind: str
    filename: str
    content: bytes


def _check_document(doc: Document, field: str) -> None:
    file_rules.check_filename(doc.filename, f"{field}.filename")
    if not doc.content:
        zh, en = DOCUMENT_KINDS[doc.kind]
        raise InputError(field, "required", f"请上传{zh}", f"the {en} is required")
    if len(doc.content) > file_rules.MAX_BYTES:
        raise InputError(field, "file_too_large", f"文件超过 {file_rules.MAX_BYTES // (1024 * 1024)} MB 上限",
                         f"the file is larger than {file_rules.MAX_BYTES // (1024 * 1024)} MB")


def _open_application(conn: Connection, applicant: str, institution_id: str | None, region: str) -> str | None:
    """The applicant's submitted application still under review, if any (ux_pilot_applications_open_* hold it to one)."""
    q = select(AP.c.id).where(AP.c.status == "submitted", AP.c.applicant == applicant)
    q = q.where(AP.c.institution_id == institution_id) if applicant == "institution" else q.where(AP.c.region == region)
    return conn.execute(q).scalar()


def apply(conn: Connection, now: datetime, *, applicant: str, institution_id: str | None, region: str | None, modes: object,
          plan: Document, risk_report: Document, assessed_by: str, actor: str) -> dict[str, Any]:
    """An application, its two documents kept with it. One open (submitted) application per applicant at a time."""
    if applicant not in APPLICANTS:
        raise InputError("applicant", "invalid_choice", "申请方应为 institution（定点机构）或 region（统筹区）", "must be institution or region")
    if applicant == "institution":
        inst = institutions.get(conn, institution_id or "")
        if inst is None:
            raise NotFound("institution_id", "not_found", "定点机构不存在", "no such institution")
        region = inst.region
    else:
        if not region:
            raise InputError("region", "required", "缺少必填字段：统筹区", "the region is required")
        require_known_region(region)
        institution_id = None
    assert region is not None
    parsed = rules.parse_modes(modes)
    if not isinstance(assessed_by, str) or not assessed_by.strip() or len(assessed_by) > 100:
        raise InputError("assessed_by", "required", "请填写风险评估的实施方（1–100 个字符）", "say who made the risk assessment (1–100 characters)")
    for doc, field in ((plan, "plan"), (risk_report, "risk_report")):
        _check_document(doc, field)
    open_one = _open_application(conn, applicant, institution_id, region)
    if open_one is not None:
        raise Conflict("applicant", "application_open", f"已有待审核的申请 {open_one}", f"application {open_one} is still under review")
    app_id = _new_id("PAP")
    try:
        conn.execute(AP.insert().values(id=app_id, applicant=applicant, institution_id=institution_id, region=region, modes=",".join(parsed),
                                        assessed_by=assessed_by.strip(), status="submitted", submitted_by=actor[:60], created_at=now))
    except IntegrityError:  # a concurrent application of the same applicant won (ux_pilot_applications_open_*): run again, refused above
        raise Retry() from None
    for doc in (plan, risk_report):
        conn.execute(D.insert().values(id=_new_id("PD"), application_id=app_id, kind=doc.kind, filename=doc.filename, content=doc.content,
                                       size=len(doc.content), sha256=hashlib.sha256(doc.content).hexdigest(), created_at=now))
    audit.append(conn, region=region, actor=actor, action="pilot.apply", subject=app_id,
                 detail={"applicant": applicant, "institution": institution_id, "modes": list(parsed), "assessed_by": assessed_by.strip(),
                         "documents": {d.kind: hashlib.sha256(d.content).hexdigest() for d in (plan, risk_report)}}, now=now)
    return application(conn, app_id)


def _application_row(conn: Connection, app_id: str, *, lock: bool = False) -> Any:
    return one_or(conn, AP, AP.c.id == app_id, lock=lock,
                  missing=NotFound("application_id", "not_found", "试点申请不存在", "no such pilot application"))


def _application_view(r: Any, docs: list[Any]) -> dict[str, Any]:
    return {"id": r.id, "applicant": r.applicant, "institution_id": r.institution_id, "region": r.region, "modes": r.modes.split(","),
            "assessed_by": r.assessed_by, "status": r.status, "submitted_by": r.submitted_by, "submitted_at": iso_utc(r.created_at),
            "reviewed_by": r.reviewed_by, "reviewed_at": iso_utc(r.reviewed_at) if r.reviewed_at else None, "review_note": r.review_note,
            "documents": [{"id": d.id, "kind": d.kind, "filename": d.filename, "size": d.size, "sha256": d.sha256} for d in docs]}


def application(conn: Connection, app_id: str) -> dict[str, Any]:
    r = _application_row(conn, app_id)
    docs = conn.execute(select(D.c.id, D.c.kind, D.c.filename, D.c.size, D.c.sha256).where(D.c.application_id == app_id).order_by(D.c.kind)).all()
    return _application_view(r, list(docs))


def document(conn: Connection, document_id: str) -> tuple[str, bytes]:
    r = conn.execute(select(D.c.filename, D.c.content).where(D.c.id == document_id)).first()
    if r is None:
        raise NotFound("document_id", "not_found", "文件不存在", "no such document")
    return r.filename, bytes(r.content)


def _insert_agreement(conn: Connection, now: datetime, *, applicant: str, institution_id: str | None, region: str, application_id: str | None,
                      renews: str | None, modes: tuple[str, ...], recourse: str, starts_on: date, actor: str) -> str:
    agreement_id = _new_id("PA")
    conn.execute(AG.insert().values(id=agreement_id, applicant=applicant, institution_id=institution_id, region=region,
                                    application_id=application_id, renews=renews, modes=",".join(modes), backstop_liability=True,
                                    recourse=recourse, starts_on=starts_on, expires_on=rules.term(starts_on), status="active",
                                    status_reason=None, signed_by=actor[:60], updated_at=now, created_at=now))
    return agreement_id


def review(conn: Connection, now: datetime, *, application_id: str, approve: bool, note: str | None, actor: str,
           recourse: str | None = None) -> dict[str, Any]:
    """Approve (the agreement is signed: backstop liability, the recourse clause, one year from today; an agreement the
    applicant held before is superseded) or reject (the reason is required). A second review of the same
    application is refused."""
    r = _application_row(conn, application_id, lock=True)
    if r.status != "submitted":
        raise Conflict("application_id", "already_reviewed", f"该申请已审核（{r.status}）", f"the application was already reviewed ({r.status})")
    note = (note or "").strip() or None
    if not approve and note is None:
        raise InputError("note", "required", "驳回须说明理由", "a rejection must say why")
    if note is not None and len(note) > 300:
        raise InputError("note", "too_long", "审核意见最多 300 个字符", "at most 300 characters")
    clause = (recourse or "").strip() or DEFAULT_RECOURSE
    if len(clause) > 300:
        raise InputError("recourse", "too_long", "追偿条款最多 300 个字符", "at most 300 characters")
    if r.applicant == "institution" and (inst := institutions.get(conn, r.institution_id)) is not None and inst.status != "active":
        raise Conflict("application_id", "institution_not_active", "该机构已停用，不能签订试点协议", "the institution is not active")
    conn.execute(update(AP).where(AP.c.id == r.id).values(status="approved" if approve else "rejected", reviewed_by=actor[:60], reviewed_at=now,
                                                          review_note=note))
    agreement_id = None
    if approve:
        conn.execute(update(AG).where(_holder(r.applicant, r.institution_id, r.region), AG.c.status.in_(("active", "suspended")))
                     .values(status="superseded", status_reason=f"superseded by application {r.id}", updated_at=now))
        agreement_id = _insert_agreement(conn, now, applicant=r.applicant, institution_id=r.institution_id, region=r.region, application_id=r.id,
                                         renews=None, modes=tuple(r.modes.split(",")), recourse=clause, starts_on=today(now), actor=actor)
    audit.append(conn, region=r.region, actor=actor, action="pilot.approve" if approve else "pilot.reject", subject=r.id,
                 detail={"agreement": agreement_id, "note": note}, now=now)
    out = application(conn, r.id)
    out["agreement"] = agreement(conn, agreement_id) if agreement_id else None
    return out


# ---- agreements --------------------------------------------------------------------------------

def _agreement_row(conn: Connection, agreement_id: str, *, lock: bool = False) -> Any:
    return one_or(conn, AG, AG.c.id == agreement_id, lock=lock,
                  missing=NotFound("agreement_id", "not_found", "试点协议不存在", "no such pilot agreement"))


def _agreement_view(r: Any, day: date) -> dict[str, Any]:
    a = _agreement(r)
    return {"id": r.id, "applicant": r.applicant, "institution_id": r.institution_id, "region": r.region, "modes": list(a.modes),
            "backstop_liability": r.backstop_liability, "recourse": r.recourse, "starts_on": r.starts_on.isoformat(),
            "expires_on": r.expires_on.isoformat(), "status": r.status, "state": a.state_on(day), "status_reason": r.status_reason,
            "application_id": r.application_id, "renews": r.renews, "signed_by": r.signed_by, "days_left": (r.expires_on - day).days}


def agreement(conn: Connection, agreement_id: str, day: date | None = None) -> dict[str, Any]:
    r = _agreement_row(conn, agreement_id)
    return _agreement_view(r, day or r.starts_on)


def record_signed(conn: Connection, now: datetime, *, institution_id: str, modes: object, actor: str, recourse: str | None = None) -> dict[str, Any]:
    """An agreement signed outside the platform (on paper, before the platform kept applications): recorded without an
    application, for a year from today, superseding any other; audited as such."""
    inst = institutions.get(conn, institution_id)
    if inst is None:
        raise NotFound("institution_id", "not_found", "定点机构不存在", "no such institution")
    parsed = rules.parse_modes(modes)
    conn.execute(update(AG).where(AG.c.institution_id == institution_id, AG.c.status.in_(("active", "suspended")))
                 .values(status="superseded", status_reason="superseded by an agreement recorded", updated_at=now))
    agreement_id = _insert_agreement(conn, now, applicant="institution", institution_id=institution_id, region=inst.region, application_id=None,
                                     renews=None, modes=parsed, recourse=(recourse or "").strip()[:300] or DEFAULT_RECOURSE, starts_on=today(now),
                                     actor=actor)
    audit.append(conn, region=inst.region, actor=actor, action="pilot.record", subject=agreement_id,
                 detail={"institution": institution_id, "modes": list(parsed)}, now=now)
    return agreement(conn, agreement_id, today(now))


def renew(conn: Connection, now: datetime, *, agreement_id: str, actor: str) -> dict[str, Any]:
    """Another year on the same terms: from the day after it ends (or today, if it has ended), allowed from
    `RENEW_WINDOW` before its end; once only."""
    r = _agreement_row(conn, agreement_id, lock=True)
    day = today(now)
    if r.status != "active":
        raise Conflict("agreement_id", f"agreement_{r.status}", f"协议状态为 {r.status}，不能续签", f"a {r.status} agreement cannot be renewed")
    if day < r.expires_on - rules.RENEW_WINDOW:
        raise Conflict("agreement_id", "too_early_to_renew", f"协议于 {r.expires_on.isoformat()} 到期，到期前 {rules.RENEW_WINDOW.days} 天内方可续签",
                       f"the agreement ends {r.expires_on.isoformat()}: it can be renewed from {rules.RENEW_WINDOW.days} days before")
    if conn.execute(select(AG.c.id).where(AG.c.renews == r.id)).first() is not None:
        raise Conflict("agreement_id", "already_renewed", "该协议已续签", "the agreement was already renewed")
    starts = max(day, r.expires_on + timedelta(days=1))
    new_id = _insert_agreement(conn, now, applicant=r.applicant, institution_id=r.institution_id, region=r.region, application_id=r.application_id,
                               renews=r.id, modes=tuple(r.modes.split(",")), recourse=r.recourse, starts_on=starts, actor=actor)
    audit.append(conn, region=r.region, actor=actor, action="pilot.renew", subject=new_id, detail={"renews": r.id, "starts_on": starts.isoformat()},
                 now=now)
    return agreement(conn, new_id, day)


def _set_status(conn: Connection, now: datetime, *, institution_id: str | None, region: str | None, to: str, reason: str | None,
                actor: str) -> dict[str, Any]:
    """Suspend or restore a holder's pilot: an institution's, or a region's own (``region`` with no institution)."""
    if (institution_id is None) == (region is None):
        raise InputError("institution_id", "required", "应指定机构或统筹区之一", "name either an institution or a region")
    day = today(now)
    field = "institution_id" if institution_id is not None else "region"
    current = in_force(conn, day, institution_id=institution_id, region=region)
    if current is None:
        raise NotFound(field, "no_pilot_agreement", "该机构没有试点协议" if institution_id is not None else "该统筹区没有试点协议",
                       "the institution has no pilot agreement" if institution_id is not None else "the region has no pilot agreement")
    frm = "active" if to == "suspended" else "suspended"
    if current.status != frm:
        raise Conflict(field, f"agreement_already_{current.status}", f"试点协议 {current.id} 当前为 {current.status}",
                       f"pilot agreement {current.id} is {current.status}")
    if to == "suspended" and not (reason or "").strip():
        raise InputError("reason", "required", "暂停须说明原因", "a suspension must say why")
    # The one in force (even past its end: suspended, a renewal must not bring it back unnoticed) and the renewal waiting
    # to begin: a suspension is of the holder's pilot, not of one paper.
    holder = _holder("institution" if institution_id is not None else "region", institution_id, region or "")
    conn.execute(update(AG).where(holder, AG.c.status == frm, (AG.c.id == current.id) | (AG.c.starts_on > day))
                 .values(status=to, status_reason=(reason or "").strip()[:300] or None, updated_at=now))
    inst = institutions.get(conn, institution_id) if institution_id is not None else None
    audit.append(conn, region=inst.region if inst else current.region, actor=actor, action="pilot.suspend" if to == "suspended" else "pilot.restore",
                 subject=current.id, detail={"institution": institution_id, "reason": reason} if region is None else {"region": region, "reason": reason},
                 now=now)
    return agreement(conn, current.id, day)


def suspend(conn: Connection, now: datetime, *, institution_id: str | None = None, region: str | None = None, reason: str,
            actor: str) -> dict[str, Any]:
    """Suspend an institution's pilot, or a region's own (its agreement with the province)."""
    return _set_status(conn, now, institution_id=institution_id, region=region, to="suspended", reason=reason, actor=actor)


def restore(conn: Connection, now: datetime, *, institution_id: str | None = None, region: str | None = None, actor: str) -> dict[str, Any]:
    return _set_status(conn, now, institution_id=institution_id, region=region, to="active", reason=None, actor=actor)


def overview(conn: Connection, now: datetime, region: str | None = None) -> dict[str, Any]:
    """Applications (open first) and agreements (the one in force per holder first), for the operators' page and API."""
    day = today(now)
    apps = select(AP).order_by((AP.c.status != "submitted"), AP.c.created_at.desc())
    ags = select(AG).order_by(AG.c.expires_on)
    if region:
        apps, ags = apps.where(AP.c.region == region), ags.where(AG.c.region == region)
    app_rows = conn.execute(apps.limit(200)).all()
    docs: dict[str, list[Any]] = {}
    if app_rows:
        for d in conn.execute(select(D.c.id, D.c.application_id, D.c.kind, D.c.filename, D.c.size, D.c.sha256)
                              .where(D.c.application_id.in_([r.id for r in app_rows])).order_by(D.c.kind)):
            docs.setdefault(d.application_id, []).append(d)
    return {"day": day.isoformat(), "applications": [_application_view(r, docs.get(r.id, [])) for r in app_rows],
            "agreements": [_agreement_view(r, day) for r in conn.execute(ags.limit(500)).all()]}
