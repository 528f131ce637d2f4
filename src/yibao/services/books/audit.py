"""The append-only, keyed, anchored audit log of money-state changes and PII access.

One chain per region: entry n stores HMAC-SHA256(key, prev_hash ‖ canonical entry) with a key derived
from the master key (`use_key`), and a head row per region holds the last (seq, hash). Without the key,
someone able to write the database cannot recompute the chain after editing a row.

**Appended last.** `append` only queues the entry; the unit of work writes its entries when its work is
done, just before it commits (store/db.py `unit_end`), locking each region's head in region order. So the
audit head is the LAST lock of every unit (docs/architecture.md, the lock order) and is held only for the
few statements of the append.

**Transfers vouched for.** The ledger hands every transfer it writes to `vouch`; the unit's last entry
carries them ([client_id, region, debit, credit, amount]) under its MAC. `verify` checks every transfer in
the ledger against them and every account's balance against its transfers: a transfer inserted or altered
directly in the database, or a balance edited, is reported.

**Anchored outside the database.** A region's head is checkpointed to an append-only file
(store/anchors.py) — after commit, never inside a unit: on every verify, periodically, at shutdown
(`anchor_periodically`). `verify` checks the chain against every anchor line, so truncating the chain,
rewinding its head, or rewriting entries (even with the key) before the last anchor is reported.
What is appended after the last anchor is covered only by the MACs until the next anchor: that is the
window (docs/architecture.md, Storage). A crash between a commit and the next anchor loses nothing; the
entries are anchored by the next checkpoint.

**Upgraded databases.** Migration 0010 starts the keyed chain at each region's head (`keyed_from`):
earlier entries stay plain SHA-256, and the first keyed entry MACs the last plain hash as its prev_hash,
so editing an old entry and recomputing the old part changes a value the keyed part covers. Transfers up
to `legacy_transfers_upto` predate vouching and are checked only against the accounts' balances.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.formats import fastjson
from yibao.store.anchors import AnchorLog
from yibao.store.db import Database, audit_key, unit_end
from yibao.store.sql import Sql
from yibao.store.tables import audit_heads as H
from yibao.store.tables import audit_log as L
from yibao.store.tables import ledger_accounts as A
from yibao.store.tables import transfers as T
from yibao.store.upsert import insert_ignore

log = logging.getLogger("yibao.audit")

KEY_PURPOSE = "audit chain v1"
GENESIS = "0" * 64

_HEAD = Sql("SELECT seq, hash, keyed_from FROM audit_heads WHERE region = :region {lock}")
_APPEND = Sql("""INSERT INTO audit_log (region, seq, at, actor, action, subject, detail, prev_hash, hash, transfers)
                 VALUES (:region, :seq, :at, :actor, :action, :subject, :detail, :prev, :hash, :transfers)""")
_MOVE_HEAD = Sql("UPDATE audit_heads SET seq = :seq, hash = :hash WHERE region = :region")


class AuditKeyMissing(RuntimeError):
    """The database was given no audit key (`use_key`): nothing may be appended unkeyed."""

    def __init__(self) -> None:
        super().__init__("审计链密钥未配置 / the audit chain key is not configured (yibao.services.books.audit.use_key)")


def use_key(db: Database, keyring: Keyring) -> None:
    """Key this database's audit chain with the master key's audit purpose key (every entrypoint does)."""
    db.use_audit_key(keyring.purpose_key(KEY_PURPOSE))


@lru_cache(maxsize=8)
def _subkeys(root: bytes) -> tuple[bytes, bytes]:
    # One key, one use: entries and anchor lines are MAC'd with keys of their own.
    return hmac.new(root, b"entries", hashlib.sha256).digest(), hmac.new(root, b"anchors", hashlib.sha256).digest()


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _sha(prev: str, region: str, seq: int, at: datetime, actor: str, action: str, subject: str, detail: str) -> str:
    """The unkeyed digest of entries written before the chain was keyed (before migration 0010)."""
    canonical = json.dumps([region, seq, _iso(at), actor, action, subject, detail], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest()


def _mac(key: bytes, prev: str, region: str, seq: int, at: datetime, actor: str, action: str, subject: str, detail: str,
         transfers: str | None) -> str:
    canonical = json.dumps([region, seq, _iso(at), actor, action, subject, detail, transfers], ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, (prev + canonical).encode("utf-8"), hashlib.sha256).hexdigest()


# ---- appending -------------------------------------------------------------------------------------

class _Pending:
    """What one unit of work adds to the trail: its entries, in order, and the transfers it wrote. Written
    by the unit's end hook (store/db.py `unit_end`), after the unit's work, before its commit."""

    __slots__ = ("entries", "transfers", "now")

    def __init__(self) -> None:
        self.entries: list[tuple[str, datetime, str, str, str, str]] = []
        self.transfers: list[tuple[str, str, str, str, int]] = []
        self.now: datetime | None = None  # the unit's time, for an entry of its own when it moved money without one

    def __call__(self, conn: Connection) -> None:
        _write(conn, self)


def _pending(conn: Connection) -> tuple[_Pending, bool]:
    """The unit's pending entries (and whether they are written now: a connection no unit runs)."""
    hooks = unit_end(conn)
    if hooks is None:
        return _Pending(), True
    for hook in hooks:
        if type(hook) is _Pending:
            return hook, False
    pending = _Pending()
    hooks.append(pending)
    return pending, False


def append(conn: Connection, *, region: str, actor: str, action: str, subject: str, detail: dict[str, Any], now: datetime) -> None:
    """Add one entry to the region's chain as part of the caller's unit of work (written when its work is done)."""
    pending, now_ = _pending(conn)
    pending.entries.append((region, _utc(now), actor, action, subject, fastjson.dumps(detail, sort_keys=True)))
    if now_:
        _write(conn, pending)


def vouch(conn: Connection, transfers: Iterable[tuple[str, str, str, str, int]], now: datetime) -> None:
    """The ledger's transfers of this unit, (client_id, region, debit, credit, amount): carried by its last entry."""
    pending, now_ = _pending(conn)
    pending.transfers.extend(transfers)
    pending.now = pending.now or now
    if now_:
        _write(conn, pending)


def _write(conn: Connection, pending: _Pending) -> None:
    if pending.transfers and not pending.entries:  # a unit that moved money without an entry: its transfers still get one
        first = pending.transfers[0]
        pending.entries.append((first[1], _utc(pending.now or datetime.now(timezone.utc)), "system", "ledger.transfers", first[0][:80],
                                fastjson.dumps({"count": len(pending.transfers)}, sort_keys=True)))
    if not pending.entries:
        return
    root = audit_key(conn)
    if root is None:
        raise AuditKeyMissing()
    key = _subkeys(root)[0]
    last = len(pending.entries) - 1
    transfers = fastjson.dumps([list(t) for t in pending.transfers]) if pending.transfers else None
    by_region: dict[str, list[tuple[int, tuple[str, datetime, str, str, str, str]]]] = defaultdict(list)
    for i, entry in enumerate(pending.entries):
        by_region[entry[0]].append((i, entry))
    for region in sorted(by_region):  # one order for the heads of several regions
        head = _HEAD(conn, {"region": region}).first()
        if head is None:  # the region's first entry
            insert_ignore(conn, H, dict(region=region, seq=0, hash=GENESIS, keyed_from=1, legacy_transfers_upto=0))
            head = _HEAD(conn, {"region": region}).first()
        seq, prev = int(head.seq), head.hash
        rows = []
        for i, (_, at, actor, action, subject, detail) in by_region[region]:
            seq += 1
            carried = transfers if i == last else None
            digest = _mac(key, prev, region, seq, at, actor, action, subject, detail, carried)
            rows.append(dict(region=region, seq=seq, at=at, actor=actor, action=action, subject=subject, detail=detail, prev=prev,
                             hash=digest, transfers=carried))
            prev = digest
        _APPEND(conn, rows if len(rows) > 1 else rows[0])
        _MOVE_HEAD(conn, {"region": region, "seq": seq, "hash": prev})
    pending.entries.clear()
    pending.transfers.clear()


# ---- verifying -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainReport:
    region: str
    entries: int
    ok: bool
    problem: str | None = None
    # (state, line) to append to the anchor file when the region verified: its head, MAC'd.
    anchor: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    def view(self) -> dict[str, Any]:
        return {"region": self.region, "entries": self.entries, "ok": self.ok, "problem": self.problem}


@dataclass(frozen=True)
class _Pin:
    seq: int
    hash: str
    keyed_from: int
    legacy_upto: int
    at: str


def _anchor_line(key: bytes, region: str, seq: int, digest: str, keyed_from: int, legacy_upto: int) -> tuple[str, str]:
    at = _iso(datetime.now(timezone.utc))
    fields = [1, region, seq, digest, keyed_from, legacy_upto, at]
    mac = hmac.new(key, json.dumps(fields, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()
    line = json.dumps({"v": 1, "region": region, "seq": seq, "hash": digest, "keyed_from": keyed_from, "legacy_upto": legacy_upto,
                       "at": at, "mac": mac}, separators=(",", ":"))
    return f"{seq}:{digest}:{keyed_from}:{legacy_upto}", line


def _parse_anchors(lines: Sequence[str], key: bytes | None) -> tuple[dict[str, list[_Pin]], list[str]]:
    pins: dict[str, list[_Pin]] = defaultdict(list)
    problems: list[str] = []
    if lines and key is None:
        return pins, ["审计链密钥未配置，无法核对锚点 / no audit key is configured: the anchors cannot be checked"]
    for n, line in enumerate(lines, 1):
        try:
            d = json.loads(line)
            fields = [d["v"], d["region"], d["seq"], d["hash"], d["keyed_from"], d["legacy_upto"], d["at"]]
            pin = _Pin(int(d["seq"]), str(d["hash"]), int(d["keyed_from"]), int(d["legacy_upto"]), str(d["at"]))
            mac = str(d["mac"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"锚点文件第 {n} 行无法读取 / anchor file line {n} cannot be read")
            continue
        expected = hmac.new(key, json.dumps(fields, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()  # type: ignore[arg-type]
        if not hmac.compare_digest(expected, mac):
            problems.append(f"锚点文件第 {n} 行的校验码不符（非本平台密钥写入） / anchor file line {n} fails its MAC (not written with this platform's key)")
            continue
        pins[str(d["region"])].append(pin)
    return pins, problems


def verify(conn: Connection, anchors: Sequence[str] | None = None) -> list[ChainReport]:
    """Recompute every region's chain, check it against the anchor file's lines (``anchors``, when given),
    and cross-check the ledger against the trail; one report per region, with its first problem."""
    root = audit_key(conn)
    entry_key, anchor_key = _subkeys(root) if root is not None else (None, None)
    problems: dict[str, str] = {}

    def problem(region: str, text: str) -> None:
        problems.setdefault(region, text)

    heads = {r.region: r for r in conn.execute(select(H)).all()}
    pins, file_problems = _parse_anchors(anchors or [], anchor_key)
    chain_regions = {r[0] for r in conn.execute(select(L.c.region).distinct()).all()}
    counts: dict[str, int] = {}
    vouched: dict[str, tuple[str, str, str, int]] = {}
    for region in sorted(set(heads) | chain_regions):
        head = heads.get(region)
        keyed_from = head.keyed_from if head is not None else 1
        pinned: dict[int, list[_Pin]] = defaultdict(list)
        for pin in pins.get(region, []):
            pinned[pin.seq].append(pin)
        prev, count = GENESIS, 0
        for row in conn.execute(select(L).where(L.c.region == region).order_by(L.c.seq)).yield_per(1000):
            count += 1
            if row.seq != count:
                problem(region, f"第 {count} 条缺失（序号为 {row.seq}：有间断或被删除） / entry {count}: sequence {row.seq} (a gap or a deleted entry)")
                break
            if row.prev_hash != prev:
                problem(region, f"第 {row.seq} 条的前序哈希与上一条不符 / entry {row.seq}: prev_hash does not match the entry before it")
                break
            at = _utc(row.at)
            if row.seq < keyed_from:
                expected = _sha(prev, region, row.seq, at, row.actor, row.action, row.subject, row.detail)
            elif entry_key is None:
                problem(region, "审计链密钥未配置，无法校验 / no audit key is configured: the keyed entries cannot be checked")
                break
            else:
                expected = _mac(entry_key, prev, region, row.seq, at, row.actor, row.action, row.subject, row.detail, row.transfers)
            if not hmac.compare_digest(expected, row.hash):
                problem(region, f"第 {row.seq} 条内容与其校验码不符（被改动） / entry {row.seq}: content does not match its MAC (altered)")
                break
            for pin in pinned.get(row.seq, ()):
                if pin.hash != row.hash:
                    problem(region, f"第 {row.seq} 条与 {pin.at} 的锚点不符（被重写） / entry {row.seq} differs from the anchor of {pin.at} (rewritten)")
            if row.transfers:
                for client_id, t_region, debit, credit, amount in json.loads(row.transfers):
                    vouched[client_id] = (t_region, debit, credit, int(amount))
            prev = row.hash
        counts[region] = count
        if region in problems:
            continue
        if head is None:
            problem(region, "缺少链头记录 / the chain has no head row")
        elif head.seq != count or head.hash != prev:
            problem(region, f"链头记录 {head.seq} 条，链上有 {count} 条（末尾被删除？） / head says {head.seq} entries but the chain has {count} "
                            "(entries removed from the end?)")
    for region, region_pins in pins.items():
        head = heads.get(region)
        for pin in region_pins:
            if pin.seq > counts.get(region, 0):
                problem(region, f"{pin.at} 的锚点记录该链已有 {pin.seq} 条，现只有 {counts.get(region, 0)} 条（被截断或回退） / the anchor of "
                                f"{pin.at} recorded {pin.seq} entries, the chain has {counts.get(region, 0)} (truncated or rewound)")
            elif head is not None and (pin.keyed_from, pin.legacy_upto) != (head.keyed_from, head.legacy_transfers_upto):
                problem(region, f"链头的密钥起点或遗留转账界限在 {pin.at} 锚定后被改动 / the head's keyed_from or legacy boundary changed "
                                f"since the anchor of {pin.at}")
    _cross_check(conn, heads, vouched, problem)

    reports = []
    for region in sorted(set(counts) | set(pins) | set(problems)):
        text = problems.get(region)
        head = heads.get(region)
        anchor = None
        if text is None and head is not None and head.seq > 0 and anchor_key is not None:
            anchor = _anchor_line(anchor_key, region, int(head.seq), head.hash, int(head.keyed_from), int(head.legacy_transfers_upto))
        reports.append(ChainReport(region, counts.get(region, 0), text is None, text, anchor))
    if file_problems:
        reports.append(ChainReport("anchors", len(anchors or []), False, file_problems[0]))
    return reports


def _cross_check(conn: Connection, heads: dict[str, Any], vouched: dict[str, tuple[str, str, str, int]],
                 problem: Callable[[str, str], None]) -> None:
    """The ledger against the trail: every transfer (after the legacy boundary) is the one an entry vouched
    for, every vouched transfer exists, and every account's four sides are the sums of its transfers."""
    boundary = max((int(h.legacy_transfers_upto) for h in heads.values()), default=0)
    q = select(T.c.id, T.c.client_id, T.c.region, T.c.debit_account_id, T.c.credit_account_id, T.c.amount)
    for t in conn.execute(q.order_by(T.c.id)).yield_per(5000):
        seen = vouched.pop(t.client_id, None)
        if seen is None:
            if t.id > boundary:
                problem(t.region, f"转账 {t.client_id} 没有对应的审计记录（绕过平台写入？） / transfer {t.client_id} has no audit entry "
                                  "(written outside the platform?)")
        elif seen != (t.region, t.debit_account_id, t.credit_account_id, int(t.amount)):
            problem(t.region, f"转账 {t.client_id} 与其审计记录不符（被改动） / transfer {t.client_id} differs from its audit entry (altered)")
    for client_id, (region, *_rest) in vouched.items():
        problem(region, f"审计记录中的转账 {client_id} 不在账本中（被删除） / transfer {client_id} of the audit trail is missing from the ledger (deleted)")

    sides: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # debits_pending, debits_posted, credits_pending, credits_posted
    for index, column, pending in ((0, T.c.debit_account_id, True), (1, T.c.debit_account_id, False),
                                   (2, T.c.credit_account_id, True), (3, T.c.credit_account_id, False)):
        where = (T.c.kind == "pending") & (T.c.state == "pending") if pending else T.c.kind.in_(("single", "post"))
        for account_id, total in conn.execute(select(column, func.sum(T.c.amount)).where(where).group_by(column)).all():
            sides[account_id][index] = int(total)
    for a in conn.execute(select(A.c.id, A.c.region, A.c.debits_pending, A.c.debits_posted, A.c.credits_pending, A.c.credits_posted)).all():
        if [int(a.debits_pending), int(a.debits_posted), int(a.credits_pending), int(a.credits_posted)] != sides.get(a.id, [0, 0, 0, 0]):
            problem(a.region, f"账户 {a.id} 的余额与其转账合计不符（被改动） / account {a.id}: its balance does not match the sum of its "
                              "transfers (edited)")


def entries(conn: Connection, region: str | None = None, limit: int = 100) -> list[Any]:
    q = select(L).order_by(L.c.at.desc(), L.c.seq.desc()).limit(limit)
    if region:
        q = q.where(L.c.region == region)
    return conn.execute(q).all()


# ---- anchoring: after commit, outside every unit ---------------------------------------------------------

def heads_to_anchor(conn: Connection) -> dict[str, tuple[str, str]]:
    """Every region's head as an anchor line (read in a unit; written to the file after it)."""
    root = audit_key(conn)
    if root is None:
        raise AuditKeyMissing()
    key = _subkeys(root)[1]
    return {r.region: _anchor_line(key, r.region, int(r.seq), r.hash, int(r.keyed_from), int(r.legacy_transfers_upto))
            for r in conn.execute(select(H).where(H.c.seq > 0)).all()}


Run = Callable[..., Awaitable[Any]]


async def verify_and_anchor(run: Run, anchors: AnchorLog | None) -> list[ChainReport]:
    """Verify against the anchor file, then anchor every region that verified (its head as just checked)."""
    lines = await asyncio.to_thread(anchors.read) if anchors is not None else None
    reports = await run(lambda c: verify(c, lines), write=False)
    if anchors is not None:
        await anchor_reports(anchors, reports)
    return reports


async def anchor_reports(anchors: AnchorLog | None, reports: Sequence[ChainReport]) -> int:
    if anchors is None:
        return 0
    return await asyncio.to_thread(anchors.append, {r.region: r.anchor for r in reports if r.ok and r.anchor is not None})


async def anchor(run: Run, anchors: AnchorLog) -> int:
    """Checkpoint every region's head now (lines only for heads that moved since this process last wrote)."""
    lines = await run(heads_to_anchor, write=False)
    return await asyncio.to_thread(anchors.append, lines)


async def anchor_periodically(run: Run, anchors: AnchorLog, interval: float) -> None:
    """Anchor at once, then every ``interval`` seconds, and once more when cancelled (shutdown)."""
    try:
        while True:
            try:
                await anchor(run, anchors)
            except Exception:  # noqa: BLE001 - a failed checkpoint is logged and tried again next time
                log.exception("audit anchor: checkpoint failed")
            await asyncio.sleep(interval)
    finally:
        try:
            await anchor(run, anchors)
        except Exception:  # noqa: BLE001
            log.exception("audit anchor: checkpoint at shutdown failed")
