"""SANDBOX wxpay: a WeChat-Pay-v3-like payment institution as a real HTTP service. Not WeChat Pay.

Speaks JSON; checks each request's `WECHATPAY2-SHA256-RSA2048` Authorization (RSA-SHA256 over
`METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` by the merchant's key, whose public half and serial it
is configured with); signs every answer and notification with its own key over
`TIMESTAMP\\nNONCE\\nBODY\\n` in `Wechatpay-*` headers; encrypts notification resources with
AES-256-GCM under the API v3 key. Amounts are fen on the wire, yuan in statement files.

    yibao sandbox wxpay --port 8711 --callback http://127.0.0.1:8000/api/v1/channels/wxpay/notify
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.crypto import aes_gcm_encrypt, key_serial, public_pem, rsa_sign, rsa_verify
from yibao.channels.wire import fen_to_yuan, plain_time, rfc3339
from yibao.sandbox.channels import admin
from yibao.sandbox.channels.core import AgreementRec, Books, Event, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "WECHATPAY2-SHA256-RSA2048"
TITLE = "yibao SANDBOX wxpay (WeChat-Pay-like; not a real payment institution)"


@dataclass
class WxPaySandboxConfig:
    key: RSAPrivateKey = field(repr=False)  # the sandbox's own key: signs answers and notifications
    mchid: str
    appid: str
    merchant_key: RSAPublicKey = field(repr=False)  # the platform's public key: verifies requests
    api_v3_key: bytes = field(repr=False)
    callback_url: str | None = None
    notify_delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS
    seed: int | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a field the API does not have (a fund share, say) is an error


class Amount(_Strict):
    total: int = Field(gt=0, le=10**12)
    currency: str = Field(pattern="^CNY$")


class RefundAmount(_Strict):
    refund: int = Field(gt=0, le=10**12)
    total: int = Field(gt=0, le=10**12)
    currency: str = Field(pattern="^CNY$")


class ContractIn(_Strict):
    appid: str
    mchid: str
    out_contract_code: str = Field(min_length=1, max_length=32)
    openid: str = Field(min_length=16, max_length=64)
    deduct_limit: Amount


class TerminateIn(_Strict):
    mchid: str
    reason: str = Field(max_length=80)


class PayIn(_Strict):
    appid: str
    mchid: str
    description: str = Field(min_length=1, max_length=127)
    out_trade_no: str = Field(min_length=6, max_length=32)
    contract_id: str = Field(min_length=1, max_length=64)
    notify_url: str | None = Field(None, max_length=256)
    amount: Amount


class RefundIn(_Strict):
    out_trade_no: str = Field(min_length=6, max_length=32)
    out_refund_no: str = Field(min_length=6, max_length=64)
    reason: str | None = Field(None, max_length=80)
    notify_url: str | None = Field(None, max_length=256)
    amount: RefundAmount


def contract_view(a: AgreementRec, cfg: WxPaySandboxConfig) -> dict[str, Any]:
    return {"appid": cfg.appid, "mchid": cfg.mchid, "out_contract_code": a.out_agreement_no, "contract_id": a.agreement_no,
            "contract_state": "ADD" if a.status == "active" else "DELETE", "deduct_limit": {"total": a.limit_fen, "currency": "CNY"},
            "update_time": rfc3339(a.at)}


def trade_view(t: TradeRec, cfg: WxPaySandboxConfig) -> dict[str, Any]:
    state = {"succeeded": "REFUND" if t.refunded_fen else "SUCCESS", "processing": "ACCEPT", "failed": "PAYERROR"}[t.status]
    view: dict[str, Any] = {"appid": cfg.appid, "mchid": cfg.mchid, "out_trade_no": t.out_trade_no, "transaction_id": t.trade_no,
                            "trade_type": "PAPAY", "trade_state": state,
                            "amount": {"total": t.amount_fen, "payer_total": t.amount_fen if t.status == "succeeded" else 0,
                                       "refunded": t.refunded_fen, "currency": "CNY"}}
    if t.paid_at:
        view["success_time"] = rfc3339(t.paid_at)
    if t.error_code:
        view["error_code"] = t.error_code
    return view


def refund_view(r: RefundRec) -> dict[str, Any]:
    return {"refund_id": r.refund_id, "out_refund_no": r.out_refund_no, "transaction_id": r.trade_no, "out_trade_no": r.out_trade_no,
            "status": "SUCCESS" if r.status == "succeeded" else "ABNORMAL", "create_time": rfc3339(r.at),
            "amount": {"refund": r.amount_fen, "currency": "CNY"}, **({"error_code": r.error_code} if r.error_code else {})}


def render_statement(cfg: WxPaySandboxConfig, trades: list[TradeRec], refunds: list[RefundRec]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["交易时间", "公众账号ID", "商户号", "微信订单号", "商户订单号", "交易类型", "交易状态", "应结订单金额",
                "微信退款单号", "商户退款单号", "退款金额", "退款状态", "商品名称"])
    rows: list[tuple[datetime, list[str]]] = []
    for t in trades:
        rows.append((t.paid_at, [plain_time(t.paid_at), cfg.appid, cfg.mchid, t.trade_no, t.out_trade_no, "PAPAY", "SUCCESS",  # type: ignore[arg-type]
                                 fen_to_yuan(t.amount_fen), "0", "0", "0.00", "", t.description]))
    for r in refunds:
        desc = next((t.description for t in trades if t.out_trade_no == r.out_trade_no), "")
        rows.append((r.at, [plain_time(r.at), cfg.appid, cfg.mchid, r.trade_no, r.out_trade_no, "PAPAY", "REFUND", "0.00",
                            r.refund_id, r.out_refund_no, fen_to_yuan(r.amount_fen), "SUCCESS", desc]))
    for _, cells in sorted(rows, key=lambda x: x[0]):
        w.writerow(["`" + c for c in cells])
    w.writerow(["总交易单数", "总退款单数", "应结订单总金额", "退款总金额"])
    w.writerow(["`" + c for c in (str(len(trades)), str(len(refunds)), fen_to_yuan(sum(t.amount_fen for t in trades)),
                                  fen_to_yuan(sum(r.amount_fen for r in refunds)))])
    return out.getvalue().encode("utf-8")


def create_app(config: WxPaySandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Answers are signed by this sandbox's own key; nothing here moves money.")
    books = Books("WX", seed=config.seed, clock=clock)
    serial = key_serial(config.key)
    merchant_serial = key_serial(config.merchant_key)
    bills: dict[str, bytes] = {}  # download token → file

    def signed_headers(body: bytes, *, tamper: bool = False) -> dict[str, str]:
        ts, nonce = str(int(books.wall().timestamp())), secrets.token_hex(16)
        signature = rsa_sign(config.key, f"{ts}\n{nonce}\n".encode() + body + b"\n")
        if tamper:  # a signature over something else: as an attacker without the key would send
            signature = rsa_sign(config.key, b"tampered" + body)
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature, "Wechatpay-Serial": serial}

    def answer(payload: dict[str, Any] | None, status: int = 200) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
        return Response(body, status_code=status, media_type="application/json", headers=signed_headers(body))

    def refuse(code: str, message: str, status: int = 400) -> Response:
        return answer({"code": code, "message": message}, status)

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        if event.kind == "payment":
            event_type = "TRANSACTION.SUCCESS" if rec.status == "succeeded" else "TRANSACTION.PAYERROR"
            resource, original = trade_view(rec, config), "transaction"
        elif event.kind == "refund":
            event_type = "REFUND.SUCCESS" if rec.status == "succeeded" else "REFUND.ABNORMAL"
            resource, original = refund_view(rec), "refund"
        else:
            event_type = "PAPAY.CONTRACT.ADD" if rec.status == "active" else "PAPAY.CONTRACT.DELETE"
            resource, original = contract_view(rec, config), "contract"
        nonce = secrets.token_hex(6)  # 12 characters: the GCM nonce
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        body = json.dumps({"id": event.event_id, "create_time": rfc3339(books.now()), "event_type": event_type,
                           "resource_type": "encrypt-resource", "summary": event_type,
                           "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": original, "associated_data": original,
                                        "nonce": nonce, "ciphertext": aes_gcm_encrypt(config.api_v3_key, nonce.encode(), original.encode(),
                                                                                      plaintext)}},
                          ensure_ascii=False, separators=(",", ":")).encode()
        return {"Content-Type": "application/json", **signed_headers(body, tamper=tamper)}, body

    notifier = Notifier(books, render, lambda resp: resp.status_code in (200, 204), callback_url=config.callback_url,
                        delays_ms=config.notify_delays_ms)
    admin.install(app, admin.Runtime(SandboxInfo("wxpay", TITLE, SCHEME, {"mchid": config.mchid, "serial": serial}), books, notifier,
                                     public_pem(config.key)))

    async def authenticate(request: Request) -> bytes:
        """The request's signature by the merchant key; SandboxRefusal(401) otherwise."""
        body = await request.body()
        root = request.scope.get("root_path", "")
        path = request.url.path[len(root):] if root and request.url.path.startswith(root) else request.url.path
        target = path + (f"?{request.url.query}" if request.url.query else "")
        auth = request.headers.get("authorization", "")
        fields: dict[str, str] = {}
        if auth.startswith(SCHEME + " "):
            for part in auth[len(SCHEME) + 1:].split(","):
                k, _, v = part.strip().partition("=")
                fields[k] = v.strip('"')
        ts = fields.get("timestamp", "")
        if (fields.get("mchid") != config.mchid or fields.get("serial_no") != merchant_serial or not ts.isdigit()
                or abs(int(books.wall().timestamp()) - int(ts)) > 300
                or not rsa_verify(config.merchant_key, f"{request.method}\n{target}\n{ts}\n{fields.get('nonce_str', '')}\n".encode()
                                  + body + b"\n", fields.get("signature"))):
            raise SandboxRefusal("SIGN_ERROR", "signature verification failed", 401)
        return body

    async def handle(request: Request, model: type[BaseModel] | None, work: Any) -> Response:
        try:
            body = await authenticate(request)
            await books.before_call()
            parsed = None
            if model is not None:
                try:
                    parsed = model.model_validate_json(body)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    return refuse("PARAM_ERROR", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
            result = work(parsed)
            await books.after_effect()
            return answer(result)
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    def check_merchant(mchid: str | None) -> None:
        if mchid != config.mchid:
            raise SandboxRefusal("MCH_NOT_EXISTS", "unknown merchant", 400)

    @app.post("/v3/papay/contracts", summary="Sign a password-free deduction contract (auto-confirmed by the sandbox holder)")
    async def sign(request: Request) -> Response:
        def work(req: ContractIn) -> dict[str, Any]:
            check_merchant(req.mchid)
            return contract_view(books.sign_agreement(req.out_contract_code, req.openid, req.deduct_limit.total), config)
        return await handle(request, ContractIn, work)

    @app.get("/v3/papay/contracts/out-contract-code/{code}", summary="Query a contract")
    async def contract(code: str, request: Request, mchid: str | None = None) -> Response:
        def work(_: None) -> dict[str, Any]:
            check_merchant(mchid)
            return contract_view(books.agreement(code), config)
        return await handle(request, None, work)

    @app.post("/v3/papay/contracts/out-contract-code/{code}/terminate", summary="Terminate a contract")
    async def terminate(code: str, request: Request) -> Response:
        def work(req: TerminateIn) -> dict[str, Any]:
            check_merchant(req.mchid)
            return contract_view(books.terminate_agreement(code), config)
        return await handle(request, TerminateIn, work)

    @app.post("/v3/papay/pay/transactions/apply", summary="Deduct under a contract (the patient's cash share only)")
    async def pay(request: Request) -> Response:
        def work(req: PayIn) -> dict[str, Any]:
            check_merchant(req.mchid)
            return trade_view(books.pay(req.out_trade_no, req.amount.total, req.description, req.contract_id, req.notify_url), config)
        return await handle(request, PayIn, work)

    @app.get("/v3/pay/transactions/out-trade-no/{out_trade_no}", summary="Query an order: the truth")
    async def query(out_trade_no: str, request: Request, mchid: str | None = None) -> Response:
        def work(_: None) -> dict[str, Any]:
            check_merchant(mchid)
            return trade_view(books.trade(out_trade_no), config)
        return await handle(request, None, work)

    @app.post("/v3/refund/domestic/refunds", summary="Refund (part of) a paid order")
    async def refund(request: Request) -> Response:
        def work(req: RefundIn) -> dict[str, Any]:
            trade = books.trade(req.out_trade_no)
            if req.amount.total != trade.amount_fen:
                raise SandboxRefusal("PARAM_ERROR", "amount.total differs from the order's amount")
            return refund_view(books.refund(req.out_trade_no, req.out_refund_no, req.amount.refund, req.notify_url))
        return await handle(request, RefundIn, work)

    @app.get("/v3/refund/domestic/refunds/{out_refund_no}", summary="Query a refund")
    async def refund_query(out_refund_no: str, request: Request) -> Response:
        return await handle(request, None, lambda _: refund_view(books.refund_of(out_refund_no)))

    @app.get("/v3/bill/tradebill", summary="The day's statement: a download URL and the file's SHA-1")
    async def tradebill(request: Request, bill_date: str = "", bill_type: str = "ALL") -> Response:
        def work(_: None) -> dict[str, Any]:
            try:
                day = date.fromisoformat(bill_date)
            except ValueError:
                raise SandboxRefusal("PARAM_ERROR", "bill_date must be YYYY-MM-DD") from None
            if bill_type != "ALL":
                raise SandboxRefusal("PARAM_ERROR", "only bill_type=ALL in the sandbox")
            content = render_statement(config, *books.statement(day))
            token = secrets.token_urlsafe(16)
            bills[token] = content
            base = admin.own_base_url(request)
            return {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                    "download_url": f"{base}/v3/billdownload/file?token={token}"}
        return await handle(request, None, work)

    @app.get("/v3/billdownload/file", summary="Download a statement file (unsigned; its hash was in the signed answer)")
    async def download(request: Request, token: str = "") -> Response:
        try:
            await authenticate(request)
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)
        content = bills.pop(token, None)
        if content is None:
            return refuse("RESOURCE_NOT_EXISTS", "no such file (a download URL is good once)", 404)
        return Response(content, media_type="text/csv; charset=utf-8")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": time.time()}

    return app
