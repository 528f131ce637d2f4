"""/app/credit — 信用支付: the holder's credit line with a bank, its bills, and repayment by the holder or
by a family member ("先看病，回家再让家人付款", seed 004).

The same service calls as api/routers/credit.py (`credit.overview`, `credit_enrolment.enrol`, `credit.family_bills`,
`credit_repayments.repay`), with the platform's context (credit banks come from their connector configuration). Every post that calls
the bank runs through `act_flow`: the form's nonce is claimed first, the bank is called between units,
and the same form sent again replays the first answer. A repayment's number at the bank derives from
the nonce, so a retry after a lost answer is the same repayment there.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from yibao.domain.errors import YibaoError
from yibao.domain.money import parse_yuan
from yibao.services.agency import connectors
from yibao.services.agency import payment_institutions as pis
from yibao.services.credit import enrolment as credit_enrolment
from yibao.services.credit import lines as credit
from yibao.services.credit import repayments as credit_repayments
from yibao.services.credit import sync as credit_sync
from yibao.web import forms, render
from yibao.web.auth import Goto, Who, act_flow, holder, platform

router = APIRouter(include_in_schema=False)
AREA = "app"
HERE = "/app/credit"


def _page(request: Request, who: Who, **context: Any) -> HTMLResponse:
    return render.render(request, "app/credit.html", area=AREA, csrf_cookie=who.cookie, who=who, nav="credit", **context)


@router.get(HERE)
async def credit_page(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)
    now = p.now()

    def read(conn: Connection) -> dict[str, Any]:
        mine = credit.overview(conn, who.principal, now)
        lines = [line for line in mine["lines"] if line["status"] in ("active", "suspended")]
        pending = [line for line in mine["lines"] if line["status"] == "pending"]
        family = credit.family_bills(conn, p.keyring, who.principal, now)["items"]
        bills = [b for line in lines for b in line["bills"]] + family
        names = {pi.id: pi.name for pi in pis.list_all(conn, who.region)}
        eligibility, problem = None, None
        if not lines:
            try:
                eligibility = credit.eligibility(conn, who.principal, now, connectors.connected_banks(conn))
            except YibaoError as exc:  # e.g. a region that offers no credit payment: said in words
                problem = exc
        return {"terms": mine["terms"], "lines": lines, "pending": pending, "family": family, "bank_names": names,
                "hospitals": credit.bill_hospitals(conn, [b["order_ref"] for b in bills]),
                "doubt": credit_repayments.repayments_in_doubt(conn, [b["bill_no"] for b in bills]),
                "eligibility": eligibility, "problem": problem}

    return _page(request, who, **(await p.run(read, write=False)))


@router.post(f"{HERE}/enrolment")
async def enrol(request: Request) -> Response:
    """The holder accepts the terms shown (their version) and chooses the bank: the bank scores them and grants a line."""
    who = await holder(request)
    form = await forms.read(request, AREA, who.cookie)

    async def call() -> tuple[Goto, tuple[str, str]]:
        pi_id = form.require("payment_institution_id", "信用银行", "the bank")
        await credit_enrolment.enrol(platform(request).context, holder_id=who.principal, pi_id=pi_id, consent_version=form.get("consent_version") or None,
                           actor=who.actor)
        return Goto(HERE), ("信用支付已开通", "Credit payment is enrolled")
    return await act_flow(request, who, form, call, back=HERE)


@router.post(HERE + "/bills/{bill_no}/repayment")
async def repay(request: Request, bill_no: str) -> Response:
    """Repay a bill, whole or in part: my own, or a linked family member's (the service checks the link)."""
    who = await holder(request)
    form = await forms.read(request, AREA, who.cookie)

    async def call() -> tuple[Goto, tuple[str, str]]:
        # Our repayment number at the bank comes from the form: the same form again is the same repayment there.
        repayment_id = "RP" + hashlib.sha256(f"web:{AREA}:{who.principal}\x00{form.nonce}".encode()).hexdigest()[:22].upper()
        amount = parse_yuan(form.require("amount", "还款金额", "the repayment amount"), "amount")
        done = await credit_repayments.repay(platform(request).context, payer_id=who.principal, bill_no=credit.parse_bill_no(bill_no), amount=amount,
                                  repayment_id=repayment_id, actor=who.actor)
        if done["bill"]["status"] == "repaid":
            return Goto(HERE), (f"已还款¥{done['amount']}，该账单已还清", f"Repaid ¥{done['amount']}; the bill is paid off")
        return Goto(HERE), (f"已还款¥{done['amount']}，尚欠¥{done['bill']['outstanding']}",
                            f"Repaid ¥{done['amount']}; ¥{done['bill']['outstanding']} still owed")
    return await act_flow(request, who, form, call, back=HERE, keep=("amount", "bill_no"))


@router.post(HERE + "/repayments/{repayment_no}/resolve")
async def resolve(request: Request, repayment_no: str) -> Response:
    """确认中: a repayment whose bank answer was lost is asked about at the bank (the truth), then recorded."""
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    async def call() -> tuple[Goto, tuple[str, str]]:
        await p.run(lambda c: credit_repayments.require_repayment_party(c, repayment_no, who.principal), write=False)
        done = await credit_repayments.resolve_repayment(platform(request).context, repayment_no, actor=who.actor)
        if done["state"] == "succeeded":
            return Goto(HERE), (f"银行已确认还款¥{done['amount']}", f"The bank confirmed the repayment of ¥{done['amount']}")
        return Goto(HERE), ("银行未确认该笔还款，请稍后再查", "The bank has not confirmed this repayment; ask again later")
    return await act_flow(request, who, form, call, back=HERE)


@router.post(HERE + "/lines/{pi_id}/refresh")
async def refresh(request: Request, pi_id: str) -> Response:
    """Ask the bank for the line as it stands (bills the platform missed, repayments made at the bank, its status)."""
    who = await holder(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)

    async def call() -> tuple[Goto, tuple[str, str]]:
        enrolment = await p.run(lambda c: credit.holder_enrolment(c, who.principal, pi_id), write=False)
        await credit_sync.refresh(platform(request).context, enrolment.id, actor=who.actor)
        return Goto(HERE), ("已与银行核对", "Checked with the bank")
    return await act_flow(request, who, form, call, back=HERE)
