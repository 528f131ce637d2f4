"""The cash share of a payment on the payer's credit line: reserve → capture | release, here (a pending
transfer on the line's no-overdraft account) and at the bank; resolve when the bank's answer was lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels import ChannelError, Declined, NotFoundAtChannel, PaymentRequest
from yibao.channels.bank.connector import CreditLine
from yibao.domain import credit as rules_
from yibao.domain.errors import Conflict, NotFound
from yibao.domain.ledger import institution_cash
from yibao.services import Context
from yibao.services.books import audit, ledger
from yibao.services.credit import lines
from yibao.store.tables import credit_bills as CB
from yibao.store.tables import credit_enrolments as CE
from yibao.store.tables import credit_reservations as RS
from yibao.store.tables import institutions as I


@dataclass(frozen=True)
class Reservation:
    order_ref: str
    enrolment_id: str
    holder_id: str
    institution_id: str
    amount: int
    state: str  # holding | reserved | unknown | captured | released | failed
    bill_no: str | None = None
    error_code: str | None = None


def _reservation(conn: Connection, order_ref: str, *, lock: bool = False) -> Any:
    q = select(RS, CE.c.person_id, CE.c.payment_institution_id, CE.c.agreement_no).join(CE, CE.c.id == RS.c.enrolment_id) \
        .where(RS.c.order_ref == order_ref)
    row = conn.execute(q.with_for_update(of=RS) if lock else q).first()
    if row is None:
        raise NotFound("order_ref", "no_credit_reservation", "该订单没有信用支付占用", "no credit reservation for this order")
    return row


def reservation(conn: Connection, order_ref: str) -> Reservation:
    r = _reservation(conn, order_ref)
    bill = conn.execute(select(CB.c.bill_no).where(CB.c.order_ref == order_ref)).first()
    return Reservation(r.order_ref, r.enrolment_id, r.person_id, r.institution_id, r.amount, r.state, bill.bill_no if bill else None,
                       r.error_code)


def exists(conn: Connection, order_ref: str) -> bool:
    """Whether anything was ever held on a line for this order."""
    return conn.execute(select(RS.c.order_ref).where(RS.c.order_ref == order_ref)).first() is not None


def _set_state(conn: Connection, order_ref: str, now: datetime, state: str, **values: Any) -> None:
    conn.execute(update(RS).where(RS.c.order_ref == order_ref).values(state=state, updated_at=now, **values))


def _hold(conn: Connection, now: datetime, *, order_ref: str, holder_id: str, institution_id: str, amount: int, pi_id: str | None,
          actor: str) -> Reservation:
    rules_.check_order_ref(order_ref)
    rules_.check_amount(amount)
    existing = conn.execute(select(RS).where(RS.c.order_ref == order_ref)).first()
    if existing is not None:
        r = reservation(conn, order_ref)
        if (r.holder_id, r.institution_id, r.amount) != (holder_id, institution_id, amount):
            raise Conflict("order_ref", "order_ref_reused", "该订单号已用于另一笔信用支付", "this order number was used for another credit payment")
        return r
    row = lines.holder_enrolment(conn, holder_id, pi_id, lock=True)
    inst = conn.execute(select(I.c.id, I.c.region).where(I.c.id == institution_id)).first()
    if inst is None:
        raise NotFound("institution_id", "not_found", "定点机构不存在", "institution not found")
    if inst.region != row.region:  # the line's account is in the holder's region's books; no clearing for it yet
        raise Conflict("institution_id", "credit_other_region", "信用支付暂限参保地的定点机构", "credit payment is limited to institutions of the holder's region")
    if lines.evaluate(conn, row.id, now, actor) == "suspended":
        raise rules_.suspended_error()
    lines.line_of(conn, row).reserve(amount)  # refuses above the available line, naming the amounts
    ledger.transfer(conn, client_id=f"credit-hold:{order_ref}", debit=rules_.line_account(row.id), credit=institution_cash(institution_id),
                    amount=amount, code="credit_payment", region=row.region, now=now, ref=order_ref, pending=True)
    conn.execute(RS.insert().values(order_ref=order_ref, region=row.region, enrolment_id=row.id, institution_id=institution_id, amount=amount,
                                    state="holding", updated_at=now, created_at=now))
    audit.append(conn, region=row.region, actor=actor, action="credit.hold", subject=holder_id,
                 detail={"order_ref": order_ref, "amount": amount, "institution_id": institution_id}, now=now)
    return reservation(conn, order_ref)


def _void(conn: Connection, now: datetime, order_ref: str, state: str, error_code: str | None = None) -> Reservation:
    r = _reservation(conn, order_ref, lock=True)
    if r.state in ("holding", "reserved", "unknown"):
        ledger.void_pending(conn, client_id=f"credit-void:{order_ref}", pending_client_id=f"credit-hold:{order_ref}", now=now)
        _set_state(conn, order_ref, now, state, error_code=error_code)
        audit.append(conn, region=r.region, actor="bank", action=f"credit.{state}", subject=r.person_id,
                     detail={"order_ref": order_ref, "bank_code": error_code}, now=now)
    return reservation(conn, order_ref)


def _reserved(conn: Connection, now: datetime, order_ref: str, bank_ref: str | None) -> Reservation:
    r = _reservation(conn, order_ref, lock=True)
    if r.state in ("holding", "unknown"):
        _set_state(conn, order_ref, now, "reserved", bank_ref=bank_ref)
    return reservation(conn, order_ref)


def _refused_by_bank(conn: Connection, now: datetime, order_ref: str, code: str) -> Reservation:
    r = _void(conn, now, order_ref, "failed", code)
    if code == "LINE_SUSPENDED_OVERDUE":  # the bank's own overdue rule: note it for the holder's view
        conn.execute(update(CE).where(CE.c.id == r.enrolment_id).values(bank_status="suspended", updated_at=now))
    return r


async def reserve(ctx: Context, *, order_ref: str, holder_id: str, institution_id: str, amount: int, pi_id: str | None = None,
                  actor: str) -> Reservation:
    """Hold ``amount`` (the cash share, fen) of order ``order_ref`` on the holder's line, here and at the bank.

    Returns the reservation in state ``reserved``. Refusals: ``credit_not_enrolled``,
    ``credit_line_suspended``, ``credit_line_exceeded`` (with the available amount), or the bank's
    (committed with the released hold before raising). No definite answer from the bank:
    `BankOutcomeUnknown`, the hold kept (state ``unknown``) until `resolve` (or `release`)."""
    now = ctx.now()
    r = await ctx.run(lambda c: _hold(c, now, order_ref=order_ref, holder_id=holder_id, institution_id=institution_id, amount=amount,
                                      pi_id=pi_id, actor=actor))
    if r.state in ("reserved", "captured"):
        return r
    if r.state == "released":
        raise Conflict("order_ref", "credit_reservation_released", "该信用占用已释放", "the reservation for this order was released")
    if r.state == "failed":
        raise rules_.bank_refusal("amount", r.error_code or "FAILED")
    enrolment = await ctx.run(lambda c: lines.enrolment_row(c, r.enrolment_id))
    try:
        result = await (await ctx.bank(enrolment.payment_institution_id)).reserve(PaymentRequest(order_ref, amount, lines.DESCRIPTION,
                                                                                         enrolment.agreement_no))
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _refused_by_bank(c, ctx.now(), order_ref, e.code))
        if exc.code == "LINE_SUSPENDED_OVERDUE":
            raise rules_.suspended_error() from None
        raise rules_.bank_refusal("amount", exc.code) from None
    except ChannelError as exc:
        await ctx.run(lambda c: _set_state(c, order_ref, ctx.now(), "unknown") if _reservation(c, order_ref).state == "holding" else None)
        raise lines.outcome_unknown("order_ref", "信用额度占用", "the reservation", order_ref, exc) from exc
    return await ctx.run(lambda c: _reserved(c, ctx.now(), order_ref, result.trade_no))


def record_bill(conn: Connection, now: datetime, r: Any, bill_no: str, bank_due: date, paid_at: datetime) -> None:
    if conn.execute(select(CB.c.bill_no).where(CB.c.order_ref == r.order_ref)).first() is not None:
        return
    paid_on = lines.beijing_day(paid_at)
    due = rules_.due_date(paid_on, lines.credit_rules(r.region, paid_at))
    conn.execute(CB.insert().values(bill_no=bill_no, region=r.region, enrolment_id=r.enrolment_id, person_id=r.person_id,
                                    order_ref=r.order_ref, amount=r.amount, repaid=0, paid_on=paid_on, due_date=due, bank_due_date=bank_due,
                                    updated_at=now, created_at=now))


def captured(conn: Connection, now: datetime, order_ref: str, paid_at: datetime, line: CreditLine | None, actor: str) -> Reservation:
    r = _reservation(conn, order_ref, lock=True)
    if r.state in ("holding", "reserved", "unknown"):
        ledger.post_pending(conn, client_id=f"credit-capture:{order_ref}", pending_client_id=f"credit-hold:{order_ref}", now=now)
        _set_state(conn, order_ref, now, "captured")
        audit.append(conn, region=r.region, actor=actor, action="credit.capture", subject=r.person_id,
                     detail={"order_ref": order_ref, "amount": r.amount, "institution_id": r.institution_id}, now=now)
    if line is not None:
        for b in line.bills:
            if b.out_trade_no == order_ref:
                record_bill(conn, now, r, b.bill_no, b.due_date, paid_at)
    return reservation(conn, order_ref)


async def capture(ctx: Context, order_ref: str, *, actor: str) -> Reservation:
    """The payment completed: the bank pays the hospital from the line (the hold is posted to the
    institution's cash account) and the holder owes a bill, due after the region's interest-free days."""
    r = await ctx.run(lambda c: reservation(c, order_ref))
    if r.state == "captured" and r.bill_no is not None:
        return r
    if r.state in ("failed", "released"):
        raise Conflict("order_ref", "credit_reservation_released", "该信用占用已释放，不能扣款", "the reservation was released; it cannot be captured")
    enrolment = await ctx.run(lambda c: lines.enrolment_row(c, r.enrolment_id))
    bank = await ctx.bank(enrolment.payment_institution_id)
    try:
        paid = await bank.capture(order_ref)
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _refused_by_bank(c, ctx.now(), order_ref, e.code))
        raise rules_.bank_refusal("order_ref", exc.code) from None
    except ChannelError as exc:
        raise lines.outcome_unknown("order_ref", "扣款", "the capture", order_ref, exc) from exc  # capture again: the bank answers the same payment
    try:
        line: CreditLine | None = await bank.credit_line(enrolment.id)
    except ChannelError:
        line = None  # the bill is picked up by the next sync (a view, a job, a notification)
    return await ctx.run(lambda c: captured(c, ctx.now(), order_ref, paid.paid_at or ctx.now(), line, actor))


async def release(ctx: Context, order_ref: str, *, actor: str) -> Reservation:
    """The payment was voided: the hold is given back, at the bank and in the ledger."""
    r = await ctx.run(lambda c: reservation(c, order_ref))
    if r.state in ("failed", "released"):
        return r
    if r.state == "captured":
        raise Conflict("order_ref", "credit_already_captured", "银行已向医院付款，请走退款", "the bank has paid the hospital; refund instead")
    enrolment = await ctx.run(lambda c: lines.enrolment_row(c, r.enrolment_id))
    try:
        await (await ctx.bank(enrolment.payment_institution_id)).release(order_ref)
    except NotFoundAtChannel:
        pass  # the reservation never reached the bank: nothing to give back there
    except Declined as exc:
        raise rules_.bank_refusal("order_ref", exc.code) from None  # ALREADY_CAPTURED: resolve learns the capture
    except ChannelError as exc:
        raise lines.outcome_unknown("order_ref", "释放", "the release", order_ref, exc) from exc
    return await ctx.run(lambda c: _void(c, ctx.now(), order_ref, "released"))


async def resolve(ctx: Context, order_ref: str, *, actor: str) -> Reservation:
    """Settle a reservation whose bank answer was lost, by asking the bank (the truth)."""
    r = await ctx.run(lambda c: reservation(c, order_ref))
    if r.state not in ("holding", "unknown", "reserved") and not (r.state == "captured" and r.bill_no is None):
        return r
    enrolment = await ctx.run(lambda c: lines.enrolment_row(c, r.enrolment_id))
    bank = await ctx.bank(enrolment.payment_institution_id)
    try:
        found = await bank.query(order_ref)
    except NotFoundAtChannel:
        return await ctx.run(lambda c: _void(c, ctx.now(), order_ref, "failed", "NOT_AT_BANK"))
    except ChannelError as exc:
        raise lines.outcome_unknown("order_ref", "查询", "the query", order_ref, exc) from exc
    if found.status == "processing":
        return await ctx.run(lambda c: _reserved(c, ctx.now(), order_ref, found.trade_no))
    if found.status == "failed":
        return await ctx.run(lambda c: _void(c, ctx.now(), order_ref, "released" if found.error_code == "RELEASED" else "failed",
                                             found.error_code))
    line = await bank.credit_line(enrolment.id)
    return await ctx.run(lambda c: captured(c, ctx.now(), order_ref, found.paid_at or ctx.now(), line, actor))
