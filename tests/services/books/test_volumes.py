"""/admin's day figures (services/volumes.py) on SQLite and PostgreSQL: a day with one settlement of every status, built
through the services a hospital and a payment institution drive — a settled payment, one refunded in cash only, one
refunded in insurance only (services/refunds.py), one refunded in full, a settlement cancelled by the HIS, a payment
the institution declined (voided) and one waiting for the holder (pending) — and the exact figures in fen.

The region's calendar day is UTC+8: a payment at 23:59:59 local (15:59:59 UTC) belongs to the day before, one at
00:00:00 local (16:00:00 UTC the day before in UTC) to the day."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from tests.support.payments import BIG_LINES, LINES, payment_world
from tests.support.presence import present
from tests.support.settlement import open_with_lines
from tests.support.world import credit, seed
from yibao.domain import payment_order as po
from yibao.domain.errors import InputError
from yibao.domain.ledger import person_account
from yibao.domain.money import parse_yuan
from yibao.services.books import ledger, volumes
from yibao.services.care import settlement
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import refunds
from yibao.store.tables import payment_refunds, settlements

YESTERDAY, TODAY = date(2026, 11, 21), date(2026, 11, 22)
LAST_SECOND_OF_YESTERDAY = datetime(2026, 11, 21, 15, 59, 59, tzinfo=timezone.utc)  # 23:59:59 in UTC+8
MIDNIGHT = datetime(2026, 11, 21, 16, 0, tzinfo=timezone.utc)  # 2026-11-22 00:00:00 in UTC+8


def _account_at(pw, fen: int) -> None:  # noqa: ANN001
    """Top the holder's personal account up to exactly ``fen`` available (so each payment's account share is known)."""
    holder = pw.w.employee.id
    available = pw.db.run(lambda c: ledger.available(c, person_account(holder)), write=False)
    if available < fen:
        credit(pw.db, holder, fen - available, f"top-up:{pw.db.clock().isoformat()}:{available}")


def _pay(pw, key: str, *, lines=LINES):  # noqa: ANN001, ANN202
    _account_at(pw, 100_00)
    done = pw.pay(key=key, lines=lines, use_account=True)
    pw.db.clock.advance(seconds=1)
    return done


def _refund(pw, order, scope: str):  # noqa: ANN001, ANN202
    r = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=order.id, request_key=f"refund-{order.id}-{scope}",
                                        request_hash=scope, scope=scope, actor="his:test"))
    assert r.status == "succeeded", r
    pw.db.clock.advance(seconds=1)
    return r


def _status(db, setl_id: str) -> str:  # noqa: ANN001
    return db.run(lambda c: c.execute(select(settlements.c.status).where(settlements.c.id == setl_id)).scalar_one(), write=False)


def _day(db, day: date) -> dict[str, volumes.RegionDay]:  # noqa: ANN001
    return {d.region: d for d in db.run(lambda c: volumes.by_region(c, day), write=False)}


def test_a_day_with_every_settlement_status_counts_and_sums_exactly(db, keyring, wxpay, clock):
    clock.now = LAST_SECOND_OF_YESTERDAY
    pw = payment_world(db, keyring, wxpay, limit=1000_00, balance=100_00)
    pw.set_pin(pw.w.employee.id, "731946")
    # Yesterday (local), the last second: the year's outpatient deductible (300.00) is used up, cash only.
    # 375.00 = pool 9.00 + cash 366.00 (lines: 300 + 25 + 50; in scope 318.00; (318 − 300) × 50% = 9.00).
    yesterday = pw.pay(key="Y", use_account=False)
    assert (yesterday.fund_total, yesterday.account_pay, yesterday.cash_pay) == (900, 0, 366_00)

    clock.now = MIDNIGHT  # from here on: today in UTC+8, still the 21st in UTC
    # Every payment of today: 375.00 = pool 159.00 (318.00 × 50%) + account 100.00 + cash 116.00.
    settled = _pay(pw, "A")
    assert (settled.status, settled.fund_total, settled.account_pay, settled.cash_pay, settled.total) == (po.COMPLETED, 159_00, 100_00, 116_00,
                                                                                                        375_00)
    cash_back, insurance_back, all_back = _pay(pw, "B"), _pay(pw, "C"), _pay(pw, "D")
    # A settlement at the counter (no payment order), to be cancelled by the HIS (2208).
    _account_at(pw, 100_00)
    visit = open_with_lines(db, pw.w.hospital, pw.w.employee.id)
    present(db, pw.w.hospital, pw.w.employee.id, visit.id)  # the holder presented a credential for it (set-up)
    doc = db.run(lambda c: settlement.settle(c, clock(), institution=pw.w.hospital, visit_id=visit.id, msgid="HIS-E",
                                             account=AccountRequest(use=True), actor="his:test"))
    assert (doc["hifp_pay"], doc["acct_pay"], doc["psn_cash_pay"]) == ("159.00", "100.00", "116.00")
    wxpay.runtime.set_knobs(error_rate=1.0)  # the institution declines the cash: the payment is voided, nothing paid
    voided = _pay(pw, "F")
    assert voided.status == po.VOIDED
    wxpay.runtime.set_knobs(error_rate=0.0)
    # Above the password-free limit (cash 4116.00 > 1000.00): held, waiting for the holder's PIN.
    waiting = _pay(pw, "G", lines=BIG_LINES)
    assert (waiting.status, waiting.cash_pay) == (po.AWAITING_CONFIRMATION, 4116_00)
    for order in (cash_back, insurance_back, all_back, settled):
        assert (order.status, order.fund_total, order.account_pay, order.cash_pay) == (po.COMPLETED, 159_00, 100_00, 116_00)

    # Then what undoes some of them (after every payment, so each payment's account share is exactly 100.00).
    _refund(pw, cash_back, "cash")
    _refund(pw, insurance_back, "insurance")
    _refund(pw, all_back, "all")
    _refund(pw, yesterday, "cash")  # today, of yesterday's payment: yesterday's figures, not today's
    db.run(lambda c: settlement.cancel(c, clock(), institution=pw.w.hospital, setl_id=doc["setl_id"], actor="his:test"))

    assert {o.id: _status(db, o.setl_id) for o in (settled, cash_back, insurance_back, all_back, voided, waiting, yesterday)} == {
        settled.id: "settled", cash_back.id: "partial", insurance_back.id: "partial", all_back.id: "cancelled", voided.id: "voided",
        waiting.id: "pending", yesterday.id: "partial"}
    assert _status(db, doc["setl_id"]) == "cancelled"

    day = _day(db, TODAY)
    assert list(day) == ["440300"]
    d = day["440300"]
    # settled A, B (cash back), C (insurance back); cancelled D (refunded in full) and E; G in progress; F not counted
    assert (d.settled, d.partial, d.cancelled, d.in_progress) == (3, 2, 2, 1)
    # paid, net: pool 3 × 159.00 − C's 159.00; account 3 × 100.00 − C's 100.00; cash 3 × 116.00 − B's 116.00
    assert d.paid == {"pool_fund": 318_00, "serious_illness": 0, "large_amount": 0, "other": 0, "assistance": 0, "account_pay": 200_00,
                      "cash_pay": 232_00}
    assert d.total == 750_00 == sum(d.paid.values())  # 3 × 375.00 − 259.00 − 116.00
    assert d.refunded == {"pool_fund": 159_00, "serious_illness": 0, "large_amount": 0, "other": 0, "assistance": 0, "account_pay": 100_00,
                          "cash_pay": 116_00}
    assert (d.refunded_insurance, d.refunded_cash) == (259_00, 116_00)

    # What the refund records say was given back of today's partly refunded payments is what the dashboard took off.
    given = db.run(lambda c: c.execute(select(payment_refunds.c.insurance_fen, payment_refunds.c.cash_fen)
                                       .where(payment_refunds.c.order_id.in_([cash_back.id, insurance_back.id]),
                                              payment_refunds.c.status == "succeeded")).all(), write=False)
    assert (sum(r.insurance_fen for r in given), sum(r.cash_fen for r in given)) == (d.refunded_insurance, d.refunded_cash)

    # Yesterday: one settlement, its cash given back today; the fund's 9.00 stays paid.
    y = _day(db, YESTERDAY)["440300"]
    assert (y.settled, y.partial, y.cancelled, y.in_progress, y.total) == (1, 1, 0, 0, 900)
    assert (y.paid["pool_fund"], y.paid["account_pay"], y.paid["cash_pay"], y.refunded_insurance, y.refunded_cash) == (900, 0, 0, 0, 366_00)
    assert _day(db, date(2026, 11, 23)) == {}

    # A period is its days added up: yesterday and today together; today to tomorrow is today alone.
    both = {d.region: d for d in db.run(lambda c: volumes.by_region(c, YESTERDAY, TODAY), write=False)}["440300"]
    assert (both.settled, both.partial, both.cancelled, both.in_progress) == (4, 3, 2, 1)
    assert both.paid == {k: d.paid[k] + y.paid[k] for k in volumes.LAYERS} and both.total == d.total + y.total == 750_00 + 900
    assert both.refunded == {k: d.refunded[k] + y.refunded[k] for k in volumes.LAYERS}
    assert db.run(lambda c: volumes.by_region(c, TODAY, date(2026, 11, 23)), write=False) == [d]
    with pytest.raises(InputError) as e:  # refused before any reading
        db.run(lambda c: volumes.by_region(c, TODAY, YESTERDAY), write=False)
    assert e.value.code == "range_reversed" and e.value.field == "date_from"


def test_a_period_is_checked_and_presets_name_today_this_week_and_this_month():
    wednesday = date(2026, 12, 9)
    assert volumes.preset("today", wednesday) == (wednesday, wednesday)
    assert volumes.preset("week", wednesday) == (date(2026, 12, 7), wednesday)  # from Monday
    assert volumes.preset("month", wednesday) == (date(2026, 12, 1), wednesday)
    assert volumes.preset("week", date(2026, 12, 7)) == (date(2026, 12, 7), date(2026, 12, 7))
    assert volumes.period(date(2026, 1, 1), date(2026, 12, 31)) == (date(2026, 1, 1), date(2026, 12, 31))  # 365 days
    with pytest.raises(InputError) as e:
        volumes.period(date(2025, 1, 1), date(2026, 1, 2))  # 367 days
    assert e.value.code == "range_too_long" and "366" in e.value.message_zh and e.value.field == "date_to"
    with pytest.raises(InputError) as e:
        volumes.parse_day("2026-13-01", "date_to", "结束日期", "The end date")
    assert e.value.field == "date_to" and "结束日期" in e.value.message_zh
    with pytest.raises(InputError):
        volumes.preset("year", wednesday)


def test_a_cross_region_refund_is_taken_off_once_not_with_its_clearing_half(db, keyring, clock):
    """Treated in Qingdao, insured in Shenzhen: each fund and account leg moves through the two regions' clearing accounts
    (two transfers for one payment); giving the insurance back reverses both, and the dashboard takes it off once."""
    sz = seed(db, keyring, balance=100_00)  # the account pays 100.00, the rest is cash: a partial refund, not a full one
    qd = seed(db, keyring, region="370200")
    visit = open_with_lines(db, qd.hospital, sz.employee.id, lines=[{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费",
                                                                      "unit_price": "1000.00", "quantity": "1"}])
    present(db, qd.hospital, sz.employee.id, visit.id)  # the holder presented a credential for it (set-up)
    doc = db.run(lambda c: settlement.settle(c, clock(), institution=qd.hospital, visit_id=visit.id, msgid="X-1", account=AccountRequest(use=True),
                                             actor="his:test", pending=True))
    db.run(lambda c: settlement.post_settlement(c, clock(), setl_id=doc["setl_id"], actor="test"))
    fund, account, cash = (parse_yuan(doc[k]) for k in ("fund_pay_sumamt", "acct_pay", "psn_cash_pay"))
    assert (fund, account, cash) == (250_00, 100_00, 650_00), doc["explanation"]
    moved = db.run(lambda c: settlement.refund_part(c, clock(), setl_id=doc["setl_id"], part="insurance", refund_id="RF-X", actor="test"))
    assert moved == {"amount": fund + account, "cancelled": 0}
    legs = db.run(lambda c: [t.client_id for t in ledger.journal(c, doc["setl_id"], "refund")], write=False)
    assert any(leg.endswith(":cleared:refund") for leg in legs)

    d = _day(db, clock().astimezone(volumes.CHINA).date())["370200"]
    assert (d.settled, d.partial, d.cancelled) == (1, 1, 0)
    assert (d.paid["pool_fund"] + d.paid["serious_illness"] + d.paid["large_amount"] + d.paid["other"] + d.paid["assistance"], d.paid["account_pay"]) == (0, 0)
    assert (d.paid["cash_pay"], d.total, d.refunded_insurance, d.refunded_cash) == (cash, cash, fund + account, 0)
