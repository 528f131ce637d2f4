"""Group commit on SQLite: write units batched into one transaction, each under its own savepoint.

Batching is how SQLite writes are run by the API (`Platform.run` → `WriteBatcher` →
`Database.try_run_batch`); PostgreSQL units run one per transaction on worker threads, so these
tests are about the SQLite store alone. The API-level test at the end runs on both stores.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from sqlalchemy import text

from tests.support.presence import present
from tests.support.settlement import open_with_lines
from tests.support.world import seed
from yibao.app import create_app
from yibao.domain.errors import InputError
from yibao.runtime.batching import WriteBatcher
from yibao.services.books import ledger
from yibao.services.care import visits
from yibao.store.db import Database, Retry


@pytest.fixture
def sqlite_db(tmp_path, clock):
    db = Database(f"sqlite:///{tmp_path}/group-commit.db", clock=clock)
    db.create_all()
    yield db
    db.dispose()


def _insert(name: str):
    def work(conn):  # noqa: ANN001, ANN202
        conn.exec_driver_sql("INSERT INTO audit_heads (region, seq, hash) VALUES (?, 0, 'x')", (name,))
        return name
    return work


def _regions(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT region FROM audit_heads ORDER BY region"))]


def test_a_failing_unit_rolls_back_alone_and_the_rest_commit_together(sqlite_db):
    def fails(conn):  # noqa: ANN001, ANN202
        _insert("222222")(conn)  # written, then refused: must not survive
        raise InputError("amount", "bad", "错误", "bad")

    outcomes = sqlite_db.try_run_batch([_insert("111111"), fails, _insert("333333")])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[0].value == "111111" and isinstance(outcomes[1].value, InputError)
    assert _regions(sqlite_db) == ["111111", "333333"]


def test_a_transient_failure_reruns_that_unit_from_a_clean_savepoint(sqlite_db):
    calls = []

    def flaky(conn):  # noqa: ANN001, ANN202
        calls.append(1)
        _insert("444444")(conn)
        if len(calls) == 1:
            raise Retry()  # e.g. a lost race: its first write is undone before the re-run
        return "ok"

    outcomes = sqlite_db.try_run_batch([flaky, _insert("555555")])
    assert [o.ok for o in outcomes] == [True, True] and len(calls) == 2
    assert _regions(sqlite_db) == ["444444", "555555"]  # one row from the flaky unit, not two (no UNIQUE error either)


def test_busy_database_runs_nothing_and_says_so(sqlite_db, tmp_path, clock):
    other = Database(sqlite_db.url, clock=clock)  # another process's writer lock, as far as flock is concerned
    ran = []
    try:
        with other._sqlite_writer():
            assert sqlite_db.try_run_batch([lambda c: ran.append(1)]) is None
        assert ran == []
        assert [o.ok for o in sqlite_db.try_run_batch([lambda c: ran.append(1)])] == [True] and ran == [1]
    finally:
        other.dispose()


def test_batcher_shares_one_commit_and_keeps_the_loop_free_while_another_writer_holds_the_db(sqlite_db, clock):
    other = Database(sqlite_db.url, clock=clock)
    batches: list[int] = []
    real = sqlite_db.try_run_batch

    def counting(works, **kw):  # noqa: ANN001, ANN202
        result = real(works, **kw)
        if result is not None:
            batches.append(len(works))
        return result

    sqlite_db.try_run_batch = counting  # type: ignore[method-assign]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other._sqlite_writer():
            held.set()
            release.wait(5)

    async def scenario() -> tuple[list, int]:
        batcher = WriteBatcher(sqlite_db, asyncio.get_running_loop())
        holder = threading.Thread(target=hold)
        holder.start()
        await asyncio.get_running_loop().run_in_executor(None, held.wait)
        ticks = 0
        units = [asyncio.ensure_future(batcher.run(_insert(f"6000{i:02d}"))) for i in range(10)]
        bad = asyncio.ensure_future(batcher.run(lambda c: (_ for _ in ()).throw(InputError("x", "bad", "错", "bad"))))
        for _ in range(20):  # the loop keeps running while the units wait for the other writer
            await asyncio.sleep(0.002)
            ticks += 1
        assert not any(u.done() for u in units)
        release.set()
        results = await asyncio.gather(*units)
        with pytest.raises(InputError):
            await bad
        holder.join()
        return results, ticks

    try:
        results, ticks = asyncio.run(scenario())
    finally:
        other.dispose()
    assert ticks == 20 and results == [f"6000{i:02d}" for i in range(10)]
    assert batches == [11]  # the ten and the failing one went in together once the database was free
    assert len(_regions(sqlite_db)) == 10


def test_fifty_concurrent_settlements_over_http_never_overdraw(db, keyring):
    """Through the app on one event loop: on SQLite they are group-committed, on PostgreSQL run on threads."""
    w = seed(db, keyring, balance=100000)  # 1000.00 yuan
    lines = [{"feedetl_sn": "1", "medins_list_codg": "C1", "name": "自费项目", "unit_price": "70.00", "quantity": "1"}]
    visit_ids = [open_with_lines(db, w.hospital, w.employee.id, lines=lines).id for _ in range(50)]
    for v in visit_ids:  # the holder presented a credential for each visit (set-up: the settlements are what is tested)
        present(db, w.hospital, w.employee.id, v)
    app = create_app(db, keyring=keyring)
    auth = {"Authorization": f"Bearer {w.hospital_credential}"}

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://yibao") as client:
            return await asyncio.gather(*(client.post(f"/api/v1/his/visits/{v}/settle", json={"account": {"use": True}},
                                                      headers={**auth, "Idempotency-Key": f"k-{v}"}) for v in visit_ids))

    answers = asyncio.run(scenario())
    assert [r.status_code for r in answers] == [200] * 50, [r.text for r in answers if r.status_code != 200][:2]
    docs = [r.json() for r in answers]
    paid = sum(int(d["acct_pay"].replace(".", "")) for d in docs)
    cash = sum(int(d["psn_cash_pay"].replace(".", "")) for d in docs)
    assert paid == 100000 and paid + cash == 50 * 7000
    assert db.run(lambda c: ledger.available(c, f"person:{w.employee.id}"), write=False) == 0
    totals = db.run(ledger.totals, write=False)
    assert totals.balanced and totals.debits_posted == totals.credits_posted
    assert all(db.run(lambda c, v=v: visits.get(c, w.hospital.id, v), write=False).status == "settled" for v in visit_ids)
