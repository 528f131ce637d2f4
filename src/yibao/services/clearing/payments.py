"""Paying an accepted application through the agency's bank, and the ledger legs once the bank confirms.

The instruction is recorded (status ``sending``) in its own unit before the bank is called, so a crash or a lost answer
leaves a trace; every later run asks the bank about that instruction number before sending anything (the bank books a
number once in any case). On confirmation one unit posts, with client ids fixed by the application:
  receivable → external payout account  (the amount paid)        `{application}:payout`
  receivable → institution deposit      (the quality deposit)    `{application}:deposit`
and marks the application cleared (50). A second run changes nothing. A failed instruction (e.g. an invalid payee
account) leaves the application accepted; the next run, after the payee is corrected, sends a new instruction number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from yibao.channels.bank.connector import Payout
from yibao.channels.base import ChannelError, NotFoundAtChannel
from yibao.domain import clearing as rules
from yibao.domain.errors import Conflict, NotFound
from yibao.domain.ledger import clearing_payout, institution_deposit, institution_receivable
from yibao.services import Context
from yibao.services.books import audit, ledger
from yibao.store.tables import channel_configs as CC
from yibao.store.tables import clearing_applications as A
from yibao.store.tables import clearing_payees as P
from yibao.store.tables import clearing_payments as PAY


@dataclass(frozen=True)
class Outcome:
    application_id: str
    state: str  # cleared | awaiting_confirmation | failed | unknown
    payable: int
    deposit: int
    instruction_no: str | None = None
    error: str | None = None


def agency_bank(conn: Connection, region: str) -> str:
    """The agency's bank for a region: the one payment institution of the region configured with the bank connector."""
    found = conn.execute(select(CC.c.payment_institution_id).where(CC.c.region == region, CC.c.connector == "bank")
                         .order_by(CC.c.payment_institution_id)).scalars().all()
    if len(found) != 1:
        raise Conflict("bank", "agency_bank_unclear", f"统筹区 {region} 接入的银行有 {len(found)} 家，请指定经办机构的清算银行",
                       f"region {region} has {len(found)} banks connected: name the agency's clearing bank")
    return found[0]


def _post_cleared(conn: Connection, now: datetime, app: Any, *, actor: str, instruction: Any | None, confirmed_at: datetime | None) -> None:
    """The confirmation's unit: the ledger legs and status 50, once (the legs' client ids and the status check)."""
    region, inst = app.region, app.institution_id
    ledger.ensure_account(conn, clearing_payout(region), region, "clearing_payout", now)
    ledger.ensure_account(conn, institution_deposit(inst), region, "institution_deposit", now, owner_id=inst)
    receivable = institution_receivable(inst)
    ledger.post_many(conn, [ledger.Leg(f"{app.id}:payout", receivable, clearing_payout(region), int(app.payable), region),
                            ledger.Leg(f"{app.id}:deposit", receivable, institution_deposit(inst), int(app.deposit), region)],
                     code="clearing", ref=app.id, now=now)
    if instruction is not None:
        conn.execute(update(PAY).where(PAY.c.id == instruction.id).values(status="confirmed", confirmed_at=confirmed_at or now, updated_at=now))
    conn.execute(update(A).where(A.c.id == app.id).values(status=rules.CLEARED, cleared_at=now, updated_at=now))
    audit.append(conn, region=region, actor=actor, action="clearing.cleared", subject=app.id, detail={
        "institution": inst, "setlym": app.setlym, "payable": int(app.payable), "deposit": int(app.deposit),
        "instruction": instruction.id if instruction is not None else None}, now=now)


def _prepare(conn: Connection, now: datetime, app_id: str, bank_id: str | None, actor: str) -> tuple[str, Any, Any | None]:
    """First unit: the application (accepted), and the instruction to drive — the open one, or a new one when there is
    none or the last failed. A zero payable needs no bank: cleared here."""
    app = conn.execute(select(A).where(A.c.id == app_id).with_for_update()).first()
    if app is None:
        raise NotFound("clr_appy_evt_id", "not_found", "清算申请不存在", "clearing application not found")
    if app.status == rules.CLEARED:
        return "cleared", app, None
    if app.status != rules.ACCEPTED:
        raise Conflict("clr_appy_evt_id", f"application_{app.status}", f"清算申请状态为 {app.status}，须先受理",
                       f"the application is {app.status}: it must be accepted first")
    if int(app.payable) == 0:
        _post_cleared(conn, now, app, actor=actor, instruction=None, confirmed_at=None)
        return "cleared", app, None
    last = conn.execute(select(PAY).where(PAY.c.application_id == app_id).order_by(PAY.c.attempt.desc()).limit(1)).first()
    if last is not None and last.status in ("sending", "accepted"):
        return "open", app, last
    if last is not None and last.status == "confirmed":  # confirmed but not posted cannot happen (one unit); say so if it does
        raise Conflict("clr_appy_evt_id", "confirmed_not_cleared", "付款已确认但未入账", "the payment is confirmed but not posted")
    payee = conn.execute(select(P).where(P.c.institution_id == app.institution_id)).first()
    if payee is None:
        raise Conflict("account_no", "no_payee_account", f"机构 {app.institution_id} 没有登记收款账户", f"institution {app.institution_id} has no "
                       "payee account on file")
    bank = bank_id or agency_bank(conn, app.region)
    attempt = (0 if last is None else int(last.attempt)) + 1
    no = f"{app.id}P{attempt}"
    conn.execute(PAY.insert().values(id=no, region=app.region, application_id=app.id, attempt=attempt, bank_id=bank,
                                     payee_account=payee.account_no, payee_name=payee.account_name, amount=int(app.payable),
                                     status="sending", updated_at=now, created_at=now))
    audit.append(conn, region=app.region, actor=actor, action="clearing.instruct", subject=app.id,
                 detail={"instruction": no, "bank": bank, "amount": int(app.payable), "payee_account": f"****{payee.account_no[-4:]}"}, now=now)
    return "open", app, conn.execute(select(PAY).where(PAY.c.id == no)).one()


def _record(conn: Connection, now: datetime, app_id: str, instruction_id: str, result: Payout, actor: str) -> str:
    app = conn.execute(select(A).where(A.c.id == app_id).with_for_update()).one()
    ins = conn.execute(select(PAY).where(PAY.c.id == instruction_id)).one()
    if app.status == rules.CLEARED or ins.status in ("confirmed", "failed"):
        return "cleared" if app.status == rules.CLEARED else ins.status
    if result.amount_fen != int(ins.amount):  # the bank's booking must be ours to the fen
        raise Conflict("amount", "bank_amount_differs", "银行登记的金额与付款指令不符", f"the bank booked {result.amount_fen} fen, "
                       f"the instruction says {int(ins.amount)}")
    if result.status == "confirmed":
        _post_cleared(conn, now, app, actor=actor, instruction=ins, confirmed_at=result.confirmed_at)
        conn.execute(update(PAY).where(PAY.c.id == ins.id).values(bank_ref=result.bank_ref))
        return "cleared"
    if result.status in ("failed", "returned"):  # returned: paid nothing, like a failure (the payee's account refused it)
        conn.execute(update(PAY).where(PAY.c.id == ins.id).values(status="failed", bank_ref=result.bank_ref, error_code=result.error_code,
                                                                   updated_at=now))
        audit.append(conn, region=app.region, actor=actor, action="clearing.payment_failed", subject=app.id,
                     detail={"instruction": ins.id, "error_code": result.error_code}, now=now)
        return "failed"
    conn.execute(update(PAY).where(PAY.c.id == ins.id).values(status="accepted", bank_ref=result.bank_ref, updated_at=now))
    return "awaiting_confirmation"


async def pay(ctx: Context, app_id: str, *, bank_id: str | None = None, actor: str) -> Outcome:
    """Drive an accepted application's payment one step further: send (or find) the instruction, read the bank's
    confirmation, post the ledger legs. Safe to run any number of times."""
    now = ctx.now()
    state, app, ins = await ctx.run(lambda c: _prepare(c, now, app_id, bank_id, actor))
    if state == "cleared":
        return Outcome(app_id, "cleared", int(app.payable), int(app.deposit))
    bank = await ctx.bank(ins.bank_id)
    try:
        try:
            result = await bank.query_payout(ins.id)  # asked first, always: a lost answer may have booked it already
        except NotFoundAtChannel:
            result = await bank.payout(ins.id, payee_account=ins.payee_account, payee_name=ins.payee_name, amount_fen=int(ins.amount),
                                       purpose=f"医保基金清算 {app.setlym} {app.clr_type} {app.id}")
            if result.status == "accepted":
                result = await bank.query_payout(ins.id)  # the confirmation, if the bank has it already
    except ChannelError as exc:  # no trustworthy answer: the instruction stays open; the next run asks again
        return Outcome(app_id, "unknown", int(app.payable), int(app.deposit), ins.id, exc.describe())
    state = await ctx.run(lambda c: _record(c, ctx.now(), app_id, ins.id, result, actor))
    return Outcome(app_id, state, int(app.payable), int(app.deposit), ins.id, result.error_code)


def open_instructions(conn: Connection, app_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(PAY).where(PAY.c.application_id == app_id,
                                                                        PAY.c.status.in_(("sending", "accepted")))).scalar_one())
