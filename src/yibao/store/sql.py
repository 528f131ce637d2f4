"""Prepared SQL for the hot paths (settlement, ledger, idempotency, audit).

SQLAlchemy Core spends ~100 µs building and keying each statement, and even driver-level SQL
through SQLAlchemy's execution context costs ~60 µs; a settlement issues about twenty. Here a
statement is plain SQL with ``:name`` parameters run on the DBAPI cursor of the caller's own
connection and transaction (sqlite3 takes ``:name``; psycopg gets ``%(name)s``): a few µs. Rows
come back as namedtuples. The rest of the code keeps Core; use this only where a benchmark shows
it matters (bench/api.py).
"""

from __future__ import annotations

import re
import sqlite3
from collections import namedtuple
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Iterator, NamedTuple

from sqlalchemy.engine import Connection

_UNKNOWN: Any = object()
_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_][a-zA-Z0-9_]*)")


def _sqlite_datetime(value: datetime) -> str:
    # Stored as SQLAlchemy's SQLite DateTime stores it (naive UTC text), so Core reads it back unchanged.
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


# sqlite3 asks an adapter only for a value that is not an int, float, str or bytes — so the statements below pass their
# parameters to it unconverted, where a Python pass over every value of every statement cost ~3 % of a payment's CPU
# (bench/payments.py, py-spy). The registry is the sqlite3 module's: these replace its default (deprecated) adapters,
# which wrote an aware time with its offset and a whole second without ".000000" — text that no longer compares with
# what SQLAlchemy stores. Core binds through its own type processors and never reaches them.
sqlite3.register_adapter(datetime, _sqlite_datetime)
sqlite3.register_adapter(date, date.isoformat)


class Sql:
    """One statement. ``{lock}`` marks where PostgreSQL takes row locks (FOR UPDATE), ``{skip_locked}`` where
    it takes them skipping rows other transactions hold (FOR UPDATE SKIP LOCKED); SQLite's single writer
    already holds the whole database, so there both are dropped."""

    __slots__ = ("text", "_pg", "_types", "_pg_rows", "_many")

    def __init__(self, text: str) -> None:
        text = " ".join(text.split())
        self.text = text.replace(" {lock}", "").replace(" {skip_locked}", "")
        locked = text.replace("{lock}", "FOR UPDATE").replace("{skip_locked}", "FOR UPDATE SKIP LOCKED")  # PostgreSQL's
        self._pg = _PARAM.sub(lambda m: f"%({m.group(1)})s", locked.replace("%", "%%"))
        # An INSERT … VALUES (…) …: its parts, to send a few rows as one statement. Written with PostgreSQL's own $n
        # placeholders (so with % as it is): such a statement is over psycopg's 4 KB / 50 parameters, past which psycopg
        # parses every %(name)s statement anew on each call (its cache stops there) — 8.6 % of the platform's CPU per
        # one-code payment went there (py-spy --gil, bench/payments.py on PostgreSQL: a visit's fee lines, the audit trail).
        self._pg_rows = _values_split(locked)
        self._many: dict[int, str] = {}
        # The row type per dialect, from the first single execution's column names: a statement's columns never change,
        # and psycopg builds the cursor's description anew on every read of it (~15 µs a statement, ~50 a payment).
        self._types: dict[str, type | None] = {}

    def __call__(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> "Rows":
        params = params or {}
        dbapi = conn.connection.dbapi_connection
        dialect = conn.dialect.name
        text = self._pg if dialect == "postgresql" else self.text  # SQLite's dates: the adapters above
        if isinstance(params, list):
            if dialect == "postgresql" and self._pg_rows is not None and 1 < len(params) <= MANY_ROWS:
                # A few rows as one multi-row INSERT: psycopg's executemany sends one Bind/Execute per row, each a
                # statement for the server (an audit trail's entries, a posting's transfers, a visit's fee lines).
                names = self._pg_rows.names
                cursor = raw_cursor(dbapi)
                cursor.execute(self._rows_text(len(params)), [p[name] for p in params for name in names])
            else:
                cursor = dbapi.cursor()  # type: ignore[union-attr]
                cursor.executemany(text, params)
            return Rows(cursor, None)  # nothing is read after a batch
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        cursor.execute(text, params)
        row_type = self._types.get(dialect, _UNKNOWN)
        if row_type is _UNKNOWN:
            desc = cursor.description
            row_type = self._types[dialect] = _row_type(tuple(d[0] for d in desc)) if desc else None
        return Rows(cursor, row_type)

    def _rows_text(self, n: int) -> str:
        """The statement for ``n`` rows: row i's parameters are $(i·k+1) … $(i·k+k), k the group's distinct names."""
        text = self._many.get(n)
        if text is None:
            head, group, tail, names = self._pg_rows  # type: ignore[misc]
            at = {name: j for j, name in enumerate(names)}
            groups = ", ".join(_PARAM.sub(lambda m, i=i: f"${i * len(names) + at[m.group(1)] + 1}", group) for i in range(n))
            text = self._many[n] = f"{head}{groups}{tail}"
        return text


MANY_ROWS = 16  # at most this many rows become one statement: each count is a statement the server prepares and keeps


def raw_cursor(dbapi_connection: Any) -> Any:
    """A psycopg cursor taking PostgreSQL's own $n placeholders and a sequence of values: no parsing of the statement."""
    from psycopg import RawCursor

    return RawCursor(dbapi_connection)


class _ValuesParts(NamedTuple):
    head: str  # ``INSERT … VALUES ``
    group: str  # ``(…)``: one row's values
    tail: str  # `` RETURNING …``, `` ON CONFLICT …`` or nothing
    names: tuple[str, ...]  # the group's parameter names, each once, in order


def _values_split(text: str) -> _ValuesParts | None:
    """``INSERT … VALUES (group) tail`` in its parts; None for any other statement, and for one whose head or tail
    takes parameters (one per statement, not per row) or holds a ``$`` (it would be read as a placeholder)."""
    if not text.upper().startswith("INSERT INTO "):
        return None
    start = text.upper().find(" VALUES (")
    if start < 0:
        return None
    start += len(" VALUES ")
    depth = 0
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            head, group, tail = text[:start], text[start:end + 1], text[end + 1:]
            if _PARAM.search(head) or _PARAM.search(tail) or "$" in text:
                return None
            return _ValuesParts(head, group, tail, tuple(dict.fromkeys(_PARAM.findall(group))))
    return None


LIST_CHUNK = 200  # the most values one IN list takes (the caller splits longer ones)


@lru_cache(maxsize=512)
def with_list(template: str, n: int) -> Sql:
    """``template`` with ``{list}`` made ``:l0, …, :l{n-1}``: an IN list of ``n`` values, each length prepared once
    (bind them with `list_params`)."""
    return Sql(template.replace("{list}", ", ".join(f":l{i}" for i in range(n))))


def list_params(values: list[Any], **params: Any) -> dict[str, Any]:
    """The parameters of a `with_list` statement: the list's values, and the others by name."""
    params.update((f"l{i}", v) for i, v in enumerate(values))
    return params


@lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> type:
    return namedtuple("Row", names, rename=True)  # type: ignore[misc]


class Rows:
    """The cursor's result: rows as namedtuples (attribute or index access), and rowcount."""

    __slots__ = ("_cursor", "_type")

    def __init__(self, cursor: Any, row_type: type | None) -> None:
        self._cursor = cursor
        self._type = row_type

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def first(self) -> Any:
        if self._type is None:
            return None
        row = self._cursor.fetchone()
        return None if row is None else self._type._make(row)

    def __iter__(self) -> Iterator[Any]:
        if self._type is not None:
            for row in self._cursor.fetchall():
                yield self._type._make(row)


def as_date(value: Any) -> date:
    """A DATE column read through the driver: SQLite gives text, PostgreSQL a date."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def as_datetime(value: Any) -> datetime | None:
    """A DateTime column read through the driver, in UTC: SQLite gives the naive UTC text SQLAlchemy stored, PostgreSQL
    an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
