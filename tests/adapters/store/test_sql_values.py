"""store.sql: times and dates bound by a prepared statement are stored as Core stores them, on both databases —
SQLite's through the sqlite3 adapters the module registers (no Python pass over the parameters)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from yibao.store import sql
from yibao.store.sql import Sql, as_date, as_datetime
from yibao.store.tables import attempts as A

_INSERT = Sql("INSERT INTO attempts (region, kind, subject, failed, created_at) VALUES (:region, :kind, :subject, :failed, :at)")
_READ = Sql("SELECT created_at FROM attempts WHERE subject = :subject")
_LATER = Sql("SELECT count(*) AS n FROM attempts WHERE created_at > :at")
_TODAY = Sql("SELECT :d AS d")


def test_a_time_bound_by_sql_is_read_back_by_core_and_compares_with_its_times(db):
    shanghai = timezone(timedelta(hours=8))
    aware = datetime(2026, 12, 7, 20, 0, 0, tzinfo=shanghai)  # a whole second: once stored without its ".000000"
    core_time = datetime(2026, 12, 7, 12, 0, 0, 1, tzinfo=timezone.utc)

    def work(c):
        _INSERT(c, {"region": "440300", "kind": "t", "subject": "by-sql", "failed": True, "at": aware})
        c.execute(A.insert().values(region="440300", kind="t", subject="by-core", failed=True, created_at=core_time))
        # Core reads the statement's row as the same instant, in UTC
        got = c.execute(select(A.c.created_at).where(A.c.subject == "by-sql")).scalar_one()
        assert as_datetime(got) == aware
        assert as_datetime(_READ(c, {"subject": "by-sql"}).first().created_at) == aware
        # and a bound time compares with what Core stored: 12:00:00 UTC is before Core's 12:00:00.000001
        assert _LATER(c, {"at": aware}).first().n == 1
        assert _LATER(c, {"at": aware.replace(tzinfo=None) - timedelta(hours=8)}).first().n == 1  # a naive time is UTC
        return as_date(_TODAY(c, {"d": date(2026, 12, 7)}).first().d)
    assert db.run(work) == date(2026, 12, 7)


_MANY = Sql("INSERT INTO attempts (region, kind, subject, failed, created_at) VALUES (:region, :kind, coalesce(:subject, 'none'), :failed, :at)")
_SUBJECTS = Sql("SELECT subject, created_at FROM attempts WHERE kind = :kind ORDER BY id")


def test_a_few_rows_are_one_statement_and_many_rows_still_all_arrive(db, clock, monkeypatch):
    now = clock()

    def work(c):
        cursor_texts: list[str] = []
        raw = c.connection.dbapi_connection
        if c.dialect.name == "postgresql":
            from psycopg import Cursor, RawCursor

            found = raw.cursor_factory

            class Counting(Cursor):
                def execute(self, query, params=None, **kw):
                    cursor_texts.append(str(query))
                    return super().execute(query, params, **kw)

                def executemany(self, query, params_seq, **kw):
                    params_seq = list(params_seq)
                    cursor_texts.extend([str(query)] * len(params_seq))  # one statement per row for the server
                    return super().executemany(query, params_seq, **kw)
            raw.cursor_factory = Counting  # what the statements send, under Sql (which runs on the driver's cursor)

            class CountingRaw(RawCursor):  # a few rows' one statement, in PostgreSQL's own $n placeholders
                def execute(self, query, params=None, **kw):
                    cursor_texts.append(str(query))
                    return super().execute(query, params, **kw)
            monkeypatch.setattr(sql, "raw_cursor", CountingRaw)
        try:
            for n in (1, 3, 16, 40):  # one row, a few, the most made one, and more than that
                rows = [{"region": "440300", "kind": f"k{n}", "subject": None if i == 0 else f"s{i}", "failed": False,
                         "at": now + timedelta(seconds=i)} for i in range(n)]
                _MANY(c, rows if n > 1 else rows[0])
                got = list(_SUBJECTS(c, {"kind": f"k{n}"}))
                assert [r.subject for r in got] == ["none"] + [f"s{i}" for i in range(1, n)]
                assert [as_datetime(r.created_at) for r in got] == [now + timedelta(seconds=i) for i in range(n)]
        finally:
            if c.dialect.name == "postgresql":
                raw.cursor_factory = found  # the pooled connection goes back as it came
        if c.dialect.name == "postgresql":
            inserts = [t for t in cursor_texts if t.startswith("INSERT")]
            assert len(inserts) == 1 + 1 + 1 + 40, inserts  # 3 and 16 rows: one statement each; 40: one per row
            assert inserts[2].endswith("$76, $77, coalesce($78, 'none'), $79, $80)")  # 16 rows of 5 parameters, PostgreSQL's own
    db.run(work)


_TWICE = Sql("INSERT INTO attempts (region, kind, subject, failed, created_at) VALUES (:region, :kind, :kind, :failed, :at)")


def test_a_parameter_named_twice_in_a_row_binds_that_rows_value_in_both_places(db, clock):
    rows = [{"region": "440300", "kind": f"twice{i}", "failed": i == 1, "at": clock()} for i in range(3)]
    db.run(lambda c: _TWICE(c, rows))
    got = db.run(lambda c: [(r.kind, r.subject, bool(r.failed)) for r in c.execute(select(A).where(A.c.kind.like("twice%")).order_by(A.c.id))],
                 write=False)
    assert got == [("twice0", "twice0", False), ("twice1", "twice1", True), ("twice2", "twice2", False)]
