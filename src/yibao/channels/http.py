"""The one way a connector talks to an institution: an `httpx.AsyncClient` with a timeout.

A timeout or a broken connection is never a failure of the payment: it is `OutcomeUnknown`, and
the caller queries. The client is opened per call so a connector holds no event-loop-bound state
(it may be used from any loop; connection reuse can come later behind this one function).
"""

from __future__ import annotations

import functools
import ssl

import httpx

from yibao.channels.base import unknown


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    # Building a default context reads the CA bundle: ~25 ms, which httpx would do for every client
    # (so for every call here). One verifying context per process serves them all.
    return httpx.create_ssl_context()


async def send(channel: str, base_url: str, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float,
               transport: httpx.AsyncBaseTransport | None = None) -> httpx.Response:
    try:
        async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport, verify=tls_context()) as client:
            return await client.request(method, path, content=body or None, headers=headers)
    except httpx.TimeoutException:
        raise unknown(channel, "timeout", f"no answer within {timeout}s") from None
    except httpx.HTTPError as exc:
        raise unknown(channel, "unreachable", type(exc).__name__) from None
