"""The sandbox payment institutions as real HTTP servers on 127.0.0.1, and a platform-side receiver.

Fixtures:
- ``channel_world`` (session): every sandbox institution running under uvicorn on a loopback port,
  with notifications resent after 10/20/40 ms, all posting to one callback server that verifies
  and deduplicates them with `NotificationReceiver` and records what it got.
- ``wxpay``, ``alipay``, ``unionpay``, ``bank``: a `Live` handle — ``.channel`` (the platform's
  connector), ``.runtime`` (the sandbox as a Python object: knobs, books, notifier), ``.url``,
  ``.receipts`` (what the callback server received, this test only) — with knobs reset.

Registered for every test by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

TEST_NOTIFY_DELAYS_MS = (10, 20, 40)
# How long the platform's connectors wait for a sandbox: room for a loaded 2-core CI machine (1 s once
# was not enough). A test that needs a lost answer makes the sandbox hang for HANG_MS: just past the client's wait,
# since the hung request holds the sandbox's trade lock and the next test's calls wait for what is left of it.
CLIENT_TIMEOUT_S = 5.0
HANG_MS = 5_500


def serve_in_thread(app: Any, name: str) -> tuple[str, Any, threading.Thread, socket.socket]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server, thread, sock


@dataclass
class Callbacks:
    """The platform side of notifications in tests: one receiver per institution, and what each got."""

    receivers: dict[str, Any] = field(default_factory=dict)
    receipts: dict[str, list[Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Any:
        app = FastAPI(title="test platform callbacks")

        @app.post("/notify/{name}")
        async def notify(name: str, request: Request) -> Response:
            receipt = self.receivers[name].receive(dict(request.headers), await request.body())
            with self.lock:
                self.receipts.setdefault(name, []).append(receipt)
            return Response(receipt.ack.body, status_code=receipt.ack.status_code, media_type=receipt.ack.media_type)

        return app


@dataclass
class Live:
    name: str
    url: str
    channel: Any
    runtime: Any
    callbacks: Callbacks

    @property
    def receipts(self) -> list[Any]:
        with self.callbacks.lock:
            return list(self.callbacks.receipts.get(self.name, []))

    def fresh(self) -> list[Any]:
        """Notifications verified and new: what the platform would act on."""
        return [r.notification for r in self.receipts if r.fresh]

    async def flush(self) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.post(f"{self.url}/sandbox/notifications/flush")
        resp.raise_for_status()
        return resp.json()

    async def knobs(self, **patch: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.put(f"{self.url}/sandbox/knobs", json=patch)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        from yibao.channels.receiver import NotificationReceiver

        self.runtime.reset()
        with self.callbacks.lock:
            self.callbacks.receivers[self.name] = NotificationReceiver(self.channel)
            self.callbacks.receipts[self.name] = []


@pytest.fixture(scope="session")
def channel_world():
    from yibao.channels.receiver import NotificationReceiver
    from yibao.sandbox.channels import NAMES, pair

    callbacks = Callbacks()
    cb_url, cb_server, cb_thread, cb_sock = serve_in_thread(callbacks.app(), "test-callbacks")
    running, lives = [], {}
    for name in NAMES:
        p = pair(name, callback_url=f"{cb_url}/notify/{name}", seed=20261122, notify_delays_ms=TEST_NOTIFY_DELAYS_MS)
        url, server, thread, sock = serve_in_thread(p.app, f"sandbox-{name}")
        running.append((server, thread, sock))
        channel = p.connector(url, timeout=CLIENT_TIMEOUT_S)
        callbacks.receivers[name] = NotificationReceiver(channel)
        lives[name] = Live(name, url, channel, p.runtime, callbacks)
    yield lives
    for server, thread, sock in [*running, (cb_server, cb_thread, cb_sock)]:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _live(channel_world: dict[str, Live], name: str):
    live = channel_world[name]
    live.reset()
    yield live
    live.reset()


@pytest.fixture
def wxpay(channel_world):
    yield from _live(channel_world, "wxpay")


@pytest.fixture
def alipay(channel_world):
    yield from _live(channel_world, "alipay")


@pytest.fixture
def unionpay(channel_world):
    yield from _live(channel_world, "unionpay")


@pytest.fixture
def bank(channel_world):
    yield from _live(channel_world, "bank")
