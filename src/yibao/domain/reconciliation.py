"""Daily reconciliation with a payment institution: matching its statement to the platform's cash legs. Pure: no I/O.

One side is the institution's statement of a Beijing day (rows: a trade collected, or a refund given back). The other
is the platform's cash legs at that institution: an order's cash (the ledger's ``{setl_id}:cash`` transfer) and a
refund's cash (``{setl_id}:cash:refund``; a refund of items: ``…:cash:refund:{refund id}``). A row is matched to a leg by our own number first — the order id is our
out_trade_no, the refund id our out_refund_no — and by the institution's number second (trade_no, refund_id).

Each difference gets exactly one class:

- ``missing_at_institution`` (短款·渠道漏单): a leg the platform completed that day, no row in the statement;
- ``missing_at_platform`` (长款·平台漏单): a row the platform has no leg for (an unknown order; a refund it never made of
  an order it does not hold as paid);
- ``amount_differs`` (金额不符): matched, the amounts differ (both ways: ``platform_fen`` vs ``institution_fen``);
- ``status_differs`` (状态不符), both ways: the institution lists done what the platform has not completed (an order still
  pending or voided, a refund still in doubt or failed), or it lists a refund the platform never made of an order the
  platform holds as paid (the platform says completed, the institution refunded: the difference names the order).
  The statement lists only what succeeded, so "the platform done, the institution not listing it at all" shows as
  ``missing_at_institution`` of that leg;
- ``duplicate`` (重复): the same trade or refund listed more than once.

**The pool.** A row or leg within ``CUTOFF`` before the day's midnight that finds no completed counterpart waits in the
pool and is matched again by the next day's run (it may sit on the other side of midnight there: the two clocks, or
the institution's cut-off, differ); only then is it a difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple

CHINA = timezone(timedelta(hours=8))
CUTOFF = timedelta(minutes=5)  # [guess] the minutes before midnight whose items wait for the next day's run

MISSING_AT_INSTITUTION = "missing_at_institution"
MISSING_AT_PLATFORM = "missing_at_platform"
AMOUNT_DIFFERS = "amount_differs"
STATUS_DIFFERS = "status_differs"
DUPLICATE = "duplicate"
CLASSES = (MISSING_AT_INSTITUTION, MISSING_AT_PLATFORM, AMOUNT_DIFFERS, STATUS_DIFFERS, DUPLICATE)
CLASS_NAMES_ZH = {MISSING_AT_INSTITUTION: "支付机构漏单（平台短款）", MISSING_AT_PLATFORM: "平台漏单（平台长款）", AMOUNT_DIFFERS: "金额不符",
                  STATUS_DIFFERS: "状态不符", DUPLICATE: "重复记录"}

# Leg states, as the matching sees them.
DONE = "done"  # the cash moved in the platform's books (an order paid, a refund succeeded)
PENDING = "pending"  # asked, answer not known yet
VOIDED = "voided"  # the order was voided: the platform holds no cash for it
FAILED = "failed"  # the refund failed: nothing was given back in the platform's books

# What resolves a difference (services/reconciliation/resolutions.py).
QUERY = "query"  # the institution's query decides, through the path that owns the object (payment recovery, refunds)
REFUND = "refund"  # money at the institution without a platform order goes back through the refunds service
CORRECTING_TRANSFER = "correcting_transfer"  # the ledger's cash leg is corrected to the amount the institution's query confirms
ACCEPT = "accept"  # accepted with a note; nothing moves
RESOLUTIONS = (QUERY, REFUND, CORRECTING_TRANSFER, ACCEPT)


def allowed_resolutions(cls: str, kind: str, leg_status: str | None) -> tuple[str, ...]:
    """Which resolutions the design allows for a difference (``accept`` always). A trade whose cash the platform does not
    hold (no order, or the order voided) goes back by ``refund`` — no query can give it an order; a correcting transfer
    only for a trade's amount; everything else is first the institution's query."""
    if kind == "trade" and (cls == MISSING_AT_PLATFORM or (cls == STATUS_DIFFERS and leg_status == VOIDED)):
        return (REFUND, ACCEPT)
    if kind == "trade" and cls == AMOUNT_DIFFERS:
        return (QUERY, CORRECTING_TRANSFER, ACCEPT)
    return (QUERY, ACCEPT)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A Beijing day as an aware UTC interval [start, end)."""
    start = datetime.combine(day, time(0), CHINA).astimezone(timezone.utc)
    return start, start + timedelta(days=1)


def beijing_day(at: datetime) -> date:
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(CHINA).date()


class Row(NamedTuple):
    """One statement row. ``key``: our number (out_trade_no of a trade, out_refund_no of a refund);
    ``ref``: the institution's number (trade_no of a trade, refund_id of a refund). A named tuple, not a dataclass: a
    day holds a million of them, and a tuple is made several times faster (bench/books.py)."""

    kind: str  # trade | refund
    key: str
    ref: str
    out_trade_no: str
    amount_fen: int
    at: datetime
    carried: bool = False  # pooled by the previous day's run


class Leg(NamedTuple):
    """One of the platform's cash legs (or an order or refund that has none yet). ``ref``: the institution's number as
    the platform recorded it; ``status``: DONE, PENDING, VOIDED or FAILED; ``state``: the platform's own word for it.
    A named tuple, as a Row is."""

    kind: str
    key: str
    ref: str | None
    out_trade_no: str
    amount_fen: int
    at: datetime | None  # when the cash moved in the platform's books (None: it has not)
    status: str
    state: str
    order_id: str
    refund_id: str | None = None
    region: str = ""
    carried: bool = False


@dataclass(frozen=True)
class Difference:
    cls: str
    kind: str
    key: str
    row: Row | None
    leg: Leg | None
    count: int = 1  # duplicates: how many times the row is listed

    @property
    def platform_fen(self) -> int | None:
        return self.leg.amount_fen if self.leg is not None else None

    @property
    def institution_fen(self) -> int | None:
        return self.row.amount_fen if self.row is not None else None


@dataclass
class Outcome:
    matched: int = 0
    differences: list[Difference] = field(default_factory=list)
    pooled_rows: list[Row] = field(default_factory=list)
    pooled_legs: list[Leg] = field(default_factory=list)
    offday: list[tuple[str, str]] = field(default_factory=list)  # (kind, key) of legs of another day matched here


def match(day: date, rows: list[Row], candidates: list[Leg], legs_of_day: list[Leg], *, cutoff: timedelta = CUTOFF) -> Outcome:
    """Match the day's rows (and rows carried from the pool) to the platform's legs.

    ``candidates``: every leg a row may match, whatever its day (looked up by the rows' numbers) — the carried legs
    among them; ``legs_of_day``: the legs the platform completed on ``day`` (and the carried ones), each of which must
    find a row or be a difference (or wait in the pool)."""
    out = Outcome()
    by_key: dict[tuple[str, str], Leg] = {}
    by_ref: dict[tuple[str, str], Leg] = {}
    for legs in (candidates, legs_of_day):
        for leg in legs:
            k = (leg.kind, leg.key)
            if k not in by_key:
                by_key[k] = leg
                if leg.ref:
                    by_ref.setdefault((leg.kind, leg.ref), leg)
    matched: set[tuple[str, str]] = set()
    seen: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], Row] = {}
    start, end = day_bounds(day)
    late = end - cutoff  # the cut-off minutes: [late, end)
    for row in rows:
        k = (row.kind, row.key)
        seen[k] = seen.get(k, 0) + 1
        if seen[k] > 1:
            continue
        first[k] = row
        leg = by_key.get(k) or (by_ref.get((row.kind, row.ref)) if row.ref else None)
        waits = not row.carried and late <= row.at < end
        if leg is None:
            # A refund the platform never made, of an order it holds as paid: the platform says completed, the
            # institution refunded — the order's status differs. Of an order it does not hold as paid: missing.
            parent = by_key.get(("trade", row.out_trade_no)) if row.kind == "refund" else None
            if waits:
                out.pooled_rows.append(row)
            elif parent is not None and parent.status == DONE:
                out.differences.append(Difference(STATUS_DIFFERS, row.kind, row.key, row, parent))
            else:
                out.differences.append(Difference(MISSING_AT_PLATFORM, row.kind, row.key, row, None))
            continue
        if leg.status != DONE and waits:
            out.pooled_rows.append(row)
            matched.add((leg.kind, leg.key))  # its leg is not counted missing today either: both wait
            continue
        matched.add((leg.kind, leg.key))
        if leg.status != DONE:
            out.differences.append(Difference(STATUS_DIFFERS, row.kind, row.key, row, leg))
        elif leg.amount_fen != row.amount_fen:
            out.differences.append(Difference(AMOUNT_DIFFERS, row.kind, row.key, row, leg))
        else:
            out.matched += 1
        if leg.at is not None and not (start <= leg.at < end) and not leg.carried:
            out.offday.append((leg.kind, leg.key))
    for k, n in seen.items():
        if n > 1:
            row = first[k]
            leg = by_key.get(k) or (by_ref.get((row.kind, row.ref)) if row.ref else None)
            out.differences.append(Difference(DUPLICATE, row.kind, row.key, row, leg, count=n))
    for leg in legs_of_day:
        if (leg.kind, leg.key) in matched or leg.status != DONE:
            continue
        if not leg.carried and leg.at is not None and late <= leg.at < end:
            out.pooled_legs.append(leg)
        else:
            out.differences.append(Difference(MISSING_AT_INSTITUTION, leg.kind, leg.key, None, leg))
        matched.add((leg.kind, leg.key))
    return out


def carried(item: Row | Leg) -> Row | Leg:
    return item._replace(carried=True)
