"""Keeping in step with the bank: a line's state, bills and repayments as the bank's query says (never a
notification's body), on demand, from the daily jobs, and when the bank notifies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels import ChannelError
from yibao.channels.bank.connector import CreditLine
from yibao.channels.base import Ack
from yibao.domain import credit as rules_
from yibao.services import Context
from yibao.services.books import audit
from yibao.services.credit import lines, repayments, reservations
from yibao.store.tables import credit_bills as CB
from yibao.store.tables import credit_enrolments as CE
from yibao.store.tables import credit_notifications as CN
from yibao.store.tables import credit_repayments as CR
from yibao.store.tables import credit_reservations as RS
from yibao.store.upsert import insert_ignore


def sync_line(conn: Connection, now: datetime, enrolment_id: str, line: CreditLine, actor: str) -> str:
    """Apply what the bank says about a line (a query's answer, never a notification's body): its
    status and limit, bills we had not recorded, repayments made at the bank directly."""
    row = lines.enrolment_row(conn, enrolment_id, lock=True)
    if row.status not in ("active", "suspended"):
        return row.status
    values: dict[str, Any] = {"bank_status": line.status, "score": line.score, "updated_at": now}
    if line.limit_fen != row.bank_limit:
        values["bank_limit"] = line.limit_fen
        lines.set_limit(conn, row, rules_.line_limit(line.limit_fen, lines.credit_rules(row.region, now)), now)
        audit.append(conn, region=row.region, actor=actor, action="credit.line_change", subject=row.person_id,
                     detail={"enrolment": row.id, "bank_limit": line.limit_fen}, now=now)
    conn.execute(update(CE).where(CE.c.id == row.id).values(**values))
    for b in line.bills:
        r = conn.execute(select(RS, CE.c.person_id).join(CE, CE.c.id == RS.c.enrolment_id)
                         .where(RS.c.order_ref == b.out_trade_no, RS.c.enrolment_id == row.id)).first()
        if r is None:
            continue
        if r.state in ("holding", "reserved", "unknown"):  # the bank paid the hospital; our capture's answer was lost
            reservations.captured(conn, now, r.order_ref, now, None, actor)
        mine = conn.execute(select(CB).where(CB.c.order_ref == r.order_ref)).first()
        if mine is None:
            reservations.record_bill(conn, now, r, b.bill_no, b.due_date, r.updated_at if r.state == "captured" else now)
            mine = repayments.bill_row(conn, b.bill_no)
        extra = min(b.repaid_fen, mine.amount) - mine.repaid
        if extra > 0 and repayments.pending_sum(conn, mine.bill_no) == 0:  # repaid at the bank itself (an in-flight one of ours waits for resolve)
            rid = lines.new_no("RB")
            conn.execute(CR.insert().values(id=rid, region=mine.region, bill_no=mine.bill_no, payer_id=None, amount=extra, state="pending",
                                            updated_at=now, created_at=now))
            repayments.repaid(conn, now, rid, actor)
    return lines.evaluate(conn, row.id, now, actor)


async def refresh(ctx: Context, enrolment_id: str, *, actor: str) -> str:
    """Query the bank for the line and apply it."""
    enrolment = await ctx.run(lambda c: lines.enrolment_row(c, enrolment_id))
    line = await (await ctx.bank(enrolment.payment_institution_id)).credit_line(enrolment_id)
    return await ctx.run(lambda c: sync_line(c, ctx.now(), enrolment_id, line, actor))


def _enrolment_for_notice(conn: Connection, pi_id: str, kind: str, subject: str, agreement_no: str | None) -> Any:
    q = select(CE).where(CE.c.payment_institution_id == pi_id)
    if kind == "agreement":
        q = q.where(CE.c.id == subject)
    elif kind == "credit":
        q = q.where(CE.c.agreement_no == (agreement_no or ""))
    else:
        q = q.where(CE.c.id == select(RS.c.enrolment_id).where(RS.c.order_ref == subject).scalar_subquery())
    return conn.execute(q).first()


async def apply_bank_notification(ctx: Context, pi_id: str, headers: Mapping[str, str], body: bytes) -> tuple[Ack, str]:
    """A bank's notification (repayment, overdue, line or payment change): verified first; then the
    line is queried (the notification is a prompt, the query the truth) and applied in the same unit
    as the durable dedup claim, so a crash can neither lose the event nor apply it twice.
    Returns the answer for the bank and what happened: refused | duplicate | applied | ignored."""
    bank = await ctx.bank(pi_id)
    try:
        notice = bank.verify_notification(headers, body)
    except ChannelError:
        return bank.ack(False), "refused"  # the bank resends; nothing unverified is acted on
    _, kind, subject, status = notice.dedup_key
    key = dict(payment_institution_id=pi_id, kind=kind, subject=subject[:64], status=status[:20])
    seen = await ctx.run(lambda c: c.execute(select(CN.c.event_id).filter_by(**key)).first())
    if seen is not None:
        return bank.ack(True), "duplicate"
    enrolment = await ctx.run(lambda c: _enrolment_for_notice(c, pi_id, kind, subject, notice.data.get("agreement_no")))
    line = None
    if enrolment is not None and enrolment.status in ("active", "suspended"):
        try:
            line = await bank.credit_line(enrolment.id)
        except ChannelError:
            return bank.ack(False), "refused"  # unanswered: the bank sends it again and we query again

    def unit(conn: Connection) -> str:
        region = enrolment.region if enrolment is not None else "000000"
        if not insert_ignore(conn, CN, {**key, "region": region, "event_id": notice.event_id[:64], "created_at": ctx.now()}):
            return "duplicate"
        if line is None:
            return "ignored"
        sync_line(conn, ctx.now(), enrolment.id, line, f"bank:{pi_id}")
        return "applied"
    return bank.ack(True), await ctx.run(unit)
