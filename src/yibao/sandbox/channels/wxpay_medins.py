"""SANDBOX wxpay: WeChat Pay 医保支付 (medical-insurance mixed orders) as a real HTTP service. Not WeChat Pay.

The hospital is the merchant of record: it signs its API v3 requests with its own merchant key (registered with the
sandbox by `PUT /sandbox/med-ins/merchants`, as a real merchant is onboarded), and the self-pay part is collected for
it. yibao is the insurance platform behind the wallet: the sandbox calls it for the holder's authorisation
(authCode → pay_auth_no), to check a new order's fee parts against what yibao holds for `pay_order_id`, to record the
self-pay request before it collects, and to say what became of the self-pay part — each call signed with the
sandbox's platform key over API v3's request message (`PUT /sandbox/med-ins/platform` tells it where yibao is).

    POST /v3/med-ins/orders                         the hospital's order (mix_pay_type, order_type, the fee parts): checked, MIX_PAY_CREATED
    GET  /v3/med-ins/orders/mix-trade-no/{id}       its state (mix_pay_status, self_pay_status, med_ins_pay_status)
    POST /v3/med-ins/refunds/notify?mix_trade_no=   the hospital says the insurance part was refunded at the platform (204)
    POST /v3/refund/domestic/refunds                (a hospital's) the self-pay part refunded: the normal refund, by out_trade_no
    callback_url                                    MEDICAL_INSURANCE.SUCCESS once both parts succeeded
    POST /sandbox-holder/med-ins/authorise          SANDBOX ONLY: the hospital's mini-program hands WeChat the holder's authCode
    POST /sandbox-holder/med-ins/orders/{id}/pay    SANDBOX ONLY: the holder confirms in WeChat (wx.requestMedicalInsurancePay)

What is guessed is marked in docs/channels.md "Medical-insurance orders".
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.crypto import aes_gcm_encrypt, rsa_sign, rsa_verify
from yibao.channels.wire import rfc3339
from yibao.domain.med_ins import MIX_PAY_TYPES, Parts, identity_error
from yibao.sandbox.channels.core import SandboxRefusal

log = logging.getLogger("yibao.sandbox.wxpay")
SCHEME = "WECHATPAY2-SHA256-RSA2048"
ORDER_TYPES = ("REG_PAY", "DIAG_PAY", "COVID_EXAM_PAY", "IN_HOSP_PAY", "PHARMACY_PAY", "INSURANCE_PAY", "INT_REG_PAY", "INT_RE_DIAG_PAY",
               "INT_RX_PAY", "COVID_ANTIGEN_PAY", "MED_PAY")  # [guess: the list beyond REG/DIAG/IN_HOSP/PHARMACY_PAY]


@dataclass
class Merchant:
    mchid: str
    serial_no: str
    key: RSAPublicKey
    api_v3_key: bytes


@dataclass
class MixOrder:
    mix_trade_no: str
    mchid: str
    request: dict[str, Any]  # the order as the hospital sent it (its own fields, answered back)
    parts: Parts
    wechat_pay_cash_fee: int
    created_at: datetime
    mix_pay_status: str = "MIX_PAY_CREATED"
    self_pay_status: str = "SELF_PAY_CREATED"
    med_ins_pay_status: str = "MED_INS_PAY_CREATED"
    paid_time: datetime | None = None
    cash_refunded: int = 0
    insurance_refunded: int = 0
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)  # out_refund_no → the refund (cash, insurance)
    fail_reason: str | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CashAdd(_Strict):
    cash_add_fee: int = Field(ge=0, le=10**12)
    cash_add_type: str = Field(pattern="^(DEFAULT_ADD_TYPE|FREIGHT|OTHER_MEDICAL_EXPENSES)$")


class CashReduce(_Strict):
    cash_reduce_fee: int = Field(ge=0, le=10**12)
    cash_reduce_type: str = Field(pattern="^(DEFAULT_REDUCE_TYPE|HOSPITAL_REDUCE|PHARMACY_DISCOUNT|DISCOUNT|PRE_PAYMENT|DEPOSIT_DEDUCTION)$")


class MedInsOrderIn(_Strict):
    mix_pay_type: str
    order_type: str
    appid: str = Field(min_length=1, max_length=32)
    sub_appid: str | None = Field(None, max_length=32)
    openid: str = Field(min_length=1, max_length=128)
    sub_openid: str | None = Field(None, max_length=128)
    payer: dict[str, Any] | None = None  # name / id_digest, RSA-OAEP encrypted: not read by the sandbox (docs/channels.md)
    pay_for_relatives: bool = False
    relative: dict[str, Any] | None = None
    out_trade_no: str = Field(min_length=6, max_length=64)
    serial_no: str = Field(min_length=1, max_length=20)
    pay_order_id: str | None = Field(None, max_length=64)
    pay_auth_no: str | None = Field(None, max_length=40)
    geo_location: str | None = Field(None, max_length=40)
    city_id: str = Field(min_length=1, max_length=8)
    med_inst_name: str = Field(min_length=1, max_length=128)
    med_inst_no: str = Field(min_length=1, max_length=32)
    med_ins_order_create_time: str = Field(min_length=1, max_length=64)
    total_fee: int = Field(ge=0, le=10**12)
    med_ins_gov_fee: int = Field(0, ge=0, le=10**12)
    med_ins_self_fee: int = Field(0, ge=0, le=10**12)
    med_ins_other_fee: int = Field(0, ge=0, le=10**12)
    med_ins_cash_fee: int = Field(0, ge=0, le=10**12)
    wechat_pay_cash_fee: int = Field(0, ge=0, le=10**12)
    cash_add_detail: list[CashAdd] | None = None
    cash_reduce_detail: list[CashReduce] | None = None
    callback_url: str = Field(min_length=1, max_length=256)
    prepay_id: str | None = Field(None, max_length=64)
    passthrough_request_content: str | None = Field(None, max_length=2048)
    extends: str | None = Field(None, max_length=2048)
    attach: str | None = Field(None, max_length=128)
    channel_no: str | None = Field(None, max_length=32)
    med_ins_test_env: bool = False


class RefundNotifyIn(_Strict):
    med_refund_total_fee: int = Field(ge=0, le=10**12)
    med_refund_gov_fee: int = Field(ge=0, le=10**12)
    med_refund_self_fee: int = Field(ge=0, le=10**12)
    med_refund_other_fee: int = Field(ge=0, le=10**12)
    refund_time: str = Field(min_length=1, max_length=64)
    out_refund_no: str = Field(min_length=1, max_length=64)


class CashRefundIn(_Strict):
    out_trade_no: str = Field(min_length=6, max_length=64)
    out_refund_no: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(None, max_length=80)
    notify_url: str | None = Field(None, max_length=256)
    funds_account: str | None = Field(None, pattern="^AVAILABLE$")
    amount: dict[str, Any]


class AuthoriseIn(_Strict):
    """SANDBOX ONLY: the hospital's mini-program got the holder's authCode from the insurance platform's authorisation page."""

    appid: str
    openid: str = Field(min_length=1, max_length=128)
    auth_code: str = Field(min_length=1, max_length=64)
    med_inst_no: str = Field(min_length=1, max_length=20)  # the hospital the pay_auth_no is for (as in the order, WeChat's name)


class HolderPayIn(_Strict):
    """SANDBOX ONLY: the holder confirms in WeChat; ``simulate`` makes the self-pay part fail, or loses the sandbox's word to
    the platform after it collected (as a crash of the wallet's call would)."""

    simulate: str = Field("SUCCESS", pattern="^(SUCCESS|SELF_PAY_FAIL|LOSE_RESULT)$")


class MedIns:
    """The sandbox's mixed orders, the hospitals registered as merchants, and where the insurance platform is."""

    def __init__(self, *, signer: Callable[[], tuple[Any, str]], wall: Callable[[], datetime], appid: str) -> None:
        self.signer, self.wall, self.appid = signer, wall, appid
        self.merchants: dict[str, Merchant] = {}
        self.orders: dict[str, MixOrder] = {}
        self.by_out_trade_no: dict[tuple[str, str], MixOrder] = {}  # (mchid, out_trade_no) → its first order: no scan per call
        self.platform_url: str | None = None  # yibao's wallet API for this sandbox: …/api/v1/channels/{pi}/med-ins
        self.lock = threading.Lock()
        self.callbacks: list[asyncio.Task[Any]] = []

    # -- signed calls to the insurance platform --
    async def platform(self, action: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not self.platform_url:
            raise SandboxRefusal("SYSTEM_ERROR", "医保平台未配置 (the sandbox knows no insurance platform: PUT /sandbox/med-ins/platform)", 500)
        url = f"{self.platform_url.rstrip('/')}/{action}"
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        key, serial = self.signer()
        ts, nonce = str(int(self.wall().timestamp())), secrets.token_hex(16).upper()
        path = urlsplit(url).path
        signature = rsa_sign(key, f"POST\n{path}\n{ts}\n{nonce}\n".encode() + body + b"\n")
        headers = {"Content-Type": "application/json", "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                   "Wechatpay-Signature": signature, "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": SCHEME}
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(url, content=body, headers=headers)
        try:
            data = resp.json()
        except ValueError:
            data = {}
        return resp.status_code, data if isinstance(data, dict) else {}

    @staticmethod
    def refusal(status: int, data: dict[str, Any], default: str = "PARAM_ERROR") -> SandboxRefusal:
        err = data.get("error") or {}
        code = "RULE_LIMIT" if err.get("code") in ("amount_mismatch", "mix_pay_type_mismatch") else default
        if status >= 500:
            code = "SYSTEM_ERROR"
        message = f"医保平台拒绝：{err.get('field')}: {err.get('message_zh')} (the insurance platform refused: {err.get('message_en')}) [{err.get('code')}]"
        return SandboxRefusal(code, message, 500 if status >= 500 else 400 if status != 404 else 404)


def view(o: MixOrder) -> dict[str, Any]:
    r = o.request
    out: dict[str, Any] = {"mix_trade_no": o.mix_trade_no, "mix_pay_status": o.mix_pay_status, "self_pay_status": o.self_pay_status,
                           "med_ins_pay_status": o.med_ins_pay_status, **{k: r[k] for k in (
                               "mix_pay_type", "order_type", "appid", "openid", "pay_for_relatives", "out_trade_no", "serial_no",
                               "pay_order_id", "geo_location", "city_id", "med_inst_name", "med_inst_no", "med_ins_order_create_time",
                               "total_fee", "med_ins_gov_fee", "med_ins_self_fee", "med_ins_other_fee", "med_ins_cash_fee",
                               "wechat_pay_cash_fee", "callback_url", "prepay_id", "attach", "channel_no", "med_ins_test_env")
                               if r.get(k) is not None}}
    if r.get("pay_auth_no"):
        out["pay_auth_no"] = r["pay_auth_no"]
    if o.paid_time is not None:
        out["paid_time"] = rfc3339(o.paid_time)
    if o.fail_reason:
        out["med_ins_fail_reason"] = o.fail_reason
    return out


def install(app: FastAPI, *, config: Any, books: Any, platform: Any, answer: Callable[..., Response], refuse: Callable[..., Response],
            signed_headers: Callable[..., dict[str, str]], yibao_mchid: str, yibao_serial: str) -> MedIns:
    """Mount the med-ins endpoints on the wxpay sandbox ``app`` (its answers signed as every other answer)."""
    med = MedIns(signer=platform.signer, wall=books.wall, appid=config.appid)
    app.state.wxpay_med_ins = med

    async def merchant_of(request: Request) -> tuple[str, bytes]:
        """The merchant whose key signed this request (a registered hospital, or yibao's account), and the body."""
        body = await request.body()
        root = request.scope.get("root_path", "")
        path = request.url.path[len(root):] if root and request.url.path.startswith(root) else request.url.path
        target = path + (f"?{request.url.query}" if request.url.query else "")
        auth = request.headers.get("authorization", "")
        f: dict[str, str] = {}
        if auth.startswith(SCHEME + " "):
            for part in auth[len(SCHEME) + 1:].split(","):
                k, _, v = part.strip().partition("=")
                f[k] = v.strip('"')
        mchid, ts = f.get("mchid", ""), f.get("timestamp", "")
        m = med.merchants.get(mchid)
        if mchid == yibao_mchid and f.get("serial_no") == yibao_serial:
            key = config.merchant_key
        elif m is not None and f.get("serial_no") == m.serial_no:
            key = m.key
        else:
            raise SandboxRefusal("SIGN_ERROR", "签名错误 (signature verification failed: unknown merchant or serial)", 401)
        message = f"{request.method}\n{target}\n{ts}\n{f.get('nonce_str', '')}\n".encode() + body + b"\n"
        if not ts.isdigit() or abs(int(books.wall().timestamp()) - int(ts)) > 300 or not rsa_verify(key, message, f.get("signature")):
            raise SandboxRefusal("SIGN_ERROR", "签名错误 (signature verification failed)", 401)
        return mchid, body

    def parse(model: type[BaseModel], body: bytes) -> Any:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SandboxRefusal("PARAM_ERROR", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None

    def own(mix_trade_no: str, mchid: str) -> MixOrder:
        with med.lock:
            o = med.orders.get(mix_trade_no)
        if o is None or mchid not in (o.mchid, yibao_mchid):  # the hospital's own, or the insurance platform asking
            raise SandboxRefusal("RESOURCE_NOT_EXISTS", "订单不存在 (no such mixed order)", 404)
        return o

    # ---- SANDBOX admin: onboarding ----
    @app.put("/sandbox/med-ins/merchants", tags=["SANDBOX admin"], summary="SANDBOX: register a hospital as a merchant (its public key)")
    async def register(request: Request) -> dict[str, Any]:
        data = await request.json()
        key = load_pem_public_key(data["public_key_pem"].encode())
        v3 = data.get("api_v3_key") or config.api_v3_key.decode()
        med.merchants[data["mchid"]] = Merchant(data["mchid"], data["serial_no"], key, v3.encode())  # type: ignore[arg-type]
        return {"mchid": data["mchid"], "registered": True}

    @app.put("/sandbox/med-ins/platform", tags=["SANDBOX admin"], summary="SANDBOX: where the insurance platform's wallet API is")
    async def set_platform(request: Request) -> dict[str, Any]:
        med.platform_url = (await request.json())["url"]
        return {"url": med.platform_url}

    # ---- the holder's authorisation (SANDBOX stand-in for the hospital mini-program's user query) ----
    @app.post("/sandbox-holder/med-ins/authorise", tags=["SANDBOX holder"],
              summary="SANDBOX ONLY: exchange the holder's authCode for a pay_auth_no at the insurance platform")
    async def authorise(request: Request) -> Response:
        try:
            _, body = await merchant_of(request)
            req = parse(AuthoriseIn, body)
            status, data = await med.platform("pay-auth", {"auth_code": req.auth_code, "openid": req.openid, "med_inst_no": req.med_inst_no})
            if status != 200:
                raise med.refusal(status, data)
            return answer({"pay_auth_no": data["pay_auth_no"], "expire_time": data["expire_time"], "openid": req.openid})
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    # ---- the order ----
    @app.post("/v3/med-ins/orders", summary="医保自费混合收款下单: checked with the insurance platform, MIX_PAY_CREATED")
    async def create(request: Request) -> Response:
        try:
            mchid, body = await merchant_of(request)
            if mchid == yibao_mchid:
                raise SandboxRefusal("NO_AUTH", "医保下单须由医疗机构商户号发起 (the hospital is the merchant of record)", 403)
            req: MedInsOrderIn = parse(MedInsOrderIn, body)
            if req.appid != config.appid:
                raise SandboxRefusal("APPID_MCHID_NOT_MATCH", "appid 与商户号不匹配 (appid and mchid do not match)")
            if req.mix_pay_type not in MIX_PAY_TYPES:
                raise SandboxRefusal("PARAM_ERROR", "mix_pay_type 应为 CASH_ONLY、INSURANCE_ONLY 或 CASH_AND_INSURANCE")
            if req.order_type not in ORDER_TYPES:
                raise SandboxRefusal("PARAM_ERROR", "order_type 无效 (unknown order_type)")
            parts = Parts(req.med_ins_gov_fee, req.med_ins_self_fee, req.med_ins_other_fee, req.med_ins_cash_fee)
            adds = sum(a.cash_add_fee for a in req.cash_add_detail or [])
            reduces = sum(r.cash_reduce_fee for r in req.cash_reduce_detail or [])
            wrong = identity_error(parts, total_fee=req.total_fee, wechat_pay_cash_fee=req.wechat_pay_cash_fee, additions=adds,
                                   reductions=reduces)
            if wrong:
                raise SandboxRefusal("RULE_LIMIT", f"{wrong}: 金额不满足 total_fee = 医保各部分 + wechat_pay_cash_fee + 减免，"
                                                   f"wechat_pay_cash_fee = med_ins_cash_fee + 增加 − 减免 (the amount identity does not hold)")
            if (req.mix_pay_type != "CASH_ONLY" or req.pay_order_id) and not (req.pay_order_id and req.pay_auth_no):
                raise SandboxRefusal("PARAM_ERROR", "含医保结算时 pay_order_id 与 pay_auth_no 必填 (an insurance settlement needs both)")
            with med.lock:
                again = med.by_out_trade_no.get((mchid, req.out_trade_no))
            if again is not None:
                if again.request != req.model_dump():
                    raise SandboxRefusal("INVALID_REQUEST", "out_trade_no 已用于另一笔订单 (out_trade_no was used for another order)")
                return answer({"mix_trade_no": again.mix_trade_no, "mix_pay_status": again.mix_pay_status,
                               "self_pay_status": again.self_pay_status, "med_ins_pay_status": again.med_ins_pay_status})
            mix = books.wall().strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)
            if req.pay_order_id:  # the insurance platform checks its part: the pay order and each fee
                status, data = await med.platform("check", {"pay_order_id": req.pay_order_id, "pay_auth_no": req.pay_auth_no,
                                                            "mix_trade_no": mix, "mix_pay_type": req.mix_pay_type,
                                                            "med_ins_gov_fee": parts.gov, "med_ins_self_fee": parts.self_,
                                                            "med_ins_other_fee": parts.other, "med_ins_cash_fee": parts.cash})
                if status != 200:
                    raise med.refusal(status, data)
            o = MixOrder(mix, mchid, req.model_dump(), parts, req.wechat_pay_cash_fee, books.wall(),
                         self_pay_status="SELF_PAY_CREATED" if req.wechat_pay_cash_fee else "NO_SELF_PAY",
                         med_ins_pay_status="MED_INS_PAY_CREATED" if parts.insurance else "NO_MED_INS_PAY")
            with med.lock:
                med.orders[mix] = o
                med.by_out_trade_no.setdefault((mchid, req.out_trade_no), o)
            return answer({"mix_trade_no": mix, "mix_pay_status": o.mix_pay_status, "self_pay_status": o.self_pay_status,
                           "med_ins_pay_status": o.med_ins_pay_status})
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    @app.get("/v3/med-ins/orders/mix-trade-no/{mix_trade_no}", summary="医保自费混合订单查询: the truth")
    async def query(mix_trade_no: str, request: Request) -> Response:
        try:
            mchid, _ = await merchant_of(request)
            return answer(view(own(mix_trade_no, mchid)))
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    # ---- the holder pays (SANDBOX stand-in for wx.requestMedicalInsurancePay) ----
    @app.post("/sandbox-holder/med-ins/orders/{mix_trade_no}/pay", tags=["SANDBOX holder"],
              summary="SANDBOX ONLY: the holder confirms the mixed order in WeChat")
    async def holder_pays(mix_trade_no: str, request: Request) -> Response:
        try:
            req = parse(HolderPayIn, await request.body())
            with med.lock:
                o = med.orders.get(mix_trade_no)
            if o is None:
                raise SandboxRefusal("RESOURCE_NOT_EXISTS", "订单不存在 (no such mixed order)", 404)
            if o.mix_pay_status != "MIX_PAY_CREATED":
                return answer(view(o))
            r = o.request
            has_insurance = bool(r.get("pay_order_id"))  # settled by the insurance platform (CASH_ONLY too, when it has a pay order)
            if has_insurance:  # recorded at the platform before the self-pay part is collected
                status, data = await med.platform("request", {"pay_order_id": r["pay_order_id"], "mix_trade_no": o.mix_trade_no})
                if status != 200:
                    o.mix_pay_status, o.med_ins_pay_status, o.fail_reason = "MIX_PAY_FAIL", "MED_INS_PAY_FAIL", str(data.get("error"))
                    if o.self_pay_status == "SELF_PAY_CREATED":
                        o.self_pay_status = "SELF_PAY_FAIL"
                    return answer(view(o))
            collected = req.simulate != "SELF_PAY_FAIL"
            if o.wechat_pay_cash_fee:
                o.self_pay_status = "SELF_PAY_SUCCESS" if collected else "SELF_PAY_FAIL"
            if not collected:
                o.mix_pay_status = "MIX_PAY_FAIL"
            if has_insurance and req.simulate != "LOSE_RESULT":
                status, data = await med.platform("result", {"pay_order_id": r["pay_order_id"], "mix_trade_no": o.mix_trade_no,
                                                             "self_pay_status": o.self_pay_status, "med_ins_cash_fee": o.parts.cash})
                if status == 200:
                    o.med_ins_pay_status = "MED_INS_PAY_SUCCESS" if data.get("med_ins_pay_status") == "MED_INS_PAY_SUCCESS" else "MED_INS_PAY_FAIL"
            elif not has_insurance and collected:
                o.med_ins_pay_status = "NO_MED_INS_PAY"
            if collected and o.med_ins_pay_status in ("MED_INS_PAY_SUCCESS", "NO_MED_INS_PAY"):
                o.mix_pay_status, o.paid_time = "MIX_PAY_SUCCESS", books.wall()
                med.callbacks.append(asyncio.ensure_future(_callback(o)))
            return answer(view(o))
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    async def _callback(o: MixOrder) -> None:
        """MEDICAL_INSURANCE.SUCCESS to the order's callback_url, once (WeChat retries for 30 s only [skill doc]: the hospital polls)."""
        m = med.merchants.get(o.mchid)
        v3 = m.api_v3_key if m else config.api_v3_key
        nonce = secrets.token_hex(6)
        plaintext = json.dumps(view(o), ensure_ascii=False, separators=(",", ":")).encode()
        body = json.dumps({"id": "EV-" + secrets.token_hex(10), "create_time": rfc3339(books.wall()), "event_type": "MEDICAL_INSURANCE.SUCCESS",
                           "resource_type": "encrypt-resource", "summary": "医保混合收款成功",
                           "resource": {"original_type": "med_ins_order", "algorithm": "AEAD_AES_256_GCM", "associated_data": "med_ins_order",
                                        "nonce": nonce, "ciphertext": aes_gcm_encrypt(v3, nonce.encode(), b"med_ins_order", plaintext)}},
                          ensure_ascii=False, separators=(",", ":")).encode()
        for _ in range(3):
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    resp = await client.post(o.request["callback_url"], content=body,
                                             headers={"Content-Type": "application/json", **signed_headers(body)})
                if resp.status_code in (200, 204):
                    return
            except httpx.HTTPError as exc:
                log.info("SANDBOX wxpay: the callback of %s failed (%s)", o.mix_trade_no, exc)
            await asyncio.sleep(0.05)

    # ---- refunds ----
    @app.post("/v3/med-ins/refunds/notify", summary="医保退款通知: the hospital says the insurance part was refunded (204)")
    async def refund_notify(request: Request, mix_trade_no: str = "") -> Response:
        try:
            mchid, body = await merchant_of(request)
            req: RefundNotifyIn = parse(RefundNotifyIn, body)
            o = own(mix_trade_no, mchid)
            if mchid != o.mchid:
                raise SandboxRefusal("NO_AUTH", "仅医疗机构商户可通知退款 (only the hospital notifies refunds)", 403)
            if req.med_refund_total_fee != req.med_refund_gov_fee + req.med_refund_self_fee + req.med_refund_other_fee:
                raise SandboxRefusal("PARAM_ERROR", "med_refund_total_fee 应等于 gov + self + other (the total must be the parts' sum)")
            if (req.med_refund_gov_fee > o.parts.gov or req.med_refund_self_fee > o.parts.self_ or req.med_refund_other_fee > o.parts.other
                    or o.insurance_refunded + req.med_refund_total_fee > o.parts.insurance):
                raise SandboxRefusal("PARAM_ERROR", "退款金额超过医保支付金额 (more than the insurance part paid)")
            if o.mix_pay_status not in ("MIX_PAY_SUCCESS", "MIX_PAY_REFUND"):
                raise SandboxRefusal("INVALID_REQUEST", "订单未支付成功 (the order was not paid)")
            prior = o.refunds.setdefault(req.out_refund_no, {})
            if "insurance" not in prior:
                prior["insurance"] = req.med_refund_total_fee
                o.insurance_refunded += req.med_refund_total_fee
                o.med_ins_pay_status, o.mix_pay_status = "MED_INS_PAY_REFUND", "MIX_PAY_REFUND"
            return answer(None, 204)
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    async def refund_cash(request: Request, mchid: str, body: bytes) -> Response:
        """A hospital's normal refund (`POST /v3/refund/domestic/refunds`) of its mixed order's self-pay part, by out_trade_no."""
        try:
            req: CashRefundIn = parse(CashRefundIn, body)
            with med.lock:
                o = med.by_out_trade_no.get((mchid, req.out_trade_no))
            if o is None:
                raise SandboxRefusal("RESOURCE_NOT_EXISTS", "订单不存在 (no such order)", 404)
            amount = req.amount.get("refund")
            if req.amount.get("total") != o.wechat_pay_cash_fee or not isinstance(amount, int) or amount <= 0:
                raise SandboxRefusal("PARAM_ERROR", "amount.total 应为微信支付实收金额 (amount.total is wechat_pay_cash_fee)")
            if o.self_pay_status not in ("SELF_PAY_SUCCESS", "SELF_PAY_REFUND"):
                raise SandboxRefusal("INVALID_REQUEST", "自费部分未支付成功 (the self-pay part was not collected)")
            prior = o.refunds.setdefault(req.out_refund_no, {})
            if "cash" not in prior:
                if o.cash_refunded + amount > o.wechat_pay_cash_fee:
                    raise SandboxRefusal("PARAM_ERROR", "退款金额超过可退金额 (more than is left to refund)")
                prior["cash"], prior["refund_id"] = amount, "50" + secrets.token_hex(14)
                o.cash_refunded += amount
                o.self_pay_status = "SELF_PAY_REFUND"
                o.mix_pay_status = "MIX_PAY_REFUND"
            now = books.wall()
            return answer({"refund_id": prior["refund_id"], "out_refund_no": req.out_refund_no, "transaction_id": o.mix_trade_no,
                           "out_trade_no": req.out_trade_no, "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
                           "create_time": rfc3339(now), "success_time": rfc3339(now), "status": "SUCCESS", "funds_account": "AVAILABLE",
                           "amount": {"total": o.wechat_pay_cash_fee, "refund": prior["cash"], "payer_total": o.wechat_pay_cash_fee,
                                      "payer_refund": prior["cash"], "settlement_total": o.wechat_pay_cash_fee,
                                      "settlement_refund": prior["cash"], "discount_refund": 0, "currency": "CNY", "refund_fee": 0}})
        except SandboxRefusal as exc:
            return refuse(exc.code, exc.message, exc.status)

    med.hospital_refund = refund_cash  # type: ignore[attr-defined]
    med.merchant_of = merchant_of  # type: ignore[attr-defined]
    return med
