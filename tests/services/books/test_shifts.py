"""A cashier's shift summary (services/books/shifts.py) on SQLite and PostgreSQL: settlements at the counter and by
one-code payment, a counter cancellation and a payment's cash refund, a voided payment and one waiting for the holder —
counted by layer and by payment mode, every total the sum of its rows, and nothing outside the window."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.support.payments import BIG_LINES, payment_world
from tests.support.settlement import open_with_lines, settle
from tests.support.world import credit
from yibao.domain import payment_order as po
from yibao.domain.money import parse_yuan
from yibao.services.books import shifts
from yibao.services.care import settlement
from yibao.services.payments import refunds


def _summary(db, inst, start, end):  # noqa: ANN001, ANN202
    return db.run(lambda c: shifts.summary(c, institution_id=inst.id, start=start, end=end), write=False)


def test_a_shift_counts_settlements_and_refunds_by_layer_and_mode(db, keyring, wxpay, clock):
    pw = payment_world(db, keyring, wxpay, limit=1000_00, balance=50_00)
    pw.set_pin(pw.w.employee.id, "731946")
    start = clock()
    clock.advance(seconds=1)
    paid = pw.pay(key="A", use_account=True)  # one-code: fund, account and cash through the payment institution
    assert paid.status == po.COMPLETED and paid.cash_pay > 0
    clock.advance(seconds=1)
    credit(db, pw.w.employee.id, 50_00, "top-up:shift")
    visit = open_with_lines(db, pw.w.hospital, pw.w.employee.id)
    doc = settle(db, pw.w.hospital, visit.id, "C-1")  # at the counter, the account too
    counter = {k: parse_yuan(doc[k]) for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")}
    assert counter["acct_pay"] > 0
    clock.advance(seconds=1)
    wxpay.runtime.set_knobs(error_rate=1.0)  # declined: voided, never paid — not in the summary
    assert pw.pay(key="V", use_account=False).status == po.VOIDED
    wxpay.runtime.set_knobs(error_rate=0.0)
    clock.advance(seconds=1)
    waiting = pw.pay(key="W", lines=BIG_LINES, use_account=False)  # above the password-free limit: pending, listed apart
    assert waiting.status == po.AWAITING_CONFIRMATION
    clock.advance(seconds=1)
    before_refunds = clock()
    db.run(lambda c: settlement.cancel(c, clock(), institution=pw.w.hospital, setl_id=doc["setl_id"], actor="his:test"))
    clock.advance(seconds=1)
    r = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="R-cash", request_hash="cash",
                                   scope="cash", actor="his:test"))
    assert r.status == "succeeded"
    end = clock() + timedelta(seconds=1)

    s = _summary(db, pw.w.hospital, start, end)
    assert [(x["setl_id"], x["mode"], x["status"]) for x in s.settlements] == [(paid.setl_id, "onecode", "partial"),
                                                                               (doc["setl_id"], "counter", "cancelled")]
    assert s.settlements[0] | {"total": paid.total, "fund": paid.fund_total, "account": paid.account_pay, "cash": paid.cash_pay} == s.settlements[0]
    assert [x["setl_id"] for x in s.pending] == [waiting.setl_id]
    assert s.settled.count == 2
    assert s.settled.money == {"total": paid.total + counter["medfee_sumamt"], "fund": paid.fund_total + counter["fund_pay_sumamt"],
                               "account": paid.account_pay + counter["acct_pay"], "cash": paid.cash_pay + counter["psn_cash_pay"]}
    # The cancellation gives back every share of the counter's settlement; the payment's refund only its cash.
    assert [(x["setl_id"], x["kind"], x["mode"]) for x in s.refunds] == [(doc["setl_id"], "cancel", "counter"), (paid.setl_id, "refund", "onecode")]
    assert {k: s.refunds[0][k] for k in shifts.SHARES} == {"total": counter["medfee_sumamt"], "fund": counter["fund_pay_sumamt"],
                                                          "account": counter["acct_pay"], "cash": counter["psn_cash_pay"]}
    assert {k: s.refunds[1][k] for k in shifts.SHARES} == {"total": paid.cash_pay, "fund": 0, "account": 0, "cash": paid.cash_pay}
    # Every total is the sum of its rows, and each row's total the sum of its layers.
    for rows, group in ((s.settlements, s.settled), (s.refunds, s.refunded)):
        assert group.count == len(rows)
        assert group.money == {k: sum(x[k] for x in rows) for k in shifts.SHARES}
        assert all(x["total"] == x["fund"] + x["account"] + x["cash"] for x in rows)
    modes = {m["mode"]: m for m in shifts.by_mode_rows(s)}
    assert sorted(modes) == ["counter", "onecode"]
    assert sum(m["settled"].count for m in modes.values()) == s.settled.count
    assert {k: sum(m["net"][k] for m in modes.values()) for k in shifts.SHARES} == s.net
    assert modes["counter"]["net"] == dict.fromkeys(shifts.SHARES, 0)  # settled and cancelled in the shift: nothing stays
    assert s.net == {"total": paid.total - paid.cash_pay, "fund": paid.fund_total, "account": paid.account_pay, "cash": 0}

    # A window after it all: nothing; one that ends before the refunds: the settlements only.
    later = _summary(db, pw.w.hospital, end, end + timedelta(hours=1))
    assert (later.settlements, later.refunds, later.pending) == ([], [], [])
    early = _summary(db, pw.w.hospital, start, before_refunds)
    assert (early.settled.count, early.refunded.count, len(early.pending)) == (2, 0, 1)
    # Another institution's counter sees none of it.
    assert _summary(db, pw.w.other_hospital, start, end).settled.count == 0


def test_a_refund_of_some_items_is_one_row_with_its_legs_by_layer(db, keyring, wxpay, clock):
    """A refund of items posts ``<leg>:refund:<refund id>`` (docs/payments.md): one refund row, each layer what that
    refund gave back — and a later refund of the rest (``<leg>:refund``) a second row; together all that was paid."""
    pw = payment_world(db, keyring, wxpay, limit=1000_00, balance=50_00)
    start = clock()
    clock.advance(seconds=1)
    paid = pw.pay(key="I", use_account=True)
    assert paid.status == po.COMPLETED and paid.account_pay > 0 and paid.cash_pay > 0
    clock.advance(seconds=1)
    part = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="R-items", request_hash="items",
                                      scope="items", items=["2", "3"], actor="his:test"))
    assert part.status == "succeeded" and part.legs is not None and sum(part.legs.values()) > part.legs["cash"] > 0
    clock.advance(seconds=1)
    rest = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="R-rest", request_hash="all",
                                      scope="all", actor="his:test"))
    assert rest.status == "succeeded"
    s = _summary(db, pw.w.hospital, start, clock() + timedelta(seconds=1))
    assert [(x["setl_id"], x["kind"], x["mode"]) for x in s.refunds] == [(paid.setl_id, "refund", "onecode")] * 2
    first = {"fund": sum(part.legs[x] for x in settlement.INSURANCE_LEGS if x != "account"), "account": part.legs["account"],
             "cash": part.legs["cash"]}
    assert {k: s.refunds[0][k] for k in shifts.SHARES} == {**first, "total": sum(part.legs.values())}
    assert s.refunded.money == {"total": paid.total, "fund": paid.fund_total, "account": paid.account_pay, "cash": paid.cash_pay}
    assert s.net == dict.fromkeys(shifts.SHARES, 0)
