"""The one way a connector talks to an institution: HTTP/1.1 with a timeout.

A timeout or a broken connection is never a failure of the payment: it is `OutcomeUnknown`, and
the caller queries.

Connections are kept per event loop: inside `pooled()` (the app's lifespan opens it for the serving loop)
every call to one institution (its scheme, host and port) on that loop takes an idle connection kept from an
earlier call, so the TCP (and TLS) connection is reused — a new connection per call cost the platform the
connect and the set-up on each payment. A connection belongs to the loop that made it, hence one pool per
loop, kept in a WeakKeyDictionary keyed by the loop; `pooled()` closes them when it ends. Outside `pooled()`
(the CLI, a test's `asyncio.run`) a call opens its own connection and closes it.

The requests are written here as bytes and the answers parsed with httptools (llhttp, the C parser uvicorn
uses) over asyncio streams, not through httpx: httpx and httpcore spent ~0.45 ms of the platform's CPU per request
on their layers (a loop of requests to a local server: httpx 576 µs, httpcore 360 µs, h11 on streams 124 µs),
and a one-code payment makes two; h11's own validation, event objects and an httpx.Headers per answer were still
~6 % of the platform's CPU per payment (the layer alone, a request written and its answer read: ~140 µs with h11,
~16 µs here; the client's CPU per request to a local server, end to end: ~330 → ~180 µs).

What h11 did is done here: the header names and values written are refused (ValueError) if they could break the
request's framing (CR, LF, a name that is not a token); an answer is framed by Content-Length, chunks, or the
connection's close (HTTP/1.0 style; that connection then ends); 1xx answers are skipped; a 204, a 304 and the
answer to a HEAD have no body; a server that hangs up before the answer is whole, or says something that is not
HTTP/1.1, is a `RemoteProtocolError`. A connection is kept for the next call only when its answer was whole, the
server keeps it alive (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`) and
nothing followed the answer. httpx is still used where a test hands the connector a transport (a MockTransport),
and when the process is told to use a proxy (HTTP(S)_PROXY), which only httpx honours here.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import urllib.parse
import urllib.request
import weakref
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager

import httptools
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


class Headers(Mapping[str, str]):
    """An answer's header fields as httpx.Headers gave them to the connectors: names case-insensitive (kept lower-case,
    as its ``items()`` gave them), a repeated field's values joined by ", ". A dict underneath: building an
    httpx.Headers per answer was a visible share of the platform's CPU."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, str] | list[tuple[str, str]] = ()) -> None:
        joined: dict[str, str] = {}
        for name, value in (fields.items() if isinstance(fields, Mapping) else fields):
            name = name.lower()
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        self._fields = joined

    @classmethod
    def _lowered(cls, fields: dict[str, str]) -> Headers:
        """Fields already keyed by lower-case names (what the parser gathers), taken as they are."""
        headers = cls.__new__(cls)
        headers._fields = fields
        return headers

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._fields.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def items(self):  # noqa: ANN201 - the dict's own view: no per-item lookups
        return self._fields.items()

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


class Answer:
    """An institution's answer as the connectors read it (the part of httpx.Response they use)."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


@functools.lru_cache(maxsize=1)
def _proxied() -> bool:
    return any(k.lower() in ("http", "https", "all") for k in urllib.request.getproxies())


_USER_AGENT = "yibao-connector/1"
MAX_ANSWER = 200 * 1024 * 1024  # a statement file may be large; nothing an institution says is read without bound
MAX_HEAD = 64 * 1024  # an answer's status line and header fields: a server whose head never ends is cut off
KEEP_IDLE = 32  # idle connections kept per institution and loop


class RemoteProtocolError(Exception):
    """The institution's bytes are not an answer this client takes: malformed, cut off, too large, or a coding it
    cannot undo. Its name is the unknown outcome's detail ("unreachable", "RemoteProtocolError")."""


class _Conn:
    """One kept HTTP/1.1 connection."""

    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
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
            raise RemoteProtocolError(f"unsupported Content-Encoding {encoding}")
    return content


# What httpx leaves as it is in a request target (RFC 3986's unreserved and sub-delims, ":@/?", and "%" of an escape
# already made); anything else (a space, a non-ASCII letter in a returned download URL) is percent-encoded.
_TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"


def _target(prefix: str, path: str) -> str:
    target = prefix + path
    if not target.startswith("/"):
        target = "/" + target  # "?x" alone (a URL with no path): origin-form needs the "/"
    return urllib.parse.quote(target, safe=_TARGET_SAFE)


# What may be written as a header field: a token for the name, a value of visible ASCII and inner spaces or tabs, each
# line ended by CRLF. A CR or LF in a name or value (a caller's header built from an institution's or user's text)
# would start another field or end the head early: refused. The block is checked at once, and its LFs counted (one per
# field), so that "a\r\nX-Injected: 1" in a value, though each line would pass, does not.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FIELDS = re.compile(rf"(?:{_TOKEN}: (?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?\r\n)*")
_METHOD = re.compile(_TOKEN)


def _request_head(origin: _Origin, method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    fields = [f"Host: {origin.host_header}\r\n"]
    fields += [f"{k}: {v}\r\n" for k, v in headers.items()]
    lowered = {k.lower() for k in headers}
    if "user-agent" not in lowered:
        fields.append(f"User-Agent: {_USER_AGENT}\r\n")
    if "accept" not in lowered:
        fields.append("Accept: */*\r\n")
    fields.append("Accept-Encoding: identity\r\n")
    if body or method in ("POST", "PUT", "PATCH"):
        fields.append(f"Content-Length: {len(body)}\r\n")
    block = "".join(fields)
    if block.count("\n") != len(fields) or not _FIELDS.fullmatch(block) or not _METHOD.fullmatch(method):
        raise ValueError(f"请求头或方法含非法字符 / a header field or the method would break the request: {method} {list(headers)}")
    # The target is percent-encoded by _target: nothing in it can break the request line.
    return f"{method} {_target(origin.prefix, path)} HTTP/1.1\r\n{block}\r\n".encode("ascii")


class _Reading:
    """What httptools' callbacks gather of one answer. ``done`` once the answer is whole; anything the parser sees after
    that (a second answer nobody asked for, stray bytes) sets ``extra``: such a connection is not kept."""

    __slots__ = ("parser", "bodiless", "fields", "status", "parts", "size", "headed", "done", "extra")

    def __init__(self, bodiless: bool) -> None:
        self.bodiless = bodiless  # the answer to a HEAD: its Content-Length is the resource's, no body follows
        self.fields: dict[str, str] = {}
        self.status = 0
        self.parts: list[bytes] = []
        self.size = 0
        self.headed = self.done = self.extra = False

    def on_message_begin(self) -> None:
        if self.done:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:
            self.extra = True
            return
        key, text = name.decode("latin-1").lower(), value.decode("latin-1").strip()  # llhttp leaves trailing spaces
        fields = self.fields
        fields[key] = f"{fields[key]}, {text}" if key in fields else text

    def on_headers_complete(self) -> None:
        if self.done:
            self.extra = True
            return
        status = self.parser.get_status_code()
        if status < 200:  # informational (100 Continue, 103 Early Hints): the answer is still to come
            self.fields = {}
            return
        self.status, self.headed = status, True
        if self.bodiless or status in (204, 304):
            self.done = True

    def on_body(self, body: bytes) -> None:
        if self.done:
            self.extra = True
            return
        self.size += len(body)
        self.parts.append(body)

    def on_message_complete(self) -> None:
        if self.headed:  # not a 1xx's end
            self.done = True

    def ends_with_close(self) -> bool:
        """Framed by the connection's close (no Content-Length, not chunked): the end of the stream ends the answer."""
        return "content-length" not in self.fields and "chunked" not in self.fields.get("transfer-encoding", "").lower()

    def kept_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.fields.get("connection", "").split(",")}
        return "close" not in tokens and (self.parser.get_http_version() == "1.1" or "keep-alive" in tokens)


async def _exchange(conn: _Conn, origin: _Origin, method: str, path: str, body: bytes, headers: dict[str, str],
                    timeout: float) -> tuple[Answer, bool]:
    """One request and its answer; True with it when the connection may carry another. ``timeout`` bounds each wait
    (the write, each read), as httpx's did: a large statement that keeps arriving is not cut off."""
    head = _request_head(origin, method, path, body, headers)
    if body:
        if len(body) < 65536:
            conn.writer.write(head + body)  # one segment for the usual small request
        else:
            conn.writer.writelines((head, body))
    else:
        conn.writer.write(head)
    if conn.writer.transport.get_write_buffer_size():  # drain waits only while the buffer is over its limit
        async with asyncio.timeout(timeout):
            await conn.writer.drain()
    else:
        await conn.writer.drain()  # (still raises a connection lost meanwhile)
    reading = _Reading(method == "HEAD")
    parser = reading.parser = httptools.HttpResponseParser(reading)
    reader = conn.reader
    closed = False
    seen = 0
    while not reading.done:
        async with asyncio.timeout(timeout):
            data = await reader.read(65536)
        if not data:
            if reading.headed and reading.ends_with_close():
                closed = True
                break
            raise RemoteProtocolError("server disconnected without a complete answer")
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not reading.done:
                raise RemoteProtocolError(f"not an HTTP/1.1 answer: {exc!r}") from None
            reading.extra = True  # what followed a whole answer is no answer: the connection ends
        if reading.size > MAX_ANSWER:
            raise RemoteProtocolError("answer too large")
        if not reading.headed:
            seen += len(data)
            if seen > MAX_HEAD:
                raise RemoteProtocolError("answer head too large")
    fields = reading.fields
    parts = reading.parts
    content = _decoded(parts[0] if len(parts) == 1 else b"".join(parts), fields.get("content-encoding"))
    # Bytes after the answer (a second answer nobody asked for) would be read as the next call's: such a connection ends.
    again = not closed and not reading.extra and reading.kept_alive()
    return Answer(reading.status, Headers._lowered(fields), content), again


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
        except (OSError, ValueError, RemoteProtocolError, zlib.error) as exc:  # ssl.SSLError is an OSError
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
