"""SANDBOX unionpay: UnionPay's online gateway (全渠道 ACP 5.1.0) as a real HTTP service. Not UnionPay.

It speaks ACP 5.1.0 as published (signMethod 01): form posts in; raw `k=v&…` answers out, signed over the hex
SHA-256 of the sorted string, with its signing certificate in `signPubKeyCert` — issued by the sandbox's own
root → middle CA, whose two certificates the platform is configured with in place of UnionPay's. Requests are
verified by `certId` (the merchant certificate's serial) against the one merchant key it knows.

- `POST /gateway/api/backTransReq.do`: consume 01/01 and refund 04/00 (answer 00 = accepted; the result by
  notification to `backUrl` and by query), token open query 78/02, token delete 74/01; a repeated orderId is 12.
- `POST /gateway/api/queryTrans.do`: 00/00 by orderId **and** the original txnTime (else 34): `origRespCode`.
- `POST /` (the file-transfer host's root): 76, `settleDate` MMDD → `fileContent` = base64(deflate(ZIP of the ZM file)).
- `POST /gateway/api/frontTransReq.do`: the front-end token opening 79/00, posted by the holder's browser (an
  auto-submitted form the merchant signed): UnionPay's opening page (signing_page.py); the holder confirms or
  declines there, then is sent to `frontUrl`; an opened token is notified (79) to `backUrl` and queryable (78).

    yibao sandbox unionpay --port 8713 --callback http://127.0.0.1:8000/api/v1/channels/unionpay/notify
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from yibao.channels.crypto import generate_rsa_key, load_or_create_key, public_pem, rsa_sign, rsa_verify
from yibao.channels.unionpay.transformers import (
    CONSUME_CODE,
    REFUND_CODE,
    UNIONPAY_CN,
    answer_text,
    cert_id_of,
    digest_hex,
    zip_file_content,
    zm_record,
)
from yibao.channels.wire import CHINA, china_time, compact_time, parse_compact_time
from yibao.crypto.files import create_private
from yibao.sandbox.channels import admin, signing_page
from yibao.sandbox.channels.core import AgreementRec, Books, Event, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "ACP 5.1.0 signMethod 01: SHA256withRSA over hex(SHA-256(sorted k=v)); answers carry signPubKeyCert (root → middle → signing)"
TITLE = "yibao SANDBOX unionpay (ACP 5.1.0 online gateway; not UnionPay)"
TR_ID = "62000000001"
# The sandbox's refusals → respCodes of the published table (as we read it; the 3x/6x choices are our guesses).
RESP_CODES = {"ORDER_NOT_EXIST": "35", "TRADE_NOT_PAID": "35", "REFUND_AMOUNT_EXCEEDS": "36", "NOT_ENOUGH": "61",
              "EXCEEDS_PASSWORD_FREE_LIMIT": "33", "AGREEMENT_NOT_ACTIVE": "40", "AGREEMENT_NOT_EXIST": "34", "REFUND_NOT_EXIST": "34",
              "REFUND_DECLINED": "01", "USER_NOT_VERIFIED": "66", "SYSTEM_ERROR": "06", "INVALID_AMOUNT": "10", "UNSUPPORTED": "32",
              "OUT_AGREEMENT_NO_USED": "12"}
FORM = "application/x-www-form-urlencoded;charset=UTF-8"


# ---- the sandbox's certificate authority ---------------------------------------------------------

@dataclass
class SandboxCA:
    """Root → middle → UnionPay-signing certificate, as UnionPay's acp_*_root.cer / acp_*_middle.cer and the
    certificate it puts in every answer. The signing CN follows UnionPay's `…@…@<owner>@…` form; the owner is
    UnionPay's production name (trust comes from the configured root, not the name), or — ``owner=TEST_ENV_CN`` —
    the test environment's `00040000:SIGN`, which the SDK accepts only when ifValidateCNName is off."""

    key: RSAPrivateKey = field(repr=False)
    cert: x509.Certificate
    middle: x509.Certificate
    root: x509.Certificate

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(cn: str, ou: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "yibao SANDBOX CA"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(subject: x509.Name, key: RSAPublicKey, issuer: x509.Name, issuer_key: RSAPrivateKey, *, ca: bool, serial: int,
          not_before: datetime, not_after: datetime) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key).serial_number(serial)
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def make_ca(sign_key: RSAPrivateKey, *, now: datetime | None = None, owner: str = UNIONPAY_CN) -> SandboxCA:
    now = now or datetime.now(timezone.utc)
    root_key, middle_key = generate_rsa_key(), generate_rsa_key()
    root_name, middle_name = _name("yibao SANDBOX Root", "Root"), _name("yibao SANDBOX Middle", "Middle")
    start, end = now - timedelta(days=1), now + timedelta(days=3650)
    root = issue(root_name, root_key.public_key(), root_name, root_key, ca=True, serial=1, not_before=start, not_after=end)
    middle = issue(middle_name, middle_key.public_key(), root_name, root_key, ca=True, serial=2, not_before=start, not_after=end)
    signer = issue(_name(f"041@Z2026SANDBOX@{owner}@00000001", "Enterprises"), sign_key.public_key(), middle_name, middle_key, ca=False,
                   serial=int.from_bytes(hashlib.sha256(public_pem(sign_key)).digest()[:8], "big"), not_before=start,
                   not_after=now + timedelta(days=730))
    return SandboxCA(sign_key, signer, middle, root)


def load_or_create_ca(key_dir: Path | None, sign_key: RSAPrivateKey) -> SandboxCA:
    """A fresh CA, or — with ``key_dir`` — the one kept there (`unionpay-{root,middle,sign}-cert.pem`), made once."""
    if key_dir is None:
        return make_ca(sign_key)
    paths = [key_dir / f"unionpay-{n}-cert.pem" for n in ("sign", "middle", "root")]
    if not all(p.exists() for p in paths):
        ca = make_ca(sign_key)
        for p, c in zip(paths, (ca.cert, ca.middle, ca.root)):
            create_private(p, c.public_bytes(serialization.Encoding.PEM))
    cert, middle, root = (x509.load_pem_x509_certificate(p.read_bytes()) for p in paths)
    return SandboxCA(sign_key, cert, middle, root)


def ca_for(key_dir: Path | None) -> SandboxCA:
    key = load_or_create_key(key_dir / "unionpay-sandbox-key.pem") if key_dir else generate_rsa_key()
    return load_or_create_ca(key_dir, key)


@dataclass
class UnionPaySandboxConfig:
    ca: SandboxCA = field(repr=False)
    mer_id: str
    merchant_key: RSAPublicKey = field(repr=False)
    callback_url: str | None = None
    notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS
    seed: int | None = None
    single_limit_fen: int = 50_000_00  # the token's per-payment limit, shown on the opening page
    merchant_name: str = "医保便捷支付平台（沙箱商户）"

    @property
    def key(self) -> RSAPrivateKey:
        return self.ca.key


def query_id(rec_id: str) -> str:
    """The queryId UnionPay names a trade or refund by: the end of its number."""
    return rec_id[-21:]


# ---- the statement file ----------------------------------------------------------------------------

def _trace(query_id: str) -> str:
    return query_id[-6:].rjust(6, "0")


def render_statement(trades: list[TradeRec], refunds: list[RefundRec], mer_id: str) -> str:
    """The day's ZM records (consume S22, refund S30), in time order; GBK, CRLF-free lines."""
    rows: list[tuple[datetime, str]] = []
    for t in trades:
        at = t.paid_at or t.created_at
        rows.append((at, zm_record({"交易代码": CONSUME_CODE, "代理机构标识码": "00049992", "发送机构标识码": "00049992",
                                    "系统跟踪号": _trace(t.trade_no), "交易传输时间": f"{china_time(at):%m%d%H%M%S}",
                                    "帐号": "6216***********0018", "交易金额": str(t.amount_fen), "商户类别": "8062", "终端类型": "07",
                                    "查询流水号": t.trade_no, "商户订单号": t.out_trade_no, "支付卡类型": "01", "商户手续费": "D000000000000",
                                    "结算金额": f"C{t.amount_fen:012d}", "交易类型": "01", "交易子类": "01", "业务类型": "000902",
                                    "商户代码": mer_id})))
    for r in refunds:
        rows.append((r.at, zm_record({"交易代码": REFUND_CODE, "代理机构标识码": "00049992", "发送机构标识码": "00049992",
                                      "系统跟踪号": _trace(r.refund_id), "交易传输时间": f"{china_time(r.at):%m%d%H%M%S}",
                                      "帐号": "6216***********0018", "交易金额": str(r.amount_fen), "商户类别": "8062", "终端类型": "07",
                                      "查询流水号": r.refund_id, "商户订单号": r.out_refund_no, "支付卡类型": "01",
                                      "原始交易的系统跟踪号": _trace(r.trade_no), "商户手续费": "C000000000000",
                                      "结算金额": f"D{r.amount_fen:012d}", "交易类型": "04", "交易子类": "00", "业务类型": "000902",
                                      "原交易查询流水号": r.trade_no, "商户代码": mer_id})))
    return "".join(text + "\r\n" for _, text in sorted(rows, key=lambda x: x[0]))


def day_of_settle_date(mmdd: str, today: date) -> date:
    """MMDD → the latest such day not after today."""
    if len(mmdd) != 4 or not mmdd.isdigit():
        raise ValueError(mmdd)
    for year in (today.year, today.year - 1):
        try:
            d = date(year, int(mmdd[:2]), int(mmdd[2:]))
        except ValueError:
            continue
        if d <= today:
            return d
    raise ValueError(mmdd)


# ---- the service -------------------------------------------------------------------------------------

def create_app(config: UnionPaySandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Answers are signed by this sandbox's own certificate; nothing here moves money.")
    books = Books("UP", seed=config.seed, clock=clock, trade_key=query_id)  # a refund names its trade by queryId
    ca = config.ca
    merchant_cert_id = cert_id_of(config.merchant_key)
    txn_times: dict[tuple[str, str], str] = {}  # (kind, orderId) → the txnTime it came with
    reserved: dict[str, str] = {}  # a refund's reqReserved, echoed

    def signed(params: dict[str, str], *, tamper: bool = False) -> dict[str, str]:
        data = {k: v for k, v in params.items() if k != "signature"}
        data["signPubKeyCert"] = ca.cert_pem
        digest = digest_hex(data)
        return {**data, "signature": rsa_sign(ca.key, b"tampered" + digest if tamper else digest)}

    def answer(req: dict[str, str], extra: dict[str, str], code: str = "00", msg: str = "成功[0000000]") -> Response:
        base = {k: req[k] for k in ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType", "merId",
                                    "orderId", "txnTime") if k in req}
        return Response(answer_text(signed({**base, **extra, "respCode": code, "respMsg": msg})).encode(), media_type="text/plain;charset=UTF-8")

    def trace_fields(at: datetime, qid: str) -> dict[str, str]:
        c = china_time(at)
        return {"traceNo": _trace(qid), "traceTime": f"{c:%m%d%H%M%S}", "settleDate": f"{c:%m%d}"}

    def trade_view(t: TradeRec) -> dict[str, str]:
        orig = {"succeeded": "00", "processing": "05", "failed": RESP_CODES.get(t.error_code or "", "01")}[t.status]
        view = {"txnType": "01", "txnSubType": "01", "bizType": "000902", "orderId": t.out_trade_no,
                "txnTime": txn_times.get(("trade", t.out_trade_no), compact_time(t.created_at)), "queryId": query_id(t.trade_no),
                "txnAmt": str(t.amount_fen), "currencyCode": "156", "origRespCode": orig,
                "origRespMsg": "成功[0000000]" if orig == "00" else f"{t.error_code or 'in process'}"}
        if t.paid_at:
            view |= trace_fields(t.paid_at, t.trade_no) | {"settleAmt": str(t.amount_fen), "settleCurrencyCode": "156"}
        return view

    def refund_view(r: RefundRec) -> dict[str, str]:
        orig = "00" if r.status == "succeeded" else RESP_CODES.get(r.error_code or "", "01")
        return {"txnType": "04", "txnSubType": "00", "bizType": "000902", "orderId": r.out_refund_no,
                "txnTime": txn_times.get(("refund", r.out_refund_no), compact_time(r.at)), "queryId": query_id(r.refund_id),
                "origQryId": query_id(r.trade_no), "txnAmt": str(r.amount_fen), "currencyCode": "156", "origRespCode": orig,
                "origRespMsg": "成功[0000000]" if orig == "00" else (r.error_code or "failed"), "reqReserved": reserved.get(r.out_refund_no, ""),
                **trace_fields(r.at, r.refund_id)}

    def token_view(a: AgreementRec) -> dict[str, str]:
        c = china_time(a.at)
        return {"orderId": a.out_agreement_no, "txnTime": txn_times.get(("open", a.out_agreement_no), compact_time(a.at)),
                "activateStatus": "1" if a.status == "active" else "0", "accNo": "6216***********0018", "payCardType": "01",
                "tokenPayData": "{token=" + a.agreement_no + "&trId=" + TR_ID + "&tokenLevel=40&tokenBegin=" + f"{c:%Y%m%d%H%M%S}"
                                + "&tokenEnd=" + f"{c + timedelta(days=3650):%Y%m%d%H%M%S}" + "&tokenType=01}"}

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        base = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "merId": config.mer_id, "accessType": "0"}
        if event.kind == "payment":
            v = trade_view(rec)
            params = {**base, **{k: x for k, x in v.items() if not k.startswith("orig")}, "respCode": v["origRespCode"],
                      "respMsg": v["origRespMsg"]}
        elif event.kind == "refund":
            v = refund_view(rec)
            params = {**base, **{k: x for k, x in v.items() if k not in ("origRespCode", "origRespMsg")}, "respCode": v["origRespCode"],
                      "respMsg": v["origRespMsg"]}
        else:  # a token opened (79, as after the holder's page) or deleted (74: our guess at its notice)
            v = token_view(rec)
            params = {**base, "txnType": "79" if rec.status == "active" else "74", "txnSubType": "00" if rec.status == "active" else "01",
                      "bizType": "000902", **v, "respCode": "00", "respMsg": "成功[0000000]"}
        params = {k: x for k, x in params.items() if x != ""}
        return {"Content-Type": FORM}, urlencode(signed(params, tamper=tamper)).encode()

    notifier = Notifier(books, render, lambda resp: resp.status_code == 200, callback_url=config.callback_url,
                        delays_ms=config.notify_delays_ms)
    admin.install(app, admin.Runtime(SandboxInfo("unionpay", TITLE, SCHEME, {"merId": config.mer_id, "signCertId": str(ca.cert.serial_number),
                                                                            "root_cert_pem": ca.root.public_bytes(serialization.Encoding.PEM).decode(),
                                                                            "middle_cert_pem": ca.middle.public_bytes(serialization.Encoding.PEM).decode()}),
                                     books, notifier, public_pem(ca.key)))

    async def admitted(request: Request) -> dict[str, str] | Response:
        """A request the merchant signed: its certId names the merchant's certificate, its signature verifies."""
        try:
            params = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        try:
            parse_compact_time(params.get("txnTime", ""))
            well_formed = params.get("version") == "5.1.0" and params.get("signMethod") == "01"
        except ValueError:
            well_formed = False
        if not well_formed:
            return answer(params, {}, "10", "报文格式错误")
        if (params.get("merId") != config.mer_id or params.get("certId") != merchant_cert_id
                or not rsa_verify(config.merchant_key, digest_hex(params), params.get("signature"))):
            return answer(params, {}, "11", "验证签名失败")
        return params

    def amount(params: dict[str, str]) -> int:
        text = params.get("txnAmt", "")
        if not text.isdigit() or text.startswith("0") or len(text) > 12:
            raise SandboxRefusal("INVALID_AMOUNT", "txnAmt must be a positive amount in fen")
        return int(text)

    def refused(params: dict[str, str], exc: SandboxRefusal) -> Response:
        return answer(params, {}, RESP_CODES.get(exc.code, "01"), f"{exc.code}: {exc.message}")

    def token_of(params: dict[str, str]) -> str:
        text = params.get("tokenPayData", "")
        if not (text.startswith("{") and text.endswith("}")):
            return ""
        return dict(parse_qsl(text[1:-1])).get("token", "")

    def by_order_and_time(kind: str, order_id: str, txn_time: str) -> bool:
        return txn_times.get((kind, order_id)) == txn_time

    @app.post("/gateway/api/backTransReq.do", summary="Back-end transactions: consume 01, refund 04, token open query 78/02, token delete 74/01")
    async def back(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return params
        txn, order_id = params.get("txnType"), params.get("orderId", "")
        try:
            await books.before_call()
            if txn == "01":
                if ("trade", order_id) in txn_times:
                    return answer(params, {}, "12", "重复交易")
                fen = amount(params)
                txn_times[("trade", order_id)] = params["txnTime"]
                t = books.pay(order_id, fen, params.get("orderDesc", ""), token_of(params), params.get("backUrl"))
                if t.status == "failed":
                    raise SandboxRefusal(t.error_code or "PAYMENT_FAIL", "the payment failed")
                extra = {"txnAmt": str(t.amount_fen), "currencyCode": "156"}
            elif txn == "04":
                if ("refund", order_id) in txn_times:
                    return answer(params, {}, "12", "重复交易")
                with books.lock:
                    trade = books.trades.by_trade_no(params.get("origQryId"))
                if trade is None:
                    raise SandboxRefusal("ORDER_NOT_EXIST", "no trade with this origQryId")
                r = books.refund(trade.out_trade_no, order_id, amount(params), params.get("backUrl"))
                txn_times[("refund", order_id)] = params["txnTime"]
                reserved[order_id] = params.get("reqReserved", "")
                if r.status == "failed":
                    raise SandboxRefusal(r.error_code or "REFUND_FAIL", "the refund failed")
                extra = {"txnAmt": str(r.amount_fen), "origQryId": query_id(r.trade_no), "reqReserved": reserved[order_id]}
            elif txn == "78" and params.get("txnSubType") == "02":
                if not by_order_and_time("open", order_id, params["txnTime"]):
                    raise SandboxRefusal("AGREEMENT_NOT_EXIST", "no token opening with this orderId and txnTime")
                extra = token_view(books.agreement(order_id))
            elif txn == "74" and params.get("txnSubType") == "01":
                rec = books.agreement_by_no(token_of(params))
                if rec is None:
                    raise SandboxRefusal("AGREEMENT_NOT_EXIST", "no such token")
                books.terminate_agreement(rec.out_agreement_no)
                extra = {"tokenPayData": params.get("tokenPayData", "")}
            else:
                raise SandboxRefusal("UNSUPPORTED", f"txnType {txn!r}/{params.get('txnSubType')!r} is not offered here")
            await books.after_effect()
            return answer(params, {k: v for k, v in extra.items() if v != ""})
        except SandboxRefusal as exc:
            return refused(params, exc)

    @app.post("/gateway/api/queryTrans.do", summary="交易状态查询 (00): by orderId and the original txnTime; origRespCode")
    async def query(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return params
        try:
            await books.before_call()
            order_id, txn_time = params.get("orderId", ""), params.get("txnTime", "")
            if by_order_and_time("trade", order_id, txn_time):
                try:
                    extra = trade_view(books.trade(order_id))
                except SandboxRefusal as exc:
                    if exc.code != "ORDER_NOT_EXIST":
                        raise
                    return answer(params, {}, "34", "查无此交易")  # booked but not visible yet (visible_delay_ms)
            elif by_order_and_time("refund", order_id, txn_time):
                extra = refund_view(books.refund_of(order_id))
            else:
                return answer(params, {}, "34", "查无此交易")
            base = {k: params[k] for k in ("version", "encoding", "signMethod", "accessType", "merId") if k in params}
            body = {**base, **{k: v for k, v in extra.items() if v != ""}, "respCode": "00", "respMsg": "成功[0000000]"}
            return Response(answer_text(signed(body)).encode(), media_type="text/plain;charset=UTF-8")
        except SandboxRefusal as exc:
            return refused(params, exc)

    @app.post("/", summary="File transfer (76): the merchant's statement of a settleDate (MMDD)")
    async def file(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return params
        if params.get("txnType") != "76" or params.get("fileType") != "00":
            return answer(params, {}, "32", "only fileType 00 (the merchant's statement) is offered here")
        try:
            day = day_of_settle_date(params.get("settleDate", ""), china_time(books.now()).date())
        except ValueError:
            return answer(params, {}, "10", "settleDate must be MMDD")
        text = render_statement(*books.statement(day), config.mer_id)
        zm = f"INN{day:%y%m%d}88ZM_{config.mer_id}"
        content = zip_file_content({zm: text.encode("gbk"), f"INN{day:%y%m%d}88ZME_{config.mer_id}": b""})
        return answer(params, {"settleDate": params["settleDate"], "fileType": "00", "fileName": f"{config.mer_id}_{day:%Y%m%d}.zip",
                               "fileContent": content})

    signing_page.install(app, books, institution="银联 UnionPay")

    @app.post("/gateway/api/frontTransReq.do", summary="Front-end transactions from the holder's browser: token opening 79/00")
    async def front(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return HTMLResponse(f"<!doctype html><p>请求有误 Bad request: {html.escape(params.body.decode('utf-8', 'replace'))}</p>",
                                status_code=400)
        if params.get("txnType") != "79" or params.get("txnSubType") != "00" or params.get("channelType") != "07":
            return HTMLResponse("<!doctype html><p>前台交易仅支持开通 (79/00, channelType 07) Only token opening here</p>", status_code=400)
        try:
            # SANDBOX: the holder is who the merchant's reqReserved names; at UnionPay, whoever enters their card on the page.
            session = books.open_signing(params.get("orderId", ""), params.get("reqReserved", ""), config.single_limit_fen,
                                         merchant=config.merchant_name, display_name=params.get("reqReserved", "")[:8] + "…",
                                         return_url=params.get("frontUrl") or None, notify_url=params.get("backUrl") or None)
        except SandboxRefusal as exc:
            return HTMLResponse(f"<!doctype html><p>{html.escape(exc.code)}: {html.escape(exc.message)}</p>", status_code=400)
        txn_times.setdefault(("open", session.out_agreement_no), params["txnTime"])
        return HTMLResponse(signing_page.render(session, "银联 UnionPay", action=f"../..{signing_page.PATH}/{session.id}"))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": datetime.now(CHINA).isoformat()}

    return app
