"""One row by a query: the row, or the caller's error (a NotFound naming the field, mostly) or None, optionally locked
FOR UPDATE — the one helper for what every service wrote again as `_x_row(conn, id, *, lock=False)`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def one_or(conn: Connection, source: Table | Select[Any], *where: ColumnElement[bool], missing: Exception | None = None,
           lock: bool = False) -> Any:
    """The first row of `source` (a table, or a select to narrow further) where every `where` holds, locked if `lock`;
    if there is none, `missing` is raised, or None returned when no error is given."""
    q = select(source) if isinstance(source, Table) else source
    if where:
        q = q.where(*where)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None and missing is not None:
        raise missing
    return row
