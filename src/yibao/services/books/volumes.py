"""Settlement volumes for the agency's dashboard and an institution's recent settlements for its
cashier console. Read only.

A "day" is the regions' calendar day (China Standard Time, UTC+8): [00:00, 24:00) local, compared with
``created_at`` in UTC (every time is stored in UTC). A settlement belongs to the day it was made (for a
payment order: when its money was held), whatever became of it since, and is counted by its status now.
A period is a run of whole days, first to last (both included; at most ``MAX_DAYS``): its figures are its days'
figures added up (`by_region` with ``last``; `period` checks a period the dashboard was asked for, `preset` names
today, this week (from Monday) and this month):

- ``settled`` and ``partial`` (partly refunded: the cash only or the insurance only, services/payments/refunds.py)
  are the day's settlements. Their money is what was paid **net of what has been given back**: each
  layer (the four fund layers, the personal account, the cash) less its refund legs in the ledger
  (transfers ``code='refund'``, ``ref=<setl_id>``, client ids ``<setl_id>:<leg>:refund``). What was
  given back is also kept per layer (``refunded``), so the gross is ``paid + refunded``.
- ``cancelled`` (cancelled, reversed, or refunded in full) are counted apart and none of their money is
  in the paid figures: everything they moved was moved back.
- ``pending`` (a payment order holds the money; nothing has moved yet) is counted as in progress, not
  as a settlement, and none of its money is in the paid figures.
- ``voided`` (a payment that did not go through: nothing was ever paid) is left out altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from yibao.domain.errors import InputError
from yibao.store.tables import settlements as S
from yibao.store.tables import transfers as T

CHINA = timezone(timedelta(hours=8))
LAYERS = ("pool_fund", "serious_illness", "large_amount", "other", "assistance", "account_pay", "cash_pay")
FUND_LAYERS = LAYERS[:5]
# A settlement's ledger legs are named <setl_id>:<leg> (services/care/settlement.py); a refund reverses one as <...>:refund.
# Cross-region legs have a second half, <setl_id>:<leg>:cleared, between the regions' clearing accounts: the same money.
_LEG_LAYER = {"pool": "pool_fund", "serious_illness": "serious_illness", "large_amount": "large_amount", "other": "other", "assistance": "assistance",
              "account": "account_pay", "cash": "cash_pay"}
COUNTED = ("settled", "partial")
MAX_DAYS = 366  # the longest period the dashboard sums (a year, a leap one too)
PRESETS = ("today", "week", "month")


def _zero() -> dict[str, int]:
    return dict.fromkeys(LAYERS, 0)


@dataclass
class RegionDay:
    region: str
    settled: int = 0  # settlements of the day: settled + partial
    partial: int = 0  # of which partly refunded
    cancelled: int = 0  # cancelled, reversed or refunded in full
    in_progress: int = 0  # pending: held for a payment order, nothing moved yet
    total: int = 0  # fen, the day's settlements' totals net of refunds (= Σ paid)
    paid: dict[str, int] = field(default_factory=_zero)  # fen per layer, net of what was given back
    refunded: dict[str, int] = field(default_factory=_zero)  # fen per layer given back of the day's partial settlements

    @property
    def refunded_insurance(self) -> int:
        """Fund layers and personal account given back (a refund's insurance part)."""
        return sum(self.refunded[layer] for layer in (*FUND_LAYERS, "account_pay"))

    @property
    def refunded_cash(self) -> int:
        return self.refunded["cash_pay"]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The region's calendar day in UTC: [day 00:00 UTC+8, next day 00:00 UTC+8)."""
    start = datetime.combine(day, time(0), tzinfo=CHINA).astimezone(timezone.utc)
    return start, start + timedelta(days=1)


def local_day(now: datetime) -> date:
    return now.astimezone(CHINA).date()


def preset(name: str, today: date) -> tuple[date, date]:
    """今天 / 本周 / 本月: today; Monday of this week to today; the 1st of this month to today."""
    if name == "today":
        return today, today
    if name == "week":
        return today - timedelta(days=today.weekday()), today
    if name == "month":
        return today.replace(day=1), today
    raise InputError("preset", "invalid_choice", "时间范围应为今天、本周或本月", "must be today, this week or this month")


def parse_day(text: str, field: str, zh: str, en: str) -> date:
    """A day typed as YYYY-MM-DD (a date field's value); refused naming the field."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(field, "invalid_date", f"{zh}应为日期（年-月-日）", f"{en} must be a date (YYYY-MM-DD)") from None


def period(first: date, last: date) -> tuple[date, date]:
    """A period the dashboard may sum: first no later than last, at most MAX_DAYS days."""
    if first > last:
        raise InputError("date_from", "range_reversed", f"开始日期 {first.isoformat()} 晚于结束日期 {last.isoformat()}",
                         f"the start date {first.isoformat()} is after the end date {last.isoformat()}")
    if (last - first).days + 1 > MAX_DAYS:
        raise InputError("date_to", "range_too_long", f"时间范围最长 {MAX_DAYS} 天（所选为 {(last - first).days + 1} 天）",
                         f"the period may be at most {MAX_DAYS} days long ({(last - first).days + 1} chosen)")
    return first, last


def _refund_layer(setl_id: str, client_id: str) -> str | None:
    """The layer a refund leg gives back, or None for the clearing half of a cross-region leg (counted once)."""
    prefix, suffix = f"{setl_id}:", ":refund"
    if not (client_id.startswith(prefix) and client_id.endswith(suffix)):
        raise ValueError(f"refund transfer {client_id!r} is not a leg of settlement {setl_id}")
    leg = client_id[len(prefix):-len(suffix)]
    if leg.endswith(":cleared"):
        return None
    if leg not in _LEG_LAYER:
        raise ValueError(f"refund transfer {client_id!r}: unknown leg {leg!r}")
    return _LEG_LAYER[leg]


def by_region(conn: Connection, day: date, last: date | None = None) -> list[RegionDay]:
    """Per treatment region: the day's settlements by status, and the money they paid per layer, net of refunds (fen).
    With ``last``: the period from ``day`` to ``last`` (both included), checked by `period`."""
    first, last = period(day, last or day)
    start, end = day_bounds(first)[0], day_bounds(last)[1]
    made = (S.c.created_at >= start, S.c.created_at < end)
    sums = [func.coalesce(func.sum(getattr(S.c, layer)), 0) for layer in LAYERS]
    rows = conn.execute(select(S.c.region, S.c.status, func.count(), func.coalesce(func.sum(S.c.total), 0), *sums).where(*made)
                        .group_by(S.c.region, S.c.status).order_by(S.c.region)).all()
    days: dict[str, RegionDay] = {}
    for region, status, count, total, *paid in rows:
        if status == "voided":  # nothing was ever paid
            continue
        d = days.setdefault(region, RegionDay(region))
        if status in COUNTED:
            d.settled += int(count)
            if status == "partial":
                d.partial += int(count)
            d.total += int(total)
            for layer, amount in zip(LAYERS, paid):
                d.paid[layer] += int(amount)
        elif status == "cancelled":
            d.cancelled += int(count)
        elif status == "pending":
            d.in_progress += int(count)
        else:
            raise ValueError(f"settlement status {status!r} is not known to the dashboard")
    # What the partly refunded ones gave back, leg by leg, as the ledger recorded it.
    refunds = conn.execute(select(S.c.region, S.c.id, T.c.client_id, T.c.amount).join(T, T.c.ref == S.c.id)
                           .where(*made, S.c.status == "partial", T.c.code == "refund", T.c.state == "posted")).all()
    for region, setl_id, client_id, amount in refunds:
        layer = _refund_layer(setl_id, client_id)
        if layer is not None:
            d = days[region]
            d.refunded[layer] += int(amount)
            d.paid[layer] -= int(amount)
            d.total -= int(amount)
    return [days[r] for r in sorted(days)]


def recent_for_institution(conn: Connection, institution_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The institution's latest settlements, newest first: id, visit, status, total and shares (fen), when."""
    rows = conn.execute(select(S.c.id, S.c.visit_id, S.c.person_id, S.c.status, S.c.total, S.c.fund_total, S.c.account_pay, S.c.cash_pay,
                               S.c.created_at)
                        .where(S.c.institution_id == institution_id).order_by(S.c.created_at.desc(), S.c.id.desc()).limit(limit)).all()
    return [{"setl_id": r.id, "visit_id": r.visit_id, "status": r.status, "total": int(r.total), "fund_total": int(r.fund_total),
             "account_pay": int(r.account_pay), "cash_pay": int(r.cash_pay), "at": r.created_at,
             "psn_no": r.person_id} for r in rows]
