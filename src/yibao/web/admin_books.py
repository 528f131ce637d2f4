"""/admin pages for the agency's books: the daily reconciliation with the payment institutions and the monthly clearing.

`/admin/reconciliation` runs a day's reconciliation (the institution is called: a flow, `act_flow`), lists the runs and
the differences, and resolves an open difference with one of the resolutions it allows (services/reconciliation).
`/admin/clearing` lists a month's applications beside the platform's figures, approves and pays them (the bank is
called: a flow), records an institution's payee account, and nets a region pair's cross-region month (services/clearing).
The same service functions as the admin API (api/routers/admin.py); see docs/reconciliation.md and docs/clearing.md.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from yibao.domain import clearing as rules
from yibao.domain import reconciliation as rc
from yibao.domain.errors import InputError, YibaoError
from yibao.services.agency import institutions
from yibao.services.agency import payment_institutions as pis
from yibao.services.agency.policies import known_regions
from yibao.services.books import volumes
from yibao.services.clearing import applications as clearing
from yibao.services.clearing import interregion
from yibao.services.clearing import payments as clearing_payments
from yibao.services.reconciliation import resolutions as recon_resolutions
from yibao.services.reconciliation import runs as recon_runs
from yibao.web import forms, render
from yibao.web.admin import Post, _page, admin_action, admin_flow, region_name
from yibao.web.auth import Goto, operator, platform

router = APIRouter(include_in_schema=False)


# ---- query parameters, checked: a wrong one is said in words, never a stack trace --------------------------------------

def _day(value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("day", "invalid_date", "对账日期应为 YYYY-MM-DD", "the day must be a date as YYYY-MM-DD") from None


def _month(value: str | None, default: rules.Month) -> rules.Month:
    """From the month picker ("2026-11") or a setlym ("202611")."""
    return rules.parse_month(value, field="month") if value else default


def _previous_month(day: date) -> rules.Month:
    first = day.replace(day=1) - timedelta(days=1)
    return rules.Month(first.year, first.month)


def _recon_url(day: str, pi: str) -> str:
    query = {k: v for k, v in (("day", day), ("pi", pi)) if v}
    return "/admin/reconciliation" + (f"?{urlencode(query)}" if query else "")


def _clearing_url(month: str, region_a: str = "", region_b: str = "") -> str:
    query = {k: v for k, v in (("month", month), ("region_a", region_a), ("region_b", region_b)) if v}
    return "/admin/clearing" + (f"?{urlencode(query)}" if query else "")


def _back_recon(form: forms.Form) -> str:
    """The page the form was posted from (its day and institution), checked: only a date and an id go back in the URL."""
    day, pi = form.get("day"), form.get("pi")
    try:
        date.fromisoformat(day)
    except ValueError:
        day = ""
    return _recon_url(day, pi if pi.replace("-", "").replace("_", "").isalnum() else "")


def _back_clearing(form: forms.Form) -> str:
    month = form.get("month")
    regions = [r if (len(r) == 6 and r.isdigit()) else "" for r in (form.get("region_a"), form.get("region_b"))]
    try:
        month = rules.parse_month(month).setlym if month else ""
    except YibaoError:
        month = ""
    return _clearing_url(month, *regions)


# ---- /admin/reconciliation -------------------------------------------------------------------------------------------

@router.get("/admin/reconciliation")
async def reconciliation_page(request: Request) -> Response:
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    now = p.now()
    yesterday = volumes.local_day(now) - timedelta(days=1)  # the last whole Beijing day: its statements are out
    try:
        day = _day(request.query_params.get("day"), yesterday)
    except YibaoError as exc:
        return render.redirect(request, "/admin/reconciliation", error=exc)
    pi = request.query_params.get("pi") or ""

    def read(conn: Connection) -> dict[str, Any]:
        names = {x.id: x.name for x in pis.list_all(conn)}
        connected = recon_runs.institutions_to_reconcile(conn)
        return {"institutions": [(i, names.get(i, i)) for i in connected], "names": names,
                "runs": recon_runs.list_runs(conn, day=day, pi_id=pi or None),
                "differences": recon_runs.list_differences(conn, day=day, pi_id=pi or None)}

    data = await p.run(read, write=False)
    return _page(request, who, "admin/reconciliation.html", nav="reconciliation", day=day.isoformat(), pi=pi, max_day=yesterday.isoformat(),
                 region_label=lambda r: region_name(r, day.year, lang), open_count=sum(d["status"] == "open" for d in data["differences"]),
                 class_names=rc.CLASS_NAMES_ZH, **data)


@router.post("/admin/reconciliation/runs")
async def run_reconciliation(request: Request) -> Response:
    """Reconcile a day with one payment institution, or with every connected one (each institution is called for its
    statement: a flow, once per rendered form). A refused statement is said in words; the others still run."""
    async def call(x: Post) -> tuple[Goto, tuple[str, str]]:
        p, form = x.p, x.form
        day = _day(form.require("day", "对账日期", "the day"), date.min)
        recon_runs.require_ended(day, p.now())  # once for the form, before each institution is asked (the service checks it too)
        pi = form.get("pi")
        targets = [pi] if pi else await p.run(recon_runs.institutions_to_reconcile, write=False)
        if not targets:
            raise InputError("pi", "no_institution", "没有已接入的支付机构可对账", "no connected payment institution to reconcile")
        found, failed = 0, []
        for pi_id in targets:
            try:
                done = await recon_runs.reconcile(p.context, day=day, pi_id=pi_id, actor=x.who.actor)
            except YibaoError as exc:
                if pi:  # one institution asked for: its refusal is the answer
                    raise
                failed.append((pi_id, exc))
                continue
            found += sum(d["status"] == "open" for d in done.differences)
        to = Goto(_recon_url(day.isoformat(), pi))
        if failed:
            ids = "、".join(i for i, _ in failed)
            return to, (f"已对账 {len(targets) - len(failed)} 家，{len(failed)} 家失败（{ids}）：{failed[0][1].message_zh}",
                        f"Reconciled {len(targets) - len(failed)}; {len(failed)} failed ({', '.join(i for i, _ in failed)}): {failed[0][1].message_en}")
        return to, (f"对账完成：{len(targets)} 家支付机构，待处理差异 {found} 条",
                    f"Reconciled {len(targets)} payment institution(s): {found} open difference(s)")
    return await admin_flow(request, call, back=_back_recon, keep=("day", "pi"))


@router.post("/admin/reconciliation/differences/{difference_id}/resolution")
async def resolve_difference(request: Request, difference_id: str) -> Response:
    """Resolve an open difference with a reason (and a note to accept it): the query and the refund call the institution."""
    async def call(x: Post) -> Any:
        return await recon_resolutions.resolve(x.p.context, difference_id=difference_id, resolution=x.form.get("resolution"),
                                               reason=x.form.get("reason"), note=x.form.get("note") or None, actor=x.who.actor)
    return await admin_flow(request, call, back=_back_recon, ok=("差异已处理", "The difference is resolved"), keep=("reason", "note"))


# ---- /admin/clearing -------------------------------------------------------------------------------------------------

@router.get("/admin/clearing")
async def clearing_page(request: Request) -> Response:
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    today = volumes.local_day(p.now())
    q = request.query_params
    region_a, region_b = q.get("region_a") or "", q.get("region_b") or ""
    try:
        month = _month(q.get("month"), _previous_month(today))
    except YibaoError as exc:
        return render.redirect(request, "/admin/clearing", error=exc)

    def read(conn: Connection) -> dict[str, Any]:
        apps = clearing.listing(conn, setlym=month.setlym)
        reviews = {a["clr_appy_evt_id"]: clearing.review(conn, a["clr_appy_evt_id"]) for a in apps if a["status"] != rules.WITHDRAWN}
        codes = sorted({a["fixmedins_code"] for a in apps})
        names = {i.id: i.name for i in institutions.list_all(conn)}
        pair = None
        if region_a and region_b:
            pair = {"detail": interregion.detail(conn, region_a=region_a, region_b=region_b, month=month),
                    "confirmations": interregion.listing(conn, region_a=region_a, region_b=region_b, setlym=month.setlym)}
        return {"applications": apps, "reviews": reviews, "payees": {c: clearing.payee(conn, c) for c in codes}, "names": names, "pair": pair}

    try:
        data = await p.run(read, write=False)
    except YibaoError as exc:  # a region pair that is no pair: said in words, the month still shown
        return render.redirect(request, _clearing_url(month.setlym), error=exc)
    return _page(request, who, "admin/clearing.html", nav="clearing", month=month, month_value=f"{month.year:04d}-{month.month:02d}",
                 month_ended=month.end <= p.now(),
                 region_a=region_a, region_b=region_b, regions=known_regions(), region_label=lambda r: region_name(r, month.year, lang), **data)


@router.post("/admin/clearing-applications/{app_id}/approve")
async def approve_application(request: Request, app_id: str) -> Response:
    return await admin_action(request, lambda conn, x: clearing.approve(conn, x.p.now(), app_id=app_id, actor=x.who.actor),
                              back=_back_clearing, ok=("已受理：按平台核定金额拨付", "Accepted: the platform's figures are what is paid"))


@router.post("/admin/clearing-applications/{app_id}/pay")
async def pay_application(request: Request, app_id: str) -> Response:
    """Pay through the agency's bank (a flow: the bank is called); cleared once the bank confirms, else said how it stands."""
    async def call(x: Post) -> tuple[Goto, tuple[str, str]]:
        back = _back_clearing(x.form)
        outcome = await clearing_payments.pay(x.p.context, app_id, actor=x.who.actor)
        if outcome.state == "cleared" and outcome.instruction_no is None and outcome.payable == 0:  # nothing to pay: no bank asked
            return Goto(back), ("应付金额为零，无需银行拨付：已清算", "Nothing is payable, so no bank was asked: cleared")
        if outcome.state == "cleared":
            return Goto(back), ("已拨付，银行已确认：已清算", "Paid and confirmed by the bank: cleared")
        if outcome.state == "failed":
            return Goto(back), (f"银行拒绝拨付（{outcome.error}），请核对收款账户后重试",
                                f"The bank refused the payment ({outcome.error}): check the payee account and pay again")
        return Goto(back), ("拨付指令已发出，等待银行确认；稍后再点拨付查询", "The instruction is sent and awaits the bank's confirmation: pay again later to ask")
    return await admin_flow(request, call, back=_back_clearing)


@router.post("/admin/clearing/payees")
async def set_payee(request: Request) -> Response:
    """Record (or change) the account an institution is paid into: the institution's code is a field of the form."""
    return await admin_action(request, lambda conn, x: clearing.set_payee(
        conn, x.p.now(), institution_id=x.form.require("code", "机构编码", "the institution's code").strip(),
        account_no=x.form.require("account_no", "收款账号", "the account number"),
        account_name=x.form.require("account_name", "收款户名", "the account name"), actor=x.who.actor),
        back=_back_clearing, ok=("收款账户已保存", "The payee account is saved"), keep=("code", "account_no", "account_name"))


@router.post("/admin/interregion-clearing")
async def confirm_interregion(request: Request) -> Response:
    return await admin_action(request, lambda conn, x: interregion.confirm(
        conn, x.p.now(), region_a=x.form.require("region_a", "统筹区甲", "region A"), region_b=x.form.require("region_b", "统筹区乙", "region B"),
        setlym=rules.parse_month(x.form.require("month", "清算年月", "the month"), field="month").setlym, actor=x.who.actor),
        back=_back_clearing, ok=("异地清算已确认（轧差入账）", "The cross-region month is netted"))


@router.post("/admin/interregion-clearing/{clearing_id}/rollback")
async def roll_back_interregion(request: Request, clearing_id: str) -> Response:
    return await admin_action(request, lambda conn, x: interregion.rollback(conn, x.p.now(), clearing_id=clearing_id, actor=x.who.actor),
                              back=_back_clearing, ok=("异地清算已回退", "The netting is rolled back"))
