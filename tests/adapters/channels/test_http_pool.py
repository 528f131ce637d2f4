"""channels/http.py keeps institutions' connections per event loop inside `pooled()` (the app's lifespan), and opens
one per call outside it; it speaks HTTP/1.1 itself (h11 on asyncio streams). A server that answers with the client's
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
