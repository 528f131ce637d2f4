"""The yibao web application: REST API (OpenAPI at /docs), later the pages and sandboxes."""

from __future__ import annotations

import gc
import logging
import os

from typing import Mapping

from fastapi import FastAPI

from yibao import face
from yibao.api import errors
from yibao.api.context import Platform, operator_tokens_from_env
from yibao.api.routers import admin, his, patient
from yibao.api.routers import credit as credit_routes
from yibao.crypto.pii import Keyring, load_keyring
from yibao.channels.bank import BankChannel
from yibao.face import FaceVerifier
from yibao.store.db import Database

DEMO_FACE_KEY = "demo-face-sandbox-key"  # the demo's shared key with its own sandbox verifier
DESCRIPTION = """医保便捷支付平台 yibao — medical-insurance convenient payment.

Audiences: `his` (hospitals and pharmacies: `Bearer <fixmedins_code>.<secret>`), `patient` (the holder's
session token) and `admin` (an operator token). Every mutating call takes an `Idempotency-Key`
header. Amounts are yuan strings ("12.50"). Errors have one shape:
`{"error": {"code", "field", "message_zh", "message_en", "request_id"}}`.
"""


def create_app(db: Database | None = None, *, keyring: Keyring | None = None, demo_tokens: bool = True,
               face_verifier: FaceVerifier | None = None, sandboxes: bool = False,
               credit_banks: Mapping[str, BankChannel] | None = None) -> FastAPI:
    """The platform. ``sandboxes`` mounts the sandbox services (face verifier) for the demo; the
    platform still reaches them over HTTP at the URLs it is configured with, as it would real ones."""
    app = FastAPI(title="yibao 医保", version="0.2.0", description=DESCRIPTION, docs_url="/docs", redoc_url=None)
    db = db or Database()
    app.state.platform = Platform(db=db, keyring=keyring or load_keyring(), operator_tokens=operator_tokens_from_env(demo_tokens))
    errors.install(app)
    face.install(app, face_verifier)
    app.include_router(his.router)  # first: the hospitals' calls are the hot path, and routes match in order
    app.include_router(patient.router)
    app.include_router(admin.router)
    credit_routes.install(app, credit_banks)  # credit_banks: payment_institution_id → the bank's connector
    if sandboxes:
        from yibao.face.sandbox import create_app as face_sandbox

        app.mount("/sandbox/face", face_sandbox(os.environ.get("YIBAO_FACE_KEY", DEMO_FACE_KEY)))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "database": db.dialect}

    logging.getLogger("yibao").setLevel(logging.INFO)
    return app


def app_from_env() -> FastAPI:
    """The factory `yibao serve` hands to uvicorn (one per worker process): configuration from the environment."""
    demo = os.environ.get("YIBAO_DEMO", "1") == "1"
    app = create_app(Database(), keyring=load_keyring(), demo_tokens=demo, sandboxes=demo)
    # A serving process: move what start-up built (modules, policies, routes) out of the collector's
    # sight and collect the young generation less often. Full collections walking those objects
    # stalled every request in flight: p99 at 32 clients 135 ms -> 72 ms (bench/api.py).
    gc.freeze()
    gc.set_threshold(20_000, 50, 1_000)
    return app
