"""SANDBOX wxpay: WeChat Pay API v3 (direct merchant, 委托代扣 papay) as a real HTTP service. Not WeChat Pay.

Checks each request's `WECHATPAY2-SHA256-RSA2048` Authorization (SHA256withRSA over
`METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` by the merchant's key, whose public half and serial it
is configured with); signs every answer and notification with its own key over
`TIMESTAMP\\nNONCE\\nBODY\\n` in `Wechatpay-Timestamp/-Nonce/-Signature/-Serial/-Signature-Type` headers,
the serial being its platform public-key id (`PUB_KEY_ID_…`) or — in certificate mode — the serial of its
newest platform certificate, which `GET /v3/certificates` hands out AEAD-encrypted under the API v3 key
(`POST /sandbox/rotate-certificate` makes a new key and certificate, as WeChat's rotation does).
Notification resources are AES-256-GCM under the API v3 key. Amounts are fen on the wire, yuan in bills;
bills are gzip (`tar_type=GZIP`) with the SHA1 of the decompressed file in the signed answer.

The deduction answers 204 (accepted); its result is booked at once (or after `settle_delay_ms`) and
told by TRANSACTION.* notification and the order query. Each deduction needs a 预扣费通知 first
(`POST /v3/papay/contracts/{contract_id}/notify`, for at least its amount; one deduction per notice) when the
template requires it (`deduct_notice_required`). Contracts are signed by the holder on WeChat's page:
`POST /v3/papay/sign/contracts/pre-entrust-sign` opens a session and answers its `pre_entrustweb_id` and
the page's URL, the holder confirms or declines there (signing_page.py), and a signed contract is told by
PAPAY.SIGN to the `contract_notify_url` and by the contract query.

Medical-insurance mixed orders (医保支付: `/v3/med-ins/…`, the hospital as merchant of record, yibao as the insurance
platform behind them) are in wxpay_medins.py, mounted on the same app.

    yibao sandbox wxpay --port 8711 --callback http://127.0.0.1:8000/api/v1/channels/wxpay/notify
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.crypto import aes_gcm_encrypt, generate_rsa_key, key_serial, public_pem, rsa_sign, rsa_verify
from yibao.channels.wire import fen_to_yuan, plain_time, rfc3339
from yibao.channels.wxpay.transformers import DEFAULT_PLAN_ID, HEADER, SUMMARY, public_key_id
from yibao.sandbox.channels import admin, signing_page
from yibao.sandbox.channels.core import AgreementRec, Books, Event, RefundRec, SandboxInfo, SandboxRefusal, TradeRec
from yibao.sandbox.channels.notifier import REAL_WORLD_DELAYS_MS, Notifier

SCHEME = "WECHATPAY2-SHA256-RSA2048"
TITLE = "yibao SANDBOX wxpay (WeChat Pay API v3 protocol; not a real payment institution)"


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
    identification: str = "public_key"  # public_key: Wechatpay-Serial is PUB_KEY_ID_…; certificate: platform certificates
    plan_id: int = DEFAULT_PLAN_ID
    plan_limit_fen: int = 50_000_00  # the template's per-deduction limit, shown on the signing page
    deduct_notice_required: bool = True  # the template requires a 预扣费通知 (booking) before each deduction
    merchant_name: str = "医保便捷支付平台（沙箱商户）"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a field the API does not have (a fund share, say) is an error


class Amount(_Strict):
    total: int = Field(gt=0, le=10**12)
    currency: str = Field("CNY", pattern="^CNY$")


class RefundAmount(_Strict):
    refund: int = Field(gt=0, le=10**12)
    total: int = Field(gt=0, le=10**12)
    currency: str = Field(pattern="^CNY$")


class DeviceInfo(_Strict):
    device_id: str | None = Field(None, max_length=128)
    ip: str | None = Field(None, max_length=64)


class PreEntrustSignIn(_Strict):
    """`POST /v3/papay/sign/contracts/pre-entrust-sign` (普通商户 代扣预签约)."""

    sign_scene: str = Field(pattern="^SIGN_SCENE_(APP|QRCODE)$")
    appid: str
    openid: str | None = Field(None, max_length=128)
    plan_id: int
    out_contract_code: str = Field(min_length=1, max_length=32, pattern="^[0-9A-Za-z]+$")
    contract_display_account: str = Field(min_length=1, max_length=32)
    contract_notify_url: str = Field(min_length=1, max_length=256)
    out_user_code: str = Field(min_length=1, max_length=64)
    device_info: DeviceInfo
    return_url: str | None = Field(None, max_length=256)


class Duration(_Strict):
    count: int = Field(gt=0, le=31)
    unit: str = Field(pattern="^DAY$")


class EstimatedAmount(_Strict):
    amount: int = Field(gt=0, le=10**12)
    currency: str = Field("CNY", pattern="^CNY$")


class DeductNoticeIn(_Strict):
    """`POST /v3/papay/contracts/{contract_id}/notify` (预扣费通知)."""

    mchid: str
    appid: str
    deduct_duration: Duration
    estimated_amount: EstimatedAmount


class TerminateIn(_Strict):
    contract_termination_remark: str = Field(min_length=1, max_length=256)


class PayIn(_Strict):
    appid: str
    out_trade_no: str = Field(min_length=6, max_length=32)
    description: str = Field(min_length=1, max_length=127)
    transaction_notify_url: str | None = Field(None, max_length=256)  # required by WeChat; the sandbox falls back to its callback
    contract_id: str = Field(min_length=1, max_length=32)
    amount: Amount
    attach: str | None = Field(None, max_length=128)
    goods_tag: str | None = Field(None, max_length=32)


class RefundIn(_Strict):
    out_trade_no: str | None = Field(None, min_length=6, max_length=32)
    transaction_id: str | None = Field(None, min_length=1, max_length=32)
    out_refund_no: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(None, max_length=80)
    notify_url: str | None = Field(None, max_length=256)
    funds_account: str | None = Field(None, pattern="^AVAILABLE$")
    amount: RefundAmount


@dataclass
class Platform:
    """The keys the sandbox signs with. Certificate mode keeps every certificate it issued (newest signs)."""

    config: WxPaySandboxConfig
    certificates: list[tuple[RSAPrivateKey, x509.Certificate]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.config.identification not in ("public_key", "certificate"):
            raise ValueError("identification must be public_key or certificate")
        if self.config.identification == "certificate":
            self.certificates.append((self.config.key, self._certificate(self.config.key)))

    def _certificate(self, key: RSAPrivateKey) -> x509.Certificate:
        now = datetime.now(timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yibao SANDBOX wxpay platform (not Tenpay)"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "yibao SANDBOX")])
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(int(secrets.token_hex(20), 16) >> 1 | 1 << 150).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=5 * 365)).sign(key, hashes.SHA256()))

    def rotate(self) -> str:
        """A new platform key and certificate; the old ones stay listed (and valid) — as in WeChat's rotation."""
        if self.config.identification != "certificate":
            raise SandboxRefusal("INVALID_REQUEST", "this sandbox identifies its key by public-key id, not certificates")
        key = generate_rsa_key()
        with self.lock:
            self.certificates.append((key, self._certificate(key)))
        return self.serial()

    def signer(self) -> tuple[RSAPrivateKey, str]:
        with self.lock:
            if self.certificates:
                key, cert = self.certificates[-1]
                return key, format(cert.serial_number, "X")
        return self.config.key, public_key_id(self.config.key)

    def serial(self) -> str:
        return self.signer()[1]

    def known_serials(self) -> set[str]:
        with self.lock:
            return {format(c.serial_number, "X") for _, c in self.certificates} | {public_key_id(self.config.key)}

    def listing(self, now: datetime) -> dict[str, Any]:
        data = []
        with self.lock:
            certs = list(self.certificates)
        for _, cert in certs:
            nonce = secrets.token_hex(6)
            pem = cert.public_bytes(serialization.Encoding.PEM)
            data.append({"serial_no": format(cert.serial_number, "X"), "effective_time": rfc3339(cert.not_valid_before_utc),
                         "expire_time": rfc3339(cert.not_valid_after_utc),
                         "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate",
                                                 "ciphertext": aes_gcm_encrypt(self.config.api_v3_key, nonce.encode(), b"certificate", pem)}})
        return {"data": data}


def contract_view(a: AgreementRec, cfg: WxPaySandboxConfig) -> dict[str, Any]:
    view: dict[str, Any] = {"mchid": cfg.mchid, "appid": cfg.appid, "contract_id": a.agreement_no, "plan_id": cfg.plan_id,
                            "out_contract_code": a.out_agreement_no, "openid": a.holder_token,
                            "contract_display_account": a.out_agreement_no,
                            "contract_state": "SIGNED" if a.status == "active" else "TERMINATED",
                            # SANDBOX ONLY: the limit the holder agreed to on the page; real answers carry none (the plan has it).
                            "deduct_limit": {"total": a.limit_fen, "currency": "CNY"}}
    if a.status == "active":
        view["contract_signed_time"] = rfc3339(a.at)
    else:
        view["contract_terminated_time"] = rfc3339(a.at)
    return view


def trade_view(t: TradeRec, cfg: WxPaySandboxConfig, openid: str = "") -> dict[str, Any]:
    state = {"succeeded": "SUCCESS", "processing": "ACCEPT", "failed": "PAY_FAIL"}[t.status]
    if t.status == "succeeded" and t.refunded_fen:
        state = "REFUND"
    desc = {"SUCCESS": "支付成功", "REFUND": "转入退款", "ACCEPT": "已接收，等待扣款"}.get(state, t.error_code or "支付失败")
    view: dict[str, Any] = {"appid": cfg.appid, "mchid": cfg.mchid, "out_trade_no": t.out_trade_no, "transaction_id": t.trade_no,
                            "trade_type": "PAP", "trade_state": state, "trade_state_desc": desc,
                            "bank_type": "OTHERS", "attach": "", "payer": {"openid": openid},
                            "amount": {"total": t.amount_fen, "payer_total": t.amount_fen if t.status == "succeeded" else 0,
                                       "currency": "CNY", "payer_currency": "CNY"}}
    if t.paid_at:
        view["success_time"] = rfc3339(t.paid_at)
    return view


def _refund_amount(r: RefundRec, total: int) -> dict[str, Any]:
    return {"total": total, "refund": r.amount_fen, "payer_total": total, "payer_refund": r.amount_fen,
            "settlement_total": total, "settlement_refund": r.amount_fen, "discount_refund": 0, "currency": "CNY", "refund_fee": 0}


def refund_view(r: RefundRec, total: int) -> dict[str, Any]:
    view: dict[str, Any] = {"refund_id": r.refund_id, "out_refund_no": r.out_refund_no, "transaction_id": r.trade_no,
                            "out_trade_no": r.out_trade_no, "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
                            "create_time": rfc3339(r.at), "status": "SUCCESS" if r.status == "succeeded" else "CLOSED",
                            "funds_account": "AVAILABLE", "amount": _refund_amount(r, total)}
    if r.status == "succeeded":
        view["success_time"] = rfc3339(r.at)
    return view


def refund_resource(r: RefundRec, total: int, mchid: str) -> dict[str, Any]:
    """A REFUND.* notification's resource: `refund_status`, not `status`."""
    view: dict[str, Any] = {"mchid": mchid, "transaction_id": r.trade_no, "out_trade_no": r.out_trade_no, "refund_id": r.refund_id,
                            "out_refund_no": r.out_refund_no, "refund_status": "SUCCESS" if r.status == "succeeded" else "CLOSED",
                            "user_received_account": "支付用户零钱",
                            "amount": {"total": total, "refund": r.amount_fen, "payer_total": total, "payer_refund": r.amount_fen}}
    if r.status == "succeeded":
        view["success_time"] = rfc3339(r.at)
    return view


def render_statement(cfg: WxPaySandboxConfig, trades: list[TradeRec], refunds: list[RefundRec],
                     openids: dict[str, str] | None = None) -> bytes:
    """The day's trade bill (bill_type=ALL), uncompressed: 27 backtick-prefixed columns, then the 7-field summary."""
    openids = openids or {}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(HEADER)
    rows: list[tuple[datetime, list[str]]] = []
    for t in trades:
        amount = fen_to_yuan(t.amount_fen)
        rows.append((t.paid_at, [plain_time(t.paid_at), cfg.appid, cfg.mchid, "0", "", t.trade_no, t.out_trade_no,  # type: ignore[arg-type]
                                 openids.get(t.agreement_no, ""), "PAP", "SUCCESS", "OTHERS", "CNY", amount, "0.00", "0", "0", "0.00",
                                 "0.00", "", "", t.description, "", "0.00", "0.00%", amount, "0.00", ""]))
    by_trade = {t.out_trade_no: t for t in trades}
    for r in refunds:
        t = by_trade.get(r.out_trade_no)
        refund = fen_to_yuan(r.amount_fen)
        rows.append((r.at, [plain_time(r.at), cfg.appid, cfg.mchid, "0", "", r.trade_no, r.out_trade_no,
                            openids.get(t.agreement_no, "") if t else "", "PAP", "REFUND", "OTHERS", "CNY", "0.00", "0.00", r.refund_id,
                            r.out_refund_no, refund, "0.00", "ORIGINAL", "SUCCESS", t.description if t else "", "", "0.00", "0.00%",
                            "0.00", refund, ""]))
    for _, cells in sorted(rows, key=lambda x: x[0]):
        w.writerow(["`" + c for c in cells])
    w.writerow(SUMMARY)
    settled = fen_to_yuan(sum(t.amount_fen for t in trades))
    refunded = fen_to_yuan(sum(r.amount_fen for r in refunds))
    w.writerow(["`" + c for c in (str(len(rows)), settled, refunded, "0.00", "0.00", settled, refunded)])
    return out.getvalue().encode("utf-8")


def create_app(config: WxPaySandboxConfig, *, clock: Any = None) -> FastAPI:
    app = FastAPI(title=TITLE, version="1", description="SANDBOX. Answers are signed by this sandbox's own key; nothing here moves money.")
    books = Books("WX", seed=config.seed, clock=clock)
    bookings: dict[str, int] = {}  # contract_id → the estimated amount of its one pending 预扣费通知
    platform = Platform(config)
    merchant_serial = key_serial(config.merchant_key)
    bills: dict[str, bytes] = {}  # download token → file as served
    app.state.wxpay_platform = platform

    def signed_headers(body: bytes, *, tamper: bool = False) -> dict[str, str]:
        key, serial = platform.signer()
        ts, nonce = str(int(books.wall().timestamp())), secrets.token_hex(16).upper()
        signature = rsa_sign(key, f"{ts}\n{nonce}\n".encode() + body + b"\n")
        if tamper:  # a signature over something else: as an attacker without the key would send
            signature = rsa_sign(key, b"tampered" + body)
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature, "Wechatpay-Serial": serial,
                "Wechatpay-Signature-Type": SCHEME, "Request-ID": secrets.token_hex(16)}

    def answer(payload: dict[str, Any] | None, status: int = 200) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
        return Response(body, status_code=status, media_type="application/json" if body else None, headers=signed_headers(body))

    def refuse(code: str, message: str, status: int = 400) -> Response:
        return answer({"code": code, "message": message}, status)

    def openid_of(agreement_no: str) -> str:
        a = books.agreement_by_no(agreement_no)
        return a.holder_token if a else ""

    def total_of(out_trade_no: str) -> int:
        with books.lock:
            t = books.trades.get(out_trade_no)
        return t.amount_fen if t else 0

    def render(event: Event, tamper: bool) -> tuple[dict[str, str], bytes]:
        rec = event.record
        if event.kind == "payment":
            event_type, summary = ("TRANSACTION.SUCCESS", "支付成功") if rec.status == "succeeded" else ("TRANSACTION.FAIL", "支付失败")
            resource, original = trade_view(rec, config, openid_of(rec.agreement_no)), "transaction"
        elif event.kind == "refund":
            event_type, summary = ("REFUND.SUCCESS", "退款成功") if rec.status == "succeeded" else ("REFUND.CLOSED", "退款关闭")
            resource, original = refund_resource(rec, total_of(rec.out_trade_no), config.mchid), "refund"
        else:
            event_type, summary = ("PAPAY.SIGN", "签约成功") if rec.status == "active" else ("PAPAY.TERMINATE", "解约成功")
            resource, original = contract_view(rec, config), "papay"
        nonce = secrets.token_hex(6)  # 12 characters: the GCM nonce
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        body = json.dumps({"id": event.event_id, "create_time": rfc3339(books.now()), "resource_type": "encrypt-resource",
                           "event_type": event_type, "summary": summary,
                           "resource": {"original_type": original, "algorithm": "AEAD_AES_256_GCM", "ciphertext": aes_gcm_encrypt(
                               config.api_v3_key, nonce.encode(), original.encode(), plaintext), "associated_data": original,
                               "nonce": nonce}},
                          ensure_ascii=False, separators=(",", ":")).encode()
        return {"Content-Type": "application/json", **signed_headers(body, tamper=tamper)}, body

    # WeChat counts a notification delivered on HTTP 200 or 204 (anything else, or no answer in 5 s: resent).
    notifier = Notifier(books, render, lambda resp: resp.status_code in (200, 204), callback_url=config.callback_url,
                        delays_ms=config.notify_delays_ms)
    admin.install(app, admin.Runtime(SandboxInfo("wxpay", TITLE, SCHEME, {"mchid": config.mchid, "serial": platform.serial(),
                                                                         "identification": config.identification,
                                                                         "plan_id": config.plan_id}),
                                     books, notifier, public_pem(config.key)))

    from yibao.sandbox.channels import wxpay_medins

    med_ins = wxpay_medins.install(app, config=config, books=books, platform=platform, answer=answer, refuse=refuse,
                                   signed_headers=signed_headers, yibao_mchid=config.mchid, yibao_serial=merchant_serial)
    app.state.sandbox.med_ins = med_ins

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
            raise SandboxRefusal("SIGN_ERROR", "签名错误 (signature verification failed)", 401)
        serial = request.headers.get("wechatpay-serial")
        if serial is not None and serial.upper() not in platform.known_serials():
            raise SandboxRefusal("PARAM_ERROR", "Wechatpay-Serial 不是有效的平台公钥ID或证书序列号 (unknown Wechatpay-Serial)")
        return body

    async def handle(request: Request, model: type[BaseModel] | None, work: Any, *, status: int = 200, knobs: bool = True) -> Response:
        """``knobs``: inject the failure knobs (latency, errors, lost answers) — every business call; not the notice
        before a deduction, so a knob meant for the deduction is not spent on it."""
        try:
            body = await authenticate(request)
            if knobs:
                await books.before_call()
            parsed = None
            if model is not None:
                try:
                    parsed = model.model_validate_json(body)
                except ValidationError as exc:
                    first = exc.errors()[0]
                    return refuse("PARAM_ERROR", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
            result = work(parsed)
            if knobs:
                await books.after_effect()
            return answer(result if status != 204 else None, status)
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    def check_appid(appid: str | None) -> None:
        if appid != config.appid:
            raise SandboxRefusal("APPID_MCHID_NOT_MATCH", "appid 与商户号不匹配 (appid and mchid do not match)")

    def check_mchid(mchid: str | None) -> None:
        if mchid != config.mchid:
            raise SandboxRefusal("PARAM_ERROR", "mchid 与请求商户号不符 (mchid is not the requester's)")

    def check_plan(plan_id: int) -> None:
        if plan_id != config.plan_id:
            raise SandboxRefusal("PARAM_ERROR", "plan_id 不存在 (no such plan)", 400)

    # ---- the platform certificates ----
    @app.get("/v3/certificates", summary="Platform certificates, AEAD-encrypted under the API v3 key (certificate mode)")
    async def certificates(request: Request) -> Response:
        def work(_: None) -> dict[str, Any]:
            if config.identification != "certificate":
                raise SandboxRefusal("RESOURCE_NOT_EXISTS", "此商户使用平台公钥验签 (this merchant uses the platform public key)", 404)
            return platform.listing(books.wall())
        return await handle(request, None, work)

    @app.post("/sandbox/rotate-certificate", tags=["SANDBOX admin"], summary="SANDBOX: a new platform key and certificate (rotation)")
    async def rotate() -> dict[str, Any]:
        try:
            return {"serial_no": platform.rotate()}
        except SandboxRefusal as exc:
            return {"error": exc.code, "message": exc.message}

    # ---- contracts: signed by the holder on WeChat's page (signing_page.py), opened by pre-entrust-sign ----
    signing_page.install(app, books, institution="微信支付 WeChat Pay")

    @app.post("/v3/papay/sign/contracts/pre-entrust-sign", summary="Pre-sign: a session and the URL of WeChat's signing page")
    async def pre_entrust_sign(request: Request) -> Response:
        base = admin.own_base_url(request)

        def work(req: PreEntrustSignIn) -> dict[str, Any]:
            check_appid(req.appid)
            check_plan(req.plan_id)
            # SANDBOX: the holder is who the merchant says (out_user_code); at WeChat it is whoever signs in WeChat.
            session = books.open_signing(req.out_contract_code, req.out_user_code, config.plan_limit_fen, merchant=config.merchant_name,
                                         display_name=req.contract_display_account, return_url=req.return_url,
                                         notify_url=req.contract_notify_url)
            return {"pre_entrustweb_id": session.id, "redirect_url": signing_page.page_url(base, session.id)}
        return await handle(request, PreEntrustSignIn, work)

    @app.post("/v3/papay/contracts/{contract_id}/notify", summary="预扣费通知: tell the holder of a deduction before it is made (204)")
    async def deduct_notice(contract_id: str, request: Request) -> Response:
        def work(req: DeductNoticeIn) -> None:
            check_appid(req.appid)
            check_mchid(req.mchid)
            rec = books.agreement_by_no(contract_id)
            if rec is None:
                raise SandboxRefusal("RESOURCE_NOT_EXISTS", "签约协议不存在 (no such contract)", 404)
            if rec.status != "active":
                raise SandboxRefusal("INVALID_REQUEST", "签约协议已解约 (AGREEMENT_NOT_ACTIVE: the contract was terminated)")
            with books.lock:
                bookings[contract_id] = req.estimated_amount.amount
        return await handle(request, DeductNoticeIn, work, status=204, knobs=False)

    @app.get("/v3/papay/sign/contracts/plan-id/{plan_id}/out-contract-code/{code}", summary="Query a contract by plan and contract code")
    async def contract(plan_id: int, code: str, request: Request) -> Response:
        def work(_: None) -> dict[str, Any]:
            check_plan(plan_id)
            return contract_view(books.agreement(code), config)
        return await handle(request, None, work)

    @app.get("/v3/papay/sign/contracts/{contract_id}", summary="Query a contract by its contract_id")
    async def contract_by_id(contract_id: str, request: Request) -> Response:
        def work(_: None) -> dict[str, Any]:
            rec = books.agreement_by_no(contract_id)
            if rec is None:
                raise SandboxRefusal("RESOURCE_NOT_EXISTS", "签约协议不存在 (no such contract)", 404)
            return contract_view(rec, config)
        return await handle(request, None, work)

    @app.post("/v3/papay/sign/contracts/plan-id/{plan_id}/out-contract-code/{code}/terminate", summary="Terminate a contract")
    async def terminate(plan_id: int, code: str, request: Request) -> Response:
        def work(_: TerminateIn) -> dict[str, Any]:
            check_plan(plan_id)
            rec = books.terminate_agreement(code)
            return {"mchid": config.mchid, "plan_id": config.plan_id, "out_contract_code": rec.out_agreement_no}
        return await handle(request, TerminateIn, work)

    # ---- deductions and orders ----
    @app.post("/v3/papay/pay/transactions/apply", summary="Apply for a deduction under a contract: 204, the result comes later")
    async def pay(request: Request) -> Response:
        def work(req: PayIn) -> None:
            check_appid(req.appid)
            if config.deduct_notice_required:
                with books.lock:
                    new = req.out_trade_no not in books.trades
                    booked = bookings.get(req.contract_id)
                    if new and (booked is None or req.amount.total > booked):
                        raise SandboxRefusal("INVALID_REQUEST", "扣费前须发送预扣费通知，且扣款金额不得高于预计扣费金额 "
                                             "(a deduction needs a notice first, for at least its amount)")
                    if new:
                        del bookings[req.contract_id]  # one deduction per notice
            books.pay(req.out_trade_no, req.amount.total, req.description, req.contract_id, req.transaction_notify_url)
        return await handle(request, PayIn, work, status=204)

    @app.get("/v3/pay/transactions/out-trade-no/{out_trade_no}", summary="Query an order: the truth")
    async def query(out_trade_no: str, request: Request, mchid: str | None = None) -> Response:
        def work(_: None) -> dict[str, Any]:
            check_mchid(mchid)
            t = books.trade(out_trade_no)
            return trade_view(t, config, openid_of(t.agreement_no))
        return await handle(request, None, work)

    @app.get("/v3/pay/transactions/id/{transaction_id}", summary="Query an order by WeChat's transaction_id")
    async def query_by_id(transaction_id: str, request: Request, mchid: str | None = None) -> Response:
        def work(_: None) -> dict[str, Any]:
            check_mchid(mchid)
            books.settle_due()
            with books.lock:
                t = books.trades.by_trade_no(transaction_id)
            if t is None:
                raise SandboxRefusal("ORDER_NOT_EXIST", "订单不存在 (no such order)", 404)
            return trade_view(t, config, openid_of(t.agreement_no))
        return await handle(request, None, work)

    # ---- refunds ----
    @app.post("/v3/refund/domestic/refunds", summary="Refund (part of) a paid order")
    async def refund(request: Request) -> Response:
        signer = request.headers.get("authorization", "").partition('mchid="')[2].partition('"')[0]
        if signer in med_ins.merchants:  # a hospital refunding the self-pay part of its medical-insurance order
            try:
                mchid, body = await med_ins.merchant_of(request)
            except SandboxRefusal as exc:
                return refuse(exc.code, exc.message, exc.status)
            return await med_ins.hospital_refund(request, mchid, body)

        def work(req: RefundIn) -> dict[str, Any]:
            out_trade_no = req.out_trade_no
            if out_trade_no is None and req.transaction_id is not None:
                with books.lock:
                    found = books.trades.by_trade_no(req.transaction_id)
                    out_trade_no = found.out_trade_no if found is not None else None
            if out_trade_no is None:
                raise SandboxRefusal("PARAM_ERROR", "transaction_id 与 out_trade_no 须填一个 (transaction_id or out_trade_no)")
            trade = books.trade(out_trade_no)
            if req.amount.total != trade.amount_fen:
                raise SandboxRefusal("PARAM_ERROR", "amount.total 与原订单金额不符 (amount.total differs from the order's amount)")
            return refund_view(books.refund(out_trade_no, req.out_refund_no, req.amount.refund, req.notify_url), trade.amount_fen)
        return await handle(request, RefundIn, work)

    @app.get("/v3/refund/domestic/refunds/{out_refund_no}", summary="Query a refund")
    async def refund_query(out_refund_no: str, request: Request) -> Response:
        def work(_: None) -> dict[str, Any]:
            r = books.refund_of(out_refund_no)
            return refund_view(r, total_of(r.out_trade_no))
        return await handle(request, None, work)

    # ---- bills ----
    @app.get("/v3/bill/tradebill", summary="The day's trade bill: a download URL and the SHA1 of the (decompressed) file")
    async def tradebill(request: Request, bill_date: str = "", bill_type: str = "ALL", tar_type: str | None = None) -> Response:
        def work(_: None) -> dict[str, Any]:
            try:
                day = date.fromisoformat(bill_date)
            except ValueError:
                raise SandboxRefusal("PARAM_ERROR", "bill_date 格式应为 YYYY-MM-DD (bill_date must be YYYY-MM-DD)") from None
            if bill_type != "ALL":
                raise SandboxRefusal("PARAM_ERROR", "沙箱仅提供 bill_type=ALL (only bill_type=ALL in the sandbox)")
            if tar_type not in (None, "GZIP"):
                raise SandboxRefusal("PARAM_ERROR", "tar_type 仅可为 GZIP (tar_type is GZIP or absent)")
            trades, refunds = books.statement(day)
            with books.lock:
                openids = {a.agreement_no: a.holder_token for a in books.agreements.values()}
            content = render_statement(config, trades, refunds, openids)
            token = secrets.token_urlsafe(16)
            bills[token] = gzip.compress(content, mtime=0) if tar_type == "GZIP" else content
            base = admin.own_base_url(request)
            return {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                    "download_url": f"{base}/v3/billdownload/file?token={token}"}
        return await handle(request, None, work)

    @app.get("/v3/billdownload/file", summary="Download a bill (unsigned; its hash was in the signed answer)")
    async def download(request: Request, token: str = "") -> Response:
        try:
            await authenticate(request)
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)
        content = bills.pop(token, None)
        if content is None:
            return refuse("RESOURCE_NOT_EXISTS", "账单文件不存在或已下载 (no such file: a download URL is good once)", 404)
        return Response(content, media_type="application/octet-stream")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "sandbox": True, "at": time.time()}

    return app
