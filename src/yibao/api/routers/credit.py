"""Credit payment (信用支付) over HTTP: the holder's enrolment, line, bills and repayments; the
operators' overdue list and jobs; the bank's notifications. Thin: parse, authorise, call services/credit.

Every call that needs the bank goes through `idempotent_after_call`: the bank is called outside any
unit of work, and a retry with the same Idempotency-Key replays the answer without calling again.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from yibao.api.deps import Caller, operator_caller, patient_caller, platform
from yibao.api.idempotency import IdempotencyKey, idempotent_after_call
from yibao.api.schemas import ExactJsonRoute, Strict, Yuan, YuanText
from yibao.domain.money import parse_yuan
from yibao.formats.errors import error_body
from yibao.runtime.platform import Platform
from yibao.services.credit import enrolment as credit_enrolment
from yibao.services.credit import jobs as credit_jobs
from yibao.services.credit import lines as credit
from yibao.services.credit import repayments as credit_repayments
from yibao.services.credit import sync as credit_sync

patient_router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/patient/credit", tags=["patient 参保人"])
admin_router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/admin/credit", tags=["admin 经办机构"])
notify_router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/credit", tags=["banks 银行"])

BillNo = Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
PiId = Path(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]+$")


class EnrolIn(Strict):
    payment_institution_id: str = Field(min_length=2, max_length=40, description="the bank (an admitted payment institution of kind bank)")
    consent_version: str = Field(min_length=1, max_length=40, examples=["credit-terms-v1"],
                                 description="the version of the terms shown by GET /patient/credit that the holder accepted")


class RepayIn(Strict):
    amount: YuanText = Yuan


@patient_router.get("", summary="信用支付：额度、账单、逾期状态 My credit lines, bills and overdue state (and the terms to accept)")
async def overview(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: credit.overview(c, caller.principal, p.now()), write=False)


@patient_router.post("/enrol", status_code=201, summary="开通信用支付 Enrol: accept the terms; the bank scores and grants a line")
async def enrol(body: EnrolIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                p: Platform = Depends(platform)):  # noqa: ANN201
    ctx = p.context

    async def call() -> dict[str, Any]:
        return await credit_enrolment.enrol(ctx, holder_id=caller.principal, pi_id=body.payment_institution_id,
                                  consent_version=body.consent_version, actor=caller.actor)
    return await idempotent_after_call(p, request, caller, key, call, lambda c, result: (201, result))


@patient_router.get("/family-bills", summary="可代还的家庭成员账单 Unpaid bills of linked family members I may repay")
async def family_bills(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: credit.family_bills(c, p.keyring, caller.principal, p.now()), write=False)


@patient_router.post("/bills/{bill_no}/repay", summary="还款（本人或家庭成员代还，可部分还款）Repay a bill, in part or in full")
async def repay(body: RepayIn, request: Request, bill_no: str = BillNo, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                p: Platform = Depends(platform)):  # noqa: ANN201
    amount = parse_yuan(body.amount, "amount")
    ctx = p.context
    # Our repayment number at the bank comes from the key: a retry after a lost answer is the same repayment there.
    repayment_id = "RP" + hashlib.sha256(f"{caller.scope}\x00{key}".encode()).hexdigest()[:22].upper()

    async def call() -> dict[str, Any]:
        return await credit_repayments.repay(ctx, payer_id=caller.principal, bill_no=bill_no, amount=amount, repayment_id=repayment_id,
                                  actor=caller.actor)
    return await idempotent_after_call(p, request, caller, key, call, lambda c, result: (200, result))


@admin_router.get("/overdue", summary="逾期账单 Bills past their due date, with the line's state")
async def overdue(region: str | None = Query(None, min_length=6, max_length=6, pattern=r"^[0-9]{6}$"), caller: Caller = Depends(operator_caller),
                  p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"items": await p.run(lambda c: credit.overdue_bills(c, p.now(), region), write=False)}


@admin_router.post("/jobs/reminders", summary="运行还款提醒 Record today's repayment reminders (once per bill and kind)")
async def reminders(request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                    p: Platform = Depends(platform)):  # noqa: ANN201
    ctx = p.context
    return await idempotent_after_call(p, request, caller, key, lambda: credit_jobs.run_reminders(ctx), lambda c, result: (200, result))


@admin_router.post("/jobs/overdue", summary="运行逾期处理 Suspend lines with a bill past due + grace; restore repaid ones")
async def overdue_job(request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                      p: Platform = Depends(platform)):  # noqa: ANN201
    ctx = p.context
    return await idempotent_after_call(p, request, caller, key, lambda: credit_jobs.run_overdue(ctx), lambda c, result: (200, result))


@notify_router.post("/notify/{payment_institution_id}", summary="银行通知 A bank's signed notification (verified, then the line is queried)",
                    responses={200: {"description": "accepted (the bank's acknowledgement)"}, 401: {"description": "refused: bad signature"}})
async def notify(request: Request, payment_institution_id: str = PiId, p: Platform = Depends(platform)) -> Response:
    ack, outcome = await credit_sync.apply_bank_notification(p.context, payment_institution_id, dict(request.headers), await request.body())
    if outcome == "refused":  # the bank looks at the status only (and resends); the body keeps our one error shape
        return JSONResponse(error_body("notification_refused", "X-Bank-Signature", "通知验签失败或暂无法核实，请重发",
                                       "the notification failed verification or could not be checked now; send it again",
                                       getattr(request.state, "request_id", None) or uuid.uuid4().hex[:16]), status_code=ack.status_code)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)
