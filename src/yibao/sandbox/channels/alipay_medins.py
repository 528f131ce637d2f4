"""SANDBOX alipay: Alipay's medical-insurance trade (医保移动支付, `alipay.commerce.medical.trade.*`) on the same gateway.
Not Alipay.

The hospital is the merchant of record: it calls the gateway with its own app (its `app_id` and RSA2 key, registered
with the sandbox by `PUT /sandbox/med-ins/apps`, as a real app is created on Alipay's open platform), and the self-pay
part is collected for it. yibao is the insurance platform behind the wallet: the sandbox, as Alipay, asks it for the
holder's authorisation (authCode → pay_auth_no), whether a new trade's fee parts are the ones it holds for
`pay_order_id`, to record the self-pay request before collecting, and tells it what became of the self-pay part — each
a form post signed as Alipay signs its notifications (RSA2 with the sandbox's key over the sorted parameters without
`sign`/`sign_type`; `notify_type` names the call, `notify_id` is its nonce). `PUT /sandbox/med-ins/platform` says where
yibao is.

    alipay.commerce.medical.trade.createandpay   the hospital's trade (order_type INSURANCE_PAY | OWN_PAY, the fee parts,
                                                 pay_order_id, pay_auth_no): checked with the platform → trade_no, pay_url
    alipay.commerce.medical.trade.query          its state (trade_status, medical_pay_status, own_pay_status, …); the
                                                 hospital's own trades, and yibao's app (the insurance platform) asking
    alipay.commerce.medical.trade.refund         the self-pay part refunded (交易自费退款): refund_request_no, refund_amount
    alipay.commerce.medical.trade.refund.query   that refund's state
    alipay.commerce.medical.trade.cancel         an unpaid trade closed (a paid one is refunded instead)
    POST /sandbox-holder/med-ins/authorise       SANDBOX ONLY: the hospital's mini-program hands Alipay the holder's authCode
    POST /sandbox-holder/med-ins/trades/{trade_no}/pay   SANDBOX ONLY: the holder pays on the trade's pay_url

What is guessed (the state values above all) is marked in docs/channels.md "Medical-insurance orders through Alipay".
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yibao.channels.alipay.transformers import MED_QUERY, wallet_notify_type
from yibao.channels.crypto import canonical_kv, rsa_sign, rsa_verify
from yibao.channels.wire import CHINA, WireError, fen_to_yuan, parse_plain_time, plain_time, yuan_to_fen
from yibao.domain.med_ins import Parts
from yibao.sandbox.channels.core import SandboxRefusal

ORDER_TYPES = ("INSURANCE_PAY", "OWN_PAY")  # named by the SDK's descriptions; [guess] that there are no others here


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateAndPayIn(_Open):
    """`alipay.commerce.medical.trade.createandpay`'s biz_content: every field of the SDK's model (others refused)."""

    out_trade_no: str = Field(min_length=1, max_length=64)
    total_amount: str
    order_type: str
    subject: str = Field(min_length=1, max_length=256)
    pay_order_id: str | None = Field(None, max_length=64)
    pay_auth_no: str | None = Field(None, max_length=64)
    gov_amount: str | None = None
    account_amount: str | None = None
    other_amount: str | None = None
    real_amount: str | None = None
    med_org_ord: str | None = Field(None, max_length=64)
    chrg_bch_no: str | None = Field(None, max_length=64)
    org_no: str | None = Field(None, max_length=32)
    alipay_user_id: str | None = Field(None, max_length=32)
    open_id: str | None = Field(None, max_length=128)
    callback_url: str | None = Field(None, max_length=512)
    result_notify_url: str | None = Field(None, max_length=512)
    ch_info: str | None = Field(None, max_length=64)
    display_mode: str | None = Field(None, max_length=32)
    industry: str | None = Field(None, max_length=64)
    insurance_pay_scene: str | None = Field(None, max_length=64)
    request_content: str | None = Field(None, max_length=4096)
    shop_id: str | None = Field(None, max_length=64)
    store_id: str | None = Field(None, max_length=64)
    gmt_out_create: str | None = Field(None, max_length=32)
    gmt_time_expire: str | None = Field(None, max_length=32)
    extend_params: dict[str, Any] | None = None
    subsidy_amount_params: list[dict[str, Any]] | None = None  # not modelled: refused when present (below)


class TradeRefIn(_Open):
    out_trade_no: str | None = Field(None, min_length=1, max_length=64)
    trade_no: str | None = Field(None, min_length=1, max_length=64)


class RefundIn(TradeRefIn):
    refund_amount: str
    refund_request_no: str = Field(min_length=1, max_length=64)
    refund_reason: str | None = Field(None, max_length=256)


class RefundRefIn(TradeRefIn):
    refund_request_no: str = Field(min_length=1, max_length=64)


class HolderPayIn(_Open):
    """SANDBOX ONLY: the holder pays on the pay_url; ``simulate`` fails the self-pay part, or loses the sandbox's word to
    the platform after it collected (as a crash of Alipay's call would)."""

    simulate: str = Field("SUCCESS", pattern="^(SUCCESS|OWN_PAY_FAIL|LOSE_RESULT)$")


@dataclass
class MedTrade:
    trade_no: str
    app_id: str
    request: dict[str, Any]  # the trade as the hospital sent it (its own fields, answered back)
    parts: Parts
    total_fen: int
    created_at: datetime
    alipay_trade_no: str | None  # the self-pay part's Alipay trade (only when there is one)
    trade_status: str = "WAIT_BUYER_PAY"
    medical_pay_status: str | None = None  # None: no insurance part (OWN_PAY)
    own_pay_status: str | None = None  # None: no self-pay part
    gmt_medical_paid: datetime | None = None
    gmt_own_paid: datetime | None = None
    gmt_refund: datetime | None = None
    refunded_fen: int = 0
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)  # refund_request_no → the refund
    medical_pay_msg: str | None = None
    own_pay_msg: str | None = None
    paying: bool = False  # the holder's payment is under way (cancel refused meanwhile)

    @property
    def insurance(self) -> bool:
        return bool(self.request.get("pay_order_id"))


class AlipayMedIns:
    """The sandbox's medical trades, the hospitals' apps, and where the insurance platform is."""

    def __init__(self, *, key: Any, platform_app_id: str, wall: Callable[[], datetime]) -> None:
        self.key, self.platform_app_id, self.wall = key, platform_app_id, wall
        self.apps: dict[str, RSAPublicKey] = {}
        self.trades: dict[str, MedTrade] = {}
        self.by_out_trade_no: dict[tuple[str, str], MedTrade] = {}  # (app_id, out_trade_no) → its first trade: no scan per call
        self.platform_url: str | None = None  # yibao's wallet API for this sandbox: …/api/v1/channels/{pi}/med-ins
        self.lock = threading.Lock()

    async def platform(self, action: str, payload: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A request to the insurance platform, signed as Alipay signs its notifications."""
        if not self.platform_url:
            raise SandboxRefusal("SYSTEM_ERROR", "医保平台未配置 (the sandbox knows no insurance platform: PUT /sandbox/med-ins/platform)", 500)
        params = {"app_id": self.platform_app_id, "notify_id": secrets.token_hex(16), "notify_time": plain_time(self.wall()),
                  "notify_type": wallet_notify_type(action), "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
                  **{k: v for k, v in payload.items() if v is not None}}
        params["sign"] = rsa_sign(self.key, canonical_kv(params, exclude=("sign", "sign_type")).encode())
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(f"{self.platform_url.rstrip('/')}/{action}", content=urlencode(params).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})
        try:
            data = resp.json()
        except ValueError:
            data = {}
        return resp.status_code, data if isinstance(data, dict) else {}

    @staticmethod
    def refusal(status: int, data: dict[str, Any]) -> SandboxRefusal:
        """The platform's refusal as Alipay's: its field, rule and words in sub_msg [guess: Alipay's sub codes for these]."""
        err = data.get("error") or {}
        if status >= 500:
            return SandboxRefusal("SYSTEM_ERROR", "医保平台暂不可用 (the insurance platform did not answer)", 500)
        code = "MEDICAL_AMOUNT_NOT_MATCH" if err.get("code") == "amount_mismatch" else "MEDICAL_ORDER_INVALID"
        return SandboxRefusal(code, f"医保平台拒绝：{err.get('field')}: {err.get('message_zh')} "
                                    f"(the insurance platform refused: {err.get('message_en')}) [{err.get('code')}]")

    def key_of(self, app_id: str) -> RSAPublicKey | None:
        return self.apps.get(app_id)


def _yuan(text: str | None, name: str) -> int:
    if text is None or text == "":
        return 0
    try:
        return yuan_to_fen(text)
    except WireError:
        raise SandboxRefusal("INVALID_PARAMETER", f"{name}: 金额应为两位小数的元 (not an amount in yuan with two decimals: {text!r})") from None


def view(t: MedTrade) -> dict[str, Any]:
    """alipay.commerce.medical.trade.query's fields."""
    r = t.request
    out: dict[str, Any] = {"trade_no": t.trade_no, "out_trade_no": r["out_trade_no"], "trade_status": t.trade_status,
                           "order_type": r["order_type"], "total_amount": fen_to_yuan(t.total_fen), "gov_amount": fen_to_yuan(t.parts.gov),
                           "account_amount": fen_to_yuan(t.parts.self_), "other_amount": fen_to_yuan(t.parts.other),
                           "real_amount": fen_to_yuan(t.parts.cash), "refund_amount": fen_to_yuan(t.refunded_fen),
                           **{k: r[k] for k in ("pay_order_id", "med_org_ord", "chrg_bch_no", "org_no", "subject", "gmt_out_create",
                                                "shop_id", "store_id", "request_content") if r.get(k)}}
    for key, value in (("alipay_trade_no", t.alipay_trade_no), ("medical_pay_status", t.medical_pay_status),
                       ("own_pay_status", t.own_pay_status), ("medical_pay_msg", t.medical_pay_msg), ("own_pay_msg", t.own_pay_msg)):
        if value:
            out[key] = value
    for key, at in (("gmt_medical_paid", t.gmt_medical_paid), ("gmt_own_paid", t.gmt_own_paid), ("gmt_refund", t.gmt_refund)):
        if at is not None:
            out[key] = plain_time(at)
    out["rels_pay_flag"] = "0"  # 本人支付: yibao binds the authorisation to the patient's own account only
    return out


def install(app: FastAPI, *, config: Any, books: Any, methods: dict[str, Any], answer: Callable[[str, dict[str, Any]], Response]) -> AlipayMedIns:
    """Add the medical methods to the gateway's ``methods`` (each ``work(biz, params, base)``, async) and mount the SANDBOX
    endpoints. The gateway verifies a hospital app's signature with its registered key (`AlipayMedIns.key_of`)."""
    med = AlipayMedIns(key=config.key, platform_app_id=config.app_id, wall=books.wall)
    app.state.alipay_med_ins = med

    def find(b: TradeRefIn, app_id: str, *, platform_may: bool = False) -> MedTrade:
        with med.lock:
            if b.trade_no:
                t = med.trades.get(b.trade_no)
            else:
                t = med.by_out_trade_no.get((app_id, b.out_trade_no))
        if not b.trade_no and not b.out_trade_no:
            raise SandboxRefusal("INVALID_PARAMETER", "trade_no 与 out_trade_no 不能同时为空 (name the trade)")
        if t is None or not (t.app_id == app_id or (platform_may and app_id == config.app_id)):
            raise SandboxRefusal("ORDER_NOT_EXIST", "交易不存在 (no such medical trade)", 404)
        return t

    def hospital_only(params: dict[str, str]) -> str:
        app_id = params.get("app_id", "")
        if app_id == config.app_id:
            raise SandboxRefusal("NO_PERMISSION", "医保交易须由医疗机构的应用发起 (the hospital is the merchant of record)")
        return app_id

    async def create(b: CreateAndPayIn, params: dict[str, str], base: str) -> dict[str, Any]:
        app_id = hospital_only(params)
        if b.order_type not in ORDER_TYPES:
            raise SandboxRefusal("INVALID_PARAMETER", "order_type 应为 INSURANCE_PAY 或 OWN_PAY")
        if b.subsidy_amount_params:
            raise SandboxRefusal("INVALID_PARAMETER", "subsidy_amount_params: 沙箱不支持补充计算金额 (not modelled by the sandbox)")
        if not (b.alipay_user_id or b.open_id):
            raise SandboxRefusal("INVALID_PARAMETER", "alipay_user_id 与 open_id 不能同时为空 (name the holder)")
        parts = Parts(_yuan(b.gov_amount, "gov_amount"), _yuan(b.account_amount, "account_amount"), _yuan(b.other_amount, "other_amount"),
                      _yuan(b.real_amount, "real_amount"))
        total = _yuan(b.total_amount, "total_amount")
        if total <= 0 or total != parts.insurance + parts.cash:  # [guess] the identity: the parts add up to the total
            raise SandboxRefusal("TOTAL_AMOUNT_ERROR", "total_amount: 订单总金额应等于 gov_amount + account_amount + other_amount + real_amount "
                                                       "(the parts must add up to the total)")
        if b.order_type == "INSURANCE_PAY":
            missing = [k for k in ("pay_order_id", "pay_auth_no", "chrg_bch_no", "org_no") if not getattr(b, k)]
            if missing:
                raise SandboxRefusal("INVALID_PARAMETER", f"{missing[0]}: order_type=INSURANCE_PAY 时必填 (required for an insurance trade)")
        elif parts.insurance or b.pay_order_id or b.pay_auth_no:
            raise SandboxRefusal("INVALID_PARAMETER", "order_type=OWN_PAY 不含医保部分 (a self-pay trade has no insurance part)")
        request = b.model_dump(exclude_none=True)
        with med.lock:
            again = med.by_out_trade_no.get((app_id, b.out_trade_no))
        if again is not None:
            if again.request != request:
                raise SandboxRefusal("CONTEXT_INCONSISTENT", "out_trade_no 已用于另一笔交易 (out_trade_no was used for another trade)")
            return created(again, base)
        now = books.wall()
        trade_no = "YK" + now.astimezone(CHINA).strftime("%Y%m%d%H%M%S") + secrets.token_hex(6).upper()
        if b.order_type == "INSURANCE_PAY":  # the insurance platform checks its part: the pay order and each fee
            status, data = await med.platform("check", {"pay_order_id": b.pay_order_id or "", "pay_auth_no": b.pay_auth_no or "",
                                                        "trade_no": trade_no, "org_no": b.org_no or "",
                                                        "gov_amount": fen_to_yuan(parts.gov), "account_amount": fen_to_yuan(parts.self_),
                                                        "other_amount": fen_to_yuan(parts.other), "real_amount": fen_to_yuan(parts.cash)})
            if status != 200:
                raise med.refusal(status, data)
        t = MedTrade(trade_no, app_id, request, parts, total, now,
                     now.astimezone(CHINA).strftime("%Y%m%d") + "2200" + str(secrets.randbelow(10**14)).rjust(14, "0") if parts.cash else None,
                     medical_pay_status="WAIT_PAY" if b.order_type == "INSURANCE_PAY" else None,
                     own_pay_status="WAIT_PAY" if parts.cash else None)
        with med.lock:
            med.trades[trade_no] = t
            med.by_out_trade_no.setdefault((app_id, b.out_trade_no), t)
        return created(t, base)

    def created(t: MedTrade, base: str) -> dict[str, Any]:
        r = t.request
        out = {"trade_no": t.trade_no, "out_trade_no": r["out_trade_no"], "order_type": r["order_type"],
               "pay_url": f"{base}/sandbox-holder/med-ins/trades/{t.trade_no}", "rels_pay_flag": "0",
               **{k: r[k] for k in ("med_org_ord", "chrg_bch_no", "pay_order_id") if r.get(k)}}
        if t.alipay_trade_no:
            out["alipay_trade_no"] = t.alipay_trade_no
        return out

    async def query(b: TradeRefIn, params: dict[str, str], base: str) -> dict[str, Any]:
        return view(find(b, params.get("app_id", ""), platform_may=True))

    def refund_view(t: MedTrade, no: str, r: dict[str, Any]) -> dict[str, Any]:
        out = {"trade_no": t.trade_no, "out_trade_no": t.request["out_trade_no"], "order_type": t.request["order_type"],
               "refund_request_no": no, "refund_amount": fen_to_yuan(r["amount"]), "refund_status": "REFUND_SUCCESS",
               "refund_time": plain_time(r["at"])}
        if t.alipay_trade_no:
            out["alipay_trade_no"] = t.alipay_trade_no
        return out

    async def refund(b: RefundIn, params: dict[str, str], base: str) -> dict[str, Any]:
        t = find(b, hospital_only(params))
        amount = _yuan(b.refund_amount, "refund_amount")
        with med.lock:
            prior = t.refunds.get(b.refund_request_no)
            if prior is not None:
                if prior["amount"] != amount:
                    raise SandboxRefusal("CONTEXT_INCONSISTENT", "refund_request_no 已用于另一金额的退款 (used for another amount)")
                return refund_view(t, b.refund_request_no, prior)
            if t.own_pay_status not in ("PAY_SUCCESS", "REFUND_SUCCESS"):
                raise SandboxRefusal("TRADE_STATUS_ERROR", "自费部分未支付成功，不能退款 (the self-pay part was not collected)")
            if amount <= 0 or t.refunded_fen + amount > t.parts.cash:
                raise SandboxRefusal("REFUND_AMOUNT_EXCEEDS", "refund_amount: 退款金额超过自费可退金额 (more than the self-pay part left)")
            now = books.wall()
            r = t.refunds[b.refund_request_no] = {"amount": amount, "at": now, "reason": b.refund_reason}
            t.refunded_fen += amount
            t.own_pay_status, t.gmt_refund = "REFUND_SUCCESS", now
        return refund_view(t, b.refund_request_no, r)

    async def refund_query(b: RefundRefIn, params: dict[str, str], base: str) -> dict[str, Any]:
        t = find(b, hospital_only(params))
        with med.lock:
            r = t.refunds.get(b.refund_request_no)
        if r is None:  # [guess] as alipay.trade.fastpay.refund.query: no refund_status — not refunded
            return {"trade_no": t.trade_no, "out_trade_no": t.request["out_trade_no"], "refund_request_no": b.refund_request_no}
        return refund_view(t, b.refund_request_no, r)

    async def cancel(b: TradeRefIn, params: dict[str, str], base: str) -> dict[str, Any]:
        t = find(b, hospital_only(params))
        with med.lock:
            if t.paying or t.trade_status == "TRADE_SUCCESS" or t.own_pay_status in ("PAY_SUCCESS", "REFUND_SUCCESS"):
                raise SandboxRefusal("TRADE_STATUS_ERROR", "交易已支付或支付中，不能撤销，请退款 (paid or being paid: refund it instead)")
            if t.trade_status == "WAIT_BUYER_PAY":
                t.trade_status = "TRADE_CLOSED"
                if t.medical_pay_status == "WAIT_PAY":
                    t.medical_pay_status, t.medical_pay_msg = "PAY_FAIL", "交易已撤销 (cancelled)"
                if t.own_pay_status == "WAIT_PAY":
                    t.own_pay_status, t.own_pay_msg = "PAY_FAIL", "交易已撤销 (cancelled)"
        out = {"trade_no": t.trade_no, "out_trade_no": t.request["out_trade_no"], "order_type": t.request["order_type"],
               "trade_cancel_result": "SUCCESS"}
        out["medical_pay_cancel_result" if t.insurance else "own_pay_cancel_result"] = "SUCCESS"
        if t.alipay_trade_no:
            out["alipay_trade_no"] = t.alipay_trade_no
        return out

    methods.update({
        "alipay.commerce.medical.trade.createandpay": (CreateAndPayIn, create),
        MED_QUERY: (TradeRefIn, query),
        "alipay.commerce.medical.trade.refund": (RefundIn, refund),
        "alipay.commerce.medical.trade.refund.query": (RefundRefIn, refund_query),
        "alipay.commerce.medical.trade.cancel": (TradeRefIn, cancel),
    })

    # ---- SANDBOX admin: onboarding ----
    @app.put("/sandbox/med-ins/apps", tags=["SANDBOX admin"], summary="SANDBOX: register a hospital's app (its app_id and public key)")
    async def register(request: Request) -> dict[str, Any]:
        data = await request.json()
        med.apps[data["app_id"]] = load_pem_public_key(data["public_key_pem"].encode())  # type: ignore[assignment]
        return {"app_id": data["app_id"], "registered": True}

    @app.put("/sandbox/med-ins/platform", tags=["SANDBOX admin"], summary="SANDBOX: where the insurance platform's wallet API is")
    async def set_platform(request: Request) -> dict[str, Any]:
        med.platform_url = (await request.json())["url"]
        return {"url": med.platform_url}

    def refuse(node: str, exc: SandboxRefusal) -> Response:
        return answer(node, {"code": "40004" if exc.status < 500 else "20000", "msg": "Business Failed",
                             "sub_code": "ACQ." + exc.code, "sub_msg": exc.message})

    # ---- the holder's authorisation (SANDBOX stand-in for the hospital mini-program's authorisation) ----
    @app.post("/sandbox-holder/med-ins/authorise", tags=["SANDBOX holder"],
              summary="SANDBOX ONLY: exchange the holder's authCode for a pay_auth_no at the insurance platform (a form signed by the hospital's app)")
    async def authorise(request: Request) -> Response:
        node = "sandbox_med_ins_authorise_response"
        params = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        key = med.key_of(params.get("app_id", ""))
        try:
            sent = parse_plain_time(params.get("timestamp", ""))
        except WireError:
            sent = None
        if (key is None or sent is None or abs((books.wall().astimezone(CHINA) - sent).total_seconds()) > 600
                or params.get("sign_type") != "RSA2" or not rsa_verify(key, canonical_kv(params, exclude=("sign",)).encode(), params.get("sign"))):
            return answer(node, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"})
        if not params.get("auth_code") or not params.get("org_no"):
            return answer(node, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.missing-parameter",
                                 "sub_msg": "auth_code 与 org_no 必填"})
        try:
            status, data = await med.platform("pay-auth", {"auth_code": params["auth_code"], "org_no": params["org_no"]})
            if status != 200:
                raise med.refusal(status, data)
        except SandboxRefusal as exc:
            return refuse(node, exc)
        return answer(node, {"code": "10000", "msg": "Success", "pay_auth_no": data["pay_auth_no"], "expire_time": data["expire_time"]})

    # ---- the holder pays (SANDBOX stand-in for the cashier behind pay_url) ----
    @app.post("/sandbox-holder/med-ins/trades/{trade_no}/pay", tags=["SANDBOX holder"], summary="SANDBOX ONLY: the holder pays the trade")
    async def holder_pays(trade_no: str, request: Request) -> Response:
        try:
            req = HolderPayIn.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return Response(json.dumps({"error": str(exc.errors()[0]["msg"])}), status_code=400, media_type="application/json")
        with med.lock:
            t = med.trades.get(trade_no)
            if t is None:
                return Response(b'{"error":"no such trade"}', status_code=404, media_type="application/json")
            if t.trade_status != "WAIT_BUYER_PAY" or t.paying:
                return Response(json.dumps(view(t), ensure_ascii=False), media_type="application/json")
            t.paying = True
        try:
            await _pay(t, req.simulate)
        finally:
            t.paying = False
        return Response(json.dumps(view(t), ensure_ascii=False), media_type="application/json")

    async def _pay(t: MedTrade, simulate: str) -> None:
        r = t.request
        if t.insurance:  # recorded at the platform before the self-pay part is collected
            status, data = await med.platform("request", {"pay_order_id": r["pay_order_id"], "trade_no": t.trade_no})
            if status != 200:
                t.trade_status, t.medical_pay_status = "TRADE_CLOSED", "PAY_FAIL"
                t.medical_pay_msg = str((data.get("error") or {}).get("code") or status)
                if t.own_pay_status == "WAIT_PAY":
                    t.own_pay_status, t.own_pay_msg = "PAY_FAIL", "医保支付失败，未扣款 (the insurance part failed: nothing collected)"
                return
        collected = simulate != "OWN_PAY_FAIL"
        if t.own_pay_status == "WAIT_PAY":
            if collected:
                t.own_pay_status, t.gmt_own_paid = "PAY_SUCCESS", books.wall()
            else:
                t.own_pay_status, t.own_pay_msg = "PAY_FAIL", "余额不足 (the holder's payment failed)"
        if not collected:
            t.trade_status = "TRADE_CLOSED"
        if t.insurance and simulate != "LOSE_RESULT":
            payload = {"pay_order_id": r["pay_order_id"], "trade_no": t.trade_no, "real_amount": fen_to_yuan(t.parts.cash)}
            if t.own_pay_status is not None:
                payload["own_pay_status"] = t.own_pay_status
            status, data = await med.platform("result", payload)
            if status == 200 and data.get("medical_pay_status") == "PAY_SUCCESS":
                t.medical_pay_status, t.gmt_medical_paid = "PAY_SUCCESS", books.wall()
            elif status == 200 or not collected:
                t.medical_pay_status = "PAY_FAIL"
                t.medical_pay_msg = str(data.get("medical_pay_status") or (data.get("error") or {}).get("code") or status)
            if t.medical_pay_status == "PAY_FAIL" and t.own_pay_status == "PAY_SUCCESS":
                # the insurance part was not settled: Alipay gives the self-pay part back — both parts undone
                t.own_pay_status, t.refunded_fen, t.gmt_refund = "REFUND_SUCCESS", t.parts.cash, books.wall()
                t.trade_status = "TRADE_CLOSED"
        if collected and t.medical_pay_status in ("PAY_SUCCESS", None) and t.trade_status == "WAIT_BUYER_PAY":
            t.trade_status = "TRADE_SUCCESS"

    return med
