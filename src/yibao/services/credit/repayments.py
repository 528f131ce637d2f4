"""Repayment of a credit bill through the bank, by the holder or a linked family member (their own payer
token); resolve when the bank's answer was lost."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from yibao.channels import ChannelError, Declined
from yibao.crypto.pii import Keyring
from yibao.domain import credit as rules_
from yibao.domain.credit import Bill
from yibao.domain.errors import Conflict, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.books import audit, ledger
from yibao.services.credit import lines
from yibao.services.people import families
from yibao.store.rows import one_or
from yibao.store.tables import credit_bills as CB
from yibao.store.tables import credit_repayments as CR


def repayments_in_doubt(conn: Connection, bill_nos: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    """Repayments of these bills whose bank answer is not known yet (pending or unknown), by bill: `resolve_repayment` settles them."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not bill_nos:
        return out
    rows = conn.execute(select(CR).where(CR.c.bill_no.in_(list(bill_nos)), CR.c.state.in_(("pending", "unknown")))
                        .order_by(CR.c.created_at, CR.c.id)).all()
    for r in rows:
        out.setdefault(r.bill_no, []).append({"repayment_no": r.id, "amount": format_yuan(r.amount), "state": r.state,
                                              "payer_psn_no": r.payer_id, "created_at": iso_utc(r.created_at)})
    return out


def require_repayment_party(conn: Connection, repayment_id: str, person_id: str) -> None:
    """Only the payer of a repayment, or the holder whose bill it is, may have it asked about."""
    row = conn.execute(select(CR.c.payer_id, CB.c.person_id).join(CB, CB.c.bill_no == CR.c.bill_no).where(CR.c.id == repayment_id)).first()
    if row is None or person_id not in (row.payer_id, row.person_id):
        raise NotFound("repayment_no", "not_found", "还款记录不存在", "repayment not found")


def bill_row(conn: Connection, bill_no: str, *, lock: bool = False) -> Any:
    return one_or(conn, CB, CB.c.bill_no == bill_no, lock=lock, missing=NotFound("bill_no", "not_found", "账单不存在", "bill not found"))


def pending_sum(conn: Connection, bill_no: str) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(CR.c.amount), 0)).where(
        CR.c.bill_no == bill_no, CR.c.state.in_(("pending", "unknown")))).scalar_one())


def repayment_view(conn: Connection, repayment_id: str, now: datetime) -> dict[str, Any]:
    rp = conn.execute(select(CR).where(CR.c.id == repayment_id)).one()
    bill = bill_row(conn, rp.bill_no)
    enrolment = lines.enrolment_row(conn, bill.enrolment_id)
    return {"repayment_no": rp.id, "state": rp.state, "amount": format_yuan(rp.amount), "payer_psn_no": rp.payer_id,
            "bill": lines.bill_view(bill, lines.beijing_day(now), lines.credit_rules(bill.region, now)), "line_status": enrolment.status}


def _start_repayment(conn: Connection, keyring: Keyring, now: datetime, *, payer_id: str, bill_no: str, amount: int,
                     repayment_id: str | None, actor: str) -> tuple[str, str, str, int]:
    rules_.check_amount(amount)
    bill = bill_row(conn, bill_no, lock=True)
    rules_.may_repay(payer_id, bill.person_id, families.relation_between(conn, payer_id, bill.person_id))
    enrolment = lines.enrolment_row(conn, bill.enrolment_id)
    if repayment_id is not None:
        done = conn.execute(select(CR).where(CR.c.id == repayment_id)).first()
        if done is not None:
            if (done.bill_no, done.payer_id, done.amount) != (bill_no, payer_id, amount):
                raise Conflict("repayment_no", "repayment_no_reused", "该还款编号已用于另一笔还款", "this repayment number was used for another repayment")
            return done.id, done.state, enrolment.payment_institution_id, done.amount
    # Repayments still in flight count as paid: two at once never exceed what is owed.
    Bill(bill.amount, bill.repaid + pending_sum(conn, bill_no), bill.due_date).repay(amount)
    repayment_id = repayment_id or lines.new_no("RP")
    conn.execute(CR.insert().values(id=repayment_id, region=bill.region, bill_no=bill_no, payer_id=payer_id, amount=amount, state="pending",
                                    updated_at=now, created_at=now))
    audit.append(conn, region=bill.region, actor=actor, action="credit.repay_start", subject=bill.person_id,
                 detail={"bill_no": bill_no, "repayment_no": repayment_id, "payer": payer_id, "amount": amount}, now=now)
    return repayment_id, "pending", enrolment.payment_institution_id, amount


def repaid(conn: Connection, now: datetime, repayment_id: str, actor: str) -> dict[str, Any]:
    rp = conn.execute(select(CR).where(CR.c.id == repayment_id).with_for_update()).one()
    if rp.state in ("pending", "unknown"):
        bill = bill_row(conn, rp.bill_no, lock=True)
        Bill(bill.amount, bill.repaid, bill.due_date).repay(rp.amount)  # the domain's guard, again, on the row we write
        conn.execute(update(CB).where(CB.c.bill_no == bill.bill_no).values(repaid=bill.repaid + rp.amount, updated_at=now))
        conn.execute(update(CR).where(CR.c.id == repayment_id).values(state="succeeded", updated_at=now))
        ledger.ensure_account(conn, rules_.repayments_source(bill.region), bill.region, "external_credit", now)
        ledger.transfer(conn, client_id=f"credit-repay:{repayment_id}", debit=rules_.repayments_source(bill.region),
                        credit=rules_.line_account(bill.enrolment_id), amount=rp.amount, code="credit_repayment", region=bill.region,
                        now=now, ref=bill.bill_no)
        audit.append(conn, region=bill.region, actor=actor, action="credit.repaid", subject=bill.person_id,
                     detail={"bill_no": bill.bill_no, "repayment_no": repayment_id, "payer": rp.payer_id, "amount": rp.amount}, now=now)
        lines.evaluate(conn, bill.enrolment_id, now, actor)
    return repayment_view(conn, repayment_id, now)


def _repayment_failed(conn: Connection, now: datetime, repayment_id: str, code: str) -> None:
    conn.execute(update(CR).where(CR.c.id == repayment_id, CR.c.state.in_(("pending", "unknown")))
                 .values(state="failed", error_code=code, updated_at=now))


def _repayment_unknown(conn: Connection, now: datetime, repayment_id: str) -> None:
    conn.execute(update(CR).where(CR.c.id == repayment_id, CR.c.state == "pending").values(state="unknown", updated_at=now))


async def _send_repayment(ctx: Context, *, repayment_id: str, bill_no: str, amount: int, payer_id: str, pi_id: str,
                          actor: str) -> dict[str, Any]:
    try:
        await (await ctx.bank(pi_id)).repay(bill_no, repayment_id, amount, lines.token_for(ctx.keyring, payer_id, pi_id))
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _repayment_failed(c, ctx.now(), repayment_id, e.code))
        raise rules_.bank_refusal("amount", exc.code) from None
    except ChannelError as exc:
        await ctx.run(lambda c: _repayment_unknown(c, ctx.now(), repayment_id))
        raise lines.outcome_unknown("repayment_no", "还款", "the repayment", repayment_id, exc) from exc
    return await ctx.run(lambda c: repaid(c, ctx.now(), repayment_id, actor))


async def repay(ctx: Context, *, payer_id: str, bill_no: str, amount: int, repayment_id: str | None = None,
                actor: str) -> dict[str, Any]:
    """Repay (part of) a bill through the bank: the holder, or a linked family member with their own
    payer token. ``repayment_id`` (our out_repayment_no) makes a retry the same repayment."""
    now = ctx.now()
    rid, state, pi_id, amount = await ctx.run(lambda c: _start_repayment(c, ctx.keyring, now, payer_id=payer_id, bill_no=bill_no,
                                                                         amount=amount, repayment_id=repayment_id, actor=actor))
    if state == "succeeded":
        return await ctx.run(lambda c: repayment_view(c, rid, ctx.now()))
    if state == "failed":
        code = await ctx.run(lambda c: conn_error_code(c, rid))
        raise rules_.bank_refusal("amount", code)
    return await _send_repayment(ctx, repayment_id=rid, bill_no=bill_no, amount=amount, payer_id=payer_id, pi_id=pi_id, actor=actor)


def conn_error_code(conn: Connection, repayment_id: str) -> str:
    return conn.execute(select(CR.c.error_code).where(CR.c.id == repayment_id)).scalar_one() or "FAILED"


async def resolve_repayment(ctx: Context, repayment_id: str, *, actor: str) -> dict[str, Any]:
    """Settle a repayment whose answer was lost. The bank has no repayment look-up: we query the bill
    (its repaid amount) and, if it does not show the repayment, send the identical request again —
    the bank keys repayments by our number, so a repeat is never a second payment."""
    rp = await ctx.run(lambda c: c.execute(select(CR, CB.c.enrolment_id, CB.c.repaid.label("bill_repaid"))
                                           .join(CB, CB.c.bill_no == CR.c.bill_no).where(CR.c.id == repayment_id)).first())
    if rp is None:
        raise NotFound("repayment_no", "not_found", "还款记录不存在", "repayment not found")
    if rp.state not in ("pending", "unknown"):
        return await ctx.run(lambda c: repayment_view(c, repayment_id, ctx.now()))
    enrolment = await ctx.run(lambda c: lines.enrolment_row(c, rp.enrolment_id))
    try:
        line = await (await ctx.bank(enrolment.payment_institution_id)).credit_line(enrolment.id)
    except ChannelError as exc:
        raise lines.outcome_unknown("repayment_no", "查询", "the query", repayment_id, exc) from exc
    at_bank = next((b for b in line.bills if b.bill_no == rp.bill_no), None)
    others = await ctx.run(lambda c: pending_sum(c, rp.bill_no)) - rp.amount
    if at_bank is not None and others == 0 and at_bank.repaid_fen >= rp.bill_repaid + rp.amount:
        return await ctx.run(lambda c: repaid(c, ctx.now(), repayment_id, actor))
    return await _send_repayment(ctx, repayment_id=repayment_id, bill_no=rp.bill_no, amount=rp.amount, payer_id=rp.payer_id,
                                 pi_id=enrolment.payment_institution_id, actor=actor)
