"""Faults between the platform and a payment institution, over real HTTP on loopback, on SQLite and PostgreSQL.

The platform runs under uvicorn (the institution can reach its notify endpoint); the SANDBOX wxpay
injects the fault. After each: the ledger balances, nothing stays held, and the holder, fund and
hospital balances are what the outcome says.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.payments import LINES, PlatformServer, payment_world, wait_until
from yibao.app import create_app
from yibao.domain import payment_order as po
from yibao.services.books import audit
from yibao.services.payments import orders as payments
from yibao.services.payments import recovery
from yibao.store.tables import channel_notifications


@pytest.fixture
def stack(db, keyring, wxpay):
    server = PlatformServer(lambda url: create_app(db, keyring=keyring))
    pw = payment_world(db, keyring, wxpay, balance=20000, timeout_ms=int(CLIENT_TIMEOUT_S * 1000),
                       notify_url=f"{server.url}/api/v1/channels/wxpay-440300/notify")
    pw.pay(key="warm-up")  # signs the holder's agreement before any knob is turned
    yield pw, server
    server.stop()


def onecode(pw, server) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                           headers={"Authorization": f"Bearer {pw.w.hospital_credential}", "Idempotency-Key": uuid.uuid4().hex})


def order(pw, order_id):
    return pw.db.run(lambda c: payments.require(c, order_id), write=False)


def recover(pw, clock, minutes=2):
    clock.advance(minutes=minutes)
    return asyncio.run(recovery.recover(pw.ctx()))


def paid(pw, before, after, o):
    """The holder paid the account share, the hospital got the cash, nothing is held; the ledger balances (balances())."""
    assert after["pending"] == 0
    assert before["holder"] - after["holder"] == o.account_pay
    assert after["hospital_cash"] - before["hospital_cash"] == o.cash_pay
    assert after["receivable"] - before["receivable"] == o.fund_total + o.account_pay


def test_a_lost_answer_leaves_the_cash_unknown_until_the_query_finds_it_paid(stack, wxpay, clock):
    pw, server = stack
    wxpay.runtime.set_knobs(cut_answer_rate=1.0, drop_notification_rate=1.0)
    before = pw.balances()
    r = onecode(pw, server)
    assert r.status_code == 202 and r.json()["status"] == po.CASH_UNKNOWN, r.text
    held = pw.balances()
    assert held["pending"] > 0 and held["holder_available"] == 0
    wxpay.runtime.set_knobs(cut_answer_rate=0.0)
    report = recover(pw, clock)
    o = order(pw, r.json()["payment_id"])
    assert report.orders == {o.id: po.COMPLETED} and o.trade_no
    paid(pw, before, pw.balances(), o)


def test_a_server_error_before_anything_happened_is_found_not_at_the_institution_and_voided(stack, wxpay, clock):
    pw, server = stack
    wxpay.runtime.set_knobs(server_error_rate=1.0)
    before = pw.balances()
    r = onecode(pw, server)
    assert r.status_code == 202 and r.json()["status"] == po.CASH_UNKNOWN
    wxpay.runtime.set_knobs(server_error_rate=0.0)
    recover(pw, clock)
    o = order(pw, r.json()["payment_id"])
    assert (o.status, o.void_reason) == (po.VOIDED, po.CASH_NOT_FOUND)
    assert pw.balances() == before


def test_a_declined_payment_is_voided_and_balances_restored(stack, wxpay):
    pw, server = stack
    wxpay.runtime.set_knobs(error_rate=1.0)
    before = pw.balances()
    r = onecode(pw, server)
    # The signed decline answer and the institution's signed "failed" notification race: whichever is
    # recorded first voids the order (declined or cash_failed); both say the cash was never collected.
    assert r.status_code == 200 and r.json()["status"] == po.VOIDED and r.json()["void_reason"] in (po.DECLINED, po.CASH_FAILED)
    assert pw.balances() == before


def test_a_dropped_notification_is_made_up_for_by_the_query(stack, wxpay, clock):
    pw, server = stack
    # The institution finishes 1.5 s after accepting: its answer to the platform's query right after the deduction is
    # "processing" however loaded the machine (with 30 ms, a slow turn between the two calls saw it paid already).
    wxpay.runtime.set_knobs(settle_delay_ms=1500, drop_notification_rate=1.0)
    before = pw.balances()
    r = onecode(pw, server)
    assert r.status_code == 202 and r.json()["status"] == po.CASH_UNKNOWN  # "processing"
    oid = r.json()["payment_id"]
    # The institution finishes after its delay (and tells nobody); then recovery's query finds it paid.
    wait_until(lambda: wxpay.runtime.books.trades[oid].status == "succeeded", what="the institution finishes the payment")
    assert recover(pw, clock).orders.get(oid) == po.COMPLETED
    paid(pw, before, pw.balances(), order(pw, oid))


def test_a_duplicated_notification_is_applied_once(stack, wxpay, db):
    pw, server = stack
    wxpay.runtime.set_knobs(settle_delay_ms=30, duplicate_notification_rate=1.0)
    before = pw.balances()
    r = onecode(pw, server)
    oid = r.json()["payment_id"]
    # "processing" at the query, unless the notification (30 ms after acceptance) completed the order before the
    # request recorded that answer: either way, what follows must hold.
    assert r.json()["status"] in (po.CASH_UNKNOWN, po.COMPLETED)
    wait_until(lambda: order(pw, oid).status == po.COMPLETED, what="the notification completes the order")
    def deliveries():
        return [d for d in wxpay.runtime.notifier.deliveries if getattr(d.event.record, "out_trade_no", None) == oid]
    wait_until(lambda: len(deliveries()) == 2 and all(d.state == "delivered" for d in deliveries()), what="both copies acknowledged")
    claims = db.run(lambda c: c.execute(select(channel_notifications.c.effect).where(channel_notifications.c.out_trade_no == oid)).scalars().all(),
                    write=False)
    # Claimed once when a copy completed the order; when the query's answer completed it first, both copies found the
    # success recorded and nothing was claimed (notifications.ALREADY_RECORDED). Never twice.
    assert claims in ([po.COMPLETED], [])
    moves = [e for e in db.run(lambda c: audit.entries(c, "440300", 200), write=False) if e.subject == oid and e.action == "payment.cash_succeeded"]
    assert len(moves) == 1
    paid(pw, before, pw.balances(), order(pw, oid))


def test_a_notification_of_a_success_already_recorded_is_acknowledged_and_claims_nothing(stack, wxpay, db):
    """The common case: the answer to the request (WeChat's query) completes the order before the notification comes.
    The notification is acknowledged and claims nothing — its unit writes nothing (notifications.ALREADY_RECORDED)."""
    pw, server = stack
    # The first copy is refused (a wrong signature) and its resend waits: it comes only when flushed, after the answer.
    wxpay.runtime.set_knobs(bad_notification_signature=True, notify_delays_ms=[600_000])
    r = onecode(pw, server)
    oid = r.json()["payment_id"]
    assert r.json()["status"] == po.COMPLETED, r.text
    o = order(pw, oid)

    def sent():
        return [d for d in wxpay.runtime.notifier.deliveries if getattr(d.event.record, "out_trade_no", None) == oid]
    wait_until(lambda: [d.last_result for d in sent()] == ["HTTP 400"], what="the first copy refused")
    wxpay.runtime.set_knobs(bad_notification_signature=False)
    asyncio.run(wxpay.flush())
    assert [d.state for d in sent()] == ["delivered"]
    assert db.run(lambda c: c.execute(select(func.count()).select_from(channel_notifications)
                                      .where(channel_notifications.c.out_trade_no == oid)).scalar_one(), write=False) == 0
    assert order(pw, oid) == o


def test_a_notification_with_a_bad_signature_is_refused_and_the_order_waits_for_the_query(stack, wxpay, db, clock):
    pw, server = stack
    wxpay.runtime.set_knobs(settle_delay_ms=1500, bad_notification_signature=True, notify_delays_ms=[60_000])  # "processing" at first
    before = pw.balances()
    r = onecode(pw, server)
    oid = r.json()["payment_id"]
    wait_until(lambda: [d for d in wxpay.runtime.notifier.deliveries
                        if getattr(d.event.record, "out_trade_no", None) == oid and d.last_result], what="a delivery answered")
    attempt = next(d for d in wxpay.runtime.notifier.deliveries if getattr(d.event.record, "out_trade_no", None) == oid)
    assert attempt.state == "pending" and attempt.last_result == "HTTP 400"  # refused: the institution will resend
    assert order(pw, oid).status == po.CASH_UNKNOWN
    assert db.run(lambda c: c.execute(select(func.count()).select_from(channel_notifications)
                                      .where(channel_notifications.c.out_trade_no == oid)).scalar_one(), write=False) == 0
    recover(pw, clock)
    o = order(pw, oid)
    assert o.status == po.COMPLETED
    paid(pw, before, pw.balances(), o)
    wxpay.runtime.set_knobs(bad_notification_signature=False)
    asyncio.run(wxpay.flush())  # the resend now verifies: acknowledged, and it changes nothing
    assert order(pw, oid) == o
