"""Counting failed attempts for a lock-out (domain/attempts.py): one query shape for every table that
records attempts — payment-code scans, face checks at a terminal, real-name log-ins."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from yibao.domain.attempts import AttemptLimit


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def failures(conn: Connection, table: Table, rule: AttemptLimit, now: datetime, *subject: Any, failed: Any,
             succeeded: Any = None) -> list[datetime]:
    """When ``subject``'s counted failures (rows of ``table`` matching ``failed``) happened inside the rule's
    window, newest first, at most the limit of them; with ``succeeded``, only those after the latest success
    (by row id, not time: a success and a failure may share a timestamp)."""
    where = [*subject, table.c.created_at > rule.since(now)]
    if succeeded is not None:
        last_ok = conn.execute(select(func.max(table.c.id)).where(*where, succeeded)).scalar()
        if last_ok is not None:
            where.append(table.c.id > last_ok)
    rows = conn.execute(select(table.c.created_at).where(*where, failed).order_by(table.c.created_at.desc(), table.c.id.desc())
                        .limit(rule.limit)).scalars()
    return [_utc(at) for at in rows]
