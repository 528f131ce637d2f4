"""One error shape for every failure, in JSON and on the pages: a stable code, the field, and messages
in Chinese and English; and the HTTP status each kind of refusal answers with.

    {"error": {"code": "invalid_number", "field": "lines[0].unit_price",
               "message_zh": "...", "message_en": "...", "request_id": "..."}}
"""

from __future__ import annotations

from typing import Any

from yibao.domain.errors import (
    Conflict,
    Forbidden,
    InputError,
    NotFound,
    PolicyError,
    TooManyAttempts,
    Unauthorized,
    Unavailable,
    YibaoError,
)
from yibao.domain.ledger import AccountLimitExceeded, InsufficientFunds

STATUS = {InputError: 422, PolicyError: 500, NotFound: 404, Conflict: 409, Unauthorized: 401, Forbidden: 403, InsufficientFunds: 409,
          AccountLimitExceeded: 409, TooManyAttempts: 429, Unavailable: 503}

# Route-level failures raised by Starlette/FastAPI before a handler runs. FastAPI answers 400 when the
# body cannot be read at all (not UTF-8, say) — the body is the field.
HTTP_TEXTS = {
    400: ("invalid_body", "body", "请求体无法解析，应为 UTF-8 编码的 JSON", "the body could not be parsed; send UTF-8 encoded JSON"),
    404: ("not_found", "", "资源不存在", "not found"),
    405: ("method_not_allowed", "", "不支持该请求方法", "method not allowed"),
    413: ("body_too_large", "body", "请求体过大", "the body is too large"),
}


def status_for(exc: YibaoError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def headers_for(exc: YibaoError) -> dict[str, str] | None:
    """What a refusal tells the caller beyond its body: when to try again, or how to authenticate."""
    if isinstance(exc, (TooManyAttempts, Unavailable)):
        return {"Retry-After": str(exc.retry_after)}
    if status_for(exc) == 401:
        return {"WWW-Authenticate": "Bearer"}
    return None


def error_body(code: str, field: str, zh: str, en: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "field": field, "message_zh": zh, "message_en": en, "request_id": request_id}}


def body_of(exc: YibaoError, request_id: str) -> dict[str, Any]:
    body = error_body(exc.code, exc.field, exc.message_zh, exc.message_en, request_id)
    details = getattr(exc, "details", None)
    if details:  # a refusal of many parts (a benefit batch's rows): each named, beside the first in the fields above
        body["error"]["details"] = details
    return body
