"""The yibao web application: REST API (OpenAPI at /docs), the pages (yibao.web) and, for the demo, the sandboxes."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Mapping

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from yibao import face, web
from yibao.api import errors
from yibao.api.routers import admin, channels, his, patient
from yibao.api.routers import credit as credit_routes
from yibao.channels.bank.connector import BankChannel
from yibao.crypto.pii import Keyring, load_keyring
from yibao.face import FaceVerifier
from yibao.runtime.platform import Platform, operator_tokens_from_env
from yibao.store.db import Database

DEMO_FACE_KEY = "demo-face-sandbox-key"  # the demo's shared key with its own sandbox verifier
DESCRIPTION = """医保便捷支付平台 yibao — medical-insurance convenient payment.

Audiences: `his` (hospitals and pharmacies: `Bearer <fixmedins_code>.<secret>`), `patient` (the holder's
session token) and `admin` (an operator token). Every mutating call takes an `Idempotency-Key`
header. Amounts are yuan strings ("12.50"). Errors have one shape:
`{"error": {"code", "field", "message_zh", "message_en", "request_id"}}`.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up hooks (the demo's channel configuration), then payment recovery as a background task."""
    for hook in app.state.on_start:
        hook()
    tasks = []
    interval = app.state.recovery_interval
    if interval:
        from yibao.services.payments.flow import run_periodically

        ctx = app.state.platform.payments("platform:recovery")
        tasks.append(asyncio.create_task(run_periodically(ctx, interval)))
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


def create_app(db: Database | None = None, *, keyring: Keyring | None = None, demo_tokens: bool = True,
               face_verifier: FaceVerifier | None = None, sandboxes: bool = False, base_url: str | None = None,
               recovery_interval: float | None = None, channel_transport: Any = None,
               credit_banks: Mapping[str, BankChannel] | None = None) -> FastAPI:
    """The platform. ``sandboxes`` mounts the sandbox services (face verifier, payment institutions) for
    the demo at ``base_url`` (default $YIBAO_BASE_URL); the platform still reaches them over HTTP at the
    URLs it is configured with, as it would real ones. ``recovery_interval`` (seconds) runs payment
    recovery in the background; ``channel_transport`` (an httpx transport) carries every call to a
    payment institution (tests record the wire with it)."""
    from yibao.services.agency.connectors import Channels

    app = FastAPI(title="yibao 医保", version="0.2.0", description=DESCRIPTION, docs_url=None, redoc_url=None, lifespan=_lifespan)
    db = db or Database()
    keyring = keyring or load_keyring()
    app.state.platform = Platform(db=db, keyring=keyring, operator_tokens=operator_tokens_from_env(demo_tokens),
                                  channels=Channels(keyring, transport=channel_transport))
    app.state.on_start: list[Callable[[], None]] = []
    app.state.recovery_interval = recovery_interval
    errors.install(app)
    base = (base_url or os.environ.get("YIBAO_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if face_verifier is None and sandboxes and face.verifier_from_env() is None:
        # The demo's checks go to the sandbox verifier mounted below, over HTTP, as they would to a real one.
        face_verifier = face.FaceVerifier(f"{base}/sandbox/face", os.environ.get("YIBAO_FACE_KEY", DEMO_FACE_KEY))
    face.install(app, face_verifier)
    app.include_router(his.router)  # first: the hospitals' calls are the hot path, and routes match in order
    app.include_router(patient.router)
    app.include_router(channels.router)
    app.include_router(admin.router)
    credit_routes.install(app, credit_banks)  # credit_banks: payment_institution_id → the bank's connector
    if sandboxes:
        from yibao.sandbox import demo
        from yibao.sandbox.channels import mount_all
        from yibao.sandbox.face import create_app as face_sandbox

        app.mount("/sandbox/face", face_sandbox(os.environ.get("YIBAO_FACE_KEY", DEMO_FACE_KEY)))
        pairs = mount_all(app, base_url=base)
        for pi_id, bank in demo.sandbox_credit_banks(pairs, base).items():  # 信用支付 with the sandbox bank; given banks come first
            app.state.credit_banks.setdefault(pi_id, bank)
        # Their keys are made afresh in this process: point the demo's institutions at them at start-up.
        app.state.on_start.append(lambda: demo.configure_sandbox_channels(db, keyring, pairs, base))
        app.state.on_start.append(lambda: demo.restore_sandbox_credit(db, keyring, pairs))  # the credit lines of a previous start
    # The pages (/app, /cashier, /admin): after the API, whose routes and error handlers they build on.
    web.install(app, demo=sandboxes)
    _install_docs(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "database": db.dialect}

    logging.getLogger("yibao").setLevel(logging.INFO)
    return app


def _install_docs(app: FastAPI) -> None:
    """/docs, Swagger UI with try-it-out, its assets served by the app (from fastapi-offline), not FastAPI's CDN ones."""
    app.mount("/docs-assets", StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from validator.swagger.io

    app.add_route("/docs", docs, include_in_schema=False)  # GET and HEAD, as FastAPI's own /docs


def app_from_env() -> FastAPI:
    """The factory `yibao serve` hands to uvicorn (one per worker process): configuration from the environment."""
    demo = os.environ.get("YIBAO_DEMO", "1") == "1"
    interval = float(os.environ.get("YIBAO_RECOVERY_INTERVAL", "30"))  # seconds; 0 turns background recovery off
    app = create_app(Database(), keyring=load_keyring(), demo_tokens=demo, sandboxes=demo, recovery_interval=interval or None)
    # A serving process: move what start-up built (modules, policies, routes) out of the collector's
    # sight and collect the young generation less often. Full collections walking those objects
    # stalled every request in flight: p99 at 32 clients 135 ms -> 72 ms (bench/api.py).
    gc.freeze()
    gc.set_threshold(20_000, 50, 1_000)
    return app
