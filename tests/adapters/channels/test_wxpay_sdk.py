"""WeChat Pay API v3 with WeChat's ecosystem SDK (`wechatpayv3`) as the other party.

1. The SDK as the merchant against the SANDBOX over real HTTP: the sandbox accepts every request the SDK
   signs (GET with query strings, POST bodies as the SDK serialises them), and the SDK verifies every answer
   (its `Wechatpay-Signature-Type`, public-key id or platform certificate) and verifies and decrypts every
   notification the sandbox sends (`callback`).
2. The connector against hand-written answers and notifications shaped like WeChat Pay's published examples,
   signed with a test key (through an httpx MockTransport): payment, query, refund, refund query, refund
   notification, contracts (query, terminate, notification), the gzip bill, platform certificates and their rotation.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import secrets
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import Response
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core
from wechatpayv3.type import RequestType

from tests.support.channels import play_holder, serve_in_thread, sign_on_page
from yibao.channels import BadSignature, Declined, NotFoundAtChannel, OutcomeUnknown, StatementError
from yibao.channels.base import AgreementRequest, PaymentRequest, RefundRequest, SigningStart
from yibao.channels.crypto import aes_gcm_encrypt, generate_rsa_key, key_serial, private_pem, public_pem, rsa_sign
from yibao.channels.wire import holder_token
from yibao.channels.wxpay import transformers as tx
from yibao.channels.wxpay.connector import WxPayChannel, WxPayConfig
from yibao.sandbox.channels import pair

HOLDER_KEY = b"k" * 32


def no() -> str:
    return secrets.token_hex(12).upper()


# ---- 1. the SDK against the sandbox ---------------------------------------------------------------

class Inbox:
    """The merchant's notify URL: records each notification as it arrived, answers 204 (or 400 while ``refuse``)."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.refuse = False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notify")
        async def notify(request: Request) -> Response:
            with self.lock:
                self.got.append((dict(request.headers), await request.body()))
            return Response(status_code=400 if self.refuse else 204)

        return app

    def take(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            got, self.got = self.got, []
        return got


@pytest.fixture(scope="module")
def world():
    inbox = Inbox()
    running, worlds = [], {}
    cb_url, *cb = serve_in_thread(inbox.app(), "wxpay-sdk-inbox")
    running.append(cb)
    for mode in ("public_key", "certificate"):
        p = pair("wxpay", callback_url=f"{cb_url}/notify", notify_delays_ms=(10, 20, 40), identification=mode)
        url, *srv = serve_in_thread(p.app, f"wxpay-sdk-{mode}")
        running.append(srv)
        worlds[mode] = (p, url, p.connector(url))
    yield inbox, worlds
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def sdk_for(p: Any, url: str, channel: WxPayChannel, *, merchant_key: Any = None) -> WeChatPay:
    """The SDK configured as the merchant: its private key, the API v3 key, and the platform's public key id
    (public-key mode) or nothing (certificate mode: it downloads /v3/certificates from the sandbox)."""
    cfg = channel.config
    kw: dict[str, Any] = {}
    if not cfg.platform_certificates:
        kw = {"public_key": public_pem(cfg.platform_key).decode(), "public_key_id": cfg.platform_serial}
    with mock.patch.object(Core, "_init_certificates", lambda self: None):  # its gateway is WeChat's until we point it here
        wx = WeChatPay(WeChatPayType.NATIVE, cfg.mchid, private_pem(merchant_key or cfg.merchant_key).decode(), cfg.merchant_serial,
                       cfg.appid, cfg.api_v3_key.decode(), notify_url=None, **kw)
    wx._core._gate_way = url
    if cfg.platform_certificates:
        wx._core._init_certificates()  # GET /v3/certificates, decrypted under the API v3 key, checked for validity
    return wx


def flush(url: str) -> None:
    httpx.post(f"{url}/sandbox/notifications/flush", timeout=10).raise_for_status()


def sdk_story(inbox: Inbox, p: Any, url: str, channel: WxPayChannel) -> None:
    wx = sdk_for(p, url, channel)
    core = wx._core
    inbox.take()
    out_contract, openid = no(), holder_token(HOLDER_KEY, "person-sdk", "wxpay")
    plan = channel.config.plan_id

    # Contract: pre-signed by the merchant (the SDK signs the call), signed by the holder on the sandbox's WeChat page,
    # told by PAPAY.SIGN (the SDK verifies and decrypts it), then the real query paths.
    code, text = core.request("/v3/papay/sign/contracts/pre-entrust-sign", method=RequestType.POST,
                              data={"sign_scene": "SIGN_SCENE_QRCODE", "appid": channel.config.appid, "plan_id": plan,
                                    "out_contract_code": out_contract, "contract_display_account": "医保支付用户",
                                    "contract_notify_url": p.runtime.notifier.callback_url, "out_user_code": openid, "device_info": {}})
    assert code == 200, text
    pre = json.loads(text)
    assert pre["pre_entrustweb_id"] and pre["redirect_url"].startswith(url)
    answer = asyncio.run(play_holder(SigningStart(out_contract, pre["redirect_url"], session_id=pre["pre_entrustweb_id"])))
    assert answer.status_code == 200 and 'data-result="signed"' in answer.text  # PAPAY.SIGN is checked with the others below
    code, text = core.request(f"/v3/papay/sign/contracts/plan-id/{plan}/out-contract-code/{out_contract}")
    assert code == 200 and json.loads(text)["contract_state"] == "SIGNED"
    contract_id = json.loads(text)["contract_id"]
    code, text = core.request(f"/v3/papay/sign/contracts/{contract_id}")
    assert code == 200 and json.loads(text)["out_contract_code"] == out_contract

    def book(amount: int) -> None:  # 预扣费通知 before each deduction (204)
        code, text = core.request(f"/v3/papay/contracts/{contract_id}/notify", method=RequestType.POST,
                                  data={"mchid": channel.config.mchid, "appid": channel.config.appid,
                                        "deduct_duration": {"count": 1, "unit": "DAY"}, "estimated_amount": {"amount": amount, "currency": "CNY"}})
        assert code == 204, text

    # Deduction: accepted (204, signed over an empty body) after its notice, the result by query and notification.
    out = no()
    book(120_00)
    code, text = core.request("/v3/papay/pay/transactions/apply", method=RequestType.POST,
                              data={"appid": channel.config.appid, "out_trade_no": out, "description": "门诊缴费",
                                    "transaction_notify_url": p.runtime.notifier.callback_url, "contract_id": contract_id,
                                    "amount": {"total": 120_00, "currency": "CNY"}})
    assert code == 204, text
    code, text = wx.query(out_trade_no=out)
    assert code == 200 and json.loads(text)["trade_state"] == "SUCCESS"
    transaction_id = json.loads(text)["transaction_id"]
    code, text = wx.query(transaction_id=transaction_id)
    assert code == 200 and json.loads(text)["out_trade_no"] == out
    unbooked = no()  # the notice was used by that deduction: another needs its own
    code, text = core.request("/v3/papay/pay/transactions/apply", method=RequestType.POST,
                              data={"appid": channel.config.appid, "out_trade_no": unbooked, "description": "门诊缴费",
                                    "contract_id": contract_id, "amount": {"total": 1_00, "currency": "CNY"}})
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"
    book(500_00)
    code, text = core.request("/v3/papay/pay/transactions/apply", method=RequestType.POST,
                              data={"appid": channel.config.appid, "out_trade_no": unbooked, "description": "门诊缴费",
                                    "contract_id": contract_id, "amount": {"total": 500_01, "currency": "CNY"}})
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"  # more than the notice said
    failed = no()  # noticed, but above the plan's limit: accepted, then PAY_FAIL
    book(50_000_01)
    code, _ = core.request("/v3/papay/pay/transactions/apply", method=RequestType.POST,
                           data={"appid": channel.config.appid, "out_trade_no": failed, "description": "超限",
                                 "contract_id": contract_id, "amount": {"total": 50_000_01, "currency": "CNY"}})
    assert code == 204
    assert json.loads(wx.query(out_trade_no=failed)[1])["trade_state"] == "PAY_FAIL"

    # Refunds: by out_trade_no and by transaction_id, and their query.
    code, text = wx.refund(no(), {"refund": 20_00, "total": 120_00, "currency": "CNY"}, out_trade_no=out, reason="退一项检查")
    assert code == 200 and json.loads(text)["status"] == "SUCCESS", text
    refund_no = no()
    code, text = wx.refund(refund_no, {"refund": 10_00, "total": 120_00, "currency": "CNY"}, transaction_id=transaction_id)
    assert code == 200, text
    code, text = wx.query_refund(refund_no)
    assert code == 200 and json.loads(text)["amount"]["refund"] == 10_00

    # Terminate by plan and contract code.
    code, text = core.request(f"/v3/papay/sign/contracts/plan-id/{plan}/out-contract-code/{out_contract}/terminate",
                              method=RequestType.POST, data={"contract_termination_remark": "参保人解绑"})
    assert code == 200 and json.loads(text)["out_contract_code"] == out_contract

    # The bill: gzip, its SHA1 over the decompressed file, parsed by our connector's parser.
    today = datetime.now(tx_china()).date()
    code, text = wx.trade_bill(today.isoformat())
    assert code == 200, text
    bill = json.loads(text)
    code, content = wx.download_bill(bill["download_url"])
    assert code == 200
    raw = gzip.decompress(content)
    assert hashlib.sha1(raw).hexdigest() == bill["hash_value"] and bill["hash_type"] == "SHA1"
    st = tx.parse_statement("wxpay", raw.decode(), today)
    mine = [r for r in st.rows if r.out_trade_no == out]
    assert sorted((r.kind, r.amount_fen) for r in mine) == [("refund", 10_00), ("refund", 20_00), ("trade", 120_00)]

    # Every notification verifies and decrypts in the SDK.
    flush(url)
    got = inbox.take()
    events = {}
    for headers, body in got:
        data = wx.callback(headers, body)
        assert data is not None, body[:200]
        assert data["resource_type"] == "encrypt-resource" and headers["wechatpay-signature-type"] == "WECHATPAY2-SHA256-RSA2048"
        events.setdefault(data["event_type"], []).append(data["resource"])
    assert {r["out_contract_code"] for r in events["PAPAY.SIGN"]} >= {out_contract}
    assert [r["contract_state"] for r in events["PAPAY.TERMINATE"] if r["out_contract_code"] == out_contract] == ["TERMINATED"]
    assert [r["trade_state"] for r in events["TRANSACTION.SUCCESS"] if r["out_trade_no"] == out] == ["SUCCESS"]
    assert [r["trade_state"] for r in events["TRANSACTION.FAIL"] if r["out_trade_no"] == failed] == ["PAY_FAIL"]
    assert sorted(r["refund_status"] for r in events["REFUND.SUCCESS"] if r["out_trade_no"] == out) == ["SUCCESS", "SUCCESS"]
    # ...and our own connector reads the very same notifications (in certificate mode once it holds the certificates:
    # until then it refuses them and WeChat resends).
    if channel.config.platform_certificates:
        asyncio.run(channel.refresh_certificates())
    for headers, body in got:
        channel.verify_notification(headers, body)


def tx_china() -> timezone:
    return timezone(timedelta(hours=8))


def test_the_sdk_and_the_sandbox_agree_with_the_platform_public_key(world):
    inbox, worlds = world
    sdk_story(inbox, *worlds["public_key"])


def test_the_sdk_downloads_the_platform_certificates_and_follows_a_rotation(world):
    inbox, worlds = world
    p, url, channel = worlds["certificate"]
    sdk_story(inbox, p, url, channel)
    old = httpx.get(f"{url}/sandbox/info").json()["serial"]
    new = httpx.post(f"{url}/sandbox/rotate-certificate").json()["serial_no"]
    assert new != old
    wx = sdk_for(p, url, channel)  # downloads both certificates; answers are now signed with the new one
    code, text = wx.query_refund("NOSUCHREFUND1")
    assert code == 404
    out = no()
    code, _ = wx._core.request(f"/v3/papay/sign/contracts/plan-id/{channel.config.plan_id}/out-contract-code/{out}")
    assert code == 404

    async def connector_follows() -> None:
        held = set(channel.certificates)
        with pytest.raises(NotFoundAtChannel):
            await channel.query(out)  # signed by the new certificate: the connector downloads again, then verifies
        assert new in channel.certificates and not held >= set(channel.certificates)
    asyncio.run(connector_follows())


def test_the_sandbox_refuses_what_the_merchant_did_not_sign_and_the_sdk_refuses_tampered_notifications(world):
    inbox, worlds = world
    p, url, channel = worlds["public_key"]
    stranger = sdk_for(p, url, channel, merchant_key=generate_rsa_key())
    code, text = stranger.query(out_trade_no=no())
    assert code == 401 and json.loads(text)["code"] == "SIGN_ERROR"
    wx = sdk_for(p, url, channel)
    inbox.take()
    # Resends only when flushed: the background resends (10, 20, 40 ms) raced the checks below (a tampered resend arriving
    # after reset, or the delivery given up before the last flush).
    p.runtime.set_knobs(bad_notification_signature=True, notify_delays_ms=[60_000, 60_000])
    inbox.refuse = True
    try:
        asyncio.run(sign_on_page(channel, AgreementRequest(no(), holder_token(HOLDER_KEY, "p2", "wxpay"), 100_00,
                                                           notify_url=p.runtime.notifier.callback_url)))
        flush(url)
        got = inbox.take()
        assert got and all(wx.callback(h, b) is None for h, b in got)
        for h, b in got:
            with pytest.raises(BadSignature):
                channel.verify_notification(h, b)
    finally:
        p.runtime.reset()
        inbox.refuse = False
    flush(url)  # the resend is signed right
    got = inbox.take()
    assert got and all(wx.callback(h, b) is not None for h, b in got)


# ---- 2. the connector against WeChat Pay's published shapes ---------------------------------------

PLATFORM, MERCHANT = generate_rsa_key(), generate_rsa_key()
PUB_ID = "PUB_KEY_ID_0114232134912410000000000000"
V3 = b"a12d3924fd499edac8a5efc6a1b2c3d4"
BASE = "https://api.mch.weixin.qq.com"
CFG = WxPayConfig(BASE, "1900000109", "wxd678efh567hg6787", key_serial(MERCHANT), MERCHANT, PUB_ID, PLATFORM.public_key(), V3,
                  "https://yibao.example/api/v1/channels/wxpay/notify", 5.0)


def signed_headers(body: bytes, key: Any = PLATFORM, serial: str = PUB_ID) -> dict[str, str]:
    ts, nonce = str(int(datetime.now(timezone.utc).timestamp())), secrets.token_hex(16).upper()
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": rsa_sign(key, f"{ts}\n{nonce}\n".encode() + body + b"\n"),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json"}


class Institution:
    """Answers by method and path from a table of (status, JSON or bytes); records what it was sent."""

    def __init__(self, routes: dict[tuple[str, str], Any], *, key: Any = PLATFORM, serial: str = PUB_ID) -> None:
        self.routes, self.key, self.serial, self.seen = routes, key, serial, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        self.seen.append((request.method, target, request.content))
        status, payload = self.routes[(request.method, target.split("?")[0])]
        if isinstance(payload, bytes):  # a bill file: not signed
            return httpx.Response(status, content=payload)
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        return httpx.Response(status, content=body, headers=signed_headers(body, self.key, self.serial))


def channel_for(institution: Institution, cfg: WxPayConfig = CFG) -> WxPayChannel:
    return WxPayChannel(cfg, transport=httpx.MockTransport(institution))


ORDER = "1217752501201407033233368018"
QUERY_SUCCESS = {"appid": "wxd678efh567hg6787", "mchid": "1900000109", "out_trade_no": ORDER,
                 "transaction_id": "4200000000201407033233368018", "trade_type": "PAP", "trade_state": "SUCCESS",
                 "trade_state_desc": "支付成功", "bank_type": "CMC", "attach": "自定义数据", "success_time": "2018-06-08T10:34:56+08:00",
                 "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                 "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"}}
APPLY = ("POST", "/v3/papay/pay/transactions/apply")
QUERY = ("GET", f"/v3/pay/transactions/out-trade-no/{ORDER}")


def test_the_deduction_is_accepted_then_queried_for_its_state():
    notice = ("POST", "/v3/papay/contracts/Wx15463511252015071056489715/notify")
    inst = Institution({notice: (204, None), ("POST", "/v3/papay/contracts/Wx1/notify"): (204, None), APPLY: (204, None),
                        QUERY: (200, QUERY_SUCCESS)})
    paid = asyncio.run(channel_for(inst).pay(PaymentRequest(ORDER, 100, "水电代扣", "Wx15463511252015071056489715")))
    assert (paid.status, paid.trade_no, paid.amount_fen) == ("succeeded", "4200000000201407033233368018", 100)
    assert paid.paid_at == datetime(2018, 6, 8, 2, 34, 56, tzinfo=timezone.utc)
    # 预扣费通知 first, as WeChat publishes it: mchid, appid, deduct_duration, estimated_amount — the amount about to be deducted.
    assert inst.seen[0][1] == notice[1]
    assert json.loads(inst.seen[0][2]) == {"mchid": "1900000109", "appid": CFG.appid, "deduct_duration": {"count": 1, "unit": "DAY"},
                                           "estimated_amount": {"amount": 100, "currency": "CNY"}}
    sent = json.loads(inst.seen[1][2])
    assert sent["transaction_notify_url"] == CFG.notify_url and "notify_url" not in sent and "mchid" not in sent
    assert set(sent) == {"appid", "out_trade_no", "description", "transaction_notify_url", "contract_id", "amount"}
    assert inst.seen[2][1] == f"/v3/pay/transactions/out-trade-no/{ORDER}?mchid=1900000109"
    # Still deducting: processing, the truth later; a failure: declined.
    inst.routes[QUERY] = (200, {**QUERY_SUCCESS, "trade_state": "ACCEPT", "trade_state_desc": "已接收，等待扣款"})
    assert asyncio.run(channel_for(inst).pay(PaymentRequest(ORDER, 100, "水电代扣", "Wx1"))).status == "processing"
    inst.routes[QUERY] = (200, {**QUERY_SUCCESS, "trade_state": "PAY_FAIL", "trade_state_desc": "余额不足"})
    with pytest.raises(Declined):
        asyncio.run(channel_for(inst).pay(PaymentRequest(ORDER, 100, "水电代扣", "Wx1")))
    # Accepted, then the question answered anything but the order's own final state: unknown (never declined) — not yet
    # visible, a rate limit, no permission, an answer about another order or with another amount.
    for route in [(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}), (429, {"code": "RATELIMIT_EXCEEDED", "message": "频率超限"}),
                  (403, {"code": "NO_AUTH", "message": "无权限"}), (400, {"code": "PARAM_ERROR", "message": "参数错误"}),
                  (200, {**QUERY_SUCCESS, "out_trade_no": "1217752501201407033233368099"}),
                  (200, {**QUERY_SUCCESS, "amount": {**QUERY_SUCCESS["amount"], "total": 101}})]:
        inst.routes[QUERY] = route
        with pytest.raises(OutcomeUnknown):
            asyncio.run(channel_for(inst).pay(PaymentRequest(ORDER, 100, "水电代扣", "Wx1")))
    inst.routes[QUERY] = (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
    with pytest.raises(NotFoundAtChannel):
        asyncio.run(channel_for(inst).query(ORDER))


def test_an_answer_signed_by_another_key_or_without_its_signature_type_is_not_believed():
    inst = Institution({APPLY: (204, None), QUERY: (200, QUERY_SUCCESS)}, key=generate_rsa_key())
    with pytest.raises(BadSignature):
        asyncio.run(channel_for(inst).query(ORDER))
    body = json.dumps(QUERY_SUCCESS).encode()
    headers = {**signed_headers(body), "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}
    with pytest.raises(BadSignature):
        tx.verify_signed(CFG, headers, body, datetime.now(timezone.utc), "answer")
    probe = {**signed_headers(body), "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + base64.b64encode(b"x" * 256).decode()}
    with pytest.raises(BadSignature):  # probe traffic fails verification as any forgery would
        tx.verify_signed(CFG, probe, body, datetime.now(timezone.utc), "answer")


REFUND_NO = "1217752501201407033233368999"
REFUND_ANSWER = {"refund_id": "50000000382019052709732678859", "out_refund_no": REFUND_NO,
                 "transaction_id": "4200000000201407033233368018", "out_trade_no": ORDER, "channel": "ORIGINAL",
                 "user_received_account": "招商银行信用卡0403", "create_time": "2020-12-01T16:18:12+08:00", "status": "PROCESSING",
                 "funds_account": "AVAILABLE", "amount": {"total": 100, "refund": 100, "from": [], "payer_total": 90, "payer_refund": 90,
                                                          "settlement_refund": 100, "settlement_total": 100, "discount_refund": 10,
                                                          "currency": "CNY", "refund_fee": 0}}


def test_a_refund_answered_processing_and_its_query():
    inst = Institution({("POST", "/v3/refund/domestic/refunds"): (200, REFUND_ANSWER),
                        ("GET", f"/v3/refund/domestic/refunds/{REFUND_NO}"): (200, {**REFUND_ANSWER, "status": "SUCCESS",
                                                                                    "success_time": "2020-12-01T16:19:12+08:00"})})
    ch = channel_for(inst)
    r = asyncio.run(ch.refund(RefundRequest(ORDER, REFUND_NO, 100, 100, "退一项检查")))
    assert (r.status, r.amount_fen, r.refund_id) == ("processing", 100, "50000000382019052709732678859")
    assert asyncio.run(ch.query_refund(ORDER, REFUND_NO)).status == "succeeded"
    # ABNORMAL: the card refused the refund and WeChat holds the money for the merchant — it left us: not failed.
    inst.routes[("GET", f"/v3/refund/domestic/refunds/{REFUND_NO}")] = (200, {**REFUND_ANSWER, "status": "ABNORMAL"})
    assert asyncio.run(ch.query_refund(ORDER, REFUND_NO)).status == "processing"
    inst.routes[("GET", f"/v3/refund/domestic/refunds/{REFUND_NO}")] = (200, {**REFUND_ANSWER, "status": "CLOSED"})
    assert asyncio.run(ch.query_refund(ORDER, REFUND_NO)).status == "failed"
    inst.routes[("GET", f"/v3/refund/domestic/refunds/{REFUND_NO}")] = (200, {**REFUND_ANSWER, "out_refund_no": "1217752501201407033233368099"})
    with pytest.raises(OutcomeUnknown):  # about another refund
        asyncio.run(ch.query_refund(ORDER, REFUND_NO))


def notification(event_type: str, resource: dict[str, Any], original: str, summary: str, *, key: bytes = V3) -> bytes:
    nonce = "fdasflkja484"
    return json.dumps({"id": "EV-2018022511223320873", "create_time": "2015-05-20T13:29:35+08:00", "resource_type": "encrypt-resource",
                       "event_type": event_type, "summary": summary,
                       "resource": {"original_type": original, "algorithm": "AEAD_AES_256_GCM", "associated_data": original,
                                    "nonce": nonce, "ciphertext": aes_gcm_encrypt(key, nonce.encode(), original.encode(),
                                                                                  json.dumps(resource, ensure_ascii=False).encode())}},
                      ensure_ascii=False).encode()


REFUND_RESOURCE = {"mchid": "1900000100", "transaction_id": "1008450740201411110005820873", "out_trade_no": "20150806125346",
                   "refund_id": "50200207182018070300011301001", "out_refund_no": "7752501201407033233368018", "refund_status": "SUCCESS",
                   "success_time": "2018-06-08T10:34:56+08:00", "user_received_account": "招商银行信用卡0403",
                   "amount": {"total": 999, "refund": 999, "payer_total": 999, "payer_refund": 999}}


def test_notifications_as_wechat_pay_sends_them():
    ch = channel_for(Institution({}))
    body = notification("REFUND.SUCCESS", REFUND_RESOURCE, "refund", "退款成功")
    n = ch.verify_notification(signed_headers(body), body)
    assert (n.kind, n.status, n.out_refund_no, n.amount_fen, n.trade_no) == ("refund", "succeeded", "7752501201407033233368018", 999,
                                                                               "50200207182018070300011301001")
    body = notification("REFUND.ABNORMAL", {**REFUND_RESOURCE, "refund_status": "ABNORMAL"}, "refund", "退款异常")
    assert ch.verify_notification(signed_headers(body), body).status == "processing"
    body = notification("TRANSACTION.SUCCESS", QUERY_SUCCESS, "transaction", "支付成功")
    n = ch.verify_notification(signed_headers(body), body)
    assert (n.kind, n.status, n.out_trade_no, n.amount_fen) == ("payment", "succeeded", ORDER, 100)
    contract = {**CONTRACT, "contract_state": "TERMINATED", "contract_terminated_time": "2020-09-11T10:00:00+08:00"}
    body = notification("PAPAY.TERMINATE", contract, "papay", "解约成功")
    n = ch.verify_notification(signed_headers(body), body)
    assert (n.kind, n.status, n.data["subject"], n.data["agreement_no"]) == ("agreement", "terminated", "wxwtdk20200910100000",
                                                                              "Wx15463511252015071056489715")
    # A refund notification read for "status" would have no state: the real field is refund_status.
    bad = notification("REFUND.SUCCESS", {**{k: v for k, v in REFUND_RESOURCE.items() if k != "refund_status"}, "status": "SUCCESS"},
                       "refund", "退款成功")
    with pytest.raises(BadSignature):
        ch.verify_notification(signed_headers(bad), bad)
    other = notification("REFUND.SUCCESS", REFUND_RESOURCE, "refund", "退款成功", key=b"b" * 32)
    with pytest.raises(BadSignature):
        ch.verify_notification(signed_headers(other), other)
    assert (ch.ack(True).status_code, ch.ack(False).status_code) == (204, 400)


CONTRACT = {"mchid": "1900000109", "contract_id": "Wx15463511252015071056489715", "appid": "wxd678efh567hg6787", "plan_id": 12535,
            "out_contract_code": "wxwtdk20200910100000", "contract_display_account": "微信代扣", "contract_state": "SIGNED",
            "contract_signed_time": "2020-09-10T10:00:00+08:00", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
CONTRACT_PATH = "/v3/papay/sign/contracts/plan-id/12535/out-contract-code/wxwtdk20200910100000"


def test_contracts_are_queried_and_terminated_by_plan_and_contract_code():
    inst = Institution({("GET", CONTRACT_PATH): (200, CONTRACT),
                        ("POST", CONTRACT_PATH + "/terminate"): (200, {"mchid": "1900000109", "plan_id": 12535,
                                                                       "out_contract_code": "wxwtdk20200910100000"})})
    cfg = WxPayConfig(**{**CFG.__dict__, "plan_limit_fen": 2000_00})
    ch = channel_for(inst, cfg)
    a = asyncio.run(ch.query_agreement("wxwtdk20200910100000"))
    assert (a.status, a.agreement_no, a.limit_fen) == ("active", "Wx15463511252015071056489715", 2000_00)
    inst.routes[("GET", CONTRACT_PATH)] = (200, {**CONTRACT, "contract_state": "TERMINATED"})
    ended = asyncio.run(ch.terminate_agreement("wxwtdk20200910100000"))
    assert ended.status == "terminated"
    assert json.loads(inst.seen[1][2]) == {"contract_termination_remark": tx.terminate_body(cfg)["contract_termination_remark"]}
    inst.routes[("GET", CONTRACT_PATH)] = (200, {**CONTRACT, "contract_state": "SIGN_FAILED"})
    with pytest.raises(Exception) as exc:
        asyncio.run(ch.query_agreement("wxwtdk20200910100000"))
    assert exc.value.code == "garbled_answer"  # not a state an active or ended agreement has: unknown, never a failure



# WeChat Pay's trade bill (bill_type=ALL) as its published sample has it — written out here, not taken from the code
# (a wrong or misordered column in the connector must fail this test).
BILL_HEADER = ["交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型", "交易状态",
               "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型",
               "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"]
BILL_SUMMARY = ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"]

def bill(rows: list[list[str]], summary: list[str]) -> bytes:
    lines = [",".join(BILL_HEADER)] + [",".join("`" + c for c in r) for r in rows] + [",".join(BILL_SUMMARY), ",".join("`" + c for c in summary)]
    return ("\r\n".join(lines) + "\r\n").encode()


TRADE_ROW = ["2026-11-22 09:30:00", "wxd678efh567hg6787", "1900000109", "0", "", "4200000000201411220001", "T2026112200000001",
             "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "PAP", "SUCCESS", "CMC", "CNY", "123.45", "0.00", "0", "0", "0.00", "0.00", "", "",
             "门诊缴费", "", "0.74", "0.60%", "123.45", "0.00", ""]
REFUND_ROW = ["2026-11-22 10:00:00", "wxd678efh567hg6787", "1900000109", "0", "", "4200000000201411220001", "T2026112200000001",
              "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "PAP", "REFUND", "CMC", "CNY", "0.00", "0.00", "50300000000001", "R2026112200000001",
              "23.45", "0.00", "ORIGINAL", "SUCCESS", "门诊缴费", "", "-0.14", "0.60%", "0.00", "23.45", ""]


def statement_of(content: bytes, *, hash_value: str | None = None) -> Any:
    raw = content
    inst = Institution({("GET", "/v3/bill/tradebill"): (200, {"hash_type": "SHA1", "hash_value": hash_value or hashlib.sha1(raw).hexdigest(),
                                                              "download_url": f"{BASE}/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6k"}),
                        ("GET", "/v3/billdownload/file"): (200, gzip.compress(raw))})
    st = asyncio.run(channel_for(inst).statement(date(2026, 11, 22)))
    assert inst.seen[0][1] == "/v3/bill/tradebill?bill_date=2026-11-22&bill_type=ALL&tar_type=GZIP"
    return st


def test_the_gzip_trade_bill_is_checked_and_parsed():
    good = bill([TRADE_ROW, REFUND_ROW], ["2", "123.45", "23.45", "0.00", "0.60", "123.45", "23.45"])
    st = statement_of(good)
    assert [(r.kind, r.amount_fen, r.out_refund_no) for r in st.rows] == [("trade", 123_45, None), ("refund", 23_45, "R2026112200000001")]
    assert (st.trade_count, st.trade_total_fen, st.refund_count, st.refund_total_fen) == (1, 123_45, 1, 23_45)
    with pytest.raises(StatementError) as exc:
        statement_of(good, hash_value=hashlib.sha1(b"another file").hexdigest())
    assert exc.value.code == "statement_hash_mismatch"
    for summary in (["2", "123.46", "23.45", "0.00", "0.60", "123.45", "23.45"], ["3", "123.45", "23.45", "0.00", "0.60", "123.45", "23.45"],
                    ["2", "123.45", "23.45", "0.00", "0.60", "123.45", "23.40"]):
        with pytest.raises(StatementError):
            statement_of(bill([TRADE_ROW, REFUND_ROW], summary))
    with pytest.raises(StatementError):  # a field without its backtick
        statement_of(bill([TRADE_ROW], ["1", "123.45", "0.00", "0.00", "0.74", "123.45", "0.00"]).replace(b"`PAP", b"PAP"))


def certificate(key: Any, serial: int, days: int = 365) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA test")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))


def listing(*certs: x509.Certificate) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    data = []
    for c in certs:
        nonce = secrets.token_hex(6)
        pem = c.public_bytes(serialization.Encoding.PEM)
        data.append({"serial_no": format(c.serial_number, "X"), "effective_time": "2026-01-01T00:00:00+08:00",
                     "expire_time": "2031-01-01T00:00:00+08:00",
                     "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate",
                                             "ciphertext": aes_gcm_encrypt(V3, nonce.encode(), b"certificate", pem)}})
    return {"data": data}


def test_platform_certificates_are_downloaded_decrypted_and_rotated():
    k1, k2 = generate_rsa_key(), generate_rsa_key()
    c1, c2 = certificate(k1, 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1), certificate(k2, 0x6C3D7E1F2A3B4C5D6E7F8091A2B3C4D5E6F70819)
    s1, s2 = format(c1.serial_number, "X"), format(c2.serial_number, "X")
    cfg = WxPayConfig(BASE, "1900000109", "wxd678efh567hg6787", key_serial(MERCHANT), MERCHANT, "", None, V3, None, 5.0,
                      platform_certificates=True)
    inst = Institution({("GET", "/v3/certificates"): (200, listing(c1)), QUERY: (200, QUERY_SUCCESS)}, key=k1, serial=s1)
    ch = channel_for(inst, cfg)
    assert asyncio.run(ch.query(ORDER)).status == "succeeded"
    assert [m for m, p, _ in inst.seen] == ["GET", "GET"] and inst.seen[0][1] == "/v3/certificates"
    assert set(ch.certificates) == {s1}
    # Rotation: answers now signed under a new certificate the connector has not seen: it downloads again.
    inst.routes[("GET", "/v3/certificates")] = (200, listing(c1, c2))
    inst.key, inst.serial = k2, s2
    assert asyncio.run(ch.query(ORDER)).status == "succeeded"
    assert set(ch.certificates) == {s1, s2}
    # A notification under a serial nobody lists is refused (WeChat resends).
    body = notification("REFUND.SUCCESS", REFUND_RESOURCE, "refund", "退款成功")
    assert ch.verify_notification(signed_headers(body, k2, s2), body).status == "succeeded"
    with pytest.raises(BadSignature):
        ch.verify_notification(signed_headers(body, generate_rsa_key(), "7F0000000000000000000000000000000000001"), body)
    # A listing that does not decrypt under the API v3 key is no answer.
    inst.routes[("GET", "/v3/certificates")] = (200, {"data": [{**listing(c1)["data"][0], "encrypt_certificate": {
        **listing(c1)["data"][0]["encrypt_certificate"], "ciphertext": base64.b64encode(b"x" * 64).decode()}}]})
    with pytest.raises(Exception) as exc:
        asyncio.run(channel_for(inst, cfg).refresh_certificates())
    assert exc.value.code == "garbled_answer"


def test_the_sandbox_connector_in_certificate_mode_pays_and_is_told(world):
    inbox, worlds = world
    p, url, channel = worlds["certificate"]

    async def story() -> None:
        token = holder_token(HOLDER_KEY, "person-cert", "wxpay")
        a = await sign_on_page(channel, AgreementRequest(no(), token, 300_00, notify_url=p.runtime.notifier.callback_url))
        assert (await channel.query_agreement(a.out_agreement_no)) == a
        out = no()
        paid = await channel.pay(PaymentRequest(out, 12_34, "门诊缴费", a.agreement_no))
        assert paid.status == "succeeded"
        ended = await channel.terminate_agreement(a.out_agreement_no)
        assert ended.status == "terminated"
    inbox.take()
    asyncio.run(story())
    flush(url)
    kinds = sorted(channel.verify_notification(h, b).kind for h, b in inbox.take())
    assert kinds == ["agreement", "agreement", "payment"]


def test_a_certificate_download_failing_after_a_deduction_was_sent_leaves_it_unknown():
    """The deduction's answer names a certificate we do not hold yet (a rotation); the download then fails (an
    unsigned 429, a signed 403): the deduction was sent, so nothing about it is known — never declined."""
    k1, k2 = generate_rsa_key(), generate_rsa_key()
    c1 = certificate(k1, 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1)
    s1 = format(c1.serial_number, "X")
    # No 预扣费通知 here: its answer would name the new certificate first, before anything is deducted.
    cfg = WxPayConfig(BASE, "1900000109", "wxd678efh567hg6787", key_serial(MERCHANT), MERCHANT, "", None, V3, None, 5.0,
                      platform_certificates=True, deduct_notice=False)
    inst = Institution({("GET", "/v3/certificates"): (200, listing(c1)), QUERY: (200, QUERY_SUCCESS), APPLY: (204, None)}, key=k1, serial=s1)
    ch = channel_for(inst, cfg)
    assert asyncio.run(ch.query(ORDER)).status == "succeeded"  # the certificates downloaded once
    inst.key, inst.serial = k2, "6C3D7E1F2A3B4C5D6E7F8091A2B3C4D5E6F70819"
    for failure in [(429, b""), (403, {"code": "NO_AUTH", "message": "无权限"})]:
        inst.routes[("GET", "/v3/certificates")] = failure
        with pytest.raises(OutcomeUnknown):
            asyncio.run(ch.pay(PaymentRequest(ORDER, 100, "水电代扣", "Wx1")))
        assert [(m, p.split("?")[0]) for m, p, _ in inst.seen[-2:]] == [APPLY, ("GET", "/v3/certificates")]  # sent, then the download failed
