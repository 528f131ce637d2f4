"""The matching rules of daily reconciliation (domain/reconciliation.py), without I/O."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from yibao.domain import reconciliation as rc

DAY = date(2026, 11, 23)
CHINA = timezone(timedelta(hours=8))


def t(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), CHINA).astimezone(timezone.utc)


def row(key: str, fen: int = 100, at: datetime | None = None, kind: str = "trade", ref: str | None = None, **kw) -> rc.Row:  # noqa: ANN003
    return rc.Row(kind, key, ref or f"T-{key}", key, fen, at or t(10), **kw)


def leg(key: str, fen: int = 100, at: datetime | None = None, status: str = rc.DONE, kind: str = "trade", ref: str | None = None,
        **kw) -> rc.Leg:  # noqa: ANN003
    return rc.Leg(kind, key, ref if ref is not None else f"T-{key}", key, fen, at or t(10), status, "completed", key, **kw)


def classes(out: rc.Outcome) -> set[tuple[str, str]]:
    return {(d.cls, d.key) for d in out.differences}


def test_each_class_exactly_once():
    rows = [row("A"), row("B", 150), row("C"), row("D"), row("D"), row("X")]
    legs = [leg("A"), leg("B"), leg("C", status=rc.PENDING), leg("D"), leg("E")]
    out = rc.match(DAY, rows, legs, [x for x in legs if x.status == rc.DONE])
    assert classes(out) == {(rc.AMOUNT_DIFFERS, "B"), (rc.STATUS_DIFFERS, "C"), (rc.DUPLICATE, "D"), (rc.MISSING_AT_PLATFORM, "X"),
                            (rc.MISSING_AT_INSTITUTION, "E")}
    assert out.matched == 2  # A, and D's first row


def test_a_refund_the_platform_never_made_of_a_paid_order_is_a_status_difference():
    out = rc.match(DAY, [row("A"), row("MR1", kind="refund")], [leg("A")], [leg("A")])
    assert classes(out) == {(rc.MISSING_AT_PLATFORM, "MR1")}  # a refund of an order "MR1" the platform does not know
    out = rc.match(DAY, [row("A"), rc.Row("refund", "MR1", "R1", "A", 100, t(11))], [leg("A")], [leg("A")])
    assert classes(out) == {(rc.STATUS_DIFFERS, "MR1")} and out.differences[0].leg.key == "A"


def test_the_institutions_number_matches_second():
    out = rc.match(DAY, [row("THEIRS", ref="WX1", kind="refund")], [leg("RF1", ref="WX1", kind="refund")],
                   [leg("RF1", ref="WX1", kind="refund")])
    assert out.differences == [] and out.matched == 1


def test_the_cutoff_minutes_wait_in_the_pool_and_count_the_next_day():
    late_leg, late_row = leg("L", at=t(23, 57)), row("R", at=t(23, 58))
    out = rc.match(DAY, [late_row], [], [late_leg])
    assert out.differences == [] and out.pooled_legs == [late_leg] and out.pooled_rows == [late_row]
    early = rc.match(DAY + timedelta(days=1), [row("L", at=t(0, 1, DAY + timedelta(days=1)))], [rc.carried(late_leg)], [rc.carried(late_leg)])
    assert early.differences == [] and early.matched == 1  # matched the next day
    stale = rc.match(DAY + timedelta(days=1), [rc.carried(late_row)], [], [])
    assert classes(stale) == {(rc.MISSING_AT_PLATFORM, "R")}  # a second chance, not a third
    outside = rc.match(DAY, [], [], [leg("M", at=t(23, 54))])
    assert classes(outside) == {(rc.MISSING_AT_INSTITUTION, "M")}  # before the cut-off: counted at once


def test_a_row_whose_order_is_still_pending_in_the_cutoff_waits_with_it():
    out = rc.match(DAY, [row("P", at=t(23, 59))], [leg("P", status=rc.PENDING, at=None)], [])
    assert out.differences == [] and [r.key for r in out.pooled_rows] == ["P"]


def test_resolutions_the_design_allows():
    assert rc.allowed_resolutions(rc.MISSING_AT_PLATFORM, "trade", None) == (rc.REFUND, rc.ACCEPT)
    assert rc.allowed_resolutions(rc.STATUS_DIFFERS, "trade", rc.VOIDED) == (rc.REFUND, rc.ACCEPT)
    assert rc.allowed_resolutions(rc.AMOUNT_DIFFERS, "trade", rc.DONE) == (rc.QUERY, rc.CORRECTING_TRANSFER, rc.ACCEPT)
    assert rc.allowed_resolutions(rc.AMOUNT_DIFFERS, "refund", rc.DONE) == (rc.QUERY, rc.ACCEPT)
    assert rc.allowed_resolutions(rc.MISSING_AT_PLATFORM, "refund", None) == (rc.QUERY, rc.ACCEPT)
