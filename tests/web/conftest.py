"""The pages in a real browser: Debian's Chromium driven by Playwright, against the app served by
uvicorn on 127.0.0.1 in a thread, with the demo world loaded.

Chromium must be at /usr/bin/chromium (`.ci/run` installs Debian's `chromium` package when it is
missing). Without it these tests fail, saying how to install it; they are skipped only when
YIBAO_SKIP_BROWSER=1 is set explicitly (and the run's summary says so), Chromium or not. Playwright's own browser
download is not used (`executable_path` is set).

The server's clock is real time plus an offset the tests can move forward (`live.clock.advance`):
the sandbox SMS gateway sends one code per phone per 30 s, and a test that logs in again skips
ahead rather than waiting.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.db import PG_URL
from tests.support.pages import DESKTOP, PHONE

CHROMIUM = os.environ.get("YIBAO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SKIP_BROWSER = os.environ.get("YIBAO_SKIP_BROWSER") == "1"
PG_SCHEMA = "yibao_web_tests"
_skipped = {"browser": False}


class ShiftedClock:
    """Real time plus an offset: pages count down in real seconds, tests jump over waits."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, **kw: float) -> None:
        with self._lock:
            self.offset += timedelta(**kw)


@dataclass
class Live:
    url: str
    db: object
    keyring: object
    clock: ShiftedClock
    people: dict[str, dict]  # demo people by name
    app: object = None  # the served app: a test reaches the mounted sandboxes' books through it (app.state.sandbox_institutions)

    def psn(self, name: str) -> str:
        return self.people[name]["psn_no"]


def _in_thread(fn):  # noqa: ANN001, ANN202
    """Run ``fn`` on a thread of its own: the demo loader uses asyncio.run, and Playwright's sync API
    keeps an event loop running on this one once the browser is up."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 — re-raised below, on the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _serve(app, sock):  # noqa: ANN001, ANN202
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web test server did not start")
        time.sleep(0.01)
    return server, thread, sock


def pytest_configure(config):
    config.addinivalue_line("markers", "both_databases: run this page test against PostgreSQL too (not only SQLite)")


def pytest_generate_tests(metafunc):
    """Page tests run on SQLite; those marked both_databases (the money flows) on PostgreSQL as well.
    A browser test costs seconds, so the rest, which exercise pages rather than storage, run once."""
    if "live" in metafunc.fixturenames:
        kinds = ["sqlite", "postgresql"] if metafunc.definition.get_closest_marker("both_databases") else ["sqlite"]
        metafunc.parametrize("live", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def live(request, tmp_path_factory):
    """The platform with the demo world, served over HTTP; once per database kind."""
    from sqlalchemy import text

    from yibao.app import create_app
    from yibao.crypto.pii import Keyring
    from yibao.sandbox import demo
    from yibao.store.anchors import AnchorLog
    from yibao.store.db import Database

    clock = ShiftedClock()
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('web')}/yibao-web.db", clock=clock)
        db.create_all()
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL not configured: set YIBAO_TEST_POSTGRES_URL (.ci/run does)")
        # A schema of its own: the storage tests truncate the default one between tests while this
        # server (session-scoped) is still serving.
        admin = Database(PG_URL)
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
        admin.dispose()
        sep = "&" if "?" in PG_URL else "?"
        db = Database(f"{PG_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}", clock=clock)
        db.create_all()
    keyring = Keyring(bytes(range(32)))
    guide = _in_thread(lambda: demo.ensure(db, keyring))
    sock = _socket()
    port = sock.getsockname()[1]
    # The SANDBOX payment institutions and face verifier are mounted in this app and reached over HTTP at
    # its own address, as `yibao serve` does; the start-up hooks point the demo's institutions at them.
    # (create_app points its face verifier at the mounted one when no other is configured.)
    # Its own audit anchor file: the anchors belong to one database (the SQLite and PostgreSQL servers run side by side).
    anchors = AnchorLog(tmp_path_factory.mktemp(f"anchors-{request.param}") / "audit-anchors.log")
    # It waits for its mounted sandboxes as every test's connector does (room for a loaded machine: once a CI run's
    # call to the mounted WeChat Pay took 5.6 s, past the demo's 5 s); no page test needs a lost answer.
    app = create_app(db, keyring=keyring, sandboxes=True, base_url=f"http://127.0.0.1:{port}", audit_anchor=anchors,
                     sandbox_timeout_s=CLIENT_TIMEOUT_S)
    for hook in app.state.on_start:
        _in_thread(hook)
    server, thread, sock = _serve(app, sock)
    yield Live(f"http://127.0.0.1:{port}", db, keyring, clock, {p["name"]: p for p in guide.people}, app)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    db.dispose()


@pytest.fixture(scope="session")
def browser():
    if SKIP_BROWSER:
        _skipped["browser"] = True
        pytest.skip("YIBAO_SKIP_BROWSER=1: browser tests skipped on request")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: the page tests need it. Install Debian's package "
                    "(`sudo apt-get install -y chromium`; .ci/run does this), or set YIBAO_SKIP_BROWSER=1 to skip them explicitly.",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Waits, not timings: an expectation holds as soon as the page shows it; the limit only bounds a
# failing wait on a loaded two-core machine.
expect.set_options(timeout=15_000)

@pytest.fixture
def phone(browser, live):
    """A phone-sized browser context for the holder's app."""
    context = browser.new_context(viewport=PHONE, base_url=live.url, device_scale_factor=1, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def desktop(browser, live):
    context = browser.new_context(viewport=DESKTOP, base_url=live.url)
    context.set_default_timeout(15_000)
    yield context
    context.close()


def pytest_terminal_summary(terminalreporter):
    if _skipped["browser"]:
        terminalreporter.write_line("Browser: page tests SKIPPED on request (YIBAO_SKIP_BROWSER=1) — the pages were not tested in Chromium")
