"""A credit-line bank's wire format (信用支付): pure transformers, no I/O.

Our own scheme (no bank publishes one we could copy): JSON bodies, amounts as yuan strings, and
HMAC-SHA256 under a secret shared by the bank and the platform, in hex:
- request:  `X-Bank-Signature = HMAC(secret, "request\\n" METHOD "\\n" PATH?QUERY "\\n" TS "\\n" NONCE "\\n" hex(SHA-256(body)))`
- answer:   `HMAC(secret, "answer\\n" TS "\\n" NONCE "\\n" REQUEST_NONCE "\\n" hex(SHA-256(body)))` — bound to the request it answers
- notify:   `HMAC(secret, "notify\\n" TS "\\n" NONCE "\\n" hex(SHA-256(body)))`
The direction label stops a signed message of one kind being replayed as another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Mapping

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
    check_holder_token,
    check_statement_totals,
    declined,
    not_found_at,
    unknown,
)
from yibao.channels.crypto import hmac_equal, hmac_sha256_hex
from yibao.channels.wire import WireError, fen_to_yuan, parse_rfc3339, rfc3339, yuan_to_fen

NAME = "bank"
MAX_SKEW_S = 300


@dataclass(frozen=True)
class BankConfig:
    base_url: str
    merchant_id: str
    secret: bytes = field(repr=False)
    notify_url: str | None = None
    timeout: float = 5.0
    consent_version: str = "credit-terms-v1"  # the bank's terms the holder accepted in the app before enrolment
    name: str = NAME


@dataclass(frozen=True)
class CreditConsent:
    """The holder's acceptance of the bank's credit terms, as the platform recorded it."""

    version: str
    accepted_at: datetime


@dataclass(frozen=True)
class CreditBill:
    bill_no: str
    out_trade_no: str
    amount_fen: int
    refunded_fen: int
    repaid_fen: int
    outstanding_fen: int
    due_date: date
    status: Literal["open", "repaid", "overdue"]


@dataclass(frozen=True)
class CreditLine:
    out_agreement_no: str
    agreement_no: str
    status: Literal["active", "suspended", "closed"]  # suspended: a bill is overdue
    score: int
    limit_fen: int  # the granted credit line
    available_fen: int
    used_fen: int  # reserved plus owed
    single_limit_fen: int  # the password-free limit per payment
    overdue: bool
    bills: tuple[CreditBill, ...] = ()


def dumps(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(secret: bytes, method: str, target: str, ts: str, nonce: str, body: bytes) -> str:
    return hmac_sha256_hex(secret, f"request\n{method}\n{target}\n{ts}\n{nonce}\n{body_digest(body)}".encode())


def answer_signature(secret: bytes, ts: str, nonce: str, request_nonce: str, body: bytes) -> str:
    return hmac_sha256_hex(secret, f"answer\n{ts}\n{nonce}\n{request_nonce}\n{body_digest(body)}".encode())


def notify_signature(secret: bytes, ts: str, nonce: str, body: bytes) -> str:
    return hmac_sha256_hex(secret, f"notify\n{ts}\n{nonce}\n{body_digest(body)}".encode())


def request_headers(cfg: BankConfig, method: str, target: str, body: bytes, ts: str, nonce: str) -> dict[str, str]:
    return {"X-Bank-Merchant": cfg.merchant_id, "X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce,
            "X-Bank-Signature": request_signature(cfg.secret, method, target, ts, nonce, body), "Content-Type": "application/json"}


def _fresh(ts: str | None, now: datetime) -> bool:
    return bool(ts) and ts.isdigit() and abs(int(now.timestamp()) - int(ts)) <= MAX_SKEW_S  # type: ignore[union-attr]


def verify_answer(cfg: BankConfig, headers: Mapping[str, str], body: bytes, request_nonce: str, now: datetime, what: str) -> None:
    h = {k.lower(): v for k, v in headers.items()}
    ts, nonce = h.get("x-bank-timestamp"), h.get("x-bank-nonce")
    if not (ts and nonce and _fresh(ts, now)) or not hmac_equal(h.get("x-bank-signature"),
                                                               answer_signature(cfg.secret, ts, nonce, request_nonce, body)):
        raise bad_signature(cfg.name, what)


# ---- requests ----------------------------------------------------------------------------------

def enrol_body(req: AgreementRequest, consent: CreditConsent) -> dict[str, Any]:
    return {"out_agreement_no": req.out_agreement_no, "holder_token": req.holder_token, "single_limit": fen_to_yuan(req.limit_fen),
            "consent": {"version": consent.version, "accepted_at": rfc3339(consent.accepted_at)}}


def payment_body(req: PaymentRequest) -> dict[str, Any]:
    return {"out_trade_no": req.out_trade_no, "agreement_no": req.agreement_no, "amount": fen_to_yuan(req.amount_fen),
            "description": req.description}


def refund_body(req: RefundRequest) -> dict[str, Any]:
    return {"out_trade_no": req.out_trade_no, "out_refund_no": req.out_refund_no, "amount": fen_to_yuan(req.amount_fen),
            "reason": req.reason}


def repay_body(out_repayment_no: str, amount_fen: int, payer_token: str) -> dict[str, Any]:
    check_holder_token(payer_token)
    return {"out_repayment_no": out_repayment_no, "amount": fen_to_yuan(amount_fen), "payer_token": payer_token}


# ---- answers -----------------------------------------------------------------------------------

def error_from(name: str, status: int, data: Mapping[str, Any], what: str) -> Exception:
    code, message = str(data.get("code") or f"HTTP_{status}"), str(data.get("message") or "")
    if status >= 500:
        return unknown(name, code, message or f"HTTP {status}")
    if status == 404:
        return not_found_at(name, what)
    if code == "OUT_TRADE_NO_USED":  # our number is on its books with another request: an operator's matter, never a decline
        return unknown(name, code, message or "the order number was used with other parameters")
    return declined(name, code, message)


_AGREEMENT = {"ACTIVE": "active", "SUSPENDED": "active", "CLOSED": "terminated"}


@dataclass(frozen=True)
class Payout:
    """A payment instruction at a bank (monthly clearing, benefits onto the card): accepted, then confirmed (the money
    left), or failed at once, or returned after acceptance (the payee's account could not take it: `error_code` says why)."""

    out_instruction_no: str
    bank_ref: str | None
    status: Literal["accepted", "confirmed", "failed", "returned"]
    amount_fen: int
    error_code: str | None = None
    confirmed_at: datetime | None = None


_PAYOUT = {"ACCEPTED": "accepted", "CONFIRMED": "confirmed", "FAILED": "failed", "RETURNED": "returned"}


def payout_body(out_instruction_no: str, payee_account: str, payee_name: str, amount_fen: int, purpose: str) -> dict[str, Any]:
    return {"out_instruction_no": out_instruction_no, "payee_account": payee_account, "payee_name": payee_name,
            "amount": fen_to_yuan(amount_fen), "purpose": purpose}


def payout_from(data: Mapping[str, Any]) -> Payout:
    status = _PAYOUT.get(data["status"])
    if status is None:
        raise WireError(f"unknown payout status {data['status']!r}")
    at = data.get("confirmed_at")
    return Payout(data["out_instruction_no"], data.get("bank_ref"), status, yuan_to_fen(data["amount"]), data.get("error_code"),  # type: ignore[arg-type]
                  parse_rfc3339(at) if at else None)


def agreement_from(data: Mapping[str, Any]) -> Agreement:
    return Agreement(data["out_agreement_no"], data["agreement_no"], _AGREEMENT[data["status"]], yuan_to_fen(data["single_limit"]))  # type: ignore[arg-type]


def bill_from(data: Mapping[str, Any]) -> CreditBill:
    status = data["status"]
    if status not in ("open", "repaid", "overdue"):
        raise WireError(f"unknown bill status {status!r}")
    return CreditBill(data["bill_no"], data["out_trade_no"], yuan_to_fen(data["amount"]), yuan_to_fen(data["refunded"]),
                      yuan_to_fen(data["repaid"]), yuan_to_fen(data["outstanding"]), date.fromisoformat(data["due_date"]), status)


def line_from(data: Mapping[str, Any]) -> CreditLine:
    status = {"ACTIVE": "active", "SUSPENDED": "suspended", "CLOSED": "closed"}[data["status"]]
    return CreditLine(data["out_agreement_no"], data["agreement_no"], status, int(data["score"]), yuan_to_fen(data["credit_limit"]),  # type: ignore[arg-type]
                      yuan_to_fen(data["available"]), yuan_to_fen(data["used"]), yuan_to_fen(data["single_limit"]), bool(data["overdue"]),
                      tuple(bill_from(b) for b in data.get("bills", [])))


_PAYMENT = {"PAID": "succeeded", "RESERVED": "processing", "FAILED": "failed", "RELEASED": "failed"}


def payment_from(data: Mapping[str, Any]) -> PaymentResult:
    status = _PAYMENT[data["status"]]
    return PaymentResult(data["out_trade_no"], data.get("bank_ref"), status, yuan_to_fen(data["amount"]),  # type: ignore[arg-type]
                         yuan_to_fen(data.get("refunded", "0.00")), data.get("error_code"),
                         parse_rfc3339(data["paid_at"]) if data.get("paid_at") else None)


def refund_from(data: Mapping[str, Any]) -> RefundResult:
    status = {"SUCCEEDED": "succeeded", "FAILED": "failed"}[data["status"]]
    return RefundResult(data["out_trade_no"], data["out_refund_no"], data.get("bank_ref"), status, yuan_to_fen(data["amount"]),  # type: ignore[arg-type]
                        data.get("error_code"))


# ---- notifications -----------------------------------------------------------------------------

def parse_notification(cfg: BankConfig, headers: Mapping[str, str], body: bytes, now: datetime) -> Notification:
    h = {k.lower(): v for k, v in headers.items()}
    ts, nonce = h.get("x-bank-timestamp"), h.get("x-bank-nonce")
    if (h.get("x-bank-merchant") != cfg.merchant_id or not (ts and nonce and _fresh(ts, now))
            or not hmac_equal(h.get("x-bank-signature"), notify_signature(cfg.secret, ts, nonce, body))):
        raise bad_signature(cfg.name, "notification")
    try:
        envelope = json.loads(body)
        event, data, event_id = envelope["event"], envelope["data"], envelope["event_id"]
        kind, _, status = event.partition(".")
        if kind == "payment":
            p = payment_from(data)
            return Notification(cfg.name, "payment", event_id, status, out_trade_no=p.out_trade_no, trade_no=p.trade_no,
                                amount_fen=p.amount_fen, data={"event": event}, event_at=p.paid_at)
        if kind == "refund":
            r = refund_from(data)
            return Notification(cfg.name, "refund", event_id, status, out_trade_no=r.out_trade_no, out_refund_no=r.out_refund_no,
                                trade_no=r.refund_id, amount_fen=r.amount_fen, data={"event": event})
        if kind == "agreement":
            return Notification(cfg.name, "agreement", event_id, status, data={"event": event, "subject": data["out_agreement_no"],
                                                                              "agreement_no": data["agreement_no"]})
        if kind == "bill":
            b = bill_from(data)
            return Notification(cfg.name, "credit", event_id, status, out_trade_no=b.out_trade_no, amount_fen=b.outstanding_fen,
                                data={"event": event, "subject": b.bill_no, "due_date": b.due_date.isoformat(),
                                      "agreement_no": str(data.get("agreement_no", ""))})
    except (KeyError, TypeError, ValueError) as exc:
        raise bad_signature(cfg.name, f"notification content ({type(exc).__name__})") from None
    raise bad_signature(cfg.name, f"notification of unknown event {event!r}")


def ack(accepted: bool) -> Ack:
    return Ack(200, dumps({"code": "OK"}), "application/json") if accepted else Ack(401, dumps({"code": "REFUSED"}), "application/json")


# ---- statements --------------------------------------------------------------------------------

HEADER = "kind,out_trade_no,bank_ref,out_refund_no,amount_yuan,at"


def parse_statement(name: str, text: str, day: date) -> Statement:
    """`# …` title, a header, `PAY`/`REFUND` rows (no free text, so no quoting), a `SUMMARY` line."""
    try:
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        if not lines or lines[0] != HEADER or not lines[-1].startswith("SUMMARY,"):
            raise WireError("the statement lacks its header or its SUMMARY line")
        rows: list[StatementRow] = []
        for ln in lines[1:-1]:
            kind, out_trade_no, ref, out_refund_no, amount, at = ln.split(",")
            if kind == "PAY":
                rows.append(StatementRow("trade", out_trade_no, ref, yuan_to_fen(amount), parse_rfc3339(at)))
            elif kind == "REFUND":
                rows.append(StatementRow("refund", out_trade_no, ref, yuan_to_fen(amount), parse_rfc3339(at), out_refund_no=out_refund_no,
                                         refund_id=ref))
            else:
                raise WireError(f"unknown row kind {kind!r}")
        _, tn, tsum, rn, rsum = lines[-1].split(",")
        st = Statement(name, day, tuple(rows), int(tn), yuan_to_fen(tsum), int(rn), yuan_to_fen(rsum))
    except (ValueError, IndexError) as exc:
        raise StatementError(name, "statement_unreadable", "对账单格式无法识别", f"{name}: unreadable statement ({exc})") from None
    return check_statement_totals(st)
