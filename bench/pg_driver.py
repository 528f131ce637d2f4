"""Where a PostgreSQL unit of work should run: on worker threads (how `Platform.run` runs it) or on the event loop
through psycopg's async API (SQLAlchemy's `AsyncConnection.run_sync`: the units are synchronous functions, the
driver's waits become greenlet switches back to the loop) — issue 13, point 3.

In-process, no HTTP: the same settlement units as bench/api.py (6 fee lines, the account used), 32 at a time from
asyncio tasks, on threads limited to 8, 16 (the default, YIBAO_PG_THREADS) and 40, and on the async driver. Prints
settlements per second and CPU ms per settlement of this process (the database's own CPU is the same work either way).
Needs YIBAO_BENCH_POSTGRES_URL (or YIBAO_TEST_POSTGRES_URL); its tables are dropped and made anew.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from pathlib import Path

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import analyze, fresh_database, seed  # noqa: E402

from yibao.crypto.pii import Keyring  # noqa: E402
from yibao.services.agency import institutions  # noqa: E402
from yibao.services.care import settlement  # noqa: E402
from yibao.services.care.settlement import AccountRequest  # noqa: E402
from yibao.store.db import Database  # noqa: E402

PER_RUN = int(os.environ.get("YIBAO_BENCH_UNITS", "1500"))
CONCURRENT = 32


def main() -> None:
    url = os.environ.get("YIBAO_BENCH_POSTGRES_URL") or os.environ.get("YIBAO_TEST_POSTGRES_URL")
    if not url:
        print(json.dumps({"bench": "pg_driver", "skipped": "set YIBAO_BENCH_POSTGRES_URL"}), flush=True)
        return
    db = fresh_database(url)
    credential, ids = seed(db, Keyring(os.urandom(32)), 4 * (PER_RUN + 64))
    analyze(db)
    inst = db.run(lambda c: institutions.get(c, credential.partition(".")[0]), write=False)

    def work(visit_id: str):  # noqa: ANN202
        return lambda c: settlement.settle(c, db.clock(), institution=inst, visit_id=visit_id, msgid=f"M{visit_id}",
                                           account=AccountRequest(use=True), actor="bench")

    async def on_threads(visits: list[str], limit: int) -> None:
        limiter, gate = anyio.CapacityLimiter(limit), asyncio.Semaphore(CONCURRENT)

        async def one(v: str) -> None:
            async with gate:
                await anyio.to_thread.run_sync(functools.partial(db.run, work(v)), limiter=limiter)
        await asyncio.gather(*(one(v) for v in visits))

    async def on_loop(visits: list[str]) -> None:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=20, max_overflow=20)
        engine.sync_engine.update_execution_options(**db.engine.get_execution_options())  # the audit key
        gate = asyncio.Semaphore(CONCURRENT)

        async def one(v: str) -> None:
            async with gate, engine.connect() as conn:
                await conn.run_sync(lambda c: Database.unit_on(c, work(v)))
        try:
            await asyncio.gather(*(one(v) for v in visits))
        finally:
            await engine.dispose()

    def measure(mode: str, run, visits: list[str]) -> None:  # noqa: ANN001
        asyncio.run(run(visits[:64]))  # warm: connections opened, statements prepared
        t0, c0 = time.perf_counter(), time.process_time()
        asyncio.run(run(visits[64:]))
        n = len(visits) - 64
        print(json.dumps({"bench": "pg_driver", "mode": mode, "settlements": n, "per_s": round(n / (time.perf_counter() - t0)),
                          "cpu_ms_per_settlement": round(1000 * (time.process_time() - c0) / n, 2)}), flush=True)

    size = PER_RUN + 64
    chunks = [ids[i * size:(i + 1) * size] for i in range(4)]
    measure("threads_8", lambda v: on_threads(v, 8), chunks[0])
    measure("threads_16", lambda v: on_threads(v, 16), chunks[1])
    measure("threads_40", lambda v: on_threads(v, 40), chunks[2])
    measure("async_run_sync", on_loop, chunks[3])
    db.dispose()


if __name__ == "__main__":
    main()
