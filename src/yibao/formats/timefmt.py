"""Timestamps at the edge: always UTC ISO 8601, whichever database the value came from."""

from __future__ import annotations

from datetime import datetime, timezone


def iso_utc(at: datetime | None) -> str | None:
    """SQLite hands back naive UTC, PostgreSQL aware values: print both the same way."""
    if at is None:
        return None
    return (at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)).isoformat()
