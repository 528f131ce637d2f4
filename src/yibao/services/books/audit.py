"""The append-only, keyed, anchored audit log of money-state changes and PII access.

Each region's trail is LANES chains ("lanes"), each with a head row holding its last (seq, hash): entry n of a
lane stores HMAC-SHA256(key, prev_hash ‖ canonical entry) with a key derived from the master key (`use_key`).
Without the key, someone able to write the database cannot recompute a chain after editing a row.

**Lanes, so a region is not serialised.** One chain per region meant one head row that every unit of the
region updated and held until its commit: the region's settlements queued behind each other's commit fsync on
PostgreSQL (issue 13). A unit now takes the first head of its region that no other open unit holds
(`FOR UPDATE SKIP LOCKED`, lowest lane first) and waits only when every lane is taken. Each lane is a complete
chain — its sequence, MACs and anchors are checked as one region's chain was — and an entry's MAC covers its
lane, so an entry moved between lanes fails. SQLite has one writer at a time: there, every entry is in lane 0.

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
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import InputError
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

LANES = 32  # heads per region: a unit holds one until its commit, so this many of a region's units commit at once without waiting

# The first free head of the region (PostgreSQL: skipping those other units hold; SQLite: lane 0), and one
# lane named, waited for, when every head was taken.
_FREE_HEAD = Sql("SELECT lane, seq, hash FROM audit_heads WHERE region = :region ORDER BY lane LIMIT 1 {skip_locked}")
_HEAD = Sql("SELECT lane, seq, hash FROM audit_heads WHERE region = :region AND lane = :lane {lock}")
_APPEND = Sql("""INSERT INTO audit_log (region, lane, seq, at, actor, action, subject, detail, prev_hash, hash, transfers)
                 VALUES (:region, :lane, :seq, :at, :actor, :action, :subject, :detail, :prev, :hash, :transfers)""")
_MOVE_HEAD = Sql("UPDATE audit_heads SET seq = :seq, hash = :hash WHERE region = :region AND lane = :lane")


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
         transfers: str | None, lane: int = 0) -> str:
    # Lane 0's canonical form is the one chains had before lanes (so they verify unchanged); any other lane is in it.
    fields: list[Any] = [region, seq, _iso(at), actor, action, subject, detail, transfers]
    if lane:
        fields.append(lane)
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
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
        head = _take_head(conn, region)
        lane, seq, prev = int(head.lane), int(head.seq), head.hash
        rows = []
        for i, (_, at, actor, action, subject, detail) in by_region[region]:
            seq += 1
            carried = transfers if i == last else None
            digest = _mac(key, prev, region, seq, at, actor, action, subject, detail, carried, lane)
            rows.append(dict(region=region, lane=lane, seq=seq, at=at, actor=actor, action=action, subject=subject, detail=detail,
                             prev=prev, hash=digest, transfers=carried))
            prev = digest
        _APPEND(conn, rows if len(rows) > 1 else rows[0])
        _MOVE_HEAD(conn, {"region": region, "lane": lane, "seq": seq, "hash": prev})
    pending.entries.clear()
    pending.transfers.clear()


def _take_head(conn: Connection, region: str) -> Any:
    """Lock and return a head of the region: the first one free, else (every lane busy) a random one, waited for."""
    head = _FREE_HEAD(conn, {"region": region}).first()
    if head is None:
        head = _HEAD(conn, {"region": region, "lane": random.randrange(LANES)}).first()
    if head is None:  # the region's first entry: its lanes are opened together
        for lane in range(LANES):
            insert_ignore(conn, H, dict(region=region, lane=lane, seq=0, hash=GENESIS, keyed_from=1, legacy_transfers_upto=0))
        head = _HEAD(conn, {"region": region, "lane": 0}).first()
    return head


# ---- verifying -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChainReport:
    region: str
    entries: int
    ok: bool
    problem: str | None = None
    # (topic, (state, line)) to append to the anchor file when the region verified: each lane's head, MAC'd.
    anchors: tuple[tuple[str, tuple[str, str]], ...] = field(default=(), repr=False, compare=False)

    def view(self) -> dict[str, Any]:
        return {"region": self.region, "entries": self.entries, "ok": self.ok, "problem": self.problem}


@dataclass(frozen=True)
class _Pin:
    seq: int
    hash: str
    keyed_from: int
    legacy_upto: int
    at: str


def _topic(region: str, lane: int) -> str:
    return region if lane == 0 else f"{region}/{lane}"  # lane 0 keeps the topic a region's single chain had


def _anchor_line(key: bytes, region: str, lane: int, seq: int, digest: str, keyed_from: int, legacy_upto: int) -> tuple[str, tuple[str, str]]:
    at = _iso(datetime.now(timezone.utc))
    fields = [2, region, lane, seq, digest, keyed_from, legacy_upto, at]
    mac = hmac.new(key, json.dumps(fields, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()
    line = json.dumps({"v": 2, "region": region, "lane": lane, "seq": seq, "hash": digest, "keyed_from": keyed_from,
                       "legacy_upto": legacy_upto, "at": at, "mac": mac}, separators=(",", ":"))
    return _topic(region, lane), (f"{seq}:{digest}:{keyed_from}:{legacy_upto}", line)


def _parse_anchors(lines: Sequence[str], key: bytes | None) -> tuple[dict[tuple[str, int], list[_Pin]], list[str]]:
    """Pins by (region, lane). Version 1 lines (before lanes) pin lane 0."""
    pins: dict[tuple[str, int], list[_Pin]] = defaultdict(list)
    problems: list[str] = []
    if lines and key is None:
        return pins, ["审计链密钥未配置，无法核对锚点 / no audit key is configured: the anchors cannot be checked"]
    for n, line in enumerate(lines, 1):
        try:
            d = json.loads(line)
            if d["v"] == 1:
                lane, fields = 0, [d["v"], d["region"], d["seq"], d["hash"], d["keyed_from"], d["legacy_upto"], d["at"]]
            else:
                lane = int(d["lane"])
                fields = [d["v"], d["region"], d["lane"], d["seq"], d["hash"], d["keyed_from"], d["legacy_upto"], d["at"]]
            pin = _Pin(int(d["seq"]), str(d["hash"]), int(d["keyed_from"]), int(d["legacy_upto"]), str(d["at"]))
            mac = str(d["mac"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"锚点文件第 {n} 行无法读取 / anchor file line {n} cannot be read")
            continue
        expected = hmac.new(key, json.dumps(fields, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()  # type: ignore[arg-type]
        if not hmac.compare_digest(expected, mac):
            problems.append(f"锚点文件第 {n} 行的校验码不符（非本平台密钥写入） / anchor file line {n} fails its MAC (not written with this platform's key)")
            continue
        pins[(str(d["region"]), lane)].append(pin)
    return pins, problems


def _lane(lane: int) -> tuple[str, str]:
    """How a problem names the lane (nothing for lane 0, so a region's one chain reads as before)."""
    return ("", "") if lane == 0 else (f"第 {lane} 道 ", f"lane {lane}, ")


def verify(conn: Connection, anchors: Sequence[str] | None = None) -> list[ChainReport]:
    """Recompute every chain (each lane of each region), check it against the anchor file's lines (``anchors``,
    when given), and cross-check the ledger against the trail; one report per region, with its first problem."""
    root = audit_key(conn)
    entry_key, anchor_key = _subkeys(root) if root is not None else (None, None)
    problems: dict[str, str] = {}

    def problem(region: str, text: str) -> None:
        problems.setdefault(region, text)

    heads = {(r.region, int(r.lane)): r for r in conn.execute(select(H)).all()}
    pins, file_problems = _parse_anchors(anchors or [], anchor_key)
    chains = {(r[0], int(r[1])) for r in conn.execute(select(L.c.region, L.c.lane).distinct()).all()}
    counts: dict[tuple[str, int], int] = {}
    vouched: dict[str, tuple[str, str, str, int]] = {}
    for region, lane in sorted(set(heads) | chains):
        zh, en = _lane(lane)
        head = heads.get((region, lane))
        keyed_from = head.keyed_from if head is not None else 1
        pinned: dict[int, list[_Pin]] = defaultdict(list)
        for pin in pins.get((region, lane), []):
            pinned[pin.seq].append(pin)
        prev, count, broken = GENESIS, 0, False
        rows = conn.execute(select(L).where(L.c.region == region, L.c.lane == lane).order_by(L.c.seq)).yield_per(1000)
        for row in rows:
            count += 1
            if row.seq != count:
                problem(region, f"{zh}第 {count} 条缺失（序号为 {row.seq}：有间断或被删除） / {en}entry {count}: sequence {row.seq} "
                                "(a gap or a deleted entry)")
                broken = True
                break
            if row.prev_hash != prev:
                problem(region, f"{zh}第 {row.seq} 条的前序哈希与上一条不符 / {en}entry {row.seq}: prev_hash does not match the entry before it")
                broken = True
                break
            at = _utc(row.at)
            if row.seq < keyed_from:
                expected = _sha(prev, region, row.seq, at, row.actor, row.action, row.subject, row.detail)
            elif entry_key is None:
                problem(region, "审计链密钥未配置，无法校验 / no audit key is configured: the keyed entries cannot be checked")
                broken = True
                break
            else:
                expected = _mac(entry_key, prev, region, row.seq, at, row.actor, row.action, row.subject, row.detail, row.transfers, lane)
            if not hmac.compare_digest(expected, row.hash):
                problem(region, f"{zh}第 {row.seq} 条内容与其校验码不符（被改动） / {en}entry {row.seq}: content does not match its MAC (altered)")
                broken = True
                break
            for pin in pinned.get(row.seq, ()):
                if pin.hash != row.hash:
                    problem(region, f"{zh}第 {row.seq} 条与 {pin.at} 的锚点不符（被重写） / {en}entry {row.seq} differs from the anchor of "
                                    f"{pin.at} (rewritten)")
            if row.transfers:
                for client_id, t_region, debit, credit, amount in json.loads(row.transfers):
                    vouched[client_id] = (t_region, debit, credit, int(amount))
            prev = row.hash
        if broken:
            rows.close()  # the rest of a broken chain is not read (yield_per keeps a server-side cursor)
        counts[(region, lane)] = count
        if broken:
            continue
        if head is None:
            problem(region, f"{zh}缺少链头记录 / {en}the chain has no head row")
        elif head.seq != count or head.hash != prev:
            problem(region, f"{zh}链头记录 {head.seq} 条，链上有 {count} 条（末尾被删除？） / {en}head says {head.seq} entries but the chain "
                            f"has {count} (entries removed from the end?)")
    for (region, lane), lane_pins in pins.items():
        zh, en = _lane(lane)
        head = heads.get((region, lane))
        have = counts.get((region, lane), 0)
        for pin in lane_pins:
            if pin.seq > have:
                problem(region, f"{zh}{pin.at} 的锚点记录该链已有 {pin.seq} 条，现只有 {have} 条（被截断或回退） / {en}the anchor of "
                                f"{pin.at} recorded {pin.seq} entries, the chain has {have} (truncated or rewound)")
            elif head is not None and (pin.keyed_from, pin.legacy_upto) != (head.keyed_from, head.legacy_transfers_upto):
                problem(region, f"{zh}链头的密钥起点或遗留转账界限在 {pin.at} 锚定后被改动 / {en}the head's keyed_from or legacy boundary "
                                f"changed since the anchor of {pin.at}")
    _cross_check(conn, list(heads.values()), vouched, problem)

    regions = {region for region, _ in counts} | {region for region, _ in pins} | set(problems)
    reports = []
    for region in sorted(regions):
        text = problems.get(region)
        lines: tuple[tuple[str, tuple[str, str]], ...] = ()
        if text is None and anchor_key is not None:
            lines = tuple(_anchor_line(anchor_key, region, lane, int(h.seq), h.hash, int(h.keyed_from), int(h.legacy_transfers_upto))
                          for (r, lane), h in sorted(heads.items()) if r == region and h.seq > 0)
        entries_ = sum(n for (r, _), n in counts.items() if r == region)
        reports.append(ChainReport(region, entries_, text is None, text, lines))
    if file_problems:
        reports.append(ChainReport("anchors", len(anchors or []), False, file_problems[0]))
    return reports


def _cross_check(conn: Connection, heads: Sequence[Any], vouched: dict[str, tuple[str, str, str, int]],
                 problem: Callable[[str, str], None]) -> None:
    """The ledger against the trail: every transfer (after the legacy boundary) is the one an entry vouched
    for, every vouched transfer exists, and every account's four sides are the sums of its transfers."""
    boundary = max((int(h.legacy_transfers_upto) for h in heads), default=0)
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
    for a in conn.execute(select(A.c.id, A.c.region, A.c.debits_pending, A.c.debits_posted, A.c.credits_pending, A.c.credits_posted,
                                 A.c.debits_must_not_exceed_credits)).all():
        # An account that derives its balance from its transfers never has its row written: anything there is an edit.
        expected = sides.get(a.id, [0, 0, 0, 0]) if a.debits_must_not_exceed_credits else [0, 0, 0, 0]
        if [int(a.debits_pending), int(a.debits_posted), int(a.credits_pending), int(a.credits_posted)] != expected:
            problem(a.region, f"账户 {a.id} 的余额与其转账合计不符（被改动） / account {a.id}: its balance does not match the sum of its "
                              "transfers (edited)")


def entries(conn: Connection, region: str | None = None, limit: int = 100) -> list[Any]:
    q = select(L).order_by(L.c.at.desc(), L.c.seq.desc()).limit(limit)
    if region:
        q = q.where(L.c.region == region)
    return conn.execute(q).all()


# ---- reading the log a page at a time (the /admin audit page) ---------------------------------------------

PAGE_SIZE = 50


@dataclass(frozen=True)
class Position:
    """Where an entry stands in the log's order, newest first: its time, then its place in its region's lane
    (region, lane, sequence) — unique (the table's key), so a page that starts after it misses and repeats nothing
    while entries are appended in front."""

    at: datetime
    region: str
    lane: int
    seq: int

    def token(self) -> str:
        """For a page's link: 20261207T103000123456.440300.0.812 (the time in UTC, to the microsecond)."""
        return f"{_utc(self.at).strftime('%Y%m%dT%H%M%S%f')}.{self.region}.{self.lane}.{self.seq}"

    @staticmethod
    def parse(token: str) -> Position:
        try:
            at, region, lane, seq = token.split(".")
            if not (len(region) == 6 and region.isdigit()):
                raise ValueError(region)
            return Position(datetime.strptime(at, "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc), region, int(lane), int(seq))
        except ValueError:
            raise InputError("before", "invalid_position", "翻页位置无效", "not a position in the audit log") from None


@dataclass(frozen=True)
class Search:
    """What the audit page filters by; each empty one filters nothing. ``since``/``until`` are instants in UTC
    (until excluded); ``actor`` matches from its start ("operator:" is every operator)."""

    region: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Page:
    entries: list[Any]
    older: Position | None  # where the next (older) page starts after; None on the last page


def search(conn: Connection, what: Search, before: Position | None = None, size: int = PAGE_SIZE) -> Page:
    """A page of the log newest first, matching ``what``, after ``before`` (keyset: no offset, so an old page costs
    what the first does and entries appended meanwhile shift nothing)."""
    q = select(L)
    if what.region:
        q = q.where(L.c.region == what.region)
    if what.action:
        q = q.where(L.c.action == what.action)
    if what.actor:
        q = q.where(L.c.actor.startswith(what.actor, autoescape=True))
    if what.since is not None:
        q = q.where(L.c.at >= _utc(what.since))
    if what.until is not None:
        q = q.where(L.c.at < _utc(what.until))
    if before is not None:
        at = _utc(before.at)
        q = q.where(or_(L.c.at < at,
                        and_(L.c.at == at, or_(L.c.region < before.region,
                                                and_(L.c.region == before.region, or_(L.c.lane < before.lane,
                                                                                      and_(L.c.lane == before.lane, L.c.seq < before.seq)))))))
    rows = conn.execute(q.order_by(L.c.at.desc(), L.c.region.desc(), L.c.lane.desc(), L.c.seq.desc()).limit(size + 1)).all()
    if len(rows) <= size:
        return Page(rows, None)
    last = rows[size - 1]
    return Page(rows[:size], Position(last.at, last.region, last.lane, last.seq))


# ---- anchoring: after commit, outside every unit ---------------------------------------------------------

def heads_to_anchor(conn: Connection) -> dict[str, tuple[str, str]]:
    """Every lane's head that has entries as an anchor line (read in a unit; written to the file after it)."""
    root = audit_key(conn)
    if root is None:
        raise AuditKeyMissing()
    key = _subkeys(root)[1]
    return dict(_anchor_line(key, r.region, int(r.lane), int(r.seq), r.hash, int(r.keyed_from), int(r.legacy_transfers_upto))
                for r in conn.execute(select(H).where(H.c.seq > 0)).all())


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
    return await asyncio.to_thread(anchors.append, {topic: line for r in reports if r.ok for topic, line in r.anchors})


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
