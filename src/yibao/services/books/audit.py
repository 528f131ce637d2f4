"""The append-only, hash-chained audit log of money-state changes and PII access.

One chain per region: entry n stores sha256(prev_hash ‖ canonical entry), and a head row per
region holds the last (seq, hash). Appending locks the head row, so entries of one region are
totally ordered; `verify` recomputes every chain and reports the first break.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.formats import fastjson
from yibao.store.sql import Sql
from yibao.store.tables import audit_heads as H
from yibao.store.tables import audit_log as L
from yibao.store.upsert import insert_ignore

_HEAD = Sql("SELECT seq, hash FROM audit_heads WHERE region = :region {lock}")
_APPEND = Sql("""INSERT INTO audit_log (region, seq, at, actor, action, subject, detail, prev_hash, hash)
                 VALUES (:region, :seq, :at, :actor, :action, :subject, :detail, :prev, :hash)""")
_MOVE_HEAD = Sql("UPDATE audit_heads SET seq = :seq, hash = :hash WHERE region = :region")

GENESIS = "0" * 64


def _digest(prev: str, region: str, seq: int, at: datetime, actor: str, action: str, subject: str, detail: str) -> str:
    canonical = json.dumps([region, seq, at.isoformat(timespec="microseconds").replace("+00:00", "Z"), actor, action, subject, detail],
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()


def _utc(at: datetime) -> datetime:
    from datetime import timezone

    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def append(conn: Connection, *, region: str, actor: str, action: str, subject: str, detail: dict[str, Any], now: datetime) -> int:
    """Add one entry to the region's chain inside the caller's transaction; returns its sequence number."""
    head = _HEAD(conn, {"region": region}).first()
    if head is None:  # the region's first entry
        insert_ignore(conn, H, dict(region=region, seq=0, hash=GENESIS))
        head = _HEAD(conn, {"region": region}).first()
    prev_seq, prev_hash = int(head[0]), head[1]
    seq = prev_seq + 1
    at = _utc(now)
    text = fastjson.dumps(detail, sort_keys=True)  # canonical: sorted keys, compact, UTF-8
    digest = _digest(prev_hash, region, seq, at, actor, action, subject, text)
    _APPEND(conn, dict(region=region, seq=seq, at=at, actor=actor, action=action, subject=subject, detail=text, prev=prev_hash, hash=digest))
    _MOVE_HEAD(conn, {"region": region, "seq": seq, "hash": digest})
    return seq


@dataclass(frozen=True)
class ChainReport:
    region: str
    entries: int
    ok: bool
    problem: str | None = None


def verify(conn: Connection) -> list[ChainReport]:
    reports = []
    heads = {r.region: r for r in conn.execute(select(H)).all()}
    regions = sorted(set(heads) | {r[0] for r in conn.execute(select(L.c.region).distinct()).all()})
    for region in regions:
        prev, count, problem = GENESIS, 0, None
        for row in conn.execute(select(L).where(L.c.region == region).order_by(L.c.seq)).yield_per(1000):
            count += 1
            if row.seq != count:
                problem = f"entry {count}: sequence {row.seq} (a gap or a deleted entry)"
                break
            if row.prev_hash != prev:
                problem = f"entry {row.seq}: prev_hash does not match the entry before it"
                break
            expected = _digest(prev, region, row.seq, _utc(row.at), row.actor, row.action, row.subject, row.detail)
            if expected != row.hash:
                problem = f"entry {row.seq}: content does not match its hash (altered)"
                break
            prev = row.hash
        head = heads.get(region)
        if problem is None and head is not None and (head.seq != count or head.hash != prev):
            problem = f"head says {head.seq} entries but the chain has {count} (entries removed from the end?)"
        reports.append(ChainReport(region, count, problem is None, problem))
    return reports


def entries(conn: Connection, region: str | None = None, limit: int = 100) -> list[Any]:
    q = select(L).order_by(L.c.at.desc(), L.c.seq.desc()).limit(limit)
    if region:
        q = q.where(L.c.region == region)
    return conn.execute(q).all()
