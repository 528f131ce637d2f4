import os
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

# Helpers in tests/support assert as tests do: rewritten, so a failing helper shows its values.
pytest.register_assert_rewrite("tests.support")

# CI runs more examples; a developer's `make test` stays quick.
settings.register_profile("ci", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = ["tests.support.face", "tests.support.channels"]  # sandbox face verifier and payment institutions as real loopback servers

PG_URL = os.environ.get("YIBAO_TEST_POSTGRES_URL")
_pg_state = {"schema_ready": False, "used": False}


class Clock:
    """A settable clock for the platform: tests move time forward to expire codes and reservations."""

    def __init__(self, start: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path, clock):
    """A fresh, empty database of each kind."""
    from yibao.store.db import Database
    from yibao.store.tables import metadata

    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/yibao-test.db", clock=clock)
        database.create_all()
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL not configured: set YIBAO_TEST_POSTGRES_URL (.ci/run does)")
        database = Database(PG_URL, clock=clock)
        _pg_state["used"] = True
        if not _pg_state["schema_ready"]:
            database.drop_all()
            database.create_all()
            _pg_state["schema_ready"] = True
        else:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            with database.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield database
    database.dispose()


@pytest.fixture
def keyring():
    from yibao.crypto.pii import Keyring

    return Keyring(bytes(range(32)))


def pytest_terminal_summary(terminalreporter):
    if PG_URL:
        terminalreporter.write_line(f"PostgreSQL: storage tests ran against {PG_URL.split('@')[-1]}")
    else:
        terminalreporter.write_line("PostgreSQL: skipped — YIBAO_TEST_POSTGRES_URL is not set; the storage tests ran on SQLite only")
