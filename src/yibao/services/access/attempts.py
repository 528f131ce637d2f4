"""Counting failed attempts for a lock-out (domain/attempts.py): one query shape for every table that
records attempts — payment-code scans, face checks at a terminal, real-name log-ins — and one table
(`attempts`, keyed by kind and subject: `Counter`) for the limits without a table of their own: SMS
codes per phone and per client address, PINs per holder, credentials per institution and per address."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.attempts import AttemptLimit
from yibao.store.tables import attempts as AT


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


# ---- one table for the lock-outs that have no table of their own: attempts keyed by (kind, subject) ---------
#
# A limit is per SUBJECT — a phone, a client address, a holder, a credential — never per door: every
# door that tries the same subject counts into the same rows (a PIN typed to confirm a payment, to pay a
# bill or to change the PIN; a code asked for on the API or on the pages).

NO_REGION = "000000"  # a phone, a client address or a credential belongs to no pooling region


def serialise(conn: Connection, kind: str, subject: str) -> None:
    """Take the subject's turn for the rest of this unit of work, so that checking a limit, trying and counting
    happen one attempt at a time per subject: a burst of parallel guesses cannot all pass the check before the
    first is counted. PostgreSQL: a transaction-scoped advisory lock on (kind, subject); SQLite serialises
    every writer already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"{kind}\x1f{subject}"})


@dataclass(frozen=True)
class Counter:
    """One limit on one kind of attempt: ``rule`` failures of ``kind`` per subject; with ``resets``, a success
    starts the count again (a right PIN, a right log-in code), else every counted attempt stays counted for the
    window (code requests, wrong credentials)."""

    kind: str
    rule: AttemptLimit
    resets: bool = False

    def failures(self, conn: Connection, now: datetime, subject: str) -> list[datetime]:
        return failures(conn, AT, self.rule, now, AT.c.kind == self.kind, AT.c.subject == subject, failed=AT.c.failed.is_(True),
                        succeeded=AT.c.failed.is_(False) if self.resets else None)

    def wait(self, conn: Connection, now: datetime, subject: str) -> int | None:
        """None while ``subject`` may try; else the whole seconds until one more try is allowed."""
        return self.rule.retry_after(self.failures(conn, now, subject), now)

    def left(self, conn: Connection, now: datetime, subject: str) -> int:
        return self.rule.left(self.failures(conn, now, subject))

    def count(self, conn: Connection, now: datetime, subject: str, *, failed: bool = True, region: str = NO_REGION) -> None:
        """Record one attempt (a failure, or with ``failed=False`` a success); rows of this subject older than the
        window are dropped on the way, so a subject keeps at most a window's worth of rows."""
        conn.execute(AT.insert().values(region=region, kind=self.kind, subject=subject, failed=failed, created_at=now))
        conn.execute(delete(AT).where(AT.c.kind == self.kind, AT.c.subject == subject, AT.c.created_at <= self.rule.since(now)))

    def seen(self, conn: Connection, now: datetime, subject: str, *, failed: bool) -> datetime | None:
        """The latest attempt of ``subject`` inside the window (a failure, or a success), if any."""
        at = conn.execute(select(func.max(AT.c.created_at)).where(AT.c.kind == self.kind, AT.c.subject == subject,
                                                                  AT.c.failed.is_(failed), AT.c.created_at > self.rule.since(now))).scalar()
        return None if at is None else _utc(at)


def subject_of(keyring: Keyring, what: str, value: str) -> str:
    """A keyed hash standing for a phone number or a client address in the attempts table: counted, never stored."""
    return hmac.new(keyring.purpose_key("attempt subjects v1"), f"{what}\x1f{value}".encode(), hashlib.sha256).hexdigest()
