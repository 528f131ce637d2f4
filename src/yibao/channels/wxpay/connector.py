"""WeChat-Pay-v3-style connector: signed JSON over async HTTP. The wire format is in wxpay_transformers."""

from __future__ import annotations

import json
import secrets
from datetime import date
from typing import Any, Mapping
from urllib.parse import quote

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
from yibao.channels.wxpay import transformers as tx

WxPayConfig = tx.WxPayConfig


class WxPayChannel(Connector):
    """One WeChat-Pay-style institution (the SANDBOX wxpay speaks the same protocol)."""

    config: WxPayConfig

    def __repr__(self) -> str:
        return f"WxPayChannel({self.config.base_url!r}, mchid={self.config.mchid!r})"

    async def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None, *, what: str) -> dict[str, Any]:
        body = tx.dumps(payload) if payload is not None else b""
        ts, nonce = str(int(self._clock().timestamp())), secrets.token_hex(16)
        headers = {"Authorization": tx.authorization(self.config, method, path, body, ts, nonce), "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        resp = await send(self.name, self.config.base_url, method, path, body, headers, self.config.timeout, self._transport)
        tx.verify_signed(self.config, resp.headers, resp.content, self._clock(), f"answer to {method} {path} (HTTP {resp.status_code})")
        try:
            data = json.loads(resp.content) if resp.content else {}
        except ValueError:
            raise unknown(self.name, "garbled_answer", "the answer is not JSON") from None
        if not resp.is_success:
            raise tx.error_from(self.name, resp.status_code, data, what)
        return data

    async def sign_agreement(self, req: AgreementRequest) -> Agreement:
        data = await self._call("POST", "/v3/papay/contracts", tx.agreement_body(self.config, req), what="the agreement")
        return self._parse(tx.agreement_from, data)

    async def query_agreement(self, out_agreement_no: str) -> Agreement:
        path = f"/v3/papay/contracts/out-contract-code/{quote(out_agreement_no)}?mchid={quote(self.config.mchid)}"
        return self._parse(tx.agreement_from, await self._call("GET", path, what=f"agreement {out_agreement_no}"))

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement:
        path = f"/v3/papay/contracts/out-contract-code/{quote(out_agreement_no)}/terminate"
        data = await self._call("POST", path, tx.terminate_body(self.config), what=f"agreement {out_agreement_no}")
        return self._parse(tx.agreement_from, data)

    async def pay(self, req: PaymentRequest) -> PaymentResult:
        data = await self._call("POST", "/v3/papay/pay/transactions/apply", tx.pay_body(self.config, req), what="the payment")
        result: PaymentResult = self._parse(tx.payment_from, data)
        if result.status == "failed":
            raise declined(self.name, result.error_code or "PAYERROR", "the payment failed")
        return result

    async def query(self, out_trade_no: str) -> PaymentResult:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}?mchid={quote(self.config.mchid)}"
        return self._parse(tx.payment_from, await self._call("GET", path, what=f"order {out_trade_no}"))

    async def refund(self, req: RefundRequest) -> RefundResult:
        data = await self._call("POST", "/v3/refund/domestic/refunds", tx.refund_body(self.config, req), what="the refund")
        result: RefundResult = self._parse(tx.refund_from, data)
        if result.status == "failed":
            raise declined(self.name, result.error_code or "ABNORMAL", "the refund failed")
        return result

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no)}"
        return self._parse(tx.refund_from, await self._call("GET", path, what=f"refund {out_refund_no}"))

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        return tx.parse_notification(self.config, headers, body, self._clock())

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    async def statement(self, day: date) -> Statement:
        """Ask for the day's bill, download it, check its SHA-1 against the signed answer, parse it."""
        import hashlib

        data = await self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL", what=f"the statement of {day}")
        url = str(data.get("download_url") or "")
        if not url.startswith(self.config.base_url.rstrip("/") + "/"):
            raise StatementError(self.name, "statement_url_foreign", "对账单下载地址不属于该支付机构", f"{self.name}: the download URL is not the institution's")
        path = url[len(self.config.base_url.rstrip("/")):]
        ts, nonce = str(int(self._clock().timestamp())), secrets.token_hex(16)
        headers = {"Authorization": tx.authorization(self.config, "GET", path, b"", ts, nonce)}
        resp = await send(self.name, self.config.base_url, "GET", path, b"", headers, self.config.timeout, self._transport)
        if not resp.is_success:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "the statement download failed")
        # The file itself is not signed (as with WeChat Pay); its hash came in the signed answer.
        if data.get("hash_type") != "SHA1" or hashlib.sha1(resp.content).hexdigest() != data.get("hash_value"):
            raise StatementError(self.name, "statement_hash_mismatch", "对账单文件摘要不符", f"{self.name}: the statement file does not match its hash")
        return tx.parse_statement(self.name, resp.content.decode("utf-8"), day)
