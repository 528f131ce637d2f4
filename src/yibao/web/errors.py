"""Failures on the pages answer as pages: words in the reader's language, never JSON or a traceback.

The API's handlers (api/errors.py) stay as they are for /api/…; for the pages' paths they hand over
to the ones here. A page that needs a log-in sends the reader to its log-in page.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from yibao.domain.errors import InputError, YibaoError
from yibao.formats.errors import HTTP_TEXTS, status_for
from yibao.web import render

log = logging.getLogger("yibao.web")
WEB_PREFIXES = ("/app", "/cashier", "/admin", "/lang")


class LoginRequired(Exception):
    """No valid session for this area: go to its log-in page."""

    def __init__(self, area: str) -> None:
        super().__init__(area)
        self.area = area


def is_page(path: str) -> bool:
    return path == "/" or any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


def _area(path: str) -> str:
    for area in ("app", "cashier", "admin"):
        if path == f"/{area}" or path.startswith(f"/{area}/"):
            return area
    return "home"


def error_page(request: Request, status: int, *, title_key: str, text: str | None = None, text_key: str | None = None,
               **kw: Any):  # noqa: ANN201
    return render.render(request, "error.html", area=_area(request.url.path), csrf_cookie=None, status=status, title_key=title_key,
                         text=text, text_key=text_key, kw=kw)


def install(app: FastAPI) -> None:
    """Wrap the API's exception handlers: pages get pages, the API keeps its JSON."""
    api_handlers = dict(app.exception_handlers)

    def api(exc_type: type) -> Any:
        return api_handlers[exc_type]

    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/{exc.area}/login", status_code=303, headers={"Cache-Control": "no-store"})

    async def yibao_error(request: Request, exc: YibaoError):  # noqa: ANN202
        if not is_page(request.url.path):
            return await api(YibaoError)(request, exc)
        return error_page(request, status_for(exc), title_key="error", text=exc.message_en if render.lang_of(request) == "en"
                          else exc.message_zh)

    async def validation_error(request: Request, exc: RequestValidationError):  # noqa: ANN202
        if not is_page(request.url.path):
            return await api(RequestValidationError)(request, exc)
        bad = InputError("", "invalid", "请求参数无效", "the request's parameters are not valid")
        return error_page(request, 422, title_key="error", text=bad.message_en if render.lang_of(request) == "en" else bad.message_zh)

    async def http_error(request: Request, exc: StarletteHTTPException):  # noqa: ANN202
        if not is_page(request.url.path):
            return await api(StarletteHTTPException)(request, exc)
        if exc.status_code == 404:
            return error_page(request, 404, title_key="not_found_title", text_key="not_found_text")
        # The API's words for the status (405 method not allowed …), in the reader's language: never Starlette's English.
        _, _, zh, en = HTTP_TEXTS.get(exc.status_code, ("", "", "请求无法处理", "the request could not be handled"))
        return error_page(request, exc.status_code, title_key="error", text=en if render.lang_of(request) == "en" else zh)

    async def unexpected(request: Request, exc: Exception):  # noqa: ANN202
        if not is_page(request.url.path):
            return await api(Exception)(request, exc)
        rid = getattr(request.state, "request_id", None) or uuid.uuid4().hex[:16]
        log.exception("unexpected error on a page, request %s", rid)
        return error_page(request, 500, title_key="server_error_title", text_key="server_error_text", rid=rid)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(YibaoError, yibao_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
