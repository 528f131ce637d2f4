"""The test databases: the PostgreSQL the storage tests also run on (when YIBAO_TEST_POSTGRES_URL is set),
and the settable clock the platform reads. The ``db`` and ``clock`` fixtures are in tests/conftest.py."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

PG_URL = os.environ.get("YIBAO_TEST_POSTGRES_URL")


class Clock:
    """A settable clock for the platform: tests move time forward to expire codes and reservations."""

    def __init__(self, start: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)
