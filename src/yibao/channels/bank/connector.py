"""A credit-line bank's connector (信用支付): the Channel flows plus the credit line's own.

The Channel flows work as for any institution but signing: the holder accepts the terms in the app and
`enrol` enrols them with that consent (the bank scores them and grants a line; `start_signing` refuses), `pay` has the bank pay the hospital from the line. For the platform's
two-phase settlement there are also `reserve` → `capture` | `release`; and for the holder,
`credit_line`, `bills` and `repay` (a family member may repay: the payer token is theirs).
"""

from __future__ import annotations

import json
import secrets
from datetime import date
from typing import Any, Mapping
from urllib.parse import quote

from yibao.channels.bank import transformers as tx
from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    SigningStart,
    Statement,
    declined,
    unknown,
)
from yibao.channels.connector import Connector
from yibao.channels.http import send

BankConfig = tx.BankConfig
CreditBill = tx.CreditBill
CreditConsent = tx.CreditConsent
CreditLine = tx.CreditLine
Payout = tx.Payout


class BankChannel(Connector):
    config: BankConfig

    def __repr__(self) -> str:
        return f"BankChannel({self.config.base_url!r}, merchant={self.config.merchant_id!r})"

    async def _call(self, method: str, target: str, payload: Mapping[str, Any] | None = None, *, what: str) -> dict[str, Any]:
        body = tx.dumps(payload) if payload is not None else b""
        ts, nonce = str(int(self._clock().timestamp())), secrets.token_hex(16)
        headers = tx.request_headers(self.config, method, target, body, ts, nonce)
        resp = await send(self.name, self.config.base_url, method, target, body, headers, self.config.timeout, self._transport)
        tx.verify_answer(self.config, resp.headers, resp.content, nonce, self._clock(), f"answer to {method} {target} (HTTP {resp.status_code})")
        try:
            data = json.loads(resp.content)
        except ValueError:
            raise unknown(self.name, "garbled_answer", "the answer is not JSON") from None
        if not resp.is_success:
            raise tx.error_from(self.name, resp.status_code, data, what)
        return data

    # -- agreement: enrolment in a credit line --
    async def enrol(self, req: AgreementRequest, consent: CreditConsent) -> Agreement:
        data = await self._call("POST", "/credit/enrolments", tx.enrol_body(req, consent), what="the enrolment")
        return self._parse(tx.agreement_from, data)

    async def start_signing(self, req: AgreementRequest) -> SigningStart:
        """A credit line has no institution's signing page: the holder accepts the terms in the app and the platform
        enrols them with that consent (`enrol`, services/credit/enrolment.py)."""
        raise declined(self.name, "ENROL_WITH_CONSENT", "信用支付在应用内确认条款后开通（enrol），无机构签约页 "
                                                        "(a credit line is enrolled with the holder's consent, not signed on a page)")

    async def query_agreement(self, out_agreement_no: str) -> Agreement:
        return self._parse(tx.agreement_from, await self._call("GET", f"/credit/enrolments/{quote(out_agreement_no)}",
                                                               what=f"agreement {out_agreement_no}"))

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement:
        """Close the line to new payments; bills already owed stay due."""
        return self._parse(tx.agreement_from, await self._call("POST", f"/credit/enrolments/{quote(out_agreement_no)}/close", {},
                                                               what=f"agreement {out_agreement_no}"))

    async def credit_line(self, out_agreement_no: str) -> CreditLine:
        return self._parse(tx.line_from, await self._call("GET", f"/credit/enrolments/{quote(out_agreement_no)}/line",
                                                          what=f"the line of {out_agreement_no}"))

    # -- payments --
    def _payment(self, data: Mapping[str, Any]) -> PaymentResult:
        result: PaymentResult = self._parse(tx.payment_from, data)
        if result.status == "failed":
            raise declined(self.name, result.error_code or "FAILED", "the payment failed")
        return result

    async def pay(self, req: PaymentRequest) -> PaymentResult:
        """Reserve on the line and pay the hospital from it, in one call."""
        return self._payment(await self._call("POST", "/credit/payments", tx.payment_body(req), what="the payment"))

    async def reserve(self, req: PaymentRequest) -> PaymentResult:
        """Hold the amount on the line (status processing) until `capture` or `release`."""
        return self._payment(await self._call("POST", "/credit/reservations", tx.payment_body(req), what="the reservation"))

    async def capture(self, out_trade_no: str) -> PaymentResult:
        return self._payment(await self._call("POST", f"/credit/reservations/{quote(out_trade_no)}/capture", {},
                                              what=f"reservation {out_trade_no}"))

    async def release(self, out_trade_no: str) -> PaymentResult:
        data = await self._call("POST", f"/credit/reservations/{quote(out_trade_no)}/release", {}, what=f"reservation {out_trade_no}")
        return self._parse(tx.payment_from, data)

    async def query(self, out_trade_no: str) -> PaymentResult:
        return self._parse(tx.payment_from, await self._call("GET", f"/credit/payments/{quote(out_trade_no)}", what=f"order {out_trade_no}"))

    async def refund(self, req: RefundRequest) -> RefundResult:
        result: RefundResult = self._parse(tx.refund_from, await self._call("POST", "/credit/refunds", tx.refund_body(req), what="the refund"))
        if result.status == "failed":
            raise declined(self.name, result.error_code or "FAILED", "the refund failed")
        return result

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        data = await self._call("GET", f"/credit/refunds/{quote(out_refund_no)}", what=f"refund {out_refund_no}")
        return self._parse(tx.refund_from, data)

    # -- bills and repayment --
    async def bills(self, out_agreement_no: str) -> tuple[CreditBill, ...]:
        return (await self.credit_line(out_agreement_no)).bills

    async def repay(self, bill_no: str, out_repayment_no: str, amount_fen: int, payer_token: str) -> CreditBill:
        data = await self._call("POST", f"/credit/bills/{quote(bill_no)}/repayments", tx.repay_body(out_repayment_no, amount_fen, payer_token),
                                what=f"bill {bill_no}")
        return self._parse(tx.bill_from, data)

    # -- payment instructions: the agency's bank pays institutions at monthly clearing (services/clearing/) --
    async def payout(self, out_instruction_no: str, *, payee_account: str, payee_name: str, amount_fen: int, purpose: str) -> Payout:
        """Instruct the bank to pay; the same instruction number is booked once (a resend answers the first booking).
        The answer is `accepted` (or `failed`, e.g. INVALID_PAYEE_ACCOUNT); `query_payout` reads the confirmation."""
        data = await self._call("POST", "/payouts", tx.payout_body(out_instruction_no, payee_account, payee_name, amount_fen, purpose),
                                what=f"instruction {out_instruction_no}")
        return self._payout_about(self._parse(tx.payout_from, data), out_instruction_no)

    async def query_payout(self, out_instruction_no: str) -> Payout:
        """The instruction at the bank: NotFoundAtChannel when it never arrived (safe to send)."""
        return self._payout_about(self._parse(tx.payout_from, await self._call("GET", f"/payouts/{quote(out_instruction_no)}",
                                                                               what=f"instruction {out_instruction_no}")), out_instruction_no)

    def _payout_about(self, result: Payout, out_instruction_no: str) -> Payout:
        if result.out_instruction_no != out_instruction_no:  # a signed answer about another instruction says nothing of ours
            raise unknown(self.name, "answer_about_another_instruction", f"the answer is about {result.out_instruction_no}")
        return result

    # -- notifications and statements --
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return tx.parse_notification(self.config, headers, body, self._clock())

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    async def statement(self, day: date) -> Statement:
        data = await self._call("GET", f"/statements/{day.isoformat()}", what=f"the statement of {day}")
        return tx.parse_statement(self.name, str(data.get("content", "")), day)
