"""Settlement volumes for the agency's dashboard and an institution's recent settlements for its
cashier console. Read only.

A "day" is the regions' calendar day (China Standard Time, UTC+8); settlements are stored in UTC.
Cancelled settlements are counted apart and their money is not in the paid totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from yibao.store.tables import settlements as S

CHINA = timezone(timedelta(hours=8))
LAYERS = ("pool_fund", "serious_illness", "large_amount", "assistance", "account_pay", "cash_pay")


@dataclass
class RegionDay:
    region: str
    settled: int = 0
    cancelled: int = 0
    total: int = 0  # fen, of settled ones
    paid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LAYERS, 0))  # fen per layer, settled ones


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=CHINA).astimezone(timezone.utc)
    return start, start + timedelta(days=1)


def local_day(now: datetime) -> date:
    return now.astimezone(CHINA).date()


def by_region(conn: Connection, day: date) -> list[RegionDay]:
    """Per treatment region: settlements of the day (by when they were made), and money paid per layer."""
    start, end = day_bounds(day)
    sums = [func.coalesce(func.sum(getattr(S.c, layer)), 0) for layer in LAYERS]
    rows = conn.execute(select(S.c.region, S.c.status, func.count(), func.coalesce(func.sum(S.c.total), 0), *sums)
                        .where(S.c.created_at >= start, S.c.created_at < end).group_by(S.c.region, S.c.status)
                        .order_by(S.c.region)).all()
    days: dict[str, RegionDay] = {}
    for region, status, count, total, *paid in rows:
        d = days.setdefault(region, RegionDay(region))
        if status == "settled":
            d.settled += int(count)
            d.total += int(total)
            for layer, amount in zip(LAYERS, paid):
                d.paid[layer] += int(amount)
        else:
            d.cancelled += int(count)
    return [days[r] for r in sorted(days)]


def recent_for_institution(conn: Connection, institution_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The institution's latest settlements, newest first: id, visit, status, total and shares (fen), when."""
    rows = conn.execute(select(S.c.id, S.c.visit_id, S.c.person_id, S.c.status, S.c.total, S.c.fund_total, S.c.account_pay, S.c.cash_pay,
                               S.c.created_at)
                        .where(S.c.institution_id == institution_id).order_by(S.c.created_at.desc(), S.c.id.desc()).limit(limit)).all()
    return [{"setl_id": r.id, "visit_id": r.visit_id, "status": r.status, "total": int(r.total), "fund_total": int(r.fund_total),
             "account_pay": int(r.account_pay), "cash_pay": int(r.cash_pay), "at": r.created_at,
             "psn_no": r.person_id} for r in rows]
