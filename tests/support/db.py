"""The test databases: the PostgreSQL the storage tests also run on (when YIBAO_TEST_POSTGRES_URL is set),
and the settable clock the platform reads. The ``db`` and ``clock`` fixtures are in tests/conftest.py.

`make test` runs the suite in several processes (pytest-xdist). Each worker empties and refills its PostgreSQL
tables test by test, so each gets a database of its own on the same server (``test_gw0``, ``test_gw1``…), made here
when missing; the variable is set to it, so a platform a test starts in a subprocess uses it too."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit


def _worker_database(url: str | None) -> str | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    if parts.path.endswith(f"_{worker}"):
        return url  # a process the worker started, given the worker's database already
    name = f"{parts.path.lstrip('/') or 'postgres'}_{worker}"
    with psycopg.connect(urlunsplit(parts._replace(scheme="postgresql")), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    own = urlunsplit(parts._replace(path="/" + name))
    os.environ["YIBAO_TEST_POSTGRES_URL"] = own
    return own


PG_URL = _worker_database(os.environ.get("YIBAO_TEST_POSTGRES_URL"))


class Clock:
    """A settable clock for the platform: tests move time forward to expire codes and reservations."""

    def __init__(self, start: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)
