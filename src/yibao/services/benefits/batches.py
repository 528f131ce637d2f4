"""A batch from another agency: recorded row by row (every refusal named by its row), submitted, summarised; the
holder's list of their credits.

Not in the ledger: a subsidy is the paying agency's money passing from its account through the card's bank to the
holder's card account; it never enters a fund, a personal account or any account the platform keeps. The platform
records the instructions it gave and what the bank answered (benefit_credits), and the audit trail vouches for each
step (docs/benefits.md).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from yibao.crypto.pii import Keyring
from yibao.domain import benefits as rules
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.books import audit
from yibao.services.people import card_accounts
from yibao.services.people import persons as people
from yibao.store.db import Retry
from yibao.store.tables import benefit_batches as B
from yibao.store.tables import benefit_credits as CR


def _text(value: str, field: str, what_zh: str, what_en: str, limit: int) -> str:
    text = (value or "").strip()
    if not text or len(text) > limit:
        raise InputError(field, "invalid_text", f"{what_zh}不能为空，最多{limit}个字符", f"the {what_en} must be 1–{limit} characters")
    return text


def _resolve(conn: Connection, keyring: Keyring, region: str, rows: list[rules.Row]) -> tuple[list[Any], list[rules.Refusal]]:
    """Each row checked on its own: who (known, of this region, once in the batch), their card's account, the amount."""
    good, refused, seen = [], [], {}
    for row in rows:
        problem = rules.who_of(row)
        if problem:
            refused.append(problem)
            continue
        amount = rules.amount_of(row)
        field = "psn_no" if row.psn_no else "id_number"
        person = people.get(conn, row.psn_no) if row.psn_no else people.find_by_id_number(conn, keyring, (row.id_number or "").upper())
        if person is None:
            refused.append(rules.Refusal(row.row, field, "unknown_person", "参保人不存在", "no such insured person"))
        elif person.region != region:
            refused.append(rules.Refusal(row.row, field, "other_region", f"该参保人不属于统筹区 {region}", f"the person is not insured in {region}"))
        elif person.id in seen:
            refused.append(rules.Refusal(row.row, field, "duplicate_person", f"与第{seen[person.id]}行是同一人", f"the same person as row "
                                         f"{seen[person.id]}"))
        else:
            seen[person.id] = row.row
            account = card_accounts.financial_account(conn, person.id)
            if account is None:
                refused.append(rules.Refusal(row.row, field, "no_card_account", "该参保人没有可入账的金融社保卡账户",
                                             "the person has no financial social-security card with a bank account to pay into"))
            elif not isinstance(amount, rules.Refusal):
                good.append((row.row, person, account, amount))
        if isinstance(amount, rules.Refusal):
            refused.append(amount)
    return good, refused


def record(conn: Connection, keyring: Keyring, now: datetime, *, region: str, agency: str, batch_no: str, purpose: str,
           rows: list[rules.Row], actor: str) -> dict[str, Any]:
    """Record a batch as the agency sent it, or refuse it naming every refused row. The same batch (agency, number and
    rows) sent again is the batch already recorded; its number with other rows is refused."""
    agency = _text(agency, "agency", "发放机构", "agency", 100)
    batch_no = _text(batch_no, "batch_no", "批次号", "batch number", 40)
    purpose = _text(purpose, "purpose", "发放项目", "purpose", 200)
    if not rows:
        raise InputError("rows", "empty", "批次没有明细行", "the batch has no rows")
    if len(rows) > rules.MAX_ROWS:
        raise InputError("rows", "too_many", f"一个批次最多{rules.MAX_ROWS}行", f"a batch has at most {rules.MAX_ROWS} rows")
    good, refused = _resolve(conn, keyring, region, rows)
    if refused:
        raise rules.BatchRefused(sorted(refused, key=lambda r: r.row))
    digest = rules.digest(agency, purpose, [(n, person.id, amount) for n, person, _, amount in good])
    existing = conn.execute(select(B).where(B.c.region == region, B.c.agency == agency, B.c.batch_no == batch_no)).first()
    if existing is not None:
        if existing.digest != digest:
            raise Conflict("batch_no", "batch_no_used", f"批次号 {batch_no} 已登记了不同的明细", f"batch {batch_no} was recorded with other rows")
        return view(conn, existing.id)
    batch_id = f"BB{secrets.token_hex(8)}"
    total = sum(amount for *_, amount in good)
    try:
        conn.execute(B.insert().values(id=batch_id, region=region, agency=agency, batch_no=batch_no, purpose=purpose, digest=digest,
                                       rows=len(good), total=total, status="recorded", recorded_by=actor, updated_at=now, created_at=now))
    except IntegrityError:  # the same batch recorded by a concurrent request: run again, and find it above
        raise Retry() from None
    conn.execute(CR.insert(), [dict(id=f"{batch_id}-{n}", region=region, batch_id=batch_id, row_no=n, person_id=person.id,
                                    card_id=account.card_id, bank_id=account.bank_id, account_no_enc=account.account_no_enc,
                                    account_last4=account.account_last4, amount=amount, status="pending", updated_at=now, created_at=now)
                               for n, person, account, amount in good])
    audit.append(conn, region=region, actor=actor, action="benefits.record", subject=batch_id,
                 detail={"agency": agency, "batch_no": batch_no, "purpose": purpose, "rows": len(good), "total": total}, now=now)
    return view(conn, batch_id)


def submit(conn: Connection, now: datetime, *, batch_id: str, actor: str) -> dict[str, Any]:
    """Submit a recorded batch: each credit's instruction is recorded (status sending) before anything reaches a bank, so
    a crash leaves a trace that the next run asks the bank about. Submitting again changes nothing."""
    batch = conn.execute(select(B).where(B.c.id == batch_id).with_for_update()).first()
    if batch is None:
        raise NotFound("batch_id", "not_found", "批次不存在", "batch not found")
    if batch.status == "recorded":
        conn.execute(update(CR).where(CR.c.batch_id == batch_id, CR.c.status == "pending").values(status="sending", updated_at=now))
        conn.execute(update(B).where(B.c.id == batch_id).values(status="submitted", submitted_by=actor, submitted_at=now, updated_at=now))
        audit.append(conn, region=batch.region, actor=actor, action="benefits.submit", subject=batch_id,
                     detail={"rows": int(batch.rows), "total": int(batch.total)}, now=now)
    return view(conn, batch_id)


def view(conn: Connection, batch_id: str, *, credits: bool = True) -> dict[str, Any]:
    b = conn.execute(select(B).where(B.c.id == batch_id)).first()
    if b is None:
        raise NotFound("batch_id", "not_found", "批次不存在", "batch not found")
    rows = conn.execute(select(CR).where(CR.c.batch_id == batch_id).order_by(CR.c.row_no)).all()
    out: dict[str, Any] = {
        "batch_id": b.id, "region": b.region, "agency": b.agency, "batch_no": b.batch_no, "purpose": b.purpose, "status": b.status,
        "rows": int(b.rows), "total": format_yuan(int(b.total)), "recorded_by": b.recorded_by,
        "submitted_at": iso_utc(b.submitted_at) if b.submitted_at else None, "done_at": iso_utc(b.done_at) if b.done_at else None,
        "created_at": iso_utc(b.created_at), "summary": rules.summary((r.status, int(r.amount)) for r in rows)}
    if credits:
        out["credits"] = [{"row": r.row_no, "instruction_no": r.id, "psn_no": r.person_id, "bank": r.bank_id,
                           "account_no": f"****{r.account_last4}", "amount": format_yuan(int(r.amount)), "status": r.status,
                           "bank_ref": r.bank_ref, "return_code": r.return_code,
                           "settled_at": iso_utc(r.settled_at) if r.settled_at else None} for r in rows]
    return out


def listing(conn: Connection, *, region: str | None = None, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = select(B.c.id)
    if region:
        q = q.where(B.c.region == region)
    if status:
        q = q.where(B.c.status == status)
    ids = conn.execute(q.order_by(B.c.created_at.desc(), B.c.id).limit(limit)).scalars().all()
    return [view(conn, i, credits=False) for i in ids]


def open_batches(conn: Connection, region: str | None = None) -> list[str]:
    """Submitted batches with credits the bank has not settled (the job's work)."""
    q = select(B.c.id).where(B.c.status == "submitted")
    if region:
        q = q.where(B.c.region == region)
    return list(conn.execute(q.order_by(B.c.submitted_at, B.c.id)).scalars().all())


def open_credits(conn: Connection, batch_id: str) -> list[str]:
    return list(conn.execute(select(CR.c.id).where(CR.c.batch_id == batch_id, CR.c.status.in_(("sending", "accepted")))
                             .order_by(CR.c.row_no)).scalars().all())


def for_holder(conn: Connection, person_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The holder's benefit credits, newest first: who paid, for what, how much, and what became of it. A credit not yet
    submitted to the bank is not shown (the agency may still withdraw its batch)."""
    rows = conn.execute(select(CR.c.id, CR.c.amount, CR.c.status, CR.c.return_code, CR.c.settled_at, CR.c.created_at, CR.c.account_last4,
                               CR.c.bank_id, B.c.agency, B.c.purpose, B.c.submitted_at)
                        .join(B, B.c.id == CR.c.batch_id)
                        .where(CR.c.person_id == person_id, CR.c.status != "pending")
                        .order_by(B.c.submitted_at.desc(), CR.c.id).limit(limit)).all()
    return [{"credit_id": r.id, "agency": r.agency, "purpose": r.purpose, "amount": format_yuan(int(r.amount)),
             "status": "credited" if r.status == "credited" else "returned" if r.status == "returned" else "processing",
             "return_code": r.return_code, "account_no": f"****{r.account_last4}", "bank": r.bank_id,
             "date": iso_utc(r.settled_at or r.submitted_at)} for r in rows]


def count_open(conn: Connection, batch_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(CR).where(CR.c.batch_id == batch_id, CR.c.status.in_(rules.OPEN))).scalar_one())
