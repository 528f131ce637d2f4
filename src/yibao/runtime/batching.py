"""Group commit for SQLite: the write units queued during one turn of the event loop share one transaction."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from sqlalchemy.engine import Connection

from yibao.store.db import Database


class WriteBatcher:
    """Group commit for SQLite on one event loop.

    A write unit is queued and its request awaits the outcome. The queue is flushed on the loop's
    next turn as one transaction (`Database.try_run_batch`), so the requests parsed meanwhile share
    one commit. When another worker process holds the database, the flush is retried shortly
    instead of blocking the loop: this process keeps parsing requests (the other core does the
    writing), and the next batch is larger. A response is sent only after its unit's commit.
    """

    MAX_BATCH = 64  # bounds the time one batch holds the database (and the wait of the last unit in it)
    RETRY_S = 0.0005

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        self.db = db
        self.loop = loop
        self.queue: list[tuple[Callable[[Connection], Any], asyncio.Future]] = []
        self.scheduled = False

    async def run(self, work: Callable[[Connection], Any]) -> Any:
        future = self.loop.create_future()
        self.queue.append((work, future))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self.scheduled = False
        batch = [(w, f) for w, f in self.queue[: self.MAX_BATCH] if not f.cancelled()]
        del self.queue[: self.MAX_BATCH]
        if batch:
            try:
                outcomes = self.db.try_run_batch([w for w, _ in batch])
            except BaseException as exc:  # noqa: BLE001 — nothing was committed; every waiter learns why
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
                raise
            if outcomes is None:  # another process is writing: keep these first in line and try again soon
                self.queue[:0] = batch
                self.scheduled = True
                self.loop.call_later(self.RETRY_S, self._flush)
                return
            for (_, f), outcome in zip(batch, outcomes):
                if f.done():
                    continue
                if outcome.ok:
                    f.set_result(outcome.value)
                else:
                    f.set_exception(outcome.value)
        if self.queue and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush)
