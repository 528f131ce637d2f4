"""Idempotency-Key on every mutating call: the same key and body get the same response; the same
key with another body gets 409. The record is written in the same transaction as the change it
guards, so a retry after a crash or a lost response never applies a change twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.api.context import Caller, Platform
from yibao.domain.errors import Conflict
from yibao.store.db import Retry
from yibao.store.tables import idempotency_records as R
from yibao.store.upsert import insert_ignore

IdempotencyKey = Header(..., alias="Idempotency-Key", min_length=1, max_length=100,
                        description="Unique per intended change; a retry with the same key and body returns the first response")


async def idempotent(p: Platform, request: Request, caller: Caller, key: str,
                     work: Callable[[Connection], tuple[int, Any]]) -> JSONResponse:
    body = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    now = p.now()

    def unit(conn: Connection) -> tuple[int, Any, bool]:
        row = conn.execute(select(R).where(R.c.scope == caller.scope, R.c.key == key)).first()
        if row is not None:
            if row.request_hash != digest:
                raise Conflict("Idempotency-Key", "idempotency_key_reused", "该 Idempotency-Key 已用于另一个请求",
                               "this Idempotency-Key was already used for a different request")
            return row.status_code, json.loads(row.body), True
        if not insert_ignore(conn, R, dict(scope=caller.scope, key=key, region=caller.region or "000000", request_hash=digest,
                                           status_code=0, body="null", created_at=now)):
            raise Retry()  # the same key is being processed concurrently; re-run and replay its answer
        status, payload = work(conn)
        conn.execute(update(R).where(R.c.scope == caller.scope, R.c.key == key).values(
            status_code=status, body=json.dumps(payload, ensure_ascii=False, default=str)))
        return status, payload, False

    status, payload, replayed = await p.run(unit)
    return JSONResponse(payload, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"})
