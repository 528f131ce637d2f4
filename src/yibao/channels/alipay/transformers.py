"""Alipay OpenAPI (RSA2) wire format: pure transformers, no I/O.

Requests go to one gateway (`/gateway.do`). As Alipay's official SDK sends them, the common
parameters (`app_id, method, format, charset, sign_type=RSA2, timestamp, version, notify_url, sign`)
ride in the URL query and `biz_content` (JSON) in the form-encoded POST body; the gateway also takes
everything in the query of a GET. The signature is RSA2 (SHA256withRSA) over the ASCII-sorted
`k=v&…` of every non-empty parameter except `sign`, values raw. Answers are
`{"<method with underscores>_response": {...}, "sign": "..."}` signed over the exact text of the
`_response` value (gateway-level refusals come as `error_response`). Asynchronous notifications are
form posts signed over the sorted string without `sign` and `sign_type`; the platform answers the
plain body `success` (anything else: resent, 8 times over 25 h). Amounts are yuan strings; times
`yyyy-MM-dd HH:mm:ss` Beijing time. Statements: `alipay.data.dataservice.bill.downloadurl.query` gives
a short-lived URL (on Alipay's file host) of a zip holding GBK CSVs: the detail and its summary.

What each answer means (Alipay's published definitions):
- `alipay.trade.pay`: 10000 paid; 10003 in process (`query` tells the end); 20000 unknown; 40004
  declined — except `ACQ.TRADE_HAS_SUCCESS` (a resent order already paid: the query gives the trade).
- `alipay.trade.refund`: 10000 with `fund_change=Y` refunded now; `fund_change=N` (a repeat, or not
  yet) is processing — ask `alipay.trade.fastpay.refund.query`. `refund_fee` is the trade's total
  refunded so far, `send_back_fee` (optional) what went back to the buyer.
- `alipay.trade.fastpay.refund.query`: `refund_status=REFUND_SUCCESS` refunded; without it the refund
  was not received or failed (not refunded): resend the same `out_request_no`.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    MedInsOrder,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
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
from yibao.channels.crypto import canonical_kv, rsa_sign, rsa_verify
from yibao.channels.wire import WireError, fen_to_yuan, parse_plain_time, plain_time, yuan_to_fen

NAME = "alipay"
GATEWAY = "/gateway.do"
SUCCESS = "10000"
PROCESSING = "10003"  # alipay.trade.pay: "order success pay inprocess" — the result comes later
UNAVAILABLE = ("20000", "20001")  # service unavailable / authorisation: nothing definite
NOT_FOUND_SUBCODES = ("ACQ.TRADE_NOT_EXIST", "ACQ.REFUND_NOT_EXIST", "USER_AGREEMENT_NOT_EXIST", "AGREEMENT_NOT_EXIST")
ALREADY_PAID = "ACQ.TRADE_HAS_SUCCESS"
# The holder's signing page: a redirect the holder's browser opens (built and signed by us, never called by us).
PAGE_SIGN_METHOD = "alipay.user.agreement.page.sign"


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


def split_request(params: Mapping[str, str]) -> tuple[str, bytes]:
    """As the official SDK sends a call: common parameters and the signature in the query, biz_content in the form body."""
    query = {k: v for k, v in params.items() if k != "biz_content"}
    return urlencode(query), urlencode({"biz_content": params["biz_content"]}).encode()


def page_sign_url(cfg: AlipayConfig, req: AgreementRequest, now: datetime) -> str:
    """`alipay.user.agreement.page.sign` as the holder's redirect: the gateway's URL with every parameter, signed like a
    request, in its query (the SDKs' page_execute with GET). The holder's browser opens it; we never call it."""
    biz = {"personal_product_code": "GENERAL_WITHHOLDING_P", "product_code": "GENERAL_WITHHOLDING", "sign_scene": "INDUSTRY|MEDICAL",
           "external_agreement_no": req.out_agreement_no, "external_logon_id": req.holder_token, "access_params": {"channel": "QRCODE"}}
    params = {"app_id": cfg.app_id, "method": PAGE_SIGN_METHOD, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
              "timestamp": plain_time(now), "version": "1.0", "biz_content": dumps(biz)}
    notify = req.notify_url or cfg.notify_url
    if notify:
        params["notify_url"] = notify
    if req.return_url:
        params["return_url"] = req.return_url
    params["sign"] = rsa_sign(cfg.app_key, canonical_kv(params, exclude=("sign",)).encode())
    return f"{cfg.base_url.rstrip('/')}{GATEWAY}?{urlencode(params)}"


def agreement_ref(out_agreement_no: str) -> dict[str, Any]:
    return {"personal_product_code": "GENERAL_WITHHOLDING_P", "sign_scene": "INDUSTRY|MEDICAL", "external_agreement_no": out_agreement_no}


def pay_biz(req: PaymentRequest) -> dict[str, Any]:
    return {"out_trade_no": req.out_trade_no, "total_amount": fen_to_yuan(req.amount_fen), "subject": req.description,
            "product_code": "GENERAL_WITHHOLDING", "agreement_params": {"agreement_no": req.agreement_no}}


def refund_biz(req: RefundRequest) -> dict[str, Any]:
    biz = {"out_trade_no": req.out_trade_no, "out_request_no": req.out_refund_no, "refund_amount": fen_to_yuan(req.amount_fen)}
    if req.reason:
        biz["refund_reason"] = req.reason
    return biz


def refund_query_biz(out_trade_no: str, out_refund_no: str) -> dict[str, Any]:
    return {"out_trade_no": out_trade_no, "out_request_no": out_refund_no, "query_options": ["gmt_refund_pay"]}


# ---- answers -----------------------------------------------------------------------------------

def node_name(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_part(text: str, node: str) -> str | None:
    """The exact text of the value under `node` — what the institution signed — or None."""
    marker = f'"{node}"'
    at = text.find(marker)
    if at < 0:
        return None
    start = at + len(marker)
    while start < len(text) and text[start] in " \t\r\n":
        start += 1
    if start >= len(text) or text[start] != ":":
        return None
    start += 1
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
    if not isinstance(envelope, dict):
        raise unknown(cfg.name, "garbled_answer", "the answer is not an object")
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
    if code in UNAVAILABLE or sub in ("ACQ.SYSTEM_ERROR", "SYSTEM_ERROR", "isp.unknow-error", "aop.ACQ.SYSTEM_ERROR"):
        raise unknown(cfg.name, sub or code, str(data.get("sub_msg") or data.get("msg") or ""))
    if sub in NOT_FOUND_SUBCODES:
        raise not_found_at(cfg.name, what)
    raise declined(cfg.name, sub or code, str(data.get("sub_msg") or data.get("msg") or ""))


def _s(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"{key} is missing")
    return value


AGREEMENT_STATES = {"NORMAL": "active", "STOP": "terminated"}  # TEMP: signing not completed — neither


def agreement_from(data: Mapping[str, Any]) -> Agreement:
    """An alipay.user.agreement.query answer."""
    status = data.get("status")
    if status not in AGREEMENT_STATES:
        raise WireError(f"agreement status {status!r} (TEMP: the holder has not completed signing)")
    limit = data.get("single_quota") or data.get("single_limit")
    return Agreement(_s(data, "external_agreement_no"), _s(data, "agreement_no"), AGREEMENT_STATES[status],  # type: ignore[arg-type]
                     yuan_to_fen(limit) if isinstance(limit, str) and limit else 0)


_TRADE_STATUS = {"TRADE_SUCCESS": "succeeded", "TRADE_FINISHED": "succeeded", "WAIT_BUYER_PAY": "processing", "TRADE_CLOSED": "failed"}


def payment_from(data: Mapping[str, Any]) -> PaymentResult:
    """An alipay.trade.query answer: `trade_status` says it. A closed trade that had been paid (`send_pay_date`) was
    refunded in full; an unpaid closed one failed. (The query carries no refunded total for a partly refunded trade.)"""
    status = data.get("trade_status")
    if status not in _TRADE_STATUS:
        raise WireError(f"unknown trade_status {status!r}")
    mapped = _TRADE_STATUS[status]
    total = yuan_to_fen(_s(data, "total_amount"))
    refunded = 0
    if status == "TRADE_CLOSED" and data.get("send_pay_date"):
        mapped, refunded = "succeeded", total
    paid_at = parse_plain_time(data["send_pay_date"]) if data.get("send_pay_date") and mapped == "succeeded" else None
    return PaymentResult(_s(data, "out_trade_no"), data.get("trade_no") or None, mapped, total, refunded,
                         status if mapped == "failed" else None, paid_at)


def pay_answer_from(data: Mapping[str, Any]) -> PaymentResult:
    """An alipay.trade.pay answer: no trade_status — its code says it (10000 paid at `gmt_payment`, 10003 in process)."""
    if data.get("code") == PROCESSING:
        return PaymentResult(_s(data, "out_trade_no"), data.get("trade_no") or None, "processing", yuan_to_fen(_s(data, "total_amount")))
    return PaymentResult(_s(data, "out_trade_no"), _s(data, "trade_no"), "succeeded", yuan_to_fen(_s(data, "total_amount")), 0, None,
                         parse_plain_time(_s(data, "gmt_payment")))


def refund_id(trade_no: str, out_request_no: str) -> str:
    """Alipay gives a refund no id of its own: it is the trade's refund request `out_request_no` (yibao's name for it)."""
    return f"{trade_no}/{out_request_no}"


def refund_from(data: Mapping[str, Any], req: RefundRequest) -> RefundResult:
    """An alipay.trade.refund answer: `fund_change=Y` refunded now; otherwise (a repeat, or not yet) processing — query."""
    if data.get("out_trade_no") not in (None, req.out_trade_no):
        raise WireError("the answer is about another order")
    _s(data, "refund_fee")  # the trade's total refunded: present on every successful answer
    status = "succeeded" if data.get("fund_change") == "Y" else "processing"
    return RefundResult(req.out_trade_no, req.out_refund_no, refund_id(_s(data, "trade_no"), req.out_refund_no), status,  # type: ignore[arg-type]
                        req.amount_fen)


def refund_query_from(data: Mapping[str, Any], out_trade_no: str, out_refund_no: str) -> RefundResult:
    """An alipay.trade.fastpay.refund.query answer. Only `refund_status=REFUND_SUCCESS` means refunded; without it the
    refund was not received or failed: nothing was given back, and the same out_request_no may be sent again."""
    if data.get("refund_status") != "REFUND_SUCCESS":
        raise WireError("not refunded")  # the caller turns this into NotFoundAtChannel
    if data.get("out_request_no") not in (None, out_refund_no):
        raise WireError("the answer is about another refund")
    return RefundResult(out_trade_no, out_refund_no, refund_id(_s(data, "trade_no"), out_refund_no), "succeeded",
                        yuan_to_fen(_s(data, "refund_amount")))


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
            # A refund: `refund_fee` is the trade's total refunded so far; `send_back_fee` (optional) this refund's amount.
            yuan_to_fen(params["refund_fee"])
            this = yuan_to_fen(params["send_back_fee"]) if params.get("send_back_fee") else None
            return Notification(cfg.name, "refund", notify_id, "succeeded", out_trade_no=params["out_trade_no"],
                                out_refund_no=params["out_biz_no"], trade_no=params.get("trade_no"), amount_fen=this, data=data)
        if kind == "trade_status_sync":
            status = _TRADE_STATUS[params["trade_status"]]
            paid_at = None
            if status == "succeeded":
                paid_at = parse_plain_time(params["gmt_payment"])  # a paid trade says when; a notification without it is not Alipay's
            return Notification(cfg.name, "payment", notify_id, status, out_trade_no=params["out_trade_no"], trade_no=params.get("trade_no"),
                                amount_fen=yuan_to_fen(params["total_amount"]), data=data, event_at=paid_at)
        if kind in ("dut_user_sign", "dut_user_unsign"):
            state = {"NORMAL": "active", "UNSIGN": "terminated", "STOP": "terminated"}[params["status"]]
            return Notification(cfg.name, "agreement", notify_id, state,
                                data={**data, "subject": params["external_agreement_no"]})
    except (KeyError, ValueError) as exc:
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None
    raise bad_signature(cfg.name, f"notification of unknown type {params.get('notify_type')!r}")


def ack(accepted: bool) -> Ack:
    return Ack(200, b"success" if accepted else b"fail", "text/plain")


# ---- statements --------------------------------------------------------------------------------

# The trade bill's detail columns (业务明细), in Alipay's order; the summary file's (业务明细(汇总)) after it.
DETAIL_HEADER = ["支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员", "终端号",
                 "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）",
                 "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）", "分润（元）", "备注"]
SUMMARY_HEADER = ["门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）", "支付宝优惠（元）",
                  "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）", "实收净额（元）"]
_COL = {name: i for i, name in enumerate(DETAIL_HEADER)}


def _signed_yuan(text: str) -> int:
    return -yuan_to_fen(text[1:]) if text.startswith("-") else yuan_to_fen(text)


def _csv_rows(text: str) -> list[list[str]]:
    """The CSV block between the `#` comment lines; cells stripped (Alipay pads them with tabs)."""
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO("\n".join(body)))]


def parse_detail(text: str) -> list[StatementRow]:
    cells = _csv_rows(text)
    if not cells or cells[0] != DETAIL_HEADER:
        raise WireError("the detail lacks its header")
    rows: list[StatementRow] = []
    for c in cells[1:]:
        if len(c) != len(DETAIL_HEADER):
            raise WireError(f"a row has {len(c)} fields")
        amount = _signed_yuan(c[_COL["商家实收（元）"]])
        when = parse_plain_time(c[_COL["完成时间"]])
        kind = c[_COL["业务类型"]]
        if kind == "交易" and amount > 0:
            rows.append(StatementRow("trade", c[1], c[0], amount, when))
        elif kind == "退款" and amount < 0:
            request_no = c[_COL["退款批次号/请求号"]]
            rows.append(StatementRow("refund", c[1], c[0], -amount, when, out_refund_no=request_no, refund_id=refund_id(c[0], request_no)))
        else:
            raise WireError(f"a row of unknown kind {kind!r} or sign")
    return rows


def parse_summary(text: str) -> tuple[int, int, int]:
    """(trades, refunds, net received in fen) from the summary file's 合计 line."""
    cells = _csv_rows(text)
    if not cells or cells[0] != SUMMARY_HEADER:
        raise WireError("the summary lacks its header")
    total = [c for c in cells[1:] if c and c[0] == "合计"]
    if len(total) != 1 or len(total[0]) != len(SUMMARY_HEADER):
        raise WireError("the summary lacks its 合计 line")
    t = total[0]
    return int(t[2]), int(t[3]), _signed_yuan(t[5])


def parse_statement(name: str, content: bytes, day: date) -> Statement:
    """The bill as downloaded: a zip of GBK CSVs — `…_业务明细.csv` and `…_业务明细(汇总).csv`. The summary must agree with the rows."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            names = zf.namelist()
            detail = [n for n in names if n.endswith("_业务明细.csv")]
            summary = [n for n in names if n.endswith("_业务明细(汇总).csv")]
            if len(detail) != 1 or len(summary) != 1:
                raise WireError(f"the zip holds {names}")
            if f"_{day:%Y%m%d}_" not in detail[0]:
                raise WireError(f"the file {detail[0]} is not of {day}")
            rows = parse_detail(zf.read(detail[0]).decode("gbk"))
            trades, refunds, net = parse_summary(zf.read(summary[0]).decode("gbk"))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, IndexError, KeyError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    trade_total = sum(r.amount_fen for r in rows if r.kind == "trade")
    refund_total = sum(r.amount_fen for r in rows if r.kind == "refund")
    if net != trade_total - refund_total:
        raise StatementError(name, "statement_totals_mismatch", "对账单汇总与明细不符",
                             f"{name}: the summary's net {net} disagrees with the rows' {trade_total - refund_total}")
    return check_statement_totals(Statement(name, day, tuple(rows), trades, trade_total, refunds, refund_total))


# ---- medical-insurance orders (医保移动支付: alipay.commerce.medical.trade.*) ------------------------------------------
#
# The fee parts as Alipay's SDK describes them (docs/channels.md "Medical-insurance orders through Alipay"):
# `gov_amount` 医保基金支付金额 (the fund), `account_amount` 医保个账支付金额 (the personal account), `other_amount`
# 医保其他支付金额, `real_amount` 用户自费实付金额 (the self-pay part), `total_amount` 订单总金额 — yuan strings. The platform
# names them as WeChat does (med_ins_gov_fee, med_ins_self_fee, med_ins_other_fee, med_ins_cash_fee).
MED_METHODS = ("alipay.commerce.medical.trade.createandpay", "alipay.commerce.medical.trade.query",
               "alipay.commerce.medical.trade.refund", "alipay.commerce.medical.trade.refund.query",
               "alipay.commerce.medical.trade.cancel")
MED_QUERY = "alipay.commerce.medical.trade.query"
# [guess] The state values: the SDK names the fields (trade_status 交易总状态, medical_pay_status 医保支付状态,
# own_pay_status 自费交易状态) but not their values. trade_status takes alipay.trade.query's; the two parts these four.
PART_STATES = ("WAIT_PAY", "PAY_SUCCESS", "PAY_FAIL", "REFUND_SUCCESS")
TRADE_STATES = ("WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED")
OWN_TO_SELF = {"WAIT_PAY": "SELF_PAY_CREATED", "PAY_SUCCESS": "SELF_PAY_SUCCESS", "PAY_FAIL": "SELF_PAY_FAIL",
               "REFUND_SUCCESS": "SELF_PAY_REFUND"}
MEDICAL_TO_MED_INS = {"WAIT_PAY": "MED_INS_PAY_CREATED", "PAY_SUCCESS": "MED_INS_PAY_SUCCESS", "PAY_FAIL": "MED_INS_PAY_FAIL",
                      "REFUND_SUCCESS": "MED_INS_PAY_REFUND"}
MED_INS_TO_MEDICAL = {v: k for k, v in MEDICAL_TO_MED_INS.items()}
# The platform's names (WeChat's) → Alipay's, in the wallet's requests and the platform's answers.
WALLET_NAMES = {"med_inst_no": "org_no", "mix_trade_no": "trade_no", "med_ins_gov_fee": "gov_amount", "med_ins_self_fee": "account_amount",
                "med_ins_other_fee": "other_amount", "med_ins_cash_fee": "real_amount", "self_pay_status": "own_pay_status",
                "med_ins_pay_status": "medical_pay_status"}
_FROM_WIRE = {v: k for k, v in WALLET_NAMES.items()}
AMOUNTS = ("med_ins_gov_fee", "med_ins_self_fee", "med_ins_other_fee", "med_ins_cash_fee")
WALLET_WINDOW_S = 300  # the wallet request's notify_time: five minutes either way, as WeChat's timestamp
_COMMON = ("app_id", "notify_id", "notify_time", "notify_type", "charset", "version", "sign", "sign_type")


def wallet_notify_type(action: str) -> str:
    """The `notify_type` a wallet request carries: it names the call, so a request signed for one is no other [guess:
    the channel Alipay → the insurance platform is not public; this is Alipay's notification turned to requests]."""
    return "medical_insurance_" + action.replace("-", "_")


def open_wallet_request(cfg: AlipayConfig, action: str, body: bytes, now: datetime) -> WalletRequest:
    """A request Alipay sends the insurance platform (for the holder, or about its medical trade): a form post signed as
    its notifications are — RSA2 with Alipay's key over the sorted `k=v&…` without `sign`/`sign_type` — our `app_id`,
    `notify_type` naming ``action``, `notify_time` within five minutes, `notify_id` its nonce. BadSignature otherwise.
    The fields are turned into the platform's names: amounts yuan → fen, `own_pay_status` into WeChat's vocabulary (no
    `own_pay_status` on a result: the trade has no self-pay part, NO_SELF_PAY)."""
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise bad_signature(cfg.name, "wallet request (not a form)") from None
    if (cfg.alipay_key is None or params.get("sign_type") != "RSA2" or params.get("app_id") != cfg.app_id
            or not rsa_verify(cfg.alipay_key, canonical_kv(params, exclude=("sign", "sign_type")).encode(), params.get("sign"))):
        raise bad_signature(cfg.name, f"wallet request {action}")
    if params.get("notify_type") != wallet_notify_type(action):
        raise bad_signature(cfg.name, f"wallet request signed for {params.get('notify_type')!r}, sent to {action}")
    try:
        sent = parse_plain_time(params.get("notify_time", ""))
    except WireError:
        raise bad_signature(cfg.name, "wallet request (no notify_time)") from None
    if abs((now - sent).total_seconds()) > WALLET_WINDOW_S:
        raise bad_signature(cfg.name, "wallet request (notify_time outside five minutes)")
    values: dict[str, object] = {}
    for key, value in params.items():
        if key in _COMMON:
            continue
        name = _FROM_WIRE.get(key, key)
        if name in AMOUNTS:
            try:
                values[name] = yuan_to_fen(value)
            except WireError:
                values[name] = value  # refused by the platform, naming the field
        elif name == "self_pay_status":
            values[name] = OWN_TO_SELF.get(value, value)
        else:
            values[name] = value
    if action == "check":
        values["mix_pay_type"] = None  # Alipay's order names no mix type: its order_type (INSURANCE_PAY) the sandbox checks
    if action == "result" and "self_pay_status" not in values:
        values["self_pay_status"] = "NO_SELF_PAY"
    return WalletRequest(params.get("notify_id", ""), values, WALLET_NAMES, "notify_id")


def wallet_answer(payload: Mapping[str, object]) -> dict[str, object]:
    """The platform's answer to Alipay: Alipay's names, yuan, `medical_pay_status` in its [guessed] vocabulary."""
    out: dict[str, object] = {}
    for key, value in payload.items():
        if key in AMOUNTS and isinstance(value, int):
            value = fen_to_yuan(value)
        elif key == "med_ins_pay_status" and isinstance(value, str):
            value = MED_INS_TO_MEDICAL.get(value, value)
        out[WALLET_NAMES.get(key, key)] = value
    return out


def _part(data: Mapping[str, Any], key: str, mapping: Mapping[str, str], absent: str) -> str:
    value = data.get(key)
    if value in (None, ""):
        return absent
    if value not in mapping:
        raise WireError(f"unknown {key} {value!r}")
    return mapping[value]  # type: ignore[index]


def med_ins_order_from(data: Mapping[str, Any]) -> MedInsOrder:
    """An alipay.commerce.medical.trade.query answer as the platform reads a mixed order. No `own_pay_status`: the trade
    has no self-pay part (NO_SELF_PAY); no `medical_pay_status`: no insurance part. A closed trade that had been paid
    (`gmt_own_paid` or `gmt_medical_paid`) was refunded (MIX_PAY_REFUND); an unpaid closed one failed."""
    status = data.get("trade_status")
    if status not in TRADE_STATES:
        raise WireError(f"unknown trade_status {status!r}")
    mix = {"WAIT_BUYER_PAY": "MIX_PAY_CREATED", "TRADE_SUCCESS": "MIX_PAY_SUCCESS"}.get(status)  # type: ignore[arg-type]
    if mix is None:
        mix = "MIX_PAY_REFUND" if data.get("gmt_own_paid") or data.get("gmt_medical_paid") else "MIX_PAY_FAIL"
    real = data.get("real_amount")
    return MedInsOrder(_s(data, "trade_no"), _s(data, "pay_order_id"), mix, _part(data, "own_pay_status", OWN_TO_SELF, "NO_SELF_PAY"),
                       _part(data, "medical_pay_status", MEDICAL_TO_MED_INS, "NO_MED_INS_PAY"),
                       yuan_to_fen(real) if isinstance(real, str) and real else 0)
