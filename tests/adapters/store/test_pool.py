"""PostgreSQL's connection pool (store/db.py): a connection idle for a while is asked before use, so one the server
closed meanwhile is replaced instead of failing the unit; one used a moment ago is not asked (pool_pre_ping asked
before every unit: a round trip per settlement, issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from yibao.store.db import Database


def _pid(db: Database) -> int:
    return db.run(lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar_one(), write=False)


def test_a_connection_used_a_moment_ago_is_not_asked_and_one_killed_while_idle_is_replaced(db, monkeypatch):
    if db.dialect != "postgresql":
        pytest.skip("SQLite: a file, no server to lose the connection; its pool asks nothing")
    pings: list[int] = []
    real = Database._ping
    monkeypatch.setattr(Database, "_ping", staticmethod(lambda conn: (pings.append(1), real(conn))[1]))
    db.engine.dispose()  # a pool of its own for this test, its connections new
    pid = _pid(db)
    assert _pid(db) == pid and pings == []  # in use a moment ago (and new before that): not asked
    killer = Database(db.url)  # the server ends the pooled connection while it is idle in the pool
    try:
        assert killer.run(lambda c: c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one())
    finally:
        killer.dispose()
    monkeypatch.setattr(db, "ping_after_idle_s", 0.0)  # every checkout now counts as after a long idle
    assert _pid(db) != pid and pings  # asked, found dead, replaced: the unit ran on a new connection
