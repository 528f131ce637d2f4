"""channels/http.py keeps institutions' connections per event loop inside `pooled()` (the app's lifespan), and opens
one per call outside it. A server that answers with the client's port tells which TCP connection carried a call."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.channels import serve_in_thread
from yibao.channels import OutcomeUnknown
from yibao.channels import http as channel_http


async def _port_app(scope, receive, send):  # noqa: ANN001
    if scope["type"] != "http":
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


async def _port(url: str) -> int:
    resp = await channel_http.send("test", url, "GET", "/", b"", {}, 5.0)
    return int(resp.text)


def test_calls_on_one_loop_reuse_their_connections_inside_pooled(port_server):
    shards = channel_http.SHARDS

    async def story() -> tuple[list[int], list[int]]:
        async with channel_http.pooled():
            inside = [await _port(port_server) for _ in range(3 * shards)]
        after = [await _port(port_server) for _ in range(2)]
        return inside, after

    inside, after = asyncio.run(story())
    assert len(set(inside)) == shards, inside  # one kept connection per client carried all the calls
    assert inside[:shards] == inside[shards:2 * shards] == inside[2 * shards:]  # the clients taken in turn
    assert len(set(after)) == 2 and not set(after) & set(inside), after  # outside the pool: a connection per call


def test_each_loop_has_its_own_clients_and_the_pool_closes_them(port_server):
    async def story() -> tuple[int, object]:
        async with channel_http.pooled():
            port = await _port(port_server)
            pool = channel_http._pools[asyncio.get_running_loop()]
            clients = list(pool.clients.values())
        assert asyncio.get_running_loop() not in channel_http._pools
        assert all(c.is_closed for c in clients)  # closed when the block ended, on the loop that owns their sockets
        return port, clients[0]

    first_port, first_client = asyncio.run(story())
    second_port, second_client = asyncio.run(story())
    assert first_client is not second_client and first_port != second_port


def test_nested_pooled_blocks_keep_the_clients_until_the_outer_one_ends(port_server):
    async def story() -> None:
        async with channel_http.pooled():
            async with channel_http.pooled():
                first = [await _port(port_server) for _ in range(channel_http.SHARDS)]
            assert [await _port(port_server) for _ in range(channel_http.SHARDS)] == first  # the inner block's end closed nothing

    asyncio.run(story())


def test_a_call_nobody_answers_is_an_unknown_outcome_inside_pooled():
    async def story() -> None:
        async with channel_http.pooled():
            with pytest.raises(OutcomeUnknown):
                await channel_http.send("test", "http://127.0.0.1:9", "GET", "/", b"", {}, 1.0)

    asyncio.run(story())
