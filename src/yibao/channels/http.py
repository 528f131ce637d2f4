"""The one way a connector talks to an institution: HTTP/1.1 with a timeout.

A timeout or a broken connection is never a failure of the payment: it is `OutcomeUnknown`, and
the caller queries.

Connections are kept per event loop: inside `pooled()` (the app's lifespan opens it for the serving loop)
every call to one institution (its scheme, host and port) on that loop takes an idle connection kept from an
earlier call, so the TCP (and TLS) connection is reused — a new connection per call cost the platform the
connect and the set-up on each payment. A connection belongs to the loop that made it, hence one pool per
loop, kept in a WeakKeyDictionary keyed by the loop; `pooled()` closes them when it ends. Outside `pooled()`
(the CLI, a test's `asyncio.run`) a call opens its own connection and closes it.

The requests are written and the answers parsed with h11 (the HTTP/1.1 state machine httpx itself is built on)
over asyncio streams, not through httpx: httpx and httpcore spent ~0.45 ms of the platform's CPU per request
on their layers (a loop of requests to a local server: httpx 576 µs, httpcore 360 µs, h11 on streams 124 µs),
and a one-code payment makes two. httpx is still used where a test hands the connector a transport (a
MockTransport), and when the process is told to use a proxy (HTTP(S)_PROXY), which only httpx honours here.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import urllib.parse
import urllib.request
import weakref
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h11
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

    __slots__ = ("clients", "holders", "turn", "idle")

    def __init__(self) -> None:
        self.clients: dict[tuple[str, httpx.AsyncBaseTransport | None, int], httpx.AsyncClient] = {}
        self.holders = 0
        self.turn = 0
        self.idle: dict[tuple[str, str, int], list[_Conn]] = {}  # per (scheme, host, port): kept connections, last used last


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
            for kept in pool.idle.values():
                for conn in kept:
                    conn.close()


def _client(base_url: str, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), transport=transport, verify=tls_context(),
                             limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S))


class Answer:
    """An institution's answer as the connectors read it (the part of httpx.Response they use)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: httpx.Headers, content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@functools.lru_cache(maxsize=1)
def _proxied() -> bool:
    return any(k.lower() in ("http", "https", "all") for k in urllib.request.getproxies())


_USER_AGENT = "yibao-connector/1 (+h11)"
MAX_ANSWER = 200 * 1024 * 1024  # a statement file may be large; nothing an institution says is read without bound
KEEP_IDLE = 32  # idle connections kept per institution and loop


class _Conn:
    """One kept HTTP/1.1 connection."""

    __slots__ = ("reader", "writer", "h11", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        # A connection the server closed (or began to answer unasked) while it was idle is not reused.
        return (now - self.idle_since < KEEPALIVE_EXPIRY_S and not self.writer.is_closing() and not self.reader.at_eof()
                and not getattr(self.reader, "_buffer", b""))

    def close(self) -> None:
        self.writer.close()


class _Origin:
    __slots__ = ("scheme", "host", "port", "prefix", "host_header")

    def __init__(self, base_url: str) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.scheme, self.host = url.scheme, url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        default = self.port == (443 if url.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default else f"{host}:{self.port}"


@functools.lru_cache(maxsize=256)
def _origin(base_url: str) -> _Origin:
    return _Origin(base_url)


async def _connect(origin: _Origin) -> _Conn:
    if origin.scheme == "https":
        reader, writer = await asyncio.open_connection(origin.host, origin.port, ssl=tls_context(), server_hostname=origin.host)
    else:
        reader, writer = await asyncio.open_connection(origin.host, origin.port)
    return _Conn(reader, writer)


def _decoded(content: bytes, encoding: str | None) -> bytes:
    # Asked for identity; a server that compresses anyway is still understood (as httpx did): the codings in the order
    # applied, undone last first; an empty body (a 204, an empty refusal) is empty whatever it claims.
    if not encoding or not content:
        return content
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            try:
                content = zlib.decompress(content)
            except zlib.error:
                content = zlib.decompress(content, -zlib.MAX_WBITS)
        else:
            raise h11.RemoteProtocolError(f"unsupported Content-Encoding {encoding}")
    return content


# What httpx leaves as it is in a request target (RFC 3986's unreserved and sub-delims, ":@/?", and "%" of an escape
# already made); anything else (a space, a non-ASCII letter in a returned download URL) is percent-encoded.
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"


def _target(prefix: str, path: str) -> str:
    target = prefix + path
    if not target.startswith("/"):
        target = "/" + target  # "?x" alone (a URL with no path): origin-form needs the "/"
    return urllib.parse.quote(target, safe=_TARGET_SAFE)


async def _exchange(conn: _Conn, origin: _Origin, method: str, path: str, body: bytes, headers: dict[str, str],
                    timeout: float) -> tuple[Answer, bool]:
    """One request and its answer; True with it when the connection may carry another. ``timeout`` bounds each wait
    (the write, each read), as httpx's did: a large statement that keeps arriving is not cut off."""
    lowered = {k.lower() for k in headers}
    head = [("Host", origin.host_header)]
    head += [(k, v) for k, v in headers.items()]
    if "user-agent" not in lowered:
        head.append(("User-Agent", _USER_AGENT))
    if "accept" not in lowered:
        head.append(("Accept", "*/*"))
    head.append(("Accept-Encoding", "identity"))
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(("Content-Length", str(len(body))))
    h = conn.h11
    out = h.send(h11.Request(method=method, target=_target(origin.prefix, path), headers=head))
    if body:
        out += h.send(h11.Data(data=body))
    out += h.send(h11.EndOfMessage())
    conn.writer.write(out)
    async with asyncio.timeout(timeout):
        await conn.writer.drain()
    response: h11.Response | None = None
    parts: list[bytes] = []
    size = 0
    while True:
        event = h.next_event()
        if event is h11.NEED_DATA:
            async with asyncio.timeout(timeout):
                data = await conn.reader.read(65536)
            h.receive_data(data)  # b"" is the end of the stream: h11 then says what it makes of it
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_ANSWER:
                raise h11.RemoteProtocolError("answer too large")
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            break
        elif isinstance(event, h11.ConnectionClosed):
            raise h11.RemoteProtocolError("server disconnected without a complete answer")
    assert response is not None
    answer_headers = httpx.Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers])
    content = _decoded(b"".join(parts), answer_headers.get("content-encoding"))
    # Bytes after the answer (a second answer nobody asked for) would be read as the next call's: such a connection ends.
    again = h.our_state is h11.DONE and h.their_state is h11.DONE and not h.trailing_data[0]
    if again:
        h.start_next_cycle()
    return Answer(response.status_code, answer_headers, content), again


async def _lean(base_url: str, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    origin = _origin(base_url)
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    idle = pool.idle.setdefault((origin.scheme, origin.host, origin.port), []) if pool is not None else None
    conn = None
    now = loop.time()
    while idle:
        kept = idle.pop()
        if kept.usable(now):
            conn = kept
            break
        kept.close()
    reuse = False
    try:
        if conn is None:
            async with asyncio.timeout(timeout):
                conn = await _connect(origin)
        answer, reuse = await _exchange(conn, origin, method, path, body, headers, timeout)
        return answer
    finally:
        if conn is not None:
            if reuse and idle is not None and len(idle) < KEEP_IDLE and pool is not None and pool.holders > 0:
                conn.idle_since = loop.time()
                idle.append(conn)
            else:
                conn.close()


async def send(channel: str, base_url: str, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float,
               transport: httpx.AsyncBaseTransport | None = None) -> Answer | httpx.Response:
    if transport is None and not _proxied():
        try:
            return await _lean(base_url, method, path, body, headers, timeout)
        except TimeoutError:
            raise unknown(channel, "timeout", f"no answer within {timeout}s") from None
        except (OSError, ValueError, h11.ProtocolError, zlib.error) as exc:  # ssl.SSLError is an OSError
            raise unknown(channel, "unreachable", type(exc).__name__) from None
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
