"""A day's reconciliation with one payment institution: its statement fetched through the connector (outside any unit),
then ONE unit that reads the platform's cash legs, matches (domain/reconciliation.py) and stores the run, its
differences, the pool and the legs matched off their day.

A re-run of a day is idempotent: the run row is the same (its counts as of the last run, ``runs`` counting them), a
difference is named by (institution, day, class, kind, our number) so the same one is found again, never added twice;
one already resolved stays resolved; an open one the re-run no longer finds is ``cleared``; the pool of the day is
written again from this run. Runs are meant to go in day order: a day's run takes what the previous day's left.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from yibao.channels.base import ChannelError, Statement
from yibao.domain import payment_order as po
from yibao.domain import reconciliation as rc
from yibao.domain.errors import InputError, NotFound, YibaoError
from yibao.domain.money import format_yuan
from yibao.formats.bulk import collector_paused
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.agency import payment_institutions as pis
from yibao.services.books import audit
from yibao.services.books.volumes import local_day
from yibao.store.rows import one_or
from yibao.store.sql import as_date, as_datetime
from yibao.store.tables import channel_configs as CFG
from yibao.store.tables import payment_orders as O
from yibao.store.tables import payment_refunds as R
from yibao.store.tables import reconciliation_differences as D
from yibao.store.tables import reconciliation_offday as OFF
from yibao.store.tables import reconciliation_pool as P
from yibao.store.tables import reconciliation_runs as RUN
from yibao.store.tables import transfers as T
from yibao.store.upsert import insert_ignore

CHUNK = 500  # numbers per IN (…) look-up
RETURNED_PREFIX, RETURNED_PREFIX_DIFF = "RR", "RD"  # a `refund` resolution's out_refund_no: RR + its difference's number

_PAID = tuple(po.PAID)
_NO_LEG = rc.Leg("trade", "", None, "", 0, None, rc.PENDING, "", "")  # a row without a leg of the day
_REFUND_STATUS = {"succeeded": rc.DONE, "requested": rc.PENDING, "unknown": rc.PENDING, "failed": rc.FAILED}


def _order_status(state: str) -> str:
    if state in po.PAID:
        return rc.DONE
    return rc.VOIDED if state == po.VOIDED else rc.PENDING


# ---- the platform's cash legs ----------------------------------------------------------------------

def _trade_select() -> Any:
    """An order's cash leg: ``{setl_id}:cash`` for an institution's payment; ``credit-hold:{order}`` (posted on capture)
    for a credit line's, which the bank's statement lists. A wallet's medical-insurance cash never passed our books."""
    cash, hold = T.alias("cash"), T.alias("hold")
    return (select(O.c.id, O.c.region, O.c.status, O.c.trade_no, O.c.completed_at, func.coalesce(cash.c.amount, hold.c.amount).label("amount"))
            .select_from(O.outerjoin(cash, and_(O.c.cash_source.is_(None), cash.c.client_id == O.c.setl_id + ":cash", cash.c.state == "posted"))
                         .outerjoin(hold, and_(O.c.cash_source == "credit", hold.c.client_id == "credit-hold:" + O.c.id,
                                               hold.c.state == "posted")))
            .where(or_(O.c.cash_source.is_(None), O.c.cash_source == "credit"), O.c.cash_pay > 0))


def _refund_select() -> Any:
    cash = T.alias("cash")
    return (select(R.c.id, R.c.order_id, R.c.region, R.c.status, R.c.refund_no, R.c.completed_at, cash.c.amount)
            .select_from(R.join(O, O.c.id == R.c.order_id)
                         .outerjoin(cash, and_(or_(and_(R.c.scope != "items", cash.c.client_id == O.c.setl_id + ":cash:refund"),
                                                   # a refund of items gives back part of the cash leg, by a transfer of its own
                                                   and_(R.c.scope == "items", cash.c.client_id == O.c.setl_id + ":cash:refund:" + R.c.id)),
                                               cash.c.state == "posted")))
            .where(O.c.cash_source.is_(None), R.c.cash_fen > 0))


def _trade_leg(r: Any, carried: bool = False) -> rc.Leg:
    status = _order_status(r.status)
    return rc.Leg("trade", r.id, r.trade_no, r.id, int(r.amount or 0) if status == rc.DONE else 0, as_datetime(r.completed_at), status,
                  r.status, r.id, None, r.region, carried)


def _refund_leg(r: Any, carried: bool = False) -> rc.Leg:
    status = _REFUND_STATUS.get(r.status, rc.PENDING)
    return rc.Leg("refund", r.id, r.refund_no, r.order_id, int(r.amount or 0) if status == rc.DONE else 0,
                  as_datetime(r.completed_at) if status == rc.DONE else None, status, r.status, r.order_id, r.id, r.region, carried)


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(v for v in values if v))
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _corrected(conn: Connection, legs: list[rc.Leg], corrections: Any = None) -> list[rc.Leg]:
    """A trade's cash leg as corrected by resolutions (`correcting_transfer`: code ``reconciliation``, ref the order): the
    books' amount is the cash transfer plus its corrections, so a corrected trade matches its statement row after.
    ``corrections``: a select of those transfers' (ref, credit_account_id, amount) covering the legs, for a whole day's
    legs in one query; without it they are looked up by the legs' numbers, one batch at a time."""
    delta: dict[str, int] = {}

    def add(found: Any) -> None:
        for t in found:
            delta[t.ref] = delta.get(t.ref, 0) + (int(t.amount) if t.credit_account_id.startswith("institution:") else -int(t.amount))
    if corrections is not None:
        add(conn.execute(corrections))
    else:
        done = [leg.key for leg in legs if leg.kind == "trade" and leg.status == rc.DONE]
        for chunk in _chunks(done):
            add(conn.execute(select(T.c.ref, T.c.credit_account_id, T.c.amount).where(T.c.code == "reconciliation", T.c.ref.in_(chunk))))
    if not delta:
        return legs
    return [leg._replace(amount_fen=leg.amount_fen + delta[leg.key]) if leg.kind == "trade" and leg.status == rc.DONE and leg.key in delta
            else leg for leg in legs]


def _lookup(conn: Connection, pi_id: str, kind: str, keys: Iterable[str], refs: Iterable[str]) -> list[rc.Leg]:
    """The platform's legs (any day, any state) named by our numbers or, second, the institution's."""
    out: dict[str, rc.Leg] = {}
    if kind == "trade":
        for col, values in ((O.c.id, keys), (O.c.trade_no, refs)):
            for chunk in _chunks(values):
                for r in conn.execute(_trade_select().where(O.c.payment_institution_id == pi_id, col.in_(chunk))):
                    out.setdefault(r.id, _trade_leg(r))
        return _corrected(conn, list(out.values()))
    keys = list(keys)
    for col, values in ((R.c.id, keys), (R.c.refund_no, refs)):
        for chunk in _chunks(values):
            for r in conn.execute(_refund_select().where(O.c.payment_institution_id == pi_id, col.in_(chunk))):
                out.setdefault(r.id, _refund_leg(r))
    # Refunds a resolution asked for (money without an order given back: out_refund_no RR + the difference's number).
    returned = {RETURNED_PREFIX_DIFF + k[len(RETURNED_PREFIX):]: k for k in keys if k.startswith(RETURNED_PREFIX)}
    for chunk in _chunks(returned):
        for r in conn.execute(select(D).where(D.c.id.in_(chunk), D.c.payment_institution_id == pi_id, D.c.resolution == "refund")):
            key = returned[r.id]
            out.setdefault(key, rc.Leg("refund", key, json.loads(r.outcome or "{}").get("refund", {}).get("refund_id"), r.out_trade_no,
                                       int(r.institution_fen), as_datetime(r.resolved_at), rc.DONE, "returned_without_order",
                                       r.order_id or "", None, r.region))
    return list(out.values())


def legs_of_day(conn: Connection, pi_id: str, day: date) -> list[rc.Leg]:
    """The cash legs the platform completed on ``day`` (Beijing) at the institution: orders paid, refunds given back —
    one streamed query per kind (a day may hold a million)."""
    start, end = rc.day_bounds(day)
    of_day = (O.c.payment_institution_id == pi_id, O.c.status.in_(_PAID), O.c.completed_at >= start, O.c.completed_at < end)
    trades = []
    for key, region, state, ref, at, amount in conn.execute(_trade_select().where(*of_day).execution_options(yield_per=20_000)):
        status = _order_status(state)  # as _trade_leg, unpacked: a million rows
        trades.append(rc.Leg("trade", key, ref, key, int(amount or 0) if status == rc.DONE else 0, as_datetime(at), status, state, key,
                             None, region))
    corrections = (select(T.c.ref, T.c.credit_account_id, T.c.amount).select_from(T.join(O, O.c.id == T.c.ref))
                   .where(T.c.code == "reconciliation", *of_day))
    refunds = [_refund_leg(r) for r in conn.execute(_refund_select().where(
        O.c.payment_institution_id == pi_id, R.c.status == "succeeded", R.c.completed_at >= start, R.c.completed_at < end)
        .execution_options(yield_per=20_000))]
    return _corrected(conn, trades, corrections) + refunds


def _offday(conn: Connection, pi_id: str, day: date, legs: list[rc.Leg]) -> set[tuple[str, str]]:
    """Legs of this day a statement of another day already matched. Such a leg is rare (one that crossed midnight between
    the two books): the institution's few are read at once and kept if they are among ``legs``."""
    off = {(r.kind, r.key) for r in conn.execute(select(OFF.c.kind, OFF.c.key).where(
        OFF.c.payment_institution_id == pi_id, OFF.c.statement_day != day))}
    return {(leg.kind, leg.key) for leg in legs if (leg.kind, leg.key) in off} if off else set()


# ---- the pool ---------------------------------------------------------------------------------------

def _row_json(row: rc.Row) -> str:
    d = row._asdict()
    d["at"] = iso_utc(row.at)
    d.pop("carried")
    return json.dumps(d, ensure_ascii=False)


def _leg_json(leg: rc.Leg) -> str:
    return json.dumps({"kind": leg.kind, "key": leg.key, "amount_fen": leg.amount_fen, "at": iso_utc(leg.at), "state": leg.state},
                      ensure_ascii=False)


def _carried(conn: Connection, pi_id: str, day: date) -> tuple[list[rc.Row], list[tuple[str, str]]]:
    """What the previous day's run left in the pool: its statement rows, and the (kind, key) of its legs (read again now)."""
    rows, legs = [], []
    for r in conn.execute(select(P).where(P.c.payment_institution_id == pi_id, P.c.day == day - timedelta(days=1)).order_by(P.c.id)):
        if r.side == "institution":
            d = json.loads(r.item)
            rows.append(rc.Row(d["kind"], d["key"], d["ref"], d["out_trade_no"], int(d["amount_fen"]), datetime.fromisoformat(d["at"]),
                               carried=True))
        else:
            legs.append((r.kind, r.key))
    return rows, legs


# ---- the run ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    run: dict[str, Any]
    differences: list[dict[str, Any]]


def _utc(at: datetime) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=rc.CHINA)).astimezone(timezone.utc)  # a statement's plain time is Beijing's


def rows_of(statement: Statement) -> list[rc.Row]:
    out = []
    utc: dict[datetime, datetime] = {}  # a day has at most 86,400 distinct seconds and a million rows
    for s in statement.rows:
        at = utc.get(s.at)
        if at is None:
            at = utc[s.at] = _utc(s.at)
        if s.kind == "trade":
            out.append(rc.Row("trade", s.out_trade_no, s.trade_no, s.out_trade_no, s.amount_fen, at))
        else:
            out.append(rc.Row("refund", s.out_refund_no or "", s.refund_id or "", s.out_trade_no, s.amount_fen, at))
    return out


def _platform_side(conn: Connection, pi_id: str, day: date, rows: list[rc.Row],
                   carried_keys: list[tuple[str, str]]) -> tuple[list[rc.Leg], list[rc.Leg], set[tuple[str, str]]]:
    """The legs the rows may match (``candidates``, any day, any state), the legs of the day that must each find a row
    (``day_legs``), and the carried (kind, key). The day's legs are read first, in one streamed query per kind; only the
    numbers no leg of the day answers for (a row of another day's leg, an order in doubt, an unknown number, a carried
    one) are looked up one batch at a time — on a day that balances, next to none."""
    own = legs_of_day(conn, pi_id, day)
    own_by_key = {(leg.kind, leg.key): leg for leg in own}
    carried_set = set(carried_keys)
    found: dict[tuple[str, str], rc.Leg] = {}
    for kind in ("trade", "refund"):
        mine = [r for r in rows if r.kind == kind]
        keys = [r.key for r in mine] + [k for kd, k in carried_keys if kd == kind]
        if kind == "trade":
            keys += [r.out_trade_no for r in rows if r.kind == "refund"]  # a refund's order
        # A row whose leg of the day has its institution's number too needs no look-up by that number.
        refs = [r.ref for r in mine if (own_by_key.get((kind, r.key)) or _NO_LEG).ref != r.ref]
        for key in keys:
            leg = own_by_key.get((kind, key))
            if leg is not None:
                found.setdefault((kind, key), leg)
        missing = [k for k in keys if (kind, k) not in own_by_key]
        for leg in _lookup(conn, pi_id, kind, missing, refs):
            found.setdefault((leg.kind, leg.key), leg)
    candidates = ([rc.carried(leg) if k in carried_set else leg for k, leg in found.items()] if carried_set  # type: ignore[misc]
                  else list(found.values()))
    # A carried leg no row names is looked up again too (it must be found or counted now).
    for kind, key in carried_keys:
        if (kind, key) not in found:
            candidates += [rc.carried(leg) for leg in _lookup(conn, pi_id, kind, [key], [])]  # type: ignore[misc]
    skip = _offday(conn, pi_id, day, own)
    leave = skip | carried_set
    day_legs = [leg for leg in own if (leg.kind, leg.key) not in leave] if leave else list(own)
    day_legs += [leg for leg in candidates if leg.carried]
    return candidates, day_legs, carried_set


def record(conn: Connection, now: datetime, *, pi_id: str, day: date, statement: Statement, actor: str,
           cutoff: timedelta = rc.CUTOFF, timings: dict[str, float] | None = None) -> RunResult:
    """One unit: read the platform's legs, match the statement's rows, store the run, its differences and its pool.
    ``timings``, if given, receives the seconds of each phase (``load``, ``match``, ``write``: bench/books.py)."""
    clock = time.perf_counter()
    pi = pis.get(conn, pi_id)
    if pi is None:
        raise NotFound("payment_institution_id", "not_found", "支付机构不存在", "no such payment institution")
    run_id = _claim(conn, now, pi, day)  # first: two runs of one day are one after the other, each seeing the other's result
    carried_rows, carried_keys = _carried(conn, pi_id, day)
    with collector_paused():  # a million rows and legs: formats/bulk.py
        rows = rows_of(statement) + carried_rows
        candidates, day_legs, carried_set = _platform_side(conn, pi_id, day, rows, carried_keys)
        loaded = time.perf_counter()
        outcome = rc.match(day, rows, candidates, day_legs, cutoff=cutoff)
        matched = time.perf_counter()

    found_ids: list[str] = []
    for d in outcome.differences:
        found_ids.append(_store_difference(conn, now, run_id=run_id, pi=pi, day=day, d=d))
    # Open differences of the day this run no longer finds: cleared (the platform caught up, or the pool matched them).
    found_set = set(found_ids)
    gone = [i for i in conn.execute(select(D.c.id).where(D.c.payment_institution_id == pi_id, D.c.day == day, D.c.status == "open"))
            .scalars().all() if i not in found_set]
    if gone:
        conn.execute(update(D).where(D.c.id.in_(gone)).values(status="cleared", outcome=json.dumps({"cleared_at": iso_utc(now)})))
    conn.execute(delete(P).where(P.c.payment_institution_id == pi_id, P.c.day == day))
    for row in outcome.pooled_rows:
        conn.execute(P.insert().values(region=pi.region, payment_institution_id=pi_id, day=day, side="institution", kind=row.kind,
                                       key=row.key, item=_row_json(row), created_at=now))
    for leg in outcome.pooled_legs:
        conn.execute(P.insert().values(region=pi.region, payment_institution_id=pi_id, day=day, side="platform", kind=leg.kind,
                                       key=leg.key, item=_leg_json(leg), created_at=now))
    for kind, key in outcome.offday:
        insert_ignore(conn, OFF, dict(payment_institution_id=pi_id, kind=kind, key=key, region=pi.region, statement_day=day, created_at=now))
    open_count = sum(1 for r in _differences_by_id(conn, found_ids) if r.status == "open")
    own_done = [leg for leg in day_legs if leg.status == rc.DONE]
    values = dict(
        status="open" if open_count else "balanced",
        statement_trades=statement.trade_count, statement_trade_fen=statement.trade_total_fen,
        statement_refunds=statement.refund_count, statement_refund_fen=statement.refund_total_fen,
        platform_legs=len(own_done),
        platform_fen=sum(leg.amount_fen for leg in own_done if leg.kind == "trade") - sum(leg.amount_fen for leg in own_done if leg.kind == "refund"),
        matched=outcome.matched, pooled=len(outcome.pooled_rows) + len(outcome.pooled_legs), carried=len(carried_rows) + len(carried_keys),
        differences=len(found_ids), open_differences=open_count, error=None, finished_at=now)
    conn.execute(update(RUN).where(RUN.c.id == run_id).values(runs=RUN.c.runs + 1, **values))
    audit.append(conn, region=pi.region, actor=actor, action="reconciliation.run", subject=run_id,
                 detail={"payment_institution": pi_id, "day": day.isoformat(), "matched": outcome.matched,
                         "differences": len(found_ids), "open": open_count, "cleared": len(gone), "pooled": values["pooled"],
                         "carried": values["carried"]}, now=now)
    result = RunResult(run_view(get_run(conn, run_id)), [difference_view(r) for r in _differences_by_id(conn, found_ids)])
    if timings is not None:
        timings.update(load=loaded - clock, match=matched - loaded, write=time.perf_counter() - matched)
    return result


def _claim(conn: Connection, now: datetime, pi: pis.PaymentInstitution, day: date) -> str:
    """The day's run row, made if new and locked (a concurrent run of the same day waits here for this one to commit)."""
    insert_ignore(conn, RUN, dict(id=f"RC{day:%Y%m%d}{secrets.token_hex(5).upper()}", region=pi.region, payment_institution_id=pi.id,
                                  day=day, status="open", runs=0, statement_trades=0, statement_trade_fen=0, statement_refunds=0,
                                  statement_refund_fen=0, platform_legs=0, platform_fen=0, matched=0, pooled=0, carried=0, differences=0,
                                  open_differences=0, finished_at=now, created_at=now))
    return conn.execute(select(RUN.c.id).where(RUN.c.payment_institution_id == pi.id, RUN.c.day == day).with_for_update()).scalar_one()


def _store_difference(conn: Connection, now: datetime, *, run_id: str, pi: pis.PaymentInstitution, day: date, d: rc.Difference) -> str:
    key = dict(payment_institution_id=pi.id, day=day, cls=d.cls, kind=d.kind, key=d.key)
    row, leg = d.row, d.leg
    facts = dict(run_id=run_id, out_trade_no=(row.out_trade_no if row else leg.out_trade_no if leg else d.key),
                 institution_ref=row.ref if row else None, institution_fen=d.institution_fen,
                 institution_at=row.at if row else None, platform_fen=d.platform_fen, platform_at=leg.at if leg else None,
                 leg_status=leg.status if leg else None, platform_state=leg.state if leg else None,
                 order_id=leg.order_id if leg else None, refund_id=leg.refund_id if leg else None, count=d.count, last_seen_at=now)
    if row is not None and leg is None and d.kind == "refund":
        # A refund the platform never made, of an order it knows: name the order (the query can then adopt the refund).
        order = conn.execute(select(O.c.id).where(O.c.id == row.out_trade_no, O.c.payment_institution_id == pi.id)).first()
        facts["order_id"] = order.id if order else None
    found = conn.execute(select(D.c.id, D.c.status).where(*(getattr(D.c, k) == v for k, v in key.items())).with_for_update()).first()
    if found is None:
        diff_id = f"RD{day:%Y%m%d}{secrets.token_hex(6).upper()}"
        conn.execute(D.insert().values(id=diff_id, region=pi.region, status="open", created_at=now, **key, **facts))
        return diff_id
    if found.status == "cleared":  # found again: open again
        facts["status"] = "open"
    if found.status == "resolved":  # what it was resolved on stays as it was; only that it was seen again is noted
        facts = {"run_id": run_id, "last_seen_at": now}
    conn.execute(update(D).where(D.c.id == found.id).values(**facts))
    return found.id


def require_ended(day: date, now: datetime) -> None:
    """Only a day that has ended in Beijing is reconciled: the statement of a day still running is not final."""
    if day >= local_day(now):
        raise InputError("day", "day_not_ended", "只能对账已结束的日期（北京时间）", "only a day that has ended (Beijing time) can be reconciled")


async def reconcile(ctx: Context, *, day: date, pi_id: str, actor: str, cutoff: timedelta = rc.CUTOFF) -> RunResult:
    """Fetch the institution's statement of ``day`` (outside any unit), then match and store it in one unit. A statement
    that cannot be had (the institution refuses, the file does not add up) records a failed run and raises.

    Checked here for every caller (page, REST, CLI): the day must have ended in Beijing (a statement of a day still running
    is not final), and the institution must exist (else "no channel configuration" would hide a mistyped id)."""
    require_ended(day, ctx.now())
    if await ctx.run(lambda c: pis.get(c, pi_id), write=False) is None:
        raise NotFound("institution", "unknown_payment_institution", f"支付机构 {pi_id} 不存在", f"no payment institution {pi_id}")
    try:
        channel = await ctx.channel(pi_id)
        statement = await channel.statement(day)
    except (ChannelError, YibaoError) as exc:
        now, error = ctx.now(), exc.describe()[:300]
        await ctx.run(lambda c: _failed(c, now, pi_id=pi_id, day=day, error=error, actor=actor))
        raise
    now = ctx.now()
    return await ctx.run(lambda c: record(c, now, pi_id=pi_id, day=day, statement=statement, actor=actor, cutoff=cutoff))


def _failed(conn: Connection, now: datetime, *, pi_id: str, day: date, error: str, actor: str) -> None:
    pi = pis.get(conn, pi_id)
    if pi is None:
        return
    existing = conn.execute(select(RUN.c.id).where(RUN.c.payment_institution_id == pi_id, RUN.c.day == day)).first()
    if existing is None:
        run_id = f"RC{day:%Y%m%d}{secrets.token_hex(5).upper()}"
        conn.execute(RUN.insert().values(id=run_id, region=pi.region, payment_institution_id=pi_id, day=day, status="failed", runs=1,
                                         statement_trades=0, statement_trade_fen=0, statement_refunds=0, statement_refund_fen=0,
                                         platform_legs=0, platform_fen=0, matched=0, pooled=0, carried=0, differences=0,
                                         open_differences=0, error=error, finished_at=now, created_at=now))
    else:
        run_id = existing.id
        conn.execute(update(RUN).where(RUN.c.id == run_id).values(status="failed", runs=RUN.c.runs + 1, error=error, finished_at=now))
    audit.append(conn, region=pi.region, actor=actor, action="reconciliation.failed", subject=run_id,
                 detail={"payment_institution": pi_id, "day": day.isoformat(), "error": error}, now=now)


def institutions_to_reconcile(conn: Connection) -> list[str]:
    """Every payment institution the platform reaches through a connector (a configured channel)."""
    return sorted(conn.execute(select(CFG.c.payment_institution_id)).scalars().all())


# ---- reads ----------------------------------------------------------------------------------------

def get_run(conn: Connection, run_id: str) -> Any:
    r = conn.execute(select(RUN).where(RUN.c.id == run_id)).first()
    if r is None:
        raise NotFound("run_id", "not_found", "对账批次不存在", "no such reconciliation run")
    return r


def _differences_by_id(conn: Connection, ids: list[str]) -> list[Any]:
    out = []
    for chunk in _chunks(ids):
        out += conn.execute(select(D).where(D.c.id.in_(chunk))).all()
    return sorted(out, key=lambda r: (r.cls, r.kind, r.key))


def run_view(r: Any) -> dict[str, Any]:
    return {"run_id": r.id, "payment_institution_id": r.payment_institution_id, "day": as_date(r.day).isoformat(), "status": r.status,
            "runs": r.runs, "statement": {"trades": r.statement_trades, "trade_total": format_yuan(r.statement_trade_fen),
                                          "refunds": r.statement_refunds, "refund_total": format_yuan(r.statement_refund_fen)},
            "platform": {"legs": r.platform_legs, "net": format_yuan(r.platform_fen)}, "matched": r.matched, "pooled": r.pooled,
            "carried": r.carried, "differences": r.differences, "open_differences": r.open_differences, "error": r.error,
            "finished_at": iso_utc(as_datetime(r.finished_at)), "created_at": iso_utc(as_datetime(r.created_at))}


def _yuan(fen: int | None) -> str | None:
    return format_yuan(fen) if fen is not None else None


def difference_view(r: Any) -> dict[str, Any]:
    return {"difference_id": r.id, "run_id": r.run_id, "payment_institution_id": r.payment_institution_id, "day": as_date(r.day).isoformat(),
            "class": r.cls, "class_zh": rc.CLASS_NAMES_ZH.get(r.cls, r.cls), "kind": r.kind, "key": r.key, "out_trade_no": r.out_trade_no,
            "institution": {"ref": r.institution_ref, "amount": _yuan(r.institution_fen), "at": iso_utc(as_datetime(r.institution_at))},
            "platform": {"amount": _yuan(r.platform_fen), "at": iso_utc(as_datetime(r.platform_at)), "leg_status": r.leg_status,
                         "state": r.platform_state, "order_id": r.order_id, "refund_id": r.refund_id},
            "count": r.count, "status": r.status,
            "resolutions": list(rc.allowed_resolutions(r.cls, r.kind, r.leg_status)) if r.status == "open" else [],
            "resolution": r.resolution, "reason": r.reason, "note": r.note,
            "outcome": json.loads(r.outcome) if r.outcome else None, "resolved_by": r.resolved_by,
            "resolved_at": iso_utc(as_datetime(r.resolved_at)), "last_seen_at": iso_utc(as_datetime(r.last_seen_at))}


def list_runs(conn: Connection, *, day: date | None = None, pi_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = select(RUN)
    if day is not None:
        q = q.where(RUN.c.day == day)
    if pi_id is not None:
        q = q.where(RUN.c.payment_institution_id == pi_id)
    return [run_view(r) for r in conn.execute(q.order_by(RUN.c.day.desc(), RUN.c.payment_institution_id).limit(limit))]


def list_differences(conn: Connection, *, day: date | None = None, pi_id: str | None = None, status: str | None = None,
                     limit: int = 500) -> list[dict[str, Any]]:
    q = select(D)
    for col, value in ((D.c.day, day), (D.c.payment_institution_id, pi_id), (D.c.status, status)):
        if value is not None:
            q = q.where(col == value)
    return [difference_view(r) for r in conn.execute(q.order_by(D.c.day.desc(), D.c.cls, D.c.kind, D.c.key).limit(limit))]


def get_difference(conn: Connection, difference_id: str, *, lock: bool = False) -> Any:
    return one_or(conn, D, D.c.id == difference_id, lock=lock,
                  missing=NotFound("difference_id", "not_found", "对账差异不存在", "no such reconciliation difference"))


def refresh_run(conn: Connection, run_id: str) -> None:
    """After a resolution: the run's open count, and balanced once every difference it found is resolved."""
    run = get_run(conn, run_id)
    open_count = conn.execute(select(func.count()).select_from(D).where(D.c.run_id == run_id, D.c.status == "open")).scalar_one()
    if run.status != "failed":
        conn.execute(update(RUN).where(RUN.c.id == run_id).values(open_differences=open_count, status="open" if open_count else "balanced"))

