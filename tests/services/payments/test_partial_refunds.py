"""Refunds of some items (scope items) through the services and a SANDBOX institution on loopback, on SQLite and
PostgreSQL: over random bills and random ways to refund them item by item, every leg — each fund layer, the account,
the cash — is accounted to the fen after each refund (paid = refunded + remaining, the ledger's refund transfers are
the refunds' legs, the institution refunded exactly the cash legs), and once every item is refunded every balance and
the year's totals are exactly as before the payment."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.payments import payment_world
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict
from yibao.services.books import accumulators
from yibao.services.care import settlement
from yibao.services.payments import orders as payments
from yibao.services.payments import refunds

CODES = [  # the demo catalogue's lines: a consultation, a prescribed drug (class B), a self-paid item, a nursing item
    {"medins_list_codg": "A001", "name": "诊查费"},
    {"medins_list_codg": "XB01", "name": "头孢克肟胶囊", "prescription": True, "prescriber": "D0042"},
    {"medins_list_codg": "C900", "name": "保健品"},
    {"medins_list_codg": "C901", "name": "护理用品"},
]


@st.composite
def bills_and_refunds(draw):  # noqa: ANN001, ANN201
    chosen = draw(st.lists(st.sampled_from(range(len(CODES))), min_size=2, max_size=4, unique=True))
    lines = [{**CODES[i], "feedetl_sn": str(n + 1), "unit_price": f"{draw(st.integers(1, 8000)) / 100:.2f}",
              "quantity": str(draw(st.integers(1, 3)))} for n, i in enumerate(chosen)]
    order = draw(st.permutations([ln["feedetl_sn"] for ln in lines]))
    cuts = sorted(draw(st.sets(st.integers(1, len(order) - 1), max_size=len(order) - 1)))
    chunks = [list(order[a:b]) for a, b in itertools.pairwise([0, *cuts, len(order)])]
    return lines, draw(st.booleans()), chunks, draw(st.booleans())


def test_every_fen_of_every_leg_is_accounted_over_random_item_refunds(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, limit=100000, balance=30000)
    year = db.clock().year
    n = itertools.count()

    def books() -> dict:
        return {**pw.balances(), "acc": db.run(lambda c: accumulators.read(c, pw.w.employee.id, year), write=False)}

    start = books()

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(bills_and_refunds())
    def run(case) -> None:  # noqa: ANN001
        lines, use_account, chunks, rest_by_all = case
        k = next(n)
        paid = pw.pay(key=f"P{k}", lines=lines, use_account=use_account)
        assert paid.status == po.COMPLETED, paid
        legs_paid = {name: p for name, (p, _) in db.run(lambda c: settlement.legs_left(c, paid.setl_id), write=False).items()}
        assert sum(legs_paid.values()) == paid.total and legs_paid["cash"] == paid.cash_pay
        given_back = dict.fromkeys(settlement.LEGS, 0)
        if rest_by_all and len(chunks) > 1:
            chunks = [*chunks[:-1], None]  # the last chunk: scope all, what is left of each leg
        for i, items in enumerate(chunks):
            r = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key=f"R{k}.{i}",
                                           request_hash="h", scope="items" if items else "all", items=items, actor="test"))
            assert r.status == "succeeded", r
            if r.legs is not None:
                assert r.insurance_fen == sum(r.legs[x] for x in settlement.INSURANCE_LEGS) and r.cash_fen == r.legs["cash"]
                assert min(r.legs.values()) >= 0
                for name in settlement.LEGS:
                    given_back[name] += r.legs[name]
            else:  # scope all after items: what was left of each leg
                assert (r.insurance_fen, r.cash_fen) == (sum(legs_paid[x] - given_back[x] for x in settlement.INSURANCE_LEGS),
                                                         legs_paid["cash"] - given_back["cash"])
                given_back = dict(legs_paid)
            order = db.run(lambda c: payments.require(c, paid.id), write=False)
            summary = db.run(lambda c: refunds.summary(c, order), write=False)
            for name in (*settlement.LEGS, "fund", "total"):  # paid = refunded + remaining, each leg, to the fen
                assert summary["paid"][name] == summary["refunded"][name] + summary["remaining"][name], name
                assert summary["remaining"][name] >= 0
            assert {x: summary["refunded"][x] for x in settlement.LEGS} == given_back
            assert {x: summary["paid"][x] for x in settlement.LEGS} == legs_paid
            assert wxpay.runtime.books.trades[paid.id].refunded_fen == given_back["cash"] if paid.cash_pay else True
            last = i == len(chunks) - 1
            assert order.status == (po.REFUNDED if last else po.PARTIALLY_REFUNDED)
        assert given_back == legs_paid
        assert books() == start  # holder, fund pool, hospital receivable and cash, the year's totals: as before the payment

    run()


def test_invalid_items_are_refused_before_anything_moves_and_a_retry_is_the_same_refund(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, balance=20000)
    paid = pw.pay(key="K", use_account=True)
    before = pw.balances()
    preview = db.run(lambda c: refunds.preview(c, institution=pw.w.hospital, order_id=paid.id, items=["3"]), write=False)
    assert preview["items"] == ["3"] and preview["legs"]["total"] == "50.00"
    for bad in (["3", "3"], ["9"], []):
        try:
            asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key=f"X{bad}", request_hash="h",
                                       scope="items", items=bad, actor="test"))
            raise AssertionError(bad)
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "field", None) == "items", exc
    assert pw.balances() == before and db.run(lambda c: payments.require(c, paid.id), write=False).status == po.COMPLETED
    done = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="Y", request_hash="h",
                                      scope="items", items=["3"], actor="test"))
    again = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="Y", request_hash="h",
                                       scope="items", items=["3"], actor="test"))
    assert again == done and done.status == "succeeded"
    try:
        asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=paid.id, request_key="Y", request_hash="other",
                                   scope="items", items=["2"], actor="test"))
        raise AssertionError("a reused key")
    except Conflict as exc:
        assert exc.code == "idempotency_key_reused"



def test_items_refunded_after_a_later_payment_of_the_same_person_and_both_refunded_restore_the_books(db, keyring, wxpay):
    """The second payment used the deductible the first left: the first's remaining items are priced on the year's totals
    without the first (the second's use kept), so they take no more of the fund than they did; refunding both after
    leaves every balance and the year's totals as before either."""
    pw = payment_world(db, keyring, wxpay, balance=20000)
    start = pw.balances(), db.run(lambda c: accumulators.read(c, pw.w.employee.id, db.clock().year), write=False)
    first = pw.pay(key="A")
    second = pw.pay(key="B")
    assert second.fund_total > first.fund_total > 0  # the first used part of the deductible, the second paid past it
    part = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=first.id, request_key="R", request_hash="h",
                                      scope="items", items=["3"], actor="test"))  # 保健品: own expense, cash only
    assert part.status == "succeeded" and part.legs == {**dict.fromkeys(settlement.LEGS, 0), "cash": 50_00}
    for order_id in (second.id, first.id):
        done = asyncio.run(refunds.refund(pw.ctx(), institution=pw.w.hospital, order_id=order_id, request_key=f"W{order_id}",
                                          request_hash="h", scope="all", actor="test"))
        assert done.status == "succeeded"
    assert (pw.balances(), db.run(lambda c: accumulators.read(c, pw.w.employee.id, db.clock().year), write=False)) == start
