"""SANDBOX alipay: Alipay's OpenAPI gateway (RSA2) as a real HTTP service. Not Alipay: nothing here moves money.

One gateway, `/gateway.do`, GET or POST: parameters from the URL query and/or the form body, as the
real gateway takes them (the official SDK puts the common parameters in the query and `biz_content` in
the body; `python-alipay-sdk` sends everything in the query of a GET). Each request's RSA2 signature
(SHA256withRSA over the ASCII-sorted `k=v&…` of all non-empty parameters but `sign`) is checked with
the app's public key. Answers are `{"<method with underscores>_response": {...}, "sign": ...}`, signed
with the sandbox's key over the exact `_response` text (`error_response` for an unknown method).
Notifications are form posts signed over the sorted string without `sign`/`sign_type`, resent until
the platform answers `success`. Amounts are yuan strings. Statements: a URL on the "file host" (the
same server under another host name: `localhost` for `127.0.0.1`), good for 30 s, to a zip of GBK CSVs.

Agreements: the holder signs them on Alipay's page: the merchant's signed `alipay.user.agreement.page.sign`
redirect (a GET of the gateway, built by the merchant, not called by it) opens the page (signing_page.py),
the holder confirms or declines there, and a signed agreement is told by `dut_user_sign` to the redirect's
`notify_url` and by `alipay.user.agreement.query`. Unsign and `dut_user_unsign` are Alipay's too.

    yibao sandbox alipay --port 8712 --callback http://127.0.0.1:8000/api/v1/channels/alipay/notify
"""

from __future__ import annotations

import csv
import html
import io
import json
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.alipay.transformers import DETAIL_HEADER, MED_METHODS, PAGE_SIGN_METHOD, SUMMARY_HEADER
from yibao.channels.crypto import canonical_kv, key_serial, public_pem, rsa_sign, rsa_verify
from yibao.channels.wire import CHINA, WireError, china_time, fen_to_yuan, parse_plain_time, plain_time, yuan_to_fen
from yibao.sandbox.channels import admin, signing_page
from yibao.sandbox.channels.core import AgreementRec, Books, Event, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "RSA2 (SHA256withRSA over sorted k=v)"
TITLE = "yibao SANDBOX alipay (Alipay OpenAPI, RSA2; not a real payment institution)"
BILL_URL_LIFETIME_S = 30.0  # Alipay: the download URL is good for 30 seconds


@dataclass
class AlipaySandboxConfig:
    key: RSAPrivateKey = field(repr=False)  # the sandbox's own key
    app_id: str
    app_key: RSAPublicKey = field(repr=False)  # the platform app's public key
    callback_url: str | None = None
    notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS
    seed: int | None = None
    pid: str = "2088102177846875"  # the merchant's Alipay partner id (2088…, 16 digits): names the bill files
    single_quota_fen: int = 50_000_00  # the withholding product's per-payment limit, shown on the signing page
    merchant_name: str = "医保便捷支付平台（沙箱商户）"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccessParams(_Strict):
    channel: str = Field(pattern="^(ALIPAYAPP|QRCODE|QRCODEORSMS)$")


class PageSignIn(_Strict):
    """`alipay.user.agreement.page.sign`'s biz_content (the fields this sandbox reads; others are refused)."""

    personal_product_code: str = Field(pattern="^GENERAL_WITHHOLDING_P$")
    product_code: str | None = Field(None, pattern="^GENERAL_WITHHOLDING$")
    sign_scene: str | None = Field(None, max_length=64)
    external_agreement_no: str = Field(min_length=1, max_length=32)
    external_logon_id: str | None = Field(None, max_length=100)
    access_params: AccessParams


class AgreementRef(_Strict):
    personal_product_code: str | None = Field(None, pattern="^GENERAL_WITHHOLDING_P$")
    sign_scene: str | None = Field(None, max_length=64)
    external_agreement_no: str | None = Field(None, min_length=1, max_length=32)
    agreement_no: str | None = Field(None, min_length=1, max_length=64)


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
    query_options: list[str] | None = None


class RefundIn(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=64)
    out_request_no: str = Field(min_length=1, max_length=64)
    refund_amount: str
    refund_reason: str | None = Field(None, max_length=256)


class RefundRef(_Strict):
    out_trade_no: str = Field(min_length=1, max_length=64)
    out_request_no: str = Field(min_length=1, max_length=64)
    query_options: list[str] | None = None


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
    """alipay.user.agreement.query's fields. An unsigned agreement answers STOP (a guess: see docs/channels.md)."""
    return {"agreement_no": a.agreement_no, "external_agreement_no": a.out_agreement_no, "personal_product_code": "GENERAL_WITHHOLDING_P",
            "sign_scene": "INDUSTRY|MEDICAL", "status": "NORMAL" if a.status == "active" else "STOP", "sign_time": plain_time(a.at),
            "valid_time": plain_time(a.at), "invalid_time": "2115-02-01 00:00:00", "single_quota": fen_to_yuan(a.limit_fen),
            "third_party_type": "PARTNER"}


def trade_view(t: TradeRec) -> dict[str, Any]:
    """alipay.trade.query's fields: a closed trade that had been paid was refunded in full."""
    if t.status == "succeeded":
        status = "TRADE_CLOSED" if t.refunded_fen == t.amount_fen else "TRADE_SUCCESS"
    else:
        status = {"processing": "WAIT_BUYER_PAY", "failed": "TRADE_CLOSED"}[t.status]
    view = {"out_trade_no": t.out_trade_no, "trade_no": t.trade_no, "trade_status": status, "total_amount": fen_to_yuan(t.amount_fen),
            "buyer_logon_id": "sbx***@sandbox.com", "subject": t.description}
    if t.paid_at:
        view.update(send_pay_date=plain_time(t.paid_at), buyer_pay_amount=fen_to_yuan(t.amount_fen), receipt_amount=fen_to_yuan(t.amount_fen))
    return view


def _cell(value: str) -> str:
    return value + "\t"  # Alipay pads numbers and times with a tab, so a spreadsheet keeps them as text


def render_statement(cfg: AlipaySandboxConfig, day: date, trades: list[TradeRec], refunds: list[RefundRec], *,
                     exported: datetime | None = None) -> bytes:
    """The trade bill as Alipay's file host serves it: a zip of two GBK CSVs, the detail and its summary."""
    stamp = f"{day:%Y%m%d}"
    span = f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day + timedelta(days=1):%Y年%m月%d日} 00:00:00]\n"
    at = f"#导出时间：[{(exported or datetime.now(CHINA)).astimezone(CHINA):%Y年%m月%d日 %H:%M:%S}]\n"
    out = io.StringIO()
    out.write(f"#支付宝业务明细查询\n#账号：[{cfg.pid}]\n{span}")
    out.write("#-----------------------------------------业务明细列表----------------------------------------\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(DETAIL_HEADER)
    desc = {t.out_trade_no: t.description for t in trades}
    blank = [""] * 5  # 门店编号, 门店名称, 操作员, 终端号, 对方账户
    zeros = ["0.00"] * 6  # 支付宝红包 … 券核销金额, then 券名称 below
    for t in trades:
        yuan = fen_to_yuan(t.amount_fen)
        w.writerow([_cell(t.trade_no), _cell(t.out_trade_no), "交易", t.description, _cell(plain_time(t.created_at)),
                    _cell(plain_time(t.paid_at)), *blank, yuan, yuan, *zeros[:5], "", "0.00", "0.00", "", "0.00", "0.00", ""])  # type: ignore[arg-type]
    for r in refunds:
        yuan = "-" + fen_to_yuan(r.amount_fen)
        w.writerow([_cell(r.trade_no), _cell(r.out_trade_no), "退款", desc.get(r.out_trade_no, ""), _cell(plain_time(r.at)),
                    _cell(plain_time(r.at)), *blank, yuan, yuan, *zeros[:5], "", "0.00", "0.00", _cell(r.out_refund_no), "0.00", "0.00", ""])
    out.write("#-----------------------------------------业务明细列表结束------------------------------------\n")
    out.write(f"#交易合计：{len(trades)}笔，退款合计：{len(refunds)}笔\n{at}")
    net = sum(t.amount_fen for t in trades) - sum(r.amount_fen for r in refunds)
    signed = ("-" if net < 0 else "") + fen_to_yuan(abs(net))
    summary = io.StringIO()
    summary.write(f"#支付宝业务汇总查询\n#账号：[{cfg.pid}]\n{span}")
    summary.write("#-----------------------------------------业务汇总列表----------------------------------------\n")
    s = csv.writer(summary, lineterminator="\n")
    s.writerow(SUMMARY_HEADER)
    s.writerow(["合计", "", len(trades), len(refunds), signed, signed, "0.00", "0.00", "0.00", "0.00", "0.00", signed])
    summary.write("#-----------------------------------------业务汇总列表结束------------------------------------\n")
    summary.write(at)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{cfg.pid}_{stamp}_业务明细.csv", out.getvalue().encode("gbk"))
        zf.writestr(f"{cfg.pid}_{stamp}_业务明细(汇总).csv", summary.getvalue().encode("gbk"))
    return buf.getvalue()


def _file_host(base: str) -> str:
    """Alipay serves bills from another host than its gateway; the sandbox's stand-in is the same server under another name."""
    parts = urlsplit(base)
    host = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(parts.hostname or "", parts.hostname or "")
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def create_app(config: AlipaySandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Answers are signed by this sandbox's own key; nothing here moves money.")
    books = Books("AP", seed=config.seed, clock=clock)
    bills: dict[str, tuple[float, bytes]] = {}

    def answer(node: str, payload: dict[str, Any]) -> Response:
        inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        sign = rsa_sign(config.key, inner.encode())
        body = '{"' + node + '":' + inner + ',"sign":"' + sign + '"}'
        return Response(body.encode(), media_type="application/json;charset=utf-8")

    def refusal(node: str, exc: SandboxRefusal) -> Response:
        if exc.status >= 500:
            return answer(node, {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error",
                                 "sub_msg": f"系统繁忙 ({exc.message})"})
        sub = {"ORDER_NOT_EXIST": "ACQ.TRADE_NOT_EXIST", "AGREEMENT_NOT_EXIST": "USER_AGREEMENT_NOT_EXIST",
               "NOT_ENOUGH": "ACQ.BUYER_BALANCE_NOT_ENOUGH", "AGREEMENT_NOT_ACTIVE": "ACQ.AGREEMENT_STATUS_NOT_NORMAL",
               "EXCEEDS_PASSWORD_FREE_LIMIT": "ACQ.EXCEED_AGREEMENT_LIMIT", "REFUND_AMOUNT_EXCEEDS": "ACQ.REASON_TRADE_REFUND_FEE_ERR",
               "TRADE_NOT_PAID": "ACQ.TRADE_STATUS_ERROR", "REFUND_DECLINED": "ACQ.SELLER_BALANCE_NOT_ENOUGH",
               "TRADE_HAS_SUCCESS": "ACQ.TRADE_HAS_SUCCESS", "TRADE_HAS_CLOSE": "ACQ.TRADE_HAS_CLOSE"}.get(exc.code, "ACQ." + exc.code)
        # The sandbox's own reason rides in sub_msg, after Alipay's words.
        return answer(node, {"code": "40004", "msg": "Business Failed", "sub_code": sub, "sub_msg": f"{exc.message} ({exc.code})"})

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        params = {"notify_id": event.event_id, "notify_time": plain_time(books.now()), "app_id": config.app_id, "charset": "utf-8",
                  "version": "1.0", "sign_type": "RSA2"}
        if event.kind == "payment":
            params.update(notify_type="trade_status_sync", out_trade_no=rec.out_trade_no, trade_no=rec.trade_no,
                          trade_status="TRADE_SUCCESS" if rec.status == "succeeded" else "TRADE_CLOSED", total_amount=fen_to_yuan(rec.amount_fen),
                          subject=rec.description, gmt_create=plain_time(rec.created_at), seller_id=config.pid)
            if rec.paid_at:
                params.update(gmt_payment=plain_time(rec.paid_at), receipt_amount=fen_to_yuan(rec.amount_fen),
                              buyer_pay_amount=fen_to_yuan(rec.amount_fen))
            else:
                params["gmt_close"] = plain_time(rec.created_at)
        elif event.kind == "refund":
            with books.lock:  # refund_fee: what the trade had given back when this refund was made
                trade = books.trades[rec.out_trade_no]
                refunded = sum(r.amount_fen for r in books.refunds.of_trade(rec.out_trade_no) if r.status == "succeeded" and r.at <= rec.at)
            params.update(notify_type="trade_status_sync", out_trade_no=rec.out_trade_no, trade_no=rec.trade_no, out_biz_no=rec.out_refund_no,
                          trade_status="TRADE_CLOSED" if refunded == trade.amount_fen else "TRADE_SUCCESS",
                          total_amount=fen_to_yuan(trade.amount_fen), refund_fee=fen_to_yuan(refunded), send_back_fee=fen_to_yuan(rec.amount_fen),
                          gmt_refund=china_time(rec.at).strftime("%Y-%m-%d %H:%M:%S.") + f"{rec.at.microsecond // 1000:03d}",
                          gmt_create=plain_time(trade.created_at), gmt_payment=plain_time(trade.paid_at), seller_id=config.pid)  # type: ignore[arg-type]
        else:
            params.update(notify_type="dut_user_sign" if rec.status == "active" else "dut_user_unsign",
                          external_agreement_no=rec.out_agreement_no, agreement_no=rec.agreement_no,
                          personal_product_code="GENERAL_WITHHOLDING_P", sign_scene="INDUSTRY|MEDICAL",
                          status="NORMAL" if rec.status == "active" else "UNSIGN")
            if rec.status == "active":
                params.update(sign_time=plain_time(rec.at), valid_time=plain_time(rec.at), invalid_time="2115-02-01 00:00:00")
            else:
                params["unsign_time"] = plain_time(rec.at)
        signed = canonical_kv(params, exclude=("sign", "sign_type")).encode()
        params["sign"] = rsa_sign(config.key, b"tampered" + signed if tamper else signed)
        return {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}, urlencode(params).encode()

    notifier = Notifier(books, render, lambda resp: resp.status_code == 200 and resp.content.strip() == b"success",
                        callback_url=config.callback_url, delays_ms=config.notify_delays_ms)
    enqueue = books.on_event

    def on_event(event: Event) -> None:
        if event.kind == "refund" and event.record.status != "succeeded":
            return  # Alipay tells nothing of a refused refund: its answer said so
        enqueue(event)
    books.on_event = on_event
    admin.install(app, admin.Runtime(SandboxInfo("alipay", TITLE, SCHEME, {"app_id": config.app_id, "pid": config.pid,
                                                                           "serial": key_serial(config.key)}),
                                     books, notifier, public_pem(config.key)))

    signing_page.install(app, books, institution="支付宝 Alipay")

    def page_sign(params: dict[str, str]) -> Response:
        """The holder's browser arrives with the merchant's signed redirect: Alipay's signing page, or an error page."""
        def error(sub_code: str, message: str) -> Response:
            return HTMLResponse(f"<!doctype html><p>签约请求有误 {html.escape(sub_code)}: {html.escape(message)}</p>", status_code=400)
        try:
            biz = PageSignIn.model_validate_json(params.get("biz_content", ""))
        except ValidationError as exc:
            first = exc.errors()[0]
            return error("isv.invalid-parameter", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
        try:
            # SANDBOX: the holder is who the merchant names (external_logon_id); at Alipay, whoever logs in on the page.
            session = books.open_signing(biz.external_agreement_no, biz.external_logon_id or "", config.single_quota_fen,
                                         merchant=config.merchant_name, display_name=biz.external_logon_id or "",
                                         return_url=params.get("return_url") or None, notify_url=params.get("notify_url") or None)
        except SandboxRefusal as exc:
            return error(exc.code, exc.message)
        return HTMLResponse(signing_page.render(session, "支付宝 Alipay", action=f"{signing_page.PATH[1:]}/{session.id}"))

    def find_agreement(b: AgreementRef) -> AgreementRec:
        if b.external_agreement_no:
            return books.agreement(b.external_agreement_no)
        found = books.agreement_by_no(b.agreement_no or "")
        if found is None:
            raise SandboxRefusal("AGREEMENT_NOT_EXIST", "no such agreement", 404)
        return found

    def unsign(b: AgreementRef, p: dict[str, str]) -> dict[str, Any]:
        books.terminate_agreement(find_agreement(b).out_agreement_no)
        return {}  # the real answer carries nothing but its code

    def pay(b: PayIn, p: dict[str, str]) -> dict[str, Any]:
        with books.lock:
            before = books.trades.get(b.out_trade_no)
        if before is not None and before.status == "succeeded":
            raise SandboxRefusal("TRADE_HAS_SUCCESS", "the trade was paid already")
        if before is not None and before.status == "failed":
            raise SandboxRefusal("TRADE_HAS_CLOSE", "the trade is closed")
        t = books.pay(b.out_trade_no, amount(b.total_amount), b.subject, b.agreement_params.agreement_no, p.get("notify_url"))
        if t.status == "failed":
            raise SandboxRefusal(t.error_code or "PAYMENT_FAIL", "the payment failed")
        view = {"out_trade_no": t.out_trade_no, "trade_no": t.trade_no, "total_amount": fen_to_yuan(t.amount_fen),
                "buyer_logon_id": "sbx***@sandbox.com"}
        if t.status == "processing":
            return {"code": "10003", "msg": "order success pay inprocess", **view}
        return {**view, "gmt_payment": plain_time(t.paid_at), "receipt_amount": fen_to_yuan(t.amount_fen),  # type: ignore[arg-type]
                "buyer_pay_amount": fen_to_yuan(t.amount_fen), "invoice_amount": fen_to_yuan(t.amount_fen)}

    def refund(b: RefundIn, p: dict[str, str]) -> dict[str, Any]:
        with books.lock:
            earlier = books.refunds.get(b.out_request_no)
            if earlier is not None and earlier.status == "failed":
                del books.refunds[b.out_request_no]  # Alipay: a failed refund is submitted again under its own out_request_no
            repeat = earlier is not None and earlier.status == "succeeded"
        r = books.refund(b.out_trade_no, b.out_request_no, amount(b.refund_amount), p.get("notify_url"))
        if r.status == "failed":
            raise SandboxRefusal(r.error_code or "REFUND_FAIL", "the refund failed")
        trade = books.trade(b.out_trade_no)
        return {"out_trade_no": r.out_trade_no, "trade_no": r.trade_no, "buyer_logon_id": "sbx***@sandbox.com",
                "fund_change": "N" if repeat else "Y", "refund_fee": fen_to_yuan(trade.refunded_fen),
                "send_back_fee": fen_to_yuan(r.amount_fen), "gmt_refund_pay": plain_time(r.at)}

    def refund_query(b: RefundRef, p: dict[str, str]) -> dict[str, Any]:
        trade = books.trade(b.out_trade_no)  # ACQ.TRADE_NOT_EXIST for an unknown order
        with books.lock:
            r = books.refunds.get(b.out_request_no)
        if r is None or r.out_trade_no != b.out_trade_no or r.status != "succeeded":
            return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}  # not refunded: no refund_status
        view = {"out_trade_no": r.out_trade_no, "trade_no": r.trade_no, "out_request_no": r.out_refund_no,
                "total_amount": fen_to_yuan(trade.amount_fen), "refund_amount": fen_to_yuan(r.amount_fen), "refund_status": "REFUND_SUCCESS"}
        if "gmt_refund_pay" in (b.query_options or []):
            view["gmt_refund_pay"] = plain_time(r.at)
        return view

    def bill(b: BillIn, p: dict[str, str], base: str) -> dict[str, Any]:
        try:
            day = date.fromisoformat(b.bill_date)
        except ValueError:
            raise SandboxRefusal("INVALID_PARAMETER", "bill_date must be YYYY-MM-DD") from None
        token = secrets.token_urlsafe(16)
        for old in [k for k, (until, _) in bills.items() if until < time.monotonic()]:
            bills.pop(old, None)
        bills[token] = (time.monotonic() + BILL_URL_LIFETIME_S, render_statement(config, day, *books.statement(day)))
        name = f"{config.pid}_{day:%Y%m%d}.csv.zip"
        query = urlencode({"bizType": "trade", "userId": config.pid, "fileType": "csv.zip", "bizDates": f"{day:%Y%m%d}",
                           "downloadFileName": name, "fileId": f"/trade/{config.pid}/{day:%Y%m%d}.csv.zip", "token": token})
        return {"bill_download_url": f"{_file_host(base)}/dwbillcenter/downloadBillFile.resource?{query}"}

    methods: dict[str, tuple[type[BaseModel], Callable[..., dict[str, Any]]]] = {
        "alipay.user.agreement.query": (AgreementRef, lambda b, p: agreement_view(find_agreement(b))),
        "alipay.user.agreement.unsign": (AgreementRef, unsign),
        "alipay.trade.pay": (PayIn, pay),
        "alipay.trade.query": (TradeRef, lambda b, p: trade_view(books.trade(b.out_trade_no))),
        "alipay.trade.refund": (RefundIn, refund),
        "alipay.trade.fastpay.refund.query": (RefundRef, refund_query),
        "alipay.data.dataservice.bill.downloadurl.query": (BillIn, bill),
    }
    from yibao.sandbox.channels import alipay_medins

    med_ins = alipay_medins.install(app, config=config, books=books, methods=methods, answer=answer)
    app.state.sandbox.med_ins = med_ins

    @app.api_route("/gateway.do", methods=["GET", "POST"], summary="The one gateway: every method, signed RSA2 (query and/or form)")
    async def gateway(request: Request) -> Response:
        params: dict[str, str] = {}
        try:
            params.update(parse_qsl(request.url.query, keep_blank_values=True))
            if request.method == "POST" and "form-urlencoded" in request.headers.get("content-type", "form-urlencoded"):
                params.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        method = params.get("method", "")
        if method not in methods and method != PAGE_SIGN_METHOD:
            return answer("error_response", {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method",
                                             "sub_msg": f"不存在的方法名 {method}"})
        node = method.replace(".", "_") + "_response"
        try:
            sent_at = parse_plain_time(params.get("timestamp", ""))
        except WireError:
            sent_at = None
        # The platform's app, or a hospital's registered for the medical trade (which may call only those methods).
        app_key = config.app_key if params.get("app_id") == config.app_id else med_ins.key_of(params.get("app_id", ""))
        if app_key is None:
            return answer(node, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id", "sub_msg": "无效的AppID参数"})
        if sent_at is None or abs((books.wall().astimezone(CHINA) - sent_at).total_seconds()) > 600:
            return answer(node, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-timestamp", "sub_msg": "非法的时间戳参数"})
        if params.get("sign_type") != "RSA2" or not rsa_verify(app_key, canonical_kv(params, exclude=("sign",)).encode(), params.get("sign")):
            return answer(node, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"})
        if app_key is not config.app_key and method not in MED_METHODS:
            return answer(node, {"code": "40006", "msg": "Insufficient Permissions", "sub_code": "isv.insufficient-isv-permissions",
                                 "sub_msg": "ISV权限不足 (this app may call the medical-insurance trade only)"})
        if method == PAGE_SIGN_METHOD:
            return page_sign(params)
        model, work = methods[method]
        try:
            await books.before_call()
            try:
                biz = model.model_validate_json(params.get("biz_content", ""))
            except ValidationError as exc:
                first = exc.errors()[0]
                return answer(node, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-parameter",
                                     "sub_msg": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"})
            if method.endswith("downloadurl.query"):
                result = work(biz, params, admin.own_base_url(request))
            elif method in MED_METHODS:
                result = await work(biz, params, admin.own_base_url(request))
            else:
                result = work(biz, params)
            await books.after_effect()
            return answer(node, {"code": "10000", "msg": "Success", **result})
        except SandboxRefusal as exc:
            return refusal(node, exc)

    @app.get("/dwbillcenter/downloadBillFile.resource", summary="A bill file (the URL is good for 30 s)")
    async def download(token: str = "") -> Response:
        held = bills.get(token)
        if held is None or held[0] < time.monotonic():
            bills.pop(token, None)
            return Response("文件不存在或已过期".encode(), status_code=404, media_type="text/plain;charset=utf-8")
        return Response(held[1], media_type="application/zip")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": datetime.now(CHINA).isoformat()}

    return app
