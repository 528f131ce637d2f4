"""The pages: /app (the holder's phone app), /cashier (the cashier console), /admin (the agency's
dashboard). Server-rendered Jinja2 with one CSS and one small JS file, all served by the app.

An entry point like api/: its routes call the same services as the REST API (one write path) and
never call the API over HTTP. See docs/pages.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from yibao.web import errors, render, security
from yibao.web.aids import DemoAids

STATIC = Path(__file__).parent / "static"
common = APIRouter(include_in_schema=False)


@common.get("/")
async def home(request: Request) -> HTMLResponse:
    return render.render(request, "home.html", area="home", csrf_cookie=None)


@common.get("/lang")
async def switch_language(request: Request, to: str = "zh", next: str = "/") -> RedirectResponse:  # noqa: A002
    """The language toggle on every page: a cookie, then back to the page it was clicked on."""
    response = RedirectResponse(render.safe_next(next), status_code=303, headers={"Cache-Control": "no-store"})
    security.set_cookie(response, request, security.LANG_COOKIE, "en" if to == "en" else "zh", max_age=365 * 24 * 3600)
    return response


def install(app: FastAPI, *, aids: DemoAids | None = None) -> None:
    """Mount the pages and their static files; pages answer failures with pages (errors.install).

    Call after the API's routers and error handlers are installed. ``aids`` (demo only) shows the demo's
    aids: the sandbox SMS outbox, the demo people and credentials, the synthetic face captures."""
    from yibao.web import (
        admin,
        admin_books,
        admin_whatif,
        cashier,
        cashier_counter,
        cashier_payments,
        holder,
        holder_credit,
        holder_payments,
        mobile_bills,
    )

    app.state.demo_aids = aids
    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (common, holder.router, holder_credit.router, holder_payments.router, cashier.router, cashier_counter.router, cashier_payments.router, admin.router, admin_books.router, admin_whatif.router, mobile_bills.router):
        app.include_router(router)
