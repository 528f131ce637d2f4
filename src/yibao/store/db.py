"""The database: SQLite (embedded default, WAL) or PostgreSQL, chosen by YIBAO_DATABASE_URL."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from typing import Any, Iterator, NamedTuple, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError, IntegrityError

from yibao.crypto.files import create_private
from yibao.store.tables import metadata

T = TypeVar("T")
DEFAULT_URL = "sqlite:///.yibao/yibao.db"  # beside the demo's key file, ignored by git
# How long a unit of work is re-run after transient conflicts (deadlocks, serialisation failures, a lost
# race) before the conflict is raised: a deadline, not a count — under a burst of conflicting units on
# PostgreSQL (each deadlock costs its deadlock_timeout, 1 s by default) a fixed 8 attempts ran out.
RETRY_DEADLINE_S = float(os.environ.get("YIBAO_RETRY_DEADLINE", "30"))
PING_AFTER_IDLE_S = 10.0  # a pooled PostgreSQL connection idle longer than this is asked before it is used
PREPARED_PER_CONNECTION = 2000  # statements psycopg keeps prepared on each connection (its default: 100)
_UNIT_END = "yibao_unit_end"
_AUDIT_KEY = "yibao_audit_key"


def database_url() -> str:
    return os.environ.get("YIBAO_DATABASE_URL", DEFAULT_URL)


def _normalise(url: str) -> str:
    # Accept the plain libpq-style scheme and use psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Retry(Exception):
    """Raised inside a unit of work to ask for a clean re-run (a lost race, a lock conflict)."""


def _is_transient(exc: BaseException) -> bool:
    """A conflict a clean re-run resolves — from SQLAlchemy, or straight from the driver (store/sql.py)."""
    if isinstance(exc, Retry):
        return True
    if isinstance(exc, IntegrityError):
        return False
    orig = getattr(exc, "orig", exc)  # SQLAlchemy wraps driver errors; the hot path raises them bare
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    text = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError) and "database is locked" in text


def unit_end(conn: Connection) -> list[Callable[[Connection], None]] | None:
    """The callables this unit of work runs on ``conn`` after its work and before it commits (in its own
    transaction or savepoint, so they commit or roll back with it); None on a connection no unit runs
    (a migration, a test's own transaction). The audit chain appends there: its head is locked last."""
    return conn.get_execution_options().get(_UNIT_END)


class UnitMemo(dict):
    """What this unit wrote and may use again without reading it back (`unit_memo`). Kept among the unit's end hooks,
    so it ends with the unit: a re-run (a transient failure, a batch's savepoint rolled back) starts with none."""

    def __call__(self, conn: Connection) -> None:  # as an end hook: nothing to write
        return None


def unit_memo(conn: Connection, *, create: bool = True) -> UnitMemo | None:
    """This unit's memo (made on first use, unless not ``create``); None on a connection no unit runs. The service that
    owns a table is the only one to put its rows there and the one to drop them when it changes them again."""
    hooks = unit_end(conn)
    if hooks is None:
        return None
    for hook in hooks:
        if type(hook) is UnitMemo:
            return hook
    if not create:
        return None
    memo = UnitMemo()
    hooks.append(memo)
    return memo


def audit_key(conn: Connection) -> bytes | None:
    """The audit chain's key configured on this database (`Database.use_audit_key`), None if none."""
    return conn.get_execution_options().get(_AUDIT_KEY)


def _finish(conn: Connection, hooks: list[Callable[[Connection], None]]) -> None:
    while hooks:
        hooks.pop(0)(conn)


class Outcome(NamedTuple):
    """What one unit of a batch gave: its value, or the exception it raised (its savepoint rolled back)."""

    ok: bool
    value: Any


class Database:
    """Owns the engine; runs units of work with retries; tells the time (replaceable in tests)."""

    def __init__(self, url: str | None = None, *, echo: bool = False, clock: Callable[[], datetime] | None = None) -> None:
        self.url = _normalise(url or database_url())
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._sqlite_path: str | None = None
        self.engine: Engine = self._make_engine(echo)
        # SQLite has one writer at a time and its busy handler polls with growing sleeps, which
        # turns contention into second-long stalls. Writers queue here instead: a lock for this
        # process's threads and an flock on a file beside the database for other processes.
        self._thread_lock = threading.Lock()
        self._lock_fd: int | None = None
        self.retry_deadline = RETRY_DEADLINE_S
        self.ping_after_idle_s = PING_AFTER_IDLE_S

    def use_audit_key(self, key: bytes) -> None:
        """The key the audit chain's entries are MAC'd with (derived from the master key by the caller;
        services/books/audit.py `use_key`). Every connection of this database carries it."""
        self.engine.update_execution_options(**{_AUDIT_KEY: key})

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite database file (None for PostgreSQL or an in-memory database)."""
        return self._sqlite_path

    def _make_engine(self, echo: bool) -> Engine:
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[1] if "///" in self.url else ""
            if path and path != ":memory:":
                # Made here 0600 (its folder 0700) before SQLite opens it: SQLite gives its -wal and -shm
                # files the database file's mode, so they are private too.
                create_private(os.path.abspath(path))
                self._sqlite_path = os.path.abspath(path)
            engine = create_engine(self.url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(engine, "connect")
            def _connect(dbapi_conn, _record) -> None:  # noqa: ANN001
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
                cur = dbapi_conn.cursor()
                if ":memory:" not in self.url:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                # Writers take the lock up front: no deadlock on a read-to-write upgrade.
                conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("yibao_write") else "BEGIN")

            return engine
        engine = create_engine(self.url, echo=echo, pool_size=20, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _prepare_more(dbapi_conn, _record) -> None:  # noqa: ANN001
            # psycopg prepares a statement on the server after its 5th use and keeps 100 per connection, dropping the
            # least recently used. The payment path alone uses more than 100 distinct statements, so each connection
            # kept deallocating and preparing them again: the server planned anew ~every statement, 21 ms of its CPU
            # per one-code payment (issue 13, docs/benchmarks.md). Room for all of them:
            dbapi_conn.prepared_max = PREPARED_PER_CONNECTION

        @event.listens_for(engine, "connect")
        @event.listens_for(engine, "checkin")
        def _idle_from(_dbapi_conn, record) -> None:  # noqa: ANN001
            record.info["idle_since"] = time.monotonic()

        @event.listens_for(engine, "checkout")
        def _checkout(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
            # A connection idle for a while may have been closed under us (a restarted server, a firewall's idle
            # timeout): ask it first, as pool_pre_ping would. One that was in use a moment ago is not asked — pre_ping
            # did, for every unit: a round trip per settlement (issue 13).
            if time.monotonic() - record.info.get("idle_since", 0.0) > self.ping_after_idle_s:
                self._ping(dbapi_conn)

        return engine

    @staticmethod
    def _ping(dbapi_conn: Any) -> None:
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()
        except Exception as exc:  # noqa: BLE001 - the pool replaces a dead connection and checks out anew
            raise DisconnectionError(str(exc)) from exc

    def create_all(self) -> None:
        """For tests and throwaway databases; real ones use `yibao db upgrade` (Alembic)."""
        metadata.create_all(self.engine)

    def drop_all(self) -> None:
        metadata.drop_all(self.engine)

    def _writer_lock_fd(self) -> int:
        if self._lock_fd is None:
            self._lock_fd = os.open(self._sqlite_path + ".writelock", os.O_CREAT | os.O_RDWR, 0o600)  # type: ignore[operator]
        return self._lock_fd

    @contextmanager
    def _sqlite_writer(self) -> Iterator[None]:
        import fcntl

        with self._thread_lock:
            fd = self._writer_lock_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _try_sqlite_writer(self) -> bool:
        """Take the writer lock if it is free at once (the caller releases it with _release_sqlite_writer)."""
        import fcntl

        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            fcntl.flock(self._writer_lock_fd(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._thread_lock.release()
            return False
        return True

    def _release_sqlite_writer(self) -> None:
        import fcntl

        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
        self._thread_lock.release()

    @property
    def batches_writes(self) -> bool:
        """Whether write units may be grouped into one transaction (SQLite: see `try_run_batch`)."""
        return self._sqlite_path is not None and os.name == "posix"

    def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work(conn)`` in one transaction; commit, or roll back and re-run on a transient conflict
        until `retry_deadline` seconds have passed (then the conflict is raised)."""
        deadline = time.monotonic() + self.retry_deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                queue = self._sqlite_writer() if (write and self.batches_writes) else nullcontext()
                with queue, self.engine.connect() as conn:
                    return self.unit_on(conn, work, write=write)
            except Exception as exc:
                if not _is_transient(exc) or time.monotonic() >= deadline:
                    raise
                # Exponential back-off with jitter, so units that collided do not collide again in step.
                time.sleep(random.uniform(0, min(0.002 * 2**min(attempt, 8), 0.25)))

    @staticmethod
    def unit_on(conn: Connection, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """One unit of work on a connection the caller opened: its transaction, its end hooks (the audit trail), no
        retry (`run` re-runs it; bench/pg_driver.py runs it on an async driver's connection)."""
        hooks: list[Callable[[Connection], None]] = []
        conn = conn.execution_options(yibao_write=write, **{_UNIT_END: hooks})
        with conn.begin():
            value = work(conn)
            _finish(conn, hooks)
            return value

    def try_run_batch(self, works: list[Callable[[Connection], Any]], *, attempts: int = 8) -> list[Outcome] | None:
        """Group commit (SQLite): run several write units in ONE transaction, each under its own
        savepoint, and commit once; None when another writer holds the database right now.

        A unit that fails rolls back to its savepoint alone (a transient failure re-runs it), so its
        outcome is exactly what `run` would have given; the others still commit. SQLite has one
        writer at a time anyway: what batching saves is the per-transaction cost (lock, BEGIN, the
        commit's WAL write of pages shared by every settlement — fund balance, audit head, index tails).
        """
        if not self._try_sqlite_writer():
            return None
        try:
            for attempt in range(1, attempts + 1):
                outcomes: list[Outcome] = []
                try:
                    with self.engine.connect() as conn:
                        conn = conn.execution_options(yibao_write=True)
                        with conn.begin():
                            for work in works:
                                outcomes.append(self._run_savepoint(conn, work, attempts))
                    return outcomes
                except Exception as exc:  # the commit (or BEGIN) itself failed: nothing of the batch is written
                    if not _is_transient(exc) or attempt == attempts:
                        return [Outcome(False, exc) for _ in works]
            raise AssertionError("unreachable")
        finally:
            self._release_sqlite_writer()

    @staticmethod
    def _run_savepoint(conn: Connection, work: Callable[[Connection], Any], attempts: int) -> "Outcome":
        # Plain SQL on the driver: SQLAlchemy's begin_nested compiles its SAVEPOINT clause anew each time (~100 µs).
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for attempt in range(1, attempts + 1):
            cursor.execute("SAVEPOINT unit")
            hooks: list[Callable[[Connection], None]] = []
            conn.execution_options(**{_UNIT_END: hooks})  # in place: this unit's own end hooks
            try:
                value = work(conn)
                _finish(conn, hooks)
            except Exception as exc:
                cursor.execute("ROLLBACK TO unit")
                cursor.execute("RELEASE unit")
                if _is_transient(exc) and attempt < attempts:
                    continue
                return Outcome(False, exc)
            cursor.execute("RELEASE unit")
            return Outcome(True, value)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
