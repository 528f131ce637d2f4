"""UnionPay-style wire format (like the 全渠道 ACP 5.1 interface): pure transformers, no I/O.

Requests, answers and notifications are form-encoded `k=v&…` parameter sets. The signature is
`base64(SHA256withRSA(hex(SHA-256(sorted k=v string without "signature"))))` — a digest first,
then the RSA signature over the digest's hex text — and `certId` names the signing key. Amounts
(`txnAmt`) are fen as a digit string; statement files carry yuan. `respCode` 00 is success;
03/04/05 mean "not known yet, query"; anything else is a definite failure.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Mapping
from urllib.parse import parse_qsl

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
from yibao.channels.crypto import canonical_kv, rsa_sign, rsa_verify
from yibao.channels.wire import CHINA, WireError, compact_time, digits_to_fen, fen_to_digits, parse_compact_time, yuan_to_fen

NAME = "unionpay"
BACK_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
FILE_PATH = "/gateway/api/fileTransReq.do"
UNKNOWN_CODES = ("03", "04", "05")
NOT_FOUND_CODES = ("34",)  # "no such transaction"


@dataclass(frozen=True)
class UnionPayConfig:
    base_url: str
    mer_id: str
    cert_id: str  # our key's serial
    merchant_key: RSAPrivateKey = field(repr=False)
    unionpay_cert_id: str = ""
    unionpay_key: RSAPublicKey | None = field(default=None, repr=False)
    notify_url: str | None = None
    timeout: float = 5.0
    name: str = NAME


def digest_text(params: Mapping[str, str]) -> bytes:
    return hashlib.sha256(canonical_kv(params, exclude=("signature",)).encode()).hexdigest().encode()


def sign(key: RSAPrivateKey, params: dict[str, str]) -> dict[str, str]:
    return {**params, "signature": rsa_sign(key, digest_text(params))}


def verify(key: RSAPublicKey | None, cert_id: str, params: Mapping[str, str]) -> bool:
    return key is not None and params.get("certId") == cert_id and rsa_verify(key, digest_text(params), params.get("signature"))


def parse_form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)) if body else {}


# ---- requests ----------------------------------------------------------------------------------

def _common(cfg: UnionPayConfig, txn_type: str, sub: str, order_id: str, now: datetime) -> dict[str, str]:
    return {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": txn_type, "txnSubType": sub, "bizType": "000902",
            "accessType": "0", "channelType": "07", "merId": cfg.mer_id, "orderId": order_id, "txnTime": compact_time(now),
            "certId": cfg.cert_id}


def agreement_params(cfg: UnionPayConfig, req: AgreementRequest, now: datetime) -> dict[str, str]:
    return sign(cfg.merchant_key, {**_common(cfg, "79", "00", req.out_agreement_no, now), "holderToken": req.holder_token,
                                   "singleLimit": fen_to_digits(req.limit_fen)})


def agreement_ref_params(cfg: UnionPayConfig, txn_type: str, out_agreement_no: str, now: datetime) -> dict[str, str]:
    return sign(cfg.merchant_key, _common(cfg, txn_type, "00", out_agreement_no, now))


def pay_params(cfg: UnionPayConfig, req: PaymentRequest, now: datetime) -> dict[str, str]:
    params = {**_common(cfg, "01", "01", req.out_trade_no, now), "txnAmt": fen_to_digits(req.amount_fen), "currencyCode": "156",
              "tokenPayData": "{token=" + req.agreement_no + "&trId=99988877766}", "orderDesc": req.description}
    if cfg.notify_url:
        params["backUrl"] = cfg.notify_url
    return sign(cfg.merchant_key, params)


def query_params(cfg: UnionPayConfig, order_id: str, now: datetime) -> dict[str, str]:
    return sign(cfg.merchant_key, {**_common(cfg, "00", "00", order_id, now), "bizType": "000000"})


def refund_params(cfg: UnionPayConfig, req: RefundRequest, orig_qry_id: str, now: datetime) -> dict[str, str]:
    params = {**_common(cfg, "04", "00", req.out_refund_no, now), "origQryId": orig_qry_id, "txnAmt": fen_to_digits(req.amount_fen),
              "currencyCode": "156"}
    if cfg.notify_url:
        params["backUrl"] = cfg.notify_url
    return sign(cfg.merchant_key, params)


def file_params(cfg: UnionPayConfig, day: date, now: datetime) -> dict[str, str]:
    return sign(cfg.merchant_key, {**_common(cfg, "76", "01", "F" + compact_time(now), now), "bizType": "000000",
                                   "settleDate": f"{day:%Y%m%d}", "fileType": "00"})


# ---- answers -----------------------------------------------------------------------------------

def open_answer(cfg: UnionPayConfig, status: int, body: bytes, what: str) -> dict[str, str]:
    if status >= 500:
        raise unknown(cfg.name, f"HTTP_{status}", "server error")
    try:
        params = parse_form(body)
    except (UnicodeDecodeError, ValueError):
        raise unknown(cfg.name, "garbled_answer", "the answer is not a form") from None
    if not verify(cfg.unionpay_key, cfg.unionpay_cert_id, params):
        raise bad_signature(cfg.name, f"answer about {what}")
    return params


def check_resp(cfg: UnionPayConfig, params: Mapping[str, str], what: str, code_field: str = "respCode") -> None:
    code = params.get(code_field, "")
    if code == "00":
        return
    message = params.get("respMsg", "")
    if code in UNKNOWN_CODES or not code:
        raise unknown(cfg.name, code or "no_code", message)
    if code in NOT_FOUND_CODES:
        raise not_found_at(cfg.name, what)
    raise declined(cfg.name, code, message)


def agreement_from(params: Mapping[str, str]) -> Agreement:
    status = params.get("tokenStatus")
    if status not in ("1", "0"):
        raise WireError(f"unknown tokenStatus {status!r}")
    return Agreement(params["orderId"], params["token"], "active" if status == "1" else "terminated", digits_to_fen(params["singleLimit"]))


def payment_from(params: Mapping[str, str]) -> PaymentResult:
    """A query answer: `origRespCode` is the trade's own outcome (00 paid; 03/04/05 pending; else failed)."""
    if params.get("txnType") != "01":
        raise WireError(f"not a payment: txnType {params.get('txnType')!r}")
    orig = params.get("origRespCode", "")
    status = "succeeded" if orig == "00" else "processing" if orig in UNKNOWN_CODES or not orig else "failed"
    paid_at = parse_compact_time(params["traceTime"]) if status == "succeeded" and params.get("traceTime") else None
    refunded = digits_to_fen(params["refundedAmt"]) if params.get("refundedAmt") else 0
    return PaymentResult(params["orderId"], params.get("queryId") or None, status, digits_to_fen(params["txnAmt"]), refunded,
                         orig if status == "failed" else None, paid_at)


def refund_from(params: Mapping[str, str], out_trade_no: str) -> RefundResult:
    if params.get("txnType") != "04":
        raise WireError(f"not a refund: txnType {params.get('txnType')!r}")
    orig = params.get("origRespCode", params.get("respCode", ""))
    status = "succeeded" if orig == "00" else "processing" if orig in UNKNOWN_CODES else "failed"
    return RefundResult(out_trade_no, params["orderId"], params.get("queryId") or None, status, digits_to_fen(params["txnAmt"]),
                        orig if status == "failed" else None)


# ---- notifications -----------------------------------------------------------------------------

def parse_notification(cfg: UnionPayConfig, body: bytes) -> Notification:
    try:
        params = parse_form(body)
    except (UnicodeDecodeError, ValueError):
        raise bad_signature(cfg.name, "notification (not a form)") from None
    if not verify(cfg.unionpay_key, cfg.unionpay_cert_id, params) or params.get("merId") != cfg.mer_id:
        raise bad_signature(cfg.name, "notification")
    try:
        txn, event_id = params["txnType"], params["queryId"]
        ok = params["respCode"] == "00"
        data = {k: v for k, v in params.items() if k != "signature"}
        if txn == "01":
            return Notification(cfg.name, "payment", event_id, "succeeded" if ok else "failed", out_trade_no=params["orderId"],
                                trade_no=event_id, amount_fen=digits_to_fen(params["txnAmt"]), data=data)
        if txn == "04":
            return Notification(cfg.name, "refund", event_id, "succeeded" if ok else "failed", out_trade_no=params["origOrderId"],
                                out_refund_no=params["orderId"], trade_no=event_id, amount_fen=digits_to_fen(params["txnAmt"]), data=data)
        if txn in ("79", "74"):
            return Notification(cfg.name, "agreement", event_id, "active" if txn == "79" else "terminated",
                                data={**data, "subject": params["orderId"]})
    except (KeyError, ValueError) as exc:
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None
    raise bad_signature(cfg.name, f"notification of unknown txnType {params.get('txnType')!r}")


def ack(accepted: bool) -> Ack:
    # UnionPay takes HTTP 200 as "received"; anything else is resent.
    return Ack(200, b"ok", "text/plain") if accepted else Ack(400, b"refused", "text/plain")


# ---- statements --------------------------------------------------------------------------------

HEADER = "交易码|商户订单号|查询流水号|原商户订单号|交易金额(元)|交易时间"


def unpack_file(content_b64: str) -> str:
    return zlib.decompress(base64.b64decode(content_b64, validate=True)).decode("utf-8")


def parse_statement(name: str, text: str, day: date) -> Statement:
    """`|`-separated rows: 01 = consume, 04 = refund (origOrderId names its trade); a `TOTAL|…` line at the end."""
    try:
        lines = [ln for ln in text.split("\n") if ln]
        if not lines or lines[0] != HEADER or not lines[-1].startswith("TOTAL|"):
            raise WireError("the statement lacks its header or its TOTAL line")
        rows: list[StatementRow] = []
        for ln in lines[1:-1]:
            code, order_id, query_id, orig_order, amount, at = ln.split("|")
            when = parse_compact_time(at).astimezone(CHINA)
            if code == "01":
                rows.append(StatementRow("trade", order_id, query_id, yuan_to_fen(amount), when))
            elif code == "04":
                rows.append(StatementRow("refund", orig_order, query_id, yuan_to_fen(amount), when, out_refund_no=order_id, refund_id=query_id))
            else:
                raise WireError(f"unknown transaction code {code!r}")
        _, tn, tsum, rn, rsum = lines[-1].split("|")
        st = Statement(name, day, tuple(rows), int(tn), yuan_to_fen(tsum), int(rn), yuan_to_fen(rsum))
    except (ValueError, IndexError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    return check_statement_totals(st)
