"""Text messages to holders (log-in codes, credit reminders). The gateway here is the sandbox's: each
message is written to an outbox, in the unit that decides to send it, which operators (and tests) read
at /api/v1/admin/sandbox/sms; a real deployment plugs in its gateway and keeps the outbox as its queue.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring, mask_phone
from yibao.formats.timefmt import iso_utc
from yibao.store.tables import sandbox_sms_outbox as OUT


def send(conn: Connection, keyring: Keyring, now: datetime, *, region: str, phone: str, text: str) -> int:
    """Queue one message; returns its id."""
    return conn.execute(OUT.insert().values(region=region, phone_masked=mask_phone(phone), phone_hash=keyring.lookup_hash(phone),
                                            text=text, created_at=now)).inserted_primary_key[0]


def outbox(conn: Connection, limit: int = 20) -> list[dict]:
    rows = conn.execute(select(OUT).order_by(OUT.c.id.desc()).limit(limit)).all()
    return [{"phone": r.phone_masked, "text": r.text, "at": iso_utc(r.created_at)} for r in rows]
