"""A holder's payment records (支付记录): every settlement of theirs — at the counter, by one-code, face or a bill sent to
the phone — and every one they paid for another (a guardian for a child), each with the money split to the fen, its
refunds and the re-settlement a refund of some items made; and what waits for the holder now (待支付).

Read only. The settlements are care's, the orders and refunds payments'; reads across packages are allowed, and this
is the one query the app's 支付记录 page (web/holder_payments.py) reads through.

Every fen is explained: ``total = fund + account + cash`` for the settlement (the fund by layer: 统筹 pool, 大病
serious illness, 大额 large amount, other funds, 医疗救助 assistance); a refund gives back, with a minus sign and its
date, the fund and the account it names (the whole insurance part: the settlement is cancelled) and the cash the
institution returned; what the holder finally paid is the total less what was given back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import NotFound
from yibao.services.payments import bills
from yibao.store.tables import institutions as I
from yibao.store.tables import payment_institutions as PI
from yibao.store.tables import payment_orders as O
from yibao.store.tables import payment_refunds as R
from yibao.store.tables import settlements as S

LIMIT = 50
LAYERS = ("pool", "serious_illness", "large_amount", "other", "assistance")


def _at(at: datetime | None) -> datetime | None:
    """A stored time in UTC (SQLite gives it back naive)."""
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RefundLine:
    id: str
    at: datetime
    status: str  # requested | unknown | succeeded | failed
    scope: str  # all | cash | insurance | lines
    fund: int  # fen given back, each a positive number (shown with a minus sign)
    account: int
    insurance_other: int  # an insurance refund that is not the whole fund + account (not split further)
    cash: int
    resettled_as: str | None  # scope lines: the settlement the kept items were settled again in

    @property
    def total(self) -> int:
        return self.fund + self.account + self.insurance_other + self.cash


@dataclass(frozen=True)
class Record:
    setl_id: str
    at: datetime
    method: str  # counter | onecode | face | mobile | …: how the settlement was paid
    status: str  # the order's status (payment_order.py), or the counter settlement's: settled | cancelled
    institution_id: str
    institution_name: str
    patient_id: str
    payer_id: str
    total: int
    fund: dict[str, int]  # by layer
    fund_total: int
    account: int
    cash: int
    payment_id: str | None = None
    payment_institution_name: str | None = None
    trade_no: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    void_reason: str | None = None
    refunds: list[RefundLine] = field(default_factory=list)
    resettles: str | None = None  # this settlement re-settles the items kept by a refund of that settlement

    @property
    def refunded(self) -> int:
        """What was given back (refunds that succeeded); a counter settlement cancelled gives back all of it."""
        if self.method == "counter":
            return self.total if self.status == "cancelled" else 0
        return sum(r.total for r in self.refunds if r.status == "succeeded")

    @property
    def net(self) -> int:
        """What the settlement finally cost all payers together: the total less what was given back (a payment voided
        before it completed cost nothing: its held settlement was cancelled)."""
        return 0 if self.status == po.VOIDED else self.total - self.refunded

    @property
    def explained(self) -> bool:
        return self.fund_total + self.account + self.cash == self.total and sum(self.fund.values()) == self.fund_total


def _records(conn: Connection, holder_id: str, where: Any) -> list[Record]:
    paid = select(O.c.setl_id).where(O.c.payer_id == holder_id, O.c.setl_id.is_not(None)).scalar_subquery()
    q = (select(S, I.c.name.label("institution_name"), O.c.id.label("order_id"), O.c.method, O.c.status.label("order_status"),
                O.c.payer_id, O.c.trade_no, O.c.void_reason, PI.c.name.label("pi_name"))
         .join(I, I.c.id == S.c.institution_id)
         .outerjoin(O, (O.c.setl_id == S.c.id) & (O.c.institution_id == S.c.institution_id))
         .outerjoin(PI, PI.c.id == O.c.payment_institution_id)
         .where(or_(S.c.person_id == holder_id, S.c.id.in_(paid)), where)
         .order_by(S.c.created_at.desc(), S.c.id.desc()).limit(LIMIT))
    rows = conn.execute(q).all()
    orders = [r.order_id for r in rows if r.order_id]
    refunds: dict[str, list[Any]] = {}
    if orders:
        for f in conn.execute(select(R).where(R.c.order_id.in_(orders)).order_by(R.c.created_at, R.c.id)).all():
            refunds.setdefault(f.order_id, []).append(f)
    rebills = {f.rebill_order_id for fs in refunds.values() for f in fs if f.rebill_order_id}
    setl_of: dict[str, str] = {}  # a refund's rebill order → the settlement the kept items were settled again in
    if rebills:
        setl_of = {r.id: r.setl_id for r in conn.execute(select(O.c.id, O.c.setl_id).where(O.c.id.in_(sorted(rebills)))).all()}
    resettles: dict[str, str] = {}  # an order that re-settles kept items → the settlement whose refund made it
    if orders:
        resettles = {r.rebill_order_id: r.setl_id for r in conn.execute(
            select(R.c.rebill_order_id, O.c.setl_id).join(O, O.c.id == R.c.order_id).where(R.c.rebill_order_id.in_(orders))).all()}
    out = []
    for r in rows:
        lines = []
        for f in refunds.get(r.order_id, []):
            whole = bool(f.insurance_fen) and int(f.insurance_fen) == int(r.fund_total) + int(r.account_pay)
            lines.append(RefundLine(f.id, _at(f.completed_at) or _at(f.created_at), f.status, f.scope,  # type: ignore[arg-type]
                                    int(r.fund_total) if whole else 0, int(r.account_pay) if whole else 0,
                                    0 if whole else int(f.insurance_fen), int(f.cash_fen), setl_of.get(f.rebill_order_id or "")))
        out.append(Record(
            r.id, _at(r.created_at), r.method or "counter", r.order_status or r.status, r.institution_id, r.institution_name,  # type: ignore[arg-type]
            r.person_id, r.payer_id or r.person_id, int(r.total),
            {"pool": int(r.pool_fund), "serious_illness": int(r.serious_illness), "large_amount": int(r.large_amount),
             "other": int(r.other), "assistance": int(r.assistance)},
            int(r.fund_total), int(r.account_pay), int(r.cash_pay), r.order_id, r.pi_name, r.trade_no,
            _at(r.cancelled_at), r.cancel_reason, r.void_reason, lines, resettles.get(r.order_id or "")))
    return out


def for_holder(conn: Connection, holder_id: str) -> list[Record]:
    """The holder's latest settlements (their own, and those they paid for another), newest first."""
    return _records(conn, holder_id, S.c.id.is_not(None))


def record(conn: Connection, holder_id: str, setl_id: str) -> Record:
    """One of the holder's settlements; someone else's is "not found", as one that does not exist."""
    found = _records(conn, holder_id, S.c.id == setl_id)
    if not found:
        raise NotFound("setl_id", "not_found", "支付记录不存在", "payment record not found")
    return found[0]


@dataclass(frozen=True)
class Waiting:
    """What waits for the holder (待支付): one-code payments for their PIN, and bills hospitals sent to their phone."""

    confirm: list[tuple[str, datetime | None, int]]  # (payment id, expires at, cash in fen), the soonest to expire first
    bills: int

    @property
    def count(self) -> int:
        return len(self.confirm) + self.bills


def waiting(conn: Connection, holder_id: str, now: datetime) -> Waiting:
    """Cheap enough for every /app page: two indexed reads."""
    rows = conn.execute(select(O.c.id, O.c.confirm_expires_at, O.c.cash_pay)
                        .where(O.c.payer_id == holder_id, O.c.status == po.AWAITING_CONFIRMATION)).all()
    confirm = sorted(((r.id, _at(r.confirm_expires_at), int(r.cash_pay)) for r in rows
                      if r.confirm_expires_at is None or _at(r.confirm_expires_at) > now),  # type: ignore[operator]
                     key=lambda x: (x[1] is None, x[1] or now))
    n_bills = conn.execute(select(func.count()).select_from(O).where(O.c.method == "mobile", O.c.status == po.BILLED,
                                                                     bills.visible(holder_id))).scalar_one()
    return Waiting(confirm, int(n_bills))
