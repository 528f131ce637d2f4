"""/admin — the agency's dashboard.

Log in with an operator token; today's settlements and the money paid by each fund layer as SVG
charts; the ledger's balance and the audit chains' verification; institutions and payment
institutions with their admission (admit, suspend, admit again); pilot governance; the rollout against
seed 004's dates; card production (accept, stages, issue, replace after loss); the audit log. The same service
functions as the admin API (api/routers/admin.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from yibao.domain import audit_actions, regions
from yibao.domain.errors import InputError, YibaoError
from yibao.domain.money import format_yuan
from yibao.runtime.platform import Platform
from yibao.services.access import sessions
from yibao.services.agency import admission, institutions, pilots, rollout
from yibao.services.agency import payment_institutions as pis
from yibao.services.agency.policies import known_regions, require_known_region
from yibao.services.books import audit, ledger, volumes
from yibao.services.people import cards
from yibao.services.people import persons as people
from yibao.web import charts, forms, i18n, once, render, security
from yibao.web.auth import Goto, Who, act, act_flow, log_in_console, log_out_console, operator, platform

router = APIRouter(include_in_schema=False)
AREA = "admin"
COOKIE = security.SESSION_COOKIES[AREA]
# The four fund layers in blue shades, the patient's own money (account, cash) in green and amber.
LAYER_COLOURS = ("#0b5cad", "#2f7fd0", "#5c9ee0", "#7aa9d8", "#8ab8ec", "#1b7f4b", "#c98a00")  # fund layers (oth_pay too), account, cash


def _page(request: Request, who: Who, template: str, **context: Any) -> HTMLResponse:
    return render.render(request, template, area=AREA, csrf_cookie=who.cookie, who=who, **context)


@dataclass(frozen=True)
class Post:
    """An operator's posted form, read as every /admin post begins: the operator's session, the platform, the form
    (its CSRF token checked against the session)."""

    who: Who
    p: Platform
    form: forms.Form


async def _post(request: Request) -> Post:
    who = await operator(request)
    p = platform(request)
    return Post(who, p, await forms.read(request, AREA, who.cookie))


Said = tuple[str, str] | None


def _of_form(value: Any, form: forms.Form) -> Any:
    return value(form) if callable(value) else value


async def admin_action(request: Request, work: Callable[[Connection, Post], Any], *, back: str | Callable[[forms.Form], str],
                       ok: Said | Callable[[forms.Form], Said] = None, keep: tuple[str, ...] = ()) -> Response:
    """An /admin post that changes something in one unit (`act`): ``work(conn, post)``; ``back`` and ``ok`` may depend on
    the form."""
    post = await _post(request)
    return await act(request, post.who, post.form, lambda conn: work(conn, post), back=_of_form(back, post.form),
                     ok=_of_form(ok, post.form), keep=keep)


async def admin_flow(request: Request, call: Callable[[Post], Awaitable[Any]], *, back: str | Callable[[forms.Form], str],
                     ok: Said = None, keep: tuple[str, ...] = ()) -> Response:
    """An /admin post whose change calls an institution between units (`act_flow`): ``await call(post)``."""
    post = await _post(request)
    return await act_flow(request, post.who, post.form, lambda: call(post), back=_of_form(back, post.form), ok=ok, keep=keep)


def region_name(region: str, year: int, lang: str) -> str:
    """深圳市（440300） or Shenzhen (440300), from the one table of region names (domain/regions.py); the code if it has
    none. (``year``: kept for the callers; a region's name does not change with the policy year.)"""
    return regions.label(region, lang)


# ---- log-in ----------------------------------------------------------------------------------

@router.get("/admin/login")
async def login_page(request: Request) -> HTMLResponse:
    pre, new = security.pre_cookie(request)
    return render.render(request, "admin/login.html", area=AREA, csrf_cookie=pre,
                         set_cookies={security.PRE_COOKIE: (pre, "/")} if new else None)


@router.post("/admin/sessions")
async def log_in(request: Request) -> Response:
    """The operator's token, counted like the admin API's (per client address)."""
    form = await forms.read(request, AREA, request.cookies.get(security.PRE_COOKIE))
    try:
        token, path = await log_in_console(request, AREA, form.get("token"))
    except YibaoError as exc:
        return render.redirect(request, "/admin/login", error=exc)
    response = render.redirect(request, "/admin")
    security.set_cookie(response, request, COOKIE, token, path=path, max_age=int(sessions.CONSOLE_TTL.total_seconds()))
    return response


@router.post("/admin/logout")
async def log_out(request: Request) -> Response:
    await forms.read(request, AREA, request.cookies.get(COOKIE))
    await log_out_console(request, AREA)  # the session is gone: the cookie (and any copy) stops working now
    response = render.redirect(request, "/admin/login", ok=("已退出登录", "Logged out"))
    security.clear_cookie(response, request, COOKIE, path="/admin")
    return response


# ---- overview ----------------------------------------------------------------------------------

def _period(request: Request, today: date) -> tuple[date, date, str]:
    """The dashboard's period from its query: ``date_from``/``date_to`` (either alone is one day), else a preset
    (today by default). Answers (first, last, the preset chosen or "")."""
    q = request.query_params
    typed_from, typed_to = (q.get("date_from") or "").strip(), (q.get("date_to") or "").strip()
    if typed_from or typed_to:
        first = volumes.parse_day(typed_from or typed_to, "date_from", "开始日期", "The start date")
        last = volumes.parse_day(typed_to or typed_from, "date_to", "结束日期", "The end date")
        first, last = volumes.period(first, last)
        return first, last, next((name for name in volumes.PRESETS if volumes.preset(name, today) == (first, last)), "")
    name = q.get("preset") or "today"
    first, last = volumes.preset(name, today)
    return first, last, name


@router.get("/admin")
async def overview(request: Request) -> Response:
    who = await operator(request)
    p = platform(request)
    now = p.now()
    lang = render.lang_of(request)
    today = volumes.local_day(now)
    try:
        first, last, preset = _period(request, today)
    except YibaoError as exc:  # said in words, on today's figures, the dates as typed kept in the form
        return render.redirect(request, "/admin", error=exc, values={k: (request.query_params.get(k) or "")[:10] for k in ("date_from", "date_to")})

    anchored = await asyncio.to_thread(p.anchors.read) if p.anchors is not None else None

    def read(conn: Connection) -> dict[str, Any]:
        return {"days": volumes.by_region(conn, first, last), "totals": ledger.totals(conn), "chains": audit.verify(conn, anchored)}

    data = await p.run(read, write=False)
    await audit.anchor_reports(p.anchors, data["chains"])
    days = data["days"]
    def t(key: str, **kw: Any) -> str:
        return i18n.text(lang, key, **kw)

    one_day = first == last
    when = first.isoformat() if one_day else t("period_range", a=first.isoformat(), b=last.isoformat())
    empty = t("chart_empty") if (one_day and first == today) else t("period_empty")
    count_rows = [(region_name(d.region, first.year, lang), d.settled) for d in days]
    counts = charts.bar_chart(count_rows, chart_id="chart-counts", title=t("chart_counts" if one_day else "chart_counts_period", day=when),
                              empty=empty)
    # Every layer is drawn, the empty ones too: a fund layer that paid nothing is news as well.
    layers = {key: sum(d.paid[key] for d in days) for key in volumes.LAYERS}
    layer_rows = [(t(k), v) for k, v in layers.items()] if days else []
    paid = charts.bar_chart(layer_rows, chart_id="chart-layers", title=t("chart_layers" if one_day else "chart_layers_period", day=when),
                            empty=empty, fmt=lambda fen: f"¥{format_yuan(fen)}", colours=LAYER_COLOURS)
    return _page(request, who, "admin/overview.html", nav="overview", first=first, last=last, today=today, preset=preset,
                 presets=volumes.PRESETS, max_days=volumes.MAX_DAYS, days=days, layers=layers, count_rows=count_rows, layer_rows=layer_rows,
                 region_label=lambda r: region_name(r, first.year, lang), counts_svg=render.markup_svg(counts),
                 layers_svg=render.markup_svg(paid), totals=data["totals"], chains=data["chains"],
                 chains_ok=all(c.ok for c in data["chains"]))


# ---- institutions and payment institutions -----------------------------------------------------

@router.get("/admin/institutions")
async def institutions_page(request: Request) -> HTMLResponse:
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    year = p.now().year

    def read(conn: Connection) -> dict[str, Any]:
        listed = pis.list_all(conn)
        return {"hospitals": institutions.list_all(conn), "pis": listed, "suspensions": pis.suspensions(conn, listed)}

    data = await p.run(read, write=False)
    return _page(request, who, "admin/institutions.html", nav="institutions", region_label=lambda r: region_name(r, year, lang),
                 regions=known_regions(), **data)


@router.post("/admin/payment-institutions")
async def admit_payment_institution(request: Request) -> Response:
    """Admit a payment institution, or admit a suspended one again (a new admission decision): registered if new, its
    connector tested with a signed call, then admitted (agency/admission.py) — refused in words without a working one."""
    async def call(x: Post) -> None:
        form = x.form
        await admission.admit(x.p.context, pi_id=form.require("id", "机构标识", "the id"), region=form.require("region", "统筹区", "the region"),
                              name=form.require("name", "名称", "the name"), kind=form.require("kind", "类型", "the kind"),
                              admission_ref=form.require("admission_ref", "准入文号", "the admission reference"), actor=x.who.actor)
    return await admin_flow(request, call, back="/admin/institutions", ok=("已准入", "Admitted"),
                            keep=("id", "region", "name", "kind", "admission_ref"))


@router.post("/admin/payment-institutions/{pi_id}/suspension")
async def suspend_payment_institution(request: Request, pi_id: str) -> Response:
    def work(conn: Connection, x: Post) -> None:  # the operator says why: the reason is the record of the decision
        pis.suspend(conn, x.p.now(), pi_id=pi_id, reason=x.form.require("reason", "暂停原因", "the reason for the suspension"), actor=x.who.actor)
    return await admin_action(request, work, back="/admin/institutions", ok=("已暂停", "Suspended"))


@router.post("/admin/institutions")
async def admit_institution(request: Request) -> Response:
    """Admit a designated hospital or pharmacy (as POST /api/v1/admin/institutions).

    Its API credential is shown once, on the page answering this post (no redirect: the secret must
    not travel in a cookie or be stored for a replay). The same form sent again admits nothing and
    says the credential was shown already.
    """
    who = await operator(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    keep = ("form", "code", "region", "name", "kind", "level")
    shown: dict[str, str] = {}

    def work(conn: Connection) -> once.Outcome:
        kind = form.require("kind", "机构类型", "the kind")
        if kind not in ("hospital", "pharmacy"):
            raise InputError("kind", "invalid_choice", "机构类型应为医院或药店", "must be hospital or pharmacy")
        inst, secret = institutions.admit(conn, p.now(), code=form.require("code", "机构编码", "the code"),
                                          region=form.require("region", "统筹区", "the region"), name=form.require("name", "名称", "the name"),
                                          kind=kind, level=form.require("level", "级别", "the level"), actor=who.actor)
        shown.update(code=inst.id, name=inst.name, credential=f"{inst.id}.{secret}")
        return {"code": inst.id}  # kept for a replay: never the secret

    try:
        outcome, replayed = await p.run(once.unit(scope=f"web:{AREA}:{who.principal}", nonce=form.nonce, path=request.url.path,
                                                  region=who.region, now=p.now(), work=work))
    except YibaoError as exc:
        return render.redirect(request, "/admin/institutions", error=exc, values=form.values(*keep))
    if replayed:
        return render.redirect(request, "/admin/institutions", ok=(f"机构 {outcome['code']} 已准入；凭证已在首次提交时显示",
                                                                   f"Institution {outcome['code']} is admitted; its credential was shown on the first submit"))
    return _page(request, who, "admin/admitted.html", nav="institutions", admitted=shown)


# ---- pilot governance (services/agency/pilots.py; docs/governance.md) ---------------------------------------------

@router.get("/admin/pilots")
async def pilots_page(request: Request) -> HTMLResponse:
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    now = p.now()

    def read(conn: Connection) -> dict[str, Any]:
        data = pilots.overview(conn, now)
        data["names"] = {i.id: i.name for i in institutions.list_all(conn)}
        return data

    data = await p.run(read, write=False)
    renewed = {g["renews"] for g in data["agreements"] if g["renews"]}
    return _page(request, who, "admin/pilots.html", nav="pilots", region_label=lambda r: region_name(r, now.year, lang), renewed=renewed,
                 **data)


@router.get("/admin/pilot-documents/{document_id}")
async def pilot_document(request: Request, document_id: str) -> Response:
    await operator(request)
    p = platform(request)
    try:
        filename, content = await p.run(lambda c: pilots.document(c, document_id), write=False)
    except YibaoError as exc:
        return render.redirect(request, "/admin/pilots", error=exc)
    return Response(content, media_type="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


@router.post("/admin/pilot-applications/{application_id}/review")
async def review_pilot(request: Request, application_id: str) -> Response:
    def work(conn: Connection, x: Post) -> None:
        decision = x.form.get("decision")
        if decision not in ("approve", "reject"):
            raise InputError("decision", "invalid_choice", "请选择批准或驳回", "approve or reject")
        pilots.review(conn, x.p.now(), application_id=application_id, approve=decision == "approve", note=x.form.get("note"), actor=x.who.actor)

    def ok(form: forms.Form) -> tuple[str, str]:
        return ("已批准，试点协议已签订", "Approved: the agreement is signed") if form.get("decision") == "approve" else ("已驳回", "Rejected")
    return await admin_action(request, work, back="/admin/pilots", ok=ok)


@router.post("/admin/pilot-agreements/{agreement_id}/renewal")
async def renew_pilot(request: Request, agreement_id: str) -> Response:
    return await admin_action(request, lambda conn, x: pilots.renew(conn, x.p.now(), agreement_id=agreement_id, actor=x.who.actor),
                              back="/admin/pilots", ok=("已续签一年", "Renewed for a year"))


@router.post("/admin/institutions/{code}/pilot-suspension")
async def suspend_pilot(request: Request, code: str) -> Response:
    return await admin_action(request, lambda conn, x: pilots.suspend(
        conn, x.p.now(), institution_id=code, reason=x.form.require("reason", "暂停原因", "the reason for the suspension"), actor=x.who.actor),
        back="/admin/pilots", ok=("已暂停该机构的移动支付", "The institution's mobile-mode payments are suspended"))


@router.post("/admin/institutions/{code}/pilot-restoration")
async def restore_pilot(request: Request, code: str) -> Response:
    return await admin_action(request, lambda conn, x: pilots.restore(conn, x.p.now(), institution_id=code, actor=x.who.actor),
                              back="/admin/pilots", ok=("已恢复", "Restored"))


# ---- rollout (services/agency/rollout.py; docs/governance.md "Rollout") ---------------------------------------------

@router.get("/admin/rollout")
async def rollout_page(request: Request) -> HTMLResponse:
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    now = p.now()
    data = await p.run(lambda c: rollout.report(c, now), write=False)
    return _page(request, who, "admin/rollout.html", nav="rollout", report=data, region_label=lambda r: region_name(r, now.year, lang))


# ---- card production (services/people/cards.py) ----------------------------------------------------------------

def _cards_back(psn_no: str) -> str:
    return f"/admin/cards?psn={quote(psn_no)}"


@router.get("/admin/cards")
async def cards_page(request: Request) -> HTMLResponse:
    """A person's cards by person number (the ID-number look-up posts, so the number never sits in a URL)."""
    who = await operator(request)
    p = platform(request)
    psn_no = (request.query_params.get("psn") or "").strip()[:24]

    def read(conn: Connection) -> dict[str, Any]:
        person = people.get(conn, psn_no) if psn_no else None
        if person is None:
            return {"person": None, "cards": []}
        return {"person": people.masked_view(person, p.keyring), "cards": [cards.view(conn, p.keyring, k) for k in cards.for_person(conn, person.id)]}

    data = await p.run(read, write=False)
    lang, year = render.lang_of(request), p.now().year
    return _page(request, who, "admin/cards.html", nav="cards", psn=psn_no, stages=cards.STAGES, region_label=lambda r: region_name(r, year, lang),
                 **data)


@router.post("/admin/card-lookups")
async def find_card_holder(request: Request) -> Response:
    def work(conn: Connection, x: Post) -> Goto:
        return Goto(_cards_back(cards.find_holder(conn, x.p.keyring, x.p.now(), query=x.form.get("query"), actor=x.who.actor).id))
    return await admin_action(request, work, back="/admin/cards")


@router.post("/admin/persons/{psn_no}/cards")
async def accept_card(request: Request, psn_no: str) -> Response:
    def work(conn: Connection, x: Post) -> None:
        cards.create_physical(conn, x.p.keyring, x.p.now(), person_id=psn_no, financial=x.form.flag("financial"),
                              card_no=x.form.get("card_no") or None, actor=x.who.actor)
    return await admin_action(request, work, back=_cards_back(psn_no), ok=("已受理制卡申请", "The card application is accepted"),
                              keep=("card_no",))


async def _card_act(request: Request, change: Any, ok: tuple[str, str]) -> Response:
    """A change to one card (``change(conn, now, who, form)`` answers the card), then back to its holder's cards."""
    def work(conn: Connection, x: Post) -> Goto:
        return Goto(_cards_back(change(conn, x.p.now(), x.who, x.form).person_id))

    def back(form: forms.Form) -> str:
        psn_no = form.get("psn")[:24]
        return _cards_back(psn_no) if psn_no else "/admin/cards"
    return await admin_action(request, work, back=back, ok=ok)


@router.post("/admin/cards/{card_id}/production")
async def card_production(request: Request, card_id: str) -> Response:
    return await _card_act(request, lambda conn, now, who, form: cards.advance_production(
        conn, now, card_id=card_id, stage=form.require("stage", "制卡进度", "the stage"), actor=who.actor),
        ok=("已记录制卡进度", "The production stage is recorded"))


@router.post("/admin/cards/{card_id}/issue")
async def card_issue(request: Request, card_id: str) -> Response:
    return await _card_act(request, lambda conn, now, who, form: cards.issue(conn, now, card_id=card_id, actor=who.actor),
                           ok=("已发卡", "The card is issued"))


@router.post("/admin/cards/{card_id}/replacement")
async def card_replacement(request: Request, card_id: str) -> Response:
    keyring = platform(request).keyring
    return await _card_act(request, lambda conn, now, who, form: cards.replace(
        conn, keyring, now, card_id=card_id, report_loss=form.flag("report_loss"), actor=who.actor),
        ok=("已补办，新卡进入制作", "Replaced: a new card is in production"))


# ---- the audit log -----------------------------------------------------------------------------

def _audit_search(request: Request) -> tuple[audit.Search, audit.Position | None, dict[str, str]]:
    """The audit page's filters from its query, each checked (refused naming the field), and where the page starts."""
    q = request.query_params
    typed = {k: (q.get(k) or "").strip()[:80] for k in ("region", "action", "actor", "date_from", "date_to", "before")}
    if typed["region"]:
        require_known_region(typed["region"])  # "abc" or 123456 would just list nothing: say why instead
    if typed["action"] and typed["action"] not in audit_actions.NAMES:
        raise InputError("action", "unknown_action", f"动作 {typed['action']} 不存在", f"there is no action {typed['action']}")
    first = volumes.parse_day(typed["date_from"], "date_from", "开始日期", "The start date") if typed["date_from"] else None
    last = volumes.parse_day(typed["date_to"], "date_to", "结束日期", "The end date") if typed["date_to"] else None
    if first and last and first > last:
        volumes.period(first, last)  # refused: reversed (the log's period may be as long as the log)
    since = volumes.day_bounds(first)[0] if first else None
    until = volumes.day_bounds(last)[1] if last else None
    before = audit.Position.parse(typed["before"]) if typed["before"] else None
    what = audit.Search(region=typed["region"] or None, action=typed["action"] or None, actor=typed["actor"] or None, since=since, until=until)
    return what, before, typed


@router.get("/admin/audit")
async def audit_page(request: Request) -> Response:
    """The chains' verification and the log, 50 entries a page newest first (keyset: "older" links carry the last
    entry's position), filtered by region, action, actor (from its start) and a period of Beijing days."""
    who = await operator(request)
    p = platform(request)
    lang = render.lang_of(request)
    try:
        what, before, typed = _audit_search(request)
    except YibaoError as exc:
        kept = {k: (request.query_params.get(k) or "")[:80] for k in ("region", "action", "actor", "date_from", "date_to")}
        return render.redirect(request, "/admin/audit", error=exc, values=kept)

    anchored = await asyncio.to_thread(p.anchors.read) if p.anchors is not None else None

    def read(conn: Connection) -> dict[str, Any]:
        return {"page": audit.search(conn, what, before), "chains": audit.verify(conn, anchored)}

    data = await p.run(read, write=False)
    await audit.anchor_reports(p.anchors, data["chains"])
    filters = {k: v for k, v in typed.items() if v and k != "before"}
    older = data["page"].older
    year = p.now().year
    actions = sorted(audit_actions.NAMES, key=lambda code: (code.split(".")[0], code))
    return _page(request, who, "admin/audit.html", nav="audit", entries=data["page"].entries, chains=data["chains"],
                 chains_ok=all(c.ok for c in data["chains"]), filters=filters, regions=known_regions(), actions=actions,
                 action_name=lambda code: audit_actions.name(code, lang), region_label=lambda r: region_name(r, year, lang),
                 older_url=f"/admin/audit?{urlencode({**filters, 'before': older.token()})}" if older else None,
                 newest_url=f"/admin/audit?{urlencode(filters)}" if before is not None else None, page_size=audit.PAGE_SIZE)
