"""WeChat-Pay-v3-style wire format: pure transformers, no I/O.

Requests are JSON, signed `WECHATPAY2-SHA256-RSA2048` over `METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`
with the merchant's (our) private key. Responses and notifications are signed by the institution
over `TIMESTAMP\\nNONCE\\nBODY\\n` (headers `Wechatpay-Timestamp/-Nonce/-Signature/-Serial`); a
notification's `resource` is AEAD_AES_256_GCM ciphertext under the API v3 key. Amounts are
integer fen on this wire (as in WeChat Pay v3); statement files carry yuan.

Paths follow WeChat Pay's password-free deduction (委托代扣, papay) and refund APIs as far as we know
them; where the real ones differ in detail, docs/channels.md says so.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    Statement,
    StatementError,
    StatementRow,
    bad_signature,
    check_statement_totals,
    declined,
    not_found_at,
    unknown,
)
from yibao.channels.crypto import aes_gcm_decrypt, rsa_sign, rsa_verify
from yibao.channels.wire import WireError, parse_plain_time, parse_rfc3339, yuan_to_fen

NAME = "wxpay"
SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_S = 300  # a signed answer or notification older (or newer) than five minutes is a replay


@dataclass(frozen=True)
class WxPayConfig:
    base_url: str
    mchid: str
    appid: str
    merchant_serial: str
    merchant_key: RSAPrivateKey = field(repr=False)  # ours: signs requests
    platform_serial: str = ""
    platform_key: RSAPublicKey | None = field(default=None, repr=False)  # the institution's: verifies answers
    api_v3_key: bytes = field(default=b"", repr=False)  # 32 bytes, shared: decrypts notification resources
    notify_url: str | None = None
    timeout: float = 5.0
    name: str = NAME


def dumps(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# ---- signatures --------------------------------------------------------------------------------

def request_message(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path_and_query}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(cfg: WxPayConfig, method: str, path_and_query: str, body: bytes, timestamp: str, nonce: str) -> str:
    signature = rsa_sign(cfg.merchant_key, request_message(method, path_and_query, timestamp, nonce, body))
    return (f'{SCHEME} mchid="{cfg.mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{cfg.merchant_serial}"')


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """The fields of an Authorization header of our scheme, or None."""
    if not header or not header.startswith(SCHEME + " "):
        return None
    fields: dict[str, str] = {}
    for part in header[len(SCHEME) + 1:].split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            return None
        fields[key] = value[1:-1]
    return fields if {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} <= fields.keys() else None


def verify_signed(cfg: WxPayConfig, headers: Mapping[str, str], body: bytes, now: datetime, what: str) -> None:
    """Check an answer's or a notification's Wechatpay-* signature; BadSignature if anything is off."""
    h = {k.lower(): v for k, v in headers.items()}
    ts, nonce, sig, serial = (h.get("wechatpay-timestamp"), h.get("wechatpay-nonce"), h.get("wechatpay-signature"),
                              h.get("wechatpay-serial"))
    if cfg.platform_key is None:
        raise bad_signature(cfg.name, f"{what} (no institution key configured)")
    if not (ts and nonce and sig and serial) or serial != cfg.platform_serial:
        raise bad_signature(cfg.name, f"{what} (missing headers or unknown key serial)")
    if not ts.isdigit() or abs(int(now.timestamp()) - int(ts)) > MAX_SKEW_S:
        raise bad_signature(cfg.name, f"{what} (timestamp outside five minutes)")
    if not rsa_verify(cfg.platform_key, response_message(ts, nonce, body), sig):
        raise bad_signature(cfg.name, what)


# ---- requests ----------------------------------------------------------------------------------

def agreement_body(cfg: WxPayConfig, req: AgreementRequest) -> dict[str, Any]:
    return {"appid": cfg.appid, "mchid": cfg.mchid, "out_contract_code": req.out_agreement_no, "openid": req.holder_token,
            "deduct_limit": {"total": req.limit_fen, "currency": "CNY"}}


def terminate_body(cfg: WxPayConfig) -> dict[str, Any]:
    return {"mchid": cfg.mchid, "reason": "holder unbound"}


def pay_body(cfg: WxPayConfig, req: PaymentRequest) -> dict[str, Any]:
    body = {"appid": cfg.appid, "mchid": cfg.mchid, "description": req.description, "out_trade_no": req.out_trade_no,
            "contract_id": req.agreement_no, "amount": {"total": req.amount_fen, "currency": "CNY"}}
    if cfg.notify_url:
        body["notify_url"] = cfg.notify_url
    return body


def refund_body(cfg: WxPayConfig, req: RefundRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"out_trade_no": req.out_trade_no, "out_refund_no": req.out_refund_no,
                            "amount": {"refund": req.amount_fen, "total": req.paid_fen, "currency": "CNY"}}
    if req.reason:
        body["reason"] = req.reason
    if cfg.notify_url:
        body["notify_url"] = cfg.notify_url
    return body


# ---- responses ---------------------------------------------------------------------------------

def _int(data: Mapping[str, Any], *path: str) -> int:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(f"{'.'.join(path)} is not an amount in fen: {value!r}")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{key} is missing")
    return value


def agreement_from(data: Mapping[str, Any]) -> Agreement:
    state = data.get("contract_state")
    if state not in ("ADD", "DELETE"):
        raise WireError(f"unknown contract_state {state!r}")
    return Agreement(_str(data, "out_contract_code"), _str(data, "contract_id"), "active" if state == "ADD" else "terminated",
                     _int(data, "deduct_limit", "total"))


_TRADE_STATES = {"SUCCESS": "succeeded", "REFUND": "succeeded", "ACCEPT": "processing", "USERPAYING": "processing",
                 "PAYERROR": "failed", "CLOSED": "failed", "NOTPAY": "processing"}


def payment_from(data: Mapping[str, Any]) -> PaymentResult:
    state = data.get("trade_state")
    if state not in _TRADE_STATES:
        raise WireError(f"unknown trade_state {state!r}")
    paid_at = parse_rfc3339(data["success_time"]) if data.get("success_time") else None
    return PaymentResult(_str(data, "out_trade_no"), data.get("transaction_id") or None, _TRADE_STATES[state], _int(data, "amount", "total"),
                         _int(data, "amount", "refunded") if "refunded" in data.get("amount", {}) else 0,
                         data.get("error_code") or None, paid_at)


_REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "processing", "ABNORMAL": "failed", "CLOSED": "failed"}


def refund_from(data: Mapping[str, Any]) -> RefundResult:
    status = data.get("status")
    if status not in _REFUND_STATES:
        raise WireError(f"unknown refund status {status!r}")
    return RefundResult(_str(data, "out_trade_no"), _str(data, "out_refund_no"), data.get("refund_id") or None, _REFUND_STATES[status],
                        _int(data, "amount", "refund"), data.get("error_code") or None)


def error_from(name: str, status: int, data: Mapping[str, Any], what: str) -> Exception:
    """A signed non-2xx answer: 5xx and SYSTEM_ERROR mean "unknown, query"; 404 "no such thing"; other 4xx a definite no."""
    code = str(data.get("code") or f"HTTP_{status}")
    message = str(data.get("message") or "")
    if status >= 500 or code in ("SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR"):
        return unknown(name, code, message or f"HTTP {status}")
    if status == 404:
        return not_found_at(name, what)
    return declined(name, code, message)


# ---- notifications -----------------------------------------------------------------------------

_EVENTS = {"TRANSACTION.SUCCESS": ("payment", "succeeded"), "TRANSACTION.PAYERROR": ("payment", "failed"),
           "REFUND.SUCCESS": ("refund", "succeeded"), "REFUND.ABNORMAL": ("refund", "failed"),
           "PAPAY.CONTRACT.ADD": ("agreement", "active"), "PAPAY.CONTRACT.DELETE": ("agreement", "terminated")}


def parse_notification(cfg: WxPayConfig, headers: Mapping[str, str], body: bytes, now: datetime) -> Notification:
    """Verify the signature first, then decrypt the resource (its tag is a second check), then parse."""
    verify_signed(cfg, headers, body, now, "notification")
    try:
        envelope = json.loads(body)
        event_type, resource = envelope["event_type"], envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM" or event_type not in _EVENTS:
            raise WireError(f"unsupported notification {event_type!r}")
        plain = aes_gcm_decrypt(cfg.api_v3_key, resource["nonce"].encode(), (resource.get("associated_data") or "").encode(),
                                resource["ciphertext"])
        if plain is None:
            raise bad_signature(cfg.name, "notification resource (AES-GCM tag)")
        data = json.loads(plain)
        kind, status = _EVENTS[event_type]
        event_id = _str(envelope, "id")
        if kind == "payment":
            p = payment_from(data)
            return Notification(cfg.name, "payment", event_id, status, out_trade_no=p.out_trade_no, trade_no=p.trade_no,
                                amount_fen=p.amount_fen, data={"event_type": event_type})
        if kind == "refund":
            r = refund_from(data)
            return Notification(cfg.name, "refund", event_id, status, out_trade_no=r.out_trade_no, out_refund_no=r.out_refund_no,
                                trade_no=r.refund_id, amount_fen=r.amount_fen, data={"event_type": event_type})
        a = agreement_from(data)
        return Notification(cfg.name, "agreement", event_id, status, data={"event_type": event_type, "subject": a.out_agreement_no,
                                                                          "agreement_no": a.agreement_no})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # WireError and JSON errors are ValueErrors
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None


def ack(accepted: bool) -> Ack:
    if accepted:
        return Ack(204, b"", "application/json")
    return Ack(400, dumps({"code": "FAIL", "message": "refused"}), "application/json")


# ---- statements --------------------------------------------------------------------------------

HEADER = ["交易时间", "公众账号ID", "商户号", "微信订单号", "商户订单号", "交易类型", "交易状态", "应结订单金额",
          "微信退款单号", "商户退款单号", "退款金额", "退款状态", "商品名称"]
SUMMARY = ["总交易单数", "总退款单数", "应结订单总金额", "退款总金额"]


def _cell(value: str) -> str:
    if not value.startswith("`"):
        raise WireError(f"statement field without its backtick: {value!r}")
    return value[1:]


def parse_statement(name: str, text: str, day: date) -> Statement:
    """Rows `交易时间,…` (each field prefixed with a backtick, as WeChat's are), then a summary header and line."""
    try:
        lines = list(csv.reader(io.StringIO(text)))
        if not lines or lines[0] != HEADER:
            raise WireError("the statement does not start with its header")
        at = lines.index(SUMMARY)
        rows: list[StatementRow] = []
        for cells in lines[1:at]:
            if len(cells) != len(HEADER):
                raise WireError(f"a row has {len(cells)} fields")
            v = [_cell(c) for c in cells]
            when = parse_plain_time(v[0])
            if v[8] not in ("", "0"):
                rows.append(StatementRow("refund", v[4], v[3], yuan_to_fen(v[10]), when, out_refund_no=v[9], refund_id=v[8]))
            else:
                rows.append(StatementRow("trade", v[4], v[3], yuan_to_fen(v[7]), when))
        summary = [_cell(c) for c in lines[at + 1]]
        st = Statement(name, day, tuple(rows), int(summary[0]), yuan_to_fen(summary[2]), int(summary[1]), yuan_to_fen(summary[3]))
    except (ValueError, IndexError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    return check_statement_totals(st)
