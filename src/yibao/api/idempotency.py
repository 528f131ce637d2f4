"""Idempotency-Key on every mutating call: the same key and body get the same response; the same
key with another body gets 409. The record is written in the same transaction as the change it
guards, so a retry after a crash or a lost response never applies a change twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any, Callable, TypeVar

from fastapi import Header, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict
from yibao.formats import fastjson
from yibao.runtime.platform import Caller, Platform
from yibao.store.db import Retry
from yibao.store.sql import Sql

_CLAIM = Sql("""INSERT INTO idempotency_records (scope, key, region, request_hash, status_code, body, created_at)
                VALUES (:scope, :key, :region, :hash, 0, 'null', :now) ON CONFLICT DO NOTHING RETURNING key""")
_GET = Sql("SELECT request_hash, status_code, body FROM idempotency_records WHERE scope = :scope AND key = :key")
_DONE = Sql("UPDATE idempotency_records SET status_code = :status, body = :body WHERE scope = :scope AND key = :key")

T = TypeVar("T")

IdempotencyKey = Header(..., alias="Idempotency-Key", min_length=1, max_length=100,
                        description="Unique per intended change; a retry with the same key and body returns the first response")


async def idempotent(p: Platform, request: Request, caller: Caller, key: str,
                     work: Callable[[Connection], tuple[int, Any]], redact: Callable[[Any], Any] | None = None) -> Response:
    """Run ``work`` once per key. ``redact`` removes secrets from what is stored for replays (a retry
    then gets the answer without them), so no secret sits in clear in the idempotency table."""
    body = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    now = p.now()

    ids = {"scope": caller.scope, "key": key}

    def unit(conn: Connection) -> tuple[int, Any, bool]:
        # Claim the key first: a concurrent twin blocks on it (PostgreSQL) or waits its turn (SQLite).
        if _CLAIM(conn, {**ids, "region": caller.region or "000000", "hash": digest, "now": now}).first() is None:
            row = _GET(conn, ids).first()
            if row.request_hash != digest:
                raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                               "this Idempotency-Key was already used for a different request")
            if row.status_code == 0:
                raise Retry()  # still being processed by its twin
            return int(row.status_code), row.body.encode("utf-8"), True
        status, payload = work(conn)
        answer = fastjson.dumps_bytes(payload)  # serialised once: for the record (unless redacted) and the response
        stored = answer if redact is None else fastjson.dumps_bytes(redact(payload))
        _DONE(conn, {**ids, "status": status, "body": stored.decode("utf-8")})
        return status, answer, False

    status, answer, replayed = await p.run(unit)
    return Response(answer, status_code=status, media_type="application/json",
                    headers={"Idempotent-Replayed": "true" if replayed else "false"})


class _NoAnswerYet(Exception):
    """The key has no stored answer; raised inside a look-up whose claim is then rolled back."""


def _no_answer_yet(_: Connection) -> tuple[int, Any]:
    raise _NoAnswerYet


async def idempotent_after_call(p: Platform, request: Request, caller: Caller, key: str, call: Callable[[], Awaitable[T]],
                                work: Callable[[Connection, T], tuple[int, Any]]) -> Response:
    """Like `idempotent`, for a change that first needs an outside call (a face check) made outside any
    unit of work: a retry whose key has an answer replays it (another body: 409) without calling out."""
    try:
        return await idempotent(p, request, caller, key, _no_answer_yet)
    except _NoAnswerYet:
        pass
    result = await call()
    return await idempotent(p, request, caller, key, lambda c: work(c, result))


async def idempotent_flow(p: Platform, request: Request, caller: Caller, key: str,
                          call: Callable[[str], Awaitable[tuple[int, Any, bool]]]) -> Response:
    """Like `idempotent`, for a change made of several units with outside calls between them (a payment).

    A stored answer replays (another body: 409) without running anything. Otherwise ``call(digest)``
    runs (``digest`` identifies the request body, for a flow that records it) and returns (status,
    payload, keep); the answer is stored when ``keep`` — not for a payment still in progress, whose
    retry should drive it on and answer as it then stands. A refusal is stored like an answer, except
    a rate limit (its Retry-After would be lost) and a reused key.
    """
    from yibao.api.errors import error_body, status_for
    from yibao.domain.errors import TooManyAttempts, YibaoError

    body = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    # A read is enough here: two copies racing past it both reach the flow, which gives them one order,
    # and the first answer stored is the one both return (the store below claims the key).
    stored = await p.run(lambda c: _GET(c, {"scope": caller.scope, "key": key}).first(), write=False)
    if stored is not None and stored.status_code != 0:
        if stored.request_hash != digest:
            raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                           "this Idempotency-Key was already used for a different request")
        return Response(stored.body.encode("utf-8"), status_code=int(stored.status_code), media_type="application/json",
                        headers={"Idempotent-Replayed": "true"})
    try:
        status, payload, keep = await call(digest)
    except TooManyAttempts:
        raise
    except YibaoError as exc:
        if exc.code == "idempotency_key_reused":
            raise
        status, keep = status_for(exc), True
        payload = error_body(exc.code, exc.field, exc.message_zh, exc.message_en, getattr(request.state, "request_id", ""))
    if not keep:
        return Response(fastjson.dumps_bytes(payload), status_code=status, media_type="application/json",
                        headers={"Idempotent-Replayed": "false"})
    return await idempotent(p, request, caller, key, lambda c: (status, payload))
