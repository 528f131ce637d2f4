"""/app — the insured person's (or guardian's) phone app.

Log-in by SMS code (in the demo, read in the SANDBOX gateway's outbox, which the demo aids link to); the e-card with its dynamic payment code; switching to a linked child's
card; the personal account; subsidies paid to the card (benefits); payment-institution bindings; card services; family links (信用支付: holder_credit.py). Every page
reads through services and every form posts to a route here that calls the same service function
as the REST API does (api/routers/patient.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.engine import Connection

from yibao.domain.errors import InputError, NotFound, YibaoError
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats.paycode_svg import barcode_svg, qr_svg
from yibao.runtime.clients import client_address
from yibao.services.access import face_login, sessions
from yibao.services.agency import payment_institutions as pis
from yibao.services.benefits import batches as benefit_batches
from yibao.services.books import accounts, ledger
from yibao.services.payments import agreements, cash, confirmation, paycodes
from yibao.services.payments import pins as payment_pins
from yibao.services.people import bindings as ecard_bindings
from yibao.services.people import cards, families, identity
from yibao.services.people import persons as people
from yibao.web import aids as page_aids
from yibao.web import forms, mobile_bills, payviews, render, security
from yibao.web.auth import Goto, Who, act, act_flow, holder, platform

router = APIRouter(include_in_schema=False)
AREA = "app"
COOKIE = security.SESSION_COOKIES[AREA]
_MONTH = re.compile(r"^(20\d\d|2100)-(0[1-9]|1[0-2])$")


def _page(request: Request, who: Who, template: str, **context: Any) -> HTMLResponse:
    return render.render(request, template, area=AREA, csrf_cookie=who.cookie, who=who, **context)


def _family_cards(conn: Connection, request: Request, who: Who) -> list[dict[str, str]]:
    """Whose cards this holder may show and see: themselves, then the children linked to them — their own names and
    their own children's in full (the holder's family is not masked to the holder)."""
    keyring = platform(request).keyring
    me = people.require(conn, who.principal)
    out = [{"psn_no": who.principal, "name": keyring.decrypt(me.name_enc, "name"), "self": True}]
    for link in families.links(conn, keyring, who.principal, own_in_full=True):
        if link["holder_psn_no"] == who.principal and link["relation"] in ("child_card", "guardian") \
                and all(o["psn_no"] != link["member_psn_no"] for o in out):
            out.append({"psn_no": link["member_psn_no"], "name": link["other_name"], "self": False})
    return out


def _chosen(request: Request, choices: list[dict[str, str]], who: Who) -> dict[str, str]:
    """The person picked with ?psn_no= among those the holder may see (themselves otherwise)."""
    wanted = request.query_params.get("psn_no") or who.principal
    for c in choices:
        if c["psn_no"] == wanted:
            return c
    raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")


# ---- log-in ----------------------------------------------------------------------------------

def _login_page(request: Request, *, phone: str = "", sent: bool = False) -> HTMLResponse:
    pre, new = security.pre_cookie(request)
    aids = page_aids.aids(request)
    return render.render(request, "app/login.html", area=AREA, csrf_cookie=pre, set_cookies={security.PRE_COOKIE: (pre, "/")} if new else None,
                         phone=phone, sent=sent, demo_people=aids.login_people() if aids else [], demo_faces=aids.login_faces() if aids else [],
                         sms_outbox_url=aids.sms_outbox_url if aids else None)


@router.get("/app/login")
async def login_page(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/app/sms-codes")
async def send_code(request: Request) -> Response:
    p = platform(request)
    form = await forms.read(request, AREA, request.cookies.get(security.PRE_COOKIE))
    phone = form.get("phone")
    try:
        await sessions.send_code(p.context, phone=phone, address=client_address(request))
    except YibaoError as exc:
        return render.redirect(request, "/app/login", error=exc, values={"phone": phone})
    response = render.redirect(request, "/app/login", ok=("如该手机号已参保登记，验证码已发送，5分钟内有效。",
                                                             "If this number is enrolled, a code was sent; it is valid for 5 minutes."),
                               values={"phone": phone, "sent": "1"})
    return response


@router.post("/app/sessions")
async def log_in(request: Request) -> Response:
    p = platform(request)
    form = await forms.read(request, AREA, request.cookies.get(security.PRE_COOKIE))
    phone, code = form.get("phone"), form.get("code")
    try:
        if not code:
            raise InputError("code", "required", "请输入短信验证码", "enter the SMS code")
        now, address = p.now(), client_address(request)
        result = await p.run(lambda c: sessions.verify_code(c, p.keyring, now, phone=phone, code=code, address=address))
        if isinstance(result, YibaoError):
            raise result  # after the counted attempt was committed
    except YibaoError as exc:
        return render.redirect(request, "/app/login", error=exc, values={"phone": phone, "sent": "1"})
    response = render.redirect(request, "/app")
    security.set_cookie(response, request, COOKIE, result["token"], path="/app", max_age=int(sessions.SESSION_TTL.total_seconds()))
    return response


@router.post("/app/sessions/real-name")
async def log_in_real_name(request: Request) -> Response:
    """实名登录: name, ID number and a live face (as POST /api/v1/patient/sessions/real-name). Demo captures only."""
    aids = page_aids.require(request)
    p = platform(request)
    form = await forms.read(request, AREA, request.cookies.get(security.PRE_COOKIE))
    try:
        capture, liveness = aids.login_capture(form.get("sample"))
        result = await face_login.log_in(p.context, id_number=form.require("id_number", "身份证号", "the ID number"),
                                         name=form.require("name", "姓名", "the name"), capture=capture, liveness=liveness)
    except YibaoError as exc:
        # The name comes back to the form (the flash cookie is encrypted); the ID number is typed again.
        return render.redirect(request, "/app/login", error=exc, values={"mode": "real-name", "name": form.get("name")})
    response = render.redirect(request, "/app")
    security.set_cookie(response, request, COOKIE, result["token"], path="/app", max_age=int(sessions.SESSION_TTL.total_seconds()))
    return response


@router.post("/app/logout")
async def log_out(request: Request) -> Response:
    p = platform(request)
    token = request.cookies.get(COOKIE, "")
    await forms.read(request, AREA, token)
    await p.run(lambda c: sessions.end(c, token))
    response = render.redirect(request, "/app/login", ok=("已退出登录", "Logged out"))
    security.clear_cookie(response, request, COOKIE, path="/app")
    return response


# ---- the e-card and its payment code -----------------------------------------------------------

@router.get("/app")
async def card(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)
    now = p.now()

    def read(conn: Connection) -> dict[str, Any]:
        choices = _family_cards(conn, request, who)
        chosen = _chosen(request, choices, who)
        issued, problem = None, None
        try:
            issued = paycodes.current(conn, p.keyring, now, holder_id=who.principal, person_id=chosen["psn_no"])
        except YibaoError as exc:
            if exc.code != "no_live_paycode":
                problem = exc
        account = accounts.summary(conn, chosen["psn_no"])
        return {"choices": choices, "chosen": chosen, "issued": issued, "problem": problem, "account": account,
                "guardian": _paying_guardian(conn, who, chosen, choices) if account is None else None,
                "sharing": _sharing_relatives(conn, who, chosen, p.keyring) if account is None else []}

    data = await p.run(read, write=False)
    issued = data["issued"]
    code = None
    if issued is not None:
        code = {"qr": render.markup_svg(qr_svg(issued.code)), "barcode": render.markup_svg(barcode_svg(issued.code)),
                "expires_in": max(0, int((issued.expires_at - now).total_seconds())), "ttl": issued.ttl_seconds,
                "state_url": "/app/paycodes/state?" + urlencode({"counter": issued.counter,
                                                                 **({"psn_no": data["chosen"]["psn_no"]} if not data["chosen"]["self"] else {})})}
    return _page(request, who, "app/card.html", code=code, **{k: v for k, v in data.items() if k != "issued"})


@router.get("/app/paycodes/state")
async def code_state(request: Request) -> JSONResponse:
    """What became of the code on the screen (``counter``, for ``psn_no`` or the holder): live, used, replaced or
    expired. The /app screen polls it so a code a counter has just used does not stay up with its countdown."""
    who = await holder(request)
    p = platform(request)
    psn_no = request.query_params.get("psn_no") or None
    counter = request.query_params.get("counter", "")
    if not counter.isdigit() or len(counter) > 18:
        return JSONResponse({"state": "unknown"}, status_code=400, headers=render.HEADERS)

    def read(conn: Connection) -> str:
        try:
            return paycodes.state(conn, p.now(), holder_id=who.principal, person_id=psn_no, counter=int(counter))
        except YibaoError:
            return "unknown"
    return JSONResponse({"state": await p.run(read, write=False)}, headers=render.HEADERS)


@router.post("/app/paycodes")
async def issue_code(request: Request) -> Response:
    """Show a code, or refresh it (tap, or the countdown reaching zero): the card's previous code dies."""
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    psn_no = form.get("psn_no") or None
    back = "/app" + (f"?psn_no={quote(psn_no, safe='')}" if psn_no and psn_no != who.principal else "")

    def work(conn: Connection) -> None:
        # The code itself is not kept in the form's record: the page draws the live code again.
        paycodes.issue(conn, p.keyring, p.now(), holder_id=who.principal, person_id=psn_no, actor=who.actor)
    return await act(request, who, form, work, back=back)


# ---- the personal account ----------------------------------------------------------------------

def _sharing_relatives(conn: Connection, who: Who, chosen: dict[str, Any], keyring: Any) -> list[str]:
    """A person without an account of their own whose relatives share theirs with them (家庭共济): those relatives'
    names as the holder sees them (their own family in full), in the order the links were made — whose account can pay
    the person's bills at a counter."""
    return [families.display_name(conn, keyring, reader_id=who.principal, person_id=payer["psn_no"])
            for payer in families.account_payers(conn, keyring, chosen["psn_no"]) if payer["payer"] == "family"]


def _paying_guardian(conn: Connection, who: Who, chosen: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A linked child has no account of their own: the guardian showing their code pays from the guardian's (the
    holder's) account, once the holder linked it as the child's family account (家庭账户关联) and has one — its name
    (the holder's own, in full) and summary."""
    if chosen["self"] or not families.has_family_account(conn, guardian_id=who.principal, child_id=chosen["psn_no"]):
        return None
    summary = accounts.summary(conn, who.principal)
    return None if summary is None else {"name": choices[0]["name"], "account": summary}


def _described(conn: Connection, who: Who, owner_id: str, transfers: list[Any], choices: list[dict[str, Any]],
               keyring: Any) -> dict[str, dict[str, str | None]]:
    """Per settlement id: the hospital's name and, when the care was not the account owner's (the holder's child, a
    relative sharing the account), whose — in full for the holder's own family, masked otherwise."""
    names = {link["other_psn_no"]: link["other_name"] for link in families.links(conn, keyring, who.principal, own_in_full=True)}
    names.update({c["psn_no"]: c["name"] for c in choices})
    out: dict[str, dict[str, str | None]] = {}
    for ref, a in accounts.about(conn, [t for t, _ in transfers]).items():
        patient = None
        if a.patient_id != owner_id:
            patient = names.get(a.patient_id)
            if patient is None:
                other = people.get(conn, a.patient_id)
                patient = people.masked_view(other, keyring)["psn_name"] if other else None
        out[ref] = {"institution": a.institution, "patient": patient}
    return out

@router.get("/app/account")
async def account(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    now = p.now()
    month = request.query_params.get("month", "")
    if month and not _MONTH.match(month):  # back to this month's statement, the refusal said and the field marked
        return render.redirect(request, "/app/account", error=InputError("month", "invalid_month", "月份应为2000-01至2100-12之间的年月（YYYY-MM）",
                                                                         "the month must be a YYYY-MM between 2000-01 and 2100-12"))
    year, mon = (int(month[:4]), int(month[5:])) if month else (now.year, now.month)

    def read(conn: Connection) -> dict[str, Any]:
        choices = _family_cards(conn, request, who)
        chosen = _chosen(request, choices, who)
        summary = accounts.summary(conn, chosen["psn_no"])
        if summary is None:
            return {"choices": choices, "chosen": chosen, "account": None, "guardian": _paying_guardian(conn, who, chosen, choices),
                    "sharing": _sharing_relatives(conn, who, chosen, p.keyring)}
        history = ledger.history(conn, summary.account_id, limit=20)
        statement = ledger.monthly_statement(conn, summary.account_id, year, mon)
        return {"choices": choices, "chosen": chosen, "account": summary, "history": history, "statement": statement,
                "figures": accounts.month_figures(statement), "refund_codes": accounts.REFUND_CODES,
                "about": _described(conn, who, chosen["psn_no"], history + statement.lines, choices, p.keyring)}

    data = await p.run(read, write=False)
    return _page(request, who, "app/account.html", month=f"{year:04d}-{mon:02d}", **data)


# ---- benefits paid to the card (一卡多用, seed 001) -----------------------------------------------

@router.get("/app/benefits")
async def benefits(request: Request) -> HTMLResponse:
    """Other agencies' subsidies paid to my financial card's account: credited, returned (with the bank's reason) or on
    their way — the same list as GET /api/v1/patient/benefits."""
    who = await holder(request)
    p = platform(request)
    items = await p.run(lambda c: benefit_batches.for_holder(c, who.principal), write=False)
    return _page(request, who, "app/benefits.html", nav="benefits", items=items)


# ---- payment-institution bindings --------------------------------------------------------------

@router.get("/app/bindings")
async def bindings(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        bound = ecard_bindings.of_holder(conn, who.principal)
        taken = {b["payment_institution_id"] for b in bound}
        admitted = [i for i in pis.list_admitted(conn, who.region, connected=True) if i.id not in taken]
        signed = {pi: agreements.status_of(conn, who.principal, pi)["status"] for pi in taken}
        return {"bound": bound, "admitted": admitted, "has_ecard": cards.active_ecard(conn, who.principal) is not None, "signed": signed}

    data = await p.run(read, write=False)
    return _page(request, who, "app/bindings.html", max_limit=format_yuan(ecard_bindings.MAX_PASSWORD_FREE), **data)


@router.post("/app/bindings")
async def bind(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> None:
        limit = parse_yuan(form.get("password_free_limit") or "0", "password_free_limit")
        ecard_bindings.bind(conn, p.now(), holder_id=who.principal, pi_id=form.require("payment_institution_id", "支付机构", "the payment institution"),
                 password_free_limit=limit, make_default=form.flag("default"), actor=who.actor)
    return await act(request, who, form, work, back="/app/bindings", ok=("已绑定", "Bound"), keep=("password_free_limit",))


@router.post("/app/bindings/{pi_id}/agreement")
async def binding_sign(request: Request, pi_id: str) -> Response:
    """签约免密支付: start the signing and send the holder to the institution's own page (its link and a QR of it, or
    UnionPay's form); the institution sends them back to `/agreement/done`, where the platform asks it what holds."""
    who = await holder(request)
    p = platform(request)
    await forms.read(request, AREA, who.cookie)
    back = f"{str(request.base_url).rstrip('/')}/app/bindings/{quote(pi_id)}/agreement/done"
    try:
        started = await agreements.start(p.context, holder_id=who.principal, pi_id=pi_id, return_url=back, actor=who.actor)
    except YibaoError as exc:
        return render.redirect(request, "/app/bindings", error=exc)
    if started["status"] == "active":
        return render.redirect(request, "/app/bindings", ok=("已签约免密支付", "The password-free agreement is signed"))
    signing = started["signing"]
    qr = render.markup_svg(qr_svg(signing["url"])) if signing["method"] == "GET" else None
    return _page(request, who, "app/signing.html", pi_id=pi_id, signing=signing, qr=qr, done=back)


@router.get("/app/bindings/{pi_id}/agreement/done")
async def binding_signed(request: Request, pi_id: str) -> Response:
    """Back from the institution's page: the redirect proves nothing — the platform asks the institution (or has its
    signed notification already)."""
    who = await holder(request)
    p = platform(request)
    state = await agreements.refresh(p.context, holder_id=who.principal, pi_id=pi_id, actor=who.actor)
    if state["status"] == "active":
        return render.redirect(request, "/app/bindings", ok=("已签约免密支付", "The password-free agreement is signed"))
    return render.redirect(request, "/app/bindings", error=cash.not_signed(pi_id))


@router.post("/app/bindings/{pi_id}/default")
async def binding_default(request: Request, pi_id: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: ecard_bindings.set_default(c, p.now(), holder_id=who.principal, pi_id=pi_id, actor=who.actor),
                     back="/app/bindings", ok=("已设为默认", "Made default"))


@router.post("/app/bindings/{pi_id}/limit")
async def binding_limit(request: Request, pi_id: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> None:
        limit = parse_yuan(form.require("password_free_limit", "免密额度", "the password-free limit"), "password_free_limit")
        ecard_bindings.set_limit(conn, p.now(), holder_id=who.principal, pi_id=pi_id, password_free_limit=limit, actor=who.actor)
    return await act(request, who, form, work, back="/app/bindings", ok=("免密额度已修改", "Password-free limit set"),
                     keep=("password_free_limit", "for_pi"))


@router.post("/app/bindings/{pi_id}/unbind")
async def unbind(request: Request, pi_id: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    done = await act(request, who, form, lambda c: agreements.unbind(c, p.now(), holder_id=who.principal, pi_id=pi_id, actor=who.actor),
                     back="/app/bindings", ok=("已解绑", "Unbound"))
    await agreements.terminate(p.context, holder_id=who.principal, pi_id=pi_id, actor=who.actor)  # after the unit (api: the same)
    return done


# ---- card services -----------------------------------------------------------------------------

@router.get("/app/cards")
async def card_services(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        choices = _family_cards(conn, request, who)
        chosen = _chosen(request, choices, who)
        items = [cards.view(conn, p.keyring, k) for k in cards.for_person(conn, chosen["psn_no"])]
        return {"choices": choices, "chosen": chosen, "items": items, "identity": identity.status(conn, who.principal),
                "has_ecard": cards.active_ecard(conn, who.principal) is not None}

    data = await p.run(read, write=False)
    return _page(request, who, "app/cards.html", max_photo_kb=cards.MAX_PHOTO_BYTES // 1024, **data)


def _card_action(action: Any, ok: tuple[str, str]):  # noqa: ANN202
    async def endpoint(request: Request, card_id: str) -> Response:
        who = await holder(request)
        p = platform(request)
        form = await forms.read(request, AREA, who.cookie)
        back = "/app/cards"
        return await act(request, who, form, lambda c: action(c, p.now(), card_id=card_id, holder_id=who.principal, actor=who.actor),
                         back=back, ok=ok)
    return endpoint


router.post("/app/cards/{card_id}/activation")(_card_action(cards.activate, ("卡已激活", "Card activated")))
router.post("/app/cards/{card_id}/loss-report")(_card_action(cards.report_loss, ("已挂失", "Reported lost")))
router.post("/app/cards/{card_id}/cancellation")(_card_action(cards.cancel, ("卡已注销", "Card cancelled")))
router.post("/app/cards/{card_id}/found-report")(_card_action(cards.report_found, ("已解挂，卡片恢复使用", "Reported found: the card works again")))


@router.post("/app/cards/{card_id}/replacement")
async def replace_card(request: Request, card_id: str) -> Response:
    """补卡: the holder's lost physical card replaced (cards.replace_own, as the counter's /admin replacement)."""
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: cards.replace_own(c, p.keyring, p.now(), card_id=card_id, holder_id=who.principal,
                                                                     actor=who.actor),
                     back="/app/cards", ok=("已申请补卡，新卡已受理", "Replacement requested: the new card is accepted for making"))


@router.post("/app/cards/{card_id}/photo")
async def upload_photo(request: Request, card_id: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    upload = form.files.get("photo")
    data = b""
    if upload is not None:
        try:
            data = await upload.read(cards.MAX_PHOTO_BYTES + 1)
        finally:
            await upload.close()  # its spooled temporary file, now, not whenever it is collected

    def work(conn: Connection) -> None:
        if not data:
            raise InputError("photo", "required", "请选择照片文件", "choose a photo file")
        cards.upload_photo(conn, p.keyring, p.now(), card_id=card_id, holder_id=who.principal, data=data, actor=who.actor)
    return await act(request, who, form, work, back="/app/cards", ok=("照片已上传", "Photo uploaded"))


@router.post("/app/identity/real-name")
async def real_name(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> None:
        identity.real_name(conn, p.keyring, p.now(), person_id=who.principal, name=form.require("name", "姓名", "the name"),
                           id_number=form.require("id_number", "身份证号", "the ID number"), actor=who.actor)
    return await act(request, who, form, work, back="/app/cards", ok=("实名认证已通过", "Real-name authentication passed"), keep=("name",))


@router.post("/app/ecards")
async def issue_ecard(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: cards.issue_ecard(c, p.keyring, p.now(), person_id=who.principal, actor=who.actor),
                     back="/app/cards", ok=("电子社保卡已开通", "Electronic card issued"))


# ---- family ------------------------------------------------------------------------------------

@router.get("/app/family")
async def family(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)
    now = p.now()

    def read(conn: Connection) -> dict[str, Any]:
        links = families.links(conn, p.keyring, who.principal, own_in_full=True)
        children = []
        for c in _family_cards(conn, request, who)[1:]:
            checklist = families.checklist(conn, now, guardian_id=who.principal, child_id=c["psn_no"])
            family_account = any(l["relation"] == "guardian" and l["member_psn_no"] == c["psn_no"] for l in links)
            children.append({**c, "checklist": checklist, "family_account": family_account})
        return {"links": links, "children": children}

    data = await p.run(read, write=False)
    return _page(request, who, "app/family.html", **data)


@router.post("/app/family/child-cards")
async def link_child_card(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> None:
        families.link_child_card(conn, p.keyring, p.now(), guardian_id=who.principal,
                                 card_no=form.require("card_no", "少儿社保卡号", "the child's card number"),
                                 child_name=form.require("child_name", "少儿姓名", "the child's name"), actor=who.actor)
    return await act(request, who, form, work, back="/app/family", ok=("已关联少儿社保卡", "Child's card linked"),
                     keep=("card_no", "child_name"))


@router.post("/app/family/children/{psn_no}/family-account")
async def link_family_account(request: Request, psn_no: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: families.link_family_account(c, p.now(), guardian_id=who.principal, child_id=psn_no,
                                                                               actor=who.actor),
                     back="/app/family", ok=("已建立家庭账户关联", "Family account linked"))


@router.post("/app/family/mutual-aid")
async def grant_mutual_aid(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> None:
        families.grant_mutual_aid(conn, p.keyring, p.now(), holder_id=who.principal, relation=form.require("relation", "关系", "the relation"),
                                  id_number=form.require("id_number", "身份证号", "the ID number"),
                                  name=form.require("name", "姓名", "the name"), actor=who.actor)
    return await act(request, who, form, work, back="/app/family", ok=("已授权家庭共济", "Mutual aid granted"), keep=("relation", "name"))


@router.post("/app/family/mutual-aid/{psn_no}/revoke")
async def revoke_mutual_aid(request: Request, psn_no: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: families.revoke_mutual_aid(c, p.now(), holder_id=who.principal, member_id=psn_no,
                                                                             actor=who.actor),
                     back="/app/family", ok=("已撤销家庭共济", "Mutual aid revoked"))


# ---- payments awaiting my confirmation, and the payment PIN ------------------------------------

@router.get("/app/bills")
async def bills(request: Request) -> HTMLResponse:
    """待支付: one-code payments whose cash is above my password-free limit, waiting for my PIN; and the
    bills hospitals sent to my phone (mine and my linked children's), to pay here (web/mobile_bills.py)."""
    who = await holder(request)
    p = platform(request)
    now = p.now()
    use_account = mobile_bills.use_account_choice(request)

    def read(conn: Connection) -> dict[str, Any]:
        return {"pending": [payviews.view(conn, p, o, reader_id=who.principal) for o in confirmation.pending_for(conn, who.principal, now)],
                "pin_set": payment_pins.stored(conn, who.principal) is not None,
                "mobile": mobile_bills.for_page(conn, p, who.principal, use_account)}

    return _page(request, who, "app/bills.html", nav="bills", **(await p.run(read, write=False)))


@router.get("/app/payments/{payment_id}")
async def payment(request: Request, payment_id: str) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)
    doc = await p.run(lambda c: payviews.view(c, p, confirmation.payer_order(c, payment_id, who.principal), reader_id=who.principal), write=False)
    return _page(request, who, "app/payment.html", nav="bills", pay=doc)


_OUTCOME = {
    "completed": ("支付成功", "Paid"),
    "voided": ("支付已撤销", "The payment was voided", "notice"),  # not a success: said as a notice
}


@router.post("/app/payments/{payment_id}/confirm")
async def confirm_payment(request: Request, payment_id: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    async def call() -> tuple[Goto, tuple[str, ...] | None]:
        pin = form.require("pin", "支付密码", "the payment PIN")
        order = await confirmation.confirm(p.context, order_id=payment_id, payer_id=who.principal, pin=pin, actor=who.actor)
        said = _OUTCOME.get(order.status, ("已确认，支付结果确认中", "Confirmed; the payment's outcome is being checked", "notice"))
        return Goto(f"/app/payments/{payment_id}"), said
    return await act_flow(request, who, form, call, back="/app/bills")


@router.post("/app/payments/{payment_id}/decline")
async def decline_payment(request: Request, payment_id: str) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> Goto:
        confirmation.decline(conn, p.now(), order_id=payment_id, payer_id=who.principal, actor=who.actor)
        return Goto(f"/app/payments/{payment_id}")
    return await act(request, who, form, work, back="/app/bills", ok=("已拒绝该笔支付，冻结的款项已释放", "Payment refused; everything held is released"))


@router.get("/app/pin")
async def pin_page(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)
    pin_set = await p.run(lambda c: payment_pins.stored(c, who.principal) is not None, write=False)
    return _page(request, who, "app/pin.html", nav="bills", pin_set=pin_set)


@router.post("/app/pin")
async def set_pin(request: Request) -> Response:
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    async def call() -> tuple[Goto, tuple[str, str]]:
        pin = form.require("pin", "新支付密码", "the new PIN")
        if pin != form.get("pin_again"):
            raise InputError("pin_again", "pin_mismatch", "两次输入的支付密码不一致", "the two PINs differ")
        result = await payment_pins.change(p.context, person_id=who.principal, pin=pin, old_pin=form.get("old_pin") or None, actor=who.actor)
        return Goto("/app/bills"), (("支付密码已修改", "Payment PIN changed") if result["changed"] else ("支付密码已设置", "Payment PIN set"))
    return await act_flow(request, who, form, call, back="/app/pin")
