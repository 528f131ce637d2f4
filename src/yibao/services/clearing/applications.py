"""Clearing applications: an institution applies for a month (3203), withdraws while not yet accepted (3204), asks its
status (3205A); the agency reviews it beside the platform's figures and approves it with the payable frozen. One write
path per change, each audited.

The payable is the platform's: fund + personal accounts paid for the month's settlements net of cancels, reversals and
refunds, less the quality-guarantee deposit (the region's policy, default 5 % of the fund part) and less the backstop
liabilities charged against the institution that month. Those charges have already moved money from the receivable
back to the fund (services/payments/liabilities.py): they are subtracted from what is paid, not moved again — the
receivable's month then nets to zero once the payout and the deposit leave it (docs/clearing.md).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain import clearing as rules
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.services.agency import institutions
from yibao.services.agency.institutions import Institution
from yibao.services.agency.policies import policy_for
from yibao.services.books import audit
from yibao.services.clearing.figures import figures
from yibao.store.rows import one_or
from yibao.store.tables import clearing_applications as A
from yibao.store.tables import clearing_payees as P
from yibao.store.tables import clearing_payments as PAY
from yibao.store.upsert import insert_ignore


def _active_key(institution_id: str, setlym: str, clr_type: str) -> str:
    return f"{institution_id}:{setlym}:{clr_type}"


def apply(conn: Connection, now: datetime, *, institution: Institution, clr_type: str, clr_way: str, setlym: str, psntime: int,
          medfee_sumamt: int, med_sumfee: int, fund_appy_sum: int, cash_payamt: int, acct_pay: int, begndate: date, enddate: date,
          actor: str) -> dict[str, Any]:
    """3203: record the institution's application for an ended month. Its amounts are what it declares; what is paid is
    the platform's own figure (`review`). One application per institution, month and clr_type at a time."""
    rules.check_clr_type(clr_type)
    rules.check_clr_way(clr_way)
    month = rules.parse_month(setlym)
    rules.check_month_ended(month, now)
    rules.check_dates(month, begndate, enddate)
    if not isinstance(psntime, int) or isinstance(psntime, bool) or not 0 <= psntime <= 10**9:
        raise InputError("psntime", "invalid_count", "结算人次应为非负整数", "must be a non-negative whole number")
    key = _active_key(institution.id, month.setlym, clr_type)
    existing = conn.execute(select(A.c.id, A.c.status).where(A.c.active_key == key)).first()
    if existing is not None:
        raise Conflict("setlym", "already_applied", f"本机构 {month.setlym} 清算类别 {clr_type} 已有清算申请 {existing.id}（状态 {existing.status}），"
                       "请先撤销", f"this institution already applied for {month.setlym}, clr_type {clr_type}: {existing.id} ({existing.status}); "
                       "withdraw it first")
    app_id = f"CA{now:%Y%m%d}{secrets.token_hex(6).upper()}"
    late = rules.is_late(month, now)
    # A concurrent application for the same key loses on the unique key, and is told so by name.
    if not insert_ignore(conn, A, dict(
            id=app_id, region=institution.region, institution_id=institution.id, clr_type=clr_type, clr_way=clr_way, setlym=month.setlym,
            active_key=key, psntime=psntime, medfee_sumamt=medfee_sumamt, med_sumfee=med_sumfee, fund_appy_sum=fund_appy_sum,
            cash_payamt=cash_payamt, acct_pay=acct_pay, begndate=begndate, enddate=enddate, late=late, status=rules.APPLIED,
            updated_at=now, created_at=now)):
        raise Conflict("setlym", "already_applied", f"本机构 {month.setlym} 清算类别 {clr_type} 已有清算申请", "an application for this month and "
                       "clr_type already exists")
    audit.append(conn, region=institution.region, actor=actor, action="clearing.apply", subject=app_id, detail={
        "institution": institution.id, "setlym": month.setlym, "clr_type": clr_type, "fund_appy_sum": fund_appy_sum, "acct_pay": acct_pay,
        "medfee_sumamt": medfee_sumamt, "psntime": psntime, "late": late}, now=now)
    return view(conn, app_id)


def _row(conn: Connection, app_id: str, *, institution_id: str | None = None, lock: bool = False) -> Any:
    q = select(A).where(A.c.id == app_id)
    if institution_id is not None:
        q = q.where(A.c.institution_id == institution_id)
    return one_or(conn, q, lock=lock, missing=NotFound("clr_appy_evt_id", "not_found", "清算申请不存在", "clearing application not found"))


def withdraw(conn: Connection, now: datetime, *, institution: Institution, app_id: str, actor: str) -> dict[str, Any]:
    """3204: withdraw an application the agency has not yet accepted. Withdrawing again changes nothing."""
    row = _row(conn, app_id, institution_id=institution.id, lock=True)
    if row.status == rules.WITHDRAWN:
        return view(conn, app_id)
    if row.status != rules.APPLIED:
        raise Conflict("clr_appy_evt_id", "already_accepted", f"清算申请已{'受理' if row.status == rules.ACCEPTED else '清算'}，不能撤销",
                       f"the application is already {row.status}; it cannot be withdrawn")
    conn.execute(update(A).where(A.c.id == app_id).values(status=rules.WITHDRAWN, active_key=None, withdrawn_at=now, updated_at=now))
    audit.append(conn, region=row.region, actor=actor, action="clearing.withdraw", subject=app_id,
                 detail={"institution": row.institution_id, "setlym": row.setlym, "clr_type": row.clr_type}, now=now)
    return view(conn, app_id)


def status(conn: Connection, *, institution: Institution, app_id: str) -> dict[str, Any]:
    """3205A: the application's national status and amounts (the institution's own only)."""
    row = _row(conn, app_id, institution_id=institution.id)
    return view(conn, row.id)


def _difference(declared: int, platform: int) -> dict[str, Any]:
    return {"declared": declared, "platform": platform, "difference": declared - platform}


def review(conn: Connection, app_id: str) -> dict[str, Any]:
    """The application beside the platform's figures for its month, with the differences (declared − platform), and
    the payable the platform would pay. Reading only."""
    row = _row(conn, app_id)
    month = rules.parse_month(row.setlym)
    f = figures(conn, institution_id=row.institution_id, month=month, clr_type=row.clr_type)
    policy = policy_for(row.region, month.year)
    lines = {"fund_appy_sum": _difference(int(row.fund_appy_sum), f.fund), "acct_pay": _difference(int(row.acct_pay), f.account),
             "medfee_sumamt": _difference(int(row.medfee_sumamt), f.medfee_sumamt),
             "cash_payamt": _difference(int(row.cash_payamt), f.cash_payamt), "psntime": _difference(int(row.psntime), f.psntime)}
    try:
        p: rules.Payable | None = rules.payable(fund=f.fund, account=f.account, recoveries=f.recoveries, rules=policy.clearing)
        problem = None
    except Conflict as exc:
        p, problem = None, exc.describe()
    return {"application": view(conn, app_id), "figures": _money_lines(lines),
            "agrees": all(v["difference"] == 0 for v in lines.values()),
            "payable": _payable_view(p) if p else None, "problem": problem,
            "deposit_ratio": f"{policy.clearing.quality_deposit_ratio / 10_000:g}%", "recoveries": format_yuan(f.recoveries)}


def _money(key: str, fen: int) -> Any:
    return fen if key == "psntime" else format_yuan(fen)


def _payable_view(p: rules.Payable) -> dict[str, str]:
    return {"fund": format_yuan(p.fund), "account": format_yuan(p.account), "deposit": format_yuan(p.deposit),
            "recoveries": format_yuan(p.recoveries), "payable": format_yuan(p.payable)}


def approve(conn: Connection, now: datetime, *, app_id: str, actor: str) -> dict[str, Any]:
    """Accept (20) an application: the platform's figures are computed and frozen as what is paid, whatever the
    application declared. Approving again changes nothing."""
    return _approve(conn, now, app_id=app_id, actor=actor, only_if_agrees=False)["application"]


def approve_if_agrees(conn: Connection, now: datetime, *, app_id: str, actor: str) -> dict[str, Any]:
    """The batch job's approval (services/clearing/jobs.py): only when the declared fund and account figures agree with
    the platform's to the fen and something is payable; else nothing is written and the differences are answered
    (`approved` False) for an operator's review. One computation of the figures either way."""
    return _approve(conn, now, app_id=app_id, actor=actor, only_if_agrees=True)


def _approve(conn: Connection, now: datetime, *, app_id: str, actor: str, only_if_agrees: bool) -> dict[str, Any]:
    row = _row(conn, app_id, lock=True)
    if row.status in (rules.ACCEPTED, rules.CLEARED):
        return {"approved": True, "application": view(conn, app_id)}
    if row.status != rules.APPLIED:
        raise Conflict("clr_appy_evt_id", f"application_{row.status}", f"清算申请状态为 {row.status}，不能受理",
                       f"the application is {row.status}; it cannot be accepted")
    month = rules.parse_month(row.setlym)
    f = figures(conn, institution_id=row.institution_id, month=month, clr_type=row.clr_type)
    differences = {"fund_appy_sum": _difference(int(row.fund_appy_sum), f.fund), "acct_pay": _difference(int(row.acct_pay), f.account)}
    try:
        p = rules.payable(fund=f.fund, account=f.account, recoveries=f.recoveries, rules=policy_for(row.region, month.year).clearing)
    except Conflict as exc:
        if not only_if_agrees:
            raise
        return {"approved": False, "differences": _money_lines(differences), "problem": exc.describe()}
    if only_if_agrees and any(d["difference"] for d in differences.values()):
        return {"approved": False, "differences": _money_lines(differences), "problem": None}
    conn.execute(update(A).where(A.c.id == app_id).values(
        status=rules.ACCEPTED, fund_paid=p.fund, account_paid=p.account, deposit=p.deposit, recoveries=p.recoveries, payable=p.payable,
        approved_by=actor, approved_at=now, updated_at=now))
    audit.append(conn, region=row.region, actor=actor, action="clearing.approve", subject=app_id, detail={
        "institution": row.institution_id, "setlym": row.setlym, "clr_type": row.clr_type, "fund": p.fund, "account": p.account,
        "deposit": p.deposit, "recoveries": p.recoveries, "payable": p.payable, "declared_fund": int(row.fund_appy_sum),
        "declared_account": int(row.acct_pay)}, now=now)
    return {"approved": True, "application": view(conn, app_id)}


def _money_lines(lines: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    return {k: {kk: _money(k, vv) for kk, vv in v.items()} for k, v in lines.items()}


def set_payee(conn: Connection, now: datetime, *, institution_id: str, account_no: str, account_name: str, actor: str) -> dict[str, Any]:
    """Record the bank account the institution is paid into (the agency's record; the bank checks it when paying)."""
    institution = institutions.get(conn, institution_id)
    if institution is None:
        raise NotFound("fixmedins_code", "not_found", "医药机构不存在", "institution not found")
    account_no, account_name = account_no.strip(), account_name.strip()
    if not account_no.isdigit() or not 8 <= len(account_no) <= 32:
        raise InputError("account_no", "invalid_account", "收款账号应为8–32位数字", "must be 8–32 digits")
    if not account_name:
        raise InputError("account_name", "required", "缺少收款户名", "is required")
    values = dict(region=institution.region, account_no=account_no, account_name=account_name, actor=actor, updated_at=now)
    if conn.execute(update(P).where(P.c.institution_id == institution.id).values(**values)).rowcount == 0:
        conn.execute(P.insert().values(institution_id=institution.id, created_at=now, **values))
    audit.append(conn, region=institution.region, actor=actor, action="clearing.payee", subject=institution.id,
                 detail={"account_no": f"****{account_no[-4:]}", "account_name": account_name}, now=now)
    return payee(conn, institution.id) or {}


def payee(conn: Connection, institution_id: str) -> dict[str, Any] | None:
    r = conn.execute(select(P).where(P.c.institution_id == institution_id)).first()
    return None if r is None else {"fixmedins_code": r.institution_id, "account_no": r.account_no, "account_name": r.account_name,
                                   "updated_at": iso_utc(r.updated_at)}


def view(conn: Connection, app_id: str) -> dict[str, Any]:
    r = _row(conn, app_id)
    month = rules.parse_month(r.setlym)
    y = format_yuan
    payments = conn.execute(select(PAY).where(PAY.c.application_id == app_id).order_by(PAY.c.attempt)).all()
    accepted = r.payable is not None
    return {
        "clr_appy_evt_id": r.id, "fixmedins_code": r.institution_id, "region": r.region, "clr_type": r.clr_type, "clr_way": r.clr_way,
        "setlym": r.setlym, "clr_ym": r.setlym, "status": r.status, "clr_stas": rules.CLR_STAS.get(r.status), "late": bool(r.late),
        "declare_by": month.declare_by.isoformat(), "pay_by": month.pay_by.isoformat(),
        "psntime": int(r.psntime), "medfee_sumamt": y(r.medfee_sumamt), "med_sumfee": y(r.med_sumfee), "fund_appy_sum": y(r.fund_appy_sum),
        "cash_payamt": y(r.cash_payamt), "acct_pay": y(r.acct_pay), "begndate": r.begndate.isoformat() if hasattr(r.begndate, "isoformat")
        else str(r.begndate), "enddate": r.enddate.isoformat() if hasattr(r.enddate, "isoformat") else str(r.enddate),
        # the platform's, once accepted: hi_agre_sumfee [guess] = what the insurer agrees to pay before the deposit
        "hi_agre_sumfee": y(int(r.fund_paid) + int(r.account_paid)) if accepted else None,
        "fund_paid": y(r.fund_paid) if accepted else None, "account_paid": y(r.account_paid) if accepted else None,
        "deposit": y(r.deposit) if accepted else None, "recoveries": y(r.recoveries) if accepted else None,
        "payable": y(r.payable) if accepted else None, "approved_by": r.approved_by,
        "opt_time": iso_utc(r.updated_at), "approved_at": iso_utc(r.approved_at) if r.approved_at else None,
        "cleared_at": iso_utc(r.cleared_at) if r.cleared_at else None, "withdrawn_at": iso_utc(r.withdrawn_at) if r.withdrawn_at else None,
        "created_at": iso_utc(r.created_at),
        "payments": [{"instruction_no": p.id, "attempt": int(p.attempt), "bank": p.bank_id, "payee_account": f"****{p.payee_account[-4:]}",
                      "amount": y(p.amount), "status": p.status, "bank_ref": p.bank_ref, "error_code": p.error_code,
                      "confirmed_at": iso_utc(p.confirmed_at) if p.confirmed_at else None} for p in payments],
    }


def listing(conn: Connection, *, setlym: str | None = None, region: str | None = None, institution_id: str | None = None,
            status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    q = select(A.c.id)
    if setlym is not None:
        q = q.where(A.c.setlym == setlym)
    if region is not None:
        q = q.where(A.c.region == region)
    if institution_id is not None:
        q = q.where(A.c.institution_id == institution_id)
    if status is not None:
        q = q.where(A.c.status == status)
    return [view(conn, i) for i in conn.execute(q.order_by(A.c.created_at, A.c.id).limit(limit)).scalars().all()]
