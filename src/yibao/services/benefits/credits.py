"""Each credit of a submitted batch is one payment instruction to the card's bank, numbered with the credit's id (the
bank books a number once): the same machinery as monthly clearing (services/clearing/payments.py) — the instruction is
recorded (sending) before any call, the bank is always asked about it before it is sent, and only its answer moves the
credit on: confirmed → credited; failed or returned (a closed card account …) → returned with the bank's reason; no
trustworthy answer → left open for the next run, which asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels.bank.connector import Payout
from yibao.channels.base import ChannelError, NotFoundAtChannel
from yibao.domain import benefits as rules
from yibao.services import Context
from yibao.services.benefits import batches
from yibao.services.books import audit
from yibao.store.tables import benefit_batches as B
from yibao.store.tables import benefit_credits as CR
from yibao.store.tables import persons as P


@dataclass(frozen=True)
class Outcome:
    credit_id: str
    state: str  # credited | returned | accepted (waiting for the bank) | unknown (no trustworthy answer) | pending (not submitted)
    amount: int
    error: str | None = None


def _settle(conn: Connection, now: datetime, credit_id: str, result: Payout, actor: str) -> str:
    """The bank's answer about one credit, recorded once; the batch is done when nothing of it is open."""
    cr = conn.execute(select(CR).where(CR.c.id == credit_id).with_for_update()).one()
    if cr.status in rules.FINAL:
        return str(cr.status)
    if result.amount_fen != int(cr.amount):  # the bank's booking must be ours to the fen; an operator looks
        return "unknown"
    if result.status == "accepted":
        conn.execute(update(CR).where(CR.c.id == credit_id).values(status="accepted", bank_ref=result.bank_ref, updated_at=now))
        return "accepted"
    status = "credited" if result.status == "confirmed" else "returned"
    conn.execute(update(CR).where(CR.c.id == credit_id).values(status=status, bank_ref=result.bank_ref, updated_at=now,
                                                                return_code=None if status == "credited" else (result.error_code or "RETURNED"),
                                                                settled_at=result.confirmed_at or now))
    audit.append(conn, region=cr.region, actor=actor, action=f"benefits.{status}", subject=cr.person_id,
                 detail={"credit": credit_id, "bank": cr.bank_id, "amount": int(cr.amount), "bank_ref": result.bank_ref,
                         **({"return_code": result.error_code or "RETURNED"} if status == "returned" else {})}, now=now)
    if batches.count_open(conn, cr.batch_id) == 0:
        conn.execute(update(B).where(B.c.id == cr.batch_id, B.c.status == "submitted").values(status="done", done_at=now, updated_at=now))
    return status


async def drive(ctx: Context, credit_id: str, *, actor: str) -> Outcome:
    """One credit one step further: ask the bank about its instruction, send it if the bank never had it, record the answer.
    Safe to run any number of times: the bank books the number once and a settled credit is never sent again."""
    def read(conn: Connection):  # noqa: ANN202
        return conn.execute(select(CR, B.c.agency, B.c.purpose, P.c.name_enc).join(B, B.c.id == CR.c.batch_id)
                            .join(P, P.c.id == CR.c.person_id).where(CR.c.id == credit_id)).one()
    cr = await ctx.run(read, write=False)
    if cr.status in rules.FINAL or cr.status == "pending":
        return Outcome(credit_id, str(cr.status), int(cr.amount), cr.return_code)
    bank = await ctx.bank(cr.bank_id)
    try:
        try:
            result = await bank.query_payout(cr.id)  # asked first, always: a lost answer may have booked it already
        except NotFoundAtChannel:
            if cr.status != "sending":  # the bank accepted it once and now knows nothing: not ours to resend
                return Outcome(credit_id, "unknown", int(cr.amount), "instruction_vanished_at_bank")
            keyring = ctx.keyring
            result = await bank.payout(cr.id, payee_account=keyring.decrypt(bytes(cr.account_no_enc), "card_account"),
                                       payee_name=keyring.decrypt(bytes(cr.name_enc), "name"), amount_fen=int(cr.amount),
                                       purpose=f"{cr.agency} {cr.purpose}"[:128])
            if result.status == "accepted":
                result = await bank.query_payout(cr.id)  # the outcome, if the bank has it already
    except ChannelError as exc:  # no trustworthy answer: the instruction stays open; the next run asks again
        return Outcome(credit_id, "unknown", int(cr.amount), exc.describe())
    state = await ctx.run(lambda c: _settle(c, ctx.now(), credit_id, result, actor))
    return Outcome(credit_id, state, int(cr.amount), result.error_code if state != "unknown" else "bank_amount_differs")
