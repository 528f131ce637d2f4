"""Alipay-style wire format: pure transformers, no I/O.

Requests are form posts to one gateway with common parameters (`app_id, method, charset,
sign_type=RSA2, timestamp, version, biz_content`) signed RSA2 (SHA256withRSA) over the ASCII-sorted
`k=v&…` string of every non-empty parameter except `sign`. Answers are JSON
`{"<method>_response": {...}, "sign": "..."}`, signed over the exact text of the `_response` value.
Asynchronous notifications are form posts signed over the sorted string without `sign` and
`sign_type`; the platform answers the body `success` (anything else: resent). Amounts are yuan strings.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping
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
from yibao.channels.wire import WireError, fen_to_yuan, parse_plain_time, plain_time, yuan_to_fen

NAME = "alipay"
GATEWAY = "/gateway.do"
SUCCESS = "10000"
PROCESSING = "10003"  # the holder's payment is being processed ("wait user pay")
UNAVAILABLE = ("20000", "20001")
NOT_FOUND_SUBCODES = ("ACQ.TRADE_NOT_EXIST", "AGREEMENT_NOT_EXIST", "ACQ.REFUND_NOT_EXIST")


@dataclass(frozen=True)
class AlipayConfig:
    base_url: str
    app_id: str
    app_key: RSAPrivateKey = field(repr=False)  # ours: signs requests
    alipay_key: RSAPublicKey | None = field(default=None, repr=False)  # the institution's: verifies answers and notifications
    notify_url: str | None = None
    timeout: float = 5.0
    name: str = NAME


def dumps(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


# ---- requests ----------------------------------------------------------------------------------

def request_params(cfg: AlipayConfig, method: str, biz: Mapping[str, Any], now: datetime, *, notify: bool = False) -> dict[str, str]:
    """The signed parameters of one gateway call."""
    params = {"app_id": cfg.app_id, "method": method, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
              "timestamp": plain_time(now), "version": "1.0", "biz_content": dumps(biz)}
    if notify and cfg.notify_url:
        params["notify_url"] = cfg.notify_url
    params["sign"] = rsa_sign(cfg.app_key, canonical_kv(params, exclude=("sign",)).encode())
    return params


def agreement_biz(req: AgreementRequest) -> dict[str, Any]:
    return {"personal_product_code": "GENERAL_WITHHOLDING_P", "external_agreement_no": req.out_agreement_no,
            "alipay_open_id": req.holder_token, "single_limit": fen_to_yuan(req.limit_fen)}


def pay_biz(req: PaymentRequest) -> dict[str, Any]:
    return {"out_trade_no": req.out_trade_no, "total_amount": fen_to_yuan(req.amount_fen), "subject": req.description,
            "product_code": "GENERAL_WITHHOLDING", "agreement_params": {"agreement_no": req.agreement_no}}


def refund_biz(req: RefundRequest) -> dict[str, Any]:
    biz = {"out_trade_no": req.out_trade_no, "out_request_no": req.out_refund_no, "refund_amount": fen_to_yuan(req.amount_fen)}
    if req.reason:
        biz["refund_reason"] = req.reason
    return biz


# ---- answers -----------------------------------------------------------------------------------

def node_name(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_part(text: str, node: str) -> str | None:
    """The exact text of the value under `node` — what the institution signed — or None."""
    marker = f'"{node}":'
    at = text.find(marker)
    if at < 0:
        return None
    start = at + len(marker)
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return None
    return text[start:end]


def open_answer(cfg: AlipayConfig, method: str, body: bytes) -> dict[str, Any]:
    """Verify an answer's signature over its `_response` text and return that object; BadSignature otherwise."""
    try:
        text = body.decode("utf-8")
        envelope = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise unknown(cfg.name, "garbled_answer", "the answer is not JSON") from None
    node = node_name(method) if node_name(method) in envelope else "error_response"
    part = signed_part(text, node)
    if cfg.alipay_key is None or part is None or not rsa_verify(cfg.alipay_key, part.encode(), envelope.get("sign")):
        raise bad_signature(cfg.name, f"answer to {method}")
    data = json.loads(part)
    if not isinstance(data, dict):
        raise unknown(cfg.name, "garbled_answer", "the answer is not an object")
    return data


def check_code(cfg: AlipayConfig, data: Mapping[str, Any], what: str) -> None:
    code, sub = str(data.get("code", "")), str(data.get("sub_code", ""))
    if code in (SUCCESS, PROCESSING):
        return
    if code in UNAVAILABLE or sub in ("ACQ.SYSTEM_ERROR", "SYSTEM_ERROR"):
        raise unknown(cfg.name, sub or code, str(data.get("sub_msg") or data.get("msg") or ""))
    if sub in NOT_FOUND_SUBCODES:
        raise not_found_at(cfg.name, what)
    raise declined(cfg.name, sub or code, str(data.get("sub_msg") or data.get("msg") or ""))


def _s(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{key} is missing")
    return value


def agreement_from(data: Mapping[str, Any]) -> Agreement:
    status = data.get("status")
    if status not in ("NORMAL", "STOP"):
        raise WireError(f"unknown agreement status {status!r}")
    return Agreement(_s(data, "external_agreement_no"), _s(data, "agreement_no"), "active" if status == "NORMAL" else "terminated",
                     yuan_to_fen(_s(data, "single_limit")))


_TRADE_STATUS = {"TRADE_SUCCESS": "succeeded", "TRADE_FINISHED": "succeeded", "WAIT_BUYER_PAY": "processing", "TRADE_CLOSED": "failed"}


def payment_from(data: Mapping[str, Any]) -> PaymentResult:
    """An alipay.trade.query (or .pay) answer. A fully refunded trade is closed too: `refund_fee` tells them apart."""
    refunded = yuan_to_fen(data["refund_fee"]) if data.get("refund_fee") else 0
    status = data.get("trade_status")
    if status is None:  # alipay.trade.pay answers without a status: its code says it
        status = "WAIT_BUYER_PAY" if data.get("code") == PROCESSING else "TRADE_SUCCESS"
    if status not in _TRADE_STATUS:
        raise WireError(f"unknown trade_status {status!r}")
    mapped = _TRADE_STATUS[status]
    if status == "TRADE_CLOSED" and refunded and data.get("send_pay_date"):
        mapped = "succeeded"  # paid, then refunded in full
    paid_at = parse_plain_time(data["send_pay_date"]) if data.get("send_pay_date") else None
    return PaymentResult(_s(data, "out_trade_no"), data.get("trade_no") or None, mapped, yuan_to_fen(_s(data, "total_amount")),
                         refunded, (data.get("fail_reason") or data.get("sub_code") or None) if mapped == "failed" else None, paid_at)


def refund_from(data: Mapping[str, Any], out_trade_no: str, out_refund_no: str) -> RefundResult:
    status = data.get("refund_status") or "REFUND_SUCCESS"
    return RefundResult(out_trade_no, out_refund_no, data.get("refund_id") or None,
                        "succeeded" if status == "REFUND_SUCCESS" else "failed",
                        yuan_to_fen(data.get("refund_amount") or _s(data, "send_back_fee")),  # query: refund_amount; refund: send_back_fee
                        data.get("sub_code") or None)


# ---- notifications -----------------------------------------------------------------------------

def parse_notification(cfg: AlipayConfig, body: bytes) -> Notification:
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise bad_signature(cfg.name, "notification (not a form)") from None
    if (cfg.alipay_key is None or params.get("sign_type") != "RSA2" or params.get("app_id") != cfg.app_id
            or not rsa_verify(cfg.alipay_key, canonical_kv(params, exclude=("sign", "sign_type")).encode(), params.get("sign"))):
        raise bad_signature(cfg.name, "notification")
    try:
        kind, notify_id = params["notify_type"], params["notify_id"]
        data = {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
        if kind == "trade_status_sync" and params.get("out_biz_no"):
            return Notification(cfg.name, "refund", notify_id, "succeeded", out_trade_no=params["out_trade_no"],
                                out_refund_no=params["out_biz_no"], trade_no=params.get("trade_no"),
                                amount_fen=yuan_to_fen(params["send_back_fee"]), data=data)
        if kind == "trade_status_sync":
            status = _TRADE_STATUS[params["trade_status"]]
            return Notification(cfg.name, "payment", notify_id, status, out_trade_no=params["out_trade_no"], trade_no=params.get("trade_no"),
                                amount_fen=yuan_to_fen(params["total_amount"]), data=data)
        if kind in ("dut_user_sign", "dut_user_unsign"):
            return Notification(cfg.name, "agreement", notify_id, "active" if kind == "dut_user_sign" else "terminated",
                                data={**data, "subject": params["external_agreement_no"]})
    except (KeyError, ValueError) as exc:
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None
    raise bad_signature(cfg.name, f"notification of unknown type {params.get('notify_type')!r}")


def ack(accepted: bool) -> Ack:
    return Ack(200, b"success" if accepted else b"fail", "text/plain")


# ---- statements --------------------------------------------------------------------------------

HEADER = ["支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "订单金额（元）", "商家实收（元）", "退款批次号/请求号"]


def _signed_yuan(text: str) -> int:
    return -yuan_to_fen(text[1:]) if text.startswith("-") else yuan_to_fen(text)


def parse_statement(name: str, text: str, day: date) -> Statement:
    """`#` comment lines around a CSV block; refunds carry negative amounts; the footer `#交易合计…` sums them."""
    try:
        body = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        footer = [ln for ln in text.splitlines() if ln.startswith("#合计")]
        cells = list(csv.reader(io.StringIO("\n".join(body))))
        if not cells or cells[0] != HEADER or len(footer) != 1:
            raise WireError("the statement lacks its header or its footer")
        rows: list[StatementRow] = []
        for c in cells[1:]:
            if len(c) != len(HEADER):
                raise WireError(f"a row has {len(c)} fields")
            amount = _signed_yuan(c[7])
            when = parse_plain_time(c[5])
            if c[2] == "交易" and amount > 0:
                rows.append(StatementRow("trade", c[1], c[0], amount, when))
            elif c[2] == "退款" and amount < 0:
                rows.append(StatementRow("refund", c[1], c[0], -amount, when, out_refund_no=c[8], refund_id=c[8]))
            else:
                raise WireError(f"a row of unknown kind {c[2]!r} or sign")
        # #合计：交易N笔，金额X元；退款M笔，金额Y元
        summary = footer[0].removeprefix("#合计：")
        trade_part, refund_part = summary.split("；")
        tn, tamount = trade_part.removeprefix("交易").removesuffix("元").split("笔，金额")
        rn, ramount = refund_part.removeprefix("退款").removesuffix("元").split("笔，金额")
        st = Statement(name, day, tuple(rows), int(tn), yuan_to_fen(tamount), int(rn), yuan_to_fen(ramount))
    except (ValueError, IndexError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    return check_statement_totals(st)
