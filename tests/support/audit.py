"""Attacks on the books by someone who can write the database, for the audit tests: truncate a region's chain,
rewind its head, edit an entry and recompute the chain after it, insert a transfer behind the platform's back.
They attack lane 0 of a region's trail (the lane a unit takes when no other holds it: every entry of these tests)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, insert, select, update

from yibao.store.db import Database
from yibao.store.tables import audit_heads, audit_log, ledger_accounts, transfers

GENESIS = "0" * 64


def _iso(at: datetime) -> str:
    at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def sha256_digest(prev: str, row: Any) -> str:
    """What an attacker without the key can compute: the chain's old, unkeyed digest."""
    canonical = json.dumps([row.region, row.seq, _iso(row.at), row.actor, row.action, row.subject, row.detail],
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()


def entries(db: Database, region: str) -> list[Any]:
    return db.run(lambda c: c.execute(select(audit_log).where(audit_log.c.region == region, audit_log.c.lane == 0).order_by(audit_log.c.seq)).all(), write=False)


def truncate(db: Database, region: str) -> None:
    """The whole chain of the region and its head, gone."""
    def work(c):  # noqa: ANN001, ANN202
        c.execute(delete(audit_log).where(audit_log.c.region == region))
        c.execute(delete(audit_heads).where(audit_heads.c.region == region))
    db.run(work)


def rewind(db: Database, region: str, keep: int) -> None:
    """The last entries removed and the head moved back to entry ``keep``: what is left is a consistent chain."""
    def work(c):  # noqa: ANN001, ANN202
        last = c.execute(select(audit_log.c.hash).where(audit_log.c.region == region, audit_log.c.lane == 0, audit_log.c.seq == keep)).scalar_one()
        c.execute(delete(audit_log).where(audit_log.c.region == region, audit_log.c.lane == 0, audit_log.c.seq > keep))
        c.execute(update(audit_heads).where(audit_heads.c.region == region, audit_heads.c.lane == 0).values(seq=keep, hash=last))
    db.run(work)


def edit_and_recompute(db: Database, region: str, seq: int, detail: str,
                       digest: Callable[[str, Any], str] = sha256_digest) -> None:
    """Entry ``seq`` gets ``detail``; its hash and every later one (prev_hash too) and the head are recomputed."""
    rows = entries(db, region)

    def work(c):  # noqa: ANN001, ANN202
        prev = GENESIS if seq == 1 else rows[seq - 2].hash
        for row in rows[seq - 1:]:
            changed = SimpleNamespace(**{**row._mapping, **({"detail": detail} if row.seq == seq else {})})
            new = digest(prev, changed)
            c.execute(update(audit_log).where(audit_log.c.region == region, audit_log.c.lane == 0, audit_log.c.seq == row.seq)
                      .values(detail=changed.detail, prev_hash=prev, hash=new))
            prev = new
        c.execute(update(audit_heads).where(audit_heads.c.region == region, audit_heads.c.lane == 0).values(hash=prev))
    db.run(work)


def forge_transfer(db: Database, *, debit: str, credit: str, amount: int, region: str = "440300", client_id: str = "forged:1") -> None:
    """A posted transfer inserted directly, both balances moved to match: the ledger still sums to zero."""
    def work(c):  # noqa: ANN001, ANN202
        c.execute(insert(transfers).values(client_id=client_id, region=region, debit_account_id=debit, credit_account_id=credit,
                                           amount=amount, kind="single", state="posted", code="contribution", ref="forged",
                                           created_at=db.clock()))
        c.execute(update(ledger_accounts).where(ledger_accounts.c.id == debit).values(debits_posted=ledger_accounts.c.debits_posted + amount))
        c.execute(update(ledger_accounts).where(ledger_accounts.c.id == credit).values(credits_posted=ledger_accounts.c.credits_posted + amount))
    db.run(work)
