"""Prepared SQL for the hot paths (settlement, ledger, idempotency, audit).

SQLAlchemy Core spends ~100 µs building and keying each statement; a settlement issues about
twenty. Here a statement is plain SQL with ``:name`` parameters, handed straight to the driver
(sqlite3 takes ``:name``; psycopg gets ``%(name)s``), which costs a few microseconds. The rest of
the code keeps using Core; use this only where a benchmark shows it matters.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy.engine import Connection, CursorResult

_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_][a-zA-Z0-9_]*)")


def _sqlite_value(value: Any) -> Any:
    # Store as SQLAlchemy's SQLite DateTime does (naive UTC text), so Core reads it back unchanged.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


class Sql:
    """One statement. ``{lock}`` marks where PostgreSQL takes row locks (FOR UPDATE); SQLite's
    single writer already holds the whole database, so there it is dropped."""

    __slots__ = ("text", "_pg")

    def __init__(self, text: str) -> None:
        text = " ".join(text.split())
        self.text = text.replace(" {lock}", "")
        self._pg = _PARAM.sub(lambda m: f"%({m.group(1)})s", text.replace("%", "%%").replace("{lock}", "FOR UPDATE"))

    def __call__(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> CursorResult:
        params = params or {}
        if conn.dialect.name == "postgresql":
            return conn.exec_driver_sql(self._pg, params)  # type: ignore[arg-type]
        if isinstance(params, list):
            params = [{k: _sqlite_value(v) for k, v in p.items()} for p in params]
        else:
            params = {k: _sqlite_value(v) for k, v in params.items()}
        return conn.exec_driver_sql(self.text, params)  # type: ignore[arg-type]


def as_date(value: Any) -> date:
    """A DATE column read through the driver: SQLite gives text, PostgreSQL a date."""
    return date.fromisoformat(value) if isinstance(value, str) else value
