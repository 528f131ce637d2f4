"""UnionPay-style connector: signed form posts over async HTTP. The wire format is in unionpay_transformers."""

from __future__ import annotations

import zlib
from datetime import date
from typing import Mapping
from urllib.parse import urlencode

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
    declined,
    unknown,
)
from yibao.channels.connector import Connector
from yibao.channels.http import send
from yibao.channels.unionpay import transformers as tx

UnionPayConfig = tx.UnionPayConfig


class UnionPayChannel(Connector):
    """One UnionPay-style institution (the SANDBOX unionpay speaks the same protocol)."""

    config: UnionPayConfig

    def __repr__(self) -> str:
        return f"UnionPayChannel({self.config.base_url!r}, merId={self.config.mer_id!r})"

    async def _call(self, path: str, params: dict[str, str], what: str, *, code_field: str = "respCode") -> dict[str, str]:
        resp = await send(self.name, self.config.base_url, "POST", path, urlencode(params).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}, self.config.timeout, self._transport)
        answer = tx.open_answer(self.config, resp.status_code, resp.content, what)
        tx.check_resp(self.config, answer, what, code_field)
        return answer

    async def sign_agreement(self, req: AgreementRequest) -> Agreement:
        answer = await self._call(tx.BACK_PATH, tx.agreement_params(self.config, req, self._clock()), "the agreement")
        return self._parse(tx.agreement_from, answer)

    async def query_agreement(self, out_agreement_no: str) -> Agreement:
        params = tx.agreement_ref_params(self.config, "78", out_agreement_no, self._clock())
        return self._parse(tx.agreement_from, await self._call(tx.BACK_PATH, params, f"agreement {out_agreement_no}"))

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement:
        params = tx.agreement_ref_params(self.config, "74", out_agreement_no, self._clock())
        return self._parse(tx.agreement_from, await self._call(tx.BACK_PATH, params, f"agreement {out_agreement_no}"))

    async def pay(self, req: PaymentRequest) -> PaymentResult:
        """Consume, then — as UnionPay's back-end answer only says "accepted" — the query gives the outcome."""
        await self._call(tx.BACK_PATH, tx.pay_params(self.config, req, self._clock()), "the payment")
        result: PaymentResult = await self.query(req.out_trade_no)
        if result.status == "failed":
            raise declined(self.name, result.error_code or "failed", "the payment failed")
        return result

    async def query(self, out_trade_no: str) -> PaymentResult:
        answer = await self._call(tx.QUERY_PATH, tx.query_params(self.config, out_trade_no, self._clock()), f"order {out_trade_no}")
        return self._parse(tx.payment_from, answer)

    async def refund(self, req: RefundRequest) -> RefundResult:
        """A refund names the original trade by its queryId, so the trade is queried first."""
        trade = await self.query(req.out_trade_no)
        if trade.trade_no is None or trade.status != "succeeded":
            raise declined(self.name, "TRADE_NOT_PAID", "the order is not paid")
        answer = await self._call(tx.BACK_PATH, tx.refund_params(self.config, req, trade.trade_no, self._clock()), "the refund")
        result: RefundResult = self._parse(tx.refund_from, {**answer, "origRespCode": answer.get("respCode", "")}, req.out_trade_no)
        if result.status == "failed":
            raise declined(self.name, result.error_code or "failed", "the refund failed")
        return result

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        answer = await self._call(tx.QUERY_PATH, tx.query_params(self.config, out_refund_no, self._clock()), f"refund {out_refund_no}")
        if answer.get("origOrderId") != out_trade_no:
            raise unknown(self.name, "mismatched_answer", "the refund belongs to another order")
        return self._parse(tx.refund_from, answer, out_trade_no)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return tx.parse_notification(self.config, body)

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    async def statement(self, day: date) -> Statement:
        answer = await self._call(tx.FILE_PATH, tx.file_params(self.config, day, self._clock()), f"the statement of {day}")
        try:
            text = tx.unpack_file(answer["fileContent"])
        except (KeyError, ValueError, zlib.error) as exc:  # binascii.Error is a ValueError
            raise StatementError(self.name, "statement_unreadable", "对账单文件无法解压", f"{self.name}: the file does not unpack ({exc})") from None
        return tx.parse_statement(self.name, text, day)
