"""A day's reconciliation reads the institution's orders and refunds completed that day by index (migration 0028), not by
scanning payment_orders and payment_refunds whole: the finding of the reconciliation benchmark (docs/benchmarks.md)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import event

from yibao.services.reconciliation import runs


def _plans(db) -> list[str]:
    """The query plan of each statement `legs_of_day` runs, as the database would run it on a large table."""
    def work(conn) -> list[str]:
        seen: list[tuple[str, object]] = []

        def keep(_conn, _cursor, statement, params, *_) -> None:
            seen.append((statement, params))
        event.listen(conn, "before_cursor_execute", keep)
        runs.legs_of_day(conn, "wxpay-test", date(2026, 11, 21))
        event.remove(conn, "before_cursor_execute", keep)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table is cheapest scanned: ask what a full one gets
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        out = []
        for statement, params in seen:
            rows = conn.exec_driver_sql(explain + statement, params).all()
            out.append(" | ".join(str(r[-1]) for r in rows))
        return out
    return db.run(work, write=False)


def test_a_days_orders_and_refunds_are_read_by_index(db):
    plans = _plans(db)
    assert any("ix_payment_orders_pi_completed" in p and "payment_refunds" not in p for p in plans), plans
    if db.engine.dialect.name == "sqlite":
        assert any("ix_payment_refunds_status_completed" in p for p in plans), plans
    else:
        # On empty tables PostgreSQL's costs cannot tell (status, completed_at) from (status, updated_at): both cost the
        # same and either may be chosen. What must hold on any plan: neither table is scanned whole.
        assert all("Seq Scan on payment_refunds" not in p and "Seq Scan on payment_orders" not in p for p in plans), plans
        assert any("payment_refunds" in p for p in plans), plans
