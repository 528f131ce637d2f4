"""A payment process killed midway, then recovery: the order ends in a defined state and no money is made or lost.

The payment runs in a subprocess (tests/support/kill_child.py) against the SANDBOX wxpay on loopback
and dies with os._exit right after the hold commits, or right after the cash request went out.
Recovery then runs here, as `yibao payments recover` would.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support.payments import LINES, payment_world
from yibao.domain import payment_order as po
from yibao.services.payments import orders as payments
from yibao.services.payments import recovery
from yibao.store.tables import payment_orders

ROOT = Path(__file__).resolve().parents[3]


def run_child(pw, db, kill_at: str) -> subprocess.CompletedProcess:
    args = {"database": db.url, "key": bytes(range(32)).hex(), "now": db.clock().isoformat(), "kill_at": kill_at, "code": pw.code(),
            "institution": pw.w.hospital.id, "key_id": f"kill-{kill_at}", "lines": LINES}
    return subprocess.run([sys.executable, "-m", "tests.support.kill_child", json.dumps(args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT / "src"), str(ROOT)))})  # this tree's code, not an installed copy


def the_order(db):
    ids = db.run(lambda c: c.execute(select(payment_orders.c.id).where(payment_orders.c.request_key.like("kill-%"))).scalars().all(),
                 write=False)
    assert len(ids) == 1
    return db.run(lambda c: payments.require(c, ids[0]), write=False)


@pytest.mark.parametrize("kill_at", ["after_hold", "before_cash_call", "after_cash_request"])
def test_a_payment_killed_midway_is_finished_or_undone_by_recovery(db, keyring, wxpay, clock, kill_at):
    # A payer without a signed agreement stops at held (then voided); one who signed goes on to the cash request.
    pw = payment_world(db, keyring, wxpay, balance=20000, signed=kill_at != "after_hold")
    before = pw.balances()
    done = run_child(pw, db, kill_at)
    assert done.returncode == 137, (done.stdout, done.stderr)

    stopped = the_order(db)
    held = pw.balances()  # balances() asserts the ledger sums to zero, pending included
    assert held["pending"] > 0 and held["holder_available"] == 0 and held["holder"] == before["holder"]
    if kill_at == "after_hold":
        assert stopped.status == po.HELD and stopped.id not in wxpay.runtime.books.trades
    elif kill_at == "before_cash_call":
        assert stopped.status == po.CASH_REQUESTED and stopped.id not in wxpay.runtime.books.trades  # recorded, never sent
    else:
        assert stopped.status == po.CASH_REQUESTED
        assert wxpay.runtime.books.trades[stopped.id].status == "succeeded"  # the institution collected; we never heard

    # Too early: a request might still be in flight, so recovery leaves it alone.
    assert asyncio.run(recovery.recover(pw.ctx())).orders == {}
    clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(pw.ctx()))
    after = pw.balances()
    final = db.run(lambda c: payments.require(c, stopped.id), write=False)
    assert report.orders == {final.id: final.status}
    assert after["pending"] == 0
    if kill_at == "after_hold":
        assert (final.status, final.void_reason) == (po.VOIDED, po.ABANDONED)
        assert after == before  # nothing moved
    elif kill_at == "before_cash_call":
        assert (final.status, final.void_reason) == (po.VOIDED, po.CASH_NOT_FOUND)  # the institution says it never saw it
        assert after == before
    else:
        assert final.status == po.COMPLETED and final.trade_no == wxpay.runtime.books.trades[final.id].trade_no
        assert before["holder"] - after["holder"] == final.account_pay
        assert after["hospital_cash"] - before["hospital_cash"] == final.cash_pay == wxpay.runtime.books.trades[final.id].amount_fen
        assert after["receivable"] - before["receivable"] == final.fund_total + final.account_pay
        assert before["pool"] - after["pool"] == final.fund_total
    # Recovery again finds nothing to do.
    assert asyncio.run(recovery.recover(pw.ctx())).orders == {}
