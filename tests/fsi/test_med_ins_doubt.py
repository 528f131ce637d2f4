"""A wallet's medical-insurance order in doubt, and its refunds, after the review of the mixed order (SQLite and
PostgreSQL, every party over HTTP as in test_med_ins_wallet.py): a lost answer to `request` ends in a void once the
wallet can no longer collect; a self-pay part refunded before the insurance part was settled voids the order with an
anomaly, never completes it; one failing order does not stop a recovery round; a wallet order is never refunded by
items; a cash refund never seen at the wallet fails after its wait."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from tests.fsi.test_med_ins_wallet import FEEDETAIL_LIST, PIN, _to_completion, stack  # noqa: F401 — the fixture
from tests.support.api import his, key
from tests.support.callbacks import HospitalEndpoint
from tests.support.channels import serve_in_thread
from tests.support.identity import admit
from tests.support.payments import configure_channel, wait_until
from yibao.channels.base import BadSignature, MedInsOrder
from yibao.channels.wxpay import transformers as tx
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError
from yibao.services.payments import medins, recovery, refunds
from yibao.store.tables import med_ins_auths


def _held_and_ordered(s):  # noqa: ANN001, ANN202
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    pre = s.presettle(up, pay_auth_no)
    status, mix = s.mixed_order(pre, pay_auth_no)
    assert status == 200, mix
    return up, pre, mix["mix_trade_no"]


def _request(s, up, mix):  # noqa: ANN001, ANN202 — the wallet's `request`, its answer lost on the way back
    return s.pw.db.run(lambda c: medins.request_cash(c, s.clock.now, pi_id=s.pw.pi_id, pay_order_id=up["payOrdId"], mix_trade_no=mix,
                                                     actor="wallet:test"))


def test_a_lost_answer_to_request_is_voided_once_the_wallet_can_no_longer_collect(stack):  # noqa: F811
    s = stack
    before = s.pw.balances()
    up, _, mix = _held_and_ordered(s)
    assert _request(s, up, mix).status == po.CASH_REQUESTED
    s.clock.advance(minutes=1)
    assert _request(s, up, mix).status == po.CASH_REQUESTED  # the same request again, in time: answered as it stands
    s.clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(s.pw.ctx()))
    assert report.orders[up["payOrdId"]] == po.CASH_UNKNOWN  # SELF_PAY_CREATED within the window: the wallet may still collect
    with pytest.raises(Conflict) as refused:  # in doubt: no new request may collect now
        _request(s, up, mix)
    assert (refused.value.field, refused.value.code) == ("pay_order_id", "order_not_payable")
    s.clock.advance(minutes=3)
    report = asyncio.run(recovery.recover(s.pw.ctx()))
    assert report.orders[up["payOrdId"]] == po.VOIDED and not report.errors, report
    order = s.order(up["payOrdId"])
    assert (order.status, order.void_reason, order.anomaly) == (po.VOIDED, po.CASH_FAILED, None)
    assert s.pw.balances() == before  # the hold voided: every fen where it was
    late = s.holder_pays(mix)  # the holder comes back: the platform refuses the request, the wallet collects nothing
    assert (late["mix_pay_status"], late["self_pay_status"]) == ("MIX_PAY_FAIL", "SELF_PAY_FAIL"), late
    assert s.order(up["payOrdId"]).status == po.VOIDED and s.pw.balances() == before


def test_a_wallet_order_asked_about_by_a_request_that_stores_its_answer_gets_it_stored_in_the_deciding_unit(stack):  # noqa: F811
    """cash.ask with ``finish`` (a request keeping its answer under its Idempotency-Key) on a wallet order: the answer is
    handed over in the unit that records the wallet's word, as for any order — once a RuntimeError (a 500)."""
    from yibao.services.payments import cash as cash_leg
    from yibao.services.payments import orders as payments

    s = stack
    up, _, mix = _held_and_ordered(s)
    assert _request(s, up, mix).status == po.CASH_REQUESTED
    s.clock.advance(minutes=6)  # past the wallet's request window: its SELF_PAY_CREATED can no longer be collected
    seen = []

    def finish(c, order):  # noqa: ANN001, ANN202
        seen.append((order.status, payments.require(c, order.id).status))  # the same unit: it reads its own write
    done = asyncio.run(cash_leg.ask(s.pw.ctx(), s.order(up["payOrdId"]), actor="test", finish=finish))
    assert done.status == po.VOIDED and seen == [(po.VOIDED, po.VOIDED)]


def test_request_is_refused_for_a_hold_about_to_expire(stack):  # noqa: F811
    s = stack
    up, _, mix = _held_and_ordered(s)
    from yibao.services.payments import orders as payments

    s.clock.advance(seconds=(payments.HOLD_TIMEOUT - medins.REQUEST_WINDOW).total_seconds())
    with pytest.raises(Conflict) as refused:
        _request(s, up, mix)
    assert (refused.value.field, refused.value.code) == ("pay_order_id", "hold_expiring")
    assert s.order(up["payOrdId"]).status == po.HELD


def _found(mix: str = "MIX_PAY_CREATED", self_pay: str = "SELF_PAY_CREATED", med_ins: str = "MED_INS_PAY_CREATED",
           cash: int = 500) -> MedInsOrder:
    return MedInsOrder("MIX1", "PO1", mix, self_pay, med_ins, cash)


@pytest.mark.parametrize(("found", "age_min", "outcome"), [
    (_found(), 1, "unknown"),  # not collected yet, within the window
    (_found(), 6, "failed"),  # not collected, and no request is accepted any more
    (_found(mix="MIX_PAY_FAIL"), 1, "failed"),
    (_found(mix="MIX_PAY_FAIL", self_pay="SELF_PAY_SUCCESS"), 1, "failed"),
    (_found(self_pay="SELF_PAY_FAIL"), 1, "failed"),
    (_found(self_pay="SELF_PAY_SUCCESS"), 1, "succeeded"),
    (_found(self_pay="SELF_PAY_SUCCESS", cash=499), 1, "unknown"),  # another amount: never completed on it
    (_found(self_pay="SELF_PAY_REFUND"), 1, "refunded"),  # refunded before the insurance part was settled: void + anomaly
    (_found(mix="MIX_PAY_REFUND", self_pay="SELF_PAY_REFUND", med_ins="MED_INS_PAY_SUCCESS"), 1, "succeeded"),
])
def test_what_the_wallet_s_mixed_order_says_of_an_order_in_doubt(found: MedInsOrder, age_min: int, outcome: str):
    from tests.support.payments import LINES  # noqa: F401 — the order below needs only its amounts
    from yibao.services.payments.orders import Order

    t0 = datetime(2026, 12, 1, 8, tzinfo=timezone.utc)
    order = Order("PO1", "110100", "H1", "k", "h", "medins", "V1", "P1", "P1", "S1", None, "PI1", po.CASH_UNKNOWN, None, 1000, 400, 100,
                  500, None, 0, None, None, None, t0, t0, "wallet")
    assert medins.outcome_of(found, order, t0, t0 + timedelta(minutes=age_min)) == outcome


def test_a_self_pay_part_refunded_before_settlement_voids_the_order_with_an_anomaly(stack):  # noqa: F811
    s = stack
    before = s.pw.balances()
    up, _, mix = _held_and_ordered(s)
    paid = s.holder_pays(mix, "LOSE_RESULT")  # collected; the wallet's word to the platform lost
    assert paid["mix_pay_status"] == "MIX_PAY_CREATED"
    order = s.order(up["payOrdId"])
    truth = s.merchant.call("GET", f"/v3/med-ins/orders/mix-trade-no/{mix}")[1]
    status, refund = s.merchant.call("POST", "/v3/refund/domestic/refunds", {  # the hospital gives the cash back at the wallet
        "out_trade_no": truth["out_trade_no"], "out_refund_no": "RF-X", "reason": "failed order",
        "amount": {"refund": order.cash_pay, "total": order.cash_pay, "currency": "CNY"}})
    assert status == 200, refund
    s.clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(s.pw.ctx()))
    assert report.orders[up["payOrdId"]] == po.VOIDED, report
    after = s.order(up["payOrdId"])
    assert (after.status, after.anomaly) == (po.VOIDED, "cash_refunded_before_settlement")
    assert s.pw.balances() == before  # the insurance part never posted: the account untouched, nothing held


def test_one_failing_order_does_not_stop_the_recovery_round(stack, monkeypatch):  # noqa: F811
    s = stack
    up1, _, mix1 = _held_and_ordered(s)
    s.holder_pays(mix1, "LOSE_RESULT")
    s.clock.advance(seconds=1)
    up2, _, mix2 = _held_and_ordered(s)
    s.holder_pays(mix2, "LOSE_RESULT")
    real = medins.truth

    async def truth(ctx, order):  # noqa: ANN001, ANN202 — the first order's step raises (as a ledger refusal did)
        if order.id == up1["payOrdId"]:
            raise RuntimeError("a held transfer is already expired")
        return await real(ctx, order)
    monkeypatch.setattr(medins, "truth", truth)
    s.clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(s.pw.ctx()))
    assert report.orders.get(up2["payOrdId"]) == po.COMPLETED, report  # the round went on
    assert "already expired" in report.errors[up1["payOrdId"]] and report.as_dict()["errors"] == 1
    assert s.order(up1["payOrdId"]).status == po.CASH_REQUESTED  # untouched: the next round asks again
    monkeypatch.setattr(medins, "truth", real)
    assert asyncio.run(recovery.recover(s.pw.ctx())).orders[up1["payOrdId"]] == po.COMPLETED


def test_a_wallet_order_is_not_refunded_by_items(stack):  # noqa: F811
    s = stack
    up, _, _ = _to_completion(s)
    with pytest.raises(Conflict) as refused:
        asyncio.run(refunds.refund(s.pw.ctx(), institution=s.pw.w.hospital, order_id=up["payOrdId"], request_key="k-lines",
                                   request_hash="h", scope="all", actor="his:test", lines_to_keep=["1"]))
    assert (refused.value.field, refused.value.code) == ("lines_to_keep", "lines_refund_not_for_wallet")
    assert "lines_to_keep" in refused.value.message_zh and "6201" in refused.value.message_en
    assert s.order(up["payOrdId"]).status == po.COMPLETED  # nothing started, nothing re-billed


def test_a_cash_refund_never_seen_at_the_wallet_fails_after_its_wait(stack):  # noqa: F811
    s = stack
    up, pre, mix = _to_completion(s)
    order = s.order(up["payOrdId"])
    token = {"payOrdId": up["payOrdId"], "payToken": up["payToken"]}

    def cash(sn: str) -> dict:
        return {"data": {**token, "appRefdSn": sn, "refdType": "CASH", "totlRefdAmt": pre["ownPayAmt"], "fundRefdAmt": Decimal("0"),
                         "psnAcctRefdAmt": Decimal("0"), "cashRefdAmt": pre["ownPayAmt"]}}
    assert s.his.ok("6203", cash("RF-CASH-1"))["refStatus"] == "EXP"  # the hospital has not refunded at the wallet
    assert s.order(up["payOrdId"]).status == po.REFUNDING
    s.clock.advance(seconds=(refunds.WALLET_REFUND_WAIT - timedelta(minutes=1)).total_seconds())
    asyncio.run(recovery.recover(s.pw.ctx()))
    assert s.order(up["payOrdId"]).status == po.REFUNDING  # still within the wait
    s.clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(s.pw.ctx()))
    assert list(report.refunds.values()) == ["failed"], report
    assert s.order(up["payOrdId"]).status == po.COMPLETED  # nothing given back: refundable again
    truth = s.merchant.call("GET", f"/v3/med-ins/orders/mix-trade-no/{mix}")[1]
    status, refund = s.merchant.call("POST", "/v3/refund/domestic/refunds", {
        "out_trade_no": truth["out_trade_no"], "out_refund_no": "RF-CASH-2", "reason": "退费",
        "amount": {"refund": order.cash_pay, "total": order.cash_pay, "currency": "CNY"}})
    assert status == 200, refund
    done = s.his.ok("6203", cash("RF-CASH-2"))  # not refused refund_in_progress: the hospital's next 6203 goes through
    assert (done["refStatus"], done["cashRefdAmt"]) == ("SUCC", pre["ownPayAmt"]), done


def test_a_pay_auth_no_binds_only_at_the_hospital_it_was_asked_for(stack):  # noqa: F811
    s = stack
    pay_auth_no = s.pay_auth_no(med_inst_no="H440300OTHER")  # the wallet asked it for another hospital
    s.his.refused("6201", {"data": {"orgCodg": s.pw.w.hospital.id, "psnNo": s.pw.w.employee.id, "medOrgOrd": "HIS-H", "acctUsedFlag": "1",
                                    "payAuthNo": pay_auth_no, "feedetailList": FEEDETAIL_LIST}}, "input.data.payAuthNo", "pay_auth_other_hospital")
    up = s.upload(s.pay_auth_no())  # asked for this hospital: binds
    assert up["ordStas"] == "1"
    row = s.pw.db.run(lambda c: c.execute(med_ins_auths.select().where(med_ins_auths.c.order_id == up["payOrdId"])).one(), write=False)
    assert row.med_inst_no == s.pw.w.hospital.id


def test_a_holder_authorises_only_a_wallet_of_their_own_region(stack):  # noqa: F811
    s = stack
    s.auth_code()  # logged in, PIN set
    admit(s.pw.db, "wxpay-370200", region="370200")
    configure_channel(s.pw.db, s.pw.keyring, "wxpay-370200", s.wxpay.channel)
    r = s.client.post("/api/v1/patient/med-ins/authorisations", json={"payment_institution_id": "wxpay-370200", "pin": PIN},
                      headers={**s.me, **key()})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_in_region", r.text
    assert r.json()["error"]["field"] == "payment_institution_id"


@pytest.fixture
def recorded(stack):  # noqa: F811
    """The sandbox wallet's signed requests to yibao pass through a recorder (same paths), which keeps each one."""
    s = stack
    got: list[tuple[str, dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/api/v1/channels/{pi_id}/med-ins/{action}")
    async def forward(pi_id: str, action: str, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("wechatpay-") or k.lower() == "content-type"}
        got.append((request.url.path, headers, body))
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(f"{s.platform_url}{request.url.path}", content=body, headers=headers)
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    url, server, thread, sock = serve_in_thread(app, "wallet-recorder")
    r = httpx.put(f"{s.wxpay.url}/sandbox/med-ins/platform", json={"url": f"{url}/api/v1/channels/{s.pw.pi_id}/med-ins"})
    assert r.status_code == 200
    yield s, got
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_replayed_wrong_path_and_stale_wallet_requests_are_refused(recorded):
    s, got = recorded
    pay_auth_no = s.pay_auth_no()
    pre = s.presettle(s.upload(pay_auth_no), pay_auth_no)
    status, _ = s.mixed_order(pre, pay_auth_no)
    assert status == 200
    path, headers, body = next(g for g in got if g[0].endswith("/check"))
    again = httpx.post(f"{s.platform_url}{path}", content=body, headers=headers, timeout=30)  # the same signed request, replayed
    assert again.status_code == 409 and again.json()["error"]["code"] == "nonce_reused", again.text
    assert again.json()["error"]["field"] == "Wechatpay-Nonce"
    elsewhere = httpx.post(f"{s.platform_url}{path[:-len('check')]}request", content=body, headers=headers, timeout=30)
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "bad_signature", elsewhere.text  # the path is signed
    assert s.order(pre["payOrdId"]).status == po.HELD  # nothing moved
    cfg, now = s.wxpay.channel.config, datetime.now(timezone.utc)
    tx.verify_wallet_request(cfg, "POST", path, headers, body, now)  # verifies now (within the window) ...
    with pytest.raises(BadSignature):  # ... and not six minutes on: stale
        tx.verify_wallet_request(cfg, "POST", path, headers, body, now + timedelta(minutes=6))


def test_a_result_with_another_cash_amount_is_refused_by_field(stack):  # noqa: F811
    s = stack
    up, _, mix = _held_and_ordered(s)
    order = _request(s, up, mix)

    def result(cash: int):  # noqa: ANN202
        return s.pw.db.run(lambda c: medins.record_result(c, s.clock.now, pi_id=s.pw.pi_id, pay_order_id=up["payOrdId"], mix_trade_no=mix,
                                                          self_pay_status="SELF_PAY_SUCCESS", cash_fen=cash, actor="wallet:test"))
    for wrong in (order.cash_pay + 1, order.cash_pay - 1, 0):
        with pytest.raises(InputError) as refused:
            result(wrong)
        assert (refused.value.field, refused.value.code) == ("med_ins_cash_fee", "amount_mismatch")
        assert s.order(up["payOrdId"]).status == po.CASH_REQUESTED  # nothing posted
    assert result(order.cash_pay).status == po.COMPLETED


def test_the_hospital_s_callback_hears_a_wallet_order_end(stack):  # noqa: F811
    s = stack
    endpoint = HospitalEndpoint().start()
    try:
        r = s.client.put("/api/v1/his/callback", json={"url": endpoint.url}, headers={**his(s.pw), **key()})
        assert r.status_code == 200, r.text
        up, _, _ = _to_completion(s)
        got = wait_until(lambda: [json.loads(x.body) for x in endpoint.received] or None, what="the hospital's callback")
        assert [(g["event"], g["payment"]["payment_id"], g["payment"]["method"]) for g in got] == [
            ("payment.completed", up["payOrdId"], "medins")]
    finally:
        endpoint.stop()
