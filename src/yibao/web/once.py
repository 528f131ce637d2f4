"""Double-submit protection for form posts: each rendered form carries a random nonce, and a post runs
its change at most once per nonce — the platform's one idempotency mechanism (runtime/idempotency.py),
under a scope of the page's own (`web:<area>:<who>`) with the nonce as the key. A second post of the
same form gets the first outcome back (where to go, what to say) and changes nothing; a failed change
rolls its claim back with it, so the corrected form can be sent again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict
from yibao.runtime import idempotency

Outcome = dict[str, Any]

def _reused() -> Conflict:  # a new refusal each time: a shared one would keep every raise's frames (the form) alive
    return Conflict("nonce", "form_reused", "该表单已用于另一操作，请刷新页面", "this form was already used for another action; reload the page")


def _in_progress() -> Conflict:
    return Conflict("nonce", "form_in_progress", "该操作正在处理中，请稍后刷新页面查看结果",
                    "this action is still being processed; reload the page shortly to see its result")


def _key(scope: str, nonce: str, path: str, region: str) -> idempotency.Key:
    return idempotency.Key(scope, nonce, hashlib.sha256(f"WEB {path}".encode()).hexdigest(), region, _reused, _in_progress)


def _outcome(answer: idempotency.Answer) -> Outcome:
    return json.loads(answer.body)


def _text(outcome: Outcome) -> str:
    return json.dumps(outcome, ensure_ascii=False)


def unit(*, scope: str, nonce: str, path: str, region: str, now: datetime,
         work: Callable[[Connection], Outcome | None]) -> Callable[[Connection], tuple[Outcome, bool]]:
    """A unit of work running ``work`` once for (scope, nonce): returns (outcome, replayed). A twin still
    running is waited for (the unit is retried), as the API does."""
    k = idempotency.Key(scope, nonce, _key(scope, nonce, path, region).digest, region, _reused)
    run = idempotency.once(k, now, lambda conn: (200, _text(work(conn) or {})))

    def outcome(conn: Connection) -> tuple[Outcome, bool]:
        answer = run(conn)
        return _outcome(answer), answer.replayed
    return outcome


# ---- flows made of several units (a payment: units with an institution called between them) --------

def claim(*, scope: str, nonce: str, path: str, region: str, now: datetime) -> Callable[[Connection], Outcome | None]:
    """A unit claiming (scope, nonce) for a flow: None if claimed now, else the first outcome to replay.
    A twin still running (claimed, no outcome yet) is answered with a message to look again; nothing runs twice."""
    run = idempotency.claim(_key(scope, nonce, path, region), now)

    def outcome(conn: Connection) -> Outcome | None:
        answer = run(conn)
        return None if answer is None else _outcome(answer)
    return outcome


def record(*, scope: str, nonce: str, outcome: Outcome) -> Callable[[Connection], None]:
    """The unit storing a claimed flow's outcome (where to go, what to say) for a replay."""
    return idempotency.record(idempotency.Key(scope, nonce, "", "", _reused), 200, _text(outcome))
