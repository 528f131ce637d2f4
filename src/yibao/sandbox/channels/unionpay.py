"""SANDBOX unionpay: a UnionPay-like (全渠道 ACP 5.1) payment institution as a real HTTP service. Not UnionPay.

Form-encoded requests and answers; each signed as base64(SHA256withRSA(hex(SHA-256(sorted k=v
without `signature`)))) with `certId` naming the key. Password-free payment uses a token opened
for the holder (txnType 79; queried with 78, deleted with 74 — our guess at the token-payment
codes). Consume (01) answers "accepted"; the query (00) gives `origRespCode`. Refunds (04) name the
trade by `origQryId`. Notifications post to `backUrl` and count as received on HTTP 200. The
statement (76) comes back as base64 of zlib-compressed `|`-separated text, amounts in yuan.

    yibao sandbox unionpay --port 8713 --callback http://127.0.0.1:8000/api/v1/channels/unionpay/notify
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from fastapi import FastAPI, Request
from fastapi.responses import Response

from yibao.channels.crypto import canonical_kv, key_serial, public_pem, rsa_sign, rsa_verify
from yibao.channels.wire import CHINA, compact_time, fen_to_yuan, parse_compact_time
from yibao.sandbox.channels import admin
from yibao.sandbox.channels.core import AgreementRec, Books, Event, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "SHA-256 digest of sorted k=v, then SHA256withRSA; certId"
TITLE = "yibao SANDBOX unionpay (UnionPay-like; not a real payment institution)"
# The sandbox's own refusal codes → two-digit respCodes (12 invalid transaction, 34 no such transaction, 51 balance short, 61 over limit).
RESP_CODES = {"ORDER_NOT_EXIST": "34", "REFUND_NOT_EXIST": "34", "AGREEMENT_NOT_EXIST": "34", "NOT_ENOUGH": "51",
              "EXCEEDS_PASSWORD_FREE_LIMIT": "61", "AGREEMENT_NOT_ACTIVE": "77", "SYSTEM_ERROR": "03"}


@dataclass
class UnionPaySandboxConfig:
    key: RSAPrivateKey = field(repr=False)
    mer_id: str
    merchant_key: RSAPublicKey = field(repr=False)
    callback_url: str | None = None
    notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS
    seed: int | None = None


def digest_text(params: dict[str, str]) -> bytes:
    import hashlib

    return hashlib.sha256(canonical_kv(params, exclude=("signature",)).encode()).hexdigest().encode()


def render_statement(trades: list[TradeRec], refunds: list[RefundRec]) -> str:
    lines = ["交易码|商户订单号|查询流水号|原商户订单号|交易金额(元)|交易时间"]
    rows = [(t.paid_at, f"01|{t.out_trade_no}|{t.trade_no}||{fen_to_yuan(t.amount_fen)}|{compact_time(t.paid_at)}") for t in trades]  # type: ignore[arg-type]
    rows += [(r.at, f"04|{r.out_refund_no}|{r.refund_id}|{r.out_trade_no}|{fen_to_yuan(r.amount_fen)}|{compact_time(r.at)}") for r in refunds]
    lines += [text for _, text in sorted(rows, key=lambda x: x[0])]
    lines.append(f"TOTAL|{len(trades)}|{fen_to_yuan(sum(t.amount_fen for t in trades))}|{len(refunds)}|"
                 f"{fen_to_yuan(sum(r.amount_fen for r in refunds))}")
    return "\n".join(lines) + "\n"


def create_app(config: UnionPaySandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Answers are signed by this sandbox's own key; nothing here moves money.")
    books = Books("UP", seed=config.seed, clock=clock)
    cert_id = key_serial(config.key)
    merchant_cert_id = key_serial(config.merchant_key)

    def signed(params: dict[str, str], *, tamper: bool = False) -> dict[str, str]:
        params = {**params, "certId": cert_id}
        digest = digest_text(params)
        return {**params, "signature": rsa_sign(config.key, b"tampered" + digest if tamper else digest)}

    def answer(req: dict[str, str], extra: dict[str, str], code: str = "00", msg: str = "success") -> Response:
        base = {k: req[k] for k in ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType", "merId",
                                    "orderId", "txnTime") if k in req}
        body = urlencode(signed({**base, **extra, "respCode": code, "respMsg": msg})).encode()
        return Response(body, media_type="application/x-www-form-urlencoded;charset=UTF-8")

    def token_view(a: AgreementRec) -> dict[str, str]:
        return {"orderId": a.out_agreement_no, "token": a.agreement_no, "tokenStatus": "1" if a.status == "active" else "0",
                "singleLimit": str(a.limit_fen)}

    def trade_view(t: TradeRec) -> dict[str, str]:
        orig = {"succeeded": "00", "processing": "05", "failed": RESP_CODES.get(t.error_code or "", "12")}[t.status]
        view = {"txnType": "01", "orderId": t.out_trade_no, "queryId": t.trade_no, "txnAmt": str(t.amount_fen), "origRespCode": orig,
                "origRespMsg": t.error_code or ("success" if orig == "00" else "in process")}
        if t.paid_at:
            view["traceTime"] = compact_time(t.paid_at)
        if t.refunded_fen:
            view["refundedAmt"] = str(t.refunded_fen)
        return view

    def refund_view(r: RefundRec) -> dict[str, str]:
        return {"txnType": "04", "orderId": r.out_refund_no, "origOrderId": r.out_trade_no, "queryId": r.refund_id, "origQryId": r.trade_no,
                "txnAmt": str(r.amount_fen), "origRespCode": "00" if r.status == "succeeded" else "12",
                "origRespMsg": r.error_code or "success"}

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        base = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "merId": config.mer_id, "accessType": "0",
                "txnTime": compact_time(books.now())}
        if event.kind == "payment":
            v = trade_view(rec)
            params = {**base, **{k: v[k] for k in ("txnType", "orderId", "queryId", "txnAmt")}, "respCode": v["origRespCode"],
                      "respMsg": v["origRespMsg"], "txnSubType": "01", "bizType": "000902"}
        elif event.kind == "refund":
            v = refund_view(rec)
            params = {**base, **{k: v[k] for k in ("txnType", "orderId", "origOrderId", "queryId", "origQryId", "txnAmt")},
                      "respCode": v["origRespCode"], "respMsg": v["origRespMsg"], "txnSubType": "00", "bizType": "000902"}
        else:
            params = {**base, "txnType": "79" if rec.status == "active" else "74", "orderId": rec.out_agreement_no, "queryId": event.event_id,
                      "token": rec.agreement_no, "respCode": "00", "respMsg": "success", "txnSubType": "00", "bizType": "000902"}
        return {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}, urlencode(signed(params, tamper=tamper)).encode()

    notifier = Notifier(books, render, lambda resp: resp.status_code == 200, callback_url=config.callback_url,
                        delays_ms=config.notify_delays_ms)
    admin.install(app, admin.Runtime(SandboxInfo("unionpay", TITLE, SCHEME, {"merId": config.mer_id, "certId": cert_id}), books, notifier,
                                     public_pem(config.key)))

    async def admitted(request: Request) -> dict[str, str] | Response:
        try:
            params = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        try:
            sent_at = parse_compact_time(params.get("txnTime", "")).timestamp()
        except ValueError:
            sent_at = None
        if (params.get("merId") != config.mer_id or params.get("certId") != merchant_cert_id or sent_at is None
                or abs(books.wall().timestamp() - sent_at) > 600
                or not rsa_verify(config.merchant_key, digest_text(params), params.get("signature"))):
            return answer(params, {}, "11", "signature verification failed")  # 11: 验证签名失败
        return params

    def amount(params: dict[str, str]) -> int:
        text = params.get("txnAmt", "")
        if not text.isdigit() or text.startswith("0") or len(text) > 12:
            raise SandboxRefusal("INVALID_AMOUNT", "txnAmt must be a positive amount in fen")
        return int(text)

    def refused(params: dict[str, str], exc: SandboxRefusal) -> Response:
        return answer(params, {}, RESP_CODES.get(exc.code, "12"), f"{exc.code}: {exc.message}")

    @app.post("/gateway/api/backTransReq.do", summary="Back-end transactions: token open/query/delete (79/78/74), consume (01), refund (04)")
    async def back(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return params
        txn = params.get("txnType")
        try:
            await books.before_call()
            if txn == "79":
                limit = params.get("singleLimit", "")
                if not limit.isdigit():
                    raise SandboxRefusal("INVALID_AMOUNT", "singleLimit must be fen")
                extra = token_view(books.sign_agreement(params["orderId"], params.get("holderToken", ""), int(limit)))
            elif txn == "78":
                extra = token_view(books.agreement(params.get("orderId", "")))
            elif txn == "74":
                extra = token_view(books.terminate_agreement(params.get("orderId", "")))
            elif txn == "01":
                token_data = dict(parse_qsl(params.get("tokenPayData", "").strip("{}")))
                t = books.pay(params["orderId"], amount(params), params.get("orderDesc", ""), token_data.get("token", ""), params.get("backUrl"))
                if t.status == "failed":
                    raise SandboxRefusal(t.error_code or "PAYMENT_FAIL", "the payment failed")
                extra = {"queryId": t.trade_no, "txnAmt": str(t.amount_fen)}
            elif txn == "04":
                trade = next((t for t in list(books.trades.values()) if t.trade_no == params.get("origQryId")), None)
                if trade is None:
                    raise SandboxRefusal("ORDER_NOT_EXIST", "no trade with this origQryId", 404)
                r = books.refund(trade.out_trade_no, params["orderId"], amount(params), params.get("backUrl"))
                if r.status == "failed":
                    raise SandboxRefusal(r.error_code or "REFUND_FAIL", "the refund failed")
                extra = {"queryId": r.refund_id, "origQryId": r.trade_no, "txnAmt": str(r.amount_fen), "origOrderId": r.out_trade_no}
            else:
                raise SandboxRefusal("UNSUPPORTED", f"txnType {txn!r} is not supported here")
            await books.after_effect()
            return answer(params, extra)
        except SandboxRefusal as exc:
            return refused(params, exc)

    @app.post("/gateway/api/queryTrans.do", summary="Query a transaction (consume or refund) by orderId: the truth")
    async def query(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return params
        try:
            await books.before_call()
            order_id = params.get("orderId", "")
            try:
                extra = trade_view(books.trade(order_id))
            except SandboxRefusal:
                extra = refund_view(books.refund_of(order_id))
            return answer(params, extra)
        except SandboxRefusal as exc:
            return refused(params, exc)

    @app.post("/gateway/api/fileTransReq.do", summary="The day's statement file (txnType 76)")
    async def file(request: Request) -> Response:
        params = await admitted(request)
        if isinstance(params, Response):
            return params
        try:
            day = datetime.strptime(params.get("settleDate", ""), "%Y%m%d").date()
        except ValueError:
            return refused(params, SandboxRefusal("INVALID_DATE", "settleDate must be YYYYMMDD"))
        text = render_statement(*books.statement(day))
        content = base64.b64encode(zlib.compress(text.encode("utf-8"))).decode()
        return answer(params, {"fileContent": content, "fileName": f"INN{day:%y%m%d}88ZM_{config.mer_id}"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": datetime.now(CHINA).isoformat()}

    return app


