"""Credit payment's daily jobs: reminders before and on the due date, and the overdue sweep.

Both may run any number of times a day: a reminder is recorded once per bill and kind (its key),
and the overdue rule gives the same answer however often it is applied. Each bill or line is its
own unit of work; the bank is asked between units.

A reminder's text goes out through the SMS gateway (services/access/sms.py) after the unit that records
it, never inside it: the row is its outbox entry (`sms_status` pending), marked sent with the gateway's
message id (`sms_id`) once the gateway took it. A text that could not go out (no gateway configured, the gateway
down) stays pending and is sent by the next run, worded from the bill as it is then.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels import ChannelError
from yibao.crypto.pii import Keyring
from yibao.domain import credit as rules_
from yibao.domain.errors import Unavailable
from yibao.domain.money import format_yuan
from yibao.services import Context
from yibao.services.access import sms
from yibao.services.credit import lines as credit
from yibao.services.credit import sync
from yibao.services.people import persons as people
from yibao.store.tables import credit_bills as CB
from yibao.store.tables import credit_enrolments as CE
from yibao.store.tables import credit_reminders as RM
from yibao.store.upsert import insert_ignore

Progress = Callable[[int, int], None]  # (done, total)

_TEXT = {
    "d0": ("今天是还款日", "due today"),
    "overdue": ("已逾期，请尽快还款，逾期将暂停信用支付", "is overdue: please repay; an overdue bill suspends credit payment"),
}


def reminder_text(kind: str, bill_no: str, outstanding: int, due: date) -> str:
    if kind.startswith("d-"):
        zh, en = f"将于{kind[2:]}天后到期", f"is due in {kind[2:]} day(s)"
    else:
        zh, en = _TEXT[kind]
    return (f"【医保】您的信用就医账单{bill_no}待还¥{format_yuan(outstanding)}，还款日{due.isoformat()}，{zh}。"
            f"Bill {bill_no}: ¥{format_yuan(outstanding)} {en} ({due.isoformat()}).")[:200]


def remind_bill(conn: Connection, keyring: Keyring, now: datetime, bill_no: str) -> str | None:
    """Record the reminder this bill should have today, once per kind; returns the kind if new."""
    row = conn.execute(select(CB).where(CB.c.bill_no == bill_no)).first()
    if row is None:
        return None
    rules = credit.credit_rules(row.region, now)
    bill = rules_.Bill(row.amount, row.repaid, row.due_date)
    kind = rules_.reminder_kind(bill, credit.beijing_day(now), rules)
    if kind is None:
        return None
    person = people.require(conn, row.person_id)
    status = "pending" if person.phone_enc is not None else "no_phone"
    if not insert_ignore(conn, RM, dict(bill_no=bill_no, kind=kind, region=row.region, sms_status=status, sms_id=None, created_at=now)):
        return None  # this reminder was already recorded
    return kind


def unsent(conn: Connection) -> list[tuple[str, str]]:
    """Reminders recorded whose text has not gone out yet: (bill_no, kind)."""
    rows = conn.execute(select(RM.c.bill_no, RM.c.kind).where(RM.c.sms_status == "pending").order_by(RM.c.created_at, RM.c.bill_no)).all()
    return [(r.bill_no, r.kind) for r in rows]


def message_of(conn: Connection, keyring: Keyring, bill_no: str, kind: str) -> tuple[str, str] | None:
    """The phone and text of a pending reminder, worded from the bill as it is now; None when there is nothing to
    send any more (the bill repaid meanwhile: marked so)."""
    row = conn.execute(select(CB).where(CB.c.bill_no == bill_no)).first()
    outstanding = row.amount - row.repaid
    if outstanding <= 0:
        conn.execute(update(RM).where(RM.c.bill_no == bill_no, RM.c.kind == kind, RM.c.sms_status == "pending").values(sms_status="repaid"))
        return None
    person = people.require(conn, row.person_id)
    assert person.phone_enc is not None
    return keyring.decrypt(person.phone_enc, "phone"), reminder_text(kind, bill_no, outstanding, row.due_date)


def mark_sent(conn: Connection, bill_no: str, kind: str, message_id: str) -> None:
    conn.execute(update(RM).where(RM.c.bill_no == bill_no, RM.c.kind == kind).values(sms_status="sent", sms_id=message_id))


async def run_reminders(ctx: Context, *, progress: Progress | None = None) -> dict[str, Any]:
    """Record today's reminders for every unpaid bill, then text every reminder not texted yet (SMS gateway). The report
    counts the reminders recorded (``sent``, per kind in ``by_kind``), the bills' outstanding yuan per kind
    (``amounts``) and the texts the gateway took (``texted``)."""
    bills = await ctx.run(lambda c: [(r.bill_no, r.amount - r.repaid) for r in c.execute(
        select(CB.c.bill_no, CB.c.amount, CB.c.repaid).where(CB.c.repaid < CB.c.amount).order_by(CB.c.due_date, CB.c.bill_no)).all()])
    sent: dict[str, int] = {}
    amounts: dict[str, int] = {}
    for i, (bill_no, outstanding) in enumerate(bills, 1):
        kind = await ctx.run(lambda c, b=bill_no: remind_bill(c, ctx.keyring, ctx.now(), b))
        if kind:
            sent[kind] = sent.get(kind, 0) + 1
            amounts[kind] = amounts.get(kind, 0) + outstanding
        if progress:
            progress(i, len(bills))
    problem = None
    texted = 0
    todo = await ctx.run(unsent, write=False)
    for n, (bill_no, kind) in enumerate(todo, 1):
        try:
            gateway = ctx.texter()
            message = await ctx.run(lambda c, b=bill_no, k=kind: message_of(c, ctx.keyring, b, k))
            if message is None:
                continue
            message_id = await sms.send(gateway, phone=message[0], text=message[1])
        except Unavailable as exc:
            problem = exc.code  # no gateway, or it is down: the rest stay pending for the next run
            break
        await ctx.run(lambda c, b=bill_no, k=kind, m=message_id: mark_sent(c, b, k, m))
        texted += 1
        if progress:
            progress(len(bills) + n, len(bills) + len(todo))
    left = len(await ctx.run(unsent, write=False))
    report: dict[str, Any] = {"day": credit.beijing_day(ctx.now()).isoformat(), "bills": len(bills), "sent": sum(sent.values()),
                              "by_kind": sent, "amounts": {k: format_yuan(v) for k, v in amounts.items()}, "texted": texted}
    if left:  # texts that could not go out (said only then: a run that texted everything reports as it always did)
        report.update(unsent=left, sms_problem=problem)
    return report


def _candidates(conn: Connection, now: datetime) -> list[str]:
    """Lines with a bill past due (the grace is checked per region by the rule), or already suspended."""
    today = credit.beijing_day(now)
    rows = conn.execute(select(CE.c.id).where(CE.c.status.in_(("active", "suspended")), (CE.c.status == "suspended") | CE.c.id.in_(
        select(CB.c.enrolment_id).where(CB.c.repaid < CB.c.amount, CB.c.due_date < today)))
        .order_by(CE.c.id)).all()
    return [r.id for r in rows]


async def run_overdue(ctx: Context, *, progress: Progress | None = None) -> dict[str, Any]:
    """For each line with a bill past due: ask the bank for the line (repayments made there, its own
    suspension), then apply the overdue rule here — suspend past due + grace, restore once repaid."""
    ids = await ctx.run(lambda c: _candidates(c, ctx.now()))
    counts = {"checked": 0, "suspended": 0, "active": 0, "bank_unreachable": 0}
    for i, enrolment_id in enumerate(ids, 1):
        enrolment = await ctx.run(lambda c, e=enrolment_id: credit.enrolment_row(c, e))
        try:
            line = await (await ctx.bank(enrolment.payment_institution_id)).credit_line(enrolment_id)
        except ChannelError:
            line = None  # our own bills still decide; the bank's view is applied on the next run
            counts["bank_unreachable"] += 1
        if line is not None:
            status = await ctx.run(lambda c, e=enrolment_id, ln=line: sync.sync_line(c, ctx.now(), e, ln, "job:credit-overdue"))
        else:
            status = await ctx.run(lambda c, e=enrolment_id: credit.evaluate(c, e, ctx.now(), "job:credit-overdue"))
        counts["checked"] += 1
        counts[status] = counts.get(status, 0) + 1
        if progress:
            progress(i, len(ids))
    past_due = await ctx.run(lambda c: _past_due(c, ids, credit.beijing_day(ctx.now())), write=False)
    return {"day": credit.beijing_day(ctx.now()).isoformat(), **counts, "past_due": format_yuan(past_due)}


def _past_due(conn: Connection, enrolment_ids: list[str], today: date) -> int:
    """What the lines checked still owe on bills past their due date, in fen."""
    total = 0
    for start in range(0, len(enrolment_ids), 500):
        total += sum(r.amount - r.repaid for r in conn.execute(select(CB.c.amount, CB.c.repaid).where(
            CB.c.enrolment_id.in_(enrolment_ids[start:start + 500]), CB.c.repaid < CB.c.amount, CB.c.due_date < today)))
    return total
