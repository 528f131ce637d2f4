"""UnionPay (ACP 5.1.0) against the published SDK rules as the other party (tests/adapters/channels/acp_reference.py).

Both ways:
- the SANDBOX, served over real HTTP (one server for this module), takes every request the reference SDK signs
  as a merchant would send it, and the SDK verifies every answer and notification the sandbox sends — the
  signing certificate checked against the sandbox's middle and root certificates, as against UnionPay's;
- the CONNECTOR accepts answers and notifications shaped after UnionPay's published examples, signed by the
  reference with a test CA (root → middle → signing), and refuses them when the chain, the validity, the CN
  owner or the signature is wrong; its requests verify with the reference and name orders by the original txnTime.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import zipfile
import zlib
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import Response

from tests.adapters.channels import acp_reference as sdk
from tests.support.channels import CLIENT_TIMEOUT_S, serve_in_thread
from yibao.channels import BadSignature, Declined, NotFoundAtChannel, OutcomeUnknown, PaymentRequest, RefundRequest, StatementError
from yibao.channels.crypto import generate_rsa_key
from yibao.channels.unionpay.connector import UnionPayChannel, UnionPayConfig
from yibao.channels.unionpay.transformers import cert_id_of
from yibao.sandbox.channels import pair

CHINA = timezone(timedelta(hours=8))
MER_ID = "777290058110048"


def beijing(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y%m%d%H%M%S")


# ---- the sandbox, the SDK its merchant ------------------------------------------------------------------

class Capture:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/notify")
        async def notify(request: Request) -> Response:
            with self.lock:
                self.bodies.append(await request.body())
            return Response(b"ok", media_type="text/plain")

        return app


@pytest.fixture(scope="module")
def world():
    capture = Capture()
    cb_url, cb_server, cb_thread, cb_sock = serve_in_thread(capture.app(), "unionpay-sdk-callbacks")
    p = pair("unionpay", callback_url=f"{cb_url}/notify", seed=7, notify_delays_ms=(10, 20, 40))
    url, server, thread, sock = serve_in_thread(p.app, "unionpay-sdk-sandbox")
    info = httpx.get(f"{url}/sandbox/info", timeout=10).json()  # the operator downloads the root and middle certificates
    merchant = p.connector(url).config
    yield {"url": url, "capture": capture, "callback": f"{cb_url}/notify", "runtime": p.runtime, "key": merchant.merchant_key,
           "cert_id": merchant.cert_id, "middle": x509.load_pem_x509_certificate(info["middle_cert_pem"].encode()),
           "root": x509.load_pem_x509_certificate(info["root_cert_pem"].encode())}
    for s, t, k in ((server, thread, sock), (cb_server, cb_thread, cb_sock)):
        s.should_exit = True
        t.join(timeout=10)
        k.close()


def post(world, path: str, fields: dict[str, str]) -> dict[str, str]:
    """The SDK's back-end call: sign, post the form, parse the raw answer, verify it against middle + root."""
    signed = sdk.sign({"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "merId": MER_ID, **fields},
                      world["key"], world["cert_id"])
    resp = httpx.post(world["url"] + path, content=urlencode(signed), headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert resp.status_code == 200
    answer = sdk.parse_q_string(resp.text)
    assert sdk.validate(answer, world["middle"], world["root"]), answer  # production CN rule: ifValidateCNName on
    return answer


def front_open(world, fields: dict[str, str]) -> None:
    """The holder's browser posts the merchant's SDK-signed front-end form (79/00) to frontTransReq.do and confirms on
    UnionPay's opening page (the sandbox's)."""
    import re

    signed = sdk.sign({"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "merId": MER_ID, **fields},
                      world["key"], world["cert_id"])
    page = httpx.post(world["url"] + "/gateway/api/frontTransReq.do", data=signed, timeout=10)
    assert page.status_code == 200 and "免密支付签约" in page.text, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    done = httpx.post(str(httpx.URL(world["url"] + "/gateway/api/frontTransReq.do").join(action.group(1))), data={"decision": "confirm"},
                      timeout=10)
    if fields.get("frontUrl"):  # back to the merchant's front URL, the result in its query
        assert done.status_code == 303 and done.headers["location"].startswith(fields["frontUrl"] + "?"), done.headers
        assert "result=signed" in done.headers["location"]
    else:
        assert done.status_code == 200 and 'data-result="signed"' in done.text, done.text


def notifications(world, predicate, count: int) -> list[dict[str, str]]:
    deadline = time.monotonic() + 10
    while True:
        httpx.post(f"{world['url']}/sandbox/notifications/flush", timeout=10)
        with world["capture"].lock:
            got = [dict(parse_qsl(b.decode(), keep_blank_values=True)) for b in world["capture"].bodies]
        mine = [n for n in got if predicate(n)]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine


def test_every_answer_and_notification_of_the_sandbox_verifies_with_the_sdk(world):
    now = datetime.now(timezone.utc)
    stamp = f"{now:%H%M%S%f}"
    opening, order, refund = f"K{stamp}", f"T{stamp}", f"R{stamp}"
    # The holder opens a token on UnionPay's front-end page (the sandbox's), then the 开通查询 finds it.
    front_open(world, {"txnType": "79", "txnSubType": "00", "bizType": "000902", "channelType": "07", "orderId": opening,
                       "txnTime": beijing(now), "backUrl": world["callback"], "frontUrl": world["callback"] + "/back",
                       "tokenPayData": "{trId=62000000001&tokenType=01}", "reqReserved": "ht_" + "a" * 24})
    found = post(world, "/gateway/api/backTransReq.do", {"txnType": "78", "txnSubType": "02", "bizType": "000902", "channelType": "07",
                                                         "orderId": opening, "txnTime": beijing(now)})
    assert (found["respCode"], found["activateStatus"]) == ("00", "1")
    token = dict(parse_qsl(found["tokenPayData"][1:-1]))["token"]

    consume = {"txnType": "01", "txnSubType": "01", "bizType": "000902", "channelType": "07", "orderId": order, "txnTime": beijing(now),
               "txnAmt": "12345", "currencyCode": "156", "backUrl": world["callback"], "tokenPayData": "{token=" + token + "&trId=62000000001}"}
    accepted = post(world, "/gateway/api/backTransReq.do", consume)
    assert (accepted["respCode"], accepted["orderId"], accepted["txnTime"]) == ("00", order, beijing(now))
    assert post(world, "/gateway/api/backTransReq.do", consume)["respCode"] == "12"  # the same order again: a duplicate

    truth = post(world, "/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000", "orderId": order,
                                                       "txnTime": beijing(now)})
    assert (truth["respCode"], truth["origRespCode"], truth["txnAmt"], truth["txnType"]) == ("00", "00", "12345", "01")
    assert len(truth["traceTime"]) == 10 and len(truth["settleDate"]) == 4  # MMDDhhmmss, MMDD
    other_time = post(world, "/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000", "orderId": order,
                                                            "txnTime": beijing(now - timedelta(seconds=1))})
    assert other_time["respCode"] == "34"  # an order is its orderId *and* its txnTime

    back = post(world, "/gateway/api/backTransReq.do", {"txnType": "04", "txnSubType": "00", "bizType": "000902", "channelType": "07",
                                                        "orderId": refund, "txnTime": beijing(now), "origQryId": truth["queryId"],
                                                        "txnAmt": "345", "backUrl": world["callback"], "reqReserved": order})
    assert (back["respCode"], back["reqReserved"]) == ("00", order)
    refund_truth = post(world, "/gateway/api/queryTrans.do", {"txnType": "00", "txnSubType": "00", "bizType": "000000", "orderId": refund,
                                                              "txnTime": beijing(now)})
    assert (refund_truth["origRespCode"], refund_truth["txnType"], refund_truth["origQryId"]) == ("00", "04", truth["queryId"])

    statement = post(world, "/", {"txnType": "76", "txnSubType": "01", "bizType": "000000", "channelType": "07", "txnTime": beijing(now),
                                  "settleDate": f"{now.astimezone(CHINA):%m%d}", "fileType": "00"})
    with zipfile.ZipFile(io.BytesIO(zlib.decompress(base64.b64decode(statement["fileContent"])))) as zf:
        zm = next(zf.read(n) for n in zf.namelist() if "ZM_" in n and "ZME_" not in n).decode("gbk")
    assert any(order in line and line.startswith("S22") for line in zm.splitlines())
    assert any(refund in line and line.startswith("S30") for line in zm.splitlines())

    deleted = post(world, "/gateway/api/backTransReq.do", {"txnType": "74", "txnSubType": "01", "bizType": "000902", "channelType": "07",
                                                           "orderId": f"D{stamp}", "txnTime": beijing(now),
                                                           "tokenPayData": "{token=" + token + "&trId=62000000001}"})
    assert deleted["respCode"] == "00"
    assert post(world, "/gateway/api/backTransReq.do", {"txnType": "78", "txnSubType": "02", "bizType": "000902", "channelType": "07",
                                                        "orderId": opening, "txnTime": beijing(now)})["activateStatus"] == "0"

    # A request the SDK did not sign (a changed amount) is refused — and the refusal is signed too.
    forged = {**sdk.sign({"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "merId": MER_ID, **consume,
                          "orderId": f"X{stamp}"}, world["key"], world["cert_id"]), "txnAmt": "1"}
    refused = sdk.parse_q_string(httpx.post(world["url"] + "/gateway/api/backTransReq.do", content=urlencode(forged),
                                            headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10).text)
    assert refused["respCode"] == "11" and sdk.validate(refused, world["middle"], world["root"])

    mine = notifications(world, lambda n: n.get("orderId") in (order, refund, opening), 4)
    kinds = sorted((n["txnType"], n["orderId"]) for n in mine)
    assert ("01", order) in kinds and ("04", refund) in kinds and ("79", opening) in kinds and ("74", opening) in kinds
    for n in mine:
        assert sdk.validate(n, world["middle"], world["root"]), n
    paid = next(n for n in mine if n["txnType"] == "01")
    assert (paid["respCode"], paid["txnAmt"], paid["txnTime"], paid["queryId"]) == ("00", "12345", beijing(now), truth["queryId"])
    assert next(n for n in mine if n["txnType"] == "04")["reqReserved"] == order


def test_a_tampered_notification_fails_the_sdk(world):
    world["runtime"].set_knobs(bad_notification_signature=True)
    try:
        now = datetime.now(timezone.utc)
        opening = f"B{now:%H%M%S%f}"
        front_open(world, {"txnType": "79", "txnSubType": "00", "bizType": "000902", "channelType": "07", "orderId": opening,
                           "txnTime": beijing(now), "backUrl": world["callback"], "reqReserved": "ht_" + "b" * 24})
        bad = notifications(world, lambda n: n.get("orderId") == opening, 1)
        assert bad and not any(sdk.validate(n, world["middle"], world["root"]) for n in bad)
    finally:
        world["runtime"].reset()


# ---- the connector, UnionPay's published examples its counterpart ---------------------------------------

CA = sdk.make_ca()
MERCHANT = generate_rsa_key()
T0 = datetime(2026, 12, 31, 15, 59, 58, tzinfo=timezone.utc)  # 20261231235958 in Beijing: the trade is traced next year


class Gateway:
    """Answers as UnionPay's published examples are shaped, signed by the reference with the test CA."""

    def __init__(self, ca: sdk.AcpCA = CA) -> None:
        self.ca, self.requests, self.answers = ca, [], []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            fields = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
            assert sdk.verify_request(fields, MERCHANT.public_key()) and fields["certId"] == cert_id_of(MERCHANT)
            self.requests.append((request.url.path, fields))
            answer = self.answers.pop(0)(fields)
            return httpx.Response(200, text=sdk.to_q_string(answer if "signature" in answer else self.signed(answer)))
        return httpx.MockTransport(handle)

    def signed(self, fields: dict[str, str]) -> dict[str, str]:
        return sdk.sign_as_unionpay(fields, self.ca.signer_key, self.ca.signer)


def connector(gw: Gateway, **cfg) -> UnionPayChannel:
    config = UnionPayConfig("https://gateway.test.95516.com", MER_ID, cert_id_of(MERCHANT), MERCHANT, CA.root, CA.middle,
                            "https://yibao.example/notify", 5.0, **cfg)
    return UnionPayChannel(config, transport=gw.transport(), clock=lambda: T0)


COMMON = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "merId": MER_ID}


def consume_answer(req):  # 消费 应答 (back, token): respCode 00 = accepted
    return {**COMMON, "bizType": "000902", "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "01", "txnSubType": "01",
            "txnAmt": req["txnAmt"], "currencyCode": "156", "respCode": "00", "respMsg": "成功[0000000]"}


def query_answer(orig: str, **extra):
    def answer(req):  # 交易状态查询 应答
        return {**COMMON, "bizType": "000902", "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "01", "txnSubType": "01",
                "queryId": "771612311559580185028", "traceNo": "580185", "traceTime": "0101000005", "settleDate": "0101",
                "settleAmt": "12345", "settleCurrencyCode": "156", "txnAmt": "12345", "currencyCode": "156", "accNo": "6216***********0018",
                "origRespCode": orig, "origRespMsg": "成功[0000000]" if orig == "00" else "交易失败", "respCode": "00",
                "respMsg": "成功[0000000]", **extra}
    return answer


def run(coro):
    return asyncio.run(coro)


def test_the_connector_reads_a_payment_as_published_and_queries_with_the_original_txn_time():
    gw = Gateway()
    gw.answers = [consume_answer, query_answer("00"), query_answer("00")]
    ch = connector(gw)
    paid = run(ch.pay(PaymentRequest("T202612310001", 12345, "门诊缴费", "6235240000021234567", sent_at=T0)))
    assert (paid.status, paid.trade_no, paid.amount_fen) == ("succeeded", "771612311559580185028", 12345)
    assert paid.paid_at == datetime(2027, 1, 1, 0, 0, 5, tzinfo=CHINA)  # traceTime MMDDhhmmss, the year from txnTime
    consume, query = gw.requests[0][1], gw.requests[1][1]
    assert (consume["txnType"], consume["txnSubType"], consume["bizType"], consume["txnTime"]) == ("01", "01", "000902", "20261231235958")
    assert consume["tokenPayData"] == "{token=6235240000021234567&trId=62000000001}" and consume["backUrl"] == "https://yibao.example/notify"
    assert (query["txnType"], query["bizType"], query["txnTime"]) == ("00", "000000", "20261231235958")
    # Another process asks later: the platform passes the order's time, which is what names the order.
    later = connector(gw)
    assert run(later.query("T202612310001", sent_at=T0)).status == "succeeded"
    assert gw.requests[-1][1]["txnTime"] == "20261231235958"
    with pytest.raises(OutcomeUnknown):  # without it the order cannot be named: unknown, never "not found"
        run(connector(Gateway()).query("T202612310001"))


def test_pending_failed_missing_and_duplicate_answers():
    gw = Gateway()
    gw.answers = [query_answer("05"), query_answer("61"), lambda req: {**COMMON, "orderId": req["orderId"], "txnTime": req["txnTime"],
                                                                       "txnType": "00", "respCode": "34", "respMsg": "查无此交易"},
                  lambda req: {**consume_answer(req), "respCode": "12", "respMsg": "重复交易"}, query_answer("00"),
                  lambda req: {**query_answer("00")(req), "orderId": "T2"}]
    ch = connector(gw)
    assert run(ch.query("T1", sent_at=T0)).status == "processing"
    failed = run(ch.query("T1", sent_at=T0))
    assert (failed.status, failed.error_code) == ("failed", "61")
    with pytest.raises(NotFoundAtChannel):
        run(ch.query("T1", sent_at=T0))
    # 12 is a duplicate, not a refusal: the query says what became of the order.
    assert run(ch.pay(PaymentRequest("T1abcdefg", 12345, "门诊缴费", "6235240000021234567", sent_at=T0))).status == "succeeded"
    with pytest.raises(OutcomeUnknown):  # signed, but about another order: not an answer to this question
        run(ch.query("T1", sent_at=T0))


def refund_answer(req):
    return {**COMMON, "bizType": "000902", "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "04", "txnSubType": "00",
            "txnAmt": req["txnAmt"], "origQryId": req["origQryId"], "reqReserved": req["reqReserved"], "respCode": "00",
            "respMsg": "成功[0000000]"}


def refund_query(orig: str):
    def answer(req):
        return {**COMMON, "bizType": "000902", "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "04", "txnSubType": "00",
                "queryId": "771701011600000000001", "origQryId": "771612311559580185028", "txnAmt": "345", "reqReserved": "T202612310001",
                "origRespCode": orig, "origRespMsg": "", "respCode": "00", "respMsg": "成功[0000000]"}
    return answer


def test_a_refund_accepted_is_processing_until_its_query_says_done():
    gw = Gateway()
    gw.answers = [refund_answer, refund_query("05"), refund_query("00")]
    ch = connector(gw)
    req = RefundRequest("T202612310001", "R202701010001", 345, 12345, sent_at=T0, trade_no="771612311559580185028")
    accepted = run(ch.refund(req))
    assert (accepted.status, accepted.amount_fen) == ("processing", 345)  # respCode 00 means accepted, not refunded
    sent = gw.requests[0][1]
    assert (sent["txnType"], sent["origQryId"], sent["reqReserved"], sent["txnAmt"]) == ("04", "771612311559580185028", "T202612310001", "345")
    done = run(ch.query_refund("T202612310001", "R202701010001", sent_at=T0))
    assert (done.status, done.refund_id) == ("succeeded", "771701011600000000001")


def notification(fields: dict[str, str], ca: sdk.AcpCA = CA) -> bytes:
    return urlencode(sdk.sign_as_unionpay({**COMMON, **fields}, ca.signer_key, ca.signer)).encode()


PAID = {"bizType": "000902", "txnType": "01", "txnSubType": "01", "orderId": "T202612310001", "txnTime": "20261231235958",
        "txnAmt": "12345", "currencyCode": "156", "queryId": "771612311559580185028", "traceNo": "580185", "traceTime": "0101000005",
        "settleAmt": "12345", "settleCurrencyCode": "156", "settleDate": "0101", "accNo": "6216***********0018", "payCardType": "01",
        "respCode": "00", "respMsg": "成功[0000000]"}


def test_notifications_as_published_verify_and_forgeries_do_not():
    ch = connector(Gateway())
    n = ch.verify_notification({}, notification(PAID))
    assert (n.kind, n.status, n.out_trade_no, n.trade_no, n.amount_fen) == ("payment", "succeeded", "T202612310001", "771612311559580185028", 12345)
    r = ch.verify_notification({}, notification({**PAID, "txnType": "04", "txnSubType": "00", "orderId": "R202701010001", "txnAmt": "345",
                                                 "origQryId": "771612311559580185028", "queryId": "771701011600000000001",
                                                 "reqReserved": "T202612310001"}))
    assert (r.kind, r.out_trade_no, r.out_refund_no, r.amount_fen, r.status) == ("refund", "T202612310001", "R202701010001", 345, "succeeded")
    a = ch.verify_notification({}, notification({"bizType": "000902", "txnType": "79", "txnSubType": "00", "orderId": "K202612310001",
                                                 "txnTime": "20261231235958", "activateStatus": "1", "respCode": "00", "respMsg": "成功",
                                                 "tokenPayData": "{token=6235240000021234567&trId=62000000001&tokenLevel=40"
                                                                 "&tokenBegin=20261231235958&tokenEnd=20361231235958&tokenType=01}"}))
    assert (a.kind, a.status, a.data["subject"], a.data["token"]) == ("agreement", "active", "K202612310001", "6235240000021234567")
    assert ch.verify_notification({}, notification({**PAID, "respCode": "05"})).status == "processing"  # not decided: not a failure
    assert ch.verify_notification({}, notification({**PAID, "respCode": "61"})).status == "failed"
    assert ch.ack(True).status_code == 200 and ch.ack(False).status_code != 200
    good = notification(PAID)
    forgeries = [good.replace(b"txnAmt=12345", b"txnAmt=1"),  # altered
                 notification(PAID, sdk.make_ca()),  # a certificate from another root
                 notification(PAID, sdk.reissue(CA, signer_days=0)),  # expired, though UnionPay's middle issued it
                 notification(PAID, sdk.reissue(CA, owner="某某公司")),  # issued by the middle, but not to UnionPay
                 notification(PAID, sdk.reissue(CA, owner=sdk.TEST_CNNAME))]  # the test environment's owner, production config
    assert sdk.validate(dict(parse_qsl(good.decode())), CA.middle, CA.root)
    for body in forgeries:
        with pytest.raises(BadSignature):
            ch.verify_notification({}, body)
    test_env = sdk.make_ca(owner=sdk.TEST_CNNAME)
    test_connector = UnionPayChannel(UnionPayConfig("https://gateway.test.95516.com", MER_ID, cert_id_of(MERCHANT), MERCHANT, test_env.root,
                                                    test_env.middle, None, validate_cn_name=False), clock=lambda: T0)
    assert test_connector.verify_notification({}, notification(PAID, test_env)).status == "succeeded"


def test_an_answer_signed_by_a_stranger_is_not_believed():
    gw = Gateway(sdk.make_ca())
    gw.answers = [query_answer("00")]
    with pytest.raises(BadSignature):
        run(connector(gw).query("T1", sent_at=T0))


def test_token_query_and_delete_as_published():
    def opened(status):
        def answer(req):
            return {**COMMON, "bizType": "000902", "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "78", "txnSubType": "02",
                    "activateStatus": status, "accNo": "6216***********0018", "payCardType": "01", "respCode": "00", "respMsg": "成功[0000000]",
                    "tokenPayData": "{token=6235240000021234567&trId=62000000001&tokenLevel=40&tokenBegin=20261231235958"
                                    "&tokenEnd=20361231235958&tokenType=01}"}
        return answer

    def deleted(req):
        return {**COMMON, "bizType": "000902", "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "74", "txnSubType": "01",
                "tokenPayData": req["tokenPayData"], "respCode": "00", "respMsg": "成功[0000000]"}
    gw = Gateway()
    gw.answers = [opened("1"), opened("1"), deleted, opened("0")]
    ch = connector(gw)
    assert run(ch.query_agreement("K202612310001", sent_at=T0)).status == "active"
    ended = run(ch.terminate_agreement("K202612310001", sent_at=T0))
    assert (ended.status, ended.agreement_no) == ("terminated", "6235240000021234567")
    kinds = [(f["txnType"], f["txnSubType"], f["txnTime"]) for _, f in gw.requests]
    assert kinds[0] == ("78", "02", "20261231235958") and kinds[2][:2] == ("74", "01")
    assert gw.requests[2][1]["tokenPayData"] == "{token=6235240000021234567&trId=62000000001}"


# The ZM record as published: (width) of each field, one space between fields.
ZM = (3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15)


def zm_line(values: dict[int, str]) -> str:
    return " ".join((values.get(i, "").rjust(w, "0") if i == 6 else values.get(i, "").ljust(w)) for i, w in enumerate(ZM))


def file_answer(text: str):
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr(f"INN27010188ZM_{MER_ID}", text.encode("gbk"))
        zf.writestr(f"INN27010188ZME_{MER_ID}", b"")
    content = base64.b64encode(zlib.compress(raw.getvalue())).decode()

    def answer(req):
        return {**COMMON, "bizType": "000000", "txnType": "76", "txnSubType": "01", "txnTime": req["txnTime"], "settleDate": req["settleDate"],
                "fileType": "00", "fileName": f"{MER_ID}_20270101.zip", "fileContent": content, "respCode": "00", "respMsg": "成功[0000000]"}
    return answer


TRADE = {0: "S22", 1: "00049992", 2: "00049992", 3: "580185", 4: "0101000005", 5: "6216***********0018", 6: "12345", 9: "771612311559580185028",
         11: "T202612310001", 15: "D000000000000", 16: "C000000012345", 19: "01", 20: "01", 21: "000902", 27: MER_ID}
REFUND = {**TRADE, 0: "S30", 3: "000001", 4: "0101100000", 6: "345", 9: "771701011600000000001", 11: "R202701010001", 13: "580185",
          15: "C000000000000", 16: "D000000000345", 19: "04", 20: "00", 26: "771612311559580185028"}


def test_the_statement_is_the_zm_file_of_a_settle_date():
    gw = Gateway()
    gw.answers = [file_answer(zm_line(TRADE) + "\r\n" + zm_line(REFUND) + "\r\n")]
    st = run(connector(gw).statement(date(2027, 1, 1)))
    assert gw.requests[0][0] == "/" and (gw.requests[0][1]["settleDate"], gw.requests[0][1]["txnType"]) == ("0101", "76")
    assert (st.trade_count, st.trade_total_fen, st.refund_count, st.refund_total_fen) == (1, 12345, 1, 345)
    trade, refund = st.rows
    assert (trade.out_trade_no, trade.trade_no, trade.at) == ("T202612310001", "771612311559580185028", datetime(2027, 1, 1, 0, 0, 5, tzinfo=CHINA))
    assert (refund.out_trade_no, refund.out_refund_no, refund.refund_id) == ("T202612310001", "R202701010001", "771701011600000000001")
    for bad in (zm_line(TRADE)[:-5], zm_line({**TRADE, 0: "X99"}), zm_line({**TRADE, 27: "999999999999999"}),
                zm_line({**TRADE, 6: "12a45"}), zm_line({**TRADE, 16: "000000012345"})):
        gw.answers = [file_answer(bad + "\r\n")]
        with pytest.raises(StatementError):
            run(connector(gw).statement(date(2027, 1, 1)))
    gw.answers = [lambda req: {**file_answer("")(req), "fileContent": base64.b64encode(b"not deflated").decode()}]
    with pytest.raises(StatementError):
        run(connector(gw).statement(date(2027, 1, 1)))


# ---- the platform through the faithful connector (both databases) -----------------------------------------

def test_the_platform_sends_each_order_with_its_own_time_and_asks_with_it_again(db, keyring, unionpay, clock):
    """A payment and a refund through the platform's services: the order goes out with its recorded time as txnTime,
    so any process can ask about it later; a refund whose answer was lost is found again by recovery with its own."""
    from fastapi.testclient import TestClient

    from tests.support.api import his, key
    from tests.support.payments import LINES, payment_world
    from yibao.app import create_app
    from yibao.services import Context
    from yibao.services.payments import orders, recovery

    pw = payment_world(db, keyring, unionpay, limit=50000, balance=20000, timeout_ms=int(CLIENT_TIMEOUT_S * 1000))
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:
        r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                        headers={**his(pw), **key()})
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        order = db.run(lambda c: orders.require(c, r.json()["payment_id"]), write=False)
        elsewhere = UnionPayChannel(unionpay.channel.config)  # another process: it never sent this order
        assert run(elsewhere.query(order.id, sent_at=order.created_at)).trade_no == order.trade_no
        with pytest.raises(NotFoundAtChannel):  # the same orderId at another txnTime is another (unknown) order
            run(elsewhere.query(order.id, sent_at=order.created_at + timedelta(seconds=1)))

        unionpay.runtime.set_knobs(server_error_rate=1.0)  # 06 system busy: nothing done, the refund's outcome unknown
        refund = client.post(f"/api/v1/his/payments/{order.id}/refunds", json={"scope": "cash"}, headers={**his(pw), **key()})
        assert refund.status_code == 202 and refund.json()["status"] == "unknown", refund.text
        unionpay.runtime.set_knobs(server_error_rate=0.0)
        clock.advance(minutes=2)
        report = asyncio.run(recovery.recover(Context.for_database(db, keyring)))
        assert report.refunds == {refund.json()["refund_id"]: "succeeded"}
        books = unionpay.runtime.books
        assert books.refunds[refund.json()["refund_id"]].amount_fen == order.cash_pay and books.trades[order.id].refunded_fen == order.cash_pay


def test_a_resend_without_a_time_is_the_same_order_and_a_duplicate_of_an_unknown_time_stays_unknown():
    gw = Gateway()
    missing = lambda req: {**COMMON, "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "00", "respCode": "34",  # noqa: E731
                           "respMsg": "查无此交易"}
    gw.answers = [consume_answer, query_answer("00"), lambda req: {**consume_answer(req), "respCode": "12"}, query_answer("00"),
                  lambda req: {**consume_answer(req), "respCode": "12"}, missing]
    now = [T0]
    ch = UnionPayChannel(connector(gw).config, transport=gw.transport(), clock=lambda: now[0])
    req = PaymentRequest("T202612310009", 12345, "门诊缴费", "6235240000021234567")
    run(ch.pay(req))
    now[0] = T0 + timedelta(seconds=5)
    assert run(ch.pay(req)).status == "succeeded"  # sent again with the first txnTime: a duplicate of itself, found by the query
    assert {f["txnTime"] for _, f in gw.requests} == {"20261231235958"}
    with pytest.raises(OutcomeUnknown):  # a duplicate we cannot name: neither paid nor failed as far as we know
        run(connector(gw).pay(PaymentRequest("T202612310009", 12345, "门诊缴费", "6235240000021234567", sent_at=T0 + timedelta(hours=1))))


def test_after_an_accepted_consume_or_refund_only_the_orders_own_state_decides():
    """00 means accepted: a query then refused (respCode 10, 31, 01), not yet visible (34), about another amount, or
    answered with the query's own txnType 00 — none of these may turn into a decline (the platform would void a payment
    UnionPay goes on to collect, or fail a refund it makes). Only origRespCode decides."""
    refusals = [lambda req: {**COMMON, "orderId": req["orderId"], "txnTime": req["txnTime"], "txnType": "00", "respCode": code,
                             "respMsg": "拒绝"} for code in ("10", "31", "01", "34")]
    for answer in [*refusals, query_answer("00", txnAmt="12346")]:
        gw = Gateway()
        gw.answers = [consume_answer, answer]
        with pytest.raises(OutcomeUnknown):
            run(connector(gw).pay(PaymentRequest("T202612310001", 12345, "门诊缴费", "6235240000021234567", sent_at=T0)))
    gw = Gateway()
    gw.answers = [consume_answer, query_answer("00", txnType="00")]  # the query's own type: still this order's answer
    assert run(connector(gw).pay(PaymentRequest("T202612310001", 12345, "门诊缴费", "6235240000021234567", sent_at=T0))).status == "succeeded"
    gw = Gateway()
    gw.answers = [consume_answer, query_answer("61")]  # the order's own signed outcome: declined
    with pytest.raises(Declined):
        run(connector(gw).pay(PaymentRequest("T202612310001", 12345, "门诊缴费", "6235240000021234567", sent_at=T0)))
    req = RefundRequest("T202612310001", "R202701010001", 345, 12345, sent_at=T0, trade_no="771612311559580185028")
    for answer in refusals:
        gw = Gateway()
        gw.answers = [refund_answer, answer]
        with pytest.raises(OutcomeUnknown):
            run(connector(gw).refund(req))
