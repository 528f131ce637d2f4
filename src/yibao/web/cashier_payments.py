"""/cashier: face payment (刷脸支付) on the visit page and refunds (退款) on the payment page.

刷脸支付 runs the steps of POST /api/v1/his/face-authorizations and POST /api/v1/his/payments/face:
`face_pay.check` (a unit, then the platform's face verifier over HTTP: no unit waits on it), the unit it
hands back (a failed check commits before it is said, so it counts), then `face_pay.pay` with the
single-use authorization. The console has no camera: the cashier chooses a synthetic capture sample from
the demo's aids (`web/aids.py`, given by the sandbox wing) — the payer on another day (a match), another
demo person (a mismatch) or the enrolment photo held up to the camera (liveness fails). Those samples
match only the demo's enrolments, so the section works in demo mode only: elsewhere a wrong sample
would count against a real person's tries.

退款 runs `refunds.refund` as POST /api/v1/his/payments/{id}/refunds (the form's nonce is the
request key); 查询 sends the same refund request again, which is the API's retry: `refunds.drive`
asks the institution. A refund of some items (scope items: one refund, each leg its difference) is
previewed first — GET …/refunds/preview shows what each leg gives back and what remains, priced as the
refund will be (`refunds.preview`, nothing written) — and confirmed from there.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain import payment_order as po
from yibao.domain.errors import Forbidden, InputError, NotFound, YibaoError
from yibao.services.care import visits
from yibao.services.care.views import line_view
from yibao.services.care.visits import Visit
from yibao.services.payments import face as face_pay
from yibao.services.payments import orders as payments
from yibao.services.payments import refunds
from yibao.services.payments.orders import Order
from yibao.services.people import families
from yibao.services.people import persons as people
from yibao.web import aids as page_aids
from yibao.web import forms, payviews, render
from yibao.web.auth import Goto, act_flow, cashier, platform

router = APIRouter(include_in_schema=False)
AREA = "cashier"
TERMINAL = payviews.TERMINAL

_FACE_PAID = {
    po.COMPLETED: ("刷脸支付成功", "Face payment completed"),
    po.VOIDED: ("支付未成功，已全部撤销", "The payment did not go through; everything was voided", "notice"),
    po.AWAITING_CONFIRMATION: ("个人自付超过免密额度，等待参保人在手机上输入支付密码确认",
                               "The cash is above the password-free limit: waiting for the holder to confirm with the PIN", "notice"),
}
_REFUNDED = {
    "succeeded": ("退款成功", "Refunded"),
    "failed": ("支付机构拒绝退款，款项未退回", "The payment institution refused the refund; nothing was given back"),
}
_REFUND_PENDING = ("退款结果尚未确认，请稍后点“查询”", "The refund's outcome is not known yet: query it again shortly")


def _name(conn: Connection, keyring: Keyring, person_id: str) -> str:
    """The full name, for the demo's sample faces only (each demo face is drawn from its person's name)."""
    return keyring.decrypt(people.require(conn, person_id).name_enc, "name")


def _sample_face(conn: Connection, keyring: Keyring, aids: page_aids.DemoAids, holder_id: str, sample: str) -> tuple[str, int, dict[str, Any]]:
    """The sample's (face key, day, liveness): the demo enrols each person's face drawn from their name."""
    return aids.sample_face(_name(conn, keyring, holder_id), sample)


def guardians_of(conn: Connection, keyring: Keyring, patient_id: str) -> list[dict[str, str]]:
    """The patient's linked guardians (who may pay for them by face), names masked."""
    seen: dict[str, dict[str, str]] = {}
    for link in families.links(conn, keyring, patient_id):
        if link["member_psn_no"] == patient_id and link["relation"] in ("guardian", "child_card"):
            seen.setdefault(link["holder_psn_no"], {"psn_no": link["holder_psn_no"], "name": link["other_name"]})
    return list(seen.values())


def _payer_allowed(conn: Connection, patient_id: str, payer_id: str) -> bool:
    return payer_id == patient_id or families.can_view(conn, payer_id, patient_id)


def face_section(conn: Connection, keyring: Keyring, visit: Visit, choice: str, payer_psn_no: str | None,
                 samples: tuple[str, ...]) -> dict[str, Any]:
    """What the visit page's 刷脸支付 section shows: whose face (the patient, or a guardian the page pays
    with), links to switch, and the sample images."""
    guardians = guardians_of(conn, keyring, visit.person_id)
    payer = payer_psn_no if choice == "guardian" and payer_psn_no in {g["psn_no"] for g in guardians} else visit.person_id

    def url(account: str, payer_id: str | None) -> str:
        query = {"account": account, **({"payer_psn_no": payer_id} if payer_id else {}), "presettle": "1"}
        return f"/cashier/visits/{visit.id}?{urlencode(query)}"

    payers = [{"psn_no": visit.person_id, "name": people.masked_view(people.require(conn, visit.person_id), keyring)["psn_name"], "guardian": False,
               "url": url("self", None), "current": payer == visit.person_id}]
    payers += [{**g, "guardian": True, "url": url("guardian", g["psn_no"]), "current": payer == g["psn_no"]} for g in guardians]
    base = f"/cashier/visits/{visit.id}/face-samples"
    return {"payer": payer if payer != visit.person_id else "", "payers": payers,
            "samples": [{"key": k, "img": f"{base}/{k}.png?{urlencode({'payer': payer})}"} for k in samples]}


@router.get("/cashier/visits/{visit_id}/face-samples/{sample}.png")
async def face_sample(request: Request, visit_id: str, sample: str) -> Response:
    """A sample capture as the PNG the verifier receives: served by the app (the CSP's img-src 'self')."""
    who = await cashier(request)
    p = platform(request)
    aids = page_aids.require_samples(request)

    def read(conn: Connection) -> bytes:
        visit = visits.get(conn, who.principal, visit_id)
        payer = request.query_params.get("payer") or visit.person_id
        if not _payer_allowed(conn, visit.person_id, payer):
            raise Forbidden("payer_psn_no", "not_guardian", "付款人不是该参保人已关联的监护人", "the payer is not a linked guardian of this patient")
        name, day, _ = _sample_face(conn, p.keyring, aids, payer, sample)
        return aids.face_png(name, day)

    png = await p.run(read, write=False)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.post("/cashier/visits/{visit_id}/face")
async def face_pay_visit(request: Request, visit_id: str) -> Response:
    """刷脸支付: face.check (prepare, the verifier) → its record unit → face.pay; then the payment page."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    sample = form.get("sample")
    payer = form.get("face_payer") or None
    use_account = form.flag("use_account")
    account = form.get("account") or "self"
    back_query = {"account": account, **({"payer_psn_no": form.get("payer_psn_no")} if form.get("payer_psn_no") else {}), "presettle": "1"}
    back = f"/cashier/visits/{visit_id}?{urlencode(back_query)}"
    key = f"W{form.nonce}"[:64]

    async def call() -> tuple[Goto, tuple[str, str]]:
        aids = page_aids.require_samples(request)

        def sample_of(conn: Connection, holder_id: str) -> tuple[str, dict[str, Any]]:
            name, day, liveness = _sample_face(conn, p.keyring, aids, holder_id, sample)
            return aids.capture(name, day), liveness

        patient = await p.run(lambda c: visits.get(c, who.principal, visit_id).person_id, write=False)
        record = await face_pay.check(p.context, institution=who.institution, person_id=patient, payer_id=payer, terminal_id=TERMINAL,
                                      actor=who.actor, capture_of=sample_of)
        result = await p.run(record)
        if isinstance(result, YibaoError):  # recorded (it counts) before it is said
            raise result
        digest = hashlib.sha256(f"web face {visit_id} {use_account}".encode()).hexdigest()
        order = await face_pay.pay(p.context, institution=who.institution, request_key=key, request_hash=digest,
                                        authorization_id=result.id, visit_id=visit_id, lines=None, use_account=use_account, actor=who.actor)
        return Goto(f"/cashier/payments/{order.id}"), _FACE_PAID.get(order.status, payviews.CHECKING)
    return await act_flow(request, who, form, call, back=back)


# ---- refunds ---------------------------------------------------------------------------------------

def refund_section(conn: Connection, order: Order) -> dict[str, Any]:
    """The payment page's refunds (the API's view of each), each leg as paid, refunded and remaining, and, while it can be
    refunded, the fee lines to choose from (a refund of items: of a payment whose cash an institution collected)."""
    refundable = order.status in (po.COMPLETED, po.PARTIALLY_REFUNDED)
    every = visits.list_lines(conn, order.institution_id, order.visit_id)
    lines = [ln for ln in every if ln["status"] == "active"] if refundable and order.cash_source is None else []
    paid = order.status in po.PAID
    names = {ln["feedetl_sn"]: ln["name"] for ln in every}  # a refund of items names them as the fee lines do
    views = [refunds.view(conn, r) for r in refunds.for_order(conn, order.id)]
    for v in views:
        v["item_names"] = [names.get(sn, sn) for sn in v["items"] or ()]
    return {"refunds": views, "refundable": refundable,
            "refund_lines": [line_view(ln) for ln in lines],
            "refund_legs": {k: refunds.leg_view(v) for k, v in refunds.summary(conn, order).items()} if paid else None,
            "refund_reasons": refunds.REASONS}


@router.get("/cashier/payments/{payment_id}/refunds/preview")
async def refund_preview(request: Request, payment_id: str) -> Response:
    """The amounts a refund of the ticked items gives back of each leg and what remains (nothing written); its form confirms."""
    who = await cashier(request)
    p = platform(request)
    chosen = request.query_params.getlist("item")
    reason = request.query_params.get("reason") or ""
    back = f"/cashier/payments/{payment_id}"

    def read(conn: Connection) -> dict[str, Any]:
        order = payments.for_institution(conn, who.principal, payment_id)  # no such payment: its 404 page, nothing else said
        if not chosen:
            raise InputError("refund_lines", "no_lines_chosen", "请勾选要退款的项目", "tick the items to refund")
        if reason not in refunds.REASONS:
            raise InputError("reason", "invalid_reason", "退款原因无效", "not a valid refund reason")
        preview = refunds.preview(conn, institution=who.institution, order_id=payment_id, items=chosen)
        lines = {ln["feedetl_sn"]: line_view(ln) for ln in visits.list_lines(conn, who.principal, order.visit_id)}
        return {"pay": payviews.view(conn, p, order), "preview": preview, "reason": reason,
                "chosen": [lines[sn] for sn in preview["items"]]}

    try:
        context = await p.run(read, write=False)
    except NotFound as exc:
        if exc.field == "payment_id":
            raise
        return render.redirect(request, back, error=exc)
    except YibaoError as exc:
        return render.redirect(request, back, error=exc)
    return render.render(request, "cashier/refund_preview.html", area=AREA, csrf_cookie=who.cookie, who=who, **context)


def _active_lines(conn: Connection, institution_id: str, payment_id: str) -> list[str]:
    order = payments.for_institution(conn, institution_id, payment_id)
    return [ln["feedetl_sn"] for ln in visits.list_lines(conn, institution_id, order.visit_id) if ln["status"] == "active"]


@router.post("/cashier/payments/{payment_id}/refunds")
async def refund(request: Request, payment_id: str) -> Response:
    """退款: all (what is left), the cash only, the insurance only, or some items (scope items, from the preview: one refund,
    each leg its difference)."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    back = f"/cashier/payments/{payment_id}"
    scope = form.get("scope")
    reason = form.get("reason") or None
    key = f"W{form.nonce}"[:64]

    async def call() -> tuple[Goto, tuple[str, str]]:
        items: list[str] | None = None
        if scope == "items":  # the preview's form names the lines to refund
            active = await p.run(lambda c: _active_lines(c, who.principal, payment_id), write=False)
            items = [sn for sn in active if form.flag(f"refund_line_{sn}")]
            if not items:
                raise InputError("refund_lines", "no_lines_chosen", "请勾选要退款的项目", "tick the items to refund")
        digest = hashlib.sha256(f"web refund {payment_id} {scope} {items} {reason}".encode()).hexdigest()
        r = await refunds.refund(p.context, institution=who.institution, order_id=payment_id, request_key=key,
                                      request_hash=digest, scope=scope, actor=who.actor, reason=reason, items=items)
        return Goto(back), _REFUNDED.get(r.status, _REFUND_PENDING)
    return await act_flow(request, who, form, call, back=back)


@router.post("/cashier/payments/{payment_id}/refunds/{refund_id}/query")
async def query_refund(request: Request, payment_id: str, refund_id: str) -> Response:
    """查询: a refund whose outcome is not known is asked about again — the same request (its key), as the API's retry."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    back = f"/cashier/payments/{payment_id}"

    async def call() -> tuple[Goto, tuple[str, str]]:
        r = await p.run(lambda c: refunds.for_request(c, who.principal, payment_id, refund_id), write=False)
        if not r.final:
            r = await refunds.refund(p.context, institution=who.institution, order_id=payment_id, request_key=r.request_key,
                                          request_hash=r.request_hash, scope=r.scope, actor=who.actor,
                                          items=list(r.items) if r.items is not None else None)
        return Goto(back), _REFUNDED.get(r.status, _REFUND_PENDING)
    return await act_flow(request, who, form, call, back=back)
