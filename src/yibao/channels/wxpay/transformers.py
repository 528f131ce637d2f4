"""WeChat Pay API v3 wire format: pure transformers, no I/O.

Requests are JSON, signed `WECHATPAY2-SHA256-RSA2048` over `METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`
with the merchant's (our) private key. Responses and notifications are signed by the institution
over `TIMESTAMP\\nNONCE\\nBODY\\n` (headers `Wechatpay-Timestamp/-Nonce/-Signature/-Serial`); a
notification's `resource` is AEAD_AES_256_GCM ciphertext under the API v3 key. Amounts are
integer fen on this wire (as in WeChat Pay v3); statement files carry yuan.

Answers and notifications name their key in `Wechatpay-Serial`: a platform public-key id
(`PUB_KEY_ID_…`) or the serial of a platform certificate (hex of the X.509 serial number), those
certificates downloaded from `GET /v3/certificates` AEAD-encrypted under the API v3 key. Paths, fields
and states follow WeChat Pay's direct-merchant 委托代扣 (papay) v3, refund and bill APIs; what we had to
guess is marked in docs/channels.md.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    BadSignature,
    MedInsOrder,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    SigningStart,
    Statement,
    StatementError,
    StatementRow,
    WalletRequest,
    bad_signature,
    check_statement_totals,
    declined,
    not_found_at,
    unknown,
)
from yibao.channels.crypto import aes_gcm_decrypt, rsa_sign, rsa_verify
from yibao.channels.wire import WireError, parse_plain_time, parse_rfc3339, yuan_to_fen
from yibao.formats.bulk import collector_paused

NAME = "wxpay"
SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_S = 300  # a signed answer or notification older (or newer) than five minutes is a replay
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"  # WeChat's probe traffic: such signatures are checked like any other
# The papay template id when none is configured (the platform's stored configuration has no field for it yet).
DEFAULT_PLAN_ID = 12535


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
    plan_id: int = DEFAULT_PLAN_ID  # the papay template (委托代扣模板) the contracts are signed under
    platform_certificates: bool = False  # also trust platform certificates downloaded from GET /v3/certificates
    plan_limit_fen: int = 0  # the template's per-deduction limit, for contracts whose answer does not say
    deduct_notice: bool = True  # the template requires a 预扣费通知 before each deduction: `pay` sends one first


def public_key_id(key: RSAPublicKey | RSAPrivateKey) -> str:
    """A `PUB_KEY_ID_…` for a key (the sandbox's own; a real institution assigns its id, configured as `platform_serial`)."""
    from yibao.channels.crypto import key_serial

    return PUBLIC_KEY_ID_PREFIX + str(int(key_serial(key), 16))[:28].rjust(28, "0")


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


def _skew_ok(ts: str, now: datetime) -> bool:
    return ts.isdigit() and abs(int(now.timestamp()) - int(ts)) <= MAX_SKEW_S


def platform_key_for(cfg: WxPayConfig, serial: str, certificates: Mapping[str, RSAPublicKey] | None = None) -> RSAPublicKey | None:
    """The key a `Wechatpay-Serial` names: the configured public key (by its id or serial), or a downloaded certificate's."""
    if cfg.platform_key is not None:
        if serial == cfg.platform_serial:
            return cfg.platform_key
        # The stored configuration may hold only the key: any public-key id then selects it (the signature decides).
        if serial.startswith(PUBLIC_KEY_ID_PREFIX) and not cfg.platform_serial.startswith(PUBLIC_KEY_ID_PREFIX):
            return cfg.platform_key
    return (certificates or {}).get(serial.upper())


def verify_signed(cfg: WxPayConfig, headers: Mapping[str, str], body: bytes, now: datetime, what: str,
                  certificates: Mapping[str, RSAPublicKey] | None = None) -> None:
    """Check an answer's or a notification's Wechatpay-* signature; BadSignature if anything is off."""
    _verify_wechatpay_signature(cfg, headers, lambda ts, nonce: response_message(ts, nonce, body), now, what, certificates)


def _verify_wechatpay_signature(cfg: WxPayConfig, headers: Mapping[str, str], message: Callable[[str, str], Any], now: datetime, what: str,
                                certificates: Mapping[str, RSAPublicKey] | None) -> None:
    """The `Wechatpay-*` headers' signature over ``message(timestamp, nonce)``: an answer's or notification's 3-line
    message, or a wallet request's 5-line one. BadSignature (UnknownSerial for a key we do not hold) if anything is off."""
    h = {k.lower(): v for k, v in headers.items()}
    ts, nonce, sig, serial = (h.get("wechatpay-timestamp"), h.get("wechatpay-nonce"), h.get("wechatpay-signature"),
                              h.get("wechatpay-serial"))
    kind = h.get("wechatpay-signature-type")
    if kind != SCHEME:  # required, as WeChat's SDKs require it
        raise bad_signature(cfg.name, f"{what} (signature type {kind!r})")
    if not (ts and nonce and sig and serial):
        raise bad_signature(cfg.name, f"{what} (missing Wechatpay-* headers)")
    key = platform_key_for(cfg, serial, certificates)
    if key is None:
        raise UnknownSerial(cfg.name, serial, what)
    if not _skew_ok(ts, now):
        raise bad_signature(cfg.name, f"{what} (timestamp outside five minutes)")
    # Probe traffic (a signature starting WECHATPAY/SIGNTEST/) is deliberately wrong: it fails here like any forgery.
    if not rsa_verify(key, message(ts, nonce), sig):
        raise bad_signature(cfg.name, what)

class UnknownSerial(BadSignature):
    """An answer or notification signed under a key serial we do not (yet) hold: fetch the certificates, or refuse."""

    def __init__(self, name: str, serial: str, what: str) -> None:
        super().__init__(name, "bad_signature", "签名验证失败（未知的平台证书或公钥），不予采信",
                         f"{name}: {what} names an unknown key serial {serial!r}")
        self.serial = serial


# ---- platform certificates (GET /v3/certificates) -------------------------------------------------

@dataclass(frozen=True)
class PlatformCertificate:
    serial_no: str
    key: RSAPublicKey
    not_before: datetime
    not_after: datetime


def certificates_from(cfg: WxPayConfig, data: Mapping[str, Any], now: datetime) -> list[PlatformCertificate]:
    """Decrypt and load each certificate of a /v3/certificates answer; only those valid now, whose serial matches."""
    out: list[PlatformCertificate] = []
    for item in data.get("data") or []:
        enc = item.get("encrypt_certificate") or {}
        if enc.get("algorithm") != "AEAD_AES_256_GCM":
            raise WireError(f"unsupported certificate encryption {enc.get('algorithm')!r}")
        pem = aes_gcm_decrypt(cfg.api_v3_key, str(enc.get("nonce", "")).encode(), str(enc.get("associated_data", "")).encode(),
                              str(enc.get("ciphertext", "")))
        if pem is None:
            raise WireError("a platform certificate does not decrypt under the API v3 key")
        cert = x509.load_pem_x509_certificate(pem)
        serial = _str(item, "serial_no").upper()
        if serial != format(cert.serial_number, "X"):
            raise WireError(f"serial_no {serial} is not the certificate's")
        key = cert.public_key()
        if not isinstance(key, RSAPublicKey):
            raise WireError("a platform certificate without an RSA key")
        nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
        if nb <= now.astimezone(timezone.utc) <= na:
            out.append(PlatformCertificate(serial, key, nb, na))
    return out


# ---- requests ----------------------------------------------------------------------------------

def pre_entrust_body(cfg: WxPayConfig, req: AgreementRequest) -> dict[str, Any]:
    """代扣预签约 (`POST /v3/papay/sign/contracts/pre-entrust-sign`), QR-code scene: the holder opens the page's URL."""
    notify = req.notify_url or cfg.notify_url
    if not notify:
        raise ValueError("WeChat's pre-entrust-sign needs contract_notify_url: configure a notify URL")
    body: dict[str, Any] = {"sign_scene": "SIGN_SCENE_QRCODE", "appid": cfg.appid, "plan_id": cfg.plan_id,
                            "out_contract_code": req.out_agreement_no, "contract_display_account": req.display_name[:32],
                            "contract_notify_url": notify, "out_user_code": req.holder_token, "device_info": {}}
    if req.return_url:
        body["return_url"] = req.return_url
    return body


def signing_from(data: Mapping[str, Any], out_contract_code: str) -> SigningStart:
    session = _str(data, "pre_entrustweb_id")
    url = str(data.get("redirect_url") or "")
    if not url.startswith(("https://", "http://")):
        raise WireError("the pre-sign answer carries no signing URL (redirect_url)")
    return SigningStart(out_contract_code, url, session_id=session)


def deduct_notice_path(contract_id: str) -> str:
    from urllib.parse import quote

    return f"/v3/papay/contracts/{quote(contract_id)}/notify"


def deduct_notice_body(cfg: WxPayConfig, amount_fen: int) -> dict[str, Any]:
    """预扣费通知 before a deduction: the amount about to be deducted (the deduction may not exceed it)."""
    return {"mchid": cfg.mchid, "appid": cfg.appid, "deduct_duration": {"count": 1, "unit": "DAY"},
            "estimated_amount": {"amount": amount_fen, "currency": "CNY"}}


def contract_path(cfg: WxPayConfig, out_contract_code: str) -> str:
    from urllib.parse import quote

    return f"/v3/papay/sign/contracts/plan-id/{cfg.plan_id}/out-contract-code/{quote(out_contract_code)}"


def terminate_body(cfg: WxPayConfig) -> dict[str, Any]:
    return {"contract_termination_remark": "参保人解除绑定 (holder unbound)"}


def pay_body(cfg: WxPayConfig, req: PaymentRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"appid": cfg.appid, "out_trade_no": req.out_trade_no, "description": req.description,
                            "contract_id": req.agreement_no, "amount": {"total": req.amount_fen, "currency": "CNY"}}
    if cfg.notify_url:
        body["transaction_notify_url"] = cfg.notify_url
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


_CONTRACT_STATES = {"SIGNED": "active", "TERMINATED": "terminated"}


def agreement_from(data: Mapping[str, Any], plan_limit_fen: int = 0) -> Agreement:
    """A contract (query answer or PAPAY notification resource). `deduct_limit` is the sandbox's, absent in real answers."""
    state = data.get("contract_state")
    if state not in _CONTRACT_STATES:
        raise WireError(f"contract_state {state!r} is not a signed or terminated contract")
    limit = _int(data, "deduct_limit", "total") if isinstance(data.get("deduct_limit"), Mapping) else plan_limit_fen
    return Agreement(_str(data, "out_contract_code"), _str(data, "contract_id"), _CONTRACT_STATES[state], limit)  # type: ignore[arg-type]


# Query answers and TRANSACTION.* resources. ACCEPT: the deduction was accepted and is under way (papay).
_TRADE_STATES = {"SUCCESS": "succeeded", "REFUND": "succeeded", "ACCEPT": "processing", "USERPAYING": "processing",
                 "NOTPAY": "processing", "PAY_FAIL": "failed", "PAYERROR": "failed", "CLOSED": "failed", "REVOKED": "failed"}


def payment_from(data: Mapping[str, Any]) -> PaymentResult:
    state = data.get("trade_state")
    if state not in _TRADE_STATES:
        raise WireError(f"unknown trade_state {state!r}")
    status = _TRADE_STATES[state]
    paid_at = parse_rfc3339(data["success_time"]) if data.get("success_time") and status == "succeeded" else None
    error = (str(data.get("trade_state_desc") or state) if status == "failed" else None)
    return PaymentResult(_str(data, "out_trade_no"), data.get("transaction_id") or None, status,  # type: ignore[arg-type]
                         _int(data, "amount", "total"), 0, error, paid_at)


# ABNORMAL: the refund to the buyer's card failed and WeChat holds the money for the merchant to redirect (an operator's
# apply-abnormal-refund, not modelled) — it has left the merchant, so it is not "failed" (nothing given back): processing.
_REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "processing", "ABNORMAL": "processing", "CLOSED": "failed"}


def refund_from(data: Mapping[str, Any], *, key: str = "status") -> RefundResult:
    """A refund answer or query (`status`) or a REFUND.* resource (`refund_status`)."""
    status = data.get(key)
    if status not in _REFUND_STATES:
        raise WireError(f"unknown {key} {status!r}")
    return RefundResult(_str(data, "out_trade_no"), _str(data, "out_refund_no"), data.get("refund_id") or None,
                        _REFUND_STATES[status], _int(data, "amount", "refund"), None if status in ("SUCCESS", "PROCESSING") else status)  # type: ignore[arg-type]


def error_from(name: str, status: int, data: Mapping[str, Any], what: str) -> Exception:
    """A signed non-2xx answer: 5xx, 429 and SYSTEM_ERROR mean "unknown, query"; 404 "no such thing"; other 4xx a definite
    no (of the request it answers — `Connector._after_acceptance` reads a refused query after an accepted request as unknown)."""
    code = str(data.get("code") or f"HTTP_{status}")
    message = str(data.get("message") or "")
    if status >= 500 or status == 429 or code in ("SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR"):
        return unknown(name, code, message or f"HTTP {status}")
    if status == 404:
        return not_found_at(name, what)
    if code == "OUT_TRADE_NO_USED":  # our number is on its books with another request: an operator's matter, never a decline
        return unknown(name, code, message or "the order number was used with other parameters")
    return declined(name, code, message)


# ---- notifications -----------------------------------------------------------------------------

_EVENTS = {"TRANSACTION.SUCCESS": ("payment", "succeeded"), "TRANSACTION.FAIL": ("payment", "failed"),
           "TRANSACTION.PAYERROR": ("payment", "failed"),
           "REFUND.SUCCESS": ("refund", "succeeded"), "REFUND.ABNORMAL": ("refund", "processing"), "REFUND.CLOSED": ("refund", "failed"),
           "PAPAY.SIGN": ("agreement", "active"), "PAPAY.TERMINATE": ("agreement", "terminated")}


def parse_notification(cfg: WxPayConfig, headers: Mapping[str, str], body: bytes, now: datetime,
                       certificates: Mapping[str, RSAPublicKey] | None = None) -> Notification:
    """Verify the signature first, then decrypt the resource (its tag is a second check), then parse."""
    verify_signed(cfg, headers, body, now, "notification", certificates)
    try:
        envelope = json.loads(body)
        event_type, resource = envelope["event_type"], envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM" or event_type not in _EVENTS:
            raise WireError(f"unsupported notification {event_type!r}")
        if envelope.get("resource_type", "encrypt-resource") != "encrypt-resource":
            raise WireError("resource_type is not encrypt-resource")
        plain = aes_gcm_decrypt(cfg.api_v3_key, resource["nonce"].encode(), (resource.get("associated_data") or "").encode(),
                                resource["ciphertext"])
        if plain is None:
            raise bad_signature(cfg.name, "notification resource (AES-GCM tag)")
        data = json.loads(plain)
        kind, status = _EVENTS[event_type]
        event_id = _str(envelope, "id")
        if kind == "payment":
            p = payment_from(data)
            if p.status != status:
                raise WireError(f"{event_type} carries trade_state {data.get('trade_state')!r}")
            return Notification(cfg.name, "payment", event_id, status, out_trade_no=p.out_trade_no, trade_no=p.trade_no,
                                amount_fen=p.amount_fen, data={"event_type": event_type}, event_at=p.paid_at)
        if kind == "refund":
            r = refund_from(data, key="refund_status")
            if r.status != status:
                raise WireError(f"{event_type} carries refund_status {data.get('refund_status')!r}")
            return Notification(cfg.name, "refund", event_id, status, out_trade_no=r.out_trade_no, out_refund_no=r.out_refund_no,
                                trade_no=r.refund_id, amount_fen=r.amount_fen, data={"event_type": event_type})
        a = agreement_from(data, cfg.plan_limit_fen)
        return Notification(cfg.name, "agreement", event_id, a.status, data={"event_type": event_type, "subject": a.out_agreement_no,
                                                                             "agreement_no": a.agreement_no})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:  # WireError and JSON errors are ValueErrors
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None


def ack(accepted: bool) -> Ack:
    if accepted:
        return Ack(204, b"", "application/json")
    return Ack(400, dumps({"code": "FAIL", "message": "验签失败，请重发 (refused: resend)"}), "application/json")


# ---- statements --------------------------------------------------------------------------------

# The trade bill (交易账单, bill_type=ALL): 27 columns, each value prefixed with a backtick, amounts in yuan;
# then a summary header and one summary line. Downloaded gzip-compressed (tar_type=GZIP); hash_value is
# the SHA1 of the decompressed file.
HEADER = ["交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型", "交易状态",
          "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型",
          "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"]
SUMMARY = ["总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"]
_COL = {name: i for i, name in enumerate(HEADER)}


def _cell(value: str) -> str:
    if not value.startswith("`"):
        raise WireError(f"statement field without its backtick: {value!r}")
    return value[1:]


def check_bill(name: str, content: bytes, tar_type: str, hash_type: Any, hash_value: Any) -> str:
    """Decompress (GZIP) and check the SHA1 the signed answer gave; the file's text."""
    try:
        raw = gzip.decompress(content) if tar_type == "GZIP" else content
    except (OSError, EOFError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单无法解压", f"{name}: the statement does not decompress ({exc})") from None
    if hash_type != "SHA1" or not isinstance(hash_value, str) or hashlib.sha1(raw).hexdigest() != hash_value.lower():
        raise StatementError(name, "statement_hash_mismatch", "对账单文件摘要不符", f"{name}: the statement file does not match its hash")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StatementError(name, "statement_unreadable", "对账单编码无法识别", f"{name}: the statement is not UTF-8") from None


def parse_statement(name: str, text: str, day: date) -> Statement:
    """Rows (SUCCESS: a trade, REFUND: a refund), then the summary, which must agree with them (_parse_statement)."""
    with collector_paused():
        return _parse_statement(name, text, day)


def _parse_statement(name: str, text: str, day: date) -> Statement:
    """Rows (SUCCESS: a trade, REFUND: a refund), then the summary, which must agree with them. A day's file may hold a
    million rows: a time or an amount is parsed once however often it recurs (a day has 86,400 seconds)."""
    width, tick = len(HEADER), "`"
    ticks = (tick,) * width
    times: dict[str, datetime] = {}
    fen: dict[str, int] = {}

    def when_of(value: str) -> datetime:
        at = times.get(value)
        if at is None:
            at = times[value] = parse_plain_time(value)
        return at

    def fen_of(value: str) -> int:
        amount = fen.get(value)
        if amount is None:
            amount = fen[value] = yuan_to_fen(value)
        return amount
    try:
        lines = (row for row in csv.reader(io.StringIO(text)) if row)  # streamed: a million rows are never all lists at once
        if [c.strip() for c in next(lines, [])] != HEADER:
            raise WireError("the statement does not start with its header")
        rows: list[StatementRow] = []
        settled = ordered = applied = 0
        c_time, c_state, c_trade, c_out = _COL["交易时间"], _COL["交易状态"], _COL["微信订单号"], _COL["商户订单号"]
        c_settled, c_ordered, c_refund, c_applied = _COL["应结订单金额"], _COL["订单金额"], _COL["退款金额"], _COL["申请退款金额"]
        c_refund_id, c_out_refund = _COL["微信退款单号"], _COL["商户退款单号"]
        summary: list[str] | None = None
        for cells in lines:
            if len(cells) != width:
                if len(cells) == len(SUMMARY) and [c.strip() for c in cells] == SUMMARY:
                    summary = [_cell(c) for c in next(lines)]  # the line after the summary's header
                    if next(lines, None) is not None:
                        summary = []
                    break
                raise WireError(f"a row has {len(cells)} fields")
            if not all(map(str.startswith, cells, ticks)):
                _cell(next(c for c in cells if not c.startswith(tick)))  # names the field without its backtick
            state, at = cells[c_state][1:], cells[c_time][1:]
            when = times.get(at) or when_of(at)
            if state == "REFUND":
                refund, asked = cells[c_refund][1:], cells[c_applied][1:]
                rows.append(StatementRow("refund", cells[c_out][1:], cells[c_trade][1:], fen.get(refund) or fen_of(refund), when,
                                         cells[c_out_refund][1:], cells[c_refund_id][1:]))
                applied += fen.get(asked) or fen_of(asked)
            elif state == "SUCCESS":
                paid, total = cells[c_settled][1:], cells[c_ordered][1:]
                amount = fen.get(paid) or fen_of(paid)
                rows.append(StatementRow("trade", cells[c_out][1:], cells[c_trade][1:], amount, when))
                settled += amount
                ordered += fen.get(total) or fen_of(total)
            else:
                raise WireError(f"unknown 交易状态 {state!r}")
        if summary is None:
            raise WireError("the statement has no summary")
        if len(summary) != len(SUMMARY):
            raise WireError("the summary line is not the last, or has other fields")
        trades = [r for r in rows if r.kind == "trade"]
        refunds = [r for r in rows if r.kind == "refund"]
        count, settled_total, refund_total = int(summary[0]), yuan_to_fen(summary[1]), yuan_to_fen(summary[2])
        if (count, yuan_to_fen(summary[5]), yuan_to_fen(summary[6])) != (len(rows), ordered, applied):
            raise StatementError(name, "statement_totals_mismatch", "对账单汇总行与明细不符",
                                 f"{name}: the statement's summary line disagrees with its rows")
        st = Statement(name, day, tuple(rows), len(trades), settled_total, len(refunds), refund_total)
    except (ValueError, IndexError, StopIteration) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    return check_statement_totals(st)


# ---- medical-insurance orders (医保支付: POST /v3/med-ins/orders, GET /v3/med-ins/orders/mix-trade-no/{id}) ---------

def verify_wallet_request(cfg: WxPayConfig, method: str, path_and_query: str, headers: Mapping[str, str], body: bytes, now: datetime,
                          certificates: Mapping[str, RSAPublicKey] | None = None) -> None:
    """A request WeChat Pay sends the insurance platform (it acts for the holder, or reports a mixed order): signed with
    its platform key over `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` — API v3's request message, so the path is
    covered too — in the `Wechatpay-*` headers its answers carry. [guess: that channel (WeChat ↔ the national platform)
    is not public; this is API v3's own signature turned around.] BadSignature if anything is off."""
    _verify_wechatpay_signature(cfg, headers, lambda ts, nonce: request_message(method, path_and_query, ts, nonce, body), now,
                                f"request {method} {path_and_query}", certificates)

def wallet_request_from(headers: Mapping[str, str], body: bytes) -> WalletRequest:
    """A verified wallet request's fields: its JSON body, already in the platform's names (fen); the nonce its header's."""
    nonce = next((v for k, v in headers.items() if k.lower() == "wechatpay-nonce"), "")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return WalletRequest(nonce, data if isinstance(data, dict) else None, nonce_field="Wechatpay-Nonce")


def med_ins_order_from(data: Mapping[str, Any]) -> MedInsOrder:
    """A mixed order as `GET /v3/med-ins/orders/mix-trade-no/{id}` answers it (amounts fen)."""
    return MedInsOrder(_str(data, "mix_trade_no"), _str(data, "pay_order_id"), _str(data, "mix_pay_status"), _str(data, "self_pay_status"),
                       _str(data, "med_ins_pay_status"), _int(data, "med_ins_cash_fee") if "med_ins_cash_fee" in data else 0)
