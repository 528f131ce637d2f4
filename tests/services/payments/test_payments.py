"""One-code payments through the services and a SANDBOX institution on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.support.identity import active_card, enrol_child, link_child
from tests.support.payments import BIG_LINES, payment_world
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError, YibaoError
from yibao.services.books import audit
from yibao.services.care import visits
from yibao.services.payments import confirmation, history, onecode, recovery
from yibao.services.payments import orders as payments
from yibao.services.people import bindings


def order(pw, order_id):
    return pw.db.run(lambda c: payments.require(c, order_id), write=False)


def test_zero_cash_completes_at_once_without_any_institution(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, balance=50000)
    before = pw.balances()
    done = pw.pay(key="K1", use_account=True)
    assert (done.status, done.cash_pay, done.account_pay, done.payment_institution_id) == (po.COMPLETED, 0, 36600, None)
    assert done.total == done.fund_total + done.account_pay + done.cash_pay == 37500
    after = pw.balances()
    assert after["holder"] == before["holder"] - 36600 and after["pending"] == 0
    assert after["receivable"] - before["receivable"] == done.fund_total + done.account_pay
    assert done.id not in wxpay.runtime.books.trades  # the institution never heard of it
    # One unit, one lane: the trail says what happened in the order it happened — held, posted, completed — though the
    # order's row is written once (orders.moves).
    trail = [e.action for e in reversed(db.run(lambda c: audit.entries(c, "440300", 50), write=False))
             if e.subject in (done.id, done.setl_id)]
    assert trail[-3:] == ["payment.hold", "settlement.post", "payment.no_cash"]


def test_password_free_cash_is_collected_and_everything_posted(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, balance=20000)  # the account pays 200.00, the rest is cash
    before = pw.balances()
    done = pw.pay(key="K2", use_account=True)
    assert done.status == po.COMPLETED and done.trade_no
    assert (done.account_pay, done.cash_pay) == (20000, 16600) and done.total == done.fund_total + 20000 + 16600
    after = pw.balances()
    assert after["holder"] == before["holder"] - 20000 and after["pending"] == 0
    assert after["hospital_cash"] - before["hospital_cash"] == 16600
    assert after["receivable"] - before["receivable"] == done.fund_total + 20000
    truth = asyncio.run(wxpay.channel.query(done.id))
    assert (truth.status, truth.amount_fen, truth.trade_no) == ("succeeded", 16600, done.trade_no)
    receipt = db.run(lambda c: payments.receipt(c, done), write=False)
    assert receipt["cash"] == {"amount": "166.00", "payment_institution_id": pw.pi_id, "out_trade_no": done.id, "trade_no": done.trade_no}
    assert receipt["account"]["amount"] == "200.00" and receipt["fund"]["pool"] == receipt["fund"]["total"] == "9.00"
    actions = [e.action for e in db.run(lambda c: audit.entries(c, "440300", 12), write=False)]
    for action in ("payment.hold", "payment.request_cash", "payment.cash_succeeded", "settlement.post"):
        assert action in actions
    # The visit is settled: the same visit cannot be paid again.
    assert db.run(lambda c: visits.get(c, pw.w.hospital.id, done.visit_id), write=False).status == "settled"


def test_a_declined_cash_share_voids_every_leg_and_restores_balances(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, balance=20000)
    pw.pay(key="K0")  # signs the holder's agreement (error_rate declines signings too)
    wxpay.runtime.set_knobs(error_rate=1.0)
    before = pw.balances()
    done = pw.pay(key="K3", use_account=True)
    assert (done.status, done.void_reason) == (po.VOIDED, po.DECLINED)
    assert pw.balances() == before
    assert db.run(lambda c: visits.get(c, pw.w.hospital.id, done.visit_id), write=False).status == "open"
    assert asyncio.run(wxpay.channel.query(done.id)).status == "failed"


def test_a_retry_with_the_same_key_resumes_the_same_order_and_charges_once(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay)
    code = pw.code()
    first = pw.pay(key="K4", code=code)
    again = pw.pay(key="K4", code=code)
    assert again.id == first.id and again.status == po.COMPLETED
    assert len([t for t in wxpay.runtime.books.trades.values() if t.out_trade_no == first.id]) == 1
    with pytest.raises(Conflict) as exc:
        pw.pay(key="K4", code=code, request_hash="another body")
    assert exc.value.code == "idempotency_key_reused"


def test_a_refused_code_moves_nothing_and_its_refusal_is_kept(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay)
    before = pw.balances()
    code = pw.code()
    pw.pay(key="K5", code=code)
    with pytest.raises(YibaoError) as exc:
        pw.pay(key="K6", code=code)
    assert exc.value.code == "paycode_used"
    with pytest.raises(InputError):  # neither a visit nor lines: refused before anything is used up
        asyncio.run(onecode.pay(pw.ctx(), institution=pw.w.hospital, request_key="K7", request_hash="h", code=pw.code(),
                                         terminal_id=None, visit_id=None, lines=None, use_account=False, actor="his:test"))
    assert pw.balances()["pending"] == before["pending"] == 0


def test_above_the_limit_the_holder_confirms_with_the_pin(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, limit=50000)
    pw.set_pin(pw.w.employee.id, "731946")
    waiting = pw.pay(key="K8", lines=BIG_LINES)
    assert waiting.status == po.AWAITING_CONFIRMATION and waiting.cash_pay > 50000
    assert [o.id for o in db.run(lambda c: confirmation.pending_for(c, pw.w.employee.id, db.clock()), write=False)] == [waiting.id]
    # what the app's 待支付 badge and the code screen's notice show: one payment, its cash, expiring in 10 minutes
    told = db.run(lambda c: history.waiting(c, pw.w.employee.id, db.clock()), write=False)
    assert (told.count, told.confirm) == (1, [(waiting.id, db.clock() + timedelta(minutes=10), waiting.cash_pay)])
    assert db.run(lambda c: history.waiting(c, pw.w.employee.id, db.clock() + timedelta(minutes=10)), write=False).count == 0
    assert waiting.id not in wxpay.runtime.books.trades
    held = pw.balances()
    assert held["pending"] > 0
    with pytest.raises(InputError) as exc:
        asyncio.run(confirmation.confirm(pw.ctx(), order_id=waiting.id, payer_id=pw.w.employee.id, pin="000001", actor="patient:x"))
    assert exc.value.code == "pin_wrong" and "4" in exc.value.message_en
    assert order(pw, waiting.id).pin_attempts == 1  # counted and committed although the call raised
    with pytest.raises(YibaoError) as exc:  # someone else cannot confirm it
        asyncio.run(confirmation.confirm(pw.ctx(), order_id=waiting.id, payer_id=pw.w.retiree.id, pin="731946", actor="patient:y"))
    assert exc.value.code == "not_found"
    done = asyncio.run(confirmation.confirm(pw.ctx(), order_id=waiting.id, payer_id=pw.w.employee.id, pin="731946", actor="patient:x"))
    assert done.status == po.COMPLETED and done.trade_no
    assert pw.balances()["hospital_cash"] - held["hospital_cash"] == done.cash_pay


def test_five_wrong_pins_void_the_payment(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, limit=0)
    pw.set_pin(pw.w.employee.id, "731946")
    before = pw.balances()
    waiting = pw.pay(key="K9")
    for i in range(4):
        with pytest.raises(InputError):
            asyncio.run(confirmation.confirm(pw.ctx(), order_id=waiting.id, payer_id=pw.w.employee.id, pin="111112", actor="p"))
    with pytest.raises(Conflict) as exc:
        asyncio.run(confirmation.confirm(pw.ctx(), order_id=waiting.id, payer_id=pw.w.employee.id, pin="111112", actor="p"))
    assert exc.value.code == "pin_attempts_exhausted"
    got = order(pw, waiting.id)
    assert (got.status, got.void_reason, got.pin_attempts) == (po.VOIDED, po.PIN_EXHAUSTED, 5)
    assert pw.balances() == before
    with pytest.raises(Conflict):  # the right PIN now is too late
        asyncio.run(confirmation.confirm(pw.ctx(), order_id=waiting.id, payer_id=pw.w.employee.id, pin="731946", actor="p"))


def test_the_holder_declines_and_an_unconfirmed_payment_expires(db, keyring, wxpay, clock):
    pw = payment_world(db, keyring, wxpay, limit=0)
    before = pw.balances()
    first = pw.pay(key="K10")
    declined = db.run(lambda c: confirmation.decline(c, clock(), order_id=first.id, payer_id=pw.w.employee.id, actor="p"))
    assert (declined.status, declined.void_reason) == (po.VOIDED, po.HOLDER_DECLINED)
    assert pw.balances() == before
    second = pw.pay(key="K11")
    clock.advance(minutes=11)
    report = asyncio.run(recovery.recover(pw.ctx()))
    assert report.orders == {second.id: po.VOIDED}
    assert order(pw, second.id).void_reason == po.CONFIRMATION_EXPIRED
    assert pw.balances() == before


def test_a_guardian_pays_the_cash_for_a_linked_child_from_their_own_binding(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay)
    guardian = pw.w.employee
    child = enrol_child(db, keyring, guardian.id)
    active_card(db, keyring, child.id, card_no="CHILD0001")
    link_child(db, keyring, guardian.id)
    code = pw.code(holder_id=guardian.id, person_id=child.id)
    done = pw.pay(key="K12", code=code)
    assert (done.status, done.person_id, done.payer_id) == (po.COMPLETED, child.id, guardian.id)
    assert done.cash_pay > 0 and done.payment_institution_id == pw.pi_id


def test_two_copies_of_one_request_at_once_make_one_order_and_one_charge(db, keyring, wxpay):
    import threading

    pw = payment_world(db, keyring, wxpay)
    pw.pay(key="K13")  # the agreement exists
    code = pw.code()
    results, errors = [], []
    barrier = threading.Barrier(2)

    def copy() -> None:
        barrier.wait()
        try:
            results.append(pw.pay(key="K14", code=code))
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 2
    assert results[0].id == results[1].id and {r.status for r in results} == {po.COMPLETED}
    assert wxpay.runtime.books.trades[results[0].id].status == "succeeded"
    assert pw.balances()["pending"] == 0


def test_a_copy_that_reaches_request_cash_after_the_other_finished_gets_the_finished_order(db, keyring, wxpay):
    # The race behind the test above, made deterministic: copy A read the order held, copy B completed it,
    # then A's request_cash takes the lock. A gets the completed order back (and stops); nothing moves twice.
    pw = payment_world(db, keyring, wxpay)
    done = pw.pay(key="K16")
    assert done.status == po.COMPLETED
    before = pw.balances()
    again = db.run(lambda c: payments.request_cash(c, db.clock(), order_id=done.id, actor="test"))
    assert (again.status, again.trade_no, again.updated_at) == (po.COMPLETED, done.trade_no, done.updated_at)
    assert pw.balances() == before


def test_a_hold_that_fails_voids_the_created_order_and_the_code_stays_used(db, keyring, wxpay):
    from sqlalchemy import select

    from yibao.store.tables import payment_orders

    pw = payment_world(db, keyring, wxpay)
    db.run(lambda c: bindings.unbind(c, db.clock(), holder_id=pw.w.employee.id, pi_id=pw.pi_id, actor="test"))
    before = pw.balances()
    code = pw.code()
    with pytest.raises(Conflict) as exc:
        pw.pay(key="K15", code=code)
    assert exc.value.code == "no_default_binding"
    row = db.run(lambda c: c.execute(select(payment_orders).where(payment_orders.c.request_key == "K15")).one(), write=False)
    assert (row.status, row.void_reason, row.setl_id) == (po.VOIDED, po.NO_CHANNEL, None)
    assert pw.balances() == before
    with pytest.raises(YibaoError) as used:
        pw.pay(key="K16", code=code)
    assert used.value.code == "paycode_used"


def _counting(ctx):
    """``ctx`` whose units are listed as they run: True for a write unit, False for a read."""
    import dataclasses

    units: list[bool] = []

    async def run(work, *, write=True):  # noqa: ANN001, ANN202
        units.append(write)
        return await ctx.run(work, write=write)
    return dataclasses.replace(ctx, run=run), units


def test_a_payment_with_its_agreement_signed_commits_two_units_and_reads_nothing_apart(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay)  # the holder signed on WeChat's page when the world was made
    ctx, units = _counting(pw.ctx())
    order = pw.pay(key="K-next", ctx=ctx)
    assert order.status == po.COMPLETED
    # the code, the order, the hold and the cash request; the institution's answer.
    assert units == [True, True]


@pytest.mark.parametrize("name", ["wxpay", "alipay", "unionpay"])
def test_a_password_free_payment_without_a_signed_agreement_is_voided_and_never_signs_one(db, keyring, channel_world, name):
    """Issue 14: the holder signs on the institution's page before paying; a payer who has not is refused
    (agreement_not_signed), the hold undone, and the institution hears nothing — no agreement, no deduction."""
    from tests.adapters.channels.test_institutions import Recorder
    from yibao.services.agency import connectors as channel_registry
    from yibao.services.books import audit

    live = channel_world[name]
    live.reset()
    pw = payment_world(db, keyring, live, signed=False)
    before, agreements_before = pw.balances(), dict(live.runtime.books.agreements)
    recorder = Recorder()
    ctx, units = _counting(pw.ctx(channel_registry.Connectors(keyring, transport=recorder)))
    order = pw.pay(key="K-unsigned", ctx=ctx)
    assert (order.status, order.void_reason) == (po.VOIDED, po.NO_CHANNEL)
    assert recorder.sent == [] and live.runtime.books.agreements == agreements_before and order.id not in live.runtime.books.trades
    assert pw.balances() == before
    # the code, the order and the hold (it stops at held: no agreement); the void.
    assert units == [True, True]
    entries = db.run(lambda c: audit.entries(c, "440300", 500), write=False)
    assert not [e for e in entries if e.action == "channel.agreement"]


def test_a_retry_that_sends_a_requested_payment_again_never_voids_it_on_a_refusal_nor_on_a_stale_not_found(db, keyring, wxpay, monkeypatch,
                                                                                                          clock):
    """Review of issue 13: a copy of the request finds its order cash_requested (the first copy died calling the institution)
    and sends the request again under the same out_trade_no. A real institution refuses a second pay of a trade it already
    collected (ORDERPAID, ACQ.TRADE_HAS_SUCCESS): that refusal must not void the order — it is in doubt until a query
    says. And the resend moves the order's time, so a recovery that read it before cannot void it on a stale "not found"."""
    from yibao.channels import Declined
    from yibao.channels.wxpay.connector import WxPayChannel
    from yibao.services.payments import cash

    pw = payment_world(db, keyring, wxpay)
    pw.pay(key="R0")  # the agreement exists: the next payment requests its cash in its first unit

    class Died(BaseException):
        pass

    async def die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the process dies between the request and the call
        raise Died()

    code = pw.code()
    monkeypatch.setattr(cash, "_pay", die)
    with pytest.raises(Died):
        pw.pay(key="R1", code=code)
    monkeypatch.undo()
    first = db.run(lambda c: payments.for_request(c, pw.w.hospital.id, "R1"), write=False)
    assert first.status == po.CASH_REQUESTED

    async def refuse(self, request):  # noqa: ANN001, ANN202 - the institution refuses the second pay of the trade
        raise Declined(self.name, "ORDERPAID", "订单已支付", "the order is already paid")

    monkeypatch.setattr(WxPayChannel, "pay", refuse)
    clock.advance(seconds=30)  # the HIS retries half a minute later
    again = pw.pay(key="R1", code=code)
    assert again.id == first.id and again.status == po.CASH_UNKNOWN and again.updated_at > first.updated_at
    assert pw.balances()["pending"] > 0  # still held: a query decides

    stale = db.run(lambda c: payments.record_cash(c, db.clock(), order_id=first.id, outcome="not_found", actor="recovery",
                                                  seen=first.updated_at))
    assert stale.status == po.CASH_UNKNOWN  # a "not found" decided on the order as it was before the resend is dropped


@pytest.mark.parametrize("name", ["wxpay", "alipay", "unionpay"])
def test_a_payment_the_institution_accepted_is_not_voided_while_its_query_does_not_find_it_yet(db, keyring, channel_world, clock, name):
    """Issue 14: WeChat answered the deduction 204, UnionPay the consume 00, Alipay 10003 — accepted, signed — and its query
    still says no such order (a slow institution's books: the sandbox's visible_delay_ms). That "not found" is not
    believed for cash.ACCEPTED_WAIT after the acceptance: the order stays in doubt and completes once the query finds it
    paid. Past the wait, a signed "not found" voids it. (An order never accepted keeps the short grace:
    test_payment_faults.py, the server error.)"""
    from yibao.services.payments import cash

    assert cash.ACCEPTED_WAIT + recovery.CASH_GRACE < payments.HOLD_TIMEOUT  # decided while the ledger holds last
    live = channel_world[name]
    live.reset()
    try:
        pw = payment_world(db, keyring, live)
        # settle_delay: Alipay answers 10003 (in process) rather than 10000; the others accept and their query finds nothing
        live.runtime.set_knobs(settle_delay_ms=1, visible_delay_ms=600_000, drop_notification_rate=1.0)
        first = pw.pay(key="accepted-1")
        assert first.status == po.CASH_UNKNOWN and first.cash_accepted_at is not None
        clock.advance(minutes=2)  # past recovery's grace: the query answers, signed, that there is no such order
        assert asyncio.run(recovery.recover(pw.ctx())).orders == {first.id: po.CASH_UNKNOWN}
        live.runtime.set_knobs(visible_delay_ms=0)  # the institution's books catch up
        clock.advance(minutes=2)
        assert asyncio.run(recovery.recover(pw.ctx())).orders == {first.id: po.COMPLETED}
        assert order(pw, first.id).trade_no == live.runtime.books.trades[first.id].trade_no

        live.runtime.set_knobs(visible_delay_ms=600_000)
        before = pw.balances()
        second = pw.pay(key="accepted-2")
        assert second.status == po.CASH_UNKNOWN and second.cash_accepted_at is not None
        clock.advance(seconds=(cash.ACCEPTED_WAIT - timedelta(minutes=1)).total_seconds())
        assert asyncio.run(recovery.recover(pw.ctx())).orders == {second.id: po.CASH_UNKNOWN}
        clock.advance(minutes=2)  # the wait is over and the query still says, signed, no such order
        assert asyncio.run(recovery.recover(pw.ctx())).orders == {second.id: po.VOIDED}
        assert order(pw, second.id).void_reason == po.CASH_NOT_FOUND and pw.balances() == before
    finally:
        live.reset()
