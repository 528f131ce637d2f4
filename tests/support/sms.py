"""The SANDBOX SMS gateway as a real HTTP server on 127.0.0.1, and reading what it "sent".

Fixtures:
- ``sms_sandbox`` (session): the running gateway — ``.url``, ``.key``, ``.state`` (its knobs and its memory);
- ``sms_gateway``: the platform's ``SmsGateway`` client for it, the gateway's memory emptied and knobs reset.

Helpers read the gateway over HTTP, as the demo visitor does (`GET /messages?phone=`): ``texts_to(url, phone)``,
``latest_code(url, phone)``; for an app, ``gateway_url(app)`` is where its platform sends.

Registered for every test by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

SMS_KEY = "test-sms-key-shared-with-the-platform"


@dataclass
class SmsSandbox:
    url: str
    key: str
    state: object  # yibao.sandbox.sms.SmsSandboxState

    def reset(self) -> None:
        from yibao.sandbox.sms import Knobs

        self.state.knobs = Knobs()  # type: ignore[attr-defined]
        self.state.messages.clear()  # type: ignore[attr-defined]


def texts_to(base_url: str, phone: str, limit: int = 50) -> list[str]:
    """What the gateway at ``base_url`` sent to ``phone``, newest first."""
    r = httpx.get(f"{base_url.rstrip('/')}/messages", params={"phone": phone, "limit": limit}, timeout=10.0)
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json()["items"]]


def latest_code(base_url: str, phone: str) -> str:
    """The 6-digit code in the latest text to ``phone``."""
    texts = texts_to(base_url, phone)
    assert texts, f"no text was sent to {phone}"
    return re.search(r"(\d{6})", texts[0]).group(1)


def gateway_url(app) -> str:  # noqa: ANN001
    """Where the app's platform sends its texts (its SMS gateway's base URL)."""
    gateway = app.state.platform.sms
    assert gateway is not None, "the app has no SMS gateway: give create_app sms_gateway= (the sms_gateway fixture)"
    return gateway.base_url


def gateway_of(client) -> str:  # noqa: ANN001
    """The SMS gateway a test client's platform sends through: the app's (a TestClient), or — for an HTTP client
    of a served demo — the SANDBOX gateway mounted beside it at /sandbox/sms."""
    app = getattr(client, "app", None)
    if app is not None and hasattr(app, "state"):
        return gateway_url(app)
    return f"{str(client.base_url).rstrip('/')}/sandbox/sms"


@pytest.fixture(scope="session")
def sms_sandbox():
    import uvicorn

    from yibao.sandbox.sms import create_app

    app = create_app(SMS_KEY, seed=7)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sms-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the SMS sandbox did not start")
        time.sleep(0.01)
    yield SmsSandbox(f"http://127.0.0.1:{port}", SMS_KEY, app.state.sandbox)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def sms_gateway(sms_sandbox):
    from yibao.sms import SmsGateway

    sms_sandbox.reset()
    yield SmsGateway(sms_sandbox.url, sms_sandbox.key, timeout=10.0)
    sms_sandbox.reset()
