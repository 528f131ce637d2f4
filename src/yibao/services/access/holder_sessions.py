"""A holder's session by its token, for entry points that carry the token themselves (the pages keep
it in a cookie): who it belongs to while it is valid, and logging out. Sessions are created by
`sessions.verify_code`; only the token's hash is stored.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from yibao.store.tables import sessions as SES


class Holder(NamedTuple):
    person_id: str
    region: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def holder_of(conn: Connection, token: str, now: datetime) -> Holder | None:
    """The session's person while it is unexpired; None for an unknown or expired token."""
    if not token:
        return None
    row = conn.execute(select(SES.c.person_id, SES.c.region, SES.c.expires_at).where(SES.c.token_hash == _hash(token))).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
    return Holder(row.person_id, row.region) if expires > now else None


def end(conn: Connection, token: str) -> None:
    """Log out: the token stops working at once (a copied cookie included)."""
    conn.execute(delete(SES).where(SES.c.token_hash == _hash(token)))
