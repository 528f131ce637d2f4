"""Daily reconciliation with a payment institution (issue 15, point 1): a day with injected differences against the SANDBOX
WeChat Pay, each found and classified exactly, each resolved, the next runs clean, the ledger still summing to zero —
through the service, the operators' REST API and the `yibao reconcile` command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.api import OPERATOR
from tests.support.payments import payment_world
from yibao.app import create_app
from yibao.domain import payment_order as po
from yibao.domain import reconciliation as rc
from yibao.domain.errors import YibaoError
from yibao.services.books import audit, ledger
from yibao.services.payments import orders as payments
from yibao.services.payments import refunds
from yibao.services.reconciliation import resolutions, runs
from yibao.store.tables import reconciliation_differences

CHINA = timezone(timedelta(hours=8))
# The sandbox is the session's and its books outlive a test: each database reconciles days of its own, after the clock's start.
DAYS = {"sqlite": date(2026, 11, 23), "postgresql": date(2026, 11, 25)}


def beijing(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), CHINA).astimezone(timezone.utc)


def at(clock, live, when: datetime, *, institution_ahead: timedelta = timedelta(0)) -> None:  # noqa: ANN001
    """Platform time ``when``; the institution's business clock the same (plus ``institution_ahead``)."""
    clock.now = when
    live.runtime.books.clock_offset = when + institution_ahead - datetime.now(timezone.utc)


def sandbox(live, method: str, path: str, body: dict) -> dict:  # noqa: ANN001
    r = httpx.request(method, f"{live.url}/sandbox/{path}", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def by_class(found: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {(d["class"], d["kind"], d["key"]): d for d in found}


def test_a_day_with_injected_differences_is_found_resolved_and_the_next_runs_are_clean(db, keyring, wxpay, clock):
    d = DAYS[db.engine.dialect.name]
    pw = payment_world(db, keyring, wxpay)
    ctx = pw.ctx()
    recon = lambda day: asyncio.run(runs.reconcile(ctx, day=day, pi_id=pw.pi_id, actor="operator:test"))  # noqa: E731

    at(clock, wxpay, beijing(d, 10))
    refunded_there, altered, dropped, doubled = (pw.pay(key=k) for k in ("p-refunded", "p-altered", "p-dropped", "p-doubled"))
    assert {o.status for o in (refunded_there, altered, dropped, doubled)} == {po.COMPLETED}
    cash = altered.cash_pay
    assert cash > 0
    # The holder's cash of one payment given back at the institution (its merchant portal): the platform is told nothing.
    portal = sandbox(wxpay, "POST", "merchant-refunds", {"out_trade_no": refunded_there.id, "amount_fen": refunded_there.cash_pay})
    sandbox(wxpay, "PUT", "statement-faults", {"alter": {altered.id: cash + 100}, "drop": [dropped.id], "duplicate": [doubled.id]})

    # A payment the institution collects later, whose notification is lost: the order is left in doubt.
    at(clock, wxpay, beijing(d, 20))
    wxpay.runtime.set_knobs(settle_delay_ms=600_000, drop_notification_rate=1.0)
    pending = pw.pay(key="p-pending")
    assert pending.status == po.CASH_UNKNOWN
    wxpay.runtime.set_knobs(settle_delay_ms=0, drop_notification_rate=0.0)

    # A payment the platform completes a minute before midnight; the institution's clock already says the next day.
    at(clock, wxpay, beijing(d, 23, 59), institution_ahead=timedelta(seconds=90))
    midnight = pw.pay(key="p-midnight")
    assert midnight.status == po.COMPLETED

    # ---- the day's run -------------------------------------------------------------------------------
    at(clock, wxpay, beijing(d + timedelta(days=1), 9))
    first = recon(d)
    found = by_class(first.differences)
    assert set(found) == {
        (rc.STATUS_DIFFERS, "trade", pending.id),
        (rc.STATUS_DIFFERS, "refund", portal["out_refund_no"]),  # the platform says completed, the institution refunded
        (rc.AMOUNT_DIFFERS, "trade", altered.id),
        (rc.MISSING_AT_INSTITUTION, "trade", dropped.id),
        (rc.DUPLICATE, "trade", doubled.id),
    }, found
    status = found[(rc.STATUS_DIFFERS, "trade", pending.id)]
    assert (status["platform"]["state"], status["platform"]["leg_status"], status["institution"]["amount"]) == \
        (po.CASH_UNKNOWN, rc.PENDING, f"{pending.cash_pay / 100:.2f}")
    amount = found[(rc.AMOUNT_DIFFERS, "trade", altered.id)]
    assert (amount["platform"]["amount"], amount["institution"]["amount"]) == (f"{cash / 100:.2f}", f"{(cash + 100) / 100:.2f}")
    refunded = found[(rc.STATUS_DIFFERS, "refund", portal["out_refund_no"])]
    assert (refunded["platform"]["order_id"], refunded["platform"]["state"]) == (refunded_there.id, po.COMPLETED)
    assert found[(rc.DUPLICATE, "trade", doubled.id)]["count"] == 2
    assert first.run["status"] == "open" and first.run["open_differences"] == 5
    # The midnight payment waits in the pool; the trades of the portal-refunded payment and of the doubled one matched.
    assert first.run["pooled"] == 1 and first.run["matched"] == 2
    assert first.run["statement"]["trades"] == 5  # the pending one paid, the doubled twice, the dropped one left out

    # A re-run of the day finds the same differences, never a second copy.
    again = recon(d)
    assert {x["difference_id"] for x in again.differences} == {x["difference_id"] for x in first.differences}
    assert again.run["runs"] == 2 and again.run["run_id"] == first.run["run_id"]

    # Nothing moves money without a resolution: the order is still in doubt, the portal's refund not in the books.
    assert db.run(lambda c: payments.require(c, pending.id), write=False).status == po.CASH_UNKNOWN
    assert db.run(lambda c: refunds.for_order(c, refunded_there.id), write=False) == []

    # ---- resolutions, by an operator with a reason, through the REST API ---------------------------------
    with TestClient(create_app(db, keyring=keyring, demo=True)) as client:
        listed = client.get("/api/v1/admin/reconciliation/differences", params={"day": d.isoformat(), "payment_institution_id": pw.pi_id,
                                                                               "status": "open"}, headers=OPERATOR)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 5

        def resolve(diff: dict, resolution: str, **extra: str) -> httpx.Response:
            return client.post(f"/api/v1/admin/reconciliation/differences/{diff['difference_id']}/resolution",
                               json={"resolution": resolution, "reason": "日对账 daily reconciliation", **extra},
                               headers={**OPERATOR, "Idempotency-Key": f"{diff['difference_id']}-{resolution}"})

        refused = client.post(f"/api/v1/admin/reconciliation/differences/{amount['difference_id']}/resolution",
                              json={"resolution": "accept", "reason": "x"}, headers={**OPERATOR, "Idempotency-Key": "no-note"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "note"
        wrong = resolve(status, "refund")
        assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "resolution_not_allowed"
        assert client.post(f"/api/v1/admin/reconciliation/differences/{status['difference_id']}/resolution",
                           json={"resolution": "query", "reason": "r"}).status_code == 401

        done = {k: resolve(diff, "query") for k, diff in found.items() if k[0] != rc.DUPLICATE}
        done[(rc.DUPLICATE, "trade", doubled.id)] = resolve(found[(rc.DUPLICATE, "trade", doubled.id)], "accept",
                                                            note="支付机构查询仅一笔 the institution's query shows one trade")
        for k, r in done.items():
            assert r.status_code == 200, (k, r.text)
            assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == "operator:demo-operator"
        again_resolved = resolve(status, "accept", note="n")
        assert again_resolved.status_code == 409 and again_resolved.json()["error"]["code"] == "difference_not_open"
        runs_listed = client.get("/api/v1/admin/reconciliation/runs", params={"day": d.isoformat()}, headers=OPERATOR).json()["items"]
        assert [(r["payment_institution_id"], r["status"], r["open_differences"]) for r in runs_listed] == [(pw.pi_id, "balanced", 0)]

    # The order in doubt was completed by payment recovery's own step; the portal's refund recorded by the refunds service.
    assert db.run(lambda c: payments.require(c, pending.id), write=False).status == po.COMPLETED
    adopted = db.run(lambda c: refunds.for_order(c, refunded_there.id), write=False)
    assert [(r.scope, r.status, r.cash_fen, r.refund_no) for r in adopted] == [("cash", "succeeded", refunded_there.cash_pay, portal["refund_id"])]
    assert db.run(lambda c: payments.require(c, refunded_there.id), write=False).status == po.PARTIALLY_REFUNDED

    # ---- the next runs are clean -----------------------------------------------------------------------
    at(clock, wxpay, beijing(d + timedelta(days=1), 9, 30))
    rerun = recon(d)
    assert rerun.run["status"] == "balanced" and rerun.run["open_differences"] == 0
    assert {x["status"] for x in rerun.differences} == {"resolved"}  # the statement's own faults, found again, stay resolved
    stored = db.run(lambda c: c.execute(select(reconciliation_differences.c.status)
                                         .where(reconciliation_differences.c.day == d)).scalars().all(), write=False)
    assert sorted(stored) == ["resolved"] * 5  # no second copy of anything

    at(clock, wxpay, beijing(d + timedelta(days=2), 9))
    next_day = recon(d + timedelta(days=1))
    assert next_day.differences == [] and next_day.run["status"] == "balanced"
    assert (next_day.run["carried"], next_day.run["matched"], next_day.run["pooled"]) == (1, 1, 0)  # the midnight payment, matched

    assert pw.balances()["pending"] == 0  # balances() also asserts the ledger sums to zero
    assert db.run(lambda c: ledger.totals(c), write=False).balanced
    actions = [e.action for e in db.run(lambda c: audit.entries(c, None, 1000), write=False)]
    assert actions.count("reconciliation.resolve") == 5 and actions.count("reconciliation.run") == 4

    # ---- the command: a re-run of the next day, as JSON --------------------------------------------------
    yibao = os.path.join(os.path.dirname(sys.executable), "yibao")
    out = subprocess.run([yibao, "reconcile", "--date", (d + timedelta(days=1)).isoformat(), "--institution", pw.pi_id, "--json",
                          "--database", db.url], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "YIBAO_SECRET_KEY": bytes(range(32)).hex()})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [(r["payment_institution_id"], r["status"], r["runs"], r["differences"]) for r in report["runs"]] == [(pw.pi_id, "balanced", 2, 0)]
    shown = subprocess.run([yibao, "reconcile", "--date", d.isoformat(), "--database", db.url], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "YIBAO_SECRET_KEY": bytes(range(32)).hex(), "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert pw.pi_id in shown.stdout and "balanced" in shown.stdout and "Traceback" not in shown.stderr


SECOND_DAYS = {"sqlite": date(2026, 11, 27), "postgresql": date(2026, 11, 29)}


def test_money_without_an_order_goes_back_and_a_confirmed_amount_is_corrected_in_the_ledger(db, keyring, wxpay, clock):
    """A trade the institution collected under a number the platform never gave (no order) is refunded through the refunds
    service; a trade the institution's own query says was collected for more than the platform asked is corrected by one
    ledger transfer — and the next runs match both."""
    from dataclasses import replace

    from yibao.domain.ledger import institution_cash
    from yibao.services.payments import cash as cash_leg

    d = SECOND_DAYS[db.engine.dialect.name]
    pw = payment_world(db, keyring, wxpay)
    ctx = pw.ctx()
    recon = lambda day: asyncio.run(runs.reconcile(ctx, day=day, pi_id=pw.pi_id, actor="operator:test"))  # noqa: E731
    resolve = lambda diff, how, **kw: asyncio.run(resolutions.resolve(  # noqa: E731
        ctx, difference_id=diff["difference_id"], resolution=how, reason="对账 reconciliation", actor="operator:test", **kw))

    at(clock, wxpay, beijing(d, 10))
    over = pw.pay(key="p-over")
    books = wxpay.runtime.books
    with books.lock:  # the institution collected 0.50 more than asked (no knob makes this: the books are edited)
        books.trades[over.id] = replace(books.trades[over.id], amount_fen=over.cash_pay + 50)
    agreement_no = db.run(lambda c: cash_leg.agreement_for(c, keyring, pw.w.employee.id, pw.pi_id), write=False).agreement_no
    stray = books.pay("PX" + over.id[2:], 1234, "未知订单", agreement_no, None)  # collected under a number the platform never gave

    at(clock, wxpay, beijing(d + timedelta(days=1), 9))

    async def twice() -> list:  # two runs of the day at once: one after the other in the database, one set of differences
        return await asyncio.gather(*(runs.reconcile(ctx, day=d, pi_id=pw.pi_id, actor="operator:test") for _ in range(2)))
    one, other = asyncio.run(twice())
    assert {x["difference_id"] for x in one.differences} == {x["difference_id"] for x in other.differences}
    assert sorted((one.run["runs"], other.run["runs"])) == [1, 2] and one.run["run_id"] == other.run["run_id"]
    found = by_class(one.differences)
    assert set(found) == {(rc.AMOUNT_DIFFERS, "trade", over.id), (rc.MISSING_AT_PLATFORM, "trade", stray.out_trade_no)}
    amount, unowned = found[(rc.AMOUNT_DIFFERS, "trade", over.id)], found[(rc.MISSING_AT_PLATFORM, "trade", stray.out_trade_no)]
    assert amount["resolutions"] == ["query", "correcting_transfer", "accept"] and unowned["resolutions"] == ["refund", "accept"]

    # The institution's query confirms its own amount, not the platform's: the query does not settle it.
    with pytest.raises(YibaoError) as refused:
        resolve(amount, "query")
    assert refused.value.code == "resolution_not_supported"
    cash_before = db.run(lambda c: ledger.balance(c, institution_cash(pw.w.hospital.id)), write=False)
    corrected = resolve(amount, "correcting_transfer")
    assert corrected["status"] == "resolved" and corrected["outcome"]["transfer"]["amount"] == "0.50"
    assert db.run(lambda c: ledger.balance(c, institution_cash(pw.w.hospital.id)), write=False) - cash_before == 50  # the hospital's cash

    returned = resolve(unowned, "refund")
    assert returned["outcome"]["refund"]["amount"] == "12.34"
    assert books.trades[stray.out_trade_no].refunded_fen == 1234

    at(clock, wxpay, beijing(d + timedelta(days=1), 9, 30))
    rerun = recon(d)
    assert rerun.run["status"] == "balanced" and [x["class"] for x in rerun.differences] == [rc.MISSING_AT_PLATFORM]  # the stray, resolved
    assert rerun.run["matched"] == 1  # the corrected trade matches its row now
    at(clock, wxpay, beijing(d + timedelta(days=2), 9))
    next_day = recon(d + timedelta(days=1))  # the refund asked for the stray trade is listed there: the platform knows it
    assert next_day.differences == [] and next_day.run["matched"] == 1
    assert db.run(lambda c: ledger.totals(c), write=False).balanced


def test_a_day_not_ended_or_an_unknown_institution_is_refused_by_the_service_and_nothing_is_recorded(db, keyring, wxpay, clock):
    """Every caller gets the page's rule (the new-user trial reconciled 2027-06-01 from the CLI and over REST, and a
    mistyped institution was answered "no channel configuration")."""
    pw = payment_world(db, keyring, wxpay)
    ctx = pw.ctx()
    today = clock.now.astimezone(CHINA).date()
    for day in (today, today + timedelta(days=200)):
        with pytest.raises(YibaoError) as early:
            asyncio.run(runs.reconcile(ctx, day=day, pi_id=pw.pi_id, actor="operator:test"))
        assert (early.value.field, early.value.code) == ("day", "day_not_ended")
    with pytest.raises(YibaoError) as unknown:
        asyncio.run(runs.reconcile(ctx, day=today - timedelta(days=1), pi_id="nosuch", actor="operator:test"))
    assert (unknown.value.field, unknown.value.code) == ("institution", "unknown_payment_institution")
    assert db.run(lambda c: c.execute(select(runs.RUN.c.id)).all(), write=False) == []


ITEMS_DAYS = {"sqlite": date(2026, 12, 3), "postgresql": date(2026, 12, 5)}


def test_a_refund_of_items_then_of_the_rest_matches_the_statement_by_its_own_cash_leg(db, keyring, wxpay, clock):
    """Two refunds of one payment, each of part of the cash (items, then all that is left): each refund's cash leg is its
    own transfer, so each matches its row of the institution's statement — no amount or status differences."""
    d = ITEMS_DAYS[db.engine.dialect.name]
    pw = payment_world(db, keyring, wxpay)
    at(clock, wxpay, beijing(d, 10))
    paid = pw.pay(key="p-items")
    at(clock, wxpay, beijing(d, 11))
    part = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="r-items", request_hash="h",
                                      scope="items", items=["3"], actor="test"))
    at(clock, wxpay, beijing(d, 12))
    rest = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="r-rest", request_hash="h",
                                      scope="all", actor="test"))
    assert (part.status, rest.status) == ("succeeded", "succeeded") and 0 < part.cash_fen < paid.cash_pay
    assert part.cash_fen + rest.cash_fen == paid.cash_pay
    at(clock, wxpay, beijing(d + timedelta(days=1), 9))
    run = asyncio.run(runs.reconcile(pw.ctx(), day=d, pi_id=pw.pi_id, actor="operator:test"))
    assert run.differences == [] and run.run["matched"] == 3 and run.run["statement"]["refunds"] == 2, run.run
