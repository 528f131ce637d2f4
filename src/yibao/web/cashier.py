"""/cashier — the cashier console of a hospital or pharmacy.

Log in with the institution's credential (`<code>.<secret>`); scan or type a payment code (or a
card number) and a visit opens for the person it names; enter fee lines or load a sample set; see
the pre-settlement split with its explanation; confirm to settle; a print-style receipt; cancel a
settlement (refund). The same service functions as the HIS API (api/routers/his.py).

The cash share is either collected at the counter (settle) or, with 一码支付, the whole visit is paid
in one scan (onecode.pay, as POST /api/v1/his/payments/onecode): fund and account held, the
cash collected from the payer's payment institution, then all posted or all voided.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import InputError, YibaoError
from yibao.domain.money import parse_yuan
from yibao.services.access import sessions
from yibao.services.books import volumes
from yibao.services.care import presence, settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.care.views import line_view, visit_view
from yibao.services.payments import card_pin, paycodes
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import onecode as onecode_pay
from yibao.services.payments import orders as payments
from yibao.services.people import persons as people
from yibao.web import aids as page_aids
from yibao.web import cashier_counter, cashier_payments, forms, links, once, payviews, render, security
from yibao.web.auth import Goto, Who, act, act_flow, cashier, log_in_console, log_out_console, platform

router = APIRouter(include_in_schema=False)
AREA = "cashier"
COOKIE = security.SESSION_COOKIES[AREA]
TERMINAL = payviews.TERMINAL
ACCOUNT_CHOICES = ("self", "guardian", "family", "none")
PAY_BY = ("channel", "credit")  # as the HIS API's pay_by

# A sample set a cashier can load to try the console (demo and training): one line of each kind
# the engine treats differently. Serial numbers are fixed, so loading twice adds nothing.
SAMPLE_LINES = {
    "hospital": [
        {"feedetl_sn": "S1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"},
        {"feedetl_sn": "S2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "演示医师"},
        {"feedetl_sn": "S3", "medins_list_codg": "A310", "name": "血常规检查", "unit_price": "20.00", "quantity": "1"},
        {"feedetl_sn": "S4", "medins_list_codg": "C900", "name": "医用护肤品（自费）", "unit_price": "30.00", "quantity": "1"},
        {"feedetl_sn": "S5", "medins_list_codg": "A520", "name": "CT检查（平扫）", "unit_price": "360.00", "quantity": "1"},
    ],
    # a day of an inpatient stay (住院): bed, nursing, a drug over its price cap, a test, own-expense supplies
    "inpatient": [
        {"feedetl_sn": "S1", "medins_list_codg": "A002", "name": "床位费", "unit_price": "50.00", "quantity": "1"},
        {"feedetl_sn": "S2", "medins_list_codg": "A003", "name": "护理费（二级护理）", "unit_price": "20.00", "quantity": "1"},
        {"feedetl_sn": "S3", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "演示医师"},
        {"feedetl_sn": "S4", "medins_list_codg": "A310", "name": "血常规检查", "unit_price": "20.00", "quantity": "1"},
        {"feedetl_sn": "S5", "medins_list_codg": "C901", "name": "护理用品（自费）", "unit_price": "15.00", "quantity": "1"},
    ],
    "pharmacy": [
        {"feedetl_sn": "S1", "medins_list_codg": "XA11", "name": "阿莫西林胶囊", "unit_price": "18.60", "quantity": "1",
         "prescription": True, "prescriber": "演示医师"},
        {"feedetl_sn": "S2", "medins_list_codg": "XB21", "name": "布洛芬缓释胶囊", "unit_price": "26.00", "quantity": "1"},
        {"feedetl_sn": "S3", "medins_list_codg": "C120", "name": "维生素C泡腾片（自费）", "unit_price": "15.00", "quantity": "1"},
    ],
}


def _page(request: Request, who: Who, template: str, **context: Any) -> HTMLResponse:
    return render.render(request, template, area=AREA, csrf_cookie=who.cookie, who=who, **context)


def _account(choice: str, payer_psn_no: str | None) -> AccountRequest:
    if choice not in ACCOUNT_CHOICES:
        raise InputError("account", "invalid_choice", "个人账户选项无效", "not a valid personal-account choice")
    if choice == "none":
        return AccountRequest(use=False)
    if choice == "self":
        return AccountRequest(use=True)
    return AccountRequest(use=True, payer=choice, payer_person_id=payer_psn_no or None)


# ---- log-in ----------------------------------------------------------------------------------

@router.get("/cashier/login")
async def login_page(request: Request) -> HTMLResponse:
    pre, new = security.pre_cookie(request)
    return render.render(request, "cashier/login.html", area=AREA, csrf_cookie=pre,
                         set_cookies={security.PRE_COOKIE: (pre, "/")} if new else None)


@router.post("/cashier/sessions")
async def log_in(request: Request) -> Response:
    """The institution's credential, counted like the HIS API's (per client address and per institution)."""
    form = await forms.read(request, AREA, request.cookies.get(security.PRE_COOKIE))
    try:
        token, path = await log_in_console(request, AREA, form.get("credential"))
    except YibaoError as exc:
        return render.redirect(request, "/cashier/login", error=exc)
    response = render.redirect(request, "/cashier")
    security.set_cookie(response, request, COOKIE, token, path=path, max_age=int(sessions.CONSOLE_TTL.total_seconds()))
    return response


@router.post("/cashier/logout")
async def log_out(request: Request) -> Response:
    await forms.read(request, AREA, request.cookies.get(COOKIE))
    await log_out_console(request, AREA)  # the session is gone: the cookie (and any copy) stops working now
    response = render.redirect(request, "/cashier/login", ok=("已退出登录", "Logged out"))
    security.clear_cookie(response, request, COOKIE, path="/cashier")
    return response


# ---- scan, and the console's front page ---------------------------------------------------------

@router.get("/cashier")
async def console(request: Request) -> HTMLResponse:
    who = await cashier(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        return {"recent": volumes.recent_for_institution(conn, who.principal, 10), "refusals": paycodes.refusals(conn, who.principal, 5)}

    return _page(request, who, "cashier/console.html", **(await p.run(read, write=False)))


def _pharmacy(who: Who) -> bool:
    return bool(who.institution and who.institution.kind == "pharmacy")


def _kind(form: forms.Form, who: Who) -> str:
    """A pharmacy's visit is a purchase (pharmacy), opened with the scan, no registration asked; a hospital's the kind
    chosen: outpatient, emergency, or inpatient (办理入院)."""
    return "pharmacy" if _pharmacy(who) else (form.get("kind") or "outpatient")


def _admission_date(form: forms.Form, kind: str) -> date | None:
    """An admission's date (入院日期): today unless the counter enters an earlier day (a stay admitted before it is keyed in)."""
    text = form.get("admit_date") if kind == "inpatient" else ""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("admit_date", "invalid_date", "入院日期格式应为 yyyy-mm-dd", "the admission date must be yyyy-mm-dd") from None


def _opened(who: Who, kind: str) -> tuple[str, str]:
    if _pharmacy(who):
        return ("已核验，请录入所购药品", "Verified: enter the medicines bought")
    if kind == "inpatient":
        return ("已办理入院，请逐日录入住院费用", "Admitted: enter the stay's fees day by day")
    return ("已登记就诊", "The visit is open")


@router.post("/cashier/scan")
async def scan(request: Request) -> Response:
    """A scanned (or typed) payment code: verified and used up, then a visit opens for its person — the holder's
    presence for that visit (paycodes.consume records it; bound here to the visit it opens).

    A refused code is recorded (guesses are counted) in the same commit as the form's outcome, and the
    refusal is shown afterwards, in words."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    code = "".join(form.get("code").split())  # a typed code may carry the spaces it is printed with
    kind = _kind(form, who)

    def work(conn: Connection) -> once.Outcome:
        now = p.now()
        result = paycodes.consume(conn, p.keyring, now, code=code, institution=who.institution, terminal_id=TERMINAL, actor=who.actor)
        if isinstance(result, YibaoError):
            return {"refusal": {"code": result.code, "zh": result.message_zh, "en": result.message_en}}
        visit = visits.open_visit(conn, now, institution=who.institution, person_id=result.person_id, kind=kind,
                                  visit_date=_admission_date(form, kind))
        scanned = presence.get(conn, result.presence_id) if result.presence_id else None
        if scanned is not None:  # the code was shown for the visit it opens: the holder's presence for this one, not another
            presence.bind(conn, now, scanned, visit_id=visit.id, field="code")
        guardian = result.relation == "guardian"
        return {"to": links.visit_url(visit.id, "guardian" if guardian else "self", result.holder_id if guardian else None)}

    try:
        outcome, _ = await p.run(once.unit(scope=f"web:{AREA}:{who.principal}", nonce=form.nonce, path=request.url.path,
                                           region=who.region, now=p.now(), work=work))
    except YibaoError as exc:
        return render.redirect(request, "/cashier", error=exc, values={"code": code})
    if "refusal" in outcome:
        r = outcome["refusal"]
        return render.redirect(request, "/cashier", error=InputError("code", r["code"], r["zh"], r["en"]), values={"code": code})
    zh, en = _opened(who, kind)
    return render.redirect(request, outcome["to"], ok=(f"支付码核验通过，{zh}", f"Payment code verified. {en}"))


@router.post("/cashier/lookup")
async def lookup(request: Request) -> Response:
    """No code to scan: the person's social-security card (1101), then a visit. With the card's PIN typed by its
    holder, the read is also the holder's presence for that visit (card_pin.present): the account may pay it.
    A miss or a wrong PIN is counted (committed) before it is said."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    pin = form.get("pin")
    kind = _kind(form, who)
    if pin:
        async def call() -> tuple[Goto, tuple[str, str]]:
            record = await card_pin.present(p.context, institution=who.institution, card_no=form.require("card_no", "社保卡号", "the card number"),
                                            pin=pin, actor=who.actor, terminal_id=TERMINAL)
            read = await p.run(record)
            if isinstance(read, YibaoError):
                raise read  # counted (committed) before it is said

            def open_for(conn: Connection) -> str:
                now = p.now()
                taken = presence.take(conn, now, kind="card_pin", credential_id=read.credential_id, institution_id=who.principal,
                                      field="card_no")
                visit = visits.open_visit(conn, now, institution=who.institution, person_id=read.person_id, kind=kind,
                                          visit_date=_admission_date(form, kind))
                presence.bind(conn, now, taken, visit_id=visit.id, field="card_no")
                return visit.id
            visit_id = await p.run(open_for)
            zh, en = _opened(who, kind)
            return Goto(f"/cashier/visits/{visit_id}"), (f"读卡验密通过，{zh}", f"Card and PIN checked. {en}")
        return await act_flow(request, who, form, call, back="/cashier", keep=("card_no",))

    def work(conn: Connection) -> once.Outcome:
        now = p.now()
        person = people.lookup_for_institution(conn, p.keyring, now, institution=who.institution, actor=who.actor, credential_type="card",
                                               credential_no=form.require("card_no", "社保卡号", "the card number"))
        if isinstance(person, YibaoError):  # the miss commits (it counts), then it is said
            return {"refusal": {"field": person.field, "code": person.code, "zh": person.message_zh, "en": person.message_en}}
        visit = visits.open_visit(conn, now, institution=who.institution, person_id=person["psn_no"], kind=kind,
                                  visit_date=_admission_date(form, kind))
        return {"to": f"/cashier/visits/{visit.id}"}  # the account to offer first is decided there (a child: her guardian's)

    try:
        outcome, _ = await p.run(once.unit(scope=f"web:{AREA}:{who.principal}", nonce=form.nonce, path=request.url.path,
                                           region=who.region, now=p.now(), work=work))
    except YibaoError as exc:
        return render.redirect(request, "/cashier", error=exc, values=form.values("card_no"))
    if "refusal" in outcome:
        r = outcome["refusal"]
        return render.redirect(request, "/cashier", error=InputError(r["field"], r["code"], r["zh"], r["en"]), values=form.values("card_no"))
    return render.redirect(request, outcome["to"], ok=_opened(who, kind))


# ---- a visit: fee lines, pre-settlement, settlement ----------------------------------------------

@router.get("/cashier/visits/{visit_id}")
async def visit_page(request: Request, visit_id: str) -> HTMLResponse:
    who = await cashier(request)
    p = platform(request)
    aids = page_aids.aids(request)
    # A guardian's or a relative's account chosen in the select: "guardian:<psn_no>" / "family:<psn_no>".
    choice, payer_psn_no = cashier_counter.parse_choice(request.query_params.get("account", "self"),
                                                        request.query_params.get("payer_psn_no") or None)
    want_split = request.query_params.get("presettle") == "1"

    def read(conn: Connection) -> dict[str, Any]:
        visit = visits.get(conn, who.principal, visit_id)
        lines = [line_view(r) for r in visits.list_lines(conn, who.principal, visit_id)]
        if visit.kind == "inpatient":  # the daily fee list: each line with its fee day, by day
            lines = cashier_counter.by_fee_day(lines, visit.visit_date)
        person = people.masked_view(people.require(conn, visit.person_id), p.keyring)
        guardians = cashier_payments.guardians_of(conn, p.keyring, visit.person_id)
        options = cashier_counter.account_options(conn, p.keyring, visit.person_id)
        account, payer = choice, payer_psn_no
        if "account" not in request.query_params:  # no own account (a child, a tier-2 employee): a shared one is offered first
            account, payer = cashier_counter.default_choice(options)
        now = p.now()
        split, problem, needs_presence = None, None, None
        if want_split and visit.status in ("open", "discharged"):
            try:
                split = settlement.presettle(conn, now, institution=who.institution, visit_id=visit_id, account=_account(account, payer))
            except YibaoError as exc:
                if exc.code != "presence_required":
                    problem = exc
                else:  # the account's share (its balance) only once its owner is present: the split without it meanwhile
                    needs_presence = exc
                    try:
                        split = settlement.presettle(conn, now, institution=who.institution, visit_id=visit_id, account=AccountRequest())
                    except YibaoError as again:
                        problem = again
        scan = paycodes.recent_scan(conn, now, institution_id=who.principal, person_id=visit.person_id, visit_id=visit.id)
        presences = [presence.view(x) for x in presence.live_for_visit(conn, now, institution_id=who.principal, visit_id=visit.id,
                                                                       person_id=visit.person_id)]
        return {"visit": visit_view(visit), "lines": lines, "person": person, "split": split, "problem": problem, "options": options,
                "balance": cashier_counter.balance_before(split, needs_presence, account),
                "days": cashier_counter.days_of(lines, visit) if visit.kind == "inpatient" else None, "line_note": cashier_counter.line_note,
                "today": volumes.local_day(now).isoformat(),
                "needs_presence": needs_presence, "presences": presences,
                "scan_until": scan[1] if scan else None, "open_bill": visits.open_bill(conn, visit.id),
                "open_payment": visits.open_payment(conn, visit.id) if visit.status == "settling" else None, "guardians": guardians,
                "choice": account, "payer_psn_no": payer or "",
                "face": cashier_payments.face_section(conn, p.keyring, visit, account, payer, aids.samples if aids else ()) if split else None}

    data = await p.run(read, write=False)
    return _page(request, who, "cashier/visit.html", choices=ACCOUNT_CHOICES, pharmacy=_pharmacy(who),
                 here_query=links.visit_url(visit_id, data["choice"], data["payer_psn_no"] or None), **data)


def _line_from(form: forms.Form, serial: str, fee_time: str | None = None) -> dict[str, Any]:
    """A line as the counter enters it: codes, price, quantity — the platform decides its class, cap and ratio. An
    inpatient stay's line carries its fee day (fee_time, national format)."""
    item: dict[str, Any] = {"feedetl_sn": serial, "medins_list_codg": form.get("medins_list_codg") or None,
                            "med_list_codg": form.get("med_list_codg") or None, "name": form.get("name") or None,
                            "unit_price": form.require("unit_price", "单价", "the unit price"),
                            "quantity": form.require("quantity", "数量", "the quantity"), "fee_ocur_time": fee_time}
    if form.flag("prescription"):
        item.update(prescription=True, prescriber=form.get("prescriber") or None)
    return {k: v for k, v in item.items() if v is not None}


@router.post("/cashier/visits/{visit_id}/lines")
async def add_line(request: Request, visit_id: str) -> Response:
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    def work(conn: Connection) -> None:
        serial = str(len(visits.list_lines(conn, who.principal, visit_id)) + 1)  # the console numbers its lines 1, 2, …
        now = p.now()
        visit = visits.get(conn, who.principal, visit_id)
        fee_time = cashier_counter.fee_time(form.get("fee_date"), now) if visit.kind == "inpatient" else None
        visits.upload_lines(conn, now, institution=who.institution, visit_id=visit_id, items=[_line_from(form, serial, fee_time)])
    return await act(request, who, form, work, back=links.visit_back(visit_id, form), ok=("已添加费用明细", "Fee line added"),
                     keep=("medins_list_codg", "med_list_codg", "name", "unit_price", "quantity", "prescription", "prescriber", "fee_date"))


@router.post("/cashier/visits/{visit_id}/sample-lines")
async def load_sample(request: Request, visit_id: str) -> Response:
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    kind = "pharmacy" if who.institution and who.institution.kind == "pharmacy" else "hospital"

    def work(conn: Connection) -> None:
        now = p.now()
        visit = visits.get(conn, who.principal, visit_id)
        items = [dict(x) for x in SAMPLE_LINES["inpatient" if visit.kind == "inpatient" else kind]]
        if visit.kind == "inpatient":  # a day of the stay: the set on that fee day, its serials named by the day
            day = form.get("fee_date") or volumes.local_day(now).isoformat()
            fee_time = cashier_counter.fee_time(day, now)
            items = [{**x, "feedetl_sn": f"D{day.replace('-', '')}{x['feedetl_sn']}", "fee_ocur_time": fee_time} for x in items]
        visits.upload_lines(conn, now, institution=who.institution, visit_id=visit_id, items=items)
    return await act(request, who, form, work, back=links.visit_back(visit_id, form), ok=("已载入示例费用", "Sample fee lines loaded"))


@router.post("/cashier/visits/{visit_id}/lines/{feedetl_sn}/revoke")
async def revoke_line(request: Request, visit_id: str, feedetl_sn: str) -> Response:
    who = await cashier(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: visits.revoke_line(c, institution=who.institution, visit_id=visit_id, feedetl_sn=feedetl_sn),
                     back=links.visit_back(visit_id, form), ok=("已撤销该明细", "Fee line revoked"))


@router.post("/cashier/visits/{visit_id}/settle")
async def settle(request: Request, visit_id: str) -> Response:
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    account, payer_psn_no = cashier_counter.parse_choice(form.get("account") or "self", form.get("payer_psn_no") or None)

    def work(conn: Connection) -> Goto:
        # The message id comes from the form's nonce: the same form sent twice is one settlement.
        doc = settlement.settle(conn, p.now(), institution=who.institution, visit_id=visit_id, msgid=f"W{form.nonce}"[:40],
                                account=_account(account, payer_psn_no), actor=who.actor)
        return Goto(f"/cashier/settlements/{doc['setl_id']}")
    return await act(request, who, form, work, back=links.visit_url(visit_id, account, payer_psn_no, presettle="1"),
                     ok=("结算成功", "Settled"))


# ---- presence: the account's owner presents a credential for this visit ----------------------------------

@router.post("/cashier/visits/{visit_id}/presence/code")
async def present_code(request: Request, visit_id: str) -> Response:
    """The code the account's owner shows, scanned for this visit (paycodes.consume): their presence for one settlement
    with the account. A refused code is recorded (guesses count) before it is said, as at /cashier/scan."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    code = "".join(form.get("code").split())
    back = links.visit_back(visit_id, form) + "&presettle=1"

    def work(conn: Connection) -> once.Outcome:
        if not code:
            raise InputError("code", "required", "请扫描或输入参保人出示的医保支付码", "scan or type the payment code the holder shows")
        result = paycodes.consume(conn, p.keyring, p.now(), code=code, institution=who.institution, terminal_id=TERMINAL, actor=who.actor,
                                  visit_id=visit_id)
        if isinstance(result, YibaoError):
            return {"refusal": {"code": result.code, "zh": result.message_zh, "en": result.message_en}}
        return {}

    try:
        outcome, _ = await p.run(once.unit(scope=f"web:{AREA}:{who.principal}", nonce=form.nonce, path=request.url.path,
                                           region=who.region, now=p.now(), work=work))
    except YibaoError as exc:
        return render.redirect(request, back, error=exc)
    if "refusal" in outcome:
        r = outcome["refusal"]
        return render.redirect(request, back, error=InputError("code", r["code"], r["zh"], r["en"]))
    return render.redirect(request, back, ok=("支付码核验通过：可从个人账户支付本次就诊", "Payment code verified: the account may pay this visit"))


@router.post("/cashier/visits/{visit_id}/presence/card")
async def present_card(request: Request, visit_id: str) -> Response:
    """The owner's card read with its PIN, typed by its holder (card_pin.present): their presence for this visit."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    back = links.visit_back(visit_id, form) + "&presettle=1"

    async def call() -> tuple[Goto, tuple[str, str]]:
        record = await card_pin.present(p.context, institution=who.institution, card_no=form.require("card_no", "社保卡号", "the card number"),
                                        pin=form.require("pin", "社保卡密码", "the card's PIN"), actor=who.actor, visit_id=visit_id,
                                        terminal_id=TERMINAL)
        read = await p.run(record)
        if isinstance(read, YibaoError):
            raise read  # counted (committed) before it is said
        return Goto(back), ("读卡验密通过：可从个人账户支付本次就诊", "Card and PIN checked: the account may pay this visit")
    return await act_flow(request, who, form, call, back=back, keep=("card_no",))


# ---- receipts and refunds ------------------------------------------------------------------------

@router.get("/cashier/settlements/{setl_id}")
async def receipt(request: Request, setl_id: str) -> HTMLResponse:
    who = await cashier(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        doc = settlement.get_settlement(conn, institution=who.institution, setl_id=setl_id)
        stay = cashier_counter.stay_of(visits.get(conn, who.institution.id, doc["mdtrt_id"])) if doc.get("med_type") == "inpatient" else None
        return {"doc": doc, "person": people.masked_view(people.require(conn, doc["psn_no"]), p.keyring),
                "paid_by": payments.of_settlement(conn, who.principal, setl_id), "stay": stay,
                "lines": cashier_counter.by_fee_day(doc["lines"], date.fromisoformat(stay["admitted"])) if stay else doc["lines"],
                # the balance after settlement is the paying account's: none when no account paid (not used, or none)
                "account_used": parse_yuan(doc["acct_pay"]) > 0, "balance_of": _payer_name(conn, doc, setl_id)}

    def _payer_name(conn: Connection, doc: dict[str, Any], setl_id: str) -> str | None:
        """The masked name of whoever's account paid when it is not the patient's own (a guardian, a relative)."""
        owner = settlement.paying_account_owner(conn, institution=who.institution, setl_id=setl_id)
        if owner is None or owner == doc["psn_no"]:
            return None
        return str(people.masked_view(people.require(conn, owner), p.keyring)["psn_name"])

    return _page(request, who, "cashier/receipt.html", **(await p.run(read, write=False)))


@router.post("/cashier/settlements/{setl_id}/cancel")
async def cancel(request: Request, setl_id: str) -> Response:
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: settlement.cancel(c, p.now(), institution=who.institution, setl_id=setl_id, actor=who.actor),
                     back=f"/cashier/settlements/{setl_id}", ok=("结算已撤销，款项已退回", "Settlement cancelled; the money is returned"))


# ---- one-code payment (一码支付) --------------------------------------------------------------------

_PAID = {
    po.COMPLETED: ("一码支付成功", "One-code payment completed"),
    po.VOIDED: ("支付未成功，已全部撤销", "The payment did not go through; everything was voided", "notice"),
    po.AWAITING_CONFIRMATION: ("个人自付超过免密额度，等待参保人在手机上输入支付密码确认", "The cash is above the password-free limit: waiting for the holder to confirm with the PIN",
                               "notice"),  # not a success: a notice (trial 17 point 11)
}


@router.post("/cashier/visits/{visit_id}/onecode")
async def onecode(request: Request, visit_id: str) -> Response:
    """The code shown now pays the visit: the same flow as POST /api/v1/his/payments/onecode (the form's nonce is the request key)."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    code = "".join(form.get("code").split())
    use_scan = form.flag("use_scan") and not code  # a code typed now wins over the earlier scan
    use_account = form.flag("use_account")
    pay_by = form.get("pay_by") or "channel"  # the cash share: the holder's payment institution, or their credit line (信用支付)
    key = f"W{form.nonce}"[:64]

    async def call() -> tuple[Goto, tuple[str, str]]:
        paycode_id = None
        if use_scan:  # the code scanned to open this visit, if it is still good and has paid nothing
            def find(conn: Connection) -> int | None:
                visit = visits.get(conn, who.principal, visit_id)
                scan = paycodes.recent_scan(conn, p.now(), institution_id=who.principal, person_id=visit.person_id, visit_id=visit.id)
                return scan[0] if scan else None
            paycode_id = await p.run(find, write=False)
            if paycode_id is None:
                raise InputError("code", "scan_expired", "刚才的扫码已超时或已使用，请参保人重新出示医保码",
                                 "the earlier scan has expired or was used; scan the code the holder shows now")
        elif not code:
            raise InputError("code", "required", "请扫描或输入参保人出示的医保支付码", "scan or type the payment code the holder shows")
        if pay_by not in PAY_BY:
            raise InputError("pay_by", "invalid_choice", "个人自付方式无效", "not a valid way to pay the cash share")
        digest = hashlib.sha256(f"web onecode {visit_id} {code} {paycode_id} {use_account} {pay_by}".encode()).hexdigest()
        order = await onecode_pay.pay(p.context, institution=who.institution, request_key=key, request_hash=digest,
                                           code=code or None, paycode_id=paycode_id, terminal_id=TERMINAL, visit_id=visit_id, lines=None,
                                           use_account=use_account, actor=who.actor, pay_by=pay_by)
        return Goto(f"/cashier/payments/{order.id}"), _PAID.get(order.status, payviews.CHECKING)
    return await act_flow(request, who, form, call, back=links.visit_back(visit_id, form) + "&presettle=1")


@router.get("/cashier/payments/{payment_id}")
async def payment_page(request: Request, payment_id: str) -> HTMLResponse:
    who = await cashier(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        order = payments.for_institution(conn, who.principal, payment_id)
        return {"pay": payviews.view(conn, p, order), **cashier_payments.refund_section(conn, order)}

    return _page(request, who, "cashier/payment.html", **(await p.run(read, write=False)))


@router.post("/cashier/payments/{payment_id}/query")
async def query_payment(request: Request, payment_id: str) -> Response:
    """查询: a payment whose cash outcome is not known yet is asked about at the institution (the truth)."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    back = f"/cashier/payments/{payment_id}"

    async def call() -> tuple[Goto, tuple[str, str]]:
        order = await p.run(lambda c: payments.for_institution(c, who.principal, payment_id), write=False)
        if order.status in po.CASH_IN_DOUBT:
            order = await cash_leg.ask(p.context, order, actor=who.actor)
        return Goto(back), _PAID.get(order.status, payviews.CHECKING)
    return await act_flow(request, who, form, call, back=back)
