"""store.rows.one_or: the one "row, or the caller's error (or None), optionally locked" read the services share."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from yibao.domain.errors import NotFound
from yibao.services.agency import payment_institutions as pis
from yibao.store.rows import one_or
from yibao.store.tables import payment_institutions as PI


def _statements(conn) -> list[str]:
    seen: list[str] = []
    event.listen(conn, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_one_or_gives_the_row_the_error_or_none_and_locks_only_when_asked(db, clock):
    now = clock()
    db.run(lambda c: pis.admit(c, now, pi_id="wx", region="440300", name="微信支付", kind="wallet", admission_ref="test", actor="test"))

    def work(c):
        seen = _statements(c)
        assert one_or(c, PI, PI.c.id == "wx").name == "微信支付"
        assert one_or(c, select(PI).where(PI.c.region == "440300"), PI.c.id == "wx", lock=True).id == "wx"
        assert one_or(c, PI, PI.c.id == "nobody") is None
        with pytest.raises(NotFound) as caught:
            one_or(c, PI, PI.c.id == "nobody", missing=NotFound("id", "not_found", "支付机构不存在", "no such payment institution"))
        assert (caught.value.field, caught.value.code) == ("id", "not_found")
        locked = ["FOR UPDATE" in s for s in seen]
        # SQLite's one writer holds the whole database: SQLAlchemy leaves FOR UPDATE out there
        assert locked == ([False, True, False, False] if c.dialect.name == "postgresql" else [False] * 4), seen
    db.run(work)
