"""The one way a connector talks to an institution: an `httpx.AsyncClient` with a timeout.

A timeout or a broken connection is never a failure of the payment: it is `OutcomeUnknown`, and
the caller queries.

Connections are kept per event loop: inside `pooled()` (the app's lifespan opens it for the serving loop)
every call to one institution (base URL and transport) on that loop goes through its clients (a few, taken in
turn: see SHARDS), so their TCP connections are reused — a new connection per call cost the platform the connect, the client's set-up and
tear-down on each payment. A client belongs to the loop that made it (its sockets do), hence one per loop,
kept in a WeakKeyDictionary keyed by the loop; `pooled()` closes them when it ends. Outside `pooled()` (the
CLI, a test's `asyncio.run`) a call opens its own client and closes it, as nobody would close a kept one.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from yibao.channels.base import unknown

# An idle kept connection is dropped before a server would close it (uvicorn's keep-alive is 5 s): reusing one
# the server is just closing would turn a payment into an unknown outcome (a query then settles it, but why risk it).
KEEPALIVE_EXPIRY_S = 4.0


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    # Building a default context reads the CA bundle: ~25 ms, which httpx would do for every client
    # (so for every call here). One verifying context per process serves them all.
    return httpx.create_ssl_context()


# httpcore looks at every connection of a client on every request (is it idle, has it expired: a poll of each socket),
# so one client holding the dozens of connections a busy worker keeps to an institution spent ~15 % of the worker's CPU
# there. Calls are spread over a few clients per institution instead, each with a few connections to look at.
SHARDS = 4


class _Pool:
    """The clients of one loop, and how many `pooled()` blocks hold them open (two apps may share a loop)."""

    __slots__ = ("clients", "holders", "turn")

    def __init__(self) -> None:
        self.clients: dict[tuple[str, httpx.AsyncBaseTransport | None, int], httpx.AsyncClient] = {}
        self.holders = 0
        self.turn = 0


_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool]" = weakref.WeakKeyDictionary()


@asynccontextmanager
async def pooled() -> AsyncIterator[None]:
    """Keep institutions' connections open on the running loop until this block ends, then close them."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    pool.holders += 1
    try:
        yield
    finally:
        pool.holders -= 1
        if pool.holders == 0:
            _pools.pop(loop, None)
            for client in pool.clients.values():
                await client.aclose()


def _client(base_url: str, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), transport=transport, verify=tls_context(),
                             limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S))


async def send(channel: str, base_url: str, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float,
               transport: httpx.AsyncBaseTransport | None = None) -> httpx.Response:
    try:
        pool = _pools.get(asyncio.get_running_loop())
        if pool is None:
            async with _client(base_url, transport) as client:
                return await client.request(method, path, content=body or None, headers=headers, timeout=timeout)
        pool.turn = (pool.turn + 1) % SHARDS
        key = (base_url, transport, pool.turn)
        client = pool.clients.get(key)
        if client is None:
            client = pool.clients[key] = _client(base_url, transport)
        return await client.request(method, path, content=body or None, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise unknown(channel, "timeout", f"no answer within {timeout}s") from None
    except httpx.HTTPError as exc:
        raise unknown(channel, "unreachable", type(exc).__name__) from None
