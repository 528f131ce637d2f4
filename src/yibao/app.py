"""The composition root: builds the platform and the web application — the REST API (OpenAPI at /docs),
the pages, and for the demo the sandbox wing — and the background jobs. The CLI builds its context the
same way (`Context.for_database`). Nothing else wires the parts together.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from yibao import api, web
from yibao.channels import http as channel_http
from yibao.crypto.pii import Keyring, load_keyring
from yibao.face import FaceVerifier, verifier_from_env
from yibao.fsi import gateway as fsi
from yibao.observe import logs
from yibao.observe.metrics import RequestMiddleware
from yibao.runtime import production, scrape
from yibao.runtime.platform import Platform, operator_tokens_from_env
from yibao.services.agency.connectors import Connectors
from yibao.sms import SmsGateway, gateway_from_env
from yibao.store.anchors import AnchorLog
from yibao.store.db import Database

log = logging.getLogger("yibao")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up hooks (the demo's channel configuration), then payment recovery and the audit anchor as background
    tasks (the anchor checkpoints once more when the task is cancelled at shutdown); institutions' connections are
    kept open while the app serves (channels/http.py)."""
    async with channel_http.pooled():  # institutions' connections kept on this loop, closed after the tasks stop
        async with _background(app):
            yield


@asynccontextmanager
async def _background(app: FastAPI) -> AsyncIterator[None]:
    for hook in app.state.on_start:
        hook()
    tasks = []
    platform = app.state.platform
    if platform.anchors is not None and app.state.anchor_interval:
        from yibao.services.books import audit

        tasks.append(asyncio.create_task(audit.anchor_periodically(platform.run, platform.anchors, app.state.anchor_interval)))
    interval = app.state.recovery_interval
    if interval:
        from yibao.services.payments import recovery

        tasks.append(asyncio.create_task(recovery.run_periodically(app.state.platform.context, interval)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass


def create_app(db: Database | None = None, *, keyring: Keyring | None = None, demo: bool = False,
               face_verifier: FaceVerifier | None = None, sandboxes: bool = False, base_url: str | None = None,
               recovery_interval: float | None = None, channel_transport: Any = None, sms_gateway: SmsGateway | None = None,
               audit_anchor: AnchorLog | None = None, anchor_interval: float | None = None,
               allow_private_callbacks: bool = False, sandbox_timeout_s: float = 5.0) -> FastAPI:
    """The platform; production unless told otherwise.

    ``demo`` accepts the demo's operator tokens (when YIBAO_ADMIN_TOKENS names none); production refuses weak
    operator tokens (runtime/production.py) and never knows the demo's. ``sandboxes`` mounts the sandbox wing (face
    verifier, SMS gateway, payment institutions, the pages' demo aids) at ``base_url`` (default $YIBAO_BASE_URL) — the
    demo's, so it implies ``demo``; the platform waits ``sandbox_timeout_s`` for each of them. ``face_verifier`` and
    ``sms_gateway`` default to the ones configured in the environment (else, with ``sandboxes``, the mounted
    sandboxes; else none). ``allow_private_callbacks`` lets
    hospitals' callbacks go to loopback and private addresses over plain HTTP (tests, the demo); production posts
    only to public HTTPS addresses. ``recovery_interval`` (seconds) runs payment recovery in the background;
    ``channel_transport`` (an httpx transport) carries every call to a payment institution or credit bank (tests
    record the wire with it). ``audit_anchor`` is the file the audit chain's heads are checkpointed to (default
    $YIBAO_AUDIT_ANCHOR): at start, every ``anchor_interval`` seconds (default $YIBAO_AUDIT_ANCHOR_INTERVAL, 60), at
    shutdown and on every verify (0: on verify only)."""
    demo = demo or sandboxes
    db = db or Database()
    keyring = keyring or load_keyring(create=demo)
    platform = Platform(db=db, keyring=keyring, operator_tokens=operator_tokens_from_env(demo),
                        connectors=Connectors(keyring, transport=channel_transport), face=face_verifier or verifier_from_env(),
                        sms=sms_gateway or gateway_from_env(), anchors=audit_anchor or AnchorLog.from_env(),
                        allow_private_callbacks=allow_private_callbacks)
    app = FastAPI(title="yibao 医保", version="0.2.0", description=api.DESCRIPTION, docs_url=None, redoc_url=None, lifespan=_lifespan)
    app.state.platform = platform
    app.state.on_start: list[Callable[[], None]] = []
    app.state.recovery_interval = recovery_interval
    app.state.anchor_interval = float(os.environ.get("YIBAO_AUDIT_ANCHOR_INTERVAL", "60")) if anchor_interval is None else anchor_interval
    api.install(app)
    fsi.install(app)  # the national interface envelope: a sibling entrypoint over the same services
    aids = None
    if sandboxes:
        from yibao import sandbox

        base = (base_url or os.environ.get("YIBAO_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        aids = sandbox.install(app, platform, base, timeout_s=sandbox_timeout_s)
    # The pages (/app, /cashier, /admin): after the API, whose error handlers they wrap for their own paths.
    web.install(app, aids=aids)
    api.install_docs(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "database": db.dialect}

    # Prometheus's scrape, behind its own token (runtime/scrape.py; docs/security.md).
    app.state.metrics_token = scrape.metrics_token(demo)
    app.add_api_route("/metrics", scrape.endpoint, methods=["GET"], include_in_schema=False)
    # Outermost: every request's id (X-Request-ID), its access line and its metrics (observe/metrics.py).
    app.add_middleware(RequestMiddleware)
    log.setLevel(logging.INFO)
    return app


def app_from_env() -> FastAPI:
    """The factory `yibao serve` hands to uvicorn (one per worker process): configuration from the environment.
    Production unless YIBAO_DEMO=1 (`yibao serve --demo` sets it after checking the database is the demo's);
    production refuses to build without what it needs (runtime/production.py)."""
    demo = os.environ.get("YIBAO_DEMO", "0") == "1"
    logs.configure(logs.format_from_env("text" if demo else "json"))  # JSON lines in production; `yibao serve --log-format`
    interval = float(os.environ.get("YIBAO_RECOVERY_INTERVAL", "30"))  # seconds; 0 turns background recovery off
    db = Database()
    if not demo:
        missing = production.problems(sqlite_path=db.sqlite_path) or production.database_problems(db)
        if missing:
            raise SystemExit("\n".join(f"yibao: {problem.describe()}" for problem in missing))
    app = create_app(db, keyring=load_keyring(create=demo), demo=demo, sandboxes=demo, recovery_interval=interval or None,
                     allow_private_callbacks=demo)
    # A serving process: move what start-up built (modules, policies, routes) out of the collector's
    # sight and collect the young generation less often. Full collections walking those objects
    # stalled every request in flight: p99 at 32 clients 135 ms -> 72 ms (bench/api.py).
    gc.freeze()
    gc.set_threshold(20_000, 50, 1_000)
    return app
