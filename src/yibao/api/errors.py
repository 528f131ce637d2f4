"""The API's answers to failures, in the one error shape (formats/errors.py): the handlers, the request
id, and input every route refuses (NUL)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from yibao.domain.errors import InputError, YibaoError
from yibao.formats.errors import HTTP_TEXTS, body_of, error_body, headers_for, status_for

log = logging.getLogger("yibao.api")

def _rid(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex[:16]


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item in ("body", "query", "path", "header"):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "body"


_PYDANTIC_ZH = {
    "missing": ("缺少必填字段", "is required"),
    "string_type": ("应为字符串", "must be a string"),
    "bool_type": ("应为 true 或 false", "must be true or false"),
    "bool_parsing": ("应为 true 或 false", "must be true or false"),
    "int_type": ("应为整数", "must be an integer"),
    "int_parsing": ("应为整数", "must be an integer"),
    "list_type": ("应为列表", "must be a list"),
    "dict_type": ("应为 JSON 对象", "must be a JSON object"),
    "model_type": ("应为 JSON 对象", "must be a JSON object"),
    "json_invalid": ("请求体不是有效的 JSON", "the body is not valid JSON"),
    "extra_forbidden": ("未知字段", "is not a known field"),
    "string_too_short": ("长度不足", "is too short"),
    "string_too_long": ("长度超出限制", "is too long"),
    "too_short": ("元素太少", "has too few items"),
    "too_long": ("元素太多", "has too many items"),
    "greater_than_equal": ("数值太小", "is too small"),
    "less_than_equal": ("数值太大", "is too large"),
    "date_from_datetime_parsing": ("日期格式应为 YYYY-MM-DD", "must be a date YYYY-MM-DD"),
    "date_parsing": ("日期格式应为 YYYY-MM-DD", "must be a date YYYY-MM-DD"),
    "date_type": ("日期格式应为 YYYY-MM-DD", "must be a date YYYY-MM-DD"),
    "invalid_time": ("时间应为 ISO 8601 格式（如 2026-11-01T08:00:00+08:00）", "must be an ISO 8601 time such as 2026-11-01T08:00:00+08:00"),
    "time_out_of_range": ("时间应在1900–2100年之间", "must be a time in 1900–2100"),
    "string_pattern_mismatch": ("格式不正确", "has the wrong format"),
    "string_unicode": ("应为有效的 Unicode 字符串", "must be a valid Unicode string"),
}


_NUL = "\x00"


def _nul_error(field: str) -> InputError:
    return InputError(field.replace(_NUL, "\\u0000"), "nul_character", "不能包含空字符（\\u0000）", "must not contain the NUL character (\\u0000)")


def _nul_path(doc: Any) -> str | None:
    """Where the first NUL sits in parsed JSON, as a field path ("lines[0].code"); None if nowhere."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if _NUL in value:
                return path or "body"
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                sub = f"{path}.{key}" if path else str(key)
                if _NUL in str(key):
                    return sub
                stack.append((sub, item))
    return None


async def refuse_nul(request: Request) -> None:
    """Refuse a NUL character anywhere in the input (path, query, headers, JSON body), naming the field.

    PostgreSQL text cannot hold NUL: such a value would fail the statement and answer 500, so it is
    refused here, once, for every route — before authentication or any query runs.
    """
    for name, value in request.path_params.items():
        if _NUL in str(value):
            raise _nul_error(name)
    for name, value in request.query_params.multi_items():
        if _NUL in name or _NUL in value:
            raise _nul_error(name or "query")  # a parameter without a name ("?=x") is named by where it is
    for name, value in request.headers.items():
        if _NUL in value:
            raise _nul_error("-".join(part.capitalize() for part in name.split("-")))
    ctype = request.headers.get("content-type", "")
    if not ctype or "json" in ctype:  # what FastAPI parses as JSON; reading it here is cached, not consumed
        body = await request.body()
        if b"\\u0000" in body:  # NUL can only reach a JSON string escaped; a raw one is invalid JSON
            try:
                field = _nul_path(json.loads(body))
            except ValueError:
                return  # not JSON: FastAPI answers for it
            if field is not None:
                raise _nul_error(field)


def install(app: FastAPI) -> None:
    """The error shape for every failure, the request id, and input every route refuses (NUL).

    Call before including the routers: the NUL check is an app-wide dependency, which FastAPI copies
    into each route as it is added.
    """
    if any(isinstance(route, APIRoute) for route in app.routes):
        raise RuntimeError("errors.install(app) must run before the routers are included")
    app.router.dependencies.append(Depends(refuse_nul))  # the request id: observe.metrics.RequestMiddleware (app.py)

    @app.exception_handler(YibaoError)
    async def yibao_error(request: Request, exc: YibaoError) -> JSONResponse:
        status = status_for(exc)
        if status == 500:
            log.error("policy error %s", exc.describe())
        return JSONResponse(body_of(exc, _rid(request)), status_code=status, headers=headers_for(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"type": "invalid", "loc": ("body",), "msg": "invalid request"}
        kind = first.get("type", "invalid")
        zh, en = _PYDANTIC_ZH.get(kind, ("取值无效", str(first.get("msg", "is invalid"))))
        if kind == "literal_error":
            expected = first.get("ctx", {}).get("expected", "")
            zh, en = f"取值应为 {expected}", f"must be one of {expected}"
        # A JSON syntax error's loc is ("body", <character offset>): the field is the body, not "[17]".
        field = "body" if kind == "json_invalid" else _loc(tuple(first.get("loc", ())))
        return JSONResponse(error_body(kind, field, zh, en, _rid(request)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, field, zh, en = HTTP_TEXTS.get(exc.status_code, ("http_error", "", "请求无法处理", str(exc.detail)))
        return JSONResponse(error_body(code, field, zh, en, _rid(request)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = _rid(request)
        log.exception("unexpected error, request %s", rid)
        return JSONResponse(error_body("internal_error", "", f"系统内部错误，请凭请求号 {rid} 联系经办机构",
                                       f"internal error; quote request id {rid} to the agency", rid), status_code=500)
