"""Agency operators: admit institutions, enrol people, credit accounts, file cross-region care,
watch the ledger and the audit log. Authentication: `Authorization: Bearer <operator token>`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.engine import Connection

from yibao.api.deps import Caller, operator_caller, platform
from yibao.api.idempotency import IdempotencyKey, idempotent, idempotent_after_call, idempotent_flow
from yibao.api.schemas import (
    CardIn,
    ExactJsonRoute,
    FaceEnrolIn,
    IsoDate,
    PaymentInstitutionIn,
    PilotApplicationIn,
    ProductionIn,
    Strict,
    SuspensionIn,
    Yuan,
    YuanText,
)
from yibao.domain import benefits as benefit_rules
from yibao.domain.clearing import parse_month
from yibao.domain.errors import InputError
from yibao.domain.ledger import person_account
from yibao.domain.money import format_yuan, parse_yuan
from yibao.formats.timefmt import iso_utc
from yibao.runtime.platform import Platform
from yibao.services.agency import admission, institutions, pilots, rollout
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency import payment_institutions as pis
from yibao.services.benefits import batches as benefit_batches
from yibao.services.benefits import jobs as benefit_jobs
from yibao.services.books import audit, contributions, ledger
from yibao.services.clearing import applications as clearing
from yibao.services.clearing import interregion
from yibao.services.clearing import payments as clearing_payments
from yibao.services.payments import liabilities
from yibao.services.people import account_credits, card_accounts, cards, filings, identity
from yibao.services.people import persons as people
from yibao.services.reconciliation import resolutions as recon_resolutions
from yibao.services.reconciliation import runs as recon_runs

router = APIRouter(route_class=ExactJsonRoute, prefix="/api/v1/admin", tags=["admin 经办机构"])


class InstitutionIn(Strict):
    code: str = Field(min_length=1, max_length=20, description="fixmedins_code")
    region: str = Field(min_length=1, max_length=6)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["hospital", "pharmacy"]
    level: Literal["community", "level1", "level2", "level3", "pharmacy"]


class PersonIn(Strict):
    region: str = Field(min_length=1, max_length=6)
    id_number: str = Field(min_length=1, max_length=18)
    name: str = Field(min_length=1, max_length=50)
    phone: str | None = Field(None, max_length=11)
    insurance_type: Literal["employee", "resident", "child"]
    tier: int | None = Field(None, ge=1, le=9)
    employment_status: Literal["employed", "retired", "none"] = "employed"
    hardship: str | None = Field(None, max_length=20)
    guardian_psn_no: str | None = Field(None, max_length=24, description="a child's guardian, recorded at enrolment")


class CreditIn(Strict):
    amount: YuanText = Yuan


class FilingIn(Strict):
    treatment_region: str = Field(min_length=1, max_length=6)
    filing_type: Literal["long_term", "temporary"]
    valid_from: IsoDate
    valid_to: IsoDate | None = None


def _inst_view(i: institutions.Institution) -> dict[str, Any]:
    return {"code": i.id, "region": i.region, "name": i.name, "kind": i.kind, "level": i.level, "status": i.status}


@router.post("/institutions", status_code=201, summary="定点机构准入 Admit an institution; its API secret is shown once")
async def admit(body: InstitutionIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()

    def work(c: Connection) -> tuple[int, dict[str, Any]]:
        inst, secret = institutions.admit(c, now, code=body.code, region=body.region, name=body.name, kind=body.kind, level=body.level,
                                          actor=caller.actor)
        return 201, {**_inst_view(inst), "credential": f"{inst.id}.{secret}"}
    return await idempotent(p, request, caller, key, work, redact=lambda doc: {
        **doc, "credential": None, "credential_note": "凭证仅首次返回；遗失请重新签发 / shown once only; issue a new one if lost"})


@router.get("/institutions", summary="定点机构 Institutions")
async def list_institutions(region: str | None = Query(None, max_length=6), caller: Caller = Depends(operator_caller),
                            p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"items": [_inst_view(i) for i in await p.run(lambda c: institutions.list_all(c, region), write=False)]}


@router.post("/persons", status_code=201, summary="参保登记 Enrol an insured person")
async def enrol(body: PersonIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()

    def work(c: Connection) -> tuple[int, dict[str, Any]]:
        person = people.enrol(c, p.keyring, now, region=body.region, id_number=body.id_number, name=body.name, phone=body.phone,
                              insurance_type=body.insurance_type, tier=body.tier, employment_status=body.employment_status,
                              hardship=body.hardship, guardian_id=body.guardian_psn_no, actor=caller.actor)
        return 201, people.masked_view(person, p.keyring)
    return await idempotent(p, request, caller, key, work)


@router.post("/persons/{psn_no}/account-credits", summary="个人账户划入 Credit a personal account from the contributions collected; "
             "above the region's threshold the credit waits for a second operator (202)",
             responses={202: {"description": "待审批 Above the threshold: recorded, nothing moved until another operator approves it"}})
async def credit(body: CreditIn, request: Request, psn_no: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                 caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    amount = parse_yuan(body.amount, "amount")

    def work(c: Connection) -> tuple[int, dict[str, Any]]:
        done = account_credits.request(c, now, person_id=psn_no, amount=amount, client_id=f"credit:{caller.principal}:{key}",
                                       actor=caller.actor)
        if done.status != account_credits.CREDITED:
            return 202, done.view()
        return 200, done.view(balance=ledger.balance(c, person_account(psn_no)))
    return await idempotent(p, request, caller, key, work)


@router.get("/account-credits", summary="个人账户划入记录 Account credits, newest first (awaiting_approval: those a second operator must approve)")
async def list_credits(status: Literal["awaiting_approval", "credited"] | None = Query(None), region: str | None = Query(None, max_length=6),
                       caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    rows = await p.run(lambda c: account_credits.listing(c, status=status, region=region), write=False)
    return {"items": [r.view() for r in rows]}


@router.post("/account-credits/{credit_id}/approval", summary="审批划入 Approve a credit awaiting approval (another operator than "
                                                              "the requester); the money moves now, once")
async def approve_credit(request: Request, credit_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                         caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()

    def work(c: Connection) -> tuple[int, dict[str, Any]]:
        done = account_credits.approve(c, now, credit_id=credit_id, actor=caller.actor)
        return 200, done.view(balance=ledger.balance(c, person_account(done.person_id)))
    return await idempotent(p, request, caller, key, work)


class CollectionIn(Strict):
    amount: YuanText = Yuan
    reference: str = Field(min_length=1, max_length=60, description="the bank receipt or import batch the money came with; "
                                                                    "the same reference twice is one collection")


@router.post("/regions/{region}/contribution-collections", status_code=201,
             summary="缴费归集 Record contributions collected into a region: what personal-account credits may draw")
async def collect(body: CollectionIn, request: Request, region: str = Path(min_length=6, max_length=6), key: str = IdempotencyKey,
                  caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    amount = parse_yuan(body.amount, "amount")
    return await idempotent(p, request, caller, key, lambda c: (201, {"reference": body.reference, **contributions.record_collection(
        c, now, region=region, amount=amount, reference=body.reference, actor=caller.actor).view()}))


@router.get("/regions/{region}/contributions", summary="缴费归集余额 A region's contributions: collected, credited, available")
async def contributions_summary(region: str = Path(min_length=6, max_length=6), caller: Caller = Depends(operator_caller),
                                p: Platform = Depends(platform)) -> dict[str, Any]:
    return (await p.run(lambda c: contributions.summary(c, region), write=False)).view()


@router.post("/persons/{psn_no}/filings", status_code=201, summary="异地就医备案 File cross-region care")
async def file(body: FilingIn, request: Request, psn_no: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
               caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, filings.file(
        c, now, person_id=psn_no, treatment_region=body.treatment_region, filing_type=body.filing_type,
        valid_from=body.valid_from, valid_to=body.valid_to, actor=caller.actor)))


@router.get("/ledger/totals", summary="账本平衡 Ledger totals: debits equal credits")
async def totals(region: str | None = Query(None, max_length=6), caller: Caller = Depends(operator_caller),
                 p: Platform = Depends(platform)) -> dict[str, Any]:
    t = await p.run(lambda c: ledger.totals(c, region), write=False)
    return {"debits_posted": format_yuan(t.debits_posted), "credits_posted": format_yuan(t.credits_posted),
            "debits_pending": format_yuan(t.debits_pending), "credits_pending": format_yuan(t.credits_pending), "balanced": t.balanced}


@router.post("/ledger/expire-pending", summary="释放超时的预留 Release pending transfers past their timeout")
async def expire(request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, {"expired": ledger.expire_pending(c, now)}))


@router.get("/audit", summary="审计日志 The audit log, newest first")
async def audit_log(region: str | None = Query(None, max_length=6), limit: int = Query(100, ge=1, le=1000),
                    caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    rows = await p.run(lambda c: audit.entries(c, region, limit), write=False)
    return {"items": [{"region": r.region, "seq": r.seq, "at": iso_utc(r.at), "actor": r.actor, "action": r.action,
                       "subject": r.subject, "detail": r.detail, "hash": r.hash} for r in rows]}


@router.get("/audit/verify", summary="校验审计链 Verify every region's keyed chain against its anchors, and the ledger against the trail; "
                                    "then anchor the heads that verified")
async def audit_verify(caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    reports = await audit.verify_and_anchor(p.run, p.anchors)
    return {"ok": all(r.ok for r in reports), "chains": [r.view() for r in reports]}


# ---- payment institutions, faces, cards ---------------------------------------------------------

@router.post("/payment-institutions", status_code=201, summary="支付机构准入 Admit a payment institution (none is designated)")
async def admit_payment_institution(body: PaymentInstitutionIn, request: Request, key: str = IdempotencyKey,
                                    caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    # Registered if new, its connector tested (a signed query), then admitted: agency/admission.py.
    async def call() -> Callable[[Connection], pis.PaymentInstitution]:
        return await admission.prepare(p.context, pi_id=body.id, region=body.region, name=body.name, kind=body.kind,
                                       admission_ref=body.admission_ref, actor=caller.actor)

    return await idempotent_after_call(p, request, caller, key, call, lambda c, record: (201, pis.view(record(c))))


@router.post("/payment-institutions/{pi_id}/suspension", summary="暂停支付机构 Suspend a payment institution")
async def suspend_payment_institution(body: SuspensionIn, request: Request, pi_id: str = Path(min_length=1, max_length=40),
                                      key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                                      p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, pis.view(pis.suspend(
        c, now, pi_id=pi_id, reason=body.reason, actor=caller.actor))))


@router.get("/payment-institutions", summary="支付机构准入记录 Payment institutions")
async def list_payment_institutions(region: str | None = Query(None, max_length=6),
                                    status: Literal["registered", "admitted", "suspended", "withdrawn"] | None = Query(None),
                                    caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"items": [pis.view(i) for i in await p.run(lambda c: pis.list_all(c, region, status), write=False)]}


@router.post("/persons/{psn_no}/face", summary="采集人脸 Enrol a person's reference face (through the face verifier)")
async def enrol_face(body: FaceEnrolIn, request: Request, psn_no: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                     caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    async def call() -> Callable[[Connection], dict[str, Any]]:
        return await identity.enrol_capture(p.context, person_id=psn_no, capture=body.capture, actor=caller.actor)

    return await idempotent_after_call(p, request, caller, key, call, lambda c, record: (200, record(c)))


@router.post("/persons/{psn_no}/cards", status_code=201, summary="受理制卡 Accept a card application: a physical card in production")
async def create_card(body: CardIn, request: Request, psn_no: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                      caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()

    def work(c: Connection) -> tuple[int, dict[str, Any]]:
        card = cards.create_physical(c, p.keyring, now, person_id=psn_no, financial=body.financial, card_no=body.card_no, actor=caller.actor)
        return 201, cards.view(c, p.keyring, card)
    return await idempotent(p, request, caller, key, work)


@router.get("/persons/{psn_no}/cards", summary="参保人的卡 A person's cards")
async def person_cards(psn_no: str = Path(min_length=1, max_length=24), caller: Caller = Depends(operator_caller),
                       p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        people.require(c, psn_no)
        return {"items": [cards.view(c, p.keyring, k) for k in cards.for_person(c, psn_no)]}
    return await p.run(work, write=False)


@router.post("/cards/{card_id}/production", summary="制卡进度 Record the next production stage")
async def card_production(body: ProductionIn, request: Request, card_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                          caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, cards.view(c, p.keyring, cards.advance_production(
        c, now, card_id=card_id, stage=body.stage, actor=caller.actor))))


@router.post("/cards/{card_id}/issue", summary="发卡 Issue a ready card to its holder")
async def card_issue(request: Request, card_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                     caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, cards.view(c, p.keyring, cards.issue(
        c, now, card_id=card_id, actor=caller.actor))))


class ReplacementIn(Strict):
    report_loss: bool = Field(False, description="an active or issued card is reported lost at the counter first (the holder is there)")


@router.post("/cards/{card_id}/replacement", status_code=201, summary="补卡 Replace a lost card: a new card in production, the lost one stays lost")
async def card_replacement(request: Request, body: ReplacementIn | None = None, card_id: str = Path(min_length=1, max_length=24),
                           key: str = IdempotencyKey, caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    report_loss = body.report_loss if body is not None else False
    return await idempotent(p, request, caller, key, lambda c: (201, cards.view(c, p.keyring, cards.replace(
        c, p.keyring, now, card_id=card_id, report_loss=report_loss, actor=caller.actor))))


# ---- the channel registry: how the platform reaches a payment institution ------------------------------

class ChannelConfigIn(Strict):
    connector: Literal["wxpay", "alipay", "unionpay", "bank"]
    base_url: str = Field(min_length=1, max_length=300, description="the institution's API base URL")
    merchant_id: str = Field(min_length=1, max_length=64, description="our merchant id there (mchid, app_id, merId …)")
    app_id: str | None = Field(None, min_length=1, max_length=64, description="wxpay: the appid")
    private_key_pem: str | None = Field(None, max_length=10_000, description="our RSA private key (PEM); stored encrypted")
    institution_public_key_pem: str | None = Field(None, max_length=10_000, description="the institution's RSA public key (PEM)")
    shared_secret: str | None = Field(None, max_length=100, description="wxpay API v3 key or the bank's HMAC key: 32 bytes, base64")
    notify_url: str | None = Field(None, max_length=300, description="where the institution sends notifications")
    timeout_ms: int = Field(5000, ge=100, le=60_000)
    platform_key_id: str | None = Field(None, min_length=1, max_length=64, description="wxpay: the platform public key's id (PUB_KEY_ID_…)")
    certificate_mode: str | None = Field(None, min_length=1, max_length=12,
                                         description="wxpay: public_key | certificates | both (how WeChat's signatures are identified)")
    plan_id: int | None = Field(None, description="wxpay: the papay template (委托代扣模板) id the contracts are signed under")
    deduct_notice: bool | None = Field(None, description="wxpay: the template requires a 预扣费通知 (pre-deduction notice) before each "
                                       "deduction, sent by the platform first (default true)")


@router.put("/payment-institutions/{pi_id}/channel", summary="支付机构接入配置 Configure how the platform reaches a payment institution")
async def configure_channel(body: ChannelConfigIn, request: Request, pi_id: str = Path(min_length=1, max_length=40), key: str = IdempotencyKey,
                            caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    import base64
    import binascii

    from yibao.domain.errors import InputError

    secret = None
    if body.shared_secret is not None:
        try:
            secret = base64.b64decode(body.shared_secret, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("shared_secret", "invalid_secret", "共享密钥应为 base64 编码的32字节", "must be 32 bytes, base64") from None
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, channel_registry.configure(
        c, p.keyring, now, pi_id=pi_id, connector=body.connector, base_url=body.base_url, merchant_id=body.merchant_id, app_id=body.app_id,
        private_key_pem=body.private_key_pem, shared_secret=secret, institution_public_key_pem=body.institution_public_key_pem,
        notify_url=body.notify_url, timeout_ms=body.timeout_ms, platform_key_id=body.platform_key_id, certificate_mode=body.certificate_mode,
        plan_id=body.plan_id, deduct_notice=body.deduct_notice, actor=caller.actor)))


@router.get("/payment-institutions/{pi_id}/channel", summary="支付机构接入配置 The channel configuration (no keys or secrets)")
async def channel_config(pi_id: str = Path(min_length=1, max_length=40), caller: Caller = Depends(operator_caller),
                         p: Platform = Depends(platform)) -> dict[str, Any]:
    def work(c: Connection) -> dict[str, Any]:
        cfg = channel_registry.get(c, pi_id)
        if cfg is None:
            from yibao.domain.errors import NotFound

            raise NotFound("pi_id", "not_found", "该支付机构没有接入配置", "no channel configuration for this payment institution")
        return channel_registry.view(cfg)
    return await p.run(work, write=False)


# ---- backstop liability (兜底责任, services/payments/liabilities.py) ----------------------------------------------

class LiabilityIn(Strict):
    payment_id: str = Field(min_length=1, max_length=32, description="the payment order whose fund share was lost")
    amount: YuanText = Yuan
    cause: str = Field(min_length=1, max_length=500, description="what caused the loss")


class RecourseIn(Strict):
    amount: YuanText = Yuan
    note: str | None = Field(None, max_length=500)


@router.post("/liabilities", status_code=201,
             summary="兜底责任 Charge a hospital for a fund loss caused by a mobile payment (receivable → fund)")
async def charge_liability(body: LiabilityIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                           p: Platform = Depends(platform)):  # noqa: ANN201
    amount = parse_yuan(body.amount, "amount")
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, liabilities.record(
        c, now, order_id=body.payment_id, amount=amount, cause=body.cause, actor=caller.actor)))


@router.post("/liabilities/{liability_id}/recourse", summary="追偿 Record what the hospital recovered from the payment institution")
async def liability_recourse(body: RecourseIn, request: Request, liability_id: str = Path(min_length=1, max_length=32),
                             key: str = IdempotencyKey, caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    amount = parse_yuan(body.amount, "amount")
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, liabilities.recourse(
        c, now, liability_id=liability_id, amount=amount, note=body.note, actor=caller.actor)))


@router.get("/liabilities", summary="兜底责任记录 Backstop liabilities, newest first")
async def list_liabilities(region: str | None = Query(None, min_length=1, max_length=6),
                           fixmedins_code: str | None = Query(None, min_length=1, max_length=20),
                           caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: {"items": liabilities.listing(c, region=region, institution_id=fixmedins_code)}, write=False)


@router.get("/liabilities/{liability_id}", summary="兜底责任 One liability with its recourse")
async def get_liability(liability_id: str = Path(min_length=1, max_length=32), caller: Caller = Depends(operator_caller),
                        p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: liabilities.view(c, liability_id), write=False)


# ---- reconciliation with the payment institutions (docs/reconciliation.md) ------------------------------------------

class ReconcileIn(Strict):
    day: IsoDate = Field(description="the Beijing day of the institution's statement")
    payment_institution_id: str = Field(min_length=1, max_length=40)


class ResolutionIn(Strict):
    resolution: Literal["query", "refund", "correcting_transfer", "accept"]
    reason: str = Field(min_length=1, max_length=500, description="why: the operator's words, kept in the audit trail")
    note: str | None = Field(None, max_length=500, description="required to accept")


@router.post("/reconciliation/runs", summary="对账 Reconcile a day's statement of a payment institution (a re-run is idempotent)")
async def reconcile(body: ReconcileIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                    p: Platform = Depends(platform)):  # noqa: ANN201
    async def call(_digest: str) -> tuple[int, Any, bool]:
        done = await recon_runs.reconcile(p.context, day=body.day, pi_id=body.payment_institution_id, actor=caller.actor)
        return 200, {**done.run, "found": done.differences}, True
    return await idempotent_flow(p, request, caller, key, call)


DayQuery = Query(None, description="a Beijing day, yyyy-MM-dd")


@router.get("/reconciliation/runs", summary="对账批次 Reconciliation runs, by day and payment institution")
async def reconciliation_runs(day: IsoDate | None = DayQuery, payment_institution_id: str | None = Query(None, min_length=1, max_length=40),
                              caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"items": await p.run(lambda c: recon_runs.list_runs(c, day=day, pi_id=payment_institution_id), write=False)}


@router.get("/reconciliation/differences", summary="对账差异 Differences, by day, payment institution and status; each with the "
                                                  "resolutions it allows")
async def reconciliation_differences(day: IsoDate | None = DayQuery,
                                     payment_institution_id: str | None = Query(None, min_length=1, max_length=40),
                                     status: Literal["open", "resolved", "cleared"] | None = Query(None),
                                     caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return {"items": await p.run(lambda c: recon_runs.list_differences(c, day=day, pi_id=payment_institution_id, status=status),
                                 write=False)}


@router.post("/reconciliation/differences/{difference_id}/resolution",
             summary="处理差异 Resolve a difference: the institution's query, a refund, a correcting transfer, or accepted with a note")
async def resolve_difference(body: ResolutionIn, request: Request, difference_id: str = Path(min_length=1, max_length=32),
                             key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                             p: Platform = Depends(platform)):  # noqa: ANN201
    async def call(_digest: str) -> tuple[int, Any, bool]:
        view = await recon_resolutions.resolve(p.context, difference_id=difference_id, resolution=body.resolution, reason=body.reason,
                                               note=body.note, actor=caller.actor)
        return 200, view, True
    return await idempotent_flow(p, request, caller, key, call)


# ---- pilot governance (services/agency/pilots.py; docs/governance.md) -------------------------------------------

class AdminPilotApplicationIn(PilotApplicationIn):
    applicant: Literal["institution", "region"] = Field(description="a designated institution's application, or a pooling region's to the province")
    institution_id: str | None = Field(None, min_length=1, max_length=20, description="fixmedins_code, for an institution's application")
    region: str | None = Field(None, min_length=6, max_length=6, description="the applying region, for a region's application")


class PilotReviewIn(Strict):
    approve: bool
    note: str | None = Field(None, max_length=300, description="the review's opinion; required to reject")
    recourse: str | None = Field(None, max_length=300, description="the recourse clause with the payment institutions (a standard one if none)")


@router.post("/pilot-applications", status_code=201, summary="试点申请 Record an institution's or a region's application to take mobile-mode payments")
async def apply_pilot(body: AdminPilotApplicationIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                      p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    plan, risk = body.documents()
    return await idempotent(p, request, caller, key, lambda c: (201, pilots.apply(
        c, now, applicant=body.applicant, institution_id=body.institution_id, region=body.region, modes=body.modes, plan=plan, risk_report=risk,
        assessed_by=body.assessed_by, actor=caller.actor)))


@router.get("/pilots", summary="试点治理 Applications (open first) and agreements, with each agreement's state today")
async def list_pilots(region: str | None = Query(None, min_length=6, max_length=6), caller: Caller = Depends(operator_caller),
                      p: Platform = Depends(platform)) -> dict[str, Any]:
    now = p.now()
    return await p.run(lambda c: pilots.overview(c, now, region), write=False)


@router.post("/pilot-applications/{application_id}/review", summary="审核试点申请 Approve (the agreement is signed: backstop liability, "
             "recourse, one year) or reject with a reason")
async def review_pilot(body: PilotReviewIn, request: Request, application_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                       caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, pilots.review(
        c, now, application_id=application_id, approve=body.approve, note=body.note, recourse=body.recourse, actor=caller.actor)))


@router.post("/pilot-agreements/{agreement_id}/renewal", status_code=201, summary="续签 Renew an agreement for another year (from 60 days before it ends)")
async def renew_pilot(request: Request, agreement_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                      caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, pilots.renew(c, now, agreement_id=agreement_id, actor=caller.actor)))


@router.post("/institutions/{code}/pilot-suspension", summary="暂停试点 Suspend an institution's mobile-mode payments (counter settlement goes on)")
async def suspend_pilot(body: SuspensionIn, request: Request, code: str = Path(min_length=1, max_length=20), key: str = IdempotencyKey,
                        caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, pilots.suspend(c, now, institution_id=code, reason=body.reason,
                                                                                    actor=caller.actor)))


@router.post("/institutions/{code}/pilot-restoration", summary="恢复试点 Restore an institution's suspended mobile-mode payments")
async def restore_pilot(request: Request, code: str = Path(min_length=1, max_length=20), key: str = IdempotencyKey,
                        caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, pilots.restore(c, now, institution_id=code, actor=caller.actor)))


@router.post("/regions/{region}/pilot-suspension", summary="暂停统筹区试点 Suspend a region's own pilot agreement (with the province)")
async def suspend_region_pilot(body: SuspensionIn, request: Request, region: str = Path(min_length=6, max_length=6), key: str = IdempotencyKey,
                               caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, pilots.suspend(c, now, region=region, reason=body.reason,
                                                                                    actor=caller.actor)))


@router.post("/regions/{region}/pilot-restoration", summary="恢复统筹区试点 Restore a region's suspended pilot agreement")
async def restore_region_pilot(request: Request, region: str = Path(min_length=6, max_length=6), key: str = IdempotencyKey,
                               caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, pilots.restore(c, now, region=region, actor=caller.actor)))


@router.get("/pilot-documents/{document_id}", summary="试点申请材料 An application's plan or risk report, as uploaded",
            response_class=Response)
async def pilot_document(document_id: str = Path(min_length=1, max_length=24), caller: Caller = Depends(operator_caller),
                         p: Platform = Depends(platform)) -> Response:
    filename, content = await p.run(lambda c: pilots.document(c, document_id), write=False)
    return Response(content, media_type="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


# ---- monthly clearing (清算, services/clearing): review against the ledger, approve, pay --------------------------------

class PayeeIn(Strict):
    account_no: str = Field(min_length=8, max_length=32, description="the institution's bank account number")
    account_name: str = Field(min_length=1, max_length=200)


class ClearingPayIn(Strict):
    bank: str | None = Field(None, min_length=1, max_length=40, description="the agency's bank (default: the region's one bank connection)")


@router.put("/institutions/{code}/payee", summary="清算收款账户 Record the account an institution is paid into at clearing")
async def set_payee(body: PayeeIn, request: Request, code: str = Path(min_length=1, max_length=20), key: str = IdempotencyKey,
                    caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, clearing.set_payee(
        c, now, institution_id=code, account_no=body.account_no, account_name=body.account_name, actor=caller.actor)))


@router.get("/clearing-applications", summary="清算申请 Clearing applications (filter by month, region, institution, status)")
async def list_clearing(setlym: str | None = Query(None, min_length=6, max_length=6), region: str | None = Query(None, min_length=1, max_length=6),
                        fixmedins_code: str | None = Query(None, min_length=1, max_length=20),
                        status: Literal["applied", "accepted", "cleared", "withdrawn"] | None = None,
                        caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: {"items": clearing.listing(c, setlym=setlym, region=region, institution_id=fixmedins_code, status=status)},
                       write=False)


@router.get("/clearing-applications/{app_id}/review",
            summary="清算审核 The application beside the platform's own figures (differences: declared − platform) and the payable")
async def review_clearing(app_id: str = Path(min_length=1, max_length=32), caller: Caller = Depends(operator_caller),
                          p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: clearing.review(c, app_id), write=False)


@router.post("/clearing-applications/{app_id}/approve",
             summary="清算受理 Accept (20): the platform's figures are frozen as what is paid, whatever was declared")
async def approve_clearing(request: Request, app_id: str = Path(min_length=1, max_length=32), key: str = IdempotencyKey,
                           caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, clearing.approve(c, now, app_id=app_id, actor=caller.actor)))


@router.post("/clearing-applications/{app_id}/pay",
             summary="清算拨付 Pay an accepted application through the agency's bank; cleared (50) once the bank confirms")
async def pay_clearing(body: ClearingPayIn, request: Request, app_id: str = Path(min_length=1, max_length=32), key: str = IdempotencyKey,
                       caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    async def call(_digest: str) -> tuple[int, Any, bool]:
        outcome = await clearing_payments.pay(p.context, app_id, bank_id=body.bank, actor=caller.actor)
        view = await p.run(lambda c: clearing.view(c, app_id), write=False)
        done = outcome.state == "cleared"
        return (200 if done else 202), {**view, "outcome": outcome.state, "error": outcome.error}, done
    return await idempotent_flow(p, request, caller, key, call)


# ---- cross-region clearing (异地清算, 3260-style detail, 3261 confirm / 3262 roll back: services/clearing/interregion.py) --

class InterregionIn(Strict):
    region_a: str = Field(min_length=6, max_length=6)
    region_b: str = Field(min_length=6, max_length=6)
    setlym: str = Field(min_length=6, max_length=6, description="the month, yyyyMM (ended)")


@router.get("/interregion-clearing", summary="异地清算明细 A month's cross-region settlements between two regions (3260 shape), netted")
async def interregion_detail(region_a: str = Query(min_length=6, max_length=6), region_b: str = Query(min_length=6, max_length=6),
                             setlym: str = Query(min_length=6, max_length=6), startrow: int = Query(1, ge=1),
                             caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    month = parse_month(setlym)
    return await p.run(lambda c: interregion.detail(c, region_a=region_a, region_b=region_b, month=month, startrow=startrow), write=False)


@router.post("/interregion-clearing", status_code=201,
             summary="异地清算确认 Net an ended month between two regions (3261): one leg in each region's books")
async def interregion_confirm(body: InterregionIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                              p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (201, interregion.confirm(
        c, now, region_a=body.region_a, region_b=body.region_b, setlym=body.setlym, actor=caller.actor)))


@router.post("/interregion-clearing/{clearing_id}/rollback", summary="异地清算回退 Roll a confirmed netting back (3262)")
async def interregion_rollback(request: Request, clearing_id: str = Path(min_length=1, max_length=32), key: str = IdempotencyKey,
                               caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, interregion.rollback(c, now, clearing_id=clearing_id, actor=caller.actor)))


@router.get("/rollout", summary="推广进度 Rollout per payment mode and province against seed 004's dates: pilot cities (2026), every region "
            "(2027), every eligible institution (2028) — progress and the gap, as of today")
async def rollout_report(caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    now = p.now()
    return await p.run(lambda c: rollout.report(c, now), write=False)


# ---- benefits onto the card (一卡多用, seed 001: services/benefits; the card's account: services/people/card_accounts.py) ----

class CardAccountIn(Strict):
    bank: str = Field(min_length=1, max_length=40, description="the card's bank: an admitted payment institution of kind bank")
    account_no: str = Field(min_length=12, max_length=19, description="the account under the financial card, as the bank reported it")


class BenefitRowIn(Strict):
    psn_no: str | None = Field(None, max_length=24, description="the person by psn_no …")
    id_number: str | None = Field(None, max_length=18, description="… or by ID number (one of the two)")
    amount: YuanText = Field(max_length=20, description="yuan, above zero", examples=["100.00"])


class BenefitBatchIn(Strict):
    region: str = Field(min_length=6, max_length=6)
    agency: str = Field(min_length=1, max_length=100, description="the paying agency, e.g. 深圳市民政局", examples=["深圳市民政局"])
    batch_no: str = Field(min_length=1, max_length=40, description="the agency's own batch number: the same batch sent again is one batch")
    purpose: str = Field(min_length=1, max_length=200, examples=["高龄津贴 2026年12月"])
    rows: list[BenefitRowIn] | None = Field(None, max_length=10_000, description="the list, numbered from 1 in this order …")
    csv: str | None = Field(None, max_length=1_000_000, description="… or the list as CSV text: a header naming psn_no or id_number, "
                            "and amount (yuan); rows numbered from 1 after the header")


class BenefitRunIn(Strict):
    batch_id: str | None = Field(None, min_length=1, max_length=24)
    region: str | None = Field(None, min_length=6, max_length=6)


@router.put("/cards/{card_id}/account", summary="社保卡银行账户 Record the bank account under a financial card (its bank, its number)")
async def card_account(body: CardAccountIn, request: Request, card_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                       caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    now = p.now()
    return await idempotent(p, request, caller, key, lambda c: (200, card_accounts.record(
        c, p.keyring, now, card_id=card_id, bank_id=body.bank, account_no=body.account_no, actor=caller.actor)))


def _benefit_rows(body: BenefitBatchIn) -> list[benefit_rules.Row]:
    if (body.rows is None) == (body.csv is None):
        raise InputError("rows", "rows_or_csv", "须提供 rows 或 csv 之一", "send the list as rows or as csv, one of them")
    if body.csv is not None:
        return benefit_rules.parse_csv(body.csv)
    return [benefit_rules.Row(n, r.psn_no or None, r.id_number or None, r.amount) for n, r in enumerate(body.rows or [], start=1)]


@router.post("/benefit-batches", status_code=201,
             summary="待遇发放批次 Record another agency's subsidy batch for card accounts; every refused row named (details)")
async def record_benefits(body: BenefitBatchIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                          p: Platform = Depends(platform)):  # noqa: ANN201
    """Refused rows (unknown person, not of the region, no financial card with an account, amount not above zero, a
    person twice) refuse the batch: `422 rows_refused`, `error.details` listing each by row. The same agency's batch
    number sent again with the same rows answers the batch already recorded; with other rows, `409 batch_no_used`."""
    now = p.now()
    rows = _benefit_rows(body)
    return await idempotent(p, request, caller, key, lambda c: (201, benefit_batches.record(
        c, p.keyring, now, region=body.region, agency=body.agency, batch_no=body.batch_no, purpose=body.purpose, rows=rows,
        actor=caller.actor)))


@router.get("/benefit-batches", summary="待遇发放批次 Batches, newest first, each with its summary")
async def list_benefits(region: str | None = Query(None, min_length=6, max_length=6),
                        status: Literal["recorded", "submitted", "done"] | None = None,
                        caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: {"items": benefit_batches.listing(c, region=region, status=status)}, write=False)


@router.get("/benefit-batches/{batch_id}", summary="批次详情 A batch: its summary (credited, returned, open; to the fen) and each credit")
async def benefit_batch(batch_id: str = Path(min_length=1, max_length=24), caller: Caller = Depends(operator_caller),
                        p: Platform = Depends(platform)) -> dict[str, Any]:
    return await p.run(lambda c: benefit_batches.view(c, batch_id), write=False)


@router.post("/benefit-batches/{batch_id}/submit",
             summary="提交发放 Submit: one instruction per credit to the card's bank; 200 when every credit is credited or returned, 202 while "
                     "the bank has not answered all (submit again: only what is open is asked about)")
async def submit_benefits(request: Request, batch_id: str = Path(min_length=1, max_length=24), key: str = IdempotencyKey,
                          caller: Caller = Depends(operator_caller), p: Platform = Depends(platform)):  # noqa: ANN201
    async def call(_digest: str) -> tuple[int, Any, bool]:
        view = await benefit_jobs.submit(p.context, batch_id, actor=caller.actor)
        done = view["status"] == "done"
        return (200 if done else 202), view, done
    return await idempotent_flow(p, request, caller, key, call)


@router.post("/benefit-batches/run", summary="驱动待遇发放 Drive open credits (one batch, a region's, or all): ask the bank, send what it never had")
async def run_benefits(body: BenefitRunIn, request: Request, key: str = IdempotencyKey, caller: Caller = Depends(operator_caller),
                       p: Platform = Depends(platform)):  # noqa: ANN201
    async def call(_digest: str) -> tuple[int, Any, bool]:
        report = await benefit_jobs.run(p.context, batch_id=body.batch_id, region=body.region, actor=caller.actor)
        return 200, report, False  # a run answers as things stand: a retry with the key drives again
    return await idempotent_flow(p, request, caller, key, call)
