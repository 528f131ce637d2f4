"""Alipay (OpenAPI, RSA2) with Alipay's own SDKs as the other party.

- Alipay's official `alipay-sdk-python` (DefaultAlipayClient: common parameters in the URL query,
  biz_content in the POST body) and the community `python-alipay-sdk` (AliPay: every parameter in the
  query of a GET) call the SANDBOX over real HTTP: the sandbox accepts what they sign, and they verify
  every answer it signs (a wrong key makes them refuse it). The notifications the sandbox posts are
  verified with the SDKs' own checks.
- The platform's connector reads answers, notifications and a bill shaped as Alipay publishes them
  (hand-written here with our own values, signed with a test key).

The SDKs are synchronous (http.client / urllib): they run in plain test code, the sandbox in its own thread.
Two adjustments to the SDKs, neither touching what they sign or verify: their clock is Beijing's (they stamp
`timestamp` with the host's local time; Alipay's is GMT+8), and the official SDK's connection honours the
URL's port (its `get_http_connection` always dials 80/443).
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import urllib.parse
import urllib.request
import uuid
import zipfile
from datetime import date, datetime, timezone
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode

import alipay as alipay_sdk  # noqa: E402 — both SDKs install the `alipay` package (see pyproject's dev extra)
import httpx
import pytest
from alipay import AliPay  # noqa: E402 — python-alipay-sdk
from alipay.aop.api import DefaultAlipayClient as official_client_module  # noqa: E402
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig  # noqa: E402
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient  # noqa: E402
from alipay.aop.api.domain.AgreementParams import AgreementParams  # noqa: E402
from alipay.aop.api.domain.AlipayDataDataserviceBillDownloadurlQueryModel import AlipayDataDataserviceBillDownloadurlQueryModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradePayModel import AlipayTradePayModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel  # noqa: E402
from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel  # noqa: E402
from alipay.aop.api.domain.AlipayUserAgreementQueryModel import AlipayUserAgreementQueryModel  # noqa: E402
from alipay.aop.api.domain.AlipayUserAgreementUnsignModel import AlipayUserAgreementUnsignModel  # noqa: E402
from alipay.aop.api.exception.Exception import ResponseException  # noqa: E402
from alipay.aop.api.request.AlipayDataDataserviceBillDownloadurlQueryRequest import AlipayDataDataserviceBillDownloadurlQueryRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import AlipayTradeFastpayRefundQueryRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradePayRequest import AlipayTradePayRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest  # noqa: E402
from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest  # noqa: E402
from alipay.aop.api.request.AlipayUserAgreementQueryRequest import AlipayUserAgreementQueryRequest  # noqa: E402
from alipay.aop.api.request.AlipayUserAgreementUnsignRequest import AlipayUserAgreementUnsignRequest  # noqa: E402
from alipay.aop.api.util import WebUtils  # noqa: E402
from alipay.aop.api.util.SignatureUtils import get_sign_content, verify_with_rsa  # noqa: E402
from alipay.exceptions import AliPayException, AliPayValidationError  # noqa: E402
from cryptography.hazmat.primitives import serialization

from tests.support.channels import sign_on_page, signing_request
from yibao.channels import (
    BadSignature,
    Declined,
    NotFoundAtChannel,
    OutcomeUnknown,
    PaymentRequest,
    RefundRequest,
    StatementError,
    holder_token,
)
from yibao.channels.alipay.connector import AlipayChannel, AlipayConfig
from yibao.channels.crypto import canonical_kv, generate_rsa_key, public_pem, rsa_sign
from yibao.channels.receiver import NotificationReceiver
from yibao.channels.wire import CHINA


def no() -> str:
    return uuid.uuid4().hex[:24].upper()


class BeijingClock(datetime):
    """The SDKs stamp requests with `datetime.now()`: a host set to Beijing time, as Alipay expects."""

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206
        return datetime.now(CHINA).replace(tzinfo=None) if tz is None else datetime.now(tz)


def _connection_on_the_urls_port(url, query_string, timeout):  # noqa: ANN001, ANN202 — WebUtils.get_http_connection, port kept
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{query_string}", http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


@pytest.fixture
def sdk_host(monkeypatch):
    monkeypatch.setattr(official_client_module, "datetime", SimpleNamespace(datetime=BeijingClock))
    monkeypatch.setattr(alipay_sdk, "datetime", BeijingClock)
    monkeypatch.setattr(WebUtils, "get_http_connection", _connection_on_the_urls_port)


def pem_private(key) -> str:  # noqa: ANN001
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def official(live, alipay_public_pem: str | None = None) -> DefaultAlipayClient:
    cfg = AlipayClientConfig()
    cfg.server_url = f"{live.url}/gateway.do"
    cfg.app_id = live.channel.config.app_id
    cfg.app_private_key = pem_private(live.channel.config.app_key)
    cfg.alipay_public_key = alipay_public_pem or live.runtime.public_key_pem.decode()
    return DefaultAlipayClient(cfg)


def community(live, alipay_public_pem: str | None = None) -> AliPay:
    client = AliPay(appid=live.channel.config.app_id, app_private_key_string=pem_private(live.channel.config.app_key),
                    alipay_public_key_string=alipay_public_pem or live.runtime.public_key_pem.decode(), sign_type="RSA2")
    client._gateway = f"{live.url}/gateway.do"  # the SDK's gateway is Alipay's; ours is the sandbox
    return client


def signed_up(live, limit_fen: int = 500_00) -> tuple[str, str]:
    """An agreement signed by the holder on the sandbox's Alipay page (alipay.user.agreement.page.sign)."""
    out = no()
    agreement = asyncio.run(sign_on_page(live.channel, signing_request(live, out, holder_token(b"k" * 32, no(), "alipay"), limit_fen)))
    return out, agreement.agreement_no


def execute(client: DefaultAlipayClient, request, model) -> dict:  # noqa: ANN001
    request.biz_model = model
    return json.loads(client.execute(request))  # execute verifies the answer's signature or raises


def test_the_official_sdk_posts_every_call_and_verifies_every_answer(alipay, sdk_host):
    client = official(alipay)
    out_agreement, agreement_no = signed_up(alipay)
    out = no()
    pay = AlipayTradePayModel()
    pay.out_trade_no, pay.total_amount, pay.subject, pay.product_code = out, "88.80", "门诊缴费", "GENERAL_WITHHOLDING"
    pay.agreement_params = AgreementParams()
    pay.agreement_params.agreement_no = agreement_no
    paid = execute(client, AlipayTradePayRequest(), pay)
    assert (paid["code"], paid["out_trade_no"], paid["total_amount"]) == ("10000", out, "88.80") and paid["gmt_payment"]
    assert execute(client, AlipayTradePayRequest(), pay)["sub_code"] == "ACQ.TRADE_HAS_SUCCESS"  # a resend is refused, signed

    query = AlipayTradeQueryModel()
    query.out_trade_no = out
    truth = execute(client, AlipayTradeQueryRequest(), query)
    assert (truth["trade_status"], truth["trade_no"], truth["send_pay_date"]) == ("TRADE_SUCCESS", paid["trade_no"], paid["gmt_payment"])

    refund = AlipayTradeRefundModel()
    refund.out_trade_no, refund.out_request_no, refund.refund_amount = out, no(), "30.00"
    first = execute(client, AlipayTradeRefundRequest(), refund)
    assert (first["fund_change"], first["refund_fee"]) == ("Y", "30.00")
    assert execute(client, AlipayTradeRefundRequest(), refund)["fund_change"] == "N"  # the same request again: no money moves
    second = AlipayTradeRefundModel()
    second.out_trade_no, second.out_request_no, second.refund_amount = out, no(), "8.80"
    assert execute(client, AlipayTradeRefundRequest(), second)["refund_fee"] == "38.80"  # refund_fee: the trade's total refunded

    asked = AlipayTradeFastpayRefundQueryModel()
    asked.out_trade_no, asked.out_request_no, asked.query_options = out, refund.out_request_no, ["gmt_refund_pay"]
    found = execute(client, AlipayTradeFastpayRefundQueryRequest(), asked)
    assert (found["refund_status"], found["refund_amount"]) == ("REFUND_SUCCESS", "30.00") and found["gmt_refund_pay"]
    asked.out_request_no = no()
    assert "refund_status" not in execute(client, AlipayTradeFastpayRefundQueryRequest(), asked)  # not refunded

    ref = AlipayUserAgreementQueryModel()
    ref.personal_product_code, ref.external_agreement_no = "GENERAL_WITHHOLDING_P", out_agreement
    assert execute(client, AlipayUserAgreementQueryRequest(), ref)["status"] == "NORMAL"
    unsign = AlipayUserAgreementUnsignModel()
    unsign.personal_product_code, unsign.agreement_no = "GENERAL_WITHHOLDING_P", agreement_no
    assert execute(client, AlipayUserAgreementUnsignRequest(), unsign)["code"] == "10000"
    assert execute(client, AlipayUserAgreementQueryRequest(), ref)["status"] == "STOP"

    bill = AlipayDataDataserviceBillDownloadurlQueryModel()
    bill.bill_type, bill.bill_date = "trade", datetime.now(CHINA).date().isoformat()
    url = execute(client, AlipayDataDataserviceBillDownloadurlQueryRequest(), bill)["bill_download_url"]
    assert urllib.parse.urlsplit(url).hostname != urllib.parse.urlsplit(alipay.url).hostname  # Alipay's file host, not the gateway
    with urllib.request.urlopen(url, timeout=10) as resp, zipfile.ZipFile(io.BytesIO(resp.read())) as zf:
        detail = next(zf.read(n).decode("gbk") for n in zf.namelist() if n.endswith("_业务明细.csv"))
    assert out in detail and "#交易合计：" in detail

    # The SDK checks the sandbox's signature: configured with another key for Alipay, it refuses the answer.
    stranger = official(alipay, public_pem(generate_rsa_key()).decode())
    with pytest.raises(ResponseException):
        execute(stranger, AlipayTradeQueryRequest(), query)


def test_python_alipay_sdk_gets_with_every_parameter_in_the_query(alipay, sdk_host):
    client = community(alipay)
    out_agreement, agreement_no = signed_up(alipay)
    out = no()
    paid = client.server_api("alipay.trade.pay", {"out_trade_no": out, "total_amount": "12.30", "subject": "药店购药",
                                                  "product_code": "GENERAL_WITHHOLDING", "agreement_params": {"agreement_no": agreement_no}})
    assert (paid["code"], paid["out_trade_no"]) == ("10000", out)
    assert client.api_alipay_trade_query(out_trade_no=out)["trade_status"] == "TRADE_SUCCESS"
    refund_no = no()
    assert client.api_alipay_trade_refund("12.30", out_trade_no=out, out_request_no=refund_no)["fund_change"] == "Y"
    assert client.api_alipay_trade_fastpay_refund_query(refund_no, out_trade_no=out)["refund_status"] == "REFUND_SUCCESS"
    assert client.api_alipay_trade_query(out_trade_no=out)["trade_status"] == "TRADE_CLOSED"  # refunded in full
    got = client.server_api("alipay.user.agreement.query", {"personal_product_code": "GENERAL_WITHHOLDING_P",
                                                            "external_agreement_no": out_agreement})
    assert (got["status"], got["agreement_no"]) == ("NORMAL", agreement_no)
    with pytest.raises(AliPayException):  # an unknown method: Alipay's error_response
        client.server_api("alipay.no.such.method", {})
    stranger = community(alipay, public_pem(generate_rsa_key()).decode())
    with pytest.raises(AliPayValidationError):
        stranger.api_alipay_trade_query(out_trade_no=out)


class Recording(NotificationReceiver):
    """The platform's receiver, keeping the bytes of every notification as they arrived."""

    def __init__(self, channel) -> None:  # noqa: ANN001
        super().__init__(channel)
        self.bodies: list[bytes] = []

    def receive(self, headers, body):  # noqa: ANN001, ANN201
        self.bodies.append(body)
        return super().receive(headers, body)


def test_the_sdks_verify_every_notification_the_sandbox_posts(alipay, sdk_host):
    recorder = Recording(alipay.channel)
    with alipay.callbacks.lock:
        alipay.callbacks.receivers["alipay"] = recorder
    out_agreement, agreement_no = signed_up(alipay)
    out = no()
    asyncio.run(alipay.channel.pay(PaymentRequest(out, 50_00, "门诊缴费", agreement_no)))
    asyncio.run(alipay.channel.refund(RefundRequest(out, no(), 20_00, 50_00)))
    asyncio.run(alipay.channel.terminate_agreement(out_agreement))
    asyncio.run(alipay.flush())
    forms = [dict(parse_qsl(b.decode(), keep_blank_values=True)) for b in recorder.bodies]
    assert {(f["notify_type"], "out_biz_no" in f) for f in forms} >= {
        ("trade_status_sync", False), ("trade_status_sync", True), ("dut_user_sign", False), ("dut_user_unsign", False)}
    sandbox_pem = alipay.runtime.public_key_pem.decode()
    checker = community(alipay)
    for form in forms:
        assert form["sign_type"] == "RSA2" and form["charset"] == "utf-8"
        sign = form.pop("sign")
        assert checker.verify(dict(form), sign)  # python-alipay-sdk: sorted k=v without sign and sign_type
        content = get_sign_content({k: v for k, v in form.items() if k != "sign_type"})
        assert verify_with_rsa(sandbox_pem, content.encode(), sign)  # the official SDK's own primitives
        assert not checker.verify({**form, "total_amount": "0.01"}, sign)
    payment = next(f for f in forms if f["notify_type"] == "trade_status_sync" and "out_biz_no" not in f)
    assert payment["gmt_payment"] and payment["trade_status"] == "TRADE_SUCCESS"
    refund = next(f for f in forms if "out_biz_no" in f)
    assert (refund["refund_fee"], refund["trade_status"]) == ("20.00", "TRADE_SUCCESS") and refund["gmt_refund"]
    assert next(f for f in forms if f["notify_type"] == "dut_user_unsign")["status"] == "UNSIGN"
    assert all(r.ack.body == b"success" for r in alipay.receipts)  # answered as Alipay expects


# ---- the connector against Alipay-shaped answers, notifications and bills (our values, a test key) ----------------------

ALIPAY, APP = generate_rsa_key(), generate_rsa_key()
APP_ID = "2021000122600001"
GATEWAY = "https://openapi.alipay.com"
FILE_HOST = "https://dwbillcenter.alipay.com"


def envelope(method: str, inner: str) -> bytes:
    """As Alipay answers: the `_response` text exactly as signed, then its signature."""
    node = "error_response" if method == "error" else method.replace(".", "_") + "_response"
    return ('{"' + node + '":' + inner + ',"sign":"' + rsa_sign(ALIPAY, inner.encode()) + '"}').encode()


ANSWERS = {
    "alipay.trade.pay": '{"code":"10000","msg":"Success","buyer_logon_id":"159****5620","buyer_pay_amount":"88.80",'
                        '"buyer_user_id":"2088101117955611","fund_bill_list":[{"amount":"88.80","fund_channel":"ALIPAYACCOUNT"}],'
                        '"gmt_payment":"2026-11-22 17:30:05","invoice_amount":"88.80","out_trade_no":"T2026112200000001",'
                        '"point_amount":"0.00","receipt_amount":"88.80","total_amount":"88.80","trade_no":"2026112222001411561402543209"}',
    "alipay.trade.query": '{"code":"10000","msg":"Success","trade_no":"2026112222001411561402543209","out_trade_no":"T2026112200000001",'
                          '"buyer_logon_id":"159****5620","trade_status":"TRADE_SUCCESS","total_amount":"88.80","receipt_amount":"88.80",'
                          '"buyer_pay_amount":"88.80","point_amount":"0.00","invoice_amount":"88.80","send_pay_date":"2026-11-22 17:30:05",'
                          '"buyer_user_id":"2088101117955611"}',
    "alipay.trade.refund": '{"code":"10000","msg":"Success","buyer_logon_id":"159****5620","buyer_user_id":"2088101117955611",'
                           '"fund_change":"Y","gmt_refund_pay":"2026-11-22 18:01:22","out_trade_no":"T2026112200000001",'
                           '"refund_fee":"30.00","send_back_fee":"0.00","trade_no":"2026112222001411561402543209"}',
    "alipay.trade.fastpay.refund.query": '{"code":"10000","msg":"Success","out_request_no":"R2026112200000001",'
                                         '"out_trade_no":"T2026112200000001","refund_amount":"30.00","refund_status":"REFUND_SUCCESS",'
                                         '"total_amount":"88.80","trade_no":"2026112222001411561402543209"}',
    "alipay.user.agreement.query": '{"code":"10000","msg":"Success","valid_time":"2026-11-01 10:00:00","alipay_logon_id":"159****5620",'
                                   '"invalid_time":"2115-02-01 00:00:00","pricipal_type":"CARD","device_id":"RSED235F875932",'
                                   '"principal_id":"2088101122675263","sign_scene":"INDUSTRY|MEDICAL","agreement_no":"20265501000000026912",'
                                   '"third_party_type":"PARTNER","status":"NORMAL","sign_time":"2026-11-01 10:00:00",'
                                   '"personal_product_code":"GENERAL_WITHHOLDING_P","external_agreement_no":"A2026110100000001",'
                                   '"single_quota":"500.00"}',
    "alipay.user.agreement.unsign": '{"code":"10000","msg":"Success"}',
}


class Institution(httpx.AsyncBaseTransport):
    """Alipay as fixtures: each method's signed answer (overridable), and the bill on its file host."""

    def __init__(self, answers: dict[str, bytes], bill: bytes = b"") -> None:
        self.answers, self.bill, self.requests = answers, bill, []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        params = {**dict(request.url.params), **dict(parse_qsl(body.decode()))}
        self.requests.append((request.method, request.url, params))
        if request.url.host == "dwbillcenter.alipay.com":
            return httpx.Response(200, content=self.bill)
        return httpx.Response(200, content=self.answers[params["method"]])


def connector(answers: dict[str, str | bytes], bill: bytes = b"") -> tuple[AlipayChannel, Institution]:
    signed = {m: a if isinstance(a, bytes) else envelope(m, a) for m, a in {**ANSWERS, **answers}.items()}
    institution = Institution(signed, bill)
    cfg = AlipayConfig(GATEWAY, APP_ID, APP, ALIPAY.public_key(), "https://hospital.example/notify", 5.0)
    return AlipayChannel(cfg, transport=institution), institution


def test_the_connector_reads_alipays_published_answers():
    channel, institution = connector({})

    async def story():
        paid = await channel.pay(PaymentRequest("T2026112200000001", 88_80, "门诊缴费", "20265501000000026912"))
        assert (paid.status, paid.amount_fen, paid.trade_no) == ("succeeded", 88_80, "2026112222001411561402543209")
        assert paid.paid_at == datetime(2026, 11, 22, 9, 30, 5, tzinfo=timezone.utc)  # gmt_payment, Beijing time
        truth = await channel.query("T2026112200000001")
        assert (truth.status, truth.paid_at) == ("succeeded", paid.paid_at)
        refund = await channel.refund(RefundRequest("T2026112200000001", "R2026112200000001", 30_00, 88_80))
        assert (refund.status, refund.amount_fen) == ("succeeded", 30_00)  # fund_change=Y; send_back_fee 0.00 is not the amount
        asked = await channel.query_refund("T2026112200000001", "R2026112200000001")
        assert (asked.status, asked.amount_fen, asked.refund_id) == ("succeeded", 30_00, refund.refund_id)
        agreement = await channel.query_agreement("A2026110100000001")
        assert (agreement.status, agreement.limit_fen, agreement.agreement_no) == ("active", 500_00, "20265501000000026912")
    asyncio.run(story())
    method, url, params = institution.requests[0]
    # Where the official SDK puts them: common parameters and the signature in the query, biz_content in the body.
    assert method == "POST" and url.path == "/gateway.do" and {"app_id", "method", "sign", "timestamp"} <= set(url.params)
    assert "biz_content" not in url.params and json.loads(params["biz_content"])["agreement_params"] == {"agreement_no": "20265501000000026912"}
    assert params["notify_url"] == "https://hospital.example/notify"


def test_the_connector_keeps_alipays_meanings():
    async def story():
        processing, _ = connector({"alipay.trade.pay": '{"code":"10003","msg":"order success pay inprocess",'
                                                       '"out_trade_no":"T2026112200000001","total_amount":"88.80"}'})
        assert (await processing.pay(PaymentRequest("T2026112200000001", 88_80, "门诊缴费", "AG1"))).status == "processing"
        repeat, _ = connector({"alipay.trade.refund": ANSWERS["alipay.trade.refund"].replace('"fund_change":"Y"', '"fund_change":"N"')})
        assert (await repeat.refund(RefundRequest("T2026112200000001", "R2026112200000001", 30_00, 88_80))).status == "processing"
        # A refund query without refund_status: not refunded (never received, or failed) — never "succeeded".
        absent, _ = connector({"alipay.trade.fastpay.refund.query": '{"code":"10000","msg":"Success","out_trade_no":"T2026112200000001",'
                                                                    '"trade_no":"2026112222001411561402543209"}'})
        with pytest.raises(NotFoundAtChannel):
            await absent.query_refund("T2026112200000001", "R2026112200000001")
        paid_before, _ = connector({"alipay.trade.pay": '{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_HAS_SUCCESS",'
                                                        '"sub_msg":"交易已被支付"}'})
        assert (await paid_before.pay(PaymentRequest("T2026112200000001", 88_80, "门诊缴费", "AG1"))).status == "succeeded"
        with pytest.raises(OutcomeUnknown):  # the same number paid with another amount: an operator's matter, never declined
            await paid_before.pay(PaymentRequest("T2026112200000001", 1_00, "门诊缴费", "AG1"))
        busy, _ = connector({"alipay.trade.pay": '{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error",'
                                                 '"sub_msg":"系统繁忙"}'})
        with pytest.raises(OutcomeUnknown):
            await busy.pay(PaymentRequest("T2026112200000001", 88_80, "门诊缴费", "AG1"))
        poor, _ = connector({"alipay.trade.pay": '{"code":"40004","msg":"Business Failed","sub_code":"ACQ.BUYER_BALANCE_NOT_ENOUGH",'
                                                 '"sub_msg":"买家余额不足"}'})
        with pytest.raises(Declined) as exc:
            await poor.pay(PaymentRequest("T2026112200000001", 88_80, "门诊缴费", "AG1"))
        assert exc.value.code == "ACQ.BUYER_BALANCE_NOT_ENOUGH" and not isinstance(exc.value, OutcomeUnknown)
        stopped, _ = connector({"alipay.user.agreement.query": ANSWERS["alipay.user.agreement.query"].replace('"NORMAL"', '"STOP"')})
        assert (await stopped.terminate_agreement("A2026110100000001")).status == "terminated"
        temp, _ = connector({"alipay.user.agreement.query": ANSWERS["alipay.user.agreement.query"].replace('"NORMAL"', '"TEMP"')})
        with pytest.raises(OutcomeUnknown):  # signing not completed: neither active nor terminated
            await temp.query_agreement("A2026110100000001")
        forged, _ = connector({"alipay.trade.query": ANSWERS["alipay.trade.query"].encode()[:-1] + b',"sign":"AAAA"}'})
        with pytest.raises(BadSignature):
            await forged.query("T2026112200000001")
        bad_sign = envelope("alipay.trade.query", ANSWERS["alipay.trade.query"]).replace(b"88.80", b"8.80", 1)
        tampered, _ = connector({"alipay.trade.query": bad_sign})
        with pytest.raises(BadSignature):
            await tampered.query("T2026112200000001")
    asyncio.run(story())


def form(params: dict[str, str], key=ALIPAY) -> bytes:  # noqa: ANN001
    full = {"app_id": APP_ID, "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", **params}
    full["sign"] = rsa_sign(key, canonical_kv(full, exclude=("sign", "sign_type")).encode())
    return urlencode(full).encode()


PAID_NOTICE = {"gmt_create": "2026-11-22 17:30:04", "seller_email": "hospital@example.com", "subject": "门诊缴费",
               "buyer_id": "2088101117955611", "invoice_amount": "88.80", "notify_id": "2026112200222173005011561402543209",
               "fund_bill_list": '[{"amount":"88.80","fundChannel":"ALIPAYACCOUNT"}]', "notify_type": "trade_status_sync",
               "trade_status": "TRADE_SUCCESS", "receipt_amount": "88.80", "buyer_pay_amount": "88.80", "seller_id": "2088102177846875",
               "gmt_payment": "2026-11-22 17:30:05", "notify_time": "2026-11-22 17:30:05", "out_trade_no": "T2026112200000001",
               "total_amount": "88.80", "trade_no": "2026112222001411561402543209", "auth_app_id": APP_ID, "buyer_logon_id": "159****5620",
               "point_amount": "0.00"}


def test_the_connector_verifies_alipays_notifications_and_answers_success():
    channel, _ = connector({})
    paid = channel.verify_notification({}, form(PAID_NOTICE))
    assert (paid.kind, paid.status, paid.amount_fen, paid.out_trade_no) == ("payment", "succeeded", 88_80, "T2026112200000001")
    refund = channel.verify_notification({}, form({**PAID_NOTICE, "notify_id": "N2", "out_biz_no": "R2026112200000001", "refund_fee": "30.00",
                                                   "gmt_refund": "2026-11-22 18:01:22.320"}))
    assert (refund.kind, refund.out_refund_no, refund.status, refund.amount_fen) == ("refund", "R2026112200000001", "succeeded", None)
    signed = channel.verify_notification({}, form({"notify_type": "dut_user_sign", "notify_id": "N3", "notify_time": "2026-11-01 10:00:01",
                                                   "agreement_no": "20265501000000026912", "external_agreement_no": "A2026110100000001",
                                                   "personal_product_code": "GENERAL_WITHHOLDING_P", "sign_scene": "INDUSTRY|MEDICAL",
                                                   "status": "NORMAL", "sign_time": "2026-11-01 10:00:00", "alipay_user_id": "2088101122675263",
                                                   "valid_time": "2026-11-01 10:00:00", "invalid_time": "2115-02-01 00:00:00"}))
    assert (signed.kind, signed.status, signed.data["subject"]) == ("agreement", "active", "A2026110100000001")
    unsigned = channel.verify_notification({}, form({"notify_type": "dut_user_unsign", "notify_id": "N4", "notify_time": "2026-12-01 10:00:01",
                                                     "agreement_no": "20265501000000026912", "external_agreement_no": "A2026110100000001",
                                                     "personal_product_code": "GENERAL_WITHHOLDING_P", "status": "UNSIGN",
                                                     "unsign_time": "2026-12-01 10:00:00", "alipay_user_id": "2088101122675263"}))
    assert (unsigned.kind, unsigned.status) == ("agreement", "terminated")
    for body in (form(PAID_NOTICE, key=APP), form({**PAID_NOTICE, "sign_type": "RSA"}), form({k: v for k, v in PAID_NOTICE.items()
                                                                                              if k != "gmt_payment"})):
        with pytest.raises(BadSignature):
            channel.verify_notification({}, body)
    assert (channel.ack(True).status_code, channel.ack(True).body, channel.ack(True).media_type) == (200, b"success", "text/plain")



# Alipay's trade bill columns as its published sample has them — written out here, not taken from the code.
DETAIL_HEADER = ["支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员", "终端号",
                 "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）",
                 "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注"]
SUMMARY_HEADER = ["门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）", "支付宝优惠（元）",
                  "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）"]

def bill_zip(day: date, detail_rows: list[list[str]], summary_row: list[str], *, pid: str = "2088102177846875") -> bytes:
    def csv_text(title: str, header: list[str], rows: list[list[str]], footer: str) -> bytes:
        lines = [f"#{title}", f"#账号：[{pid}]", f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day:%Y年%m月%d日} 23:59:59]",
                 "#-----------------------------------------列表----------------------------------------", ",".join(header),
                 *(",".join(r) for r in rows), "#-----------------------------------------列表结束------------------------------------",
                 footer, "#导出时间：[2026年11月23日 10:05:37]"]
        return ("\r\n".join(lines) + "\r\n").encode("gbk")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{pid}_{day:%Y%m%d}_业务明细.csv", csv_text("支付宝业务明细查询", DETAIL_HEADER, detail_rows, "#交易合计：2笔，退款合计：1笔"))
        zf.writestr(f"{pid}_{day:%Y%m%d}_业务明细(汇总).csv", csv_text("支付宝业务汇总查询", SUMMARY_HEADER, [summary_row], ""))
    return buf.getvalue()


def detail(trade_no: str, out: str, kind: str, amount: str, request_no: str = "") -> list[str]:
    when = "2026-11-22 17:30:05\t"
    return [trade_no + "\t", out + "\t", kind, "门诊缴费", when, when, "", "", "", "", "159****5620", amount, amount,
            "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", request_no + ("\t" if request_no else ""), "0.00", "0.00", ""]


def test_the_connector_downloads_alipays_zipped_gbk_bill_from_its_file_host():
    day = date(2026, 11, 22)
    rows = [detail("2026112222001411561402543209", "T2026112200000001", "交易", "88.80"),
            detail("2026112222001411561402543210", "T2026112200000002", "交易", "12.30"),
            detail("2026112222001411561402543209", "T2026112200000001", "退款", "-30.00", "R2026112200000001")]
    summary = ["合计", "", "2", "1", "71.10", "71.10", "0.00", "0.00", "0.00", "0.00", "0.00", "71.10"]
    url = f"{FILE_HOST}/downloadBillFile.resource?bizType=trade&userId=2088102177846875&fileType=csv.zip&bizDates=20261122"
    answer = json.dumps({"code": "10000", "msg": "Success", "bill_download_url": url}, separators=(",", ":"))
    good, institution = connector({"alipay.data.dataservice.bill.downloadurl.query": answer}, bill_zip(day, rows, summary))
    st = asyncio.run(good.statement(day))
    assert (st.trade_count, st.trade_total_fen, st.refund_count, st.refund_total_fen) == (2, 101_10, 1, 30_00)
    refund = next(r for r in st.rows if r.kind == "refund")
    assert (refund.out_trade_no, refund.out_refund_no, refund.amount_fen) == ("T2026112200000001", "R2026112200000001", 30_00)
    assert institution.requests[-1][1].host == "dwbillcenter.alipay.com"
    for bad in (bill_zip(day, rows, [*summary[:5], "99.99", *summary[6:]]), bill_zip(day, rows[:2], summary), b"PK\x03\x04 broken",
                bill_zip(date(2026, 11, 21), rows, summary)):
        wrong, _ = connector({"alipay.data.dataservice.bill.downloadurl.query": answer}, bad)
        with pytest.raises(StatementError):
            asyncio.run(wrong.statement(day))


def test_a_refused_refund_is_submitted_again_under_its_own_out_request_no(alipay):
    _, agreement_no = signed_up(alipay)
    out, refund_no = no(), no()

    async def story():
        await alipay.channel.pay(PaymentRequest(out, 40_00, "门诊缴费", agreement_no))
        alipay.runtime.set_knobs(error_rate=1.0)
        with pytest.raises(Declined):
            await alipay.channel.refund(RefundRequest(out, refund_no, 40_00, 40_00))
        with pytest.raises(NotFoundAtChannel):  # refused: not refunded
            await alipay.channel.query_refund(out, refund_no)
        alipay.runtime.set_knobs(error_rate=0.0)
        again = await alipay.channel.refund(RefundRequest(out, refund_no, 40_00, 40_00))
        assert (again.status, again.amount_fen) == ("succeeded", 40_00)
        assert (await alipay.channel.refund(RefundRequest(out, refund_no, 40_00, 40_00))).status == "processing"  # fund_change=N
        assert (await alipay.channel.query_refund(out, refund_no)).status == "succeeded"
    asyncio.run(story())


def test_a_signed_answer_about_another_order_is_no_answer_about_ours():
    """Alipay's answers carry no time: a signed answer about another order (replayed or misrouted) must not complete ours."""
    other = {m: ANSWERS[m].replace("T2026112200000001", "T2026112299999999") for m in ("alipay.trade.pay", "alipay.trade.query")}
    channel, _ = connector(other)

    async def story():
        with pytest.raises(OutcomeUnknown):
            await channel.pay(PaymentRequest("T2026112200000001", 88_80, "门诊缴费", "20265501000000026912"))
        with pytest.raises(OutcomeUnknown):
            await channel.query("T2026112200000001")
    asyncio.run(story())
