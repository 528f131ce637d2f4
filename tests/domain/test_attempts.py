"""The one lock-out rule (domain/attempts.py): every limited attempt in the platform follows it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from yibao.domain.attempts import AttemptLimit

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
RULE = AttemptLimit(3, timedelta(minutes=10))


def _counted(rule: AttemptLimit, failures: list[datetime], at: datetime) -> int:
    return sum(1 for f in failures if rule.since(at) < f <= at)


def test_under_the_limit_nothing_waits_and_at_it_the_oldest_of_the_last_three_decides():
    t = [NOW - timedelta(minutes=m) for m in (9, 4, 1)]
    assert RULE.retry_after(t[1:], NOW) is None and RULE.left(t[1:]) == 1
    assert RULE.retry_after(t, NOW) == 60  # the failure 9 minutes ago leaves the window in a minute
    assert RULE.retry_after(list(reversed(t)), NOW) == 60 and RULE.left(t) == 0
    assert RULE.retry_after([NOW, NOW, NOW], NOW) == 600


@given(st.integers(1, 6), st.integers(1, 3600), st.lists(st.integers(0, 3599), max_size=12))
def test_the_lock_ends_exactly_when_one_more_try_would_be_under_the_limit(limit, window_s, ages):
    rule = AttemptLimit(limit, timedelta(seconds=window_s))
    failures = [NOW - timedelta(seconds=a) for a in ages if a < window_s]  # what the caller counts: inside the window
    wait = rule.retry_after(failures, NOW)
    if len(failures) < limit:
        assert wait is None
        return
    assert wait is not None and wait >= 1
    assert _counted(rule, failures, NOW + timedelta(seconds=wait)) < limit  # one more try is allowed then
    if wait > 1:
        assert _counted(rule, failures, NOW + timedelta(seconds=wait - 1)) >= limit  # and not a second earlier
