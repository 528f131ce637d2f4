"""Alipay-style connector: RSA2-signed form posts to one gateway over async HTTP. The wire format is in alipay_transformers."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping
from urllib.parse import urlencode

from yibao.channels.alipay import transformers as tx
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

AlipayConfig = tx.AlipayConfig


class AlipayChannel(Connector):
    """One Alipay-style institution (the SANDBOX alipay speaks the same protocol)."""

    config: AlipayConfig

    def __repr__(self) -> str:
        return f"AlipayChannel({self.config.base_url!r}, app_id={self.config.app_id!r})"

    async def _call(self, method: str, biz: Mapping[str, Any], what: str, *, notify: bool = False) -> dict[str, Any]:
        params = tx.request_params(self.config, method, biz, self._clock(), notify=notify)
        resp = await send(self.name, self.config.base_url, "POST", tx.GATEWAY, urlencode(params).encode(),
                          {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}, self.config.timeout, self._transport)
        if resp.status_code >= 500:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "server error")
        data = tx.open_answer(self.config, method, resp.content)
        tx.check_code(self.config, data, what)
        return data

    async def sign_agreement(self, req: AgreementRequest) -> Agreement:
        return self._parse(tx.agreement_from, await self._call("alipay.user.agreement.sign", tx.agreement_biz(req), "the agreement"))

    async def query_agreement(self, out_agreement_no: str) -> Agreement:
        data = await self._call("alipay.user.agreement.query", {"external_agreement_no": out_agreement_no}, f"agreement {out_agreement_no}")
        return self._parse(tx.agreement_from, data)

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement:
        data = await self._call("alipay.user.agreement.unsign", {"external_agreement_no": out_agreement_no}, f"agreement {out_agreement_no}")
        return self._parse(tx.agreement_from, data)

    async def pay(self, req: PaymentRequest) -> PaymentResult:
        data = await self._call("alipay.trade.pay", tx.pay_biz(req), "the payment", notify=True)
        return self._parse(tx.payment_from, data)

    async def query(self, out_trade_no: str) -> PaymentResult:
        return self._parse(tx.payment_from, await self._call("alipay.trade.query", {"out_trade_no": out_trade_no}, f"order {out_trade_no}"))

    async def refund(self, req: RefundRequest) -> RefundResult:
        data = await self._call("alipay.trade.refund", tx.refund_biz(req), "the refund")
        result: RefundResult = self._parse(tx.refund_from, data, req.out_trade_no, req.out_refund_no)
        if result.status == "failed":
            raise declined(self.name, result.error_code or "REFUND_FAIL", "the refund failed")
        return result

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        data = await self._call("alipay.trade.fastpay.refund.query", {"out_trade_no": out_trade_no, "out_request_no": out_refund_no},
                                f"refund {out_refund_no}")
        return self._parse(tx.refund_from, data, out_trade_no, out_refund_no)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return tx.parse_notification(self.config, body)

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    async def statement(self, day: date) -> Statement:
        data = await self._call("alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day.isoformat()},
                                f"the statement of {day}")
        url = str(data.get("bill_download_url") or "")
        base = self.config.base_url.rstrip("/")
        if not url.startswith(base + "/"):
            raise StatementError(self.name, "statement_url_foreign", "对账单下载地址不属于该支付机构", f"{self.name}: the download URL is not the institution's")
        # The URL came in a signed answer and is good once, for seconds: it is the file's credential.
        resp = await send(self.name, base, "GET", url[len(base):], b"", {}, self.config.timeout, self._transport)
        if not resp.is_success:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "the statement download failed")
        return tx.parse_statement(self.name, resp.content.decode("utf-8"), day)
