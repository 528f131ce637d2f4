"""Hospitals and pharmacies (HIS): look up a person, register visits, upload fees, settle, cancel, reverse.

Authentication: `Authorization: Bearer <fixmedins_code>.<secret>`. An institution sees only its
own visits and settlements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field
from sqlalchemy.engine import Connection

from yibao.api.deps import Caller, institution_caller, platform
from yibao.api.idempotency import IdempotencyKey, LastUnit, idempotent, idempotent_after_call, idempotent_flow, idempotent_flow_kept
from yibao.api.schemas import (
    CredentialIn,
    ExactJsonRoute,
    FaceAuthorizationIn,
    FeeLineIn,
    FeeLinesIn,
    IsoDate,
    IsoDateTime,
    PilotApplicationIn,
    PresettleIn,
    ReversalIn,
    SettleIn,
    Strict,
    VisitIn,
    YuanText,
)
from yibao.domain.errors import YibaoError
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats import his_statement as stmt_fmt
from yibao.formats.bill_json import CHINA
from yibao.formats.errors import error_body, status_for
from yibao.runtime.platform import Platform
from yibao.services.agency import pilots
from yibao.services.books import his_statements
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.care.views import line_view, visit_view
from yibao.services.catalogue import mappings as catalogue_mappings
from yibao.services.catalogue import versions as catalogue_versions
from yibao.services.clearing import applications as clearing
from yibao.services.payments import bills, card_pin, paycodes, refunds
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import face as face_pay
from yibao.services.payments import onecode as onecode_pay
from yibao.services.payments import orders as payments
from yibao.services.people import persons as people

router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/his", tags=["his 医药机构"])
VisitId = Path(min_length=1, max_length=30)


def _account(a) -> AccountRequest:  # noqa: ANN001
    return AccountRequest(use=a.use, payer=a.payer, payer_person_id=a.payer_person_id)


@router.post("/persons/lookup", summary="人员信息获取 Look up an insured person by credential (1101): what a counter needs, no balance",
             responses={429: {"description": "本机构查询过于频繁 Too many look-ups from this institution: Retry-After"}})
async def lookup(body: CredentialIn, caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    """Masked name, insured region, insurance type, person and card status — never the balance or the birth date (the
    balance comes with the pre-settlement once the account's owner has presented a credential). Look-ups are throttled
    per institution (429) and an enumeration pattern raises an audited alert."""
    now = p.now()
    result = await p.run(lambda c: people.lookup_for_institution(c, p.keyring, now, institution=caller.institution, actor=caller.actor,
                                                                 credential_type=body.credential_type, credential_no=body.credential_no))
    if isinstance(result, YibaoError):
        raise result  # a miss is counted (committed) before it is said
    return result


@router.post("/visits", status_code=201, summary="挂号/入院 Register a visit or admit (2201 / 2401)")
async def open_visit(body: VisitIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                     p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, visit_view(visits.open_visit(
        c, now, institution=caller.institution, person_id=body.psn_no, kind=body.kind, visit_date=body.visit_date))))


@router.get("/visits/{visit_id}", summary="就诊信息 A visit with its fee lines")
async def get_visit(visit_id: str = VisitId, caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c):  # noqa: ANN001, ANN202
        view = visit_view(visits.get(c, caller.institution.id, visit_id))
        view["lines"] = [line_view(r) for r in visits.list_lines(c, caller.institution.id, visit_id)]
        return view
    return await p.run(work, write=False)


@router.post("/visits/{visit_id}/discharge", summary="出院 Discharge an inpatient (2402)")
async def discharge(request: Request, visit_id: str = VisitId, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                    p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, visit_view(visits.discharge(c, now, institution=caller.institution,
                                                                                                  visit_id=visit_id))))


@router.post("/visits/{visit_id}/fee-lines", summary="费用明细上传 Upload fee lines (2204 / 2301)")
async def upload(body: FeeLinesIn, request: Request, visit_id: str = VisitId, key: str = IdempotencyKey,
                 caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    # The schema's optional fields (name, price_cap, ...) may be omitted or null; both mean "absent" here.
    items = [line.model_dump(by_alias=True, exclude_none=True) for line in body.lines]
    return await idempotent(p, request, caller, key, lambda c: (200, {"mdtrt_id": visit_id, "lines": [line_view(r) for r in visits.upload_lines(
        c, now, institution=caller.institution, visit_id=visit_id, items=items)]}))


@router.delete("/visits/{visit_id}/fee-lines/{feedetl_sn}", summary="明细撤销 Revoke a fee line (2205)")
async def revoke(request: Request, visit_id: str = VisitId, feedetl_sn: str = Path(min_length=1, max_length=30), key: str = IdempotencyKey,
                 caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    def work(c):  # noqa: ANN001, ANN202
        visits.revoke_line(c, institution=caller.institution, visit_id=visit_id, feedetl_sn=feedetl_sn)
        return 200, {"visit_id": visit_id, "feedetl_sn": feedetl_sn, "status": "revoked"}
    return await idempotent(p, request, caller, key, work)


@router.post("/visits/{visit_id}/presettle", summary="预结算 Pre-settle: the split, stored nowhere (2206)")
async def presettle(body: PresettleIn, visit_id: str = VisitId, caller: Caller = Depends(institution_caller),
                    p: Platform = Depends(platform)) -> dict[str, Any]:
    now = p.now()
    return await p.run(lambda c: settlement.presettle(c, now, institution=caller.institution, visit_id=visit_id,
                                                      account=_account(body.account)), write=False)


@router.post("/visits/{visit_id}/settle", summary="结算 Settle: fund, account and cash in one step (2207)",
             responses={403: {"description": "presence_required: the account is used and its owner has presented no credential here "
                                             "for this visit (scan the code, a face authorization, the card with its PIN)"}})
async def settle(body: SettleIn, request: Request, visit_id: str = VisitId, key: str = IdempotencyKey,
                 caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    msgid = body.msgid or key
    return await idempotent(p, request, caller, key, lambda c: (200, settlement.settle(
        c, now, institution=caller.institution, visit_id=visit_id, msgid=msgid, account=_account(body.account), actor=caller.actor)))


@router.get("/settlements/{setl_id}", summary="结算信息 A settlement")
async def get_settlement(setl_id: str = Path(min_length=1, max_length=30), caller: Caller = Depends(institution_caller),
                         p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: settlement.get_settlement(c, institution=caller.institution, setl_id=setl_id), write=False)


@router.post("/settlements/{setl_id}/cancel", summary="结算撤销 Cancel a settlement (2208 / 2305)")
async def cancel(request: Request, setl_id: str = Path(min_length=1, max_length=30), key: str = IdempotencyKey,
                 caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, settlement.cancel(
        c, now, institution=caller.institution, setl_id=setl_id, actor=caller.actor)))


@router.post("/reversals", summary="冲正 Reverse a settlement by its original message id (2601)")
async def reversal(body: ReversalIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                   p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, settlement.reverse(
        c, now, institution=caller.institution, omsgid=body.omsgid, oinfno=body.oinfno, actor=caller.actor)))


# ---- the catalogue (医保目录) and the institution's mapping to it (对照; services/catalogue) -------------------------

class ItemMappingIn(Strict):
    medins_list_codg: str = Field(min_length=1, max_length=50, description="your own item code")
    medins_list_name: str | None = Field(None, min_length=1, max_length=200, description="your own item name")
    med_list_codg: str = Field(min_length=1, max_length=30, description="the national catalogue code (hilist_code) it stands for")


class ItemMappingsIn(Strict):
    mappings: list[ItemMappingIn] = Field(min_length=1, max_length=5000)


@router.post("/item-mappings", summary="目录对照上传 Map your own item codes to national catalogue codes (created or replaced, all or none)")
async def put_item_mappings(body: ItemMappingsIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                            p: Platform = Depends(platform)):  # noqa: ANN201
    """Each national code must be in the region's catalogue (any version). Fee lines may then carry your own code
    (`medins_list_codg`); an unmapped code is the patient's own expense, and the line says why."""
    now = p.now()
    items = [m.model_dump(exclude_none=True) for m in body.mappings]
    return await idempotent(p, request, caller, key, lambda c: (200, {"mappings": catalogue_mappings.put(
        c, now, institution=caller.institution, items=items)}))


@router.get("/item-mappings", summary="目录对照查询 Your mappings (one code, or all, by code)")
async def get_item_mappings(medins_list_codg: str | None = Query(None, min_length=1, max_length=50), caller: Caller = Depends(institution_caller),
                            p: Platform = Depends(platform)) -> dict[str, Any]:
    codes = [medins_list_codg] if medins_list_codg is not None else None
    return {"mappings": await p.run(lambda c: catalogue_mappings.lookup(c, institution_id=caller.institution.id, codes=codes), write=False)}


@router.get("/catalogue", summary="医保目录查询 The region's catalogue in force today, a page at a time (1312)")
async def get_catalogue(hilist_code: str | None = Query(None, min_length=1, max_length=30),
                        updated_since: IsoDateTime | None = Query(None, description="only entries whose content changed after this time "
                                                                 "(ISO 8601; without an offset, Beijing time)"),
                        page_num: int = Query(1, ge=1, le=100_000), page_size: int = Query(100, ge=1, le=1000),
                        caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    """National field names; `pric_uplmt_amt` in yuan, `selfpay_prop` a ratio ("0.1000"; null: the region's default applies),
    `fund_prop` (stored, not yet used by the settlement), the limited-use rules (`lmt_*`, `hosp_appr_flag`, `rx_flag`)."""
    day = p.now().astimezone(CHINA).date()
    return await p.run(lambda c: catalogue_versions.query(c, region=caller.institution.region, day=day, hilist_code=hilist_code,
                                                          updated_since=updated_since, page_num=page_num, page_size=page_size), write=False)


# ---- dynamic payment codes (services/payments/paycodes.py) -----------------------------------------------

class PaycodeVerifyIn(Strict):
    code: str = Field(min_length=1, max_length=64, description="the payment code as scanned: 20 digits starting 91", examples=["91..."])
    terminal_id: str | None = Field(None, min_length=1, max_length=40, description="the scanning terminal; guesses are limited per terminal")
    mdtrt_id: str | None = Field(None, min_length=1, max_length=30, description="the visit the code is shown for (else: the first visit "
                                 "it pays). The scan is the holder's presence: one settlement with the account, here, for 10 minutes")


@router.post("/paycodes/verify", summary="扫码核验 Verify a scanned payment code and use it up (single use): who it is for")
async def verify_paycode(body: PaycodeVerifyIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                         p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()

    def work(c):  # noqa: ANN001, ANN202
        result = paycodes.consume(c, p.keyring, now, code=body.code, institution=caller.institution, terminal_id=body.terminal_id,
                                  actor=caller.actor, visit_id=body.mdtrt_id)
        if isinstance(result, YibaoError):  # answered (and kept for a replay) in the same commit as the counted refusal
            return status_for(result), error_body(result.code, result.field, result.message_zh, result.message_en,
                                                  getattr(request.state, "request_id", ""))
        return 200, paycodes.consumed_view(c, p.keyring, result)
    return await idempotent(p, request, caller, key, work)


# ---- the card read with its PIN (mdtrt_cert_type 03; services/payments/card_pin.py) ---------------------------

class CardPresentationIn(Strict):
    card_no: str = Field(min_length=1, max_length=20, description="the social-security card number as read at the terminal")
    pin: str = Field(min_length=1, max_length=12, description="the holder's 6-digit PIN, typed by the holder (the payment PIN serves as the "
                                                              "card's PIN)")
    mdtrt_id: str | None = Field(None, min_length=1, max_length=30, description="the visit it is presented for (else: the first visit it pays)")
    terminal_id: str | None = Field(None, min_length=1, max_length=40)


@router.post("/card-presentations", status_code=201, responses={429: {"description": "Too many look-ups from this institution"}},
             summary="读卡验密 The card read with its PIN: the holder's presence for one settlement with the account, here")
async def card_presentation(body: CardPresentationIn, request: Request, key: str = IdempotencyKey,
                            caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    """A wrong PIN answers 422 `pin_wrong` (counted); a card of another region (not filed here) 403 `card_other_region`.
    Card reads count as look-ups (throttled per institution: 429 with Retry-After)."""
    async def call() -> Callable[[Connection], Any]:
        return await card_pin.present(p.context, institution=caller.institution, card_no=body.card_no, pin=body.pin, actor=caller.actor,
                                      visit_id=body.mdtrt_id, terminal_id=body.terminal_id)

    def work(c: Connection, record: Callable[[Connection], Any]) -> tuple[int, Any]:
        result = record(c)
        if isinstance(result, YibaoError):  # the counted look-up commits with its answer
            return status_for(result), error_body(result.code, result.field, result.message_zh, result.message_en,
                                                  getattr(request.state, "request_id", ""))
        return 201, card_pin.view(c, p.keyring, result)
    return await idempotent_after_call(p, request, caller, key, call, work)


# ---- face payment (services/payments/face.py) --------------------------------------------------------

@router.post("/face-authorizations", summary="刷脸核验 Face payment: a live capture, 1:1 with the enrolled face, authorises one payment")
async def face_authorization(body: FaceAuthorizationIn, request: Request, key: str = IdempotencyKey,
                             caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    """Three failed checks of one person here within ten minutes: `429 face_attempts_exhausted` — pay with the code."""
    async def call() -> Callable[[Connection], Any]:
        return await face_pay.check(p.context, institution=caller.institution, person_id=body.psn_no, payer_id=body.payer_psn_no,
                                    terminal_id=body.terminal_id, actor=caller.actor, capture=body.capture,
                                    liveness=body.liveness.model_dump() if body.liveness else None)

    def work(c: Connection, record: Callable[[Connection], Any]) -> tuple[int, Any]:
        result = record(c)
        if isinstance(result, YibaoError):  # the failed attempt commits with its answer, so it counts
            return status_for(result), error_body(result.code, result.field, result.message_zh, result.message_en,
                                                  getattr(request.state, "request_id", ""))
        return 201, face_pay.view(c, p.keyring, result)
    return await idempotent_after_call(p, request, caller, key, call, work)


# ---- one-code payment (一码支付; services/payments/onecode.py) -------------------------

class OnecodeAccountIn(Strict):
    use: bool = Field(False, description="pay from the personal account first (a child's code: the guardian's account)")


class OnecodeIn(Strict):
    code: str | None = Field(None, min_length=1, max_length=64, description="the scanned payment code: 20 digits starting 91")
    paycode_id: int | None = Field(None, ge=1, description="instead of code: the paycode_id answered by POST /paycodes/verify at this "
                                   "institution within the last 10 minutes (the scan that opened the visit pays it, once)")
    visit_id: str | None = Field(None, min_length=1, max_length=30, description="a visit whose fee lines are uploaded (or give lines)")
    lines: list[FeeLineIn] | None = Field(None, min_length=1, max_length=500, description="fee lines: a visit is registered for them")
    terminal_id: str | None = Field(None, min_length=1, max_length=40)
    account: OnecodeAccountIn = OnecodeAccountIn()
    pay_by: Literal["channel", "credit"] = Field("channel", description="the cash from the payer's payment institution, or their credit line")


_IN_PROGRESS = {202: {"description": "在途 In progress: awaiting the holder's confirmation, or the cash outcome is not known yet; "
                                      "query GET /api/v1/his/payments/{payment_id}. A retry with the same Idempotency-Key drives it on."}}


@router.post("/payments/onecode", responses=_IN_PROGRESS,
             summary="一码支付 One scan: verify the code, settle fund and account, collect the cash — all or nothing")
async def onecode(body: OnecodeIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                  p: Platform = Depends(platform)):  # noqa: ANN201
    items = [line.model_dump(by_alias=True, exclude_none=True) for line in body.lines] if body.lines is not None else None
    ctx = p.context

    async def call(digest: str, last: LastUnit) -> tuple[int, Any, bool]:
        seen: dict[str, Any] = {}

        def finish(c: Connection, order: payments.Order) -> None:  # in the unit where the order ends for this request
            seen["order"], seen["view"] = order, payments.receipt(c, order)
            if order.terminal:
                last.keep(c, 200, seen["view"])

        order = await onecode_pay.pay(ctx, institution=caller.institution, request_key=key, request_hash=digest, code=body.code,
                                           terminal_id=body.terminal_id, visit_id=body.visit_id, lines=items, use_account=body.account.use,
                                           actor=caller.actor, pay_by=body.pay_by, paycode_id=body.paycode_id, finish=finish,
                                           answered=last.answered)
        if order is None:
            return 0, None, False  # the key has its answer: replayed by idempotent_flow_kept
        if seen.get("order") == order:
            view = seen["view"]  # read in the unit that left the order so
        else:
            view = await p.run(lambda c: payments.receipt(c, order), write=False)
        return (200 if order.terminal else 202), view, order.terminal
    return await idempotent_flow_kept(p, request, caller, key, call)


@router.get("/payments/{payment_id}", summary="支付查询 A payment: its state and the split (fund by layer, account, cash)")
async def get_payment(payment_id: str = Path(min_length=1, max_length=32), caller: Caller = Depends(institution_caller),
                      p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: payments.receipt(c, payments.for_institution(c, caller.institution.id, payment_id)), write=False)


# ---- face payment (刷脸支付; a face authorization in place of the code) -------------------------------

class FacePaymentIn(Strict):
    face_authorization: str = Field(min_length=1, max_length=40, description="from POST /api/v1/his/face-authorizations; single use")
    visit_id: str | None = Field(None, min_length=1, max_length=30, description="a visit whose fee lines are uploaded (or give lines)")
    lines: list[FeeLineIn] | None = Field(None, min_length=1, max_length=500, description="fee lines: a visit is registered for them")
    account: OnecodeAccountIn = OnecodeAccountIn()
    pay_by: Literal["channel", "credit"] = Field("channel", description="the cash from the payer's payment institution, or their credit line")


@router.post("/payments/face", responses=_IN_PROGRESS,
             summary="刷脸支付 Pay with a verified face: settle fund and account, collect the cash from the face's holder — all or nothing")
async def face_payment(body: FacePaymentIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                       p: Platform = Depends(platform)):  # noqa: ANN201
    items = [line.model_dump(by_alias=True, exclude_none=True) for line in body.lines] if body.lines is not None else None
    ctx = p.context

    async def call(digest: str) -> tuple[int, Any, bool]:
        order = await face_pay.pay(ctx, institution=caller.institution, request_key=key, request_hash=digest,
                                        authorization_id=body.face_authorization, visit_id=body.visit_id, lines=items,
                                        use_account=body.account.use, actor=caller.actor, pay_by=body.pay_by)
        view = await p.run(lambda c: payments.receipt(c, order), write=False)
        return (200 if order.terminal else 202), view, order.terminal
    return await idempotent_flow(p, request, caller, key, call)


# ---- mobile payment (移动支付): publish a bill; learn the result by signed callback or query --------------

@router.post("/visits/{visit_id}/bill", status_code=201,
             summary="发布账单 Publish a visit's bill for mobile payment: the holder pays it in the app")
async def publish_bill(request: Request, visit_id: str = VisitId, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                       p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()

    def work(c):  # noqa: ANN001, ANN202
        digest = f"bill:{visit_id}"
        return 201, payments.receipt(c, bills.publish(c, now, institution=caller.institution, visit_id=visit_id, request_key=key,
                                                      request_hash=digest, actor=caller.actor))
    return await idempotent(p, request, caller, key, work)


@router.post("/payments/{payment_id}/withdrawal", summary="撤回账单 Withdraw a bill the holder has not paid (to change its lines, "
                                                          "or to take payment another way)")
async def withdraw_bill(request: Request, payment_id: str = Path(min_length=1, max_length=32), key: str = IdempotencyKey,
                        caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, payments.receipt(
        c, bills.withdraw(c, now, institution=caller.institution, order_id=payment_id, actor=caller.actor))))


class CallbackIn(Strict):
    url: str = Field(min_length=8, max_length=300, description="where payment results are POSTed: an https:// URL whose host is, "
                                                               "or resolves only to, public addresses")


@router.put("/callback", summary="配置回调 Set the callback URL; a new signing secret (HMAC-SHA256) is answered once")
async def set_callback(body: CallbackIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                       p: Platform = Depends(platform)):  # noqa: ANN201
    ctx = p.context
    # The URL's name is resolved and checked before the unit (no DNS inside a transaction); a retry replays.
    return await idempotent_after_call(
        p, request, caller, key, lambda: his_callbacks.prepare_configure(ctx, institution=caller.institution, url=body.url, actor=caller.actor),
        lambda c, unit: (200, unit(c)), redact=_without_secret)


def _without_secret(doc: dict[str, Any]) -> dict[str, Any]:
    """What a retry of the same key gets back: the signing secret is answered once, never kept in the idempotency record."""
    return {**doc, "secret": None, "secret_note": "签名密钥仅首次返回；遗失请重新配置 / shown once only; configure again for a new one"}


@router.get("/callback", summary="回调配置 The callback URL (never the secret)")
async def get_callback(caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: his_callbacks.view(c, caller.institution), write=False)


@router.get("/callback/deliveries", summary="回调记录 Callback deliveries: attempts, the last answer, delivered or not")
async def callback_deliveries(payment_id: str | None = Query(None, min_length=1, max_length=32), caller: Caller = Depends(institution_caller),
                              p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: {"items": his_callbacks.deliveries(c, caller.institution, payment_id)}, write=False)


# ---- refunds of completed payments (services/payments/refunds.py) ---------------------------------------------

FeeLineSn = Annotated[str, Field(min_length=1, max_length=30)]


class RefundIn(Strict):
    scope: Literal["all", "cash", "insurance", "items"] = Field(
        description="all: fund, account and cash (what is left of each); cash: the cash share only; insurance: the fund and "
                    "account shares only; items: the `items` named, one refund — the other items priced again by the "
                    "settlement engine and each leg (fund, account, cash) giving back its difference; no new payment, no PIN")
    items: list[FeeLineSn] | None = Field(None, min_length=1, max_length=500,
                                          description="scope items: the fee lines (feedetl_sn) refunded. More refunds of items may "
                                                      "follow, until every item is refunded; the answer's `legs` is what this "
                                                      "refund gives back, `payment_legs` the payment's paid, refunded and remaining")
    lines_to_keep: list[FeeLineSn] | None = Field(None, min_length=1, max_length=500,
                                                  description="(older) refund some items (scope all): the whole settlement is "
                                                              "cancelled and these lines (feedetl_sn) settled again in a new order "
                                                              "(`rebill`); prefer scope items")


class RefundPreviewIn(Strict):
    items: list[FeeLineSn] = Field(min_length=1, max_length=500, description="the fee lines (feedetl_sn) a refund would give back")


@router.post("/payments/{payment_id}/refunds", responses={202: {"description": "在途 The institution's answer about the cash is not "
                                                                              "known yet; a retry with the same Idempotency-Key asks again"}},
             summary="退款 Refund a completed payment: all, the cash only, or the insurance (fund + account) only")
async def refund_payment(body: RefundIn, request: Request, payment_id: str = Path(min_length=1, max_length=32), key: str = IdempotencyKey,
                         caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    ctx = p.context

    async def call(digest: str) -> tuple[int, Any, bool]:
        r = await refunds.refund(ctx, institution=caller.institution, order_id=payment_id, request_key=key, request_hash=digest,
                                      scope=body.scope, actor=caller.actor, lines_to_keep=body.lines_to_keep, items=body.items)
        view = await p.run(lambda c: refunds.view(c, r), write=False)
        return (200 if r.final else 202), view, r.final
    return await idempotent_flow(p, request, caller, key, call)


@router.post("/payments/{payment_id}/refunds/preview",
             summary="退款试算 What a refund of some items would give back of each leg (fund, account, cash) and what would remain; "
                     "nothing is written")
async def refund_preview(body: RefundPreviewIn, payment_id: str = Path(min_length=1, max_length=32),
                         caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: refunds.preview(c, institution=caller.institution, order_id=payment_id, items=body.items), write=False)


@router.get("/payments/{payment_id}/refunds", summary="退款记录 A payment's refunds")
async def payment_refunds(payment_id: str = Path(min_length=1, max_length=32), caller: Caller = Depends(institution_caller),
                          p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c):  # noqa: ANN001, ANN202
        payments.for_institution(c, caller.institution.id, payment_id)
        return {"items": [refunds.view(c, r) for r in refunds.for_order(c, payment_id)]}
    return await p.run(work, write=False)


# ---- reconciliation (3201 / 3202; docs/reconciliation-his.md) ---------------------------------------------------

SignedYuan = Field(description="yuan, at most 2 decimals; negative when the period's cancellations outweigh its settlements",
                   examples=["8958.23"], max_length=24)


class StatementPeriodIn(Strict):
    setl_optins: str = Field(min_length=6, max_length=6, description="结算经办机构: the insured region's 6-digit code")
    stmt_begndate: str = Field(min_length=10, max_length=10, description="first day, Beijing (yyyy-MM-dd)", examples=["2026-11-01"])
    stmt_enddate: str = Field(min_length=10, max_length=10, description="last day, Beijing (yyyy-MM-dd)", examples=["2026-11-30"])
    clr_type: Literal["11", "21", "41", "99"] | None = Field(None, description="清算类别 11 门诊 / 21 住院 / 41 药店 / 99 其他; none: all")


class StatementTotalsIn(StatementPeriodIn):
    insutype: Literal["310", "390"] = Field(description="险种类型 310 职工 / 390 居民")
    medfee_sumamt: str = SignedYuan
    fund_pay_sumamt: str = SignedYuan
    acct_pay: str = SignedYuan
    fixmedins_setl_cnt: int = Field(ge=-10**10, le=10**10, description="settlements in the period less those cancelled in it")


class StatementRowIn(Strict):
    setl_id: str = Field(min_length=1, max_length=40)
    mdtrt_id: str = Field(min_length=1, max_length=40)
    psn_no: str = Field(min_length=1, max_length=40)
    medfee_sumamt: str = SignedYuan
    fund_pay_sumamt: str = SignedYuan
    acct_pay: str = SignedYuan
    refd_setl_flag: Literal["0", "1"] = Field("0", description="0 a settlement, 1 its cancellation (amounts negative)")


class StatementDetailIn(StatementPeriodIn):
    rows: list[StatementRowIn] = Field(max_length=100_000, description="every settlement (and cancellation) of the period, as in "
                                                                       "3202's detail file")


def _totals_view(t: Any) -> dict[str, Any]:
    return {"medfee_sumamt": format_yuan(t.medfee), "fund_pay_sumamt": format_yuan(t.fund),
            "acct_pay": format_yuan(t.acct), "fixmedins_setl_cnt": t.count}


@router.post("/statements/totals", summary="对总账 Reconcile a period's totals with the platform (3201)")
async def statement_totals(body: StatementTotalsIn, caller: Caller = Depends(institution_caller),
                           p: Platform = Depends(platform)) -> dict[str, Any]:
    """`stmt_rslt` 0 balanced, 1 not — `stmt_rslt_dscr` and `differences` say which total differs, yours and the
    platform's. Your settlements are counted on the day they were settled and, negatively, on the day cancelled."""
    d = body.model_dump()
    period, totals = stmt_fmt.period(d, "body", insutype_required=True), stmt_fmt.totals(d, "body", detail=False)
    r = await p.run(lambda c: his_statements.check_totals(c, caller.institution, period, totals), write=False)
    return {"setl_optins": r.setl_optins, "stmt_rslt": r.stmt_rslt, "stmt_rslt_dscr": r.stmt_rslt_dscr, "platform": _totals_view(r.platform),
            "differences": [{"field": x.field, "hospital": x.hospital, "platform": x.platform} for x in r.differences]}


@router.post("/statements/detail", summary="对明细账 Reconcile a period row by row with the platform (3202)")
async def statement_detail(body: StatementDetailIn, caller: Caller = Depends(institution_caller),
                           p: Platform = Depends(platform)) -> dict[str, Any]:
    """Every row of either side once, with `stmt_rslt` and the reason (`missing_at_platform`, `missing_at_hospital`,
    `differs` with the fields, `duplicate`); the same result as a file (`file_qury_no`, fetched with 9102)."""
    d = body.model_dump()
    period = stmt_fmt.period(d, "body", insutype_required=False)
    rows = [stmt_fmt.row_of(item, f"body.rows[{i}]") for i, item in enumerate(d["rows"])]
    now = p.now()
    r = await p.run(lambda c: his_statements.check_detail(c, now, caller.institution, period, rows))
    return {"stmt_rslt": "0" if r.unbalanced == 0 else "1", "balanced_cnt": r.balanced, "unbalanced_cnt": r.unbalanced,
            "file_qury_no": r.file.file_qury_no, "filename": r.file.filename, "dld_endtime": r.file.expires_at.isoformat(),
            "rows": [stmt_fmt.result_view(x) for x in r.rows]}


# ---- pilot governance: the institution's own application (services/agency/pilots.py; docs/governance.md) ------------

@router.post("/pilot-applications", status_code=201, summary="试点申请 Apply to take mobile-mode payments: the implementation plan and the "
             "risk-assessment report")
async def apply_pilot(body: PilotApplicationIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                      p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    plan, risk = body.documents()
    return await idempotent(p, request, caller, key, lambda c: (201, pilots.apply(
        c, now, applicant="institution", institution_id=caller.institution.id, region=None, modes=body.modes, plan=plan, risk_report=risk,
        assessed_by=body.assessed_by, actor=caller.actor)))


# ---- monthly clearing (清算申请 3203 / 撤销 3204 / 状态 3205A): services/clearing -------------------------------------

class ClearingApplicationIn(Strict):
    clr_type: str = Field(min_length=2, max_length=3, description="清算类别 11 门诊 / 21 住院 / 41 药店")
    clr_way: str = Field(min_length=1, max_length=3, description="清算方式 (recorded)")
    setlym: str = Field(min_length=6, max_length=6, description="清算年月 yyyyMM (an ended month)")
    psntime: int = Field(ge=0, le=10**9, description="结算人次")
    medfee_sumamt: YuanText = Field(max_length=20, description="医疗费总额 (yuan)")
    med_sumfee: YuanText = Field(max_length=20, description="医保认可费用总额 (yuan)")
    fund_appy_sum: YuanText = Field(max_length=20, description="基金申报总额 (yuan)")
    cash_payamt: YuanText = Field(max_length=20, description="现金支付金额 (yuan)")
    acct_pay: YuanText = Field(max_length=20, description="个人账户支出 (yuan)")
    begndate: IsoDate
    enddate: IsoDate


@router.post("/clearing-applications", status_code=201,
             summary="清算申请 Apply to clear an ended month (3203); the platform pays its own figures, not these")
async def apply_clearing(body: ClearingApplicationIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(institution_caller),
                         p: Platform = Depends(platform)):  # noqa: ANN201
    amounts = {k: parse_yuan(getattr(body, k), k) for k in ("medfee_sumamt", "med_sumfee", "fund_appy_sum", "cash_payamt", "acct_pay")}
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, clearing.apply(
        c, now, institution=caller.institution, clr_type=body.clr_type, clr_way=body.clr_way, setlym=body.setlym, psntime=body.psntime,
        begndate=body.begndate, enddate=body.enddate, actor=caller.actor, **amounts)))


@router.post("/clearing-applications/{app_id}/withdraw", summary="清算申请撤销 Withdraw an application not yet accepted (3204)")
async def withdraw_clearing(request: Request, app_id: str = Path(min_length=1, max_length=32), key: str = IdempotencyKey,
                            caller: Caller = Depends(institution_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, clearing.withdraw(c, now, institution=caller.institution, app_id=app_id,
                                                                                        actor=caller.actor)))


@router.get("/clearing-applications/{app_id}", summary="清算申请状态 An application's status (3205A): clr_stas 10 / 20 / 50")
async def clearing_status(app_id: str = Path(min_length=1, max_length=32), caller: Caller = Depends(institution_caller),
                          p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: clearing.status(c, institution=caller.institution, app_id=app_id), write=False)


# Routes are tried in order, twice a request (FastAPI's included router matches, then selects): a counter's payment
# endpoints, called once per patient, first. Moving a literal path forward cannot shadow it: a route before it that
# matched it would have shadowed it already.
_HOT = ("/api/v1/his/payments/onecode", "/api/v1/his/payments/face")
router.routes.sort(key=lambda route: getattr(route, "path", "") not in _HOT)
