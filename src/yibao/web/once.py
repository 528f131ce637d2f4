"""Double-submit protection for form posts: each rendered form carries a random nonce, and a post
runs its change at most once per nonce.

This is the API's idempotency mechanism (api/idempotency.py) applied to forms: the nonce is claimed
in `idempotency_records`, under a scope of the page's own (`web:<area>:<who>`), in the same
transaction as the change it guards; a second post of the same form gets the first outcome back
(where to go, what to say) and changes nothing. A failed change rolls its claim back with it, so the
corrected form can be sent again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict
from yibao.store.db import Retry
from yibao.store.tables import idempotency_records as IR
from yibao.store.upsert import insert_ignore

Outcome = dict[str, Any]


def unit(*, scope: str, nonce: str, path: str, region: str, now: datetime,
         work: Callable[[Connection], Outcome | None]) -> Callable[[Connection], tuple[Outcome, bool]]:
    """A unit of work running ``work`` once for (scope, nonce): returns (outcome, replayed)."""
    digest = hashlib.sha256(f"WEB {path}".encode()).hexdigest()
    ids = (IR.c.scope == scope[:80], IR.c.key == nonce)

    def run(conn: Connection) -> tuple[Outcome, bool]:
        claimed = insert_ignore(conn, IR, dict(scope=scope[:80], key=nonce, region=region, request_hash=digest, status_code=0, body="null",
                                               created_at=now))
        if not claimed:
            row = conn.execute(select(IR.c.request_hash, IR.c.status_code, IR.c.body).where(*ids)).one()
            if row.request_hash != digest:
                raise Conflict("nonce", "form_reused", "该表单已用于另一操作，请刷新页面", "this form was already used for another action; reload the page")
            if row.status_code == 0:
                raise Retry()  # its twin is still running
            return json.loads(row.body), True
        outcome = work(conn) or {}
        conn.execute(update(IR).where(*ids).values(status_code=200, body=json.dumps(outcome, ensure_ascii=False)))
        return outcome, False

    return run


# ---- flows made of several units (a payment: units with an institution called between them) --------

def claim(*, scope: str, nonce: str, path: str, region: str, now: datetime) -> Callable[[Connection], Outcome | None]:
    """A unit claiming (scope, nonce) for a flow: None if claimed now, else the first outcome to replay.

    A twin still running (claimed, no outcome yet) is answered with a message to look again; nothing runs twice."""
    digest = hashlib.sha256(f"WEB {path}".encode()).hexdigest()
    ids = (IR.c.scope == scope[:80], IR.c.key == nonce)

    def run(conn: Connection) -> Outcome | None:
        claimed = insert_ignore(conn, IR, dict(scope=scope[:80], key=nonce, region=region, request_hash=digest, status_code=0, body="null",
                                               created_at=now))
        if claimed:
            return None
        row = conn.execute(select(IR.c.request_hash, IR.c.status_code, IR.c.body).where(*ids)).one()
        if row.request_hash != digest:
            raise Conflict("nonce", "form_reused", "该表单已用于另一操作，请刷新页面", "this form was already used for another action; reload the page")
        if row.status_code == 0:
            raise Conflict("nonce", "form_in_progress", "该操作正在处理中，请稍后刷新页面查看结果",
                           "this action is still being processed; reload the page shortly to see its result")
        return json.loads(row.body)

    return run


def record(*, scope: str, nonce: str, outcome: Outcome) -> Callable[[Connection], None]:
    """The unit storing a claimed flow's outcome (where to go, what to say) for a replay."""
    def run(conn: Connection) -> None:
        conn.execute(update(IR).where(IR.c.scope == scope[:80], IR.c.key == nonce)
                     .values(status_code=200, body=json.dumps(outcome, ensure_ascii=False)))
    return run
