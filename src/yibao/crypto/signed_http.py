"""A JSON exchange signed both ways with a shared key (HMAC-SHA256 over the body, in a header): what the platform
uses with the outside services it shares a key with — the face verifier (face/client.py) and the SMS gateway
(sms/client.py). Every way the exchange can fail is one `fail(code_suffix, english)` call, so each client answers
in its own terms."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Callable

import httpx


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def valid(key: bytes, body: bytes, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(key, body), signature)


async def post(base_url: str, path: str, body: bytes, *, key: bytes, header: str, timeout: float,
               transport: httpx.AsyncBaseTransport | None, fail: Callable[[str, str], Exception]) -> tuple[httpx.Response, dict[str, Any]]:
    """POST ``body`` signed; the answer and its JSON, once its signature holds (whatever its status: the caller reads
    refusals). ``fail("timeout" | "unreachable" | "bad_signature" | "bad_answer", english)`` makes the exception raised."""
    headers = {"Content-Type": "application/json", header: sign(key, body)}
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport) as client:
            resp = await client.post(path, content=body, headers=headers)
    except httpx.TimeoutException:
        raise fail("timeout", "no answer in time") from None
    except httpx.HTTPError as exc:
        raise fail("unreachable", type(exc).__name__) from None
    if not valid(key, resp.content, resp.headers.get(header)):
        raise fail("bad_signature", f"the answer (HTTP {resp.status_code}) is not signed with the shared key")
    try:
        data = resp.json()
    except ValueError:
        raise fail("bad_answer", "the answer is not JSON") from None
    if not isinstance(data, dict):
        raise fail("bad_answer", "the answer is not a JSON object")
    return resp, data
