"""INSERT … ON CONFLICT DO NOTHING for both SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless the key exists; True when a row was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    # RETURNING rather than rowcount: psycopg reports -1 for INSERT … ON CONFLICT through SQLAlchemy.
    res = conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing().returning(key))
    return res.first() is not None
