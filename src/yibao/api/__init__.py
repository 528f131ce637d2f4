"""REST API under /api/v1: one router per audience (his, patient, admin), the payment institutions' and
banks' notifications, and credit payment. An entrypoint: parse, authorise, call a service, serialise.
`install(app)` puts it on the app the composition root builds."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DESCRIPTION = """医保便捷支付平台 yibao — medical-insurance convenient payment.

Audiences: `his` (hospitals and pharmacies: `Bearer <fixmedins_code>.<secret>`), `patient` (the holder's
session token) and `admin` (an operator token). Every mutating call takes an `Idempotency-Key`
header. Amounts are yuan strings ("12.50"); a request may also send money and quantities as JSON numbers (12.50), read
exactly from their text. Errors have one shape:
`{"error": {"code", "field", "message_zh", "message_en", "request_id"}}`.
"""


def install(app: FastAPI) -> None:
    """The error shape, then the routers (the hospitals' first: they are the hot path, and routes match in order).
    The API has no demo-only routes: the demo's sandboxes (the SMS gateway's outbox included) are the sandbox wing's."""
    from yibao.api import errors
    from yibao.api.routers import admin, channels, credit, his, patient

    errors.install(app)
    # The institutions' notifications (one per payment) before the holders' 46 routes, which every request to a later
    # router is matched against first.
    for router in (his.router, channels.router, patient.router, admin.router, credit.patient_router, credit.admin_router,
                   credit.notify_router):
        app.include_router(router)


def install_docs(app: FastAPI) -> None:
    """/docs, Swagger UI with try-it-out, its assets served by the app (from fastapi-offline), not FastAPI's CDN ones."""
    app.mount("/docs-assets", StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - Swagger UI", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="/docs-assets/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from validator.swagger.io

    app.add_route("/docs", docs, include_in_schema=False)  # GET and HEAD, as FastAPI's own /docs
