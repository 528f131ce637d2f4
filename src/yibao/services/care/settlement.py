"""Settle a visit: price it with the engine, move the money in the ledger, update the year's totals.

One unit of work does it all (the caller's transaction), taking its locks in the one global order
(docs/architecture.md): the settlement row, the visit, the person's accumulator row, the accounts (the
paying personal account first, then by id), the audit head last (audit.py). The accumulator row makes
two settlements of one person serial, so they never race past a cap; the paying personal account is
guarded by the ledger, so it never goes below zero; a message id is claimed once, so a retry or
a late message after a reversal (冲正) cannot settle twice.

Cancelling (2208) and reversing (2601) post the opposite transfers and subtract the same
accumulator deltas, which restores balances and the year's totals exactly.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.domain.bill import ACCUMULATOR_FIELDS, AccountChoice, Accumulators
from yibao.domain.errors import Conflict, Forbidden, InputError, NotFound
from yibao.domain.family import GuardianFacts
from yibao.domain.ledger import (
    FUND_LAYERS,
    InsufficientFunds,
    clearing_account,
    fund_account,
    institution_cash,
    institution_receivable,
    patient_cash_source,
    person_account,
)
from yibao.domain.money import parse_yuan
from yibao.domain.settlement import Settlement
from yibao.domain.settlement import settle as price
from yibao.formats import fastjson
from yibao.formats.national import settlement_document
from yibao.formats.timefmt import iso_utc
from yibao.services.agency import institutions as agency
from yibao.services.agency.institutions import Institution
from yibao.services.agency.policies import policies_for
from yibao.services.books import accumulators, audit, ledger
from yibao.services.care import bills, presence, visits
from yibao.services.people import families
from yibao.services.people import persons as people
from yibao.store.db import Retry, unit_memo
from yibao.store.sql import Sql, as_date, as_datetime
from yibao.store.tables import messages as M
from yibao.store.tables import settlements as S
from yibao.store.upsert import insert_ignore

SETTLE_INFNO = "2207"
SETTLE_INFNOS = ("2207", "2304")  # outpatient and inpatient settlement: one settle, one message id space

# The settle path's statements (see yibao.store.sql for why these are not Core).
_MESSAGE = Sql("SELECT infno, state, ref FROM messages WHERE institution_id = :institution_id AND msgid = :msgid")
_CLAIM_MESSAGE = Sql("""INSERT INTO messages (msgid, region, institution_id, infno, state, ref, created_at)
                        VALUES (:msgid, :region, :institution_id, '2207', 'done', :ref, :now) ON CONFLICT DO NOTHING RETURNING ref""")
_VISIT = Sql("""SELECT id, region, insured_region, person_id, institution_id, kind, status, visit_date, admission_number, filing
                FROM visits WHERE id = :id AND institution_id = :institution_id {lock}""")
_PATIENT = Sql("""SELECT id, region, insurance_type, tier, employment_status, hardship, birth_date, status
                  FROM persons WHERE id = :id""")
# The columns a fresh visit's lines carry too (visits.FreshLine): one list, so the two never differ.
_LINES = Sql(f"""SELECT {', '.join(visits.FreshLine._fields)} FROM fee_lines WHERE visit_id = :visit_id AND status = 'active'
                 ORDER BY id""")
_LOCK_VISIT = Sql("SELECT id FROM visits WHERE id = :id {lock}")
_SETTLED_DOC = Sql("SELECT visit_id, document FROM settlements WHERE institution_id = :institution_id AND msgid = :msgid")
_INSERT_SETTLEMENT = Sql("""INSERT INTO settlements (id, region, insured_region, visit_id, person_id, institution_id, msgid, status, year,
        total, fund_total, pool_fund, serious_illness, large_amount, other, assistance, account_pay, account_id, cash_pay, policy_version,
        accumulator_delta, document, created_at)
    VALUES (:id, :region, :insured_region, :visit_id, :person_id, :institution_id, :msgid, :status, :year, :total, :fund_total,
        :pool_fund, :serious_illness, :large_amount, :other, :assistance, :account_pay, :account_id, :cash_pay, :policy_version,
        :accumulator_delta, :document, :now)""")


_Patient = bills.Patient


def _load_visit(conn: Connection, institution_id: str, visit_id: str, *, lock: bool) -> visits.Visit:
    if not lock:
        return visits.get(conn, institution_id, visit_id)
    r = _VISIT(conn, {"id": visit_id, "institution_id": institution_id}).first()
    if r is None:
        raise NotFound("visit_id", "not_found", "就诊记录不存在", "visit not found")
    return visits.Visit(r.id, r.region, r.insured_region, r.person_id, r.institution_id, r.kind, r.status, as_date(r.visit_date),
                        int(r.admission_number), r.filing, None, None)


def _patient_of(r: Any) -> _Patient:
    """The engine's patient from a person as read (a row, or the Person a unit read already)."""
    return _Patient(r.id, r.region, r.insurance_type, r.tier, r.employment_status == "retired", r.hardship, as_date(r.birth_date))


def _load_patient(conn: Connection, person_id: str) -> _Patient:
    r = _PATIENT(conn, {"id": person_id}).first()
    if r is None:
        raise NotFound("person_id", "not_found", "参保人不存在", "insured person not found")
    return _patient_of(r)


@dataclass(frozen=True)
class AccountRequest:
    """Whether a personal account pays and whose: self, a guardian's (child) or a relative's (mutual aid)."""

    use: bool = False
    payer: str = "self"
    payer_person_id: str | None = None


def _account_choice(conn: Connection, patient: _Patient, req: AccountRequest, region: str) -> tuple[AccountChoice, str | None]:
    """The engine's account input, read from the database, and the ledger account that would pay."""
    if not req.use:
        return AccountChoice(use=False), None
    if req.payer == "self":
        account = person_account(patient.id)
        # Locked as read: the balance reported back must be the one debited.
        return AccountChoice(use=True, balance=ledger.lock_available(conn, account), payer="self"), account
    if req.payer_person_id is None:
        raise InputError("account.payer_person_id", "required", "须指定付款账户的参保人", "name the person whose account pays")
    if req.payer_person_id == patient.id:
        raise InputError("account.payer_person_id", "payer_is_patient", "付款人即本人时请用 payer=self", "use payer self for the patient's own account")
    payer = people.get(conn, req.payer_person_id)
    if payer is None:
        raise NotFound("account.payer_person_id", "not_found", "付款账户的参保人不存在", "the paying person was not found")
    account = person_account(payer.id)
    ledger.lock_account(conn, account)
    if req.payer == "guardian":
        facts = families.guardian_facts(conn, guardian_id=payer.id, child_id=patient.id, region=payer.region)
        return AccountChoice(use=True, balance=facts.guardian_balance, payer="guardian", guardian=facts), account
    if req.payer == "family":
        relation = families.mutual_aid_relation(conn, holder_id=payer.id, member_id=patient.id)
        if relation is None:
            raise Forbidden("account.payer_person_id", "no_mutual_aid_link", "该参保人未授权家庭共济", "that person has not shared their account with this patient")
        return AccountChoice(use=True, balance=ledger.available(conn, account), payer="family", relation=relation), account
    raise InputError("account.payer", "invalid_choice", "付款方应为 self | guardian | family", "must be self, guardian or family")


def _price(conn: Connection, visit: visits.Visit, req: AccountRequest, level: str, *,
           lock: bool, fresh: visits.Fresh | None = None) -> tuple[Settlement, str | None, _Patient, list[Any]]:
    """The visit priced, the account that would pay, the patient, and the active fee rows in the settlement's line order.
    ``fresh``: the visit as this unit opened it, its patient and lines not read back."""
    if fresh is not None:
        patient = _patient_of(fresh.patient)
        rows: list[Any] = list(fresh.lines)
    else:
        patient = _load_patient(conn, visit.person_id)
        rows = list(_LINES(conn, {"visit_id": visit.id}))
    lines = tuple(bills.fee_line(r) for r in rows)
    if not lines:
        raise Conflict("visit_id", "no_fee_lines", "该就诊没有有效的费用明细", "the visit has no fee lines to settle")
    year = visit.visit_date.year
    policy, catalogue = policies_for(patient.region, visit.region, year)
    if lock:
        acc, _ = accumulators.lock(conn, patient.region, patient.id, year)
    else:
        acc = accumulators.read(conn, patient.id, year)
    choice, paying_account = _account_choice(conn, patient, req, patient.region)
    bill = bills.build(patient, treatment_region=visit.region, visit_date=visit.visit_date, kind=visit.kind, level=level,
                       admission_number=visit.admission_number, filing=visit.filing, lines=lines, accumulators=acc, account=choice)
    return price(bill, policy, catalogue), paying_account, patient, rows


def _check_settleable(visit: visits.Visit) -> None:
    if visit.kind == "inpatient" and visit.status == "admitted":
        raise Conflict("visit_id", "not_discharged", "住院费用在出院后结算", "an inpatient stay is settled after discharge")
    if visit.status not in ("open", "discharged"):
        raise Conflict("visit_id", f"visit_{visit.status}", "该就诊已结算", f"the visit is {visit.status}")


def _document(s: Settlement, *, setl_id: str, visit: visits.Visit, patient: _Patient, msgid: str, status: str,
              setl_time: datetime | None, rows: list[Any]) -> dict[str, Any]:
    doc = settlement_document(s)
    if len(rows) == len(doc["lines"]):  # each line's serial and fee time (an inpatient stay's receipt lists them by day)
        for line, row in zip(doc["lines"], rows, strict=True):
            line.update(feedetl_sn=row.feedetl_sn, fee_ocur_time=iso_utc(as_datetime(row.fee_ocur_time)))
    doc.update(setl_id=setl_id, mdtrt_id=visit.id, psn_no=patient.id, insutype=patient.insurance_type, med_type=visit.kind,
               fixmedins_code=visit.institution_id, msgid=msgid, status=status,
               setl_time=setl_time.isoformat() if setl_time else None)
    return doc


def _owner(visit: visits.Visit, req: AccountRequest) -> str:
    """Whose personal account the request would debit (asked before anything about that account is read)."""
    if req.payer == "self":
        return visit.person_id
    if req.payer_person_id is None:
        raise InputError("account.payer_person_id", "required", "须指定付款账户的参保人", "name the person whose account pays")
    return req.payer_person_id


def presettle(conn: Connection, now: datetime | None = None, *, institution: Institution, visit_id: str, account: AccountRequest,
              holder_present: bool = False) -> dict[str, Any]:
    """Price the visit as it stands (2206); nothing is stored and no money moves.

    With the account, the answer shows the account's share and balance: only once its owner has presented a
    credential for this visit here (services/care/presence.py; looked at, not used) — or ``holder_present``, the
    owner's own view in the app (a bill's preview). ``now`` is needed then."""
    visit = visits.get(conn, institution.id, visit_id)
    _check_settleable(visit)
    if account.use and not holder_present:  # nothing about the account is read before its owner is present
        if now is None:
            raise ValueError("a pre-settlement with the account needs the time, to look for its owner's presence")
        if presence.covered(conn, now, institution_id=institution.id, visit_id=visit.id, owner_id=_owner(visit, account)) is None:
            raise presence.required()
    s, _, patient, rows = _price(conn, visit, account, institution.level, lock=False)
    return _document(s, setl_id="", visit=visit, patient=patient, msgid="", status="presettled", setl_time=None, rows=rows)


def year_totals(conn: Connection, now: datetime, *, institution: Institution, visit_id: str, year: int | None = None) -> Accumulators:
    """The visit's person's totals for ``year`` (default: the visit's) — the deductible used, what each fund has paid
    (5206). Like the balance (`presettle`), not for the counter before the person is there: only once a credential
    was presented for this visit here, else `presence_required`."""
    visit = visits.get(conn, institution.id, visit_id)
    if presence.covered(conn, now, institution_id=institution.id, visit_id=visit.id, owner_id=visit.person_id) is None:
        raise Forbidden("visit_id", "presence_required", "查询人员累计信息须参保人本人到场出示凭证（该就诊）",
                        "the year's totals are shown only once the person has presented a credential for this visit")
    return accumulators.read(conn, visit.person_id, visit.visit_date.year if year is None else year)


def settle(conn: Connection, now: datetime, *, institution: Institution, visit_id: str, msgid: str, account: AccountRequest,
           actor: str, pending: bool = False, hold_timeout: timedelta | None = None, cash_leg: bool = True,
           presence_id: str | None = None, priced: list[Any] | None = None) -> dict[str, Any]:
    """Settle the visit (2207): the fund, account and cash shares in one step, or nothing.

    With the account (``account.use``), a credential the account's owner presented here for this visit is used
    up in this unit (`presence.claim`; ``presence_id``: that one), else `403 presence_required` and nothing is written.

    ``priced``: when given, the Settlement priced now is appended to it (a payment's hold takes its split from it instead
    of reading the row back); a replayed message appends nothing.

    ``pending``: the first phase of a two-phase settlement (a payment order). Every leg is held as a
    pending transfer (expiring after ``hold_timeout``), the year's totals are reserved, the visit is
    ``settling`` and the settlement ``pending`` until `post_settlement` or `void_settlement`.
    """
    if not msgid or len(msgid) > 40:
        raise InputError("msgid", "invalid_msgid", "报文ID应为1–40个字符", "must be a 1–40 character message id")
    ids = {"institution_id": institution.id, "msgid": msgid}
    claimed = _MESSAGE(conn, ids).first()
    if claimed is not None:
        row = _SETTLED_DOC(conn, ids).first() if claimed.infno == SETTLE_INFNO and claimed.state == "done" else None
        if row is not None and row.visit_id == visit_id:
            return json.loads(row.document)  # the same message again: the same answer
        if row is not None:  # replaying another visit's answer would record a payment that never happened
            raise Conflict("msgid", "msgid_used_for_other_visit", "该报文ID已用于另一就诊的结算",
                           "this message id already settled a different visit")
        raise Conflict("msgid", "msgid_used", "该报文ID已使用或已被冲正", "this message id was already used or reversed")
    fresh = visits.fresh(conn, visit_id)  # opened with its lines by this unit (a payment's): not read back, nor locked (it is ours)
    if fresh is not None and fresh.visit.institution_id != institution.id:
        fresh = None
    visit = fresh.visit if fresh is not None else _load_visit(conn, institution.id, visit_id, lock=True)
    _check_settleable(visit)
    if not pending:  # a payment order's hold (pending) is the bill being paid; anything else must wait for its withdrawal
        visits.refuse_if_billed(conn, visit_id)
    setl_id = f"S{now:%Y%m%d}{secrets.token_hex(6).upper()}"
    # Nobody moves a holder's money without the holder: a credential the account's owner presented here for this visit,
    # used up in this unit — before anything about the account is read.
    present = presence.claim(conn, now, institution_id=institution.id, visit_id=visit.id, owner_id=_owner(visit, account),
                             setl_id=setl_id, presence_id=presence_id) if account.use else None
    s, paying_account, patient, rows = _price(conn, visit, account, institution.level, lock=True, fresh=fresh)
    if _CLAIM_MESSAGE(conn, {"msgid": msgid, "region": visit.region, "institution_id": institution.id, "ref": setl_id, "now": now}).first() is None:
        raise Retry()  # a concurrent request claimed it first; re-run and answer as it did

    receivable = institution_receivable(institution.id)
    paid_from = [(layer, fund_account(patient.region, layer), amount) for layer, amount in (
        ("pool", s.pool_fund), ("serious_illness", s.serious_illness), ("large_amount", s.large_amount), ("other", s.other),
        ("assistance", s.assistance))]
    if s.other:  # regions made before the oth_pay layer (0030) get its fund account on first use
        ledger.ensure_account(conn, fund_account(patient.region, "other"), patient.region, "fund_other", now)
    if s.account_pay:
        assert paying_account is not None
        paid_from.append(("account", paying_account, s.account_pay))
    legs = []
    for name, source, amount in paid_from:
        if visit.region == patient.region:
            legs.append(ledger.Leg(f"{setl_id}:{name}", source, receivable, amount, patient.region))
        else:  # through the two regions' clearing accounts: each region's books balance on their own
            legs.append(ledger.Leg(f"{setl_id}:{name}", source, clearing_account(patient.region, visit.region), amount, patient.region))
            legs.append(ledger.Leg(f"{setl_id}:{name}:cleared", clearing_account(visit.region, patient.region), receivable, amount,
                                   visit.region))
    if visit.region != patient.region and legs:
        ledger.ensure_account(conn, clearing_account(patient.region, visit.region), patient.region, "clearing", now, owner_id=visit.region)
        ledger.ensure_account(conn, clearing_account(visit.region, patient.region), visit.region, "clearing", now, owner_id=patient.region)
    if cash_leg:  # without: the cash reaches the hospital by another transfer (a credit line's: services/credit/)
        legs.append(ledger.Leg(f"{setl_id}:cash", patient_cash_source(visit.region), institution_cash(institution.id), s.cash_pay,
                               visit.region))
    try:
        if pending:
            ledger.hold_many(conn, legs, code="settlement", ref=setl_id, now=now, timeout=hold_timeout)
        else:
            ledger.post_many(conn, legs, code="settlement", ref=setl_id, now=now)
    except InsufficientFunds:
        raise Retry() from None  # the balance moved since it was read: price again
    accumulators.add(conn, patient.id, visit.visit_date.year, s.accumulator_delta)
    status = "pending" if pending else "settled"
    doc = _document(s, setl_id=setl_id, visit=visit, patient=patient, msgid=msgid, status=status, setl_time=now, rows=rows)
    _INSERT_SETTLEMENT(conn, dict(
        id=setl_id, status=status, region=visit.region, insured_region=patient.region, visit_id=visit.id, person_id=patient.id,
        institution_id=institution.id, msgid=msgid, year=visit.visit_date.year, total=s.total,
        fund_total=s.fund_total, pool_fund=s.pool_fund, serious_illness=s.serious_illness, large_amount=s.large_amount,
        other=s.other, assistance=s.assistance, account_pay=s.account_pay, account_id=paying_account if s.account_pay else None, cash_pay=s.cash_pay,
        policy_version=s.policy_version, accumulator_delta=fastjson.dumps(s.accumulator_delta.as_dict()),
        document=fastjson.dumps(doc), now=now))
    visits.set_status(conn, visit.id, "settling" if pending else "settled", now)
    audit.append(conn, region=visit.region, actor=actor, action="settlement.hold" if pending else "settlement.settle", subject=setl_id, detail={
        "visit": visit.id, "person": patient.id, "insured_region": patient.region, "total": s.total, "fund_total": s.fund_total,
        "account_pay": s.account_pay, "account": paying_account if s.account_pay else None, "cash_pay": s.cash_pay,
        "policy": s.policy_version, "msgid": msgid, "presence": f"{present.kind}:{present.id}" if present else None}, now=now)
    if priced is not None:
        priced.append(s)
    return doc


def _lock_person(conn: Connection, row: Any) -> None:
    """After the settlement row: its visit, then the person's accumulator row — the order settle takes them in."""
    _LOCK_VISIT(conn, {"id": row.visit_id}).first()
    accumulators.lock(conn, row.insured_region, row.person_id, row.year)


def _undo(conn: Connection, now: datetime, row: Any, *, reason: str, actor: str) -> dict[str, Any]:
    _lock_person(conn, row)
    # The money that moved: single-phase legs, or held legs that were posted (their post rows repeat them).
    legs = [ledger.Leg(f"{t.client_id}:{reason}", t.credit_account_id, t.debit_account_id, t.amount, t.region)
            for t in ledger.journal(conn, row.id, "settlement") if t.kind in ("single", "pending") and t.state == "posted"]
    ledger.post_many(conn, legs, code=reason, ref=row.id, now=now)
    delta = Accumulators(**{k: v for k, v in json.loads(row.accumulator_delta).items() if k in ACCUMULATOR_FIELDS})
    accumulators.add(conn, row.person_id, row.year, delta.negated())
    conn.execute(update(S).where(S.c.id == row.id).values(status="cancelled", cancelled_at=now, cancel_reason=reason))
    conn.execute(update(M).where(M.c.institution_id == row.institution_id, M.c.msgid == row.msgid)
                 .values(state="reversed" if reason == "reversal" else "done"))
    visit = conn.execute(select(visits.V).where(visits.V.c.id == row.visit_id)).one()
    visits.set_status(conn, row.visit_id, "discharged" if visit.kind == "inpatient" else "open", now)
    audit.append(conn, region=row.region, actor=actor, action=f"settlement.{reason}", subject=row.id,
                 detail={"visit": row.visit_id, "person": row.person_id, "total": row.total, "account_pay": row.account_pay}, now=now)
    doc = json.loads(row.document)
    doc.update(status="cancelled", cancel_reason=reason, cancelled_at=now.isoformat())
    conn.execute(update(S).where(S.c.id == row.id).values(document=json.dumps(doc, ensure_ascii=False)))
    return doc


def cancel(conn: Connection, now: datetime, *, institution: Institution, setl_id: str, actor: str) -> dict[str, Any]:
    """Cancel a whole settlement (2208); its items may then be changed and the visit settled again."""
    row = conn.execute(select(S).where(S.c.id == setl_id, S.c.institution_id == institution.id).with_for_update()).first()
    if row is None:
        raise NotFound("setl_id", "not_found", "结算记录不存在", "settlement not found")
    if row.status == "cancelled":
        return json.loads(row.document)  # already cancelled: cancelling again changes nothing
    _refuse_unsettled(row)
    _refuse_paid_through_institution(conn, row)
    return _undo(conn, now, row, reason="cancel", actor=actor)


def reverse(conn: Connection, now: datetime, *, institution: Institution, omsgid: str, oinfno: str, actor: str) -> dict[str, Any]:
    """Reverse (冲正, 2601) the settlement sent as message ``omsgid``.

    When that message never arrived, the id is claimed as reversed, so if it arrives late it is
    refused instead of settling a bill the hospital has already written off (no 单边账).
    """
    if oinfno not in SETTLE_INFNOS:
        raise InputError("oinfno", "not_reversible", "只能冲正结算交易（2207 / 2304）", "only a settlement (2207 / 2304) can be reversed here")
    if not omsgid or len(omsgid) > 40:
        raise InputError("omsgid", "invalid_msgid", "原报文ID应为1–40个字符", "must be a 1–40 character message id")
    if insert_ignore(conn, M, dict(msgid=omsgid, region=institution.region, institution_id=institution.id, infno=SETTLE_INFNO,
                                   state="reversed_before_arrival", ref=None, created_at=now)):
        audit.append(conn, region=institution.region, actor=actor, action="settlement.reversal_before_arrival", subject=omsgid,
                     detail={"institution": institution.id}, now=now)
        return {"omsgid": omsgid, "status": "reversed_before_arrival", "setl_id": None}
    # The settlement row before the message row: cancel and _undo take them in that order.
    row = conn.execute(select(S).where(S.c.institution_id == institution.id, S.c.msgid == omsgid).with_for_update()).first()
    msg = conn.execute(select(M).where(M.c.institution_id == institution.id, M.c.msgid == omsgid).with_for_update()).one()
    if msg.state == "reversed_before_arrival":
        return {"omsgid": omsgid, "status": "reversed_before_arrival", "setl_id": None}
    if row is None:
        raise Retry()  # claimed by a settlement still committing
    if row.status == "cancelled":
        doc = json.loads(row.document)
        return {"omsgid": omsgid, "status": "reversed" if row.cancel_reason == "reversal" else "cancelled", "setl_id": row.id, "settlement": doc}
    _refuse_unsettled(row)
    _refuse_paid_through_institution(conn, row)
    doc = _undo(conn, now, row, reason="reversal", actor=actor)
    return {"omsgid": omsgid, "status": "reversed", "setl_id": row.id, "settlement": doc}


def get_settlement(conn: Connection, *, institution: Institution, setl_id: str) -> dict[str, Any]:
    row = conn.execute(select(S.c.document).where(S.c.id == setl_id, S.c.institution_id == institution.id)).first()
    if row is None:
        raise NotFound("setl_id", "not_found", "结算记录不存在", "settlement not found")
    return json.loads(row.document)


def paying_account_owner(conn: Connection, *, institution: Institution, setl_id: str) -> str | None:
    """Whose personal account paid the settlement's account share (the patient, a guardian, a relative), if any."""
    account = conn.execute(select(S.c.account_id).where(S.c.id == setl_id, S.c.institution_id == institution.id)).scalar()
    return account.split(":", 1)[1] if account and account.startswith("person:") else None


def _refuse_paid_through_institution(conn: Connection, row: Any) -> None:
    """A settlement a payment order carried had its cash collected by a payment institution: cancelling or
    reversing it here would give back the fund and account shares but leave the holder's cash with the
    institution. Its refund goes through the payment (services/payments/refunds.py), which refunds the cash too."""
    from yibao.store.tables import payment_orders as O

    order = conn.execute(select(O.c.id).where(O.c.setl_id == row.id)).scalar()
    if order is not None and row.status == "settled":
        raise Conflict("setl_id", "settlement_paid_by_payment", f"该结算的个人自付已由支付机构收取，请通过支付 {order} 办理退款",
                       f"this settlement's cash went through a payment institution: refund it through payment {order}")


def _refuse_unsettled(row: Any) -> None:
    if row.status == "pending":
        raise Conflict("setl_id", "settlement_pending", "该结算正在支付中，尚未完成，不能撤销", "the settlement is held for a payment still in progress")
    if row.status == "partial":
        raise Conflict("setl_id", "settlement_partially_refunded", "该结算已部分退款，请通过支付退款接口办理其余部分",
                       "part of this settlement was refunded: refund the rest through the payment's refunds")
    if row.status == "voided":
        raise Conflict("setl_id", "settlement_voided", "该结算已作废（支付未完成），无需撤销", "the settlement was voided (its payment did not complete)")


_PENDING_ROW = Sql("""SELECT id, region, insured_region, visit_id, person_id, institution_id, msgid, status, year, total, account_pay,
                      cash_pay, accumulator_delta, document, pool_fund, serious_illness, large_amount, other, assistance, account_id
                      FROM settlements WHERE id = :id {lock}""")
_RESTATE = Sql("UPDATE settlements SET status = :status, document = :document WHERE id = :id")
_SPLIT = Sql("SELECT pool_fund, serious_illness, large_amount, other, assistance, account_id FROM settlements WHERE id = :id")


def _pending_row(conn: Connection, setl_id: str) -> Any:
    row = _PENDING_ROW(conn, {"id": setl_id}).first()
    if row is None:
        raise NotFound("setl_id", "not_found", "结算记录不存在", "settlement not found")
    memo = unit_memo(conn)
    if memo is not None:  # a settlement's split never changes: the payment's receipt in this unit takes it from here (`split`)
        memo[("split", row.id)] = row
    return row


def split(conn: Connection, setl_id: str) -> Any:
    """A settlement's fund layers and paying account (pool_fund, serious_illness, large_amount, other, assistance,
    account_id), or None: as this unit read them already, else from the table."""
    memo = unit_memo(conn, create=False)
    row = memo.get(("split", setl_id)) if memo else None
    return row if row is not None else _SPLIT(conn, {"id": setl_id}).first()


def _restate(conn: Connection, row: Any, status: str, now: datetime, **extra: Any) -> dict[str, Any]:
    doc = json.loads(row.document)
    doc.update(status=status, **extra)
    _RESTATE(conn, {"status": status, "document": fastjson.dumps(doc), "id": row.id})
    return doc


def post_settlement(conn: Connection, now: datetime, *, setl_id: str, actor: str) -> dict[str, Any]:
    """Second phase, success: post every held leg; the settlement is settled and the visit with it."""
    row = _pending_row(conn, setl_id)
    if row.status == "settled":
        return json.loads(row.document)  # posted already: a retry changes nothing
    if row.status != "pending":
        raise Conflict("setl_id", f"settlement_{row.status}", f"结算状态为 {row.status}，不能入账", f"the settlement is {row.status}; it cannot be posted")
    # The visit and the person's totals row before any account, as settle and void take them: a post that reached
    # the person's account after the fund accounts could deadlock with that person's next hold.
    _lock_person(conn, row)
    ledger.resolve_many(conn, ref=row.id, code="settlement", now=now, post=True)
    visits.set_status(conn, row.visit_id, "settled", now)
    audit.append(conn, region=row.region, actor=actor, action="settlement.post", subject=row.id,
                 detail={"visit": row.visit_id, "person": row.person_id, "total": row.total, "account_pay": row.account_pay,
                         "cash_pay": row.cash_pay}, now=now)
    return _restate(conn, row, "settled", now, setl_time=now.isoformat())


def void_settlement(conn: Connection, now: datetime, *, setl_id: str, reason: str, actor: str) -> dict[str, Any]:
    """Second phase, failure: void every held leg, give the year's totals back exactly, reopen the visit.

    The message id stays used (state ``voided``), so a late copy of the request cannot settle the
    visit behind the payment's back; a new payment uses a new one.
    """
    row = _pending_row(conn, setl_id)
    if row.status == "voided":
        return json.loads(row.document)
    if row.status != "pending":
        raise Conflict("setl_id", f"settlement_{row.status}", f"结算状态为 {row.status}，不能作废", f"the settlement is {row.status}; it cannot be voided")
    _lock_person(conn, row)  # the same lock order as settle
    ledger.resolve_many(conn, ref=row.id, code="settlement", now=now, post=False)
    delta = Accumulators(**{k: v for k, v in json.loads(row.accumulator_delta).items() if k in ACCUMULATOR_FIELDS})
    accumulators.add(conn, row.person_id, row.year, delta.negated())
    conn.execute(update(S).where(S.c.id == row.id).values(cancelled_at=now, cancel_reason="void"))
    conn.execute(update(M).where(M.c.institution_id == row.institution_id, M.c.msgid == row.msgid).values(state="voided"))
    visit = conn.execute(select(visits.V.c.kind).where(visits.V.c.id == row.visit_id)).one()
    visits.set_status(conn, row.visit_id, "discharged" if visit.kind == "inpatient" else "open", now)
    audit.append(conn, region=row.region, actor=actor, action="settlement.void", subject=row.id,
                 detail={"visit": row.visit_id, "person": row.person_id, "total": row.total, "account_pay": row.account_pay,
                         "reason": reason}, now=now)
    return _restate(conn, row, "voided", now, void_reason=reason)


# ---- refunds of a payment order's settlement (services/payments/refunds.py) --------------------------------------

REFUND_PARTS = ("insurance", "cash")


def _is_cash_leg(setl_id: str, client_id: str) -> bool:
    return client_id == f"{setl_id}:cash"


def _posted(conn: Connection, setl_id: str) -> list[Any]:
    return [t for t in ledger.journal(conn, setl_id, "settlement") if t.kind in ("single", "pending") and t.state == "posted"]


def _refunded_by_leg(conn: Connection, setl_id: str) -> dict[str, int]:
    """What was given back of each posted leg (by its client id): a whole-part refund posts ``<leg>:refund``, a refund
    of items ``<leg>:refund:<refund id>`` — so a leg is never given back twice and every fen is accounted."""
    out: dict[str, int] = {}
    for t in ledger.journal(conn, setl_id, "refund"):
        leg, sep, _ = t.client_id.partition(":refund")
        if sep:
            out[leg] = out.get(leg, 0) + t.amount
    return out


def legs_left(conn: Connection, setl_id: str) -> dict[str, tuple[int, int]]:
    """Each leg of the settlement (`LEGS`) as (paid, given back so far), fen, from the ledger itself: the fund's layers,
    the account and the cash (0 for a leg that never moved, e.g. a wallet's cash, which never passes our books)."""
    back = _refunded_by_leg(conn, setl_id)
    paid = {t.client_id: t.amount for t in _posted(conn, setl_id)}
    return {name: (paid.get(f"{setl_id}:{name}", 0), back.get(f"{setl_id}:{name}", 0)) for name in LEGS}


def refund_part(conn: Connection, now: datetime, *, setl_id: str, part: str, refund_id: str, actor: str) -> dict[str, int]:
    """Reverse one part of a posted settlement, exactly: ``insurance`` = every fund and account leg (clearing legs
    too) with the year's accumulators given back; ``cash`` = the cash leg (hospital cash back to the patient's
    cash source, after the institution refunded it). Only what is left of each leg moves (a refund of items,
    `refund_items`, may have given part of it back); a part already reversed is not reversed again. When nothing is
    left the settlement is ``cancelled`` (reason ``refund``) and the visit open again; else it is ``partial`` — which
    HIS cancel refuses, so nothing is ever reversed twice. Returns what moved (fen)."""
    if part not in REFUND_PARTS:
        raise ValueError(part)
    row = conn.execute(select(S).where(S.c.id == setl_id).with_for_update()).first()
    if row is None:
        raise NotFound("setl_id", "not_found", "结算记录不存在", "settlement not found")
    if row.status == "cancelled" and row.cancel_reason == "refund":
        return {"amount": 0, "cancelled": 1}  # refunded already, every leg and the year's totals: nothing is left to move
    if row.status not in ("settled", "partial"):
        raise Conflict("setl_id", "settlement_not_refundable", f"结算状态为 {row.status}，不能退款", f"a {row.status} settlement cannot be refunded")
    done = {t.client_id for t in ledger.journal(conn, setl_id, "refund")}
    back = _refunded_by_leg(conn, setl_id)
    posted = _posted(conn, setl_id)
    mine = [t for t in posted if _is_cash_leg(setl_id, t.client_id) == (part == "cash")]
    legs = [ledger.Leg(f"{t.client_id}:refund", t.credit_account_id, t.debit_account_id, t.amount - back.get(t.client_id, 0), t.region)
            for t in mine if f"{t.client_id}:refund" not in done]
    _lock_person(conn, row)  # before any account, as settle; the visit may reopen below
    ledger.post_many(conn, legs, code="refund", ref=setl_id, now=now)
    if part == "insurance":  # the year's totals too — even of a settlement the fund paid nothing of (a deductible used)
        delta = Accumulators(**{k: v for k, v in json.loads(row.accumulator_delta).items() if k in ACCUMULATOR_FIELDS})
        accumulators.add(conn, row.person_id, row.year, delta.negated())
        conn.execute(update(S).where(S.c.id == setl_id).values(accumulator_delta=fastjson.dumps(Accumulators().as_dict())))
    moved = sum(leg.amount for leg in legs if leg.amount > 0 and not leg.client_id.endswith(":cleared:refund"))
    everything = _close_if_nothing_left(conn, now, row, posted)
    audit.append(conn, region=row.region, actor=actor, action=f"settlement.refund_{part}", subject=setl_id,
                 detail={"refund": refund_id, "amount": moved, "settlement_status": "cancelled" if everything else "partial"}, now=now)
    return {"amount": moved, "cancelled": int(everything)}


def _close_if_nothing_left(conn: Connection, now: datetime, row: Any, posted: list[Any]) -> bool:
    """Nothing left of any leg: the settlement is ``cancelled`` (reason refund) and the visit open again; else ``partial``."""
    back = _refunded_by_leg(conn, row.id)
    everything = all(back.get(t.client_id, 0) >= t.amount for t in posted)
    if everything:
        conn.execute(update(S).where(S.c.id == row.id).values(cancelled_at=now, cancel_reason="refund"))
        _restate(conn, row, "cancelled", now, cancel_reason="refund", cancelled_at=now.isoformat())
        visit = conn.execute(select(visits.V).where(visits.V.c.id == row.visit_id)).one()
        visits.set_status(conn, row.visit_id, "discharged" if visit.kind == "inpatient" else "open", now)
    else:
        _restate(conn, row, "partial", now)
    return everything


# ---- a refund of some items: the rest priced again by the engine -------------------------------------------------

LEGS = (*FUND_LAYERS, "account", "cash")  # a payment's legs, as its transfers name them
INSURANCE_LEGS = LEGS[:-1]
LEG_NAMES = {"pool": ("统筹基金", "pooled fund"), "serious_illness": ("大病保险", "serious-illness insurance"),
             "large_amount": ("职工大额医疗补助", "employee large-amount subsidy"), "other": ("其他基金", "other funds"),
             "assistance": ("医疗救助", "medical assistance"), "account": ("个人账户", "personal account"), "cash": ("个人现金", "cash")}


def _refund_account(conn: Connection, row: Any, left: int) -> AccountChoice:
    """The account the settlement was paid from, for pricing its remaining items again: the same owner (own, a
    guardian's or a relative's) under the conditions it met when it paid (a guardian's five were met, or it would not
    have paid; a relative's relation, even if the grant was revoked since), with what it has still paid here
    (``left``, fen) as its balance — it never pays more of the remaining items than it paid of them all."""
    if left <= 0:
        return AccountChoice(use=False)
    doc = json.loads(row.document)
    payer = doc.get("acct_payer") or "self"
    if payer == "guardian":
        then = parse_yuan(doc["balc"]) + parse_yuan(doc["acct_pay"])  # the guardian's balance when the settlement paid
        facts = GuardianFacts(child_insured_in_region=True, child_has_financial_card=True, guardian_ecard_bound=True,
                              child_card_linked=True, family_account_linked=True, guardian_matches_enrolment=True,
                              guardian_balance=then)
        return AccountChoice(use=True, balance=left, payer="guardian", guardian=facts)
    if payer == "family":
        relation = families.mutual_aid_relation(conn, holder_id=row.account_id.removeprefix(person_account("")), member_id=row.person_id,
                                                active_only=False)
        return AccountChoice(use=True, balance=left, payer="family", relation=relation)
    return AccountChoice(use=True, balance=left, payer="self")


@dataclass(frozen=True)
class ItemsRefund:
    """What a refund of ``items`` gives back of each leg (`LEGS`, fen), and the settlement's new accumulator delta:
    the remaining items as the engine prices them now, each leg's difference from what is left of it."""

    legs: dict[str, int]
    accumulator_delta: Accumulators
    remaining: dict[str, int]


def price_items_refund(conn: Connection, *, setl_id: str, items: list[str], lock: bool) -> ItemsRefund:
    """Price the settlement's active lines other than ``items`` again (the engine decides the fund's share, on the year's
    totals without this settlement, with the account's share capped at what the account has still paid here), and give
    back the difference per leg. Every fen is accounted: for each leg, paid = given back before + this + what remains.
    A leg the engine would now pay more of is refused (a refund never takes money), as are unknown or revoked items."""
    row = conn.execute(select(S).where(S.c.id == setl_id).with_for_update() if lock else select(S).where(S.c.id == setl_id)).first()
    if row is None:
        raise NotFound("setl_id", "not_found", "结算记录不存在", "settlement not found")
    if row.status not in ("settled", "partial"):
        raise Conflict("setl_id", "settlement_not_refundable", f"结算状态为 {row.status}，不能退款", f"a {row.status} settlement cannot be refunded")
    active = list(_LINES(conn, {"visit_id": row.visit_id}))  # the same rows, in the same order, as settle priced
    sns = {r.feedetl_sn for r in active}
    unknown = sorted(set(items) - sns)
    if unknown:
        raise InputError("items", "unknown_line", f"明细不存在或已退款：{unknown[0]}", f"no such fee line, or it was refunded: {unknown[0]}")
    if not items or len(set(items)) != len(items):
        raise InputError("items", "items_invalid", "退款的明细应不为空且不重复", "the items to refund must be given, each once")
    left = {name: paid - back for name, (paid, back) in legs_left(conn, setl_id).items()}
    old_delta = Accumulators(**{k: v for k, v in json.loads(row.accumulator_delta).items() if k in ACCUMULATOR_FIELDS})
    keep = tuple(bills.fee_line(r) for r in active if r.feedetl_sn not in set(items))
    if not keep:  # the last items: everything left goes back
        return ItemsRefund(dict(left), Accumulators(), {name: 0 for name in LEGS})
    visit = _load_visit(conn, row.institution_id, row.visit_id, lock=lock)
    patient = _load_patient(conn, row.person_id)
    if lock:
        acc, _ = accumulators.lock(conn, row.insured_region, row.person_id, row.year)
    else:
        acc = accumulators.read(conn, row.person_id, row.year)
    before = acc.plus(old_delta.negated())  # the year's totals as if this settlement's remaining items had not been
    inst = agency.get(conn, row.institution_id)
    assert inst is not None
    level = inst.level
    policy, catalogue = policies_for(patient.region, visit.region, row.year)
    choice = _refund_account(conn, row, left["account"])
    bill = bills.build(patient, treatment_region=visit.region, visit_date=visit.visit_date, kind=visit.kind, level=level,
                       admission_number=visit.admission_number, filing=visit.filing, lines=keep, accumulators=before, account=choice)
    s = price(bill, policy, catalogue)
    remaining = {"pool": s.pool_fund, "serious_illness": s.serious_illness, "large_amount": s.large_amount, "other": s.other,
                 "assistance": s.assistance, "account": s.account_pay, "cash": s.cash_pay}
    higher = [name for name in LEGS if remaining[name] > left[name]]
    if higher:
        zh, en = LEG_NAMES[higher[0]]
        raise Conflict("items", "items_refund_reprices_higher",
                       f"按剩余项目重新结算后，{zh}部分将高于原支付，不能按项目退款：请全额退款后重新结算",
                       f"priced again, the remaining items would take more of the {en} than was paid: refund the whole "
                       "payment and settle the rest again")
    return ItemsRefund({name: left[name] - remaining[name] for name in LEGS}, s.accumulator_delta, remaining)


def refund_items(conn: Connection, now: datetime, *, setl_id: str, refund_id: str, items: list[str], legs: dict[str, int],
                 accumulator_delta: Accumulators, actor: str) -> dict[str, int]:
    """Give back ``legs`` (fen by `LEGS`, priced by `price_items_refund`) of a posted settlement: each leg (and its
    clearing twin) by a transfer of its own (``<leg>:refund:<refund id>``), the year's totals moved from the old delta to
    the remaining items' one, the items marked refunded. Once only per refund. Returns what moved (fen)."""
    row = conn.execute(select(S).where(S.c.id == setl_id).with_for_update()).first()
    if row is None:
        raise NotFound("setl_id", "not_found", "结算记录不存在", "settlement not found")
    if any(t.client_id.endswith(f":refund:{refund_id}") for t in ledger.journal(conn, setl_id, "refund")):
        return {"amount": sum(legs.values()), "cancelled": int(row.status == "cancelled")}
    if row.status not in ("settled", "partial"):
        raise Conflict("setl_id", "settlement_not_refundable", f"结算状态为 {row.status}，不能退款", f"a {row.status} settlement cannot be refunded")
    _lock_person(conn, row)
    left = {name: paid - back for name, (paid, back) in legs_left(conn, setl_id).items()}
    if any(not 0 <= legs.get(name, 0) <= left[name] for name in LEGS):
        raise Conflict("items", "refund_exceeds_leg", "退款金额超过该部分剩余金额", "the refund exceeds what is left of a leg")
    posted = _posted(conn, setl_id)
    moves = []
    for t in posted:
        name, _, cleared = t.client_id.removeprefix(f"{setl_id}:").partition(":")
        amount = legs.get(name, 0)
        if amount:
            moves.append(ledger.Leg(f"{t.client_id}:refund:{refund_id}", t.credit_account_id, t.debit_account_id, amount, t.region))
    ledger.post_many(conn, moves, code="refund", ref=setl_id, now=now)
    old = Accumulators(**{k: v for k, v in json.loads(row.accumulator_delta).items() if k in ACCUMULATOR_FIELDS})
    accumulators.add(conn, row.person_id, row.year, old.negated())
    accumulators.add(conn, row.person_id, row.year, accumulator_delta)
    conn.execute(update(S).where(S.c.id == setl_id).values(accumulator_delta=fastjson.dumps(accumulator_delta.as_dict())))
    visits.mark_refunded(conn, row.visit_id, items)
    everything = _close_if_nothing_left(conn, now, row, posted)
    moved = sum(legs.values())
    audit.append(conn, region=row.region, actor=actor, action="settlement.refund_items", subject=setl_id,
                 detail={"refund": refund_id, "items": sorted(items), "legs": {k: v for k, v in legs.items() if v}, "amount": moved,
                         "settlement_status": "cancelled" if everything else "partial"}, now=now)
    return {"amount": moved, "cancelled": int(everything)}
