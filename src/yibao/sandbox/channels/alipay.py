"""SANDBOX alipay: an Alipay-like payment institution as a real HTTP service. Not Alipay.

One gateway (`POST /gateway.do`, form-encoded common parameters + `biz_content` JSON) checks each
request's RSA2 signature (SHA256withRSA over the ASCII-sorted `k=v&…` of all non-empty parameters
but `sign`) with the app's public key; answers `{"<method>_response": {...}, "sign": ...}` signed
with the sandbox's key over the `_response` text; posts notifications as forms signed over the
sorted string without `sign`/`sign_type`, resent until the platform answers `success`.
Amounts are yuan strings. Statements: a download URL, good once, to a `#`-commented CSV.

    yibao sandbox alipay --port 8712 --callback http://127.0.0.1:8000/api/v1/channels/alipay/notify
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.crypto import canonical_kv, key_serial, public_pem, rsa_sign, rsa_verify
from yibao.channels.wire import CHINA, WireError, fen_to_yuan, parse_plain_time, plain_time, yuan_to_fen
from yibao.sandbox.channels import admin
from yibao.sandbox.channels.core import AgreementRec, Books, Event, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "RSA2 (SHA256withRSA over sorted k=v)"
TITLE = "yibao SANDBOX alipay (Alipay-like; not a real payment institution)"


@dataclass
class AlipaySandboxConfig:
    key: RSAPrivateKey = field(repr=False)  # the sandbox's own key
    app_id: str
    app_key: RSAPublicKey = field(repr=False)  # the platform app's public key
    callback_url: str | None = None
    notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS
    seed: int | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgreementSignIn(_Strict):
    personal_product_code: str = Field(pattern="^GENERAL_WITHHOLDING_P$")
    external_agreement_no: str = Field(min_length=1, max_length=32)
    alipay_open_id: str = Field(min_length=16, max_length=64)
    single_limit: str


class AgreementRef(_Strict):
    external_agreement_no: str = Field(min_length=1, max_length=32)


class AgreementParams(_Strict):
    agreement_no: str = Field(min_length=1, max_length=64)


class PayIn(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=64)
    total_amount: str
    subject: str = Field(min_length=1, max_length=256)
    product_code: str = Field(pattern="^GENERAL_WITHHOLDING$")
    agreement_params: AgreementParams


class TradeRef(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=64)


class RefundIn(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=64)
    out_request_no: str = Field(min_length=1, max_length=64)
    refund_amount: str
    refund_reason: str | None = Field(None, max_length=256)


class RefundRef(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=64)
    out_request_no: str = Field(min_length=1, max_length=64)


class BillIn(_Strict):
    bill_type: str = Field(pattern="^trade$")
    bill_date: str


def amount(text: str) -> int:
    try:
        fen = yuan_to_fen(text)
    except WireError:
        raise SandboxRefusal("INVALID_PARAMETER", f"not an amount in yuan with two decimals: {text!r}") from None
    if fen <= 0:
        raise SandboxRefusal("INVALID_PARAMETER", "the amount must be positive")
    return fen


def agreement_view(a: AgreementRec) -> dict[str, Any]:
    return {"external_agreement_no": a.out_agreement_no, "agreement_no": a.agreement_no, "status": "NORMAL" if a.status == "active" else "STOP",
            "single_limit": fen_to_yuan(a.limit_fen), "personal_product_code": "GENERAL_WITHHOLDING_P", "sign_time": plain_time(a.at)}


def trade_view(t: TradeRec) -> dict[str, Any]:
    if t.status == "succeeded":
        status = "TRADE_CLOSED" if t.refunded_fen == t.amount_fen else "TRADE_SUCCESS"
    else:
        status = {"processing": "WAIT_BUYER_PAY", "failed": "TRADE_CLOSED"}[t.status]
    view = {"out_trade_no": t.out_trade_no, "trade_no": t.trade_no, "trade_status": status, "total_amount": fen_to_yuan(t.amount_fen)}
    if t.paid_at:
        view["send_pay_date"] = plain_time(t.paid_at)
    if t.refunded_fen:
        view["refund_fee"] = fen_to_yuan(t.refunded_fen)
    if t.error_code:
        view["fail_reason"] = t.error_code
    return view


def render_statement(cfg: AlipaySandboxConfig, day: date, trades: list[TradeRec], refunds: list[RefundRec]) -> bytes:
    out = io.StringIO()
    out.write(f"#支付宝业务明细查询（沙箱）\n#账号：[{cfg.app_id}]\n#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day + timedelta(days=1):%Y年%m月%d日} 00:00:00]\n")
    out.write("#-----------------------------------------业务明细列表----------------------------------------\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "订单金额（元）", "商家实收（元）", "退款批次号/请求号"])
    desc = {t.out_trade_no: t.description for t in trades}
    for t in trades:
        w.writerow([t.trade_no, t.out_trade_no, "交易", t.description, plain_time(t.created_at), plain_time(t.paid_at),  # type: ignore[arg-type]
                    fen_to_yuan(t.amount_fen), fen_to_yuan(t.amount_fen), ""])
    for r in refunds:
        w.writerow([r.trade_no, r.out_trade_no, "退款", desc.get(r.out_trade_no, ""), plain_time(r.at), plain_time(r.at),
                    "-" + fen_to_yuan(r.amount_fen), "-" + fen_to_yuan(r.amount_fen), r.out_refund_no])
    out.write("#-----------------------------------------业务明细列表结束------------------------------------\n")
    out.write(f"#合计：交易{len(trades)}笔，金额{fen_to_yuan(sum(t.amount_fen for t in trades))}元；"
              f"退款{len(refunds)}笔，金额{fen_to_yuan(sum(r.amount_fen for r in refunds))}元\n")
    return out.getvalue().encode("utf-8")


def create_app(config: AlipaySandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Answers are signed by this sandbox's own key; nothing here moves money.")
    books = Books("AP", seed=config.seed, clock=clock)
    bills: dict[str, bytes] = {}

    def answer(method: str, payload: dict[str, Any]) -> Response:
        node = "error_response" if payload.get("code") not in ("10000", "10003") and method == "" else method.replace(".", "_") + "_response"
        inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        sign = rsa_sign(config.key, inner.encode())
        body = '{"' + node + '":' + inner + ',"sign":"' + sign + '"}'
        return Response(body.encode(), media_type="application/json;charset=utf-8")

    def refusal(method: str, exc: SandboxRefusal) -> Response:
        if exc.status >= 500:
            return answer(method, {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error",
                                   "sub_msg": exc.message})
        sub = {"ORDER_NOT_EXIST": "ACQ.TRADE_NOT_EXIST", "REFUND_NOT_EXIST": "ACQ.REFUND_NOT_EXIST",
               "AGREEMENT_NOT_EXIST": "AGREEMENT_NOT_EXIST"}.get(exc.code, "ACQ." + exc.code)
        return answer(method, {"code": "40004", "msg": "Business Failed", "sub_code": sub, "sub_msg": exc.message})

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        params = {"notify_id": event.event_id, "notify_time": plain_time(books.now()), "app_id": config.app_id, "charset": "utf-8",
                  "version": "1.0", "sign_type": "RSA2"}
        if event.kind == "payment":
            params.update(notify_type="trade_status_sync", **{k: v for k, v in trade_view(rec).items() if k != "refund_fee"})
            if rec.paid_at:
                params["gmt_payment"] = plain_time(rec.paid_at)
        elif event.kind == "refund":
            trade = books.trades[rec.out_trade_no]
            params.update(notify_type="trade_status_sync", out_trade_no=rec.out_trade_no, trade_no=rec.trade_no,
                          trade_status="TRADE_CLOSED" if trade.refunded_fen == trade.amount_fen else "TRADE_SUCCESS",
                          total_amount=fen_to_yuan(trade.amount_fen), out_biz_no=rec.out_refund_no, refund_fee=fen_to_yuan(trade.refunded_fen),
                          send_back_fee=fen_to_yuan(rec.amount_fen), gmt_refund=plain_time(rec.at),
                          refund_status="REFUND_SUCCESS" if rec.status == "succeeded" else "REFUND_FAIL")
        else:
            params.update(notify_type="dut_user_sign" if rec.status == "active" else "dut_user_unsign",
                          external_agreement_no=rec.out_agreement_no, agreement_no=rec.agreement_no,
                          status="NORMAL" if rec.status == "active" else "STOP")
        signed = canonical_kv(params, exclude=("sign", "sign_type")).encode()
        params["sign"] = rsa_sign(config.key, b"tampered" + signed if tamper else signed)
        return {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}, urlencode(params).encode()

    notifier = Notifier(books, render, lambda resp: resp.status_code == 200 and resp.content.strip() == b"success",
                        callback_url=config.callback_url, delays_ms=config.notify_delays_ms)
    admin.install(app, admin.Runtime(SandboxInfo("alipay", TITLE, SCHEME, {"app_id": config.app_id, "serial": key_serial(config.key)}),
                                     books, notifier, public_pem(config.key)))

    def sign_agreement(b: AgreementSignIn, p: dict[str, str]) -> dict[str, Any]:
        return agreement_view(books.sign_agreement(b.external_agreement_no, b.alipay_open_id, amount(b.single_limit)))

    def pay(b: PayIn, p: dict[str, str]) -> dict[str, Any]:
        t = books.pay(b.out_trade_no, amount(b.total_amount), b.subject, b.agreement_params.agreement_no, p.get("notify_url"))
        if t.status == "failed":
            raise SandboxRefusal(t.error_code or "PAYMENT_FAIL", "the payment failed")
        view = {"out_trade_no": t.out_trade_no, "trade_no": t.trade_no, "total_amount": fen_to_yuan(t.amount_fen)}
        if t.paid_at:
            view["send_pay_date"] = plain_time(t.paid_at)
        return {"code": "10003", "msg": "order success pay inprocess", **view} if t.status == "processing" else view

    def refund(b: RefundIn, p: dict[str, str]) -> dict[str, Any]:
        r = books.refund(b.out_trade_no, b.out_request_no, amount(b.refund_amount), p.get("notify_url"))
        if r.status == "failed":
            raise SandboxRefusal(r.error_code or "REFUND_FAIL", "the refund failed")
        trade = books.trade(b.out_trade_no)
        return {"out_trade_no": r.out_trade_no, "trade_no": r.trade_no, "refund_fee": fen_to_yuan(trade.refunded_fen),
                "send_back_fee": fen_to_yuan(r.amount_fen), "refund_id": r.refund_id, "gmt_refund_pay": plain_time(r.at)}

    def refund_query(b: RefundRef, p: dict[str, str]) -> dict[str, Any]:
        r = books.refund_of(b.out_request_no)
        if r.out_trade_no != b.out_trade_no:
            raise SandboxRefusal("REFUND_NOT_EXIST", "no such refund for this order", 404)
        return {"out_trade_no": r.out_trade_no, "out_request_no": r.out_refund_no, "trade_no": r.trade_no, "refund_id": r.refund_id,
                "refund_amount": fen_to_yuan(r.amount_fen), "refund_status": "REFUND_SUCCESS" if r.status == "succeeded" else "REFUND_FAIL"}

    def bill(b: BillIn, p: dict[str, str], base: str) -> dict[str, Any]:
        try:
            day = date.fromisoformat(b.bill_date)
        except ValueError:
            raise SandboxRefusal("INVALID_PARAMETER", "bill_date must be YYYY-MM-DD") from None
        token = secrets.token_urlsafe(16)
        bills[token] = render_statement(config, day, *books.statement(day))
        return {"bill_download_url": f"{base}/bill/download?token={token}"}

    methods: dict[str, tuple[type[BaseModel], Callable[..., dict[str, Any]]]] = {
        "alipay.user.agreement.sign": (AgreementSignIn, sign_agreement),
        "alipay.user.agreement.query": (AgreementRef, lambda b, p: agreement_view(books.agreement(b.external_agreement_no))),
        "alipay.user.agreement.unsign": (AgreementRef, lambda b, p: agreement_view(books.terminate_agreement(b.external_agreement_no))),
        "alipay.trade.pay": (PayIn, pay),
        "alipay.trade.query": (TradeRef, lambda b, p: trade_view(books.trade(b.out_trade_no))),
        "alipay.trade.refund": (RefundIn, refund),
        "alipay.trade.fastpay.refund.query": (RefundRef, refund_query),
        "alipay.data.dataservice.bill.downloadurl.query": (BillIn, bill),
    }

    @app.post("/gateway.do", summary="The one gateway: every method, signed RSA2")
    async def gateway(request: Request) -> Response:
        try:
            params = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        method = params.get("method", "")
        if method not in methods:
            return answer("", {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method", "sub_msg": method})
        try:
            sent_at = parse_plain_time(params.get("timestamp", ""))
        except WireError:
            sent_at = None
        if (params.get("app_id") != config.app_id or params.get("sign_type") != "RSA2" or sent_at is None
                or abs((books.wall().astimezone(CHINA) - sent_at).total_seconds()) > 600
                or not rsa_verify(config.app_key, canonical_kv(params, exclude=("sign",)).encode(), params.get("sign"))):
            return answer(method, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature",
                                   "sub_msg": "signature verification failed"})
        model, work = methods[method]
        try:
            await books.before_call()
            try:
                biz = model.model_validate_json(params.get("biz_content", ""))
            except ValidationError as exc:
                first = exc.errors()[0]
                return answer(method, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-parameter",
                                       "sub_msg": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"})
            if method.endswith("downloadurl.query"):
                result = work(biz, params, admin.own_base_url(request))
            else:
                result = work(biz, params)
            await books.after_effect()
            return answer(method, {"code": "10000", "msg": "Success", **result})
        except SandboxRefusal as exc:
            return refusal(method, exc)

    @app.get("/bill/download", summary="A statement file (the URL is good once)")
    async def download(token: str = "") -> Response:
        content = bills.pop(token, None)
        if content is None:
            return Response(b"no such file", status_code=404, media_type="text/plain")
        return Response(content, media_type="text/csv; charset=utf-8")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": datetime.now(CHINA).isoformat()}

    return app
