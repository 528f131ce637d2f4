"""A cashier's shift summary (交班汇总): the settlements one institution's counter made in a window of time (the
console session's shift, or the Beijing day) and the money given back in it, each row with its shares by layer
(fund, personal account, cash) and its payment mode, and the totals — every total the sum of its rows. Read only.

- A settlement is in the window when it was made in it (``created_at``), whatever became of it since, and counted
  with what it paid then (its gross shares): ``settled``, ``partial`` and ``cancelled`` ones. A ``pending`` one (a
  payment still holding the money) is listed apart, not in the totals; a ``voided`` one (its payment never went
  through) not at all.
- A refund row is one giving-back of a settlement of this institution made in the window (its legs posted together:
  a cancellation at the counter, a reversal, a payment's refund of the cash or of the insurance), read from the
  ledger: transfers with code ``cancel`` / ``reversal`` / ``refund`` and ``ref=<setl_id>``, their client ids
  ``<setl_id>:<leg>:<code>`` naming the layer (a refund of some items ``<setl_id>:<leg>:refund:<refund id>``, one row
  per refund; the clearing half of a cross-region leg, ``…:cleared:…``, is the same money and is counted once).
- The payment mode: ``counter`` (settled at the counter, the cash collected there), else the payment order's method
  (``onecode``, ``face``, ``mobile``, ``medins``), or ``credit`` when the cash went on the payer's credit line.

So net = settled − refunded, layer by layer, is what the shift leaves with the institution's books.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain.ledger import FUND_LAYERS
from yibao.store.tables import payment_orders as O
from yibao.store.tables import settlements as S
from yibao.store.tables import transfers as T

SHARES = ("total", "fund", "account", "cash")
MODES = ("counter", "onecode", "face", "mobile", "medins", "credit")
GIVE_BACK = ("cancel", "reversal", "refund")
_LEG_SHARE = {**dict.fromkeys(FUND_LAYERS, "fund"), "account": "account", "cash": "cash"}


def _zero() -> dict[str, int]:
    return dict.fromkeys(SHARES, 0)


@dataclass
class Group:
    """A total: how many rows and the sum of their shares (fen)."""

    count: int = 0
    money: dict[str, int] = field(default_factory=_zero)

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        for k in SHARES:
            self.money[k] += row[k]


@dataclass
class Shift:
    start: datetime
    end: datetime
    settlements: list[dict[str, Any]]  # oldest first
    refunds: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    settled: Group
    refunded: Group
    settled_by_mode: dict[str, Group]
    refunded_by_mode: dict[str, Group]

    @property
    def net(self) -> dict[str, int]:
        return {k: self.settled.money[k] - self.refunded.money[k] for k in SHARES}


def _mode(method: str | None, cash_source: str | None) -> str:
    if method is None:
        return "counter"
    if cash_source == "credit":
        return "credit"
    if method not in MODES:
        raise ValueError(f"payment method {method!r} is not known to the shift summary")
    return method


def _share(setl_id: str, client_id: str, code: str) -> str | None:
    """The share a give-back leg returns, or None for the clearing half of a cross-region leg (counted once). Its client
    id is ``<setl_id>:<leg>[:cleared]:<code>``, or for a refund of some items ``…:refund:<refund id>``."""
    prefix, marker = f"{setl_id}:", f":{code}"
    rest = client_id.removeprefix(prefix)
    leg, sep, tail = rest.partition(marker)
    if rest == client_id or not sep or (tail and (code != "refund" or not tail.startswith(":") or ":" in tail[1:])):
        raise ValueError(f"{code} transfer {client_id!r} is not a leg of settlement {setl_id}")
    if leg.endswith(":cleared"):
        return None
    if leg not in _LEG_SHARE:
        raise ValueError(f"{code} transfer {client_id!r}: unknown leg {leg!r}")
    return _LEG_SHARE[leg]


def summary(conn: Connection, *, institution_id: str, start: datetime, end: datetime) -> Shift:
    """The institution's settlements made in [start, end) and what was given back in it, with their totals (fen)."""
    orders = (select(O.c.setl_id, O.c.method, O.c.cash_source).where(O.c.institution_id == institution_id, O.c.setl_id.is_not(None))
              .subquery())
    made = conn.execute(select(S.c.id, S.c.visit_id, S.c.status, S.c.total, S.c.fund_total, S.c.account_pay, S.c.cash_pay, S.c.created_at,
                               orders.c.method, orders.c.cash_source)
                        .select_from(S.outerjoin(orders, orders.c.setl_id == S.c.id))
                        .where(S.c.institution_id == institution_id, S.c.created_at >= start, S.c.created_at < end)
                        .order_by(S.c.created_at, S.c.id)).all()
    settlements, pending = [], []
    settled, by_mode = Group(), {m: Group() for m in MODES}
    for r in made:
        if r.status == "voided":
            continue
        row = {"setl_id": r.id, "visit_id": r.visit_id, "status": r.status, "at": r.created_at, "mode": _mode(r.method, r.cash_source),
               "total": int(r.total), "fund": int(r.fund_total), "account": int(r.account_pay), "cash": int(r.cash_pay)}
        if r.status == "pending":
            pending.append(row)
            continue
        settlements.append(row)
        settled.add(row)
        by_mode[row["mode"]].add(row)

    legs = conn.execute(select(T.c.ref, T.c.code, T.c.client_id, T.c.amount, T.c.created_at, orders.c.method, orders.c.cash_source)
                        .select_from(T.join(S, S.c.id == T.c.ref).outerjoin(orders, orders.c.setl_id == S.c.id))
                        .where(S.c.institution_id == institution_id, T.c.code.in_(GIVE_BACK), T.c.state == "posted",
                               T.c.created_at >= start, T.c.created_at < end)
                        .order_by(T.c.created_at, T.c.id)).all()
    events: dict[tuple[str, str, datetime], dict[str, Any]] = {}
    for leg in legs:
        share = _share(leg.ref, leg.client_id, leg.code)
        if share is None:
            continue
        row = events.setdefault((leg.ref, leg.code, leg.created_at), {
            "setl_id": leg.ref, "kind": leg.code, "at": leg.created_at, "mode": _mode(leg.method, leg.cash_source), **_zero()})
        row[share] += int(leg.amount)
        row["total"] += int(leg.amount)
    refunds = list(events.values())
    refunded, refunded_by_mode = Group(), {m: Group() for m in MODES}
    for row in refunds:
        refunded.add(row)
        refunded_by_mode[row["mode"]].add(row)
    return Shift(start, end, settlements, refunds, pending, settled, refunded,
                 {m: g for m, g in by_mode.items() if g.count}, {m: g for m, g in refunded_by_mode.items() if g.count})


def by_mode_rows(shift: Shift) -> list[dict[str, Any]]:
    """Per payment mode: settled, refunded and net (fen), for every mode with a row in the shift."""
    out = []
    for m in MODES:
        s, r = shift.settled_by_mode.get(m, Group()), shift.refunded_by_mode.get(m, Group())
        if s.count or r.count:
            out.append({"mode": m, "settled": s, "refunded": r, "net": {k: s.money[k] - r.money[k] for k in SHARES}})
    return out
