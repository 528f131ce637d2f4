"""WeChat Pay API v3 connector: signed JSON over async HTTP. The wire format is in transformers.

Keys the institution signs with are named by `Wechatpay-Serial`: the configured platform public key
(by its `PUB_KEY_ID_…`), and — with `platform_certificates` — platform certificates downloaded from
`GET /v3/certificates`, decrypted with the API v3 key, refreshed every 12 hours and whenever an answer
names a serial we do not hold (WeChat rotates them).

The password-free deduction answers "accepted" (HTTP 204): the result comes later, by notification or
query. `pay` therefore asks once at once (`GET …/out-trade-no/{no}`) and returns what that says —
`processing` while WeChat is still deducting.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import date, datetime, timedelta
from typing import Any, Mapping
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from yibao.channels.base import (
    Ack,
    Agreement,
    AgreementRequest,
    MedInsOrder,
    NotFoundAtChannel,
    Notification,
    PaymentRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    SigningStart,
    Statement,
    StatementError,
    WalletRequest,
    declined,
    unknown,
)
from yibao.channels.connector import Connector
from yibao.channels.http import send
from yibao.channels.wxpay import transformers as tx

WxPayConfig = tx.WxPayConfig
public_key_id = tx.public_key_id
CERTIFICATE_REFRESH = timedelta(hours=12)


class WxPayChannel(Connector):
    """One WeChat Pay (API v3) merchant account (the SANDBOX wxpay speaks the same protocol)."""

    config: WxPayConfig

    def __init__(self, config: WxPayConfig, **kw: Any) -> None:
        super().__init__(config, **kw)
        self._certificates: dict[str, tx.PlatformCertificate] = {}
        self._certs_lock = threading.Lock()
        self._certs_at: datetime | None = None

    def __repr__(self) -> str:
        return f"WxPayChannel({self.config.base_url!r}, mchid={self.config.mchid!r})"

    # -- platform certificates --
    @property
    def certificates(self) -> dict[str, RSAPublicKey]:
        """The platform certificates' keys we hold, by serial (valid now)."""
        now = self._clock()
        with self._certs_lock:
            return {s: c.key for s, c in self._certificates.items() if c.not_before <= now <= c.not_after}

    async def refresh_certificates(self) -> list[str]:
        """Download the platform certificates (GET /v3/certificates), keep the valid ones; their serials. Any failure is
        unknown — never a decline: a refresh may follow a request already sent (a rotated certificate) and says
        nothing about it."""
        path = "/v3/certificates"
        resp = await self._send("GET", path, b"")
        if not resp.is_success:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "the platform certificates could not be downloaded")
        try:
            data = json.loads(resp.content) if resp.content else {}
        except ValueError:
            raise unknown(self.name, "garbled_answer", "the certificates answer is not JSON") from None
        found = self._parse(tx.certificates_from, self.config, data, self._clock())
        # The answer is signed by one of the certificates it carries (or a key we already trust).
        known = {**self.certificates, **{c.serial_no: c.key for c in found}}
        tx.verify_signed(self.config, resp.headers, resp.content, self._clock(), "answer to GET /v3/certificates", known)
        with self._certs_lock:
            for c in found:
                self._certificates[c.serial_no] = c
            self._certs_at = self._clock()
        return [c.serial_no for c in found]

    async def _ensure_certificates(self) -> None:
        if not self.config.platform_certificates:
            return
        at = self._certs_at
        if at is None or self._clock() - at > CERTIFICATE_REFRESH:
            await self.refresh_certificates()

    # -- the signed call --
    async def _send(self, method: str, path: str, body: bytes) -> Any:
        ts, nonce = str(int(self._clock().timestamp())), secrets.token_hex(16).upper()
        headers = {"Authorization": tx.authorization(self.config, method, path, body, ts, nonce), "Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        if self.config.platform_serial.startswith(tx.PUBLIC_KEY_ID_PREFIX):
            headers["Wechatpay-Serial"] = self.config.platform_serial
        return await send(self.name, self.config.base_url, method, path, body, headers, self.config.timeout, self._transport)

    def _verify(self, resp: Any, what: str) -> None:
        tx.verify_signed(self.config, resp.headers, resp.content, self._clock(), what, self.certificates)

    async def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None, *, what: str) -> dict[str, Any]:
        await self._ensure_certificates()
        body = tx.dumps(payload) if payload is not None else b""
        resp = await self._send(method, path, body)
        label = f"answer to {method} {path} (HTTP {resp.status_code})"
        try:
            self._verify(resp, label)
        except tx.UnknownSerial:
            if not self.config.platform_certificates:
                raise
            await self.refresh_certificates()  # a rotated certificate: fetch the new ones (failing: unknown), then check again
            self._verify(resp, label)
        try:
            data = json.loads(resp.content) if resp.content else {}
        except ValueError:
            raise unknown(self.name, "garbled_answer", "the answer is not JSON") from None
        if not resp.is_success:
            raise tx.error_from(self.name, resp.status_code, data, what)
        return data if isinstance(data, dict) else {}

    # -- agreements (委托代扣 contracts under the configured plan) --
    async def start_signing(self, req: AgreementRequest) -> SigningStart:
        """代扣预签约: a session and the URL of WeChat's signing page for the holder (a redirect or a QR of it). The
        contract is signed when the holder confirms there; it is told by PAPAY.SIGN and the contract query."""
        try:
            body = tx.pre_entrust_body(self.config, req)
        except ValueError as exc:
            raise declined(self.name, "NO_NOTIFY_URL", str(exc)) from None
        data = await self._call("POST", "/v3/papay/sign/contracts/pre-entrust-sign", body, what="the pre-sign")
        return self._parse(tx.signing_from, data, req.out_agreement_no)

    async def query_agreement(self, out_agreement_no: str) -> Agreement:
        data = await self._call("GET", tx.contract_path(self.config, out_agreement_no), what=f"agreement {out_agreement_no}")
        return self._parse(tx.agreement_from, data, self.config.plan_limit_fen)

    async def terminate_agreement(self, out_agreement_no: str) -> Agreement:
        """Terminate by plan and contract code; the answer names the contract only, so ask for its state after."""
        await self._call("POST", tx.contract_path(self.config, out_agreement_no) + "/terminate", tx.terminate_body(self.config),
                         what=f"agreement {out_agreement_no}")
        return await self.query_agreement(out_agreement_no)

    # -- payments --
    async def pay(self, req: PaymentRequest) -> PaymentResult:
        """The 预扣费通知 first (when the template requires one), then apply for the deduction (answer: accepted), then
        ask once for its state (`Connector._after_acceptance`). A resent payment notifies again: a notice is used by one
        deduction, and a second notice for an order already deducted changes nothing. The notice goes before anything is
        deducted, so its refusal is a definite one."""
        if self.config.deduct_notice:
            try:
                await self._call("POST", tx.deduct_notice_path(req.agreement_no), tx.deduct_notice_body(self.config, req.amount_fen),
                                 what="the deduction notice")
            except NotFoundAtChannel:  # no such contract: nothing can be deducted under it
                raise declined(self.name, "CONTRACT_NOT_EXIST", "the contract does not exist") from None
        await self._call("POST", "/v3/papay/pay/transactions/apply", tx.pay_body(self.config, req), what="the payment")
        return await self._after_acceptance(lambda: self.query(req.out_trade_no), out_trade_no=req.out_trade_no,
                                            amount_fen=req.amount_fen, what=f"payment {req.out_trade_no}")

    async def query(self, out_trade_no: str) -> PaymentResult:
        path = f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no)}?mchid={quote(self.config.mchid)}"
        return self._about(self._parse(tx.payment_from, await self._call("GET", path, what=f"order {out_trade_no}")), out_trade_no)

    # -- refunds --
    async def refund(self, req: RefundRequest) -> RefundResult:
        data = await self._call("POST", "/v3/refund/domestic/refunds", tx.refund_body(self.config, req), what="the refund")
        result: RefundResult = self._about(self._parse(tx.refund_from, data), req.out_trade_no, req.out_refund_no)
        if result.status == "failed":  # CLOSED: signed, final, nothing given back (ABNORMAL is processing: transformers)
            raise declined(self.name, result.error_code or "CLOSED", "the refund failed")
        return result

    async def query_refund(self, out_trade_no: str, out_refund_no: str) -> RefundResult:
        path = f"/v3/refund/domestic/refunds/{quote(out_refund_no)}"
        result = self._parse(tx.refund_from, await self._call("GET", path, what=f"refund {out_refund_no}"))
        return self._about(result, out_trade_no, out_refund_no)

    # -- notifications --
    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Signed by the public key or a platform certificate we hold; a serial we do not hold is refused
        (WeChat resends) and makes the next call download the certificates again."""
        try:
            return tx.parse_notification(self.config, headers, body, self._clock(), self.certificates)
        except Exception:
            if self.config.platform_certificates:
                serial = {k.lower(): v for k, v in headers.items()}.get("wechatpay-serial", "")
                if serial and tx.platform_key_for(self.config, serial, self.certificates) is None:
                    self._certs_at = None
            raise

    def ack(self, accepted: bool) -> Ack:
        return tx.ack(accepted)

    # -- medical-insurance orders (the platform as the insurance platform behind WeChat Pay: docs/channels.md) --
    wallet_signature_field = "Wechatpay-Signature"

    def open_wallet_request(self, action: str, method: str, path: str, headers: Mapping[str, str], body: bytes) -> WalletRequest:
        """A request WeChat Pay sent the platform, signed by its platform key (or a platform certificate we hold) over the
        method, the path (so ``action``, the last segment, is covered), the time, the nonce and the body."""
        tx.verify_wallet_request(self.config, method, path, headers, body, self._clock(), self.certificates)
        return tx.wallet_request_from(headers, body)

    def wallet_answer(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return dict(payload)  # the platform's names are WeChat's

    async def query_med_ins_order(self, mix_trade_no: str) -> MedInsOrder:
        """The mixed order WeChat Pay holds for a pay order of ours (NotFoundAtChannel: none)."""
        data = await self._call("GET", f"/v3/med-ins/orders/mix-trade-no/{quote(mix_trade_no)}", what=f"mixed order {mix_trade_no}")
        return self._parse(tx.med_ins_order_from, data)

    # -- statements --
    async def statement(self, day: date) -> Statement:
        """Ask for the day's trade bill (gzip), download it, check its SHA1 against the signed answer, parse it."""
        data = await self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL&tar_type=GZIP",
                                what=f"the statement of {day}")
        url = str(data.get("download_url") or "")
        if not url.startswith(self.config.base_url.rstrip("/") + "/"):
            raise StatementError(self.name, "statement_url_foreign", "对账单下载地址不属于该支付机构", f"{self.name}: the download URL is not the institution's")
        path = url[len(self.config.base_url.rstrip("/")):]
        resp = await self._send("GET", path, b"")
        if not resp.is_success:
            raise unknown(self.name, f"HTTP_{resp.status_code}", "the statement download failed")
        # The file itself is not signed (as with WeChat Pay); its hash came in the signed answer.
        text = tx.check_bill(self.name, resp.content, "GZIP", data.get("hash_type"), data.get("hash_value"))
        return tx.parse_statement(self.name, text, day)

