"""Credit payment (信用支付): enrolment with a bank, the line, the cash share held and paid from it,
bills and repayment (by the holder or a linked family member), bank notifications.

Every use case here needs the bank, so each is an async function that runs units of work through
``CreditContext.run`` and calls the bank *between* them, never inside one: a first unit checks and
records the intent (a hold in the ledger, a pending repayment), the bank is called, a second unit
records the answer. A bank refusal is committed (the trace) before it is raised; a bank that gives no
definite answer leaves the row ``unknown`` for `resolve_*` to settle by asking again.

The ledger mirrors the line (see domain/credit.py): a no-overdraft account ``credit:{enrolment}``
credited with the limit; a payment's cash share is a pending transfer from it to the hospital's cash
account (``reserve``), posted when the payment completes (``capture``: the bank paid the hospital) or
voided (``release``); a repayment credits it back from ``external:{region}:credit_repayments``.
Only the cash share, our order number and an opaque holder token ever reach the bank.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from yibao.channels import AgreementRequest, ChannelError, Declined, NotFoundAtChannel, PaymentRequest, holder_token
from yibao.channels.bank.connector import BankChannel, CreditConsent, CreditLine
from yibao.channels.base import Ack
from yibao.crypto.pii import Keyring, mask_name
from yibao.domain import credit as rules_
from yibao.domain.credit import BankOutcomeUnknown, Bill, CreditRules, EligibilityFacts, Line
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.ledger import institution_cash
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.policies.loader import builtin_years
from yibao.services.agency import payment_institutions as pis
from yibao.services.agency.policies import policy_for
from yibao.services.books import audit, ledger
from yibao.services.people import cards, families
from yibao.services.people import persons as people
from yibao.store.tables import credit_bills as CB
from yibao.store.tables import credit_enrolments as CE
from yibao.store.tables import credit_notifications as CN
from yibao.store.tables import credit_repayments as CR
from yibao.store.tables import credit_reservations as RS
from yibao.store.tables import ecard_bindings as B
from yibao.store.tables import institutions as I
from yibao.store.tables import transfers as T
from yibao.store.upsert import insert_ignore

R = TypeVar("R")
HOLDER_TOKEN_PURPOSE = "holder-token"
DESCRIPTION = "医疗费用个人现金部分"  # what the bank's statement shows for a payment: no diagnosis, no fund share


@dataclass
class CreditContext:
    """What the credit use cases need: a way to run one unit of work, the clock, keys and the banks
    (payment_institution_id → connector)."""

    run: Callable[[Callable[[Connection], Any]], Awaitable[Any]]
    now: Callable[[], datetime]
    keyring: Keyring
    banks: Mapping[str, BankChannel]

    @classmethod
    def for_database(cls, db: Any, keyring: Keyring, banks: Mapping[str, BankChannel]) -> "CreditContext":
        """For the CLI and tests: each unit is one `Database.run` transaction."""
        async def run(work: Callable[[Connection], R]) -> R:
            return db.run(work)
        return cls(run, db.clock, keyring, banks)

    def bank(self, pi_id: str) -> BankChannel:
        bank = self.banks.get(pi_id)
        if bank is None:
            raise NotFound("payment_institution_id", "bank_not_connected", "平台未接入该银行的信用支付",
                           "the platform has no credit connection to this bank")
        return bank


def beijing_day(at: datetime) -> date:
    """Bills, due dates and reminders run on Beijing calendar days."""
    return (at.astimezone(timezone.utc) + timedelta(hours=8)).date()


def credit_rules(region: str, at: datetime) -> CreditRules:
    """The region's credit parameters in force on the day. A line and its bills run across the new
    year: until next year's policy file is published, the latest earlier one stays in force."""
    year = beijing_day(at).year
    earlier = [y for y in builtin_years(region) if y <= year]
    found = policy_for(region, max(earlier) if earlier else year).credit
    if found is None:
        raise Conflict("region", "credit_not_offered", "本统筹区尚未开通信用支付", "credit payment is not offered in this region")
    return found


def token_for(keyring: Keyring, person_id: str, pi_id: str) -> str:
    return holder_token(keyring.purpose_key(HOLDER_TOKEN_PURPOSE), person_id, pi_id)


def _new_no(prefix: str) -> str:
    return prefix + secrets.token_hex(11).upper()  # 24 letters or digits: a valid order number everywhere


# ---- reading ----------------------------------------------------------------------------------

def _enrolment(conn: Connection, enrolment_id: str, *, lock: bool = False) -> Any:
    q = select(CE).where(CE.c.id == enrolment_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound("enrolment", "not_found", "信用支付签约不存在", "credit enrolment not found")
    return row


def holder_enrolment(conn: Connection, holder_id: str, pi_id: str | None = None, *, lock: bool = False) -> Any:
    """The holder's usable (active or suspended) enrolment, at ``pi_id`` or the most recent one."""
    q = select(CE).where(CE.c.person_id == holder_id, CE.c.status.in_(("active", "suspended")))
    if pi_id is not None:
        q = q.where(CE.c.payment_institution_id == pi_id)
    q = q.order_by(CE.c.created_at.desc(), CE.c.id).limit(1)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise Conflict("credit", "credit_not_enrolled", "尚未开通信用支付", "credit payment is not enrolled")
    return row


def _bills(conn: Connection, enrolment_id: str) -> list[Any]:
    return conn.execute(select(CB).where(CB.c.enrolment_id == enrolment_id).order_by(CB.c.due_date, CB.c.bill_no)).all()


def _bill(row: Any) -> Bill:
    return Bill(row.amount, row.repaid, row.due_date)


def bill_view(row: Any, today: date, rules: CreditRules) -> dict[str, Any]:
    b = _bill(row)
    return {"bill_no": row.bill_no, "psn_no": row.person_id, "order_ref": row.order_ref, "amount": format_yuan(b.amount),
            "repaid": format_yuan(b.repaid), "outstanding": format_yuan(b.outstanding), "paid_on": row.paid_on.isoformat(),
            "due_date": row.due_date.isoformat(), "status": b.status(today), "suspends_line": b.suspends_line(today, rules)}


def line_of(conn: Connection, row: Any) -> Line:
    """The line as the ledger holds it: used = limit − available (holds and bills outstanding)."""
    available = ledger.available(conn, rules_.line_account(row.id)) if row.status in ("active", "suspended") else 0
    return Line(row.limit_fen, max(0, row.limit_fen - available))


def enrolment_view(conn: Connection, row: Any, now: datetime) -> dict[str, Any]:
    today, rules = beijing_day(now), credit_rules(row.region, now)
    line = line_of(conn, row)
    rows = _bills(conn, row.id)
    bills = [bill_view(b, today, rules) for b in rows]
    owed = sum(_bill(b).outstanding for b in rows)
    return {"enrolment_id": row.id, "payment_institution_id": row.payment_institution_id, "status": row.status,
            "consent_version": row.consent_version, "consent_accepted_at": iso_utc(row.consent_accepted_at), "score": row.score,
            "limit": format_yuan(line.limit), "used": format_yuan(line.used),
            # used = held (payments in progress) + owed (bills outstanding); a capture whose bill is not recorded yet counts as held
            "held": format_yuan(max(0, line.used - owed)), "owed": format_yuan(owed),
            "available": format_yuan(line.available if row.status == "active" else 0),
            "overdue": any(b["status"] == "overdue" for b in bills), "suspended": row.status == "suspended",
            "rules": {"max_line": format_yuan(rules.max_line), "interest_free_days": rules.interest_free_days,
                      "grace_days": rules.grace_days},
            "bills": bills}


def overview(conn: Connection, holder_id: str, now: datetime) -> dict[str, Any]:
    """The holder's credit page: the terms to accept, each enrolment with its line and bills."""
    rows = conn.execute(select(CE).where(CE.c.person_id == holder_id).order_by(CE.c.created_at, CE.c.id)).all()
    return {"psn_no": holder_id,
            "terms": {"version": rules_.CONSENT_VERSION, "text_zh": rules_.CONSENT_TEXT_ZH, "text_en": rules_.CONSENT_TEXT_EN},
            "lines": [enrolment_view(conn, r, now) for r in rows]}


def family_bills(conn: Connection, keyring: Keyring, payer_id: str, now: datetime) -> dict[str, Any]:
    """Unpaid bills of the caller's linked family members: what the caller may repay for them."""
    items = []
    for person_id in families.linked_people(conn, payer_id):
        rows = conn.execute(select(CB).where(CB.c.person_id == person_id, CB.c.repaid < CB.c.amount)
                            .order_by(CB.c.due_date, CB.c.bill_no)).all()
        if not rows:
            continue
        person = people.require(conn, person_id)
        rules = credit_rules(person.region, now)
        name = mask_name(keyring.decrypt(person.name_enc, "name"))
        relation = families.relation_between(conn, payer_id, person_id)
        items += [{**bill_view(r, beijing_day(now), rules), "name": name, "relation": relation} for r in rows]
    return {"items": items}


def eligibility(conn: Connection, holder_id: str, now: datetime, connected: Collection[str]) -> dict[str, Any]:
    """What the holder's page shows before enrolment: each condition met or not, and the banks to choose from —
    the region's admitted credit banks the platform is connected to (``connected``) and the e-card is bound to,
    not enrolled with yet. Consent is given on the enrolment form itself: its ``met`` is None (still to give)."""
    person = people.require(conn, holder_id)
    rules = credit_rules(person.region, now)
    enrolled = set(conn.execute(select(CE.c.payment_institution_id).where(CE.c.person_id == holder_id,
                                                                          CE.c.status.in_(("active", "suspended")))).scalars())
    banks = [pi for pi in pis.list_admitted(conn, person.region) if pi.kind == "bank" and pi.id in connected and pi.id not in enrolled]
    bound = [pi for pi in banks if _ecard_bound(conn, holder_id, pi.id)]
    facts = EligibilityFacts(age=person.age_on(beijing_day(now)), insured_active=person.status == "active",
                             consent_version=rules_.CONSENT_VERSION, ecard_bound_to_bank=bool(bound))
    failed = rules_.failed_conditions(facts, rules)
    return {"conditions": [{"code": c.code, "zh": c.zh, "en": c.en, "met": None if c is rules_.CONSENT_GIVEN else c not in failed}
                           for c in rules_.CONDITIONS],
            "eligible": not failed, "banks": [{"payment_institution_id": pi.id, "name": pi.name} for pi in bound],
            "unbound_banks": [{"payment_institution_id": pi.id, "name": pi.name} for pi in banks if pi not in bound],
            "max_line": format_yuan(rules.max_line), "interest_free_days": rules.interest_free_days}


def bill_hospitals(conn: Connection, order_refs: Collection[str]) -> dict[str, str]:
    """The hospital each bill's payment went to, by order number: what a holder knows a bill by."""
    if not order_refs:
        return {}
    rows = conn.execute(select(RS.c.order_ref, I.c.name).join(I, I.c.id == RS.c.institution_id).where(RS.c.order_ref.in_(list(order_refs))))
    return {r.order_ref: r.name for r in rows}


def repayments_in_doubt(conn: Connection, bill_nos: Collection[str]) -> dict[str, list[dict[str, Any]]]:
    """Repayments of these bills whose bank answer is not known yet (pending or unknown), by bill: `resolve_repayment` settles them."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not bill_nos:
        return out
    rows = conn.execute(select(CR).where(CR.c.bill_no.in_(list(bill_nos)), CR.c.state.in_(("pending", "unknown")))
                        .order_by(CR.c.created_at, CR.c.id)).all()
    for r in rows:
        out.setdefault(r.bill_no, []).append({"repayment_no": r.id, "amount": format_yuan(r.amount), "state": r.state,
                                              "payer_psn_no": r.payer_id, "created_at": iso_utc(r.created_at)})
    return out


def require_repayment_party(conn: Connection, repayment_id: str, person_id: str) -> None:
    """Only the payer of a repayment, or the holder whose bill it is, may have it asked about."""
    row = conn.execute(select(CR.c.payer_id, CB.c.person_id).join(CB, CB.c.bill_no == CR.c.bill_no).where(CR.c.id == repayment_id)).first()
    if row is None or person_id not in (row.payer_id, row.person_id):
        raise NotFound("repayment_no", "not_found", "还款记录不存在", "repayment not found")


# ---- the line's ledger account and its state -----------------------------------------------------

def _set_limit(conn: Connection, row: Any, new_limit: int, now: datetime) -> int:
    """Move the line's ledger limit to ``new_limit``; a cut never takes it below what is used."""
    account, grants = rules_.line_account(row.id), rules_.grants_account(row.payment_institution_id)
    n = conn.execute(select(func.count()).select_from(T).where(T.c.ref == row.id, T.c.code == "credit_limit")).scalar_one()
    delta = new_limit - row.limit_fen
    if delta > 0:
        ledger.transfer(conn, client_id=f"credit-limit:{row.id}:{n + 1}", debit=grants, credit=account, amount=delta, code="credit_limit",
                        region=row.region, now=now, ref=row.id)
    elif delta < 0:
        cut = min(-delta, ledger.available(conn, account))
        if cut:
            ledger.transfer(conn, client_id=f"credit-limit:{row.id}:{n + 1}", debit=account, credit=grants, amount=cut,
                            code="credit_limit", region=row.region, now=now, ref=row.id)
        new_limit = row.limit_fen - cut
    conn.execute(update(CE).where(CE.c.id == row.id).values(limit_fen=new_limit, updated_at=now))
    return new_limit


def evaluate(conn: Connection, enrolment_id: str, now: datetime, actor: str) -> str:
    """Apply the overdue rule to the enrolment: suspend when a bill is past due + grace, restore when
    none is (the overdue bills were repaid in full). Returns the status."""
    row = _enrolment(conn, enrolment_id, lock=True)
    if row.status not in ("active", "suspended"):
        return row.status
    rules = credit_rules(row.region, now)
    overdue = rules_.line_suspended([_bill(b) for b in _bills(conn, row.id)], beijing_day(now), rules)
    if overdue and row.status == "active":
        conn.execute(update(CE).where(CE.c.id == row.id).values(status="suspended", suspended_at=now, updated_at=now))
        audit.append(conn, region=row.region, actor=actor, action="credit.suspend", subject=row.person_id,
                     detail={"enrolment": row.id, "reason": "overdue"}, now=now)
        return "suspended"
    if not overdue and row.status == "suspended":
        conn.execute(update(CE).where(CE.c.id == row.id).values(status="active", suspended_at=None, updated_at=now))
        audit.append(conn, region=row.region, actor=actor, action="credit.restore", subject=row.person_id,
                     detail={"enrolment": row.id}, now=now)
        return "active"
    return row.status


# ---- enrolment -------------------------------------------------------------------------------

def _ecard_bound(conn: Connection, person_id: str, pi_id: str) -> bool:
    card = cards.active_ecard(conn, person_id)
    return card is not None and conn.execute(select(B.c.id).where(B.c.card_id == card.id, B.c.payment_institution_id == pi_id,
                                                                  B.c.status == "bound")).first() is not None


def _start_enrolment(conn: Connection, keyring: Keyring, now: datetime, *, holder_id: str, pi_id: str, consent_version: str | None,
                     actor: str) -> tuple[str, datetime, str, int]:
    person = people.require(conn, holder_id)
    rules = credit_rules(person.region, now)
    pi = pis.get(conn, pi_id)
    if pi is None or pi.region != person.region or pi.kind != "bank":
        raise NotFound("payment_institution_id", "not_a_bank", "本统筹区没有该信用支付银行", "no such credit-payment bank in your region")
    if pi.status != "admitted":
        raise Conflict("payment_institution_id", "not_admitted", "该银行未准入或已暂停", "this bank is not admitted (or suspended)")
    rules_.require_eligible(EligibilityFacts(age=person.age_on(beijing_day(now)), insured_active=person.status == "active",
                                             consent_version=consent_version, ecard_bound_to_bank=_ecard_bound(conn, holder_id, pi_id)),
                            rules)
    row = conn.execute(select(CE).where(CE.c.person_id == holder_id, CE.c.payment_institution_id == pi_id).with_for_update()).first()
    if row is not None and row.status in ("active", "suspended"):
        raise Conflict("payment_institution_id", "already_enrolled", "已开通该银行的信用支付", "credit payment with this bank is already enrolled")
    if row is None:
        enrolment_id = _new_no("CE")
        conn.execute(CE.insert().values(id=enrolment_id, region=person.region, person_id=holder_id, payment_institution_id=pi_id,
                                        status="pending", consent_version=consent_version, consent_accepted_at=now, limit_fen=0,
                                        single_limit=rules.max_line, updated_at=now, created_at=now))
    else:  # a pending one (the bank's answer was lost) or one refused before: the same agreement number again
        enrolment_id = row.id
        conn.execute(update(CE).where(CE.c.id == row.id).values(status="pending", consent_version=consent_version, consent_accepted_at=now,
                                                                refusal_code=None, single_limit=rules.max_line, updated_at=now))
    audit.append(conn, region=person.region, actor=actor, action="credit.consent", subject=holder_id,
                 detail={"enrolment": enrolment_id, "payment_institution_id": pi_id, "consent_version": consent_version}, now=now)
    return enrolment_id, now, token_for(keyring, holder_id, pi_id), rules.max_line


def _activate(conn: Connection, now: datetime, enrolment_id: str, agreement_no: str, line: CreditLine, actor: str) -> dict[str, Any]:
    row = _enrolment(conn, enrolment_id, lock=True)
    if row.status == "pending":
        account = rules_.line_account(row.id)
        ledger.ensure_account(conn, account, row.region, "credit_line", now, owner_id=row.person_id, no_overdraft=True)
        ledger.ensure_account(conn, rules_.grants_account(row.payment_institution_id), row.region, "bank_credit_lines", now,
                              owner_id=row.payment_institution_id)
        conn.execute(update(CE).where(CE.c.id == row.id).values(status="active", agreement_no=agreement_no, score=line.score,
                                                                bank_limit=line.limit_fen, bank_status=line.status, updated_at=now))
        limit = _set_limit(conn, _enrolment(conn, row.id), rules_.line_limit(line.limit_fen, credit_rules(row.region, now)), now)
        audit.append(conn, region=row.region, actor=actor, action="credit.enrol", subject=row.person_id,
                     detail={"enrolment": row.id, "score": line.score, "bank_limit": line.limit_fen, "limit": limit}, now=now)
    return enrolment_view(conn, _enrolment(conn, enrolment_id), now)


def _refuse_enrolment(conn: Connection, now: datetime, enrolment_id: str, code: str, actor: str) -> None:
    row = _enrolment(conn, enrolment_id, lock=True)
    conn.execute(update(CE).where(CE.c.id == enrolment_id).values(status="refused", refusal_code=code, updated_at=now))
    audit.append(conn, region=row.region, actor=actor, action="credit.refused", subject=row.person_id,
                 detail={"enrolment": enrolment_id, "bank_code": code}, now=now)


async def enrol(ctx: CreditContext, *, holder_id: str, pi_id: str, consent_version: str | None, actor: str) -> dict[str, Any]:
    """The holder accepts the terms (version recorded with the time); the bank scores them and grants a line."""
    bank = ctx.bank(pi_id)
    now = ctx.now()
    enrolment_id, accepted_at, token, single_limit = await ctx.run(lambda c: _start_enrolment(
        c, ctx.keyring, now, holder_id=holder_id, pi_id=pi_id, consent_version=consent_version, actor=actor))
    try:
        agreement = await bank.enrol(AgreementRequest(enrolment_id, token, single_limit), CreditConsent(consent_version or "", accepted_at))
        line = await bank.credit_line(enrolment_id)
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _refuse_enrolment(c, ctx.now(), enrolment_id, e.code, actor))
        raise rules_.bank_refusal("payment_institution_id", exc.code) from None
    except ChannelError:
        raise BankOutcomeUnknown("payment_institution_id", "开通", "enrolment") from None  # stays pending; enrolling again resends it
    return await ctx.run(lambda c: _activate(c, ctx.now(), enrolment_id, agreement.agreement_no, line, actor))


# ---- the cash share of a payment: reserve → capture | release ------------------------------------

@dataclass(frozen=True)
class Reservation:
    order_ref: str
    enrolment_id: str
    holder_id: str
    institution_id: str
    amount: int
    state: str  # holding | reserved | unknown | captured | released | failed
    bill_no: str | None = None
    error_code: str | None = None


def _reservation(conn: Connection, order_ref: str, *, lock: bool = False) -> Any:
    q = select(RS, CE.c.person_id, CE.c.payment_institution_id, CE.c.agreement_no).join(CE, CE.c.id == RS.c.enrolment_id) \
        .where(RS.c.order_ref == order_ref)
    row = conn.execute(q.with_for_update(of=RS) if lock else q).first()
    if row is None:
        raise NotFound("order_ref", "no_credit_reservation", "该订单没有信用支付占用", "no credit reservation for this order")
    return row


def reservation(conn: Connection, order_ref: str) -> Reservation:
    r = _reservation(conn, order_ref)
    bill = conn.execute(select(CB.c.bill_no).where(CB.c.order_ref == order_ref)).first()
    return Reservation(r.order_ref, r.enrolment_id, r.person_id, r.institution_id, r.amount, r.state, bill.bill_no if bill else None,
                       r.error_code)


def _set_state(conn: Connection, order_ref: str, now: datetime, state: str, **values: Any) -> None:
    conn.execute(update(RS).where(RS.c.order_ref == order_ref).values(state=state, updated_at=now, **values))


def _hold(conn: Connection, now: datetime, *, order_ref: str, holder_id: str, institution_id: str, amount: int, pi_id: str | None,
          actor: str) -> Reservation:
    rules_.check_order_ref(order_ref)
    rules_.check_amount(amount)
    existing = conn.execute(select(RS).where(RS.c.order_ref == order_ref)).first()
    if existing is not None:
        r = reservation(conn, order_ref)
        if (r.holder_id, r.institution_id, r.amount) != (holder_id, institution_id, amount):
            raise Conflict("order_ref", "order_ref_reused", "该订单号已用于另一笔信用支付", "this order number was used for another credit payment")
        return r
    row = holder_enrolment(conn, holder_id, pi_id, lock=True)
    inst = conn.execute(select(I.c.id, I.c.region).where(I.c.id == institution_id)).first()
    if inst is None:
        raise NotFound("institution_id", "not_found", "定点机构不存在", "institution not found")
    if inst.region != row.region:  # the line's account is in the holder's region's books; no clearing for it yet
        raise Conflict("institution_id", "credit_other_region", "信用支付暂限参保地的定点机构", "credit payment is limited to institutions of the holder's region")
    if evaluate(conn, row.id, now, actor) == "suspended":
        raise rules_.suspended_error()
    line_of(conn, row).reserve(amount)  # refuses above the available line, naming the amounts
    ledger.transfer(conn, client_id=f"credit-hold:{order_ref}", debit=rules_.line_account(row.id), credit=institution_cash(institution_id),
                    amount=amount, code="credit_payment", region=row.region, now=now, ref=order_ref, pending=True)
    conn.execute(RS.insert().values(order_ref=order_ref, region=row.region, enrolment_id=row.id, institution_id=institution_id, amount=amount,
                                    state="holding", updated_at=now, created_at=now))
    audit.append(conn, region=row.region, actor=actor, action="credit.hold", subject=holder_id,
                 detail={"order_ref": order_ref, "amount": amount, "institution_id": institution_id}, now=now)
    return reservation(conn, order_ref)


def _void(conn: Connection, now: datetime, order_ref: str, state: str, error_code: str | None = None) -> Reservation:
    r = _reservation(conn, order_ref, lock=True)
    if r.state in ("holding", "reserved", "unknown"):
        ledger.void_pending(conn, client_id=f"credit-void:{order_ref}", pending_client_id=f"credit-hold:{order_ref}", now=now)
        _set_state(conn, order_ref, now, state, error_code=error_code)
        audit.append(conn, region=r.region, actor="bank", action=f"credit.{state}", subject=r.person_id,
                     detail={"order_ref": order_ref, "bank_code": error_code}, now=now)
    return reservation(conn, order_ref)


def _reserved(conn: Connection, now: datetime, order_ref: str, bank_ref: str | None) -> Reservation:
    r = _reservation(conn, order_ref, lock=True)
    if r.state in ("holding", "unknown"):
        _set_state(conn, order_ref, now, "reserved", bank_ref=bank_ref)
    return reservation(conn, order_ref)


def _refused_by_bank(conn: Connection, now: datetime, order_ref: str, code: str) -> Reservation:
    r = _void(conn, now, order_ref, "failed", code)
    if code == "LINE_SUSPENDED_OVERDUE":  # the bank's own overdue rule: note it for the holder's view
        conn.execute(update(CE).where(CE.c.id == r.enrolment_id).values(bank_status="suspended", updated_at=now))
    return r


async def reserve(ctx: CreditContext, *, order_ref: str, holder_id: str, institution_id: str, amount: int, pi_id: str | None = None,
                  actor: str) -> Reservation:
    """Hold ``amount`` (the cash share, fen) of order ``order_ref`` on the holder's line, here and at the bank.

    Returns the reservation in state ``reserved``. Refusals: ``credit_not_enrolled``,
    ``credit_line_suspended``, ``credit_line_exceeded`` (with the available amount), or the bank's
    (committed with the released hold before raising). No definite answer from the bank:
    `BankOutcomeUnknown`, the hold kept (state ``unknown``) until `resolve` (or `release`)."""
    now = ctx.now()
    r = await ctx.run(lambda c: _hold(c, now, order_ref=order_ref, holder_id=holder_id, institution_id=institution_id, amount=amount,
                                      pi_id=pi_id, actor=actor))
    if r.state in ("reserved", "captured"):
        return r
    if r.state == "released":
        raise Conflict("order_ref", "credit_reservation_released", "该信用占用已释放", "the reservation for this order was released")
    if r.state == "failed":
        raise rules_.bank_refusal("amount", r.error_code or "FAILED")
    enrolment = await ctx.run(lambda c: _enrolment(c, r.enrolment_id))
    try:
        result = await ctx.bank(enrolment.payment_institution_id).reserve(PaymentRequest(order_ref, amount, DESCRIPTION,
                                                                                         enrolment.agreement_no))
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _refused_by_bank(c, ctx.now(), order_ref, e.code))
        if exc.code == "LINE_SUSPENDED_OVERDUE":
            raise rules_.suspended_error() from None
        raise rules_.bank_refusal("amount", exc.code) from None
    except ChannelError:
        await ctx.run(lambda c: _set_state(c, order_ref, ctx.now(), "unknown") if _reservation(c, order_ref).state == "holding" else None)
        raise BankOutcomeUnknown("order_ref", "信用额度占用", "the reservation") from None
    return await ctx.run(lambda c: _reserved(c, ctx.now(), order_ref, result.trade_no))


def _record_bill(conn: Connection, now: datetime, r: Any, bill_no: str, bank_due: date, paid_at: datetime) -> None:
    if conn.execute(select(CB.c.bill_no).where(CB.c.order_ref == r.order_ref)).first() is not None:
        return
    paid_on = beijing_day(paid_at)
    due = rules_.due_date(paid_on, credit_rules(r.region, paid_at))
    conn.execute(CB.insert().values(bill_no=bill_no, region=r.region, enrolment_id=r.enrolment_id, person_id=r.person_id,
                                    order_ref=r.order_ref, amount=r.amount, repaid=0, paid_on=paid_on, due_date=due, bank_due_date=bank_due,
                                    updated_at=now, created_at=now))


def _captured(conn: Connection, now: datetime, order_ref: str, paid_at: datetime, line: CreditLine | None, actor: str) -> Reservation:
    r = _reservation(conn, order_ref, lock=True)
    if r.state in ("holding", "reserved", "unknown"):
        ledger.post_pending(conn, client_id=f"credit-capture:{order_ref}", pending_client_id=f"credit-hold:{order_ref}", now=now)
        _set_state(conn, order_ref, now, "captured")
        audit.append(conn, region=r.region, actor=actor, action="credit.capture", subject=r.person_id,
                     detail={"order_ref": order_ref, "amount": r.amount, "institution_id": r.institution_id}, now=now)
    if line is not None:
        for b in line.bills:
            if b.out_trade_no == order_ref:
                _record_bill(conn, now, r, b.bill_no, b.due_date, paid_at)
    return reservation(conn, order_ref)


async def capture(ctx: CreditContext, order_ref: str, *, actor: str) -> Reservation:
    """The payment completed: the bank pays the hospital from the line (the hold is posted to the
    institution's cash account) and the holder owes a bill, due after the region's interest-free days."""
    r = await ctx.run(lambda c: reservation(c, order_ref))
    if r.state == "captured" and r.bill_no is not None:
        return r
    if r.state in ("failed", "released"):
        raise Conflict("order_ref", "credit_reservation_released", "该信用占用已释放，不能扣款", "the reservation was released; it cannot be captured")
    enrolment = await ctx.run(lambda c: _enrolment(c, r.enrolment_id))
    bank = ctx.bank(enrolment.payment_institution_id)
    try:
        paid = await bank.capture(order_ref)
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _refused_by_bank(c, ctx.now(), order_ref, e.code))
        raise rules_.bank_refusal("order_ref", exc.code) from None
    except ChannelError:
        raise BankOutcomeUnknown("order_ref", "扣款", "the capture") from None  # capture again: the bank answers the same payment
    try:
        line: CreditLine | None = await bank.credit_line(enrolment.id)
    except ChannelError:
        line = None  # the bill is picked up by the next sync (a view, a job, a notification)
    return await ctx.run(lambda c: _captured(c, ctx.now(), order_ref, paid.paid_at or ctx.now(), line, actor))


async def release(ctx: CreditContext, order_ref: str, *, actor: str) -> Reservation:
    """The payment was voided: the hold is given back, at the bank and in the ledger."""
    r = await ctx.run(lambda c: reservation(c, order_ref))
    if r.state in ("failed", "released"):
        return r
    if r.state == "captured":
        raise Conflict("order_ref", "credit_already_captured", "银行已向医院付款，请走退款", "the bank has paid the hospital; refund instead")
    enrolment = await ctx.run(lambda c: _enrolment(c, r.enrolment_id))
    try:
        await ctx.bank(enrolment.payment_institution_id).release(order_ref)
    except NotFoundAtChannel:
        pass  # the reservation never reached the bank: nothing to give back there
    except Declined as exc:
        raise rules_.bank_refusal("order_ref", exc.code) from None  # ALREADY_CAPTURED: resolve learns the capture
    except ChannelError:
        raise BankOutcomeUnknown("order_ref", "释放", "the release") from None
    return await ctx.run(lambda c: _void(c, ctx.now(), order_ref, "released"))


async def resolve(ctx: CreditContext, order_ref: str, *, actor: str) -> Reservation:
    """Settle a reservation whose bank answer was lost, by asking the bank (the truth)."""
    r = await ctx.run(lambda c: reservation(c, order_ref))
    if r.state not in ("holding", "unknown", "reserved") and not (r.state == "captured" and r.bill_no is None):
        return r
    enrolment = await ctx.run(lambda c: _enrolment(c, r.enrolment_id))
    bank = ctx.bank(enrolment.payment_institution_id)
    try:
        found = await bank.query(order_ref)
    except NotFoundAtChannel:
        return await ctx.run(lambda c: _void(c, ctx.now(), order_ref, "failed", "NOT_AT_BANK"))
    except ChannelError:
        raise BankOutcomeUnknown("order_ref", "查询", "the query") from None
    if found.status == "processing":
        return await ctx.run(lambda c: _reserved(c, ctx.now(), order_ref, found.trade_no))
    if found.status == "failed":
        return await ctx.run(lambda c: _void(c, ctx.now(), order_ref, "released" if found.error_code == "RELEASED" else "failed",
                                             found.error_code))
    line = await bank.credit_line(enrolment.id)
    return await ctx.run(lambda c: _captured(c, ctx.now(), order_ref, found.paid_at or ctx.now(), line, actor))


# ---- repayment -------------------------------------------------------------------------------

def _bill_row(conn: Connection, bill_no: str, *, lock: bool = False) -> Any:
    q = select(CB).where(CB.c.bill_no == bill_no)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound("bill_no", "not_found", "账单不存在", "bill not found")
    return row


def _pending_sum(conn: Connection, bill_no: str) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(CR.c.amount), 0)).where(
        CR.c.bill_no == bill_no, CR.c.state.in_(("pending", "unknown")))).scalar_one())


def repayment_view(conn: Connection, repayment_id: str, now: datetime) -> dict[str, Any]:
    rp = conn.execute(select(CR).where(CR.c.id == repayment_id)).one()
    bill = _bill_row(conn, rp.bill_no)
    enrolment = _enrolment(conn, bill.enrolment_id)
    return {"repayment_no": rp.id, "state": rp.state, "amount": format_yuan(rp.amount), "payer_psn_no": rp.payer_id,
            "bill": bill_view(bill, beijing_day(now), credit_rules(bill.region, now)), "line_status": enrolment.status}


def _start_repayment(conn: Connection, keyring: Keyring, now: datetime, *, payer_id: str, bill_no: str, amount: int,
                     repayment_id: str | None, actor: str) -> tuple[str, str, str, int]:
    rules_.check_amount(amount)
    bill = _bill_row(conn, bill_no, lock=True)
    rules_.may_repay(payer_id, bill.person_id, families.relation_between(conn, payer_id, bill.person_id))
    enrolment = _enrolment(conn, bill.enrolment_id)
    if repayment_id is not None:
        done = conn.execute(select(CR).where(CR.c.id == repayment_id)).first()
        if done is not None:
            if (done.bill_no, done.payer_id, done.amount) != (bill_no, payer_id, amount):
                raise Conflict("repayment_no", "repayment_no_reused", "该还款编号已用于另一笔还款", "this repayment number was used for another repayment")
            return done.id, done.state, enrolment.payment_institution_id, done.amount
    # Repayments still in flight count as paid: two at once never exceed what is owed.
    Bill(bill.amount, bill.repaid + _pending_sum(conn, bill_no), bill.due_date).repay(amount)
    repayment_id = repayment_id or _new_no("RP")
    conn.execute(CR.insert().values(id=repayment_id, region=bill.region, bill_no=bill_no, payer_id=payer_id, amount=amount, state="pending",
                                    updated_at=now, created_at=now))
    audit.append(conn, region=bill.region, actor=actor, action="credit.repay_start", subject=bill.person_id,
                 detail={"bill_no": bill_no, "repayment_no": repayment_id, "payer": payer_id, "amount": amount}, now=now)
    return repayment_id, "pending", enrolment.payment_institution_id, amount


def _repaid(conn: Connection, now: datetime, repayment_id: str, actor: str) -> dict[str, Any]:
    rp = conn.execute(select(CR).where(CR.c.id == repayment_id).with_for_update()).one()
    if rp.state in ("pending", "unknown"):
        bill = _bill_row(conn, rp.bill_no, lock=True)
        Bill(bill.amount, bill.repaid, bill.due_date).repay(rp.amount)  # the domain's guard, again, on the row we write
        conn.execute(update(CB).where(CB.c.bill_no == bill.bill_no).values(repaid=bill.repaid + rp.amount, updated_at=now))
        conn.execute(update(CR).where(CR.c.id == repayment_id).values(state="succeeded", updated_at=now))
        ledger.ensure_account(conn, rules_.repayments_source(bill.region), bill.region, "external_credit", now)
        ledger.transfer(conn, client_id=f"credit-repay:{repayment_id}", debit=rules_.repayments_source(bill.region),
                        credit=rules_.line_account(bill.enrolment_id), amount=rp.amount, code="credit_repayment", region=bill.region,
                        now=now, ref=bill.bill_no)
        audit.append(conn, region=bill.region, actor=actor, action="credit.repaid", subject=bill.person_id,
                     detail={"bill_no": bill.bill_no, "repayment_no": repayment_id, "payer": rp.payer_id, "amount": rp.amount}, now=now)
        evaluate(conn, bill.enrolment_id, now, actor)
    return repayment_view(conn, repayment_id, now)


def _repayment_failed(conn: Connection, now: datetime, repayment_id: str, code: str) -> None:
    conn.execute(update(CR).where(CR.c.id == repayment_id, CR.c.state.in_(("pending", "unknown")))
                 .values(state="failed", error_code=code, updated_at=now))


def _repayment_unknown(conn: Connection, now: datetime, repayment_id: str) -> None:
    conn.execute(update(CR).where(CR.c.id == repayment_id, CR.c.state == "pending").values(state="unknown", updated_at=now))


async def _send_repayment(ctx: CreditContext, *, repayment_id: str, bill_no: str, amount: int, payer_id: str, pi_id: str,
                          actor: str) -> dict[str, Any]:
    try:
        await ctx.bank(pi_id).repay(bill_no, repayment_id, amount, token_for(ctx.keyring, payer_id, pi_id))
    except Declined as exc:
        await ctx.run(lambda c, e=exc: _repayment_failed(c, ctx.now(), repayment_id, e.code))
        raise rules_.bank_refusal("amount", exc.code) from None
    except ChannelError:
        await ctx.run(lambda c: _repayment_unknown(c, ctx.now(), repayment_id))
        raise BankOutcomeUnknown("repayment_no", "还款", "the repayment") from None
    return await ctx.run(lambda c: _repaid(c, ctx.now(), repayment_id, actor))


async def repay(ctx: CreditContext, *, payer_id: str, bill_no: str, amount: int, repayment_id: str | None = None,
                actor: str) -> dict[str, Any]:
    """Repay (part of) a bill through the bank: the holder, or a linked family member with their own
    payer token. ``repayment_id`` (our out_repayment_no) makes a retry the same repayment."""
    now = ctx.now()
    rid, state, pi_id, amount = await ctx.run(lambda c: _start_repayment(c, ctx.keyring, now, payer_id=payer_id, bill_no=bill_no,
                                                                         amount=amount, repayment_id=repayment_id, actor=actor))
    if state == "succeeded":
        return await ctx.run(lambda c: repayment_view(c, rid, ctx.now()))
    if state == "failed":
        code = await ctx.run(lambda c: conn_error_code(c, rid))
        raise rules_.bank_refusal("amount", code)
    return await _send_repayment(ctx, repayment_id=rid, bill_no=bill_no, amount=amount, payer_id=payer_id, pi_id=pi_id, actor=actor)


def conn_error_code(conn: Connection, repayment_id: str) -> str:
    return conn.execute(select(CR.c.error_code).where(CR.c.id == repayment_id)).scalar_one() or "FAILED"


async def resolve_repayment(ctx: CreditContext, repayment_id: str, *, actor: str) -> dict[str, Any]:
    """Settle a repayment whose answer was lost. The bank has no repayment look-up: we query the bill
    (its repaid amount) and, if it does not show the repayment, send the identical request again —
    the bank keys repayments by our number, so a repeat is never a second payment."""
    rp = await ctx.run(lambda c: c.execute(select(CR, CB.c.enrolment_id, CB.c.repaid.label("bill_repaid"))
                                           .join(CB, CB.c.bill_no == CR.c.bill_no).where(CR.c.id == repayment_id)).first())
    if rp is None:
        raise NotFound("repayment_no", "not_found", "还款记录不存在", "repayment not found")
    if rp.state not in ("pending", "unknown"):
        return await ctx.run(lambda c: repayment_view(c, repayment_id, ctx.now()))
    enrolment = await ctx.run(lambda c: _enrolment(c, rp.enrolment_id))
    try:
        line = await ctx.bank(enrolment.payment_institution_id).credit_line(enrolment.id)
    except ChannelError:
        raise BankOutcomeUnknown("repayment_no", "查询", "the query") from None
    at_bank = next((b for b in line.bills if b.bill_no == rp.bill_no), None)
    others = await ctx.run(lambda c: _pending_sum(c, rp.bill_no)) - rp.amount
    if at_bank is not None and others == 0 and at_bank.repaid_fen >= rp.bill_repaid + rp.amount:
        return await ctx.run(lambda c: _repaid(c, ctx.now(), repayment_id, actor))
    return await _send_repayment(ctx, repayment_id=repayment_id, bill_no=rp.bill_no, amount=rp.amount, payer_id=rp.payer_id,
                                 pi_id=enrolment.payment_institution_id, actor=actor)


# ---- keeping in step with the bank ------------------------------------------------------------

def sync_line(conn: Connection, now: datetime, enrolment_id: str, line: CreditLine, actor: str) -> str:
    """Apply what the bank says about a line (a query's answer, never a notification's body): its
    status and limit, bills we had not recorded, repayments made at the bank directly."""
    row = _enrolment(conn, enrolment_id, lock=True)
    if row.status not in ("active", "suspended"):
        return row.status
    values: dict[str, Any] = {"bank_status": line.status, "score": line.score, "updated_at": now}
    if line.limit_fen != row.bank_limit:
        values["bank_limit"] = line.limit_fen
        _set_limit(conn, row, rules_.line_limit(line.limit_fen, credit_rules(row.region, now)), now)
        audit.append(conn, region=row.region, actor=actor, action="credit.line_change", subject=row.person_id,
                     detail={"enrolment": row.id, "bank_limit": line.limit_fen}, now=now)
    conn.execute(update(CE).where(CE.c.id == row.id).values(**values))
    for b in line.bills:
        r = conn.execute(select(RS, CE.c.person_id).join(CE, CE.c.id == RS.c.enrolment_id)
                         .where(RS.c.order_ref == b.out_trade_no, RS.c.enrolment_id == row.id)).first()
        if r is None:
            continue
        if r.state in ("holding", "reserved", "unknown"):  # the bank paid the hospital; our capture's answer was lost
            _captured(conn, now, r.order_ref, now, None, actor)
        mine = conn.execute(select(CB).where(CB.c.order_ref == r.order_ref)).first()
        if mine is None:
            _record_bill(conn, now, r, b.bill_no, b.due_date, r.updated_at if r.state == "captured" else now)
            mine = _bill_row(conn, b.bill_no)
        extra = min(b.repaid_fen, mine.amount) - mine.repaid
        if extra > 0 and _pending_sum(conn, mine.bill_no) == 0:  # repaid at the bank itself (an in-flight one of ours waits for resolve)
            rid = _new_no("RB")
            conn.execute(CR.insert().values(id=rid, region=mine.region, bill_no=mine.bill_no, payer_id=None, amount=extra, state="pending",
                                            updated_at=now, created_at=now))
            _repaid(conn, now, rid, actor)
    return evaluate(conn, row.id, now, actor)


async def refresh(ctx: CreditContext, enrolment_id: str, *, actor: str) -> str:
    """Query the bank for the line and apply it."""
    enrolment = await ctx.run(lambda c: _enrolment(c, enrolment_id))
    line = await ctx.bank(enrolment.payment_institution_id).credit_line(enrolment_id)
    return await ctx.run(lambda c: sync_line(c, ctx.now(), enrolment_id, line, actor))


def _enrolment_for_notice(conn: Connection, pi_id: str, kind: str, subject: str, agreement_no: str | None) -> Any:
    q = select(CE).where(CE.c.payment_institution_id == pi_id)
    if kind == "agreement":
        q = q.where(CE.c.id == subject)
    elif kind == "credit":
        q = q.where(CE.c.agreement_no == (agreement_no or ""))
    else:
        q = q.where(CE.c.id == select(RS.c.enrolment_id).where(RS.c.order_ref == subject).scalar_subquery())
    return conn.execute(q).first()


async def apply_bank_notification(ctx: CreditContext, pi_id: str, headers: Mapping[str, str], body: bytes) -> tuple[Ack, str]:
    """A bank's notification (repayment, overdue, line or payment change): verified first; then the
    line is queried (the notification is a prompt, the query the truth) and applied in the same unit
    as the durable dedup claim, so a crash can neither lose the event nor apply it twice.
    Returns the answer for the bank and what happened: refused | duplicate | applied | ignored."""
    bank = ctx.bank(pi_id)
    try:
        notice = bank.verify_notification(headers, body)
    except ChannelError:
        return bank.ack(False), "refused"  # the bank resends; nothing unverified is acted on
    _, kind, subject, status = notice.dedup_key
    key = dict(payment_institution_id=pi_id, kind=kind, subject=subject[:64], status=status[:20])
    seen = await ctx.run(lambda c: c.execute(select(CN.c.event_id).filter_by(**key)).first())
    if seen is not None:
        return bank.ack(True), "duplicate"
    enrolment = await ctx.run(lambda c: _enrolment_for_notice(c, pi_id, kind, subject, notice.data.get("agreement_no")))
    line = None
    if enrolment is not None and enrolment.status in ("active", "suspended"):
        try:
            line = await bank.credit_line(enrolment.id)
        except ChannelError:
            return bank.ack(False), "refused"  # unanswered: the bank sends it again and we query again

    def unit(conn: Connection) -> str:
        region = enrolment.region if enrolment is not None else "000000"
        if not insert_ignore(conn, CN, {**key, "region": region, "event_id": notice.event_id[:64], "created_at": ctx.now()}):
            return "duplicate"
        if line is None:
            return "ignored"
        sync_line(conn, ctx.now(), enrolment.id, line, f"bank:{pi_id}")
        return "applied"
    return bank.ack(True), await ctx.run(unit)


def overdue_bills(conn: Connection, now: datetime, region: str | None = None) -> list[dict[str, Any]]:
    """Bills past their due date and not repaid, with the line's state: the operators' list."""
    today = beijing_day(now)
    q = select(CB, CE.c.status.label("line_status"), CE.c.payment_institution_id).join(CE, CE.c.id == CB.c.enrolment_id) \
        .where(CB.c.repaid < CB.c.amount, CB.c.due_date < today).order_by(CB.c.due_date, CB.c.bill_no)
    if region:
        q = q.where(CB.c.region == region)
    out = []
    for r in conn.execute(q).all():
        out.append({**bill_view(r, today, credit_rules(r.region, now)), "region": r.region, "line_status": r.line_status,
                    "payment_institution_id": r.payment_institution_id, "days_overdue": (today - r.due_date).days})
    return out


def parse_bill_no(bill_no: str) -> str:
    if not (1 <= len(bill_no) <= 40) or not bill_no.isascii() or not bill_no.replace("-", "").replace("_", "").isalnum():
        raise InputError("bill_no", "invalid_bill_no", "账单号格式不正确", "the bill number has the wrong format")
    return bill_no
