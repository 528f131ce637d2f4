"""A medical-insurance payment started in Alipay (医保移动支付, `alipay.commerce.medical.trade.*`), SQLite and PostgreSQL,
every party over HTTP, beside the WeChat one (test_med_ins_wallet.py, whose world it shares): the holder authorises in
yibao's app → the SANDBOX alipay exchanges the authCode with yibao for a pay_auth_no (a form signed as Alipay's
notifications) → the HIS's 6201/6202 carry it → the hospital, merchant of record with its own app, calls
`createandpay` with Alipay's official SDK and the sandbox checks the fee parts with yibao → the holder pays → the self-pay
part and the insurance settlement complete together or both are undone; recovery settles a lost word by
`alipay.commerce.medical.trade.query`; refunds split (6203 HI in yibao, the self-pay part by `trade.refund`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayCommerceMedicalTradeCreateandpayModel import AlipayCommerceMedicalTradeCreateandpayModel
from alipay.aop.api.domain.AlipayCommerceMedicalTradeQueryModel import AlipayCommerceMedicalTradeQueryModel
from alipay.aop.api.request.AlipayCommerceMedicalTradeCreateandpayRequest import AlipayCommerceMedicalTradeCreateandpayRequest
from alipay.aop.api.request.AlipayCommerceMedicalTradeQueryRequest import AlipayCommerceMedicalTradeQueryRequest
from fastapi.testclient import TestClient

from tests.adapters.channels.test_alipay_sdk import execute, pem_private, sdk_host  # noqa: F401 — the fixture
from tests.fsi.test_med_ins_wallet import Stack, fen
from tests.support import fsi
from tests.support.payments import PlatformServer, payment_world
from yibao.app import create_app
from yibao.channels.alipay import transformers as tx
from yibao.channels.crypto import canonical_kv, generate_rsa_key, public_pem, rsa_sign
from yibao.channels.wire import fen_to_yuan, plain_time
from yibao.domain import payment_order as po
from yibao.services.payments import medins, recovery


class HospitalApp:
    """The hospital's own Alipay app (its app_id and key, registered with the sandbox): signs gateway calls and verifies
    every answer with the sandbox's key. The official SDK is its client for createandpay and query."""

    def __init__(self, live: Any) -> None:
        self.live = live
        self.key = generate_rsa_key()
        self.app_id = "20210001" + uuid.uuid4().hex[:8].upper()
        self.cfg = tx.AlipayConfig(live.url, self.app_id, self.key, live.channel.config.alipay_key)
        r = httpx.put(f"{live.url}/sandbox/med-ins/apps", json={"app_id": self.app_id, "public_key_pem": public_pem(self.key).decode()})
        assert r.status_code == 200, r.text

    def sdk(self) -> DefaultAlipayClient:
        cfg = AlipayClientConfig()
        cfg.server_url, cfg.app_id = f"{self.live.url}/gateway.do", self.app_id
        cfg.app_private_key, cfg.alipay_public_key = pem_private(self.key), self.live.runtime.public_key_pem.decode()
        return DefaultAlipayClient(cfg)

    def call(self, method: str, biz: dict[str, Any]) -> dict[str, Any]:
        params = tx.request_params(self.cfg, method, biz, datetime.now(timezone.utc))
        query, body = tx.split_request(params)
        r = httpx.post(f"{self.live.url}/gateway.do?{query}", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"},
                       timeout=30)
        return tx.open_answer(self.cfg, method, r.content)  # every answer is Alipay's, signed

    def signed_form(self, fields: dict[str, str]) -> bytes:
        params = {"app_id": self.app_id, "charset": "utf-8", "sign_type": "RSA2", "timestamp": plain_time(datetime.now(timezone.utc)),
                  **fields}
        params["sign"] = rsa_sign(self.key, canonical_kv(params, exclude=("sign",)).encode())
        return urlencode(params).encode()


class AlipayStack(Stack):
    def pay_auth_no(self, med_inst_no: str | None = None) -> str:
        r = httpx.post(f"{self.alipay.url}/sandbox-holder/med-ins/authorise", timeout=30,
                       content=self.app.signed_form({"auth_code": self.auth_code(), "org_no": med_inst_no or self.pw.w.hospital.id}),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        out = tx.open_answer(self.app.cfg, "sandbox.med.ins.authorise", r.content)
        assert out["code"] == "10000", out
        return out["pay_auth_no"]

    def model(self, pre: dict[str, Any], pay_auth_no: str, **override: Any) -> AlipayCommerceMedicalTradeCreateandpayModel:
        order = self.order(pre["payOrdId"])
        parts = self.pw.db.run(lambda c: medins.parts(c, order), write=False)
        m = AlipayCommerceMedicalTradeCreateandpayModel()
        fields = {"out_trade_no": "HOSP" + uuid.uuid4().hex[:20], "order_type": "INSURANCE_PAY", "subject": "门诊缴费",
                  "total_amount": fen_to_yuan(fen(pre["feeSumamt"])), "gov_amount": fen_to_yuan(parts.gov),
                  "account_amount": fen_to_yuan(parts.self_), "other_amount": fen_to_yuan(parts.other),
                  "real_amount": fen_to_yuan(parts.cash), "pay_order_id": pre["payOrdId"], "pay_auth_no": pay_auth_no,
                  "med_org_ord": "HIS-M-0001", "chrg_bch_no": "CHRG-0001", "org_no": self.pw.w.hospital.id,
                  "alipay_user_id": "2088102177846875", "result_notify_url": "http://127.0.0.1:9/alipay/med-ins", **override}
        for k, v in fields.items():
            setattr(m, k, v)
        return m

    def createandpay(self, pre: dict[str, Any], pay_auth_no: str, **override: Any) -> dict[str, Any]:
        return execute(self.app.sdk(), AlipayCommerceMedicalTradeCreateandpayRequest(), self.model(pre, pay_auth_no, **override))

    def holder_pays(self, trade_no: str, simulate: str = "SUCCESS") -> dict[str, Any]:
        r = httpx.post(f"{self.alipay.url}/sandbox-holder/med-ins/trades/{trade_no}/pay", json={"simulate": simulate}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def trade(self, trade_no: str) -> dict[str, Any]:
        q = AlipayCommerceMedicalTradeQueryModel()
        q.trade_no = trade_no
        return execute(self.app.sdk(), AlipayCommerceMedicalTradeQueryRequest(), q)


@pytest.fixture
def astack(db, keyring, alipay, sms_gateway, clock, sdk_host):  # noqa: F811
    pw = payment_world(db, keyring, alipay, limit=0, balance=20000, signed=False)
    fsi.issue(db, keyring, pw.w.hospital.id)
    server = PlatformServer(lambda url: create_app(db, keyring=keyring, allow_private_callbacks=True))  # what Alipay calls, over HTTP
    r = httpx.put(f"{alipay.url}/sandbox/med-ins/platform", json={"url": f"{server.url}/api/v1/channels/{pw.pi_id}/med-ins"})
    assert r.status_code == 200
    with TestClient(create_app(db, keyring=keyring, sms_gateway=sms_gateway, demo=True, allow_private_callbacks=True),
                    raise_server_exceptions=False) as client:
        his = fsi.his(client, pw.w.hospital, clock)
        his.sign_in()
        s = AlipayStack(pw, client, his, None, None, clock)
        s.alipay, s.app, s.platform_url = alipay, HospitalApp(alipay), server.url
        yield s
    server.stop()


def _held(s: AlipayStack) -> tuple[dict[str, Any], dict[str, Any], str]:
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    return up, s.presettle(up, pay_auth_no), pay_auth_no


def test_an_alipay_order_completes_both_parts_to_the_fen(astack):
    s = astack
    before = s.pw.balances()
    up, pre, pay_auth_no = _held(s)
    assert (pre["ordStas"], fen(pre["psnAcctPay"]) > 0) == ("2", True)
    made = s.createandpay(pre, pay_auth_no)  # the official SDK, signed by the hospital's app; the answer verified by it
    assert (made["code"], made["pay_order_id"], made["order_type"]) == ("10000", up["payOrdId"], "INSURANCE_PAY"), made
    assert made["alipay_trade_no"] and made["pay_url"].endswith(f"/sandbox-holder/med-ins/trades/{made['trade_no']}")
    waiting = s.trade(made["trade_no"])
    assert (waiting["trade_status"], waiting["medical_pay_status"], waiting["own_pay_status"]) == ("WAIT_BUYER_PAY", "WAIT_PAY", "WAIT_PAY")
    paid = s.holder_pays(made["trade_no"])
    assert (paid["trade_status"], paid["medical_pay_status"], paid["own_pay_status"]) == ("TRADE_SUCCESS", "PAY_SUCCESS", "PAY_SUCCESS"), paid

    assert (s.query(up)["ordStas"], s.query(up)["mixTradeNo"]) == ("6", made["trade_no"])
    order = s.order(up["payOrdId"])
    assert (order.status, order.method, order.cash_source, order.trade_no) == (po.COMPLETED, "medins", "wallet", made["trade_no"])
    truth = s.trade(made["trade_no"])  # the SDK's query: the parts as held, in yuan
    assert (truth["gov_amount"], truth["account_amount"], truth["real_amount"], truth["total_amount"]) == (
        fen_to_yuan(order.fund_total), fen_to_yuan(order.account_pay), fen_to_yuan(order.cash_pay), "375.00")
    assert truth["gmt_medical_paid"] and truth["gmt_own_paid"]
    after = s.pw.balances()
    assert after["holder"] == before["holder"] - order.account_pay and after["pending"] == before["pending"]
    assert after["receivable"] - before["receivable"] == order.fund_total + order.account_pay
    assert after["hospital_cash"] == before["hospital_cash"]  # the cash went to the hospital's own Alipay account
    # the platform's connector reads the same trade as a mixed order (recovery's view)
    found = asyncio.run(s.alipay.channel.query_med_ins_order(made["trade_no"]))
    assert (found.pay_order_id, found.mix_pay_status, found.self_pay_status, found.med_ins_pay_status, found.cash_fen) == (
        up["payOrdId"], "MIX_PAY_SUCCESS", "SELF_PAY_SUCCESS", "MED_INS_PAY_SUCCESS", order.cash_pay)


def test_a_failed_self_pay_part_undoes_the_insurance_part_and_an_unpaid_trade_cancels(astack):
    s = astack
    before = s.pw.balances()
    up, pre, pay_auth_no = _held(s)
    made = s.createandpay(pre, pay_auth_no)
    paid = s.holder_pays(made["trade_no"], "OWN_PAY_FAIL")
    assert (paid["trade_status"], paid["own_pay_status"], paid["medical_pay_status"]) == ("TRADE_CLOSED", "PAY_FAIL", "PAY_FAIL"), paid
    order = s.order(up["payOrdId"])
    assert (order.status, order.void_reason) == (po.VOIDED, po.CASH_FAILED)
    assert s.query(up)["ordStas"] == "15" and s.pw.balances() == before  # the hold voided: every fen where it was

    # a trade the holder has not paid is cancelled by the hospital; the hold is its 6401's to release
    up2, pre2, pay_auth_no2 = _held(s)
    made2 = s.createandpay(pre2, pay_auth_no2, med_org_ord="HIS-M-0002")
    cancelled = s.app.call("alipay.commerce.medical.trade.cancel", {"trade_no": made2["trade_no"]})
    assert (cancelled["trade_cancel_result"], cancelled["medical_pay_cancel_result"]) == ("SUCCESS", "SUCCESS"), cancelled
    late = s.holder_pays(made2["trade_no"])  # nothing collected on a closed trade
    assert (late["trade_status"], late["own_pay_status"]) == ("TRADE_CLOSED", "PAY_FAIL"), late
    assert s.order(up2["payOrdId"]).status == po.HELD
    assert s.his.ok("6401", {"data": {"payOrdId": up2["payOrdId"], "payToken": up2["payToken"]}})["ordStas"] == "12"
    assert s.pw.balances() == before


def test_a_lost_result_is_recovered_by_alipay_s_query(astack):
    s = astack
    before = s.pw.balances()
    up, pre, pay_auth_no = _held(s)
    made = s.createandpay(pre, pay_auth_no)
    paid = s.holder_pays(made["trade_no"], "LOSE_RESULT")  # collected; Alipay's word to the platform lost
    assert (paid["own_pay_status"], paid["medical_pay_status"]) == ("PAY_SUCCESS", "WAIT_PAY"), paid
    assert s.order(up["payOrdId"]).status == po.CASH_REQUESTED  # recorded before Alipay collected
    s.clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(s.pw.ctx()))  # alipay.commerce.medical.trade.query, by yibao's app
    assert report.orders.get(up["payOrdId"]) == po.COMPLETED, report
    order = s.order(up["payOrdId"])
    assert s.pw.balances()["holder"] == before["holder"] - order.account_pay and s.pw.balances()["pending"] == before["pending"]

    # the hospital revokes a held order (6401) before the holder pays: the platform refuses the request, nothing collected
    up2, pre2, pay_auth_no2 = _held(s)
    made2 = s.createandpay(pre2, pay_auth_no2, med_org_ord="HIS-M-0003")
    assert s.his.ok("6401", {"data": {"payOrdId": up2["payOrdId"], "payToken": up2["payToken"]}})["ordStas"] == "12"
    late = s.holder_pays(made2["trade_no"])
    assert (late["trade_status"], late["own_pay_status"], late["medical_pay_status"]) == ("TRADE_CLOSED", "PAY_FAIL", "PAY_FAIL"), late
    assert s.order(up2["payOrdId"]).status == po.VOIDED and s.pw.balances()["pending"] == before["pending"]


def test_refunds_split_the_insurance_part_in_yibao_and_the_self_pay_part_at_alipay(astack):
    s = astack
    before = s.pw.balances()
    up, pre, pay_auth_no = _held(s)
    made = s.createandpay(pre, pay_auth_no)
    assert s.holder_pays(made["trade_no"])["trade_status"] == "TRADE_SUCCESS"
    order = s.order(up["payOrdId"])
    token = {"payOrdId": up["payOrdId"], "payToken": up["payToken"]}
    hi = s.his.ok("6203", {"data": {**token, "appRefdSn": "RF-HI-1", "refdType": "HI", "totlRefdAmt": pre["fundPay"] + pre["psnAcctPay"],
                                    "fundRefdAmt": pre["fundPay"], "psnAcctRefdAmt": pre["psnAcctPay"], "cashRefdAmt": 0}})
    assert (hi["refStatus"], hi["ordStas"]) == ("SUCC", "8"), hi
    cash = {"data": {**token, "appRefdSn": "RF-CASH-1", "refdType": "CASH", "totlRefdAmt": pre["ownPayAmt"], "fundRefdAmt": 0,
                     "psnAcctRefdAmt": 0, "cashRefdAmt": pre["ownPayAmt"]}}
    assert s.his.ok("6203", cash)["refStatus"] == "EXP"  # not refunded at Alipay yet: nothing recorded as given back
    too_much = s.app.call("alipay.commerce.medical.trade.refund", {"trade_no": made["trade_no"], "refund_request_no": "RF-CASH-1",
                                                                    "refund_amount": fen_to_yuan(order.cash_pay + 1)})
    assert too_much["code"] == "40004", too_much
    refund = {"trade_no": made["trade_no"], "refund_request_no": "RF-CASH-1", "refund_amount": fen_to_yuan(order.cash_pay), "refund_reason": "退费"}
    done = s.app.call("alipay.commerce.medical.trade.refund", refund)
    assert (done["refund_status"], done["refund_amount"]) == ("REFUND_SUCCESS", fen_to_yuan(order.cash_pay)), done
    assert s.app.call("alipay.commerce.medical.trade.refund", refund)["refund_time"] == done["refund_time"]  # the same request: once
    asked = s.app.call("alipay.commerce.medical.trade.refund.query", {"trade_no": made["trade_no"], "refund_request_no": "RF-CASH-1"})
    assert asked["refund_status"] == "REFUND_SUCCESS"
    assert "refund_status" not in s.app.call("alipay.commerce.medical.trade.refund.query",
                                             {"trade_no": made["trade_no"], "refund_request_no": "RF-NONE"})
    out = s.his.ok("6203", cash)  # asked again: Alipay's trade shows the self-pay part refunded
    assert (out["refStatus"], out["ordStas"], out["cashRefdAmt"]) == ("SUCC", "7", pre["ownPayAmt"]), out
    assert s.order(up["payOrdId"]).status == po.REFUNDED
    after = s.pw.balances()
    assert (after["holder"], after["pending"], after["receivable"]) == (before["holder"], before["pending"], before["receivable"])
    truth = s.trade(made["trade_no"])
    assert (truth["own_pay_status"], truth["refund_amount"]) == ("REFUND_SUCCESS", fen_to_yuan(order.cash_pay))


def _wallet_form(s: AlipayStack, action: str, fields: dict[str, str], *, key: Any = None) -> bytes:
    """A request as the sandbox Alipay signs it (its key, unless ``key``)."""
    params = {"app_id": s.alipay.channel.config.app_id, "notify_id": uuid.uuid4().hex, "notify_time": plain_time(datetime.now(timezone.utc)),
              "notify_type": tx.wallet_notify_type(action), "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", **fields}
    params["sign"] = rsa_sign(key or s.alipay.runtime.med_ins.key, canonical_kv(params, exclude=("sign", "sign_type")).encode())
    return urlencode(params).encode()


def test_wrong_amounts_forged_and_replayed_requests_are_refused_naming_the_field(astack):
    s = astack
    up, pre, pay_auth_no = _held(s)
    order = s.order(up["payOrdId"])
    # the parts still add up, but one moved a fen: the platform refuses, naming Alipay's field
    wrong = s.createandpay(pre, pay_auth_no, account_amount=fen_to_yuan(order.account_pay - 1), real_amount=fen_to_yuan(order.cash_pay + 1))
    assert (wrong["code"], wrong["sub_code"]) == ("40004", "ACQ.MEDICAL_AMOUNT_NOT_MATCH"), wrong
    assert "account_amount" in wrong["sub_msg"] and "amount_mismatch" in wrong["sub_msg"], wrong
    broken = s.createandpay(pre, pay_auth_no, total_amount="375.01")  # Alipay's own check: the parts must add up
    assert broken["sub_code"] == "ACQ.TOTAL_AMOUNT_ERROR" and "total_amount" in broken["sub_msg"], broken
    other = s.createandpay(pre, "AUTH" + uuid.uuid4().hex.upper())
    assert "pay_auth_no" in other["sub_msg"] and "pay_auth_mismatch" in other["sub_msg"], other

    # what reaches the platform: signed by Alipay's key, notify_type naming the call, each notify_id once
    sandbox_key = s.alipay.runtime.med_ins.key  # the sandbox's own key: it signs as Alipay
    url = f"{s.platform_url}/api/v1/channels/{s.pw.pi_id}/med-ins"
    check = {"pay_order_id": up["payOrdId"], "pay_auth_no": pay_auth_no, "trade_no": "YKTEST0001", "org_no": s.pw.w.hospital.id,
             "gov_amount": fen_to_yuan(order.fund_total), "account_amount": fen_to_yuan(order.account_pay), "other_amount": "0.00",
             "real_amount": "abc"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bad = httpx.post(f"{url}/check", content=_wallet_form(s, "check", check, key=sandbox_key), headers=form, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "real_amount", bad.text  # not an amount: named as sent
    forged = httpx.post(f"{url}/check", content=_wallet_form(s, "check", check, key=generate_rsa_key()), headers=form, timeout=30)
    assert forged.status_code == 403 and forged.json()["error"]["field"] == "sign", forged.text
    body = _wallet_form(s, "check", {**check, "real_amount": fen_to_yuan(order.cash_pay)}, key=sandbox_key)
    elsewhere = httpx.post(f"{url}/request", content=body, headers=form, timeout=30)  # signed for check, sent to request
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "bad_signature", elsewhere.text
    assert httpx.post(f"{url}/check", content=body, headers=form, timeout=30).status_code == 200
    again = httpx.post(f"{url}/check", content=body, headers=form, timeout=30)  # the same signed request, replayed
    assert again.status_code == 409 and again.json()["error"]["field"] == "notify_id", again.text
    assert s.order(up["payOrdId"]).status == po.HELD  # nothing moved
    # the right trade pays: the held order took trade YKTEST0001 above, so another trade for it is refused, naming trade_no
    taken = s.createandpay(pre, pay_auth_no)
    assert "trade_no" in taken["sub_msg"], taken

