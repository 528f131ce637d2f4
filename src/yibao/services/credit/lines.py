"""Credit payment (信用支付): the line as the platform holds it — reading, its ledger account and state,
the overdue list. The use cases are beside it: enrolment, reservations (the cash share of a payment),
repayments, and sync (keeping in step with the bank: queries and notifications).

Every use case beside it needs the bank, so each is an async function taking the one `Context`: it runs
units of work through ``ctx.run`` and calls the bank (``await ctx.bank(pi_id)``) *between* them, never inside one: a first unit checks and
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

import logging
import secrets
from collections.abc import Collection
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from yibao.channels import ChannelError, holder_token
from yibao.crypto.pii import Keyring, mask_name
from yibao.domain import credit as rules_
from yibao.domain.credit import BankOutcomeUnknown, Bill, CreditRules, EligibilityFacts, Line
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.money import format_yuan
from yibao.formats.timefmt import iso_utc
from yibao.policies.loader import builtin_years
from yibao.services.agency import payment_institutions as pis
from yibao.services.agency.policies import policy_for
from yibao.services.books import audit, ledger
from yibao.services.people import bindings, families
from yibao.services.people import persons as people
from yibao.store.rows import one_or
from yibao.store.tables import credit_bills as CB
from yibao.store.tables import credit_enrolments as CE
from yibao.store.tables import credit_reservations as RS
from yibao.store.tables import institutions as I
from yibao.store.tables import transfers as T

log = logging.getLogger("yibao.credit")

HOLDER_TOKEN_PURPOSE = "holder-token"

DESCRIPTION = "医疗费用个人现金部分"  # what the bank's statement shows for a payment: no diagnosis, no fund share


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


def outcome_unknown(field: str, what_zh: str, what_en: str, subject: str, cause: ChannelError) -> BankOutcomeUnknown:
    """The error for a bank that gave no definite answer, said once in the log with the channel's own error (a timeout,
    a lost connection, a 5xx, a bad signature): the holder is told only that it will be queried, an operator needs
    which. The caller raises it ``from cause``, so a traceback names it too."""
    log.warning("credit %s %s: the bank gave no definite answer (%s: %s)", what_en, subject, type(cause).__name__, cause.code)
    return BankOutcomeUnknown(field, what_zh, what_en)


def new_no(prefix: str) -> str:
    return prefix + secrets.token_hex(11).upper()  # 24 letters or digits: a valid order number everywhere


def enrolment_row(conn: Connection, enrolment_id: str, *, lock: bool = False) -> Any:
    return one_or(conn, CE, CE.c.id == enrolment_id, lock=lock,
                  missing=NotFound("enrolment", "not_found", "信用支付签约不存在", "credit enrolment not found"))


def holder_enrolment(conn: Connection, holder_id: str, pi_id: str | None = None, *, lock: bool = False) -> Any:
    """The holder's usable (active or suspended) enrolment, at ``pi_id`` or the most recent one."""
    q = select(CE).where(CE.c.person_id == holder_id, CE.c.status.in_(("active", "suspended")))
    if pi_id is not None:
        q = q.where(CE.c.payment_institution_id == pi_id)
    return one_or(conn, q.order_by(CE.c.created_at.desc(), CE.c.id).limit(1), lock=lock,
                  missing=Conflict("credit", "credit_not_enrolled", "尚未开通信用支付", "credit payment is not enrolled"))


def bill_rows(conn: Connection, enrolment_id: str) -> list[Any]:
    return conn.execute(select(CB).where(CB.c.enrolment_id == enrolment_id).order_by(CB.c.due_date, CB.c.bill_no)).all()


def bill_of(row: Any) -> Bill:
    return Bill(row.amount, row.repaid, row.due_date)


def bill_view(row: Any, today: date, rules: CreditRules) -> dict[str, Any]:
    b = bill_of(row)
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
    rows = bill_rows(conn, row.id)
    bills = [bill_view(b, today, rules) for b in rows]
    owed = sum(bill_of(b).outstanding for b in rows)
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
    bound = [pi for pi in banks if bindings.is_bound(conn, holder_id, pi.id)]
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


def set_limit(conn: Connection, row: Any, new_limit: int, now: datetime) -> int:
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
    row = enrolment_row(conn, enrolment_id, lock=True)
    if row.status not in ("active", "suspended"):
        return row.status
    rules = credit_rules(row.region, now)
    overdue = rules_.line_suspended([bill_of(b) for b in bill_rows(conn, row.id)], beijing_day(now), rules)
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


def lines_at(conn: Connection, pi_ids: Collection[str]) -> tuple[list[Any], list[Any]]:
    """The enrolled lines (active or suspended, signed) at these banks, and their bills: what a bank that lost
    its books (the demo's sandbox, made afresh at each start) is told again."""
    rows = conn.execute(select(CE).where(CE.c.payment_institution_id.in_(list(pi_ids)), CE.c.status.in_(("active", "suspended")),
                                         CE.c.agreement_no.is_not(None))).all()
    bills = conn.execute(select(CB).where(CB.c.enrolment_id.in_([r.id for r in rows]))).all() if rows else []
    return rows, bills
