"""One error shape for every failure: a stable code, the field, and messages in Chinese and English.

    {"error": {"code": "invalid_number", "field": "lines[0].unit_price",
               "message_zh": "...", "message_en": "...", "request_id": "..."}}
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound, PolicyError, Unauthorized, YibaoError
from yibao.domain.ledger import InsufficientFunds

log = logging.getLogger("yibao.api")

STATUS = {InputError: 422, PolicyError: 500, NotFound: 404, Conflict: 409, Unauthorized: 401, Forbidden: 403, InsufficientFunds: 409}


def status_for(exc: YibaoError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_body(code: str, field: str, zh: str, en: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "field": field, "message_zh": zh, "message_en": en, "request_id": request_id}}


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
    "string_pattern_mismatch": ("格式不正确", "has the wrong format"),
}


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def request_id(request: Request, call_next):  # noqa: ANN001, ANN202
        request.state.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    @app.exception_handler(YibaoError)
    async def yibao_error(request: Request, exc: YibaoError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("policy error %s", exc.describe())
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc.code, exc.field, exc.message_zh, exc.message_en, _rid(request)), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"type": "invalid", "loc": ("body",), "msg": "invalid request"}
        kind = first.get("type", "invalid")
        zh, en = _PYDANTIC_ZH.get(kind, ("取值无效", str(first.get("msg", "is invalid"))))
        if kind == "literal_error":
            expected = first.get("ctx", {}).get("expected", "")
            zh, en = f"取值应为 {expected}", f"must be one of {expected}"
        return JSONResponse(error_body(kind, _loc(tuple(first.get("loc", ()))), zh, en, _rid(request)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        texts = {404: ("not_found", "资源不存在", "not found"), 405: ("method_not_allowed", "不支持该请求方法", "method not allowed")}
        code, zh, en = texts.get(exc.status_code, ("http_error", "请求无法处理", str(exc.detail)))
        return JSONResponse(error_body(code, "", zh, en, _rid(request)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = _rid(request)
        log.exception("unexpected error, request %s", rid)
        return JSONResponse(error_body("internal_error", "", f"系统内部错误，请凭请求号 {rid} 联系经办机构",
                                       f"internal error; quote request id {rid} to the agency", rid), status_code=500)
