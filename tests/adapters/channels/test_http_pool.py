"""channels/http.py keeps institutions' connections per event loop inside `pooled()` (the app's lifespan), and opens
one per call outside it; it speaks HTTP/1.1 itself (the head written as bytes, the answer parsed by httptools, on asyncio streams). A server that answers with the client's
port tells which TCP connection carried a call; raw socket servers play the institutions that misbehave."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading

import pytest

from tests.support.channels import serve_in_thread
from yibao.channels import OutcomeUnknown
from yibao.channels import http as channel_http


async def _port_app(scope, receive, send):  # noqa: ANN001
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if scope["path"] == "/echo":  # what arrived: method, target, the body, and the headers that matter to an institution
        answer = f"{scope['method']} {scope['path']}?{scope['query_string'].decode()} {body.decode()} {headers.get('content-type')} " \
                 f"{headers.get('user-agent', '-')[:6]} {headers.get('host')}".encode()
        await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain"), (b"x-seen", b"yes")]})
        await send({"type": "http.response.body", "body": answer})
        return
    if scope["path"] == "/chunked":  # no Content-Length: chunked transfer, in three pieces
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for piece in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/gzip":  # compressed though the client asked for identity
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-encoding", b"gzip")]})
        await send({"type": "http.response.body", "body": gzip.compress(b"statement rows")})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(scope["client"][1]).encode()})


@pytest.fixture(scope="module")
def port_server():
    url, server, thread, sock = serve_in_thread(_port_app, "port-echo")
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


class RawServer:
    """A TCP server answering each connection with ``script(conn)``, on a thread (an institution that misbehaves)."""

    def __init__(self, script) -> None:  # noqa: ANN001
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script) -> None:  # noqa: ANN001
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                script(conn)

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


async def _port(url: str) -> int:
    resp = await channel_http.send("test", url, "GET", "/", b"", {}, 10.0)
    return int(resp.content)


def test_calls_on_one_loop_reuse_one_kept_connection_inside_pooled_and_open_one_each_outside(port_server):
    async def story() -> tuple[list[int], list[int]]:
        async with channel_http.pooled():
            inside = [await _port(port_server) for _ in range(6)]
        after = [await _port(port_server) for _ in range(2)]
        return inside, after

    inside, after = asyncio.run(story())
    assert len(set(inside)) == 1, inside  # one after the other: the kept connection carried every call
    assert len(set(after)) == 2 and not set(after) & set(inside), after  # outside the pool: a connection per call


def test_concurrent_calls_each_take_a_connection_and_leave_it_for_the_next(port_server):
    async def story() -> tuple[set[int], set[int]]:
        async with channel_http.pooled():
            first = set(await asyncio.gather(*(_port(port_server) for _ in range(4))))
            second = set(await asyncio.gather(*(_port(port_server) for _ in range(4))))
        return first, second

    first, second = asyncio.run(story())
    assert len(first) == 4 and second <= first  # four at once need four; the next four find them kept


def test_each_loop_has_its_own_connections_and_the_pool_closes_them(port_server):
    async def story() -> tuple[int, list]:
        async with channel_http.pooled():
            port = await _port(port_server)
            pool = channel_http._pools[asyncio.get_running_loop()]
            kept = [c for conns in pool.idle.values() for c in conns]
        assert asyncio.get_running_loop() not in channel_http._pools
        assert kept and all(c.writer.is_closing() for c in kept)  # closed when the block ended, on the loop that owns them
        return port, kept

    first_port, first_kept = asyncio.run(story())
    second_port, second_kept = asyncio.run(story())
    assert first_kept[0] is not second_kept[0] and first_port != second_port


def test_nested_pooled_blocks_keep_the_connections_until_the_outer_one_ends(port_server):
    async def story() -> None:
        async with channel_http.pooled():
            async with channel_http.pooled():
                first = await _port(port_server)
            assert await _port(port_server) == first  # the inner block's end closed nothing

    asyncio.run(story())


def test_the_request_and_answer_as_an_institution_sees_them(port_server):
    async def story():  # noqa: ANN202
        async with channel_http.pooled():
            posted = await channel_http.send("test", port_server + "/", "POST", "/echo?a=1&b=2", b"k=v", {"Content-Type": "application/x-www-form-urlencoded"}, 10.0)
            chunked = await channel_http.send("test", port_server, "GET", "/chunked", b"", {}, 10.0)
            zipped = await channel_http.send("test", port_server, "GET", "/gzip", b"", {}, 10.0)
            return posted, chunked, zipped

    posted, chunked, zipped = asyncio.run(story())
    host = port_server.removeprefix("http://")
    assert (posted.status_code, posted.is_success, posted.headers["X-Seen"]) == (201, True, "yes")  # headers read case-insensitively
    assert posted.content.decode() == f"POST /echo?a=1&b=2 k=v application/x-www-form-urlencoded yibao- {host}"
    assert chunked.content == b"one,two,three"
    assert zipped.content == b"statement rows"


def test_a_kept_connection_the_server_closed_while_idle_is_not_reused():
    def once_then_close(conn: socket.socket) -> None:  # answers one request with keep-alive, then hangs up
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = RawServer(once_then_close)
    try:
        async def story() -> list[bytes]:
            async with channel_http.pooled():
                first = await channel_http.send("test", server.url, "GET", "/", b"", {}, 10.0)
                pool = channel_http._pools[asyncio.get_running_loop()]
                kept = next(c for conns in pool.idle.values() for c in conns)
                deadline = asyncio.get_running_loop().time() + 30
                while not kept.reader.at_eof():  # until the hang-up has reached the loop (a condition, polled)
                    assert asyncio.get_running_loop().time() < deadline, "the server's hang-up never arrived"
                    await asyncio.sleep(0.01)
                second = await channel_http.send("test", server.url, "GET", "/", b"", {}, 10.0)
                return [first.content, second.content]

        assert asyncio.run(story()) == [b"ok", b"ok"]
        assert server.accepted == 2  # the second call opened a new connection instead of writing into the closed one
    finally:
        server.close()


@pytest.mark.parametrize("script, code", [
    (lambda conn: (_read_request(conn), conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")), "unreachable"),
    (lambda conn: (_read_request(conn), conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")), "unreachable"),
    (lambda conn: (_read_request(conn), conn.recv(1)), "timeout"),  # reads the request, never answers, until the client leaves
])
def test_a_broken_or_silent_answer_is_an_unknown_outcome_never_a_failure(script, code):
    server = RawServer(script)
    try:
        async def story() -> None:
            async with channel_http.pooled():
                with pytest.raises(OutcomeUnknown) as unknown:
                    await channel_http.send("test", server.url, "POST", "/pay", b"{}", {}, 1.0)
                assert unknown.value.code == code
                assert not any(channel_http._pools[asyncio.get_running_loop()].idle.values())  # nothing broken is kept

        asyncio.run(story())
    finally:
        server.close()


def test_a_call_nobody_answers_is_an_unknown_outcome_inside_pooled():
    async def story() -> None:
        async with channel_http.pooled():
            with pytest.raises(OutcomeUnknown):
                await channel_http.send("test", "http://127.0.0.1:9", "GET", "/", b"", {}, 1.0)

    asyncio.run(story())


def test_a_large_answer_that_keeps_arriving_is_not_cut_off_by_the_timeout():
    """The timeout bounds each wait, as httpx's did: a statement arriving over longer than ``timeout`` is read whole."""
    def slow(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
        for piece in (b"def", b"ghi"):
            threading.Event().wait(0.9)  # the institution's pace (what is under test), each gap well inside the timeout
            conn.sendall(piece)

    server = RawServer(slow)
    try:
        answer = asyncio.run(channel_http.send("test", server.url, "GET", "/bill", b"", {}, 1.5))
        assert answer.content == b"abcdefghi"
    finally:
        server.close()


def test_an_empty_compressed_answer_is_empty_and_the_target_is_made_valid(port_server):
    async def story():  # noqa: ANN202
        spaced = await channel_http.send("test", port_server, "POST", "/echo?q=a b", b"", {}, 10.0)
        no_path = await channel_http.send("test", port_server + "/echo", "POST", "?x=1", b"", {}, 10.0)
        return spaced, no_path

    spaced, no_path = asyncio.run(story())
    assert spaced.content.decode().startswith("POST /echo?q=a%20b ")  # percent-encoded as httpx would, not refused
    assert no_path.content.decode().startswith("POST /echo?x=1 ")  # the base URL's path, then the query
    assert channel_http._decoded(b"", "gzip") == b""  # a 204 or an empty refusal claiming gzip is still an answer
    assert channel_http._decoded(gzip.compress(b"x"), "GZIP") == b"x"


def test_bytes_after_an_answer_end_its_connection():
    """A second answer nobody asked for, in the same read, is never taken as the next call's answer."""
    def two_answers(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
        conn.recv(1)  # until the client hangs up

    server = RawServer(two_answers)
    try:
        async def story() -> list[bytes]:
            async with channel_http.pooled():
                first = await channel_http.send("test", server.url, "GET", "/", b"", {}, 5.0)
                assert not any(channel_http._pools[asyncio.get_running_loop()].idle.values())  # not kept
                return [first.content]

        assert asyncio.run(story()) == [b"first"]
    finally:
        server.close()


class Scripted:
    """A raw server that answers each request, on whichever connection it comes, with the next of ``answers`` (bytes
    written as they are, in one write), and records what it received; a ``None`` after an answer: it hangs up once
    that answer is written."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.server = RawServer(self._script)
        self.url = self.server.url

    def _script(self, conn: socket.socket) -> None:
        buffered = b""
        while self.answers:
            while b"\r\n\r\n" not in buffered:
                chunk = conn.recv(65536)
                if not chunk:
                    if buffered:
                        self.requests.append(buffered)
                    return
                buffered += chunk
            head, _, rest = buffered.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + rest[:length])
            buffered = rest[length:]
            conn.sendall(self.answers.pop(0))
            if self.answers and self.answers[0] is None:
                self.answers.pop(0)
                return

    def close(self) -> None:
        self.server.close()


def _calls(url: str, *calls: tuple[str, str, dict[str, str]]) -> tuple[list, list[int]]:
    """The calls in turn inside one `pooled()` block: their answers (or the OutcomeUnknown raised), and after each how many
    connections were kept idle."""
    async def story() -> tuple[list, list[int]]:
        results, kept = [], []
        async with channel_http.pooled():
            pool = channel_http._pools[asyncio.get_running_loop()]
            for method, path, headers in calls:
                try:
                    results.append(await channel_http.send("test", url, method, path, b"", headers, 5.0))
                except OutcomeUnknown as exc:
                    results.append(exc)
                kept.append(sum(len(c) for c in pool.idle.values()))
        return results, kept

    return asyncio.run(story())


GET = ("GET", "/", {})


@pytest.mark.parametrize("first, content, kept", [  # a None after the answer: the server hangs up once it is written
    # chunked, in pieces of one write, with a chunk extension and a trailer field: read whole, the connection kept
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\nX-T: 1\r\n\r\n",
     b"one,two,three", 1),
    # informational answers before the answer: skipped, their fields not the answer's
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     b"ok", 1),
    # 204 and 304 have no body whatever they claim; kept
    (b"HTTP/1.1 204 No Content\r\n\r\n", b"", 1),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", b"", 1),
    # framed by the close (HTTP/1.0, or 1.1 with neither length nor chunks): whole at the end of the stream, not kept
    ([b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", None], b"until the end", 0),
    ([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", None], b"until the end", 0),
    # the server says it will not keep the connection: not kept
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", b"ok", 0),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", 0),
    # HTTP/1.0 that asks to keep it alive, with a length: kept (h11 closed every HTTP/1.0 connection)
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", b"ok", 1),
    # compressed though identity was asked: undone
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + str(len(gzip.compress(b"rows"))).encode() + b"\r\n\r\n"
     + gzip.compress(b"rows"), b"rows", 1),
])
def test_each_framing_of_an_answer_is_read_whole_and_the_connection_kept_only_when_it_may_carry_another(first, content, kept):
    first = first if isinstance(first, list) else [first]
    server = Scripted([*first, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"])
    try:
        results, idle = _calls(server.url, GET, GET)
        assert [r.content for r in results] == [content, b"next"]
        assert results[0].status_code == int(first[0].rsplit(b"HTTP/1.", 1)[1][2:5])
        assert idle[0] == kept
        assert server.server.accepted == 2 - kept  # the second call came on the kept connection, or on a new one
        assert "link" not in results[0].headers
    finally:
        server.close()


def test_the_answer_to_a_head_has_no_body_and_its_connection_carries_the_next_call():
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    try:
        results, idle = _calls(server.url, ("HEAD", "/bill", {}), GET)
        assert [(r.status_code, r.content, r.headers["content-length"]) for r in results] == [(200, b"", "5000"), (200, b"ok", "2")]
        assert idle == [1, 1] and server.server.accepted == 1
    finally:
        server.close()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\none,\r\n",  # chunks, then the hang-up before the last
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # hangs up inside the head
    b"",  # hangs up having read the request
    # a field folded onto a second line: obsolete (RFC 9112 5.2), which h11 unfolded and llhttp refuses
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Folded: a\r\n b\r\n\r\nok",
])
def test_a_server_that_hangs_up_mid_answer_or_speaks_no_http_leaves_an_unknown_outcome(answer):
    server = Scripted([answer, None])
    try:
        results, idle = _calls(server.url, GET)
        assert isinstance(results[0], OutcomeUnknown)
        assert (results[0].code, idle) == ("unreachable", [0])
        assert "RemoteProtocolError" in str(results[0])
    finally:
        server.close()


def test_an_answer_beyond_the_bound_is_refused(monkeypatch):
    monkeypatch.setattr(channel_http, "MAX_ANSWER", 1000)
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000,
                       b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n",
                       b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2000])
    try:
        results, idle = _calls(server.url, GET, GET, GET)
        assert [(type(r), r.code) for r in results] == [(OutcomeUnknown, "unreachable")] * 3 and idle == [0, 0, 0]
    finally:
        server.close()


def test_an_answer_head_that_never_ends_is_refused():
    server = Scripted([b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"y" * 70000 + b"\r\n"])
    try:
        results, _ = _calls(server.url, GET)
        assert isinstance(results[0], OutcomeUnknown) and results[0].code == "unreachable"
    finally:
        server.close()


@pytest.mark.parametrize("headers", [
    {"X-Note": "a\r\nX-Injected: 1"},  # a CR LF in a value would add a field
    {"X-Note": "a\nb"},
    {"X-Note\r\nX-Injected": "1"},  # in a name
    {"X Note": "1"},  # a name that is not a token
    {"X-Note:": "1"},
    {"X-Note": "付款"},  # not ASCII: how it would be read is anyone's guess
    {"X-Note": "\x00"},
])
def test_a_header_that_would_break_the_request_is_refused_and_nothing_is_sent(headers):
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    try:
        results, _ = _calls(server.url, ("GET", "/", headers))
        assert isinstance(results[0], OutcomeUnknown) and results[0].code == "unreachable"
        assert b"X-Injected" not in b"".join(server.requests) and not any(server.requests)
    finally:
        server.close()


def test_the_request_is_written_as_an_institution_expects_it():
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"] * 2)
    try:
        async def story() -> None:
            async with channel_http.pooled():
                await channel_http.send("test", server.url + "/gw", "POST", "/pay?a=1", b'{"x":1}',
                                        {"Content-Type": "application/json", "Authorization": 'SIGN k="v", t=1'}, 5.0)
                await channel_http.send("test", server.url, "GET", "/q", b"", {"User-Agent": "bank-sdk/2", "Accept": "application/json"}, 5.0)

        asyncio.run(story())
        host = server.url.removeprefix("http://")
        assert server.requests == [
            f"POST /gw/pay?a=1 HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAuthorization: SIGN k=\"v\", t=1\r\n"
            f"User-Agent: yibao-connector/1\r\nAccept: */*\r\nAccept-Encoding: identity\r\nContent-Length: 7\r\n\r\n{{\"x\":1}}".encode(),
            f"GET /q HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bank-sdk/2\r\nAccept: application/json\r\nAccept-Encoding: identity\r\n\r\n".encode(),
        ]
    finally:
        server.close()


def test_answer_headers_read_as_httpx_headers_were():
    server = Scripted([b"HTTP/1.1 200 OK\r\nWechatpay-Nonce: n1\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Pad:  spaced  \r\n"
                       b"Content-Length: 0\r\n\r\n"])
    try:
        results, _ = _calls(server.url, GET)
        headers = results[0].headers
        assert headers.get("WECHATPAY-NONCE") == headers["wechatpay-nonce"] == "n1" and "Wechatpay-Nonce" in headers
        assert headers.get("missing") is None and headers.get("missing", "-") == "-" and "missing" not in headers
        assert dict(headers.items()) == {"wechatpay-nonce": "n1", "set-cookie": "a=1, b=2", "x-pad": "spaced", "content-length": "0"}
        assert list(headers) == ["wechatpay-nonce", "set-cookie", "x-pad", "content-length"] and len(headers) == 4
        assert {k.lower(): v for k, v in headers.items()}["set-cookie"] == "a=1, b=2"  # as the connectors' transformers read them
        assert dict(channel_http.Headers([("A", "1"), ("a", "2")])) == {"a": "1, 2"}
    finally:
        server.close()
