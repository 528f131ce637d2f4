"""The one idempotency mechanism (runtime/idempotency.py) under the API's keys and the pages' nonces."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from yibao.domain.errors import Conflict
from yibao.runtime import idempotency

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


def _reused() -> Conflict:
    return Conflict("key", "reused", "已用于另一请求", "used for another request")


def test_scopes_longer_than_the_column_are_stored_apart_never_cut_into_one():
    a, b = "operator:" + "x" * 75 + "-alice", "operator:" + "x" * 75 + "-bob"
    assert idempotency.stored_scope("his:H440300L3") == "his:H440300L3"
    sa, sb = idempotency.stored_scope(a), idempotency.stored_scope(b)
    assert len(sa) == len(sb) == idempotency.SCOPE_MAX and sa != sb and sa == idempotency.stored_scope(a)


def test_a_reused_key_is_refused_with_a_new_error_each_time(db):
    """A shared exception object would keep every raise's frames (and the form's fields in them) alive."""
    first = idempotency.Key("web:app:P1", "nonce-1", "digest-a", "440300", _reused)
    db.run(idempotency.once(first, NOW, lambda c: (200, "{}")))
    other = idempotency.Key("web:app:P1", "nonce-1", "digest-b", "440300", _reused)
    seen = []
    for _ in range(3):
        with pytest.raises(Conflict) as exc:
            db.run(idempotency.once(other, NOW, lambda c: (200, "{}")))
        seen.append(exc.value)
    assert len({id(e) for e in seen}) == 3 and all(e.code == "reused" for e in seen)
    depths = []
    for e in seen:
        n, tb = 0, e.__traceback__
        while tb:
            n, tb = n + 1, tb.tb_next
        depths.append(n)
    assert depths[0] == depths[-1]  # the last refusal carries no more frames than the first


def test_answered_says_no_answer_without_leaving_a_claim_then_replays_a_stored_one(db):
    k = idempotency.Key("his:H1", "k1", "d", "440300", _reused)
    with pytest.raises(idempotency.NoAnswerYet):
        db.run(idempotency.answered(k, NOW))
    assert db.run(idempotency.lookup(k), write=False) is None  # the probe's claim was rolled back
    db.run(idempotency.once(k, NOW, lambda c: (201, '{"ok": true}')))
    found = db.run(idempotency.answered(k, NOW))
    assert (found.status, found.body, found.replayed) == (201, '{"ok": true}', True)
    with pytest.raises(Conflict):
        db.run(idempotency.answered(idempotency.Key("his:H1", "k1", "another", "440300", _reused), NOW))
