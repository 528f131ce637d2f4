"""Mobile payment (移动支付) in the pages: the cashier sends a visit's bill to the holder's phone, the
holder (or a linked child's guardian) pays it in /app with the split previewed first and the PIN.

The same service calls as the REST API: `bills.publish` (POST /api/v1/his/visits/{id}/bill, the form's
nonce as the request key), `bills.for_holder` (GET /api/v1/patient/bills) and `bills.pay`
(POST /api/v1/patient/bills/{id}/pay). The cashier follows the bill on /cashier/payments/{id}; the
holder's result is /app/payments/{id}. See docs/payments.md, "Mobile payment".
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.errors import NotFound
from yibao.domain.money import parse_yuan
from yibao.runtime.platform import Platform
from yibao.services.agency import institutions
from yibao.services.payments import bills
from yibao.services.people import bindings, families
from yibao.web import forms, links, payviews, render
from yibao.web.auth import Goto, act, act_flow, cashier, holder, platform

router = APIRouter(include_in_schema=False)

_PAID = {
    po.COMPLETED: ("支付成功", "Paid"),
    po.VOIDED: ("支付未成功，已全部撤销", "The payment did not go through; everything was voided", "notice"),
}
_CHECKING = payviews.CHECKING


# ---- the cashier: send the bill to the holder's phone ---------------------------------------------

@router.post("/cashier/visits/{visit_id}/bill")
async def publish(request: Request, visit_id: str) -> Response:
    """发送到手机支付: the visit's bill is published for the holder (an order `billed`, nothing priced or held yet)."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, "cashier", who.cookie)
    key = f"W{form.nonce}"[:64]  # the request key, as the API's Idempotency-Key

    def work(conn: Connection) -> Goto:
        order = bills.publish(conn, p.now(), institution=who.institution, visit_id=visit_id, request_key=key,
                              request_hash=f"bill:{visit_id}", actor=who.actor)
        return Goto(f"/cashier/payments/{order.id}")
    return await act(request, who, form, work, back=links.visit_back(visit_id, form),
                     ok=("账单已发送到参保人手机，等待参保人支付", "The bill was sent to the holder's phone; waiting for the holder to pay"))


@router.post("/cashier/payments/{payment_id}/withdrawal")
async def withdraw(request: Request, payment_id: str) -> Response:
    """撤回账单: the bill the holder has not paid is taken back (as POST /api/v1/his/payments/{id}/withdrawal)."""
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, "cashier", who.cookie)

    def work(conn: Connection) -> Goto:
        order = bills.withdraw(conn, p.now(), institution=who.institution, order_id=payment_id, actor=who.actor)
        return Goto(f"/cashier/visits/{order.visit_id}")
    return await act(request, who, form, work, back=f"/cashier/payments/{payment_id}",
                     ok=("账单已撤回，可修改明细后重新发送或改用其他方式收费", "The bill was withdrawn: change the lines and send it again, or take payment another way"))


@router.get("/cashier/visits/{visit_id}/bill")
async def visit_bill(request: Request, visit_id: str) -> Response:
    """The bill published for a visit: its payment page (the visit page links here)."""
    who = await cashier(request)
    p = platform(request)
    found = await p.run(lambda c: bills.latest_for_visit(c, who.principal, visit_id), write=False)
    if found is None:
        return render.redirect(request, f"/cashier/visits/{visit_id}",
                               error=NotFound("visit_id", "no_bill", "该就诊还没有发送到手机的账单", "no bill was sent to the phone for this visit"))
    return render.redirect(request, f"/cashier/payments/{found}")


# ---- the holder: my bills and my linked children's ---------------------------------------------------

def use_account_choice(request: Request) -> bool:
    """The 使用个人账户 toggle of /app/bills: on unless the toggle's form was sent without it."""
    q = request.query_params
    return q.get("use_account") == "1" if q.get("preview") == "1" else True


def _bills_url(use_account: bool) -> str:
    return "/app/bills" if use_account else "/app/bills?preview=1"


def _split(view: dict[str, Any]) -> dict[str, Any]:
    """A bill's split in the shape of a payment's receipt (`_payment_split.html`): the preview while it waits."""
    pre = view["preview"]
    if pre is None:
        return view
    fund = {"pool": pre["hifp_pay"], "serious_illness": pre["hifmi_pay"], "large_amount": pre["hifob_pay"], "other": pre.get("oth_pay", "0.00"),
            "assistance": pre["maf_pay"],
            "total": pre["fund_pay_sumamt"]}
    return {"total": pre["medfee_sumamt"], "fund": fund, "account": {"amount": pre["acct_pay"]}, "cash": {"amount": pre["psn_cash_pay"]},
            "payment_institution_name": None}


def for_page(conn: Connection, p: Platform, holder_id: str, use_account: bool) -> dict[str, Any]:
    """What /app/bills shows of mobile bills: those waiting (split previewed), those done, and how I can pay."""
    names: dict[str, str] = {}

    def named(view: dict[str, Any]) -> dict[str, Any]:
        code = view["fixmedins_code"]
        if code not in names:
            inst = institutions.get(conn, code)
            names[code] = inst.name if inst else code
        patient = families.display_name(conn, p.keyring, reader_id=holder_id, person_id=view["psn_no"])  # my child in full
        return {**view, "institution_name": names[code], "patient": patient, "for_child": view["psn_no"] != holder_id,
                "mine": view["payer_psn_no"] == holder_id, "split": _split(view)}

    every = [named(v) for v in bills.for_holder(conn, holder_id, use_account=use_account, include_done=True)]
    return {"waiting": [b for b in every if b["status"] == po.BILLED], "done": [b for b in every if b["status"] != po.BILLED][:10],
            "use_account": use_account,  # a suspended institution is not offered: it would only be refused
            "bound": [b for b in bindings.of_holder(conn, holder_id) if b["institution_status"] == "admitted"]}


@router.post("/app/bills/{payment_id}/pay")
async def pay(request: Request, payment_id: str) -> Response:
    """The holder pays a bill: PIN when the cash share is above 0, the cash from the chosen institution."""
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, "app", who.cookie)
    use_account = form.flag("use_account")

    async def call() -> tuple[Goto, tuple[str, str]]:
        # The amounts the holder was shown: paid only if the bill still comes to them (bills.Expected).
        expected = bills.Expected(parse_yuan(form.get("expected_account"), "expected_account"),
                                  parse_yuan(form.get("expected_cash"), "expected_cash"))
        order = await bills.pay(p.context, order_id=payment_id, holder_id=who.principal, use_account=use_account,
                                            pi_id=form.get("payment_institution_id") or None, pin=form.get("pin") or None, actor=who.actor,
                                            expected=expected)
        return Goto(f"/app/payments/{order.id}"), _PAID.get(order.status, _CHECKING)
    return await act_flow(request, who, form, call, back=_bills_url(use_account))
