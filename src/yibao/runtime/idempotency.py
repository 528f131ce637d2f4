"""Idempotency of a change under a caller's scope — one mechanism for the API's `Idempotency-Key` and
the pages' form nonce.

A request is identified by (scope, key) — the caller (`his:<code>`, `patient:<psn>`, `web:cashier:<code>` …)
and the key it chose — and described by a digest of what it asks. The record is claimed in the same
transaction as the change it guards and holds the answer given, so a retry after a crash or a lost
answer never applies the change twice: the same key and digest get the first answer back; the same key
with another digest is refused (``reused``); a twin still running is waited for inside a unit (the unit
is retried) or refused (``in_progress``) by a flow that must not wait.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy.engine import Connection

from yibao.domain.errors import YibaoError
from yibao.store.db import Retry
from yibao.store.sql import Sql

_CLAIM = Sql("""INSERT INTO idempotency_records (scope, key, region, request_hash, status_code, body, created_at)
                VALUES (:scope, :key, :region, :hash, 0, 'null', :now) ON CONFLICT DO NOTHING RETURNING key""")
_GET = Sql("SELECT request_hash, status_code, body FROM idempotency_records WHERE scope = :scope AND key = :key")
_DONE = Sql("UPDATE idempotency_records SET status_code = :status, body = :body WHERE scope = :scope AND key = :key")

SCOPE_MAX = 80  # the column's width; a longer scope is stored as its head and a digest, so two never collide


def stored_scope(scope: str) -> str:
    if len(scope) <= SCOPE_MAX:
        return scope
    return f"{scope[:SCOPE_MAX - 33]}~{hashlib.sha256(scope.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class Answer:
    status: int  # an HTTP status (the pages store 200)
    body: str  # what was answered, as stored (JSON text)
    replayed: bool


@dataclass(frozen=True)
class Key:
    """One intended change: who (scope), which (key), what (digest of the request), where (region of the row)."""

    scope: str
    key: str
    digest: str
    region: str
    reused: Callable[[], YibaoError]  # the refusal when the key was used for another request (a new one each time)
    in_progress: Callable[[], YibaoError] | None = None  # `claim`'s refusal while a twin still runs (None: wait for it)

    @property
    def ids(self) -> dict[str, str]:
        return {"scope": stored_scope(self.scope), "key": self.key}


def _stored(conn: Connection, k: Key) -> Answer | None:
    row = _GET(conn, k.ids).first()
    if row is None:
        return None
    if row.request_hash != k.digest:
        raise k.reused()
    if row.status_code == 0:
        if k.in_progress is not None:
            raise k.in_progress()
        raise Retry()  # its twin is still running: this unit runs again once it has finished
    return Answer(int(row.status_code), row.body, True)


def once(k: Key, now: datetime, work: Callable[[Connection], tuple[int, str]]) -> Callable[[Connection], Answer]:
    """A unit of work running ``work`` once for the key: ``work`` returns (status, body) to store and answer."""
    def unit(conn: Connection) -> Answer:
        # Claim the key first: a concurrent twin blocks on it (PostgreSQL) or waits its turn (SQLite).
        if _CLAIM(conn, {**k.ids, "region": k.region, "hash": k.digest, "now": now}).first() is None:
            found = _stored(conn, k)
            assert found is not None
            return found
        status, body = work(conn)
        _DONE(conn, {**k.ids, "status": status, "body": body})
        return Answer(status, body, False)
    return unit


def lookup(k: Key) -> Callable[[Connection], Answer | None]:
    """A read: the stored answer for the key, if there is one (another request under the key is refused)."""
    def read(conn: Connection) -> Answer | None:
        row = _GET(conn, k.ids).first()
        if row is None:
            return None
        if row.request_hash != k.digest:
            raise k.reused()
        return None if row.status_code == 0 else Answer(int(row.status_code), row.body, True)  # a twin still running: not yet
    return read


class NoAnswerYet(Exception):
    """Raised inside `answered` when the key has no answer: the claim it made is rolled back with it."""


def answered(k: Key, now: datetime) -> Callable[[Connection], Answer]:
    """A unit asking whether the key has an answer, as a claim would: a twin still running is waited for (its
    claim blocks this one on PostgreSQL; the unit is retried until it ends), so a retry replays its answer
    instead of calling out again. No answer: `NoAnswerYet` is raised, rolling the claim back with it."""
    def unit(conn: Connection) -> Answer:
        if _CLAIM(conn, {**k.ids, "region": k.region, "hash": k.digest, "now": now}).first() is not None:
            raise NoAnswerYet
        found = _stored(conn, k)
        assert found is not None
        return found
    return unit


def claim(k: Key, now: datetime) -> Callable[[Connection], Answer | None]:
    """A unit claiming the key for a flow made of several units: None if claimed now, else the stored answer."""
    def unit(conn: Connection) -> Answer | None:
        if _CLAIM(conn, {**k.ids, "region": k.region, "hash": k.digest, "now": now}).first() is not None:
            return None
        return _stored(conn, k)
    return unit


def claim_or_resume(k: Key, now: datetime) -> Callable[[Connection], Answer | None]:
    """A unit for a flow whose answers in progress are not kept (a payment institution's outcome unknown): the key is
    claimed for this request before anything runs, so another request under it is refused at once; the same request
    again resumes (None) while no final answer is kept — its earlier try ended without one, or a twin still runs (the
    flow itself is idempotent) — and replays the final answer once `record` kept it."""
    def unit(conn: Connection) -> Answer | None:
        if _CLAIM(conn, {**k.ids, "region": k.region, "hash": k.digest, "now": now}).first() is not None:
            return None
        row = _GET(conn, k.ids).first()
        if row is None:
            raise Retry()  # claimed by a unit this one's snapshot cannot see yet
        if row.request_hash != k.digest:
            raise k.reused()
        return None if row.status_code == 0 else Answer(int(row.status_code), row.body, True)
    return unit


def record(k: Key, status: int, body: str) -> Callable[[Connection], None]:
    """The unit storing a claimed flow's answer."""
    def unit(conn: Connection) -> None:
        _DONE(conn, {**k.ids, "status": status, "body": body})
    return unit


_STORE = Sql("""INSERT INTO idempotency_records (scope, key, region, request_hash, status_code, body, created_at)
                VALUES (:scope, :key, :region, :hash, :status, :body, :now) ON CONFLICT DO NOTHING RETURNING key""")


def store(k: Key, now: datetime, status: int, body: str) -> Callable[[Connection], Answer]:
    """A unit storing the answer of a flow that did not claim the key first (the first answer stored wins): the claim
    and the answer in one statement — nothing runs between them (a payment's last unit stores its receipt so)."""
    def unit(conn: Connection) -> Answer:
        if _STORE(conn, {**k.ids, "region": k.region, "hash": k.digest, "status": status, "body": body, "now": now}).first() is None:
            found = _stored(conn, k)
            assert found is not None
            return found
        return Answer(status, body, False)
    return unit


def close(conn: Connection, k: Key, now: datetime, status: int, body: str) -> Answer | None:
    """Store ``body`` under the key before any request uses it (a reversal of a message that has not arrived: when it
    does, its digest is not ``k.digest`` and it is refused as ``reused``). None when closed now; the stored answer when
    a request got there first; a twin still running is waited for (the unit is retried)."""
    if _CLAIM(conn, {**k.ids, "region": k.region, "hash": k.digest, "now": now}).first() is not None:
        _DONE(conn, {**k.ids, "status": status, "body": body})
        return None
    row = _GET(conn, k.ids).first()
    if row is None or row.status_code == 0:  # None: claimed by a unit this one's snapshot cannot see yet
        raise Retry()
    return Answer(int(row.status_code), row.body, True)


def stored_answer(conn: Connection, scope: str, key: str) -> Answer | None:
    """The answer stored under (scope, key), whatever request it answered (a reversal reading what a message did)."""
    row = _GET(conn, {"scope": stored_scope(scope), "key": key}).first()
    if row is None or row.status_code == 0:
        return None
    return Answer(int(row.status_code), row.body, True)


__all__ = ["Answer", "Key", "NoAnswerYet", "answered", "claim", "claim_or_resume", "close", "lookup", "once", "record", "store", "stored_answer"]
