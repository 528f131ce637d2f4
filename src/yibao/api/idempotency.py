"""Idempotency-Key on every mutating call (runtime/idempotency.py): the same key and body get the same
response; the same key with another body gets 409. The record is written in the same transaction as
the change it guards, so a retry after a crash or a lost response never applies a change twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any, Callable, TypeVar

from fastapi import Header, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from yibao.api.deps import Caller
from yibao.domain.errors import Conflict, TooManyAttempts, Unavailable, YibaoError
from yibao.formats import fastjson
from yibao.formats.errors import body_of, status_for
from yibao.runtime import idempotency
from yibao.runtime.platform import Platform

T = TypeVar("T")

IdempotencyKey = Header(..., alias="Idempotency-Key", min_length=1, max_length=100,
                        description="Unique per intended change; a retry with the same key and body returns the first response")

REUSED_CODE = "idempotency_key_reused"


def _reused() -> Conflict:
    return Conflict("Idempotency-Key", REUSED_CODE, "该 Idempotency-Key 已用于另一个请求", "this Idempotency-Key was already used for a different request")


async def _key(request: Request, caller: Caller, key: str) -> idempotency.Key:
    body = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    return idempotency.Key(caller.scope, key, digest, caller.region or "000000", _reused)


def _response(answer: idempotency.Answer | tuple[int, bytes, bool]) -> Response:
    status, body, replayed = (answer.status, answer.body.encode("utf-8"), answer.replayed) if isinstance(answer, idempotency.Answer) else answer
    return Response(body, status_code=status, media_type="application/json", headers={"Idempotent-Replayed": "true" if replayed else "false"})


async def idempotent(p: Platform, request: Request, caller: Caller, key: str,
                     work: Callable[[Connection], tuple[int, Any]], redact: Callable[[Any], Any] | None = None) -> Response:
    """Run ``work`` once per key. ``redact`` removes secrets from what is stored for replays (a retry
    then gets the answer without them), so no secret sits in clear in the idempotency table."""
    k = await _key(request, caller, key)
    fresh: dict[str, bytes] = {}

    def change(conn: Connection) -> tuple[int, str]:
        status, payload = work(conn)
        fresh["answer"] = answer = fastjson.dumps_bytes(payload)  # serialised once: for the record (unless redacted) and the response
        stored = answer if redact is None else fastjson.dumps_bytes(redact(payload))
        return status, stored.decode("utf-8")

    answer = await p.run(idempotency.once(k, p.now(), change))
    if answer.replayed:
        return _response(answer)
    return _response((answer.status, fresh["answer"], False))


async def idempotent_after_call(p: Platform, request: Request, caller: Caller, key: str, call: Callable[[], Awaitable[T]],
                                work: Callable[[Connection, T], tuple[int, Any]], redact: Callable[[Any], Any] | None = None) -> Response:
    """Like `idempotent`, for a change that first needs an outside call (a face check) made outside any
    unit of work: a retry whose key has an answer replays it (another body: 409) without calling out.
    ``redact`` as in `idempotent`."""
    k = await _key(request, caller, key)
    try:
        return _response(await p.run(idempotency.answered(k, p.now())))
    except idempotency.NoAnswerYet:
        pass
    result = await call()
    return await idempotent(p, request, caller, key, lambda c: work(c, result), redact=redact)


async def idempotent_flow(p: Platform, request: Request, caller: Caller, key: str,
                          call: Callable[[str], Awaitable[tuple[int, Any, bool]]]) -> Response:
    """Like `idempotent`, for a change made of several units with outside calls between them (a payment).

    A stored answer replays (another body: 409) without running anything. Otherwise ``call(digest)``
    runs (``digest`` identifies the request body, for a flow that records it) and returns (status,
    payload, keep); the answer is stored when ``keep`` — not for a payment still in progress, whose
    retry should drive it on and answer as it then stands. A refusal is stored like an answer, except
    a rate limit or an outside party's outage (their Retry-After would be lost) and a reused key.
    """
    k = await _key(request, caller, key)
    # A read is enough here: two copies racing past it both reach the flow, which gives them one order,
    # and the first answer stored is the one both return (the store below claims the key).
    stored = await p.run(idempotency.lookup(k), write=False)
    if stored is not None:
        return _response(stored)
    try:
        status, payload, keep = await call(k.digest)
    except (TooManyAttempts, Unavailable):
        raise  # a refusal that says when to try again is not stored: its Retry-After would be lost on replay
    except YibaoError as exc:
        if exc.code == REUSED_CODE:
            raise
        status, keep = status_for(exc), True
        payload = body_of(exc, getattr(request.state, "request_id", ""))
    body = fastjson.dumps_bytes(payload)
    if not keep:
        return _response((status, body, False))
    return _response(await p.run(idempotency.store(k, p.now(), status, body.decode("utf-8"))))


class LastUnit:
    """Handed to a flow by `idempotent_flow_kept`: ``keep(conn, status, payload)``, called inside the flow's last unit,
    stores the answer under the key in that same unit — so the answer costs no unit of its own, and commits with the
    change it answers (a crash cannot leave the change without its answer)."""

    __slots__ = ("_k", "_now", "answer", "body", "payload", "replay")

    def __init__(self, k: idempotency.Key, now: Any) -> None:
        self._k, self._now = k, now
        self.answer: idempotency.Answer | None = None
        self.body = b""
        self.payload: Any = None
        self.replay: idempotency.Answer | None = None

    def answered(self, conn: Connection) -> bool:
        """Run first in the flow's first unit: whether the key has an answer already (the flow then does nothing and it
        is replayed; another request under the key is refused) — the look-up `idempotent_flow` makes in a read of its own."""
        self.replay = idempotency.lookup(self._k)(conn)
        return self.replay is not None

    def keep(self, conn: Connection, status: int, payload: Any) -> None:
        body = fastjson.dumps_bytes(payload)
        # A re-run of the unit (a transient conflict) calls this again: the last call is the one that committed.
        self.answer = idempotency.store(self._k, self._now, status, body.decode("utf-8"))(conn)
        self.body, self.payload = body, payload


async def idempotent_flow_kept(p: Platform, request: Request, caller: Caller, key: str,
                               call: Callable[[str, LastUnit], Awaitable[tuple[int, Any, bool]]]) -> Response:
    """`idempotent_flow` for a flow that looks its key up in its first unit (`LastUnit.answered`) and can store its final
    answer in its last (`LastUnit.keep`): a stored answer is replayed; when the payload the flow returns is the one it
    kept, nothing more is written; else the answer is stored as `idempotent_flow` does."""
    k = await _key(request, caller, key)
    last = LastUnit(k, p.now())
    try:
        status, payload, keep = await call(k.digest, last)
        if last.replay is not None:
            return _response(last.replay)
    except (TooManyAttempts, Unavailable):
        raise
    except YibaoError as exc:
        if exc.code == REUSED_CODE:
            raise
        status, keep = status_for(exc), True
        payload = body_of(exc, getattr(request.state, "request_id", ""))
    if keep and last.answer is not None and payload is last.payload:
        return _response(last.answer if last.answer.replayed else (last.answer.status, last.body, False))
    body = fastjson.dumps_bytes(payload)
    if not keep:
        return _response((status, body, False))
    return _response(await p.run(idempotency.store(k, p.now(), status, body.decode("utf-8"))))
