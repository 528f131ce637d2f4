"""Logs as JSON lines (one object per line) or readable text, each carrying the request it was written for.

`REQUEST_ID` is set by the request middleware (metrics.py) for the whole request, so every line logged while it
runs — by the API, a service, the database layer — names it. `configure("json")` (production's default;
`yibao serve --log-format`, $YIBAO_LOG_FORMAT) sends every logger, uvicorn's too, through one handler on stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

REQUEST_ID: ContextVar[str | None] = ContextVar("yibao_request_id", default=None)
FORMATS = ("json", "text")
FIELDS = ("method", "path", "status", "duration_ms")  # an access line's own fields (extra=… on the record)
_HANDLER_MARK = "_yibao_handler"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.request_id = rid or "-"  # outside a request
        try:
            return super().format(record)
        finally:
            record.request_id = rid


def format_from_env(default: str) -> str:
    fmt = os.environ.get("YIBAO_LOG_FORMAT", default).strip().lower()
    if fmt not in FORMATS:
        raise SystemExit(f"yibao: YIBAO_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def configure(fmt: str, *, stream=None, level: int = logging.INFO) -> logging.Handler:  # noqa: ANN001
    """One handler on the root logger (replacing one configured before), in ``fmt``; uvicorn's loggers go through it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")  # ours is yibao.access (observe/metrics.py), with the request's fields
    access.handlers, access.propagate = [], False
    return handler
