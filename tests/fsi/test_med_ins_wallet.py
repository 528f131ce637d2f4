"""A medical-insurance payment started in a wallet (WeChat Pay 医保支付), SQLite and PostgreSQL, every party over HTTP:
the holder authorises in yibao's app (authCode) → the SANDBOX wxpay exchanges it with yibao for a pay_auth_no (signed)
→ the HIS's 6201/6202 carry it (the pre-settlement held) → the hospital, merchant of record, orders
`POST /v3/med-ins/orders` (signed as API v3) and the sandbox checks the fee parts with yibao → the holder pays in WeChat
→ the self-pay part collected and the insurance settlement posted together, or both undone; recovery settles a lost
word by the wallet's query; refunds split (6203 HI in yibao, the cash by the hospital at the wallet, refunds/notify)."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import fsi
from tests.support.api import key, login
from tests.support.channels import serve_in_thread
from tests.support.payments import PlatformServer, payment_world, wait_until
from yibao.app import create_app
from yibao.channels.crypto import aes_gcm_decrypt, generate_rsa_key, key_serial, public_pem
from yibao.channels.wxpay import transformers as tx
from yibao.domain import payment_order as po
from yibao.services.payments import orders as payments
from yibao.services.payments import recovery
from yibao.store.tables import med_ins_auths

PIN = "246810"
FEEDETAIL_LIST = [  # 375.00 in all (tests.support.payments.LINES, camelCase)
    {"feedetlSn": "1", "medinsListCodg": "A001", "medinsListName": "诊查费", "pric": Decimal("300.00"), "cnt": 1},
    {"feedetlSn": "2", "medinsListCodg": "XB01", "medinsListName": "头孢克肟胶囊", "pric": Decimal("12.50"), "cnt": 2, "rxno": "RX1",
     "bilgDrCodg": "D0042"},
    {"feedetlSn": "3", "medinsListCodg": "C900", "medinsListName": "保健品", "pric": Decimal("50.00"), "cnt": 1},
]


def fen(yuan: Any) -> int:
    return int(Decimal(str(yuan)) * 100)


class HospitalMerchant:
    """The hospital's WeChat Pay merchant account (its own key, registered with the sandbox): signs API v3 requests
    and verifies every answer with the platform key."""

    def __init__(self, live: Any) -> None:
        self.live = live
        self.key = generate_rsa_key()
        self.mchid = "1900" + str(secrets.randbelow(10**6)).rjust(6, "0")
        platform = live.channel.config
        self.cfg = tx.WxPayConfig(live.url, self.mchid, platform.appid, key_serial(self.key), self.key, platform.platform_serial,
                                  platform.platform_key, platform.api_v3_key)
        r = httpx.put(f"{live.url}/sandbox/med-ins/merchants", json={"mchid": self.mchid, "serial_no": self.cfg.merchant_serial,
                                                                     "public_key_pem": public_pem(self.key).decode()})
        assert r.status_code == 200, r.text

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None, *, signed: bool = True) -> tuple[int, dict[str, Any]]:
        body = tx.dumps(payload) if payload is not None else b""
        ts, nonce = str(int(self._now())), secrets.token_hex(16)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if signed:
            headers["Authorization"] = tx.authorization(self.cfg, method, path, body, ts, nonce)
        r = httpx.request(method, f"{self.live.url}{path}", content=body, headers=headers, timeout=30)
        tx.verify_signed(self.cfg, r.headers, r.content, self._dt(), f"answer to {path}")  # every answer is WeChat's, signed
        return r.status_code, (r.json() if r.content else {})

    @staticmethod
    def _now() -> float:
        import time

        return time.time()

    @staticmethod
    def _dt() -> Any:
        from datetime import datetime, timezone

        return datetime.now(timezone.utc)


@pytest.fixture
def hospital_callbacks():
    """The hospital's callback_url for WeChat's MEDICAL_INSURANCE.SUCCESS: what arrived (headers, body)."""
    got: list[tuple[dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/wxpay/med-ins")
    async def receive(request: Request) -> Response:
        got.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    url, server, thread, sock = serve_in_thread(app, "hospital-wxpay-callbacks")
    yield url, got
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def stack(db, keyring, wxpay, sms_gateway, clock):
    pw = payment_world(db, keyring, wxpay, limit=0, balance=20000)
    fsi.issue(db, keyring, pw.w.hospital.id)
    server = PlatformServer(lambda url: create_app(db, keyring=keyring, allow_private_callbacks=True))  # what the wallet calls, over HTTP
    r = httpx.put(f"{wxpay.url}/sandbox/med-ins/platform", json={"url": f"{server.url}/api/v1/channels/{pw.pi_id}/med-ins"})
    assert r.status_code == 200
    with TestClient(create_app(db, keyring=keyring, sms_gateway=sms_gateway, demo=True, allow_private_callbacks=True),
                    raise_server_exceptions=False) as client:  # private: the hospital's callback endpoint of a test is on loopback
        his = fsi.his(client, pw.w.hospital, clock)
        his.sign_in()
        st = Stack(pw, client, his, HospitalMerchant(wxpay), wxpay, clock)
        st.platform_url = server.url  # where the sandbox wallet reaches yibao (a test may put a recorder in between)
        yield st
    server.stop()


class Stack:
    def __init__(self, pw, client, his, merchant, wxpay, clock) -> None:  # noqa: ANN001
        self.pw, self.client, self.his, self.merchant, self.wxpay, self.clock = pw, client, his, merchant, wxpay, clock
        self.me: dict[str, str] | None = None

    def auth_code(self) -> str:
        if self.me is None:
            self.me = login(self.client, self.pw.w.phones["employee"])
            r = self.client.post("/api/v1/patient/payment-pin", json={"pin": PIN}, headers={**self.me, **key()})
            assert r.status_code == 200, r.text
        r = self.client.post("/api/v1/patient/med-ins/authorisations", json={"payment_institution_id": self.pw.pi_id, "pin": PIN},
                             headers={**self.me, **key()})
        assert r.status_code == 201, r.text
        return r.json()["auth_code"]

    def pay_auth_no(self, med_inst_no: str | None = None) -> str:
        status, out = self.merchant.call("POST", "/sandbox-holder/med-ins/authorise",
                                         {"appid": self.merchant.cfg.appid, "openid": "o-holder-0001", "auth_code": self.auth_code(),
                                          "med_inst_no": med_inst_no or self.pw.w.hospital.id})
        assert status == 200, out
        return out["pay_auth_no"]

    def upload(self, pay_auth_no: str, *, med_org_ord: str = "HIS-M-0001", account: str = "1") -> dict[str, Any]:
        return self.his.ok("6201", {"data": {"orgCodg": self.pw.w.hospital.id, "psnNo": self.pw.w.employee.id, "insutype": "310",
                                             "medType": "11", "medOrgOrd": med_org_ord, "medfeeSumamt": Decimal("375.00"),
                                             "acctUsedFlag": account, "payAuthNo": pay_auth_no, "feedetailList": FEEDETAIL_LIST}})

    def presettle(self, up: dict[str, Any], pay_auth_no: str, account: str = "1") -> dict[str, Any]:
        return self.his.ok("6202", {"data": {"payOrdId": up["payOrdId"], "payToken": up["payToken"], "payAuthNo": pay_auth_no,
                                             "acctUsedFlag": account, "orgCodg": self.pw.w.hospital.id}})

    def mixed_order(self, pre: dict[str, Any], pay_auth_no: str, **override: Any) -> tuple[int, dict[str, Any]]:
        order = self.pw.db.run(lambda c: payments.require(c, pre["payOrdId"]), write=False)
        from yibao.services.payments import medins

        parts = self.pw.db.run(lambda c: medins.parts(c, order), write=False)
        kind = "CASH_AND_INSURANCE" if parts.insurance and parts.cash else "INSURANCE_ONLY" if parts.insurance else "CASH_ONLY"
        body = {"mix_pay_type": kind, "order_type": "DIAG_PAY", "appid": self.merchant.cfg.appid, "openid": "o-holder-0001",
                "out_trade_no": "HOSP" + uuid.uuid4().hex[:20], "serial_no": "HIS-M-0001", "pay_order_id": pre["payOrdId"],
                "pay_auth_no": pay_auth_no, "geo_location": "114.057868,22.543099", "city_id": "440300",
                "med_inst_name": "SANDBOX hospital", "med_inst_no": self.pw.w.hospital.id, "med_ins_order_create_time": "2026-11-22T17:00:00+08:00",
                "total_fee": fen(pre["feeSumamt"]), "med_ins_gov_fee": parts.gov, "med_ins_self_fee": parts.self_,
                "med_ins_other_fee": parts.other, "med_ins_cash_fee": parts.cash, "wechat_pay_cash_fee": parts.cash,
                "callback_url": "http://127.0.0.1:9/wxpay/med-ins", **override}
        return self.merchant.call("POST", "/v3/med-ins/orders", body)

    def holder_pays(self, mix_trade_no: str, simulate: str = "SUCCESS") -> dict[str, Any]:
        r = httpx.post(f"{self.wxpay.url}/sandbox-holder/med-ins/orders/{mix_trade_no}/pay", json={"simulate": simulate}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def query(self, up: dict[str, Any]) -> dict[str, Any]:
        return self.his.ok("6301", {"data": {"payOrdId": up["payOrdId"], "payToken": up["payToken"]}})

    def order(self, order_id: str) -> Any:
        return self.pw.db.run(lambda c: payments.require(c, order_id), write=False)


def _to_completion(s: Stack) -> tuple[dict[str, Any], dict[str, Any], str]:
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    pre = s.presettle(up, pay_auth_no)
    status, mix = s.mixed_order(pre, pay_auth_no)
    assert status == 200, mix
    paid = s.holder_pays(mix["mix_trade_no"])
    assert paid["mix_pay_status"] == "MIX_PAY_SUCCESS", paid
    return up, pre, mix["mix_trade_no"]


def test_a_wallet_started_payment_completes_both_parts_to_the_fen(stack, hospital_callbacks):
    s = stack
    callback_base, callbacks = hospital_callbacks
    before = s.pw.balances()
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    assert up["ordStas"] == "1" and up["payOrdId"] and len(up["payToken"]) == 64
    assert up["feeSumamt"] == up["fundPay"] + up["psnAcctPay"] + up["ownPayAmt"] == Decimal("375.00")
    assert up["psnAcctPay"] > 0  # authorised by the holder: priced with the account
    pre = s.presettle(up, pay_auth_no)
    assert (pre["ordStas"], pre["payOrdId"]) == ("2", up["payOrdId"])
    assert (pre["fundPay"], pre["psnAcctPay"], pre["ownPayAmt"]) == (up["fundPay"], up["psnAcctPay"], up["ownPayAmt"])
    held = s.pw.balances()
    assert held["holder_available"] == before["holder_available"] - fen(pre["psnAcctPay"]) and held["pending"] > before["pending"]
    assert held["holder"] == before["holder"]  # held, not posted
    # the same 6202 again answers the order as it stands (its pay_auth_no used for this order)
    assert s.presettle(up, pay_auth_no)["ordStas"] == "2"

    status, mix = s.mixed_order(pre, pay_auth_no, callback_url=f"{callback_base}/wxpay/med-ins")
    assert status == 200 and (mix["mix_pay_status"], mix["self_pay_status"], mix["med_ins_pay_status"]) == (
        "MIX_PAY_CREATED", "SELF_PAY_CREATED", "MED_INS_PAY_CREATED"), mix
    paid = s.holder_pays(mix["mix_trade_no"])
    assert (paid["mix_pay_status"], paid["self_pay_status"], paid["med_ins_pay_status"]) == (
        "MIX_PAY_SUCCESS", "SELF_PAY_SUCCESS", "MED_INS_PAY_SUCCESS"), paid
    assert paid["wechat_pay_cash_fee"] == fen(pre["ownPayAmt"]) and paid["total_fee"] == 37500

    out = s.query(up)
    assert (out["ordStas"], out["setlType"], out["mixTradeNo"]) == ("6", "ALL", mix["mix_trade_no"])
    order = s.order(up["payOrdId"])
    assert (order.status, order.method, order.cash_source, order.trade_no) == (po.COMPLETED, "medins", "wallet", mix["mix_trade_no"])
    assert order.total == order.fund_total + order.account_pay + order.cash_pay == 37500
    after = s.pw.balances()
    assert after["holder"] == before["holder"] - order.account_pay  # the account debited exactly once, to the fen
    assert after["pending"] == before["pending"]  # nothing left held
    assert after["receivable"] - before["receivable"] == order.fund_total + order.account_pay  # the hospital is owed the insurance part
    assert after["hospital_cash"] == before["hospital_cash"]  # the cash went to the hospital's own merchant account, not through yibao
    status, truth = s.merchant.call("GET", f"/v3/med-ins/orders/mix-trade-no/{mix['mix_trade_no']}")
    assert status == 200 and truth["pay_order_id"] == up["payOrdId"] and truth["mix_pay_status"] == "MIX_PAY_SUCCESS"
    # WeChat tells the hospital: MEDICAL_INSURANCE.SUCCESS, signed by the platform key, the resource AEAD under the API v3 key
    headers, body = wait_until(lambda: callbacks[0] if callbacks else None, what="the MEDICAL_INSURANCE.SUCCESS callback")
    tx.verify_signed(s.merchant.cfg, headers, body, HospitalMerchant._dt(), "callback")
    envelope = json.loads(body)
    assert envelope["event_type"] == "MEDICAL_INSURANCE.SUCCESS"
    res = envelope["resource"]
    plain = json.loads(aes_gcm_decrypt(s.merchant.cfg.api_v3_key, res["nonce"].encode(), res["associated_data"].encode(), res["ciphertext"]))
    assert (plain["mix_trade_no"], plain["mix_pay_status"], plain["pay_order_id"]) == (mix["mix_trade_no"], "MIX_PAY_SUCCESS", up["payOrdId"])


def test_a_failed_self_pay_part_undoes_the_insurance_settlement(stack):
    s = stack
    before = s.pw.balances()
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    pre = s.presettle(up, pay_auth_no)
    _, mix = s.mixed_order(pre, pay_auth_no)
    paid = s.holder_pays(mix["mix_trade_no"], "SELF_PAY_FAIL")
    assert (paid["mix_pay_status"], paid["self_pay_status"], paid["med_ins_pay_status"]) == (
        "MIX_PAY_FAIL", "SELF_PAY_FAIL", "MED_INS_PAY_FAIL"), paid
    order = s.order(up["payOrdId"])
    assert (order.status, order.void_reason) == (po.VOIDED, po.CASH_FAILED)
    assert s.query(up)["ordStas"] == "15"
    assert s.pw.balances() == before  # the hold voided: every fen back where it was
    # the pay_auth_no is spent: it cannot pay another order
    again = s.his.refused("6201", {"data": {"orgCodg": s.pw.w.hospital.id, "psnNo": s.pw.w.employee.id, "medOrgOrd": "HIS-M-0002",
                                            "acctUsedFlag": "1", "payAuthNo": pay_auth_no, "feedetailList": FEEDETAIL_LIST}},
                          "input.data.payAuthNo", "pay_auth_other_order")
    assert again


def test_a_lost_word_from_the_wallet_is_settled_by_recovery_asking_it(stack):
    s = stack
    before = s.pw.balances()
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    pre = s.presettle(up, pay_auth_no)
    _, mix = s.mixed_order(pre, pay_auth_no)
    paid = s.holder_pays(mix["mix_trade_no"], "LOSE_RESULT")  # collected, but the wallet's word to the platform was lost
    assert paid["self_pay_status"] == "SELF_PAY_SUCCESS" and paid["mix_pay_status"] == "MIX_PAY_CREATED"
    assert s.order(up["payOrdId"]).status == po.CASH_REQUESTED  # recorded before the wallet collected
    assert s.query(up)["ordStas"] == "2"
    s.clock.advance(minutes=2)
    report = asyncio.run(recovery.recover(s.pw.ctx()))
    assert report.orders.get(up["payOrdId"]) == po.COMPLETED, report
    order = s.order(up["payOrdId"])
    assert s.pw.balances()["holder"] == before["holder"] - order.account_pay and s.pw.balances()["pending"] == before["pending"]

    # a held order the wallet never ordered is voided once the wait is over, and its hold released
    pay_auth_no = s.pay_auth_no()
    up2 = s.upload(pay_auth_no, med_org_ord="HIS-M-0003")
    s.presettle(up2, pay_auth_no)
    s.clock.advance(minutes=5)
    assert asyncio.run(recovery.recover(s.pw.ctx())).orders.get(up2["payOrdId"]) is None  # still within the wait
    s.clock.advance(minutes=11)
    assert asyncio.run(recovery.recover(s.pw.ctx())).orders.get(up2["payOrdId"]) == po.VOIDED
    assert s.pw.balances()["pending"] == before["pending"]
    status, late = s.mixed_order(s.presettle(up2, pay_auth_no), pay_auth_no)  # the wallet comes too late: refused
    assert status == 400 and "order_not_payable" in late["message"], late


def test_the_hospital_revokes_a_pre_settled_order_before_the_wallet_asks(stack):
    s = stack
    before = s.pw.balances()
    pay_auth_no = s.pay_auth_no()
    up = s.upload(pay_auth_no)
    pre = s.presettle(up, pay_auth_no)
    status, mix = s.mixed_order(pre, pay_auth_no)
    assert status == 200
    token = {"data": {"payOrdId": up["payOrdId"], "payToken": up["payToken"]}}
    assert s.his.ok("6401", token)["ordStas"] == "12"
    assert s.his.ok("6401", token)["ordStas"] == "12"  # again: the same answer
    assert s.pw.balances() == before  # the hold released
    paid = s.holder_pays(mix["mix_trade_no"])  # the holder comes too late: the platform refuses, the wallet collects nothing
    assert (paid["mix_pay_status"], paid["self_pay_status"]) == ("MIX_PAY_FAIL", "SELF_PAY_FAIL"), paid
    assert s.order(up["payOrdId"]).status == po.VOIDED and s.pw.balances() == before


def test_forged_replayed_and_expired_authorisations_and_wrong_amounts_are_refused_by_field(stack):
    s = stack
    forged = "AUTH" + secrets.token_hex(16).upper()
    s.his.refused("6201", {"data": {"psnNo": s.pw.w.employee.id, "medOrgOrd": "HIS-X", "payAuthNo": forged, "feedetailList": FEEDETAIL_LIST}},
                  "input.data.payAuthNo", "pay_auth_not_found")
    # an authCode is exchanged once
    code = s.auth_code()
    body = {"appid": s.merchant.cfg.appid, "openid": "o-holder-0001", "auth_code": code, "med_inst_no": s.pw.w.hospital.id}
    assert s.merchant.call("POST", "/sandbox-holder/med-ins/authorise", body)[0] == 200
    status, again = s.merchant.call("POST", "/sandbox-holder/med-ins/authorise", body)
    assert status == 400 and "auth_code_used" in again["message"]
    # an expired pay_auth_no
    pay_auth_no = s.pay_auth_no()
    s.clock.advance(minutes=11)
    s.his.refused("6201", {"data": {"psnNo": s.pw.w.employee.id, "medOrgOrd": "HIS-Y", "payAuthNo": pay_auth_no, "feedetailList": FEEDETAIL_LIST}},
                  "input.data.payAuthNo", "pay_auth_expired")
    # someone else's visit
    pay_auth_no = s.pay_auth_no()
    s.his.refused("6201", {"data": {"psnNo": s.pw.w.retiree.id, "medOrgOrd": "HIS-Z",
                                    "payAuthNo": pay_auth_no, "feedetailList": FEEDETAIL_LIST}}, "input.data.payAuthNo", "pay_auth_other_person")
    up = s.upload(pay_auth_no)
    pre = s.presettle(up, pay_auth_no)
    # wrong fee parts: the identity kept but one part moved a fen — refused by the platform, named by field
    status, wrong = s.mixed_order(pre, pay_auth_no, med_ins_self_fee=fen(pre["psnAcctPay"]) - 1,
                                  med_ins_cash_fee=fen(pre["ownPayAmt"]) + 1, wechat_pay_cash_fee=fen(pre["ownPayAmt"]) + 1)
    assert status == 400 and wrong["code"] == "RULE_LIMIT" and "med_ins_self_fee" in wrong["message"], wrong
    status, broken = s.mixed_order(pre, pay_auth_no, total_fee=37501)  # the identity broken: WeChat's own check
    assert status == 400 and broken["code"] == "RULE_LIMIT" and "total_fee" in broken["message"], broken
    status, other = s.mixed_order(pre, "AUTH" + secrets.token_hex(16).upper())
    assert status == 400 and "pay_auth_mismatch" in other["message"], other
    status, unsigned = s.merchant.call("POST", "/v3/med-ins/orders", {"mix_pay_type": "CASH_ONLY"}, signed=False)
    assert status == 401 and unsigned["code"] == "SIGN_ERROR"
    # the platform refuses a request that is not the wallet's: unsigned, or signed by another key
    r = s.client.post(f"/api/v1/channels/{s.pw.pi_id}/med-ins/check", content=json.dumps({"pay_order_id": up["payOrdId"]}),
                      headers={"Content-Type": "application/json", "Wechatpay-Timestamp": str(int(HospitalMerchant._now())),
                               "Wechatpay-Nonce": "n", "Wechatpay-Serial": s.pw.pi_id, "Wechatpay-Signature": "Zm9yZ2Vk"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"
    assert s.order(up["payOrdId"]).status == po.HELD  # nothing moved
    # the right order still pays
    status, mix = s.mixed_order(pre, pay_auth_no)
    assert status == 200, mix
    assert s.holder_pays(mix["mix_trade_no"])["mix_pay_status"] == "MIX_PAY_SUCCESS"
    rows = s.pw.db.run(lambda c: c.execute(med_ins_auths.select()).all(), write=False)
    assert all(len(r.code_hash) == 64 for r in rows) and not any(r.pay_auth_hash == pay_auth_no for r in rows)  # only hashes kept


def test_refunds_split_the_insurance_part_in_yibao_and_the_cash_at_the_wallet(stack):
    s = stack
    before = s.pw.balances()
    up, pre, mix = _to_completion(s)
    order = s.order(up["payOrdId"])
    token = {"payOrdId": up["payOrdId"], "payToken": up["payToken"]}
    hi = s.his.ok("6203", {"data": {**token, "appRefdSn": "RF-HI-1", "refdType": "HI", "totlRefdAmt": pre["fundPay"] + pre["psnAcctPay"],
                                    "fundRefdAmt": pre["fundPay"], "psnAcctRefdAmt": pre["psnAcctPay"], "cashRefdAmt": Decimal("0")}})
    assert (hi["refStatus"], hi["ordStas"]) == ("SUCC", "8"), hi
    assert s.pw.balances()["holder"] == before["holder"]  # the account given back
    # the hospital tells WeChat the insurance part was refunded (204), as WeChat defines it
    notify = {"med_refund_total_fee": order.fund_total + order.account_pay, "med_refund_gov_fee": order.fund_total,
              "med_refund_self_fee": order.account_pay, "med_refund_other_fee": 0, "refund_time": "2026-11-22T17:30:00+08:00",
              "out_refund_no": "RF-HI-1"}
    assert s.merchant.call("POST", f"/v3/med-ins/refunds/notify?mix_trade_no={mix}", {**notify, "med_refund_total_fee": 1})[0] == 400
    assert s.merchant.call("POST", f"/v3/med-ins/refunds/notify?mix_trade_no={mix}", notify) == (204, {})
    # 6203 CASH before the hospital refunded the cash at the wallet: not known yet (EXP), nothing recorded as given back
    cash = {"data": {**token, "appRefdSn": "RF-CASH-1", "refdType": "CASH", "totlRefdAmt": pre["ownPayAmt"], "fundRefdAmt": Decimal("0"),
                     "psnAcctRefdAmt": Decimal("0"), "cashRefdAmt": pre["ownPayAmt"]}}
    assert s.his.ok("6203", cash)["refStatus"] == "EXP"
    status, _ = s.merchant.call("GET", f"/v3/med-ins/orders/mix-trade-no/{mix}")
    truth = s.merchant.call("GET", f"/v3/med-ins/orders/mix-trade-no/{mix}")[1]
    status, refund = s.merchant.call("POST", "/v3/refund/domestic/refunds", {
        "out_trade_no": truth["out_trade_no"], "out_refund_no": "RF-CASH-1", "reason": "退费",
        "amount": {"refund": order.cash_pay, "total": order.cash_pay, "currency": "CNY"}})
    assert status == 200 and refund["status"] == "SUCCESS", refund
    done = s.his.ok("6203", cash)  # asked again: the wallet's order shows the cash refunded
    assert (done["refStatus"], done["ordStas"], done["cashRefdAmt"]) == ("SUCC", "7", pre["ownPayAmt"]), done
    assert s.order(up["payOrdId"]).status == po.REFUNDED
    after = s.pw.balances()
    assert (after["holder"], after["pending"], after["receivable"]) == (before["holder"], before["pending"], before["receivable"])
    status, truth = s.merchant.call("GET", f"/v3/med-ins/orders/mix-trade-no/{mix}")
    assert (truth["mix_pay_status"], truth["self_pay_status"], truth["med_ins_pay_status"]) == (
        "MIX_PAY_REFUND", "SELF_PAY_REFUND", "MED_INS_PAY_REFUND")


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=1, max_value=40000), st.integers(min_value=1, max_value=3), st.integers(min_value=1, max_value=9000),
       st.booleans())
def test_any_amounts_complete_exactly_to_the_fen(stack, consult_fen, count, other_fen, account):
    s = stack
    before = s.pw.balances()
    lines = [{"feedetlSn": "1", "medinsListCodg": "A001", "medinsListName": "诊查费", "pric": Decimal(consult_fen) / 100, "cnt": count},
             {"feedetlSn": "2", "medinsListCodg": "C900", "medinsListName": "保健品", "pric": Decimal(other_fen) / 100, "cnt": 1}]
    pay_auth_no = s.pay_auth_no()
    up = s.his.ok("6201", {"data": {"psnNo": s.pw.w.employee.id, "medOrgOrd": "HIS-H-" + uuid.uuid4().hex[:8], "acctUsedFlag": "1" if account else "0",
                                    "payAuthNo": pay_auth_no, "feedetailList": lines}})
    pre = s.presettle(up, pay_auth_no, "1" if account else "0")
    assert fen(pre["feeSumamt"]) == consult_fen * count + other_fen == fen(pre["fundPay"]) + fen(pre["psnAcctPay"]) + fen(pre["ownPayAmt"])
    status, mix = s.mixed_order(pre, pay_auth_no)
    assert status == 200, mix
    paid = s.holder_pays(mix["mix_trade_no"])
    assert paid["mix_pay_status"] == "MIX_PAY_SUCCESS" and paid["wechat_pay_cash_fee"] == fen(pre["ownPayAmt"]), paid
    assert paid["total_fee"] == paid["med_ins_gov_fee"] + paid["med_ins_self_fee"] + paid["med_ins_other_fee"] + paid["wechat_pay_cash_fee"]
    order = s.order(up["payOrdId"])
    assert order.status == po.COMPLETED and (order.account_pay > 0) <= account
    after = s.pw.balances()
    assert after["holder"] == before["holder"] - order.account_pay and after["pending"] == before["pending"]
    assert after["receivable"] - before["receivable"] == order.fund_total + order.account_pay
