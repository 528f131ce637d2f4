"""A holder's payment records (支付记录): every settlement of theirs — at the counter, by one-code, face or a bill sent to
the phone — and every one they paid for another (a guardian for a child), each with the money split to the fen, its
refunds and the re-settlement a refund of some items made; and what waits for the holder now (待支付).

Read only. The settlements are care's, the orders and refunds payments'; reads across packages are allowed, and this
is the one query the app's 支付记录 page (web/holder_payments.py) reads through.

Every fen is explained: ``total = fund + account + cash`` for the settlement (the fund by layer: 统筹 pool, 大病
serious illness, 大额 large amount, other funds, 医疗救助 assistance); a refund gives back, with a minus sign and its
date, each leg by layer: a refund of some items (scope ``items``) the legs it recorded and the items it named, a refund
of a whole part (``all``, ``insurance``, ``cash``, ``lines``) what was left of each leg of that part after the refunds
that succeeded before it. What remains of each leg is what was paid less what succeeded refunds gave back; what the
holder finally paid is the total less what was given back — the remaining legs' sum, to the fen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import NotFound
from yibao.domain.ledger import FUND_LAYERS, person_account
from yibao.services.payments import bills
from yibao.store.tables import fee_lines as F
from yibao.store.tables import institutions as I
from yibao.store.tables import payment_institutions as PI
from yibao.store.tables import payment_orders as O
from yibao.store.tables import payment_refunds as R
from yibao.store.tables import settlements as S

LIMIT = 50
LAYERS = FUND_LAYERS
LEGS = (*LAYERS, "account", "cash")  # as care/settlement.LEGS: a refund's legs are stored by these names


def _at(at: datetime | None) -> datetime | None:
    """A stored time in UTC (SQLite gives it back naive)."""
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RefundLine:
    id: str
    at: datetime
    status: str  # requested | unknown | succeeded | failed
    scope: str  # all | cash | insurance | lines | items
    fund: int  # fen given back, each a positive number (shown with a minus sign): the fund layers' sum
    account: int
    insurance_other: int  # an insurance amount the legs left could not explain (not split further; never expected)
    cash: int
    resettled_as: str | None  # scope lines: the settlement the kept items were settled again in
    layers: dict[str, int] = field(default_factory=dict)  # the fund given back by layer (LAYERS), summing to ``fund``
    items: list[tuple[str, str]] = field(default_factory=list)  # scope items: (feedetl_sn, name) refunded

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
    given: dict[str, int] = field(default_factory=dict)  # each leg (LEGS) given back by the refunds that succeeded
    account_owner: str | None = None  # whose personal account paid ``account``: the patient's own, a guardian's, a relative's

    @property
    def paid(self) -> dict[str, int]:
        """Each leg (LEGS) as the settlement paid it."""
        return {**self.fund, "account": self.account, "cash": self.cash}

    @property
    def remaining(self) -> dict[str, int]:
        """Each leg (LEGS) still paid: as paid less what succeeded refunds gave back; ``fund`` (layers' sum) and
        ``total`` beside them. A counter settlement cancelled keeps nothing."""
        if self.method == "counter" and self.status == "cancelled":
            left = {name: 0 for name in LEGS}
        else:
            left = {name: v - self.given.get(name, 0) for name, v in self.paid.items()}
        fund = sum(left[name] for name in LAYERS)
        return {**left, "fund": fund, "total": fund + left["account"] + left["cash"]}

    @property
    def partly_refunded(self) -> bool:
        """Some of it given back, some of it still paid."""
        return 0 < self.refunded < self.total and self.status != po.VOIDED

    @property
    def refunded(self) -> int:
        """What was given back (refunds that succeeded); a counter settlement cancelled gives back all of it."""
        if self.method == "counter":
            return self.total if self.status == "cancelled" else 0
        return sum(r.total for r in self.refunds if r.status == "succeeded")

    @property
    def waiting(self) -> bool:
        """A payment not yet decided (the holder's PIN, the cash in doubt): nothing was paid yet, nothing refunded."""
        return self.method != "counter" and self.status in po.OPEN

    @property
    def money_moved(self) -> bool:
        """Whether the settlement was paid: a counter settlement always was; an order once it completed (and what
        refunds make of it), never while it waits nor once voided (declined, expired, refused)."""
        return self.method == "counter" or self.status in po.PAID

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
         .where(or_(S.c.person_id == holder_id, S.c.id.in_(paid), S.c.account_id == person_account(holder_id)), where)
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
    names = _item_names(conn, [(r.visit_id, f) for r in rows for f in refunds.get(r.order_id, [])])
    out = []
    for r in rows:
        paid = {"pool": int(r.pool_fund), "serious_illness": int(r.serious_illness), "large_amount": int(r.large_amount),
                "other": int(r.other), "assistance": int(r.assistance), "account": int(r.account_pay), "cash": int(r.cash_pay)}
        fs = refunds.get(r.order_id, [])
        # What a refund of a whole part gives back is what was left of that part's legs. Not read in the order of the
        # rows (two refunds of one second have no order): a part is reversed once, so the part a succeeded whole refund
        # gave back is what was paid less what the succeeded refunds of items gave back; one not (yet) succeeded is
        # measured against what every succeeded refund left.
        by_items = _sum(_legs(f, paid)[0] for f in fs if f.status == "succeeded" and f.legs)
        whole = _sum(_legs(f, _minus(paid, by_items))[0] for f in fs if f.status == "succeeded" and not f.legs)
        given = _sum([by_items, whole])
        lines = []
        for f in fs:
            legs, other = _legs(f, _minus(paid, by_items if f.status == "succeeded" else given))
            items = [(sn, names.get((r.visit_id, sn), "")) for sn in json.loads(f.items)] if f.items else []
            lines.append(RefundLine(f.id, _at(f.completed_at) or _at(f.created_at), f.status, f.scope,  # type: ignore[arg-type]
                                    sum(legs[name] for name in LAYERS), legs["account"], other, legs["cash"],
                                    setl_of.get(f.rebill_order_id or ""), {name: legs[name] for name in LAYERS}, items))
        out.append(Record(
            r.id, _at(r.created_at), r.method or "counter", r.order_status or r.status, r.institution_id, r.institution_name,  # type: ignore[arg-type]
            r.person_id, r.payer_id or r.person_id, int(r.total), {name: paid[name] for name in LAYERS},
            int(r.fund_total), int(r.account_pay), int(r.cash_pay), r.order_id, r.pi_name, r.trade_no,
            _at(r.cancelled_at), r.cancel_reason, r.void_reason, lines, resettles.get(r.order_id or ""), given,
            _owner(r.account_id)))
    return out


def _owner(account_id: str | None) -> str | None:
    """The person whose personal account a settlement's ``account_id`` ("person:<psn_no>") names."""
    return account_id.split(":", 1)[1] if account_id and account_id.startswith("person:") else None


def _sum(legs: Any) -> dict[str, int]:
    out = {name: 0 for name in LEGS}
    for each in legs:
        out = {name: out[name] + each[name] for name in LEGS}
    return out


def _minus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {name: a[name] - b[name] for name in LEGS}


def _legs(f: Any, left: dict[str, int]) -> tuple[dict[str, int], int]:
    """What a refund gives back of each leg (LEGS), and any insurance fen the legs cannot explain: a refund of items
    recorded its legs; a refund of a whole part gives back what was left of that part's legs when it was made."""
    if f.legs:
        stored = json.loads(f.legs)
        return {name: int(stored.get(name, 0)) for name in LEGS}, 0
    legs = {name: 0 for name in LEGS}
    legs["cash"] = int(f.cash_fen)
    insurance = int(f.insurance_fen)
    if insurance and insurance == sum(left[name] for name in LEGS if name != "cash"):
        legs.update({name: left[name] for name in LEGS if name != "cash"})
        insurance = 0
    return legs, insurance


def _item_names(conn: Connection, refunds: list[tuple[str, Any]]) -> dict[tuple[str, str], str]:
    """(visit, feedetl_sn) → the fee line's name, for the items the refunds named (a refunded line before any other)."""
    wanted = {(visit, sn) for visit, f in refunds if f.items for sn in json.loads(f.items)}
    if not wanted:
        return {}
    out: dict[tuple[str, str], str] = {}
    q = (select(F.c.visit_id, F.c.feedetl_sn, F.c.name, F.c.status)
         .where(F.c.visit_id.in_(sorted({v for v, _ in wanted})), F.c.feedetl_sn.in_(sorted({sn for _, sn in wanted}))))
    for row in conn.execute(q).all():
        k = (row.visit_id, row.feedetl_sn)
        if k in wanted and (k not in out or row.status == "refunded"):
            out[k] = row.name
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
