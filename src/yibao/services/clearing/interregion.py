"""Cross-region clearing (异地清算): a month's settlements of patients insured in one region and treated in another,
netted per region pair and settled between the two regions' books.

A cross-region settlement already passes through the clearing accounts (services/care/settlement.py): in the insured
region's books `fund → clearing:{insured}:{treated}`, in the treating region's `clearing:{treated}:{insured} →
receivable`, so each region's ledger sums to zero on its own. For a pair (A, B), A's account `clearing:A:B` then holds,
for the month, what A owes B (A's insured treated in B: credited from A's funds) less what B owes A (B's insured
treated in A: debited to pay A's hospitals) — cancels, refunds and backstop liabilities of either taken off as they
happened. B's `clearing:B:A` holds the same amount the other way; the two are checked to agree.

`detail` lists the month in the shape of 3260 (one row per settlement, signed, 100 per page); `confirm` (3261) nets it:
the debtor region's clearing account is debited and an outside account `external:{region}:interregion` credited (the
money leaves its books), and the creditor's the other way round — two legs, one in each region's books, so each still
sums to zero; `rollback` (3262) reverses both legs, after which the month may be confirmed again. The transfers of a
netting (code `interregion_clearing`) never count in a month's figures.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import case, func, literal, select, union_all, update
from sqlalchemy.engine import Connection

from yibao.domain import clearing as rules
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.ledger import clearing_account
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.agency.policies import require_known_region
from yibao.services.books import audit, ledger
from yibao.store.tables import interregion_clearings as IR
from yibao.store.tables import settlements as S
from yibao.store.tables import transfers as T

CODE = "interregion_clearing"


def outside(region: str) -> str:
    """Money leaving (or entering) a region's books when two regions settle (the provincial / national clearing chain)."""
    return f"external:{region}:interregion"


def _pair(region_a: str, region_b: str) -> tuple[str, str]:
    for field, r in (("region_a", region_a), ("region_b", region_b)):
        require_known_region(r, field)  # a region no policy configures has no settlements, and netting it would open its books
    if region_a == region_b:
        raise InputError("region_b", "same_region", "两个统筹区不能相同", "the two regions must differ")
    a, b = sorted((region_a, region_b))
    return a, b


def _bounds(month: rules.Month) -> tuple[datetime, datetime]:
    return month.start.astimezone(timezone.utc), month.end.astimezone(timezone.utc)


def _legs(account: str, month: rules.Month):  # noqa: ANN202
    """The account's transfers of the month (each side on its own index), signed as owed by the insured region:
    + for a settlement's leg, − for what undid it."""
    start, end = _bounds(month)
    common = (T.c.kind.in_(("single", "post")), T.c.code != CODE, T.c.created_at >= start, T.c.created_at < end)
    # In `clearing:A:B`: a credit from A's funds or accounts is A owing B (A's insured treated in B); a debit to a
    # receivable is B owing A (B's insured treated in A). The other two are their undoing.
    credit = select(T.c.ref, T.c.amount.label("amount"), case((T.c.debit_account_id.like("institution:%"), literal("b")), else_=literal("a"))
                    .label("owes"), T.c.created_at).where(T.c.credit_account_id == account, *common)
    debit = select(T.c.ref, (-T.c.amount).label("amount"), case((T.c.credit_account_id.like("institution:%"), literal("b")), else_=literal("a"))
                   .label("owes"), T.c.created_at).where(T.c.debit_account_id == account, *common)
    return union_all(credit, debit).subquery()


def totals(conn: Connection, *, region_a: str, region_b: str, month: rules.Month) -> dict[str, int]:
    """What A owes B and B owes A for the month, from A's books, checked against B's."""
    a, b = _pair(region_a, region_b)
    mine, theirs = _legs(clearing_account(a, b), month), _legs(clearing_account(b, a), month)
    # In A's account a row owed by A is a credit (+) and one owed by B a debit (−): a_owes_b = Σ(+ of "a"), b_owes_a = −Σ(… "b").
    by = dict(conn.execute(select(mine.c.owes, func.sum(mine.c.amount)).group_by(mine.c.owes)).all())
    a_owes_b, b_owes_a = int(by.get("a") or 0), -int(by.get("b") or 0)
    mirror = int(conn.execute(select(func.coalesce(func.sum(theirs.c.amount), 0))).scalar_one())
    if mirror != -(a_owes_b - b_owes_a):
        raise Conflict("region_b", "books_disagree", f"{a} 与 {b} 的异地清算账户不一致", f"the clearing accounts of {a} and {b} disagree for the month")
    rows = int(conn.execute(select(func.count(func.distinct(mine.c.ref)))).scalar_one())
    return {"a_owes_b": a_owes_b, "b_owes_a": b_owes_a, "rows": rows}


def detail(conn: Connection, *, region_a: str, region_b: str, month: rules.Month, startrow: int = 1, limit: int = 100) -> dict[str, Any]:
    """The month's detail in the shape of 3260 (`seqno, mdtrtarea, medins_no, certno, mdtrt_id, mdtrt_setl_time, setl_sn,
    fulamt_advpay_flag, medfee_sumamt, optins_pay_sumamt`), one row per settlement (or liability) with its net amount
    for the month, plus the insured region; `certno` is never shown (the person's number instead). 100 rows a page."""
    a, b = _pair(region_a, region_b)
    if startrow < 1 or not 1 <= limit <= 100:
        raise InputError("startrow", "out_of_range", "起始行应≥1，每页至多100行", "startrow must be ≥ 1 and a page at most 100 rows")
    legs = _legs(clearing_account(a, b), month)
    grouped = (select(legs.c.ref, legs.c.owes, func.sum(legs.c.amount).label("amount"), func.min(legs.c.created_at).label("at"))
               .group_by(legs.c.ref, legs.c.owes).subquery())
    q = (select(grouped, S.c.institution_id, S.c.visit_id, S.c.person_id, S.c.total, S.c.created_at.label("setl_time"), S.c.region,
                S.c.insured_region)
         .select_from(grouped.outerjoin(S, S.c.id == grouped.c.ref)).order_by(grouped.c.at, grouped.c.ref).offset(startrow - 1).limit(limit))
    rows = []
    for i, r in enumerate(conn.execute(q).all(), start=startrow):
        owed = int(r.amount) if r.owes == "a" else -int(r.amount)
        rows.append({"seqno": i, "mdtrtarea": r.region or (b if r.owes == "a" else a), "insuplc_admdvs": r.insured_region or (a if r.owes == "a" else b),
                     "medins_no": r.institution_id, "certno": None, "psn_no": r.person_id, "mdtrt_id": r.visit_id,
                     "mdtrt_setl_time": iso_utc(r.setl_time) if r.setl_time else None, "setl_sn": r.ref, "fulamt_advpay_flag": "0",
                     "medfee_sumamt": format_yuan(int(r.total)) if r.total is not None else None, "optins_pay_sumamt": format_yuan(owed)})
    t = totals(conn, region_a=a, region_b=b, month=month)
    return {"region_a": a, "region_b": b, "setlym": month.setlym, "a_owes_b": format_yuan(t["a_owes_b"]), "b_owes_a": format_yuan(t["b_owes_a"]),
            "net": format_yuan(t["a_owes_b"] - t["b_owes_a"]), "totalrow": t["rows"], "startrow": startrow, "data": rows}


def _net_legs(clearing_id: str, a: str, b: str, net: int, suffix: str = "") -> list[ledger.Leg]:
    """Debtor's clearing account → its outside; creditor's outside → its clearing account (each in its own books)."""
    debtor, creditor = (a, b) if net > 0 else (b, a)
    amount = abs(net)
    legs = [ledger.Leg(f"{clearing_id}:{debtor}{suffix}", clearing_account(debtor, creditor), outside(debtor), amount, debtor),
            ledger.Leg(f"{clearing_id}:{creditor}{suffix}", outside(creditor), clearing_account(creditor, debtor), amount, creditor)]
    if suffix:  # a rollback: the same legs the other way
        legs = [ledger.Leg(leg.client_id, leg.credit, leg.debit, leg.amount, leg.region) for leg in legs]
    return legs


def confirm(conn: Connection, now: datetime, *, region_a: str, region_b: str, setlym: str, actor: str) -> dict[str, Any]:
    """3261: net the ended month between the two regions. Confirming a confirmed month again changes nothing."""
    a, b = _pair(region_a, region_b)
    month = rules.parse_month(setlym)
    rules.check_month_ended(month, now)
    key = f"{a}:{b}:{month.setlym}"
    existing = conn.execute(select(IR.c.id).where(IR.c.active_key == key)).scalar()
    if existing is not None:
        return view(conn, existing)
    t = totals(conn, region_a=a, region_b=b, month=month)
    clearing_id = f"IR{now:%Y%m%d}{secrets.token_hex(6).upper()}"
    net = t["a_owes_b"] - t["b_owes_a"]
    for region, other in ((a, b), (b, a)):
        ledger.ensure_account(conn, clearing_account(region, other), region, "clearing", now, owner_id=other)
        ledger.ensure_account(conn, outside(region), region, "interregion", now)
    if net:
        ledger.post_many(conn, _net_legs(clearing_id, a, b, net), code=CODE, ref=clearing_id, now=now)
    conn.execute(IR.insert().values(id=clearing_id, region_a=a, region_b=b, setlym=month.setlym, active_key=key, a_owes_b=t["a_owes_b"],
                                    b_owes_a=t["b_owes_a"], rows=t["rows"], status="confirmed", actor=actor, created_at=now))
    for region in (a, b):
        audit.append(conn, region=region, actor=actor, action="clearing.interregion_confirm", subject=clearing_id, detail={
            "pair": [a, b], "setlym": month.setlym, "a_owes_b": t["a_owes_b"], "b_owes_a": t["b_owes_a"], "net": net}, now=now)
    return view(conn, clearing_id)


def rollback(conn: Connection, now: datetime, *, clearing_id: str, actor: str) -> dict[str, Any]:
    """3262: undo a confirmed netting (both legs reversed); the month may then be confirmed again. Again: nothing more."""
    r = conn.execute(select(IR).where(IR.c.id == clearing_id).with_for_update()).first()
    if r is None:
        raise NotFound("otransid", "not_found", "异地清算确认记录不存在", "no such cross-region confirmation")
    if r.status == "rolled_back":
        return view(conn, clearing_id)
    net = int(r.a_owes_b) - int(r.b_owes_a)
    if net:
        ledger.post_many(conn, _net_legs(clearing_id, r.region_a, r.region_b, net, ":rollback"), code=CODE, ref=clearing_id, now=now)
    conn.execute(update(IR).where(IR.c.id == clearing_id).values(status="rolled_back", active_key=None, rolled_back_by=actor, rolled_back_at=now))
    for region in (r.region_a, r.region_b):
        audit.append(conn, region=region, actor=actor, action="clearing.interregion_rollback", subject=clearing_id,
                     detail={"pair": [r.region_a, r.region_b], "setlym": r.setlym, "net": net}, now=now)
    return view(conn, clearing_id)


def view(conn: Connection, clearing_id: str) -> dict[str, Any]:
    r = conn.execute(select(IR).where(IR.c.id == clearing_id)).first()
    if r is None:
        raise NotFound("otransid", "not_found", "异地清算确认记录不存在", "no such cross-region confirmation")
    net = int(r.a_owes_b) - int(r.b_owes_a)
    return {"id": r.id, "region_a": r.region_a, "region_b": r.region_b, "setlym": r.setlym, "status": r.status,
            "a_owes_b": format_yuan(int(r.a_owes_b)), "b_owes_a": format_yuan(int(r.b_owes_a)), "net": format_yuan(net),
            "debtor": (r.region_a if net > 0 else r.region_b) if net else None, "totalrow": int(r.rows), "actor": r.actor,
            "created_at": iso_utc(r.created_at), "rolled_back_by": r.rolled_back_by, "rolled_back_at": iso_utc(r.rolled_back_at)}


def listing(conn: Connection, *, region_a: str, region_b: str, setlym: str) -> list[dict[str, Any]]:
    """The confirmations of a pair's month, rolled back ones too, newest first (the /admin clearing page's list)."""
    a, b = _pair(region_a, region_b)
    month = rules.parse_month(setlym)
    ids = conn.execute(select(IR.c.id).where(IR.c.region_a == a, IR.c.region_b == b, IR.c.setlym == month.setlym)
                       .order_by(IR.c.created_at.desc(), IR.c.id)).scalars().all()
    return [view(conn, i) for i in ids]
