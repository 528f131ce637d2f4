"""The audit log a page at a time (services/books/audit.py `search`), on SQLite and PostgreSQL: newest first, pages
that neither miss nor repeat an entry (keyset by time, region, lane and sequence: entries of two regions at the same
instant too, and entries appended while paging), and the filters — region, action, actor (from its start), period."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from yibao.domain.errors import InputError
from yibao.services.books import audit
from yibao.services.books.volumes import day_bounds

T0 = datetime(2026, 12, 6, 15, 30, tzinfo=timezone.utc)  # 2026-12-06 23:30 in UTC+8


def _append(db, at: datetime, region: str, actor: str, action: str, subject: str) -> None:  # noqa: ANN001
    db.run(lambda c: audit.append(c, region=region, actor=actor, action=action, subject=subject, detail={}, now=at))


def _all_pages(db, what: audit.Search, size: int) -> list[list[str]]:  # noqa: ANN001
    pages, before = [], None
    while True:
        page = db.run(lambda c, b=before: audit.search(c, what, b, size), write=False)
        pages.append([e.subject for e in page.entries])
        if page.older is None:
            return pages
        before = audit.Position.parse(page.older.token())  # through the link's text, as the page does


def test_pages_newest_first_miss_and_repeat_nothing_and_filters_narrow_them(db):
    # 1..7 one minute apart, 2 and 3 at the same instant in two regions; the day changes (UTC+8) between 4 and 5.
    at = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(minutes=31),
          T0 + timedelta(minutes=32), T0 + timedelta(minutes=33)]
    who = [("440300", "operator:demo", "pii.operator_lookup"), ("440300", "his:H1", "settlement.settle"), ("330200", "his:H2", "settlement.settle"),
           ("330200", "operator:demo", "payment_institution.suspend"), ("440300", "bank", "credit.hold"),
           ("370200", "operator:other", "pii.operator_lookup"), ("440300", "his:H1", "settlement.cancel")]
    for i, (when, (region, actor, action)) in enumerate(zip(at, who), start=1):
        _append(db, when, region, actor, action, f"S{i}")

    newest_first = ["S7", "S6", "S5", "S4", "S2", "S3", "S1"]  # the same instant: the larger region first (440300, 330200)
    assert _all_pages(db, audit.Search(), 50) == [newest_first]
    assert _all_pages(db, audit.Search(), 3) == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    assert _all_pages(db, audit.Search(), 2) == [newest_first[i:i + 2] for i in range(0, 7, 2)]

    first = db.run(lambda c: audit.search(c, audit.Search(), None, 3), write=False)
    _append(db, T0 + timedelta(hours=1), "440300", "bank", "credit.hold", "S8")  # appended while the reader is on page 1
    second = db.run(lambda c: audit.search(c, audit.Search(), first.older, 3), write=False)
    assert [e.subject for e in second.entries] == newest_first[3:6]

    def subjects(**what: object) -> list[str]:
        return [s for page in _all_pages(db, audit.Search(**what), 2) for s in page]

    assert subjects(region="330200") == ["S4", "S3"]
    assert subjects(action="settlement.settle") == ["S2", "S3"]
    assert subjects(actor="operator:") == ["S6", "S4", "S1"]  # every operator
    assert subjects(actor="operator:demo") == ["S4", "S1"]
    assert subjects(actor="op%") == []  # a wildcard is a character, not a pattern
    day6, day7 = day_bounds(datetime(2026, 12, 6).date()), day_bounds(datetime(2026, 12, 7).date())
    assert subjects(since=day6[0], until=day6[1]) == ["S4", "S2", "S3", "S1"]
    assert subjects(since=day7[0], until=day7[1]) == ["S8", "S7", "S6", "S5"]
    assert subjects(since=day7[0], until=day7[1], region="440300", actor="his:") == ["S7"]


def test_a_position_from_a_link_is_checked():
    p = audit.Position(datetime(2026, 12, 7, 2, 3, 4, 56, tzinfo=timezone.utc), "440300", 3, 812)
    assert p.token() == "20261207T020304000056.440300.3.812" and audit.Position.parse(p.token()) == p
    for bad in ("", "x", "20261207T020304000056.4403.0.1", "20261207T020304000056.440300.a.1", "2026.440300.0.1"):
        with pytest.raises(InputError) as e:
            audit.Position.parse(bad)
        assert e.value.field == "before"
