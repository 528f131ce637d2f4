"""Alipay OpenAPI (RSA2) connector: signed calls to one gateway over async HTTP. The wire format is in transformers."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping
from urllib.parse import urlsplit

from yibao.channels.alipay import transformers as tx
from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    Declined,
    MedInsOrder,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    SigningStart,
    Statement,
    WalletRequest,
    not_found_at,
    unknown,
)
from yibao.channels.connector import Connector
from yibao.channels.http import send

AlipayConfig = tx.AlipayConfig


class AlipayChannel(Connector):
    """One Alipay institution (the SANDBOX alipay speaks the same protocol)."""

    config: AlipayConfig

    def __repr__(self) -> str:
        return f"AlipayChannel({self.config.base_url!r}, app_id={self.config.app_id!r})"

    async def _call(self, method: str, biz: Mapping[str, Any], what: str, *, notify: bool = False) -> dict[str, Any]:
        params = tx.request_params(self.config, method, biz, self._clock(), notify=notify)
        query, body = tx.split_request(params)
        resp = await send(self.name, self.config.base_url, "POST", f"{tx.GATEWAY}?{query}", body,
                          {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}, self.config.timeout, self._transport)
        if resp.status_code >= 500:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "server error")
        data = tx.open_answer(self.config, method, resp.content)
        tx.check_code(self.config, data, what)
        return data

    async def start_signing(self, req: AgreementRequest) -> SigningStart:
        """The holder signs on Alipay's page: the signed `alipay.user.agreement.page.sign` redirect (no call is made).
        The agreement is told by `dut_user_sign` and `alipay.user.agreement.query`."""
        return SigningStart(req.out_agreement_no, tx.page_sign_url(self.config, req, self._clock()))

    async def query_agreement(self, out_agreement_no: str) -> Agreement:
        data = await self._call("alipay.user.agreement.query", tx.agreement_ref(out_agreement_no), f"agreement {out_agreement_no}")
        return self._parse(tx.agreement_from, data)

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement:
        # alipay.user.agreement.unsign answers only its code: the agreement's state is then asked for.
        await self._call("alipay.user.agreement.unsign", tx.agreement_ref(out_agreement_no), f"agreement {out_agreement_no}")
        return await self.query_agreement(out_agreement_no)

    async def pay(self, req: PaymentRequest) -> PaymentResult:
        try:
            data = await self._call("alipay.trade.pay", tx.pay_biz(req), "the payment", notify=True)
        except Declined as exc:
            if exc.code != tx.ALREADY_PAID:
                raise
            # A resent order Alipay already collected: the trade is the answer — if it is the one we asked for. Anything
            # else (another amount, not paid after all, the query refused) is for an operator: unknown, never declined.
            truth = await self._after_acceptance(lambda: self.query(req.out_trade_no), out_trade_no=req.out_trade_no,
                                                 amount_fen=req.amount_fen, what=f"payment {req.out_trade_no}")
            if truth.status != "succeeded":
                raise unknown(self.name, "paid_but_not_succeeded", "Alipay says the trade was paid; its query says otherwise") from None
            return truth
        return self._about(self._parse(tx.pay_answer_from, data), req.out_trade_no)

    async def query(self, out_trade_no: str) -> PaymentResult:
        data = await self._call("alipay.trade.query", {"out_trade_no": out_trade_no}, f"order {out_trade_no}")
        return self._about(self._parse(tx.payment_from, data), out_trade_no)

    async def refund(self, req: RefundRequest) -> RefundResult:
        data = await self._call("alipay.trade.refund", tx.refund_biz(req), "the refund")
        return self._parse(tx.refund_from, data, req)

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        what = f"refund {out_refund_no}"
        data = await self._call("alipay.trade.fastpay.refund.query", tx.refund_query_biz(out_trade_no, out_refund_no), what)
        if data.get("out_trade_no") not in (None, out_trade_no) or data.get("out_request_no") not in (None, out_refund_no):
            raise unknown(self.name, "mismatched_answer", f"the answer is about another refund than {out_refund_no}")
        if data.get("refund_status") != "REFUND_SUCCESS":
            # Signed: not refunded (never received, or failed) — nothing was given back; the same out_request_no may be sent again.
            raise not_found_at(self.name, what)
        return self._parse(tx.refund_query_from, data, out_trade_no, out_refund_no)

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return tx.parse_notification(self.config, body)

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    # -- medical-insurance orders (alipay.commerce.medical.trade.*): the platform as the insurance side --
    wallet_signature_field = "sign"

    def open_wallet_request(self, action: str, method: str, path: str, headers: Mapping[str, str], body: bytes) -> WalletRequest:
        """A request Alipay sent the platform about a medical trade, signed as its notifications are (Alipay's key)."""
        return tx.open_wallet_request(self.config, action, body, self._clock())

    def wallet_answer(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return tx.wallet_answer(payload)

    async def query_med_ins_order(self, mix_trade_no: str) -> MedInsOrder:
        """The medical trade Alipay holds under its `trade_no` (NotFoundAtChannel: none), as a mixed order."""
        data = await self._call(tx.MED_QUERY, {"trade_no": mix_trade_no}, f"medical trade {mix_trade_no}")
        found: MedInsOrder = self._parse(tx.med_ins_order_from, data)
        if found.mix_trade_no != mix_trade_no:
            raise unknown(self.name, "mismatched_answer", f"the answer names trade {found.mix_trade_no}, not {mix_trade_no}")
        return found

    async def statement(self, day: date) -> Statement:
        data = await self._call("alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day.isoformat()},
                                f"the statement of {day}")
        url = str(data.get("bill_download_url") or "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise unknown(self.name, "garbled_answer", "the bill download URL is not a URL")
        # The URL came in a signed answer, on Alipay's file host, good for about 30 s: it is the file's credential.
        origin = f"{parts.scheme}://{parts.netloc}"
        resp = await send(self.name, origin, "GET", url[len(origin):] or "/", b"", {}, self.config.timeout, self._transport)
        if not resp.is_success:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "the statement download failed")
        return tx.parse_statement(self.name, resp.content, day)  # StatementError for a file that does not read or add up
