"""The platform's SMS client: async HTTP to the configured gateway, signed both ways, every answer checked.

A text message is a call to an outside party: call `send` from async code between units of work, never
inside one (the log-in code: services/access/sessions.py; credit reminders: services/credit/jobs.py).
The request carries its own time (`sent_at`) under the signature, so a copied request is refused later;
the answer must echo the request's `request_id` and be signed with the same key.
"""

from __future__ import annotations

import json
import secrets
import time

import httpx

from yibao.crypto import signed_http
from yibao.domain.errors import Unavailable
from yibao.sms import signing


class SmsUnavailable(Unavailable):
    """No SMS gateway is configured, or it gave no trustworthy answer (down, slow, refusing, a bad signature)."""


def unavailable(code: str, en: str, retry_after: int = 5) -> SmsUnavailable:
    exc = SmsUnavailable("sms_gateway", code, "短信服务暂不可用，请稍后重试", f"SMS is unavailable: {en}")
    exc.retry_after = retry_after
    return exc


class SmsGateway:
    def __init__(self, base_url: str, key: bytes | str, *, timeout: float = 5.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key.encode() if isinstance(key, str) else key
        self._timeout = timeout
        self._transport = transport

    def __repr__(self) -> str:  # never show the key
        return f"SmsGateway({self.base_url!r})"

    async def send(self, phone: str, text: str) -> str:
        """Send one message; the gateway's message id. Raises `SmsUnavailable` unless the gateway took it."""
        request_id = secrets.token_hex(16)
        body = json.dumps({"request_id": request_id, "phone": phone, "text": text, "sent_at": int(time.time())},
                          ensure_ascii=False, separators=(",", ":")).encode()
        resp, data = await signed_http.post(self.base_url, "/messages", body, key=self._key, header=signing.HEADER, timeout=self._timeout,
                                            transport=self._transport, fail=lambda code, en: unavailable(f"sms_gateway_{code}", en))
        if not resp.is_success:
            err = data.get("error") or {}
            raise unavailable(f"sms_gateway_{err.get('code') or resp.status_code}", str(err.get("message") or f"HTTP {resp.status_code}"))
        if data.get("request_id") != request_id or not isinstance(data.get("message_id"), str):
            raise unavailable("sms_gateway_mismatched_answer", "the answer is for another request")
        return data["message_id"]
