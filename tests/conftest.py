import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import MetaData, text

# Helpers in tests/support assert as tests do: rewritten, so a failing helper shows its values
# (registered before anything imports them).
pytest.register_assert_rewrite("tests.support")

from tests.support.db import PG_URL, Clock  # noqa: E402

# CI runs more examples; a developer's `make test` stays quick.
settings.register_profile("ci", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

pytest_plugins = ["tests.support.face", "tests.support.sms", "tests.support.channels"]  # sandbox face verifier, SMS gateway and payment institutions as real loopback servers

_pg_state = {"schema_ready": False, "used": False}
_sqlite_template: dict[str, bytes | None] = {"data": None}
TEST_KEY = bytes(range(32))  # the `keyring` fixture's master key; the `db` fixture keys its audit chain with it

# Audit anchors (services/books/audit.py) go to a file outside the database: one per test (below), so a database
# reused between tests (PostgreSQL, truncated) never meets another test's anchors; this one serves servers that
# live for the whole session.
_ANCHOR_DIR = tempfile.mkdtemp(prefix="yibao-test-anchors-")
os.environ["YIBAO_AUDIT_ANCHOR"] = os.path.join(_ANCHOR_DIR, "session-anchors.log")


def pytest_unconfigure(config):
    shutil.rmtree(_ANCHOR_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def audit_anchor(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "audit-anchors.log"
    monkeypatch.setenv("YIBAO_AUDIT_ANCHOR", str(path))
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _sqlite_schema() -> bytes:
    """A SQLite file with every table (`Database.create_all`), made once a session: each test's database starts as a copy
    of it. Creating ~60 tables with their indexes costs 0.1–0.2 s a test; copying the file, a millisecond."""
    if _sqlite_template["data"] is None:
        from yibao.store.db import Database

        path = os.path.join(_ANCHOR_DIR, "schema-template.db")
        template = Database(f"sqlite:///{path}")
        template.create_all()
        template.dispose()  # the last connection closed: the WAL checkpointed into the file and removed
        assert not os.path.exists(path + "-wal"), "the template's WAL was not checkpointed"
        _sqlite_template["data"] = Path(path).read_bytes()
    return _sqlite_template["data"]


def _pg_empty(database) -> None:
    """The tables emptied and their id sequences restarted, as `TRUNCATE … RESTART IDENTITY` leaves them, in one round
    trip. DELETE rather than TRUNCATE: TRUNCATE gives each of the ~60 tables new files (0.3–1 s a test on a loaded
    2-core machine); a test leaves a few rows, and deleting them takes milliseconds."""
    from yibao.store.tables import metadata

    tables = list(reversed(metadata.sorted_tables))  # children before parents: no foreign key is broken on the way
    with database.engine.begin() as conn:
        sequences = conn.execute(text(
            "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid"
            " AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') JOIN pg_class t ON t.oid = d.refobjid"
            " WHERE s.relkind = 'S' AND t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(:names)"),
            {"names": [t.name for t in tables]}).scalars().all()
        statements = [f'DELETE FROM "{t.name}"' for t in tables] + [f'ALTER SEQUENCE "{name}" RESTART' for name in sorted(sequences)]
        conn.exec_driver_sql("; ".join(statements))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path, clock):
    """A fresh, empty database of each kind, its audit chain keyed with the `keyring` fixture's master key."""
    from yibao.crypto.files import create_private
    from yibao.crypto.pii import Keyring
    from yibao.services.books import audit
    from yibao.store.db import Database

    if request.param == "sqlite":
        path = tmp_path / "yibao-test.db"
        create_private(path, _sqlite_schema())  # 0600, as the platform makes its database file
        database = Database(f"sqlite:///{path}", clock=clock)
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL not configured: set YIBAO_TEST_POSTGRES_URL (.ci/run does)")
        database = Database(PG_URL, clock=clock)
        _pg_state["used"] = True
        if not _pg_state["schema_ready"]:
            # Every table there, not only this revision's: a table a later migration dropped (sandbox_sms_outbox),
            # left by a run of another branch on the same database, would make the migration test's upgrade fail.
            leftover = MetaData()
            leftover.reflect(database.engine)
            leftover.drop_all(database.engine)
            database.drop_all()
            database.create_all()
            _pg_state["schema_ready"] = True
        else:
            _pg_empty(database)
    audit.use_key(database, Keyring(TEST_KEY))
    yield database
    database.dispose()


@pytest.fixture
def keyring():
    from yibao.crypto.pii import Keyring

    return Keyring(TEST_KEY)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The page tests run last, whatever directory names sort after tests/web: once Playwright's sync API
    is up (the session's browser), it keeps an event loop on the main thread, and a later test that calls
    asyncio.run fails. A stable sort: the order within each part is kept (and `make test` sends files out to its
    processes in this order: Makefile)."""
    web = Path(__file__).parent / "web"
    items.sort(key=lambda item: item.path.is_relative_to(web))
    for item in items:
        # Under pytest 9.2 schemathesis gives each operation's test (tests/api/test_openapi_fuzz.py) the function's node
        # id, its name alone naming the operation; pytest-xdist sends tests out by node id, and of ~150 alike ran only the
        # first (test_every_operation_is_fuzzed says so). The operation is made the id's parameter, as pytest does.
        if getattr(item, "operation_label", None) and "[" not in item.nodeid:
            if hasattr(item, "_id"):  # pytest ≥ 9.2: a NodeId
                item._id = item._id.with_params(item.operation_label)
            else:
                item._nodeid = f"{item.nodeid}[{item.operation_label}]"


def pytest_terminal_summary(terminalreporter):
    if PG_URL:
        workers = terminalreporter.config.getoption("numprocesses", None)
        own = " (each worker in a database of its own: tests/support/db.py)" if workers else ""
        terminalreporter.write_line(f"PostgreSQL: storage tests ran against {PG_URL.split('@')[-1]}{own}")
    else:
        terminalreporter.write_line("PostgreSQL: skipped — YIBAO_TEST_POSTGRES_URL is not set; the storage tests ran on SQLite only")
