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
# How long the platform's connectors (and a test's own calls) wait for a sandbox: room for a loaded 2-core CI machine,
# where 1 s and then 5 s were each once not enough (a call stalled past 5 s twice in CI). A test that needs a lost
# answer does not wait it out: the sandbox books the effect and cuts the connection mid-answer (cut_answer_rate).
# The client's own timeout is tested at 1 s against a silent server (tests/adapters/channels/test_http_pool.py).
CLIENT_TIMEOUT_S = 30.0


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
    raw: dict[str, list[tuple[dict[str, str], bytes]]] = field(default_factory=dict)  # as they arrived: for the platform's own receiver
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Any:
        app = FastAPI(title="test platform callbacks")

        @app.post("/notify/{name}")
        async def notify(name: str, request: Request) -> Response:
            headers, body = dict(request.headers), await request.body()
            receipt = self.receivers[name].receive(headers, body)
            with self.lock:
                self.receipts.setdefault(name, []).append(receipt)
                self.raw.setdefault(name, []).append((headers, body))
            return Response(receipt.ack.body, status_code=receipt.ack.status_code, media_type=receipt.ack.media_type)

        return app


@dataclass
class Live:
    name: str
    url: str
    channel: Any
    runtime: Any
    callbacks: Callbacks
    notify_url: str = ""  # the callback server's URL for this institution (signings name it)

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
            self.callbacks.raw[self.name] = []

    def raw_notifications(self) -> list[tuple[dict[str, str], bytes]]:
        """Every notification this institution sent the callback server (this test), as it arrived."""
        with self.callbacks.lock:
            return list(self.callbacks.raw.get(self.name, []))


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
        lives[name] = Live(name, url, channel, p.runtime, callbacks, f"{cb_url}/notify/{name}")
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


# ---- the holder on the institution's signing page ----------------------------------------------------

async def play_holder(start: Any, decision: str = "confirm") -> httpx.Response:
    """Be the holder: open what `start_signing` gave (GET the URL, or post UnionPay's form as the browser would), check
    the page shows the merchant and the limit, and confirm or decline on it. Returns the page's answer to the choice
    (a 303 to the return URL, or the result page)."""
    import re
    from urllib.parse import urljoin

    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        page = await (client.get(start.url) if start.method == "GET" else client.post(start.url, data=dict(start.form)))
        assert page.status_code == 200, page.text
        assert "免密支付签约" in page.text and 'id="merchant"' in page.text and 'id="limit"' in page.text, page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None, page.text
        return await client.post(urljoin(start.url, action.group(1)), data={"decision": decision})


async def sign_on_page(channel: Any, req: Any, *, decision: str = "confirm") -> Any:
    """Sign ``req`` the way a holder does: `start_signing`, the holder confirms on the sandbox's page, then the
    institution's truth by `query_agreement`. A bank enrols with consent instead (no page)."""
    if channel.name == "bank":
        from yibao.channels.bank.connector import CreditConsent

        return await channel.enrol(req, CreditConsent(channel.config.consent_version, channel._clock()))
    await play_holder(await channel.start_signing(req), decision)
    return await channel.query_agreement(req.out_agreement_no)


def signing_request(live: Live, out_agreement_no: str, token: str, limit_fen: int, **kw: Any) -> Any:
    from yibao.channels.base import AgreementRequest

    return AgreementRequest(out_agreement_no, token, limit_fen, notify_url=kw.pop("notify_url", live.notify_url), **kw)


def replay_sandbox_keys(monkeypatch: Any, keys: list[Any]) -> None:
    """`pair()` draws fresh RSA key pairs (0.1–0.2 s each; eight for the sandboxes one app mounts). A test module whose
    tests each build one such app keeps ``keys`` (module-scoped) and replays them: the n-th key a test draws is the n-th
    any test drew, made on first use. One app's keys stay distinct from each other, as fresh ones are; only the tests
    share them, and no test of such a module holds two apps."""
    import itertools

    from yibao.channels.crypto import generate_rsa_key
    from yibao.sandbox import channels as sandbox_channels
    from yibao.sandbox.channels import unionpay as sandbox_unionpay

    drawn = itertools.count()

    def replayed() -> Any:
        n = next(drawn)
        while len(keys) <= n:
            keys.append(generate_rsa_key())
        return keys[n]

    monkeypatch.setattr(sandbox_channels, "generate_rsa_key", replayed)
    monkeypatch.setattr(sandbox_unionpay, "generate_rsa_key", replayed)
