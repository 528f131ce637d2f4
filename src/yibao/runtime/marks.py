"""Marks: facts about the database itself, kept in it (`platform_marks`).

The demo marks the database it loads its world into (`DEMO_WORLD`), so that `yibao serve --demo` can
refuse a database it did not create — demo mode opens a database to public credentials and sandboxes —
and production can refuse the demo's database (its credentials are printed for anyone). The demo also
marks each channel configuration it writes, so it never re-points one an operator configured.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import literal, select, update
from sqlalchemy.engine import Connection

from yibao.store.tables import metadata
from yibao.store.tables import platform_marks as M
from yibao.store.upsert import insert_ignore

DEMO_WORLD = "demo_world"


def get(conn: Connection, name: str) -> str | None:
    r = conn.execute(select(M.c.value).where(M.c.name == name)).first()
    return None if r is None else r.value


def put(conn: Connection, now: datetime, name: str, value: str) -> None:
    """Set a mark (created, or its value replaced)."""
    if not insert_ignore(conn, M, dict(name=name, value=value, updated_at=now, created_at=now)):
        conn.execute(update(M).where(M.c.name == name).values(value=value, updated_at=now))


def put_new(conn: Connection, now: datetime, name: str, value: str) -> bool:
    """Set a mark unless it is there already; True when this call set it."""
    return insert_ignore(conn, M, dict(name=name, value=value, updated_at=now, created_at=now))


def is_empty(conn: Connection) -> bool:
    """No row in any table of the platform (marks aside): nothing anyone could lose or expose."""
    for table in metadata.sorted_tables:
        if table is M:
            continue
        if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
            return False
    return True


def is_demo(conn: Connection) -> bool:
    return get(conn, DEMO_WORLD) is not None
