"""Insured people and guardians (the phone app): log in, see the account, family members' data.

Authentication: `Authorization: Bearer <session token>` from `POST /api/v1/patient/sessions`.
A holder sees only their own data and their linked family members'.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from sqlalchemy.engine import Connection

from yibao.api.deps import Caller, patient_caller, platform
from yibao.api.idempotency import IdempotencyKey, idempotent, idempotent_after_call, idempotent_flow
from yibao.api.schemas import (
    BindingIn,
    ChildCardIn,
    ExactJsonRoute,
    LimitIn,
    LivenessIn,
    MutualAidIn,
    PhotoIn,
    RealNameIn,
    RealPersonIn,
    Strict,
    YuanText,
)
from yibao.domain.errors import InputError, NotFound
from yibao.domain.ledger import person_account
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats.paycode_svg import barcode_svg, qr_svg
from yibao.formats.timefmt import iso_utc
from yibao.runtime.clients import client_address
from yibao.runtime.platform import Platform
from yibao.services.access import face_login, sessions
from yibao.services.agency import payment_institutions as pis
from yibao.services.benefits import batches as benefit_batches
from yibao.services.books import ledger
from yibao.services.payments import agreements, bills, confirmation, medins, paycodes
from yibao.services.payments import orders as payments
from yibao.services.payments import pins as payment_pins
from yibao.services.people import bindings as ecard_bindings
from yibao.services.people import cards, families, identity
from yibao.services.people import persons as people

router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/patient", tags=["patient 参保人"])
PsnNo = Path(min_length=1, max_length=24)


class SmsCodeIn(Strict):
    phone: str = Field(min_length=1, max_length=20, examples=["13800000001"])


class SessionIn(Strict):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(min_length=1, max_length=10)


@router.post("/sms-codes", summary="获取登录验证码 Send a log-in code by text message")
async def sms_code(body: SmsCodeIn, request: Request, p: Platform = Depends(platform)) -> dict[str, Any]:
    """The same answer whether or not the number is enrolled. At most one code per 30 s, 5 an hour per number, 20
    requests an hour per client address: `429` with Retry-After. No SMS gateway configured or reachable: `503`."""
    return await sessions.send_code(p.context, phone=body.phone, address=client_address(request))


@router.post("/sessions", status_code=201, summary="登录 Log in with the SMS code")
async def login(body: SessionIn, request: Request, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Five tries per code; 10 wrong codes in 24 h lock the number's SMS log-in, 20 in an hour the client address:
    `429` with Retry-After (the right code too, while locked). A right code ends the number's count."""
    now, address = p.now(), client_address(request)
    result = await p.run(lambda c: sessions.verify_code(c, p.keyring, now, phone=body.phone, code=body.code, address=address))
    if isinstance(result, Exception):
        raise result  # after the failed attempt was committed
    return result


class RealNameLoginIn(Strict):
    id_number: str = Field(min_length=1, max_length=18, description="the 18-character ID number")
    name: str = Field(min_length=1, max_length=50)
    capture: str = RealPersonIn.model_fields["capture"]
    liveness: LivenessIn | None = RealPersonIn.model_fields["liveness"]


@router.post("/sessions/real-name", status_code=201,
             summary="实名登录 Log in with name, ID number and a live face (1:1 with the enrolled face)")
async def login_real_name(body: RealNameLoginIn, request: Request, p: Platform = Depends(platform)) -> dict[str, Any]:
    """Three failures for one person within ten minutes: `429 real_name_login_locked` (the SMS code still works).
    Every refusal of the credentials has the same words: the answer does not tell which one was wrong."""
    return await face_login.log_in(p.context, id_number=body.id_number, name=body.name,
                                   capture=body.capture, liveness=body.liveness.model_dump() if body.liveness else None)


def _visible(conn: Connection, caller: Caller, psn_no: str) -> people.Person:
    if not families.can_view(conn, caller.principal, psn_no):
        raise NotFound("psn_no", "not_found", "参保人不存在", "insured person not found")
    return people.require(conn, psn_no)


@router.get("/me", summary="本人信息 Who I am")
async def me(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: people.masked_view(people.require(c, caller.principal), p.keyring), write=False)


@router.get("/persons/{psn_no}", summary="本人或家庭成员信息 Me or a linked family member")
async def person(psn_no: str = PsnNo, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: people.masked_view(_visible(c, caller, psn_no), p.keyring), write=False)


@router.get("/persons/{psn_no}/account", summary="个人账户余额 Personal-account balance")
async def account(psn_no: str = PsnNo, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        acct = person_account(psn_no)
        return {"psn_no": psn_no, "balance": format_yuan(ledger.balance(c, acct)), "available": format_yuan(ledger.available(c, acct))}
    return await p.run(work, write=False)


@router.get("/persons/{psn_no}/account/transactions", summary="账户明细 Account transactions, newest first")
async def transactions(psn_no: str = PsnNo, limit: int = Query(50, ge=1, le=200), before_id: int | None = Query(None, ge=1),
                       caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        items = ledger.history(c, person_account(psn_no), limit=limit, before_id=before_id)
        return {"psn_no": psn_no, "items": [{"id": t.id, "at": iso_utc(t.created_at), "amount": format_yuan(signed), "code": t.code,
                                             "ref": t.ref} for t, signed in items]}
    return await p.run(work, write=False)


@router.get("/persons/{psn_no}/account/statements/{year}/{month}", summary="月度账单 Monthly statement")
async def statement(psn_no: str = PsnNo, year: int = Path(ge=2000, le=2100), month: int = Path(ge=1, le=12),
                    caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        s = ledger.monthly_statement(c, person_account(psn_no), year, month)
        return {"psn_no": psn_no, "year": year, "month": month, "opening": format_yuan(s.opening), "credits": format_yuan(s.credits),
                "debits": format_yuan(s.debits), "closing": format_yuan(s.closing),
                "lines": [{"at": iso_utc(t.created_at), "amount": format_yuan(a), "code": t.code, "ref": t.ref} for t, a in s.lines]}
    return await p.run(work, write=False)


# ---- identity, cards, bindings, families --------------------------------------------------------

CardId = Path(min_length=1, max_length=24)
PiId = Path(min_length=1, max_length=40)


@router.get("/benefits", summary="待遇到卡 Subsidies paid to my social-security card's account (agency, purpose, amount, status, date)")
async def my_benefits(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    """Newest first. ``status``: processing (the bank has not answered yet), credited, or returned (``return_code``: the
    bank's reason, e.g. ACCOUNT_CLOSED — the paying agency pays it again once the card's account is in order)."""
    return await p.run(lambda c: {"items": benefit_batches.for_holder(c, caller.principal)}, write=False)


@router.get("/identity", summary="认证状态 Real-name and real-person status")
async def identity_status(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: identity.status(c, caller.principal), write=False)


@router.post("/identity/real-name", summary="实名认证 Real-name authentication against the enrolment record")
async def real_name(body: RealNameIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                    p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, identity.real_name(
        c, p.keyring, now, person_id=caller.principal, name=body.name, id_number=body.id_number, actor=caller.actor)))


@router.post("/identity/real-person", summary="实人认证 Real-person authentication: a live face, 1:1 with the enrolled face")
async def real_person(body: RealPersonIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                      p: Platform = Depends(platform)):  # noqa: ANN201
    async def call() -> Callable[[Connection], dict[str, Any]]:
        return await identity.check_real_person(p.context, person_id=caller.principal, capture=body.capture,
                                                liveness=body.liveness.model_dump() if body.liveness else None, actor=caller.actor)

    def work(c: Connection, record: Callable[[Connection], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        return 200, record(c)
    return await idempotent_after_call(p, request, caller, key, call, work)


@router.get("/persons/{psn_no}/cards", summary="社保卡：制卡进度与状态 Cards: production progress and status")
async def person_cards(psn_no: str = PsnNo, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        return {"items": [cards.view(c, p.keyring, k) for k in cards.for_person(c, psn_no)]}
    return await p.run(work, write=False)


def _card_action(action: Callable[..., cards.Card]):  # noqa: ANN202
    async def endpoint(request: Request, card_id: str = CardId, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                       p: Platform = Depends(platform)):  # noqa: ANN202
        now = p.now()
        return await idempotent(p, request, caller, key, lambda c: (200, cards.view(c, p.keyring, action(
            c, now, card_id=card_id, holder_id=caller.principal, actor=caller.actor))))
    return endpoint


router.post("/cards/{card_id}/activation", name="card_activation", summary="激活 Activate an issued card")(_card_action(cards.activate))
router.post("/cards/{card_id}/loss-report", name="card_loss_report", summary="挂失 Report an active card lost")(_card_action(cards.report_loss))
router.post("/cards/{card_id}/cancellation", name="card_cancellation",
            summary="注销 Cancel a card, from any status and anywhere")(_card_action(cards.cancel))
router.post("/cards/{card_id}/found-report", name="card_found_report",
            summary="解挂 Report a lost card found: active again (not once replaced)")(_card_action(cards.report_found))


@router.post("/cards/{card_id}/replacement", status_code=201, name="card_replacement",
             summary="补卡 Replace a lost physical card: a new card in production (an active one is reported lost first)")
async def card_replacement(request: Request, card_id: str = CardId, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                           p: Platform = Depends(platform)) -> Any:
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, cards.view(c, p.keyring, cards.replace_own(
        c, p.keyring, now, card_id=card_id, holder_id=caller.principal, actor=caller.actor))))


@router.put("/cards/{card_id}/photo", summary="上传照片 Upload the card photo (PNG or JPEG, at most 200 KB) before printing")
async def upload_photo(body: PhotoIn, request: Request, card_id: str = CardId, key: str = IdempotencyKey,
                       caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    data = cards.decode_photo(body.photo)
    return await idempotent(p, request, caller, key, lambda c: (200, cards.view(c, p.keyring, cards.upload_photo(
        c, p.keyring, now, card_id=card_id, holder_id=caller.principal, data=data, actor=caller.actor))))


@router.get("/cards/{card_id}/photo", summary="查看照片 The card photo (base64, with its type)")
async def photo(card_id: str = CardId, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    data, kind = await p.run(lambda c: cards.read_photo(c, p.keyring, p.now(), card_id=card_id, holder_id=caller.principal,
                                                         actor=caller.actor))
    return {"card_id": card_id, "content_type": kind, "photo": base64.b64encode(data).decode("ascii")}


@router.post("/ecards", status_code=201, summary="申领电子社保卡 Issue the e-card (after real-name and real-person authentication)")
async def issue_ecard(request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                      p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, cards.view(c, p.keyring, cards.issue_ecard(
        c, p.keyring, now, person_id=caller.principal, actor=caller.actor))))


@router.get("/payment-institutions", summary="可绑定的支付机构 Admitted payment institutions of my region")
async def payment_institutions(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    items = await p.run(lambda c: pis.list_admitted(c, people.region_of(c, caller.principal), connected=True), write=False)
    return {"items": [pis.view(i) for i in items]}


def _bindings(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "max_password_free_limit": format_yuan(ecard_bindings.MAX_PASSWORD_FREE)}


@router.get("/ecard/bindings", summary="电子社保卡绑定的支付机构 My e-card's bindings")
async def bindings(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return _bindings(await p.run(lambda c: ecard_bindings.of_holder(c, caller.principal), write=False))


@router.post("/ecard/bindings", status_code=201, summary="绑定支付机构 Bind my e-card to an admitted payment institution")
async def bind(body: BindingIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
               p: Platform = Depends(platform)):  # noqa: ANN201
    now, limit = p.now(), parse_yuan(body.password_free_limit, "password_free_limit")
    return await idempotent(p, request, caller, key, lambda c: (201, _bindings(ecard_bindings.bind(
        c, now, holder_id=caller.principal, pi_id=body.payment_institution_id, password_free_limit=limit, make_default=body.default,
        actor=caller.actor))))


@router.put("/ecard/bindings/{pi_id}/default", summary="设为默认 Make a bound institution the default")
async def binding_default(request: Request, pi_id: str = PiId, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                          p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, _bindings(ecard_bindings.set_default(
        c, now, holder_id=caller.principal, pi_id=pi_id, actor=caller.actor))))


@router.put("/ecard/bindings/{pi_id}/limit", summary="免密额度 Set the password-free limit (0.00–2000.00)")
async def binding_limit(body: LimitIn, request: Request, pi_id: str = PiId, key: str = IdempotencyKey,
                        caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now, limit = p.now(), parse_yuan(body.password_free_limit, "password_free_limit")
    return await idempotent(p, request, caller, key, lambda c: (200, _bindings(ecard_bindings.set_limit(
        c, now, holder_id=caller.principal, pi_id=pi_id, password_free_limit=limit, actor=caller.actor))))


@router.delete("/ecard/bindings/{pi_id}", summary="解绑 Unbind a payment institution (its password-free agreement is terminated there too)")
async def unbind(request: Request, pi_id: str = PiId, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                 p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    answer = await idempotent(p, request, caller, key, lambda c: (200, _bindings(agreements.unbind(
        c, now, holder_id=caller.principal, pi_id=pi_id, actor=caller.actor))))
    # After the unbind's unit: the institution is told (an unreachable one is asked again by recovery; the agreement's
    # state says `terminating` meanwhile). A replayed answer finds nothing left to terminate.
    await agreements.terminate(p.context, holder_id=caller.principal, pi_id=pi_id, actor=caller.actor)
    return answer


class SigningIn(Strict):
    return_url: str | None = Field(None, min_length=1, max_length=256,
                                   description="where the institution's signing page sends the holder back to (http(s)://)")


@router.post("/ecard/bindings/{pi_id}/agreement", summary="签约免密支付 Start signing the password-free agreement on the institution's page")
async def start_signing(request: Request, body: SigningIn | None = None, pi_id: str = PiId, key: str = IdempotencyKey,
                        caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    return_url = body.return_url if body is not None else None

    async def call(_: str) -> tuple[int, Any, bool]:  # not kept: a retry starts a fresh session (the same agreement)
        return 200, await agreements.start(p.context, holder_id=caller.principal, pi_id=pi_id, return_url=return_url,
                                           actor=caller.actor), False
    return await idempotent_flow(p, request, caller, key, call)


@router.get("/ecard/bindings/{pi_id}/agreement", summary="签约结果 The agreement's state (a pending one is asked of the institution)")
async def agreement_state(pi_id: str = PiId, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await agreements.refresh(p.context, holder_id=caller.principal, pi_id=pi_id, actor=caller.actor)


@router.get("/family", summary="家庭关联 My family links (names masked)")
async def family(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"items": await p.run(lambda c: families.links(c, p.keyring, caller.principal, own_in_full=True), write=False)}


@router.post("/family/child-cards", status_code=201, summary="关联少儿社保卡 Link a child's card (conditions 1, 2, 4)")
async def link_child_card(body: ChildCardIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                          p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, families.link_child_card(
        c, p.keyring, now, guardian_id=caller.principal, card_no=body.card_no, child_name=body.child_name, actor=caller.actor)))


@router.post("/family/children/{psn_no}/family-account", status_code=201, summary="家庭账户关联 Link guardian and child (condition 3)")
async def link_family_account(request: Request, psn_no: str = PsnNo, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                              p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, families.link_family_account(
        c, now, guardian_id=caller.principal, child_id=psn_no, actor=caller.actor)))


@router.get("/family/children/{psn_no}/checklist", summary="少儿使用监护人账户的五项条件 The five conditions, met or not")
async def checklist(psn_no: str = PsnNo, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        _visible(c, caller, psn_no)
        return families.checklist(c, p.now(), guardian_id=caller.principal, child_id=psn_no)
    return await p.run(work, write=False)


@router.post("/family/mutual-aid", status_code=201, summary="家庭共济授权 Let a relative use my personal account")
async def grant_mutual_aid(body: MutualAidIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                           p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, families.grant_mutual_aid(
        c, p.keyring, now, holder_id=caller.principal, relation=body.relation, id_number=body.id_number, name=body.name,
        actor=caller.actor)))


@router.delete("/family/mutual-aid/{psn_no}", summary="撤销家庭共济 Revoke a relative's use of my account")
async def revoke_mutual_aid(request: Request, psn_no: str = PsnNo, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                            p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, families.revoke_mutual_aid(
        c, now, holder_id=caller.principal, member_id=psn_no, actor=caller.actor)))


# ---- dynamic payment codes (services/payments/paycodes.py) -----------------------------------------------
# The code never appears in a URL (access logs): images are drawn for "the current code", and the
# stored replay of an issue carries no code (GET /paycodes/current draws it again).

NO_STORE = {"Cache-Control": "no-store"}
OptionalPsnNo = Query(None, min_length=1, max_length=24, description="a linked child's psn_no; omit for your own code")
SVG_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {}}, "description": "SVG image"}}


class PaycodeIn(Strict):
    psn_no: str | None = Field(None, min_length=1, max_length=24, description="a linked child's psn_no; omit for your own code")


def _paycode_view(issued: paycodes.Issued) -> dict[str, Any]:
    query = f"?psn_no={issued.person_id}" if issued.person_id != issued.holder_id else ""
    base = "/api/v1/patient/paycodes/current"
    return {**paycodes.issued_view(issued), "links": {"current": base + query, "qr_svg": f"{base}/qr.svg{query}",
                                                      "barcode_svg": f"{base}/barcode.svg{query}"}}


def _without_code(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "code": None}


@router.post("/paycodes", status_code=201, summary="获取/刷新动态医保码 Get a new payment code (the previous one dies at once)")
async def issue_paycode(body: PaycodeIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                        p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    response = await idempotent(p, request, caller, key, lambda c: (201, _paycode_view(paycodes.issue(
        c, p.keyring, now, holder_id=caller.principal, person_id=body.psn_no, actor=caller.actor))), redact=_without_code)
    response.headers.update(NO_STORE)
    return response


def _current(p: Platform, caller: Caller, psn_no: str | None):  # noqa: ANN202
    return p.run(lambda c: paycodes.current(c, p.keyring, p.now(), holder_id=caller.principal, person_id=psn_no), write=False)


@router.get("/paycodes/current", summary="当前支付码 My live payment code (or a linked child's)")
async def current_paycode(psn_no: str | None = OptionalPsnNo, caller: Caller = Depends(patient_caller),
                          p: Platform = Depends(platform)) -> Response:
    return JSONResponse(_paycode_view(await _current(p, caller, psn_no)), headers=NO_STORE)


@router.get("/paycodes/current/qr.svg", response_class=Response, responses=SVG_RESPONSE, summary="支付码二维码 The live code as a QR (SVG)")
async def current_paycode_qr(psn_no: str | None = OptionalPsnNo, caller: Caller = Depends(patient_caller),
                             p: Platform = Depends(platform)) -> Response:
    return Response(qr_svg((await _current(p, caller, psn_no)).code), media_type="image/svg+xml", headers=NO_STORE)


@router.get("/paycodes/current/barcode.svg", response_class=Response, responses=SVG_RESPONSE,
            summary="支付码条形码 The live code as a Code 128 barcode (SVG)")
async def current_paycode_barcode(psn_no: str | None = OptionalPsnNo, caller: Caller = Depends(patient_caller),
                                  p: Platform = Depends(platform)) -> Response:
    return Response(barcode_svg((await _current(p, caller, psn_no)).code), media_type="image/svg+xml", headers=NO_STORE)


# ---- payments awaiting the holder, and the payment PIN -------------------------------------------------

PaymentId = Path(min_length=1, max_length=32)


class PinIn(Strict):
    pin: str = Field(min_length=1, max_length=12, description="the 6-digit payment PIN")
    old_pin: str | None = Field(None, min_length=1, max_length=12, description="the current PIN, to change it")


class ConfirmIn(Strict):
    pin: str = Field(min_length=1, max_length=12, description="the 6-digit payment PIN")


@router.post("/payment-pin", summary="设置/修改支付密码 Set or change the 6-digit payment PIN")
async def set_payment_pin(body: PinIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                          p: Platform = Depends(platform)):  # noqa: ANN201
    payment_pins.check_format(body.pin)
    payment_pins.check_strength(body.pin)
    if body.old_pin is not None:
        payment_pins.check_format(body.old_pin, "old_pin")

    async def call(_: str) -> tuple[int, Any, bool]:
        return 200, await payment_pins.change(p.context, person_id=caller.principal, pin=body.pin, old_pin=body.old_pin, actor=caller.actor), True
    return await idempotent_flow(p, request, caller, key, call)


@router.get("/payments/pending", summary="待确认支付 Payments waiting for my confirmation (cash above my password-free limit)")
async def pending_payments(caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    now = p.now()
    return await p.run(lambda c: {"items": [payments.receipt(c, o) for o in confirmation.pending_for(c, caller.principal, now)]}, write=False)


@router.get("/payments/{payment_id}", summary="支付详情 One of my payments (as the payer)")
async def my_payment(payment_id: str = PaymentId, caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: payments.receipt(c, confirmation.payer_order(c, payment_id, caller.principal)), write=False)


@router.post("/payments/{payment_id}/confirm", responses={202: {"description": "在途 The cash outcome is not known yet"}},
             summary="确认支付 Confirm a waiting payment with the PIN; the cash is then collected")
async def confirm_payment(body: ConfirmIn, request: Request, payment_id: str = PaymentId, key: str = IdempotencyKey,
                          caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    payment_pins.check_format(body.pin)
    ctx = p.context

    async def call(_: str) -> tuple[int, Any, bool]:
        order = await confirmation.confirm(ctx, order_id=payment_id, payer_id=caller.principal, pin=body.pin, actor=caller.actor)
        view = await p.run(lambda c: payments.receipt(c, order), write=False)
        return (200 if order.terminal else 202), view, True
    return await idempotent_flow(p, request, caller, key, call)


@router.post("/payments/{payment_id}/decline", summary="拒绝支付 Refuse a waiting payment: everything held is released")
async def decline_payment(request: Request, payment_id: str = PaymentId, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                          p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, payments.receipt(
        c, confirmation.decline(c, now, order_id=payment_id, payer_id=caller.principal, actor=caller.actor))))


# ---- mobile payment (移动支付): my bills and my linked children's -----------------------------------------

class BillPayIn(Strict):
    use_account: bool = Field(False, description="pay from the personal account first (a child's bill: the guardian's account)")
    payment_institution_id: str | None = Field(None, min_length=1, max_length=40, description="a bound institution; default: my default")
    pin: str | None = Field(None, min_length=1, max_length=12, description="the 6-digit payment PIN: required when the cash share is above 0")
    pay_by: Literal["channel", "credit"] = Field("channel", description="the cash from my payment institution, or my credit line")
    expected_account: YuanText | None = Field(None, max_length=20, description="the account share I was shown (yuan, from the bill's "
                                                                        "preview); with expected_cash, the bill is paid only if it "
                                                                        "still comes to both, else 409 bill_amount_changed")
    expected_cash: YuanText | None = Field(None, max_length=20, description="the cash share I was shown (yuan)")


def _expected(body: BillPayIn) -> bills.Expected | None:
    if body.expected_account is None and body.expected_cash is None:
        return None
    if body.expected_account is None or body.expected_cash is None:
        missing = "expected_account" if body.expected_account is None else "expected_cash"
        raise InputError(missing, "expected_pair", "expected_account 与 expected_cash 须同时给出", "give both expected_account and expected_cash")
    return bills.Expected(parse_yuan(body.expected_account, "expected_account"), parse_yuan(body.expected_cash, "expected_cash"))


@router.get("/bills", summary="待支付账单 Bills published for me or my linked children, with the split previewed")
async def my_bills(use_account: bool = Query(True, description="preview with the personal account used"),
                   all: bool = Query(False, description="also paid and voided bills"),  # noqa: A002
                   caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: {"items": bills.for_holder(c, caller.principal, use_account=use_account, include_done=all)}, write=False)


@router.get("/bills/{payment_id}", summary="账单详情 One bill, with the split previewed while it waits")
async def my_bill(payment_id: str = PaymentId, use_account: bool = Query(True), caller: Caller = Depends(patient_caller),
                  p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: bills.bill_view(c, bills.holder_bill(c, payment_id, caller.principal), caller.principal, use_account),
                       write=False)


@router.post("/bills/{payment_id}/pay", responses={202: {"description": "在途 The cash outcome is not known yet"}},
             summary="支付账单 Pay a bill: fund and account settled, the cash collected (PIN when cash > 0)")
async def pay_bill(body: BillPayIn, request: Request, payment_id: str = PaymentId, key: str = IdempotencyKey,
                   caller: Caller = Depends(patient_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    if body.pin is not None:
        payment_pins.check_format(body.pin)
    expected = _expected(body)
    ctx = p.context

    async def call(_: str) -> tuple[int, Any, bool]:
        order = await bills.pay(ctx, order_id=payment_id, holder_id=caller.principal, use_account=body.use_account,
                                            pi_id=body.payment_institution_id, pin=body.pin, actor=caller.actor, pay_by=body.pay_by,
                                            expected=expected)
        view = await p.run(lambda c: payments.receipt(c, order), write=False)
        return (200 if order.terminal else 202), view, order.terminal
    return await idempotent_flow(p, request, caller, key, call)


# ---- the holder authorises a wallet (医保移动支付授权: authCode → the wallet's pay_auth_no) ----------------------------

class MedInsAuthIn(Strict):
    payment_institution_id: str = Field(min_length=1, max_length=40, description="the wallet (WeChat Pay) the authorisation is for")
    pin: str = Field(min_length=1, max_length=12, description="my 6-digit payment PIN: the authorisation is my own act")


@router.post("/med-ins/authorisations", status_code=201,
             summary="医保移动支付授权 Authorise a wallet to carry one medical-insurance payment of mine: an authCode (single use, 5 min)")
async def authorise_wallet(body: MedInsAuthIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(patient_caller),
                           p: Platform = Depends(platform)) -> Response:
    """The e-voucher authorisation in the wallet, done here: logged in and with the PIN (counted per holder, as every PIN
    check). The authCode goes to the wallet (the hospital's mini-program there), which exchanges it with the platform
    for a pay_auth_no; answered once (a replay of the key answers without it)."""
    payment_pins.check_format(body.pin)

    async def call() -> bool | None:
        return await payment_pins.verify(p.context, caller.principal, body.pin)

    def work(c: Connection, ok: bool | None) -> tuple[int, Any]:
        if ok is None:
            raise InputError("pin", "pin_not_set", "请先设置支付密码", "set a payment PIN first")
        if not ok:
            raise InputError("pin", "pin_wrong", "支付密码错误", "wrong PIN")
        auth, code = medins.authorise(c, p.now(), holder_id=caller.principal, pi_id=body.payment_institution_id, actor=caller.actor)
        return 201, {"auth_code": code, "payment_institution_id": auth.pi_id, "expires_at": iso_utc(auth.expires_at)}
    return await idempotent_after_call(p, request, caller, key, call, work, redact=lambda v: {**v, "auth_code": None})
