"""Visits (就诊) and their fee lines: registration or admission, discharge, upload and revocation.

An institution sees only its own visits: every lookup filters by the calling institution and
answers "not found" for anyone else's.
"""

from __future__ import annotations

import secrets
from collections import namedtuple
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain.catalogue import LineFacts
from yibao.domain.errors import Conflict, InputError, NotFound
from yibao.domain.identity import age_on
from yibao.domain.money import MAX_FEN, QTY_SCALE, div_round_half_up, format_yuan
from yibao.domain.policy import VISIT_KINDS
from yibao.formats.bill_json import CHINA, upload_line_from_mapping
from yibao.services.agency.institutions import Institution
from yibao.services.agency.policies import policies_for, policy_for
from yibao.services.books import accumulators
from yibao.services.catalogue import decisions, mappings, versions
from yibao.services.people import persons as people
from yibao.store.db import unit_memo
from yibao.store.rows import one_or
from yibao.store.sql import Sql
from yibao.store.tables import fee_lines as L
from yibao.store.tables import filings as FL
from yibao.store.tables import visits as V


@dataclass(frozen=True)
class Visit:
    id: str
    region: str
    insured_region: str
    person_id: str
    institution_id: str
    kind: str
    status: str
    visit_date: date
    admission_number: int
    filing: str | None
    admitted_at: datetime | None
    discharged_at: datetime | None


def _row(r) -> Visit:  # noqa: ANN001
    return Visit(r.id, r.region, r.insured_region, r.person_id, r.institution_id, r.kind, r.status, r.visit_date, r.admission_number,
                 r.filing, r.admitted_at, r.discharged_at)


def _filing(conn: Connection, person_id: str, treatment_region: str, day: date) -> str:
    row = conn.execute(select(FL.c.filing_type).where(
        FL.c.person_id == person_id, FL.c.treatment_region == treatment_region, FL.c.valid_from <= day,
        or_(FL.c.valid_to.is_(None), FL.c.valid_to >= day)).order_by(FL.c.filing_type)).first()
    return row.filing_type if row else "unfiled"


@dataclass(frozen=True)
class Opened:
    """A visit this unit has just opened, with its patient as read for it (`open_visit_for`)."""

    visit: Visit
    patient: people.Person


# A visit's fee lines as the settlement reads them: settlement.py `_LINES` selects exactly these columns, in this order.
FreshLine = namedtuple("FreshLine", "code name line_class unit_price quantity price_cap self_pay_ratio item_category med_list_codg "
                                    "feedetl_sn fee_ocur_time")


@dataclass(frozen=True)
class Fresh:
    """A visit this unit opened and gave its lines (a payment's): what a settlement in the same unit would read back."""

    visit: Visit
    patient: people.Person
    lines: tuple[FreshLine, ...]


def fresh(conn: Connection, visit_id: str) -> Fresh | None:
    """The visit as this unit opened it with its lines, taken once (the settlement that follows in the unit); None when
    this unit did not, or changed it since. The inserted rows are this unit's alone until its commit: nobody else can have
    changed them, and no lock is needed on them."""
    memo = unit_memo(conn, create=False)
    return memo.pop(("visit", visit_id), None) if memo else None


def _forget(conn: Connection) -> None:
    """A visit or its lines change: what `fresh` would answer is stale."""
    memo = unit_memo(conn, create=False)
    if memo:
        for key in [k for k in memo if k[0] == "visit"]:
            del memo[key]


def open_visit(conn: Connection, now: datetime, *, institution: Institution, person_id: str, kind: str,
               visit_date: date | None = None) -> Visit:
    """Register an outpatient, emergency or pharmacy visit, or admit an inpatient (2201 / 2401)."""
    return open_visit_for(conn, now, institution=institution, person_id=person_id, kind=kind, visit_date=visit_date).visit


# A payment opens a visit and uploads its lines in its first unit: prepared SQL (store/sql.py), not Core.
_INSERT_VISIT = Sql("""INSERT INTO visits (id, region, insured_region, person_id, institution_id, kind, status, visit_date, admission_number,
                       admitted_at, filing, updated_at, created_at)
                       VALUES (:id, :region, :insured_region, :person_id, :institution_id, :kind, :status, :visit_date, :admission_number,
                       :admitted_at, :filing, :now, :now)""")
_LINE_COLUMNS = ("region", "visit_id", "feedetl_sn", "code", "name", "line_class", "unit_price", "quantity", "price_cap", "self_pay_ratio",
                 "prescription", "prescriber", "status", "med_list_codg", "medins_list_codg", "chrgitm_lv", "catalogue_version",
                 "lmt_used_flag", "hosp_appr_flag", "memo", "fee_ocur_time", "item_category", "created_at")
_INSERT_LINES = Sql(f"INSERT INTO fee_lines ({', '.join(_LINE_COLUMNS)}) VALUES ({', '.join(':' + c for c in _LINE_COLUMNS)})")


def open_visit_for(conn: Connection, now: datetime, *, institution: Institution, person_id: str, kind: str,
                   visit_date: date | None = None, person: people.Person | None = None) -> Opened:
    """`open_visit`, answering the patient too (a payment uploads the lines next: `upload_lines(opened=…)`).
    ``person``: the patient as the caller's unit read them already (a payment's code check), not read again."""
    if kind not in VISIT_KINDS:
        raise InputError("kind", "invalid_choice", "就诊类型应为 outpatient | emergency | inpatient | pharmacy",
                         "must be outpatient, emergency, inpatient or pharmacy")
    if (kind == "pharmacy") != (institution.kind == "pharmacy"):
        raise InputError("kind", "kind_for_institution", "药店只能办理 pharmacy 类就诊，医院不能办理 pharmacy 类就诊",
                         "a pharmacy records pharmacy visits only, and a hospital never does")
    if person is None or person.id != person_id:
        person = people.get(conn, person_id)
    if person is None or person.status != "active":
        raise NotFound("person_id", "not_found", "参保人不存在或已停保", "insured person not found or not active")
    day = visit_date or now.date()
    # A visit is settled under its year's policy: refuse a date no policy covers now, naming the field,
    # rather than at settlement.
    policy_for(person.region, day.year, field="psn_no", date_field="visit_date")
    today = now.astimezone(CHINA).date()
    if day > today:  # its lines would be decided by a catalogue not yet in force, and settled today
        raise InputError("visit_date", "visit_date_in_future", f"就诊日期不能晚于今天（{today}）", f"must not be after today ({today})")
    filing = None if person.region == institution.region else _filing(conn, person_id, institution.region, day)
    admission_number, status, admitted_at = 1, "open", None
    if kind == "inpatient":
        admission_number = accumulators.count_admission(conn, person.region, person_id, day.year)
        status, admitted_at = "admitted", now
    visit_id = f"{day:%Y%m%d}{secrets.token_hex(6).upper()}"
    _INSERT_VISIT(conn, dict(id=visit_id, region=institution.region, insured_region=person.region, person_id=person_id,
                             institution_id=institution.id, kind=kind, status=status, visit_date=day, admission_number=admission_number,
                             admitted_at=admitted_at, filing=filing, now=now))
    return Opened(Visit(visit_id, institution.region, person.region, person_id, institution.id, kind, status, day, admission_number,
                        filing, admitted_at, None), person)


def get(conn: Connection, institution_id: str, visit_id: str, *, lock: bool = False) -> Visit:
    return _row(one_or(conn, V, V.c.id == visit_id, V.c.institution_id == institution_id, lock=lock,
                       missing=NotFound("visit_id", "not_found", "就诊记录不存在", "visit not found")))


def discharge(conn: Connection, now: datetime, *, institution: Institution, visit_id: str) -> Visit:
    _forget(conn)
    v = get(conn, institution.id, visit_id, lock=True)
    if v.kind != "inpatient":
        raise Conflict("visit_id", "not_inpatient", "只有住院就诊可以办理出院", "only an inpatient visit can be discharged")
    if v.status != "admitted":
        raise Conflict("visit_id", f"visit_{v.status}", "该住院已出院或已结算", f"the stay is already {v.status}")
    conn.execute(update(V).where(V.c.id == visit_id).values(status="discharged", discharged_at=now, updated_at=now))
    return get(conn, institution.id, visit_id)


def _active_lines(conn: Connection, visit_id: str) -> int:
    return len(conn.execute(select(L.c.id).where(L.c.visit_id == visit_id, L.c.status == "active")).all())


def cancel_visit(conn: Connection, now: datetime, *, institution: Institution, visit_id: str) -> Visit:
    """Cancel a registration (2202) or undo an admission (2404): only before any fee line stands and before discharge or
    settlement; the year's admission count falls back and later unsettled stays move down one (their deductible)."""
    _forget(conn)
    v = get(conn, institution.id, visit_id, lock=True)
    if v.status == "cancelled":
        return v  # cancelled already: again changes nothing
    if v.status not in ("open", "admitted"):
        raise Conflict("visit_id", f"visit_{v.status}", "已出院、结算或支付中的就诊不能撤销，请先撤销结算或出院",
                       f"the visit is {v.status}; undo the settlement or the discharge first")
    refuse_if_billed(conn, visit_id)
    if _active_lines(conn, visit_id):
        raise Conflict("visit_id", "visit_has_lines", "该就诊还有未撤销的费用明细，请先撤销明细", "the visit still has fee lines: revoke them first")
    if v.kind == "inpatient":
        year = v.visit_date.year
        accumulators.uncount_admission(conn, v.insured_region, v.person_id, year)
        # The year's later stays not yet settled are priced by their number at settlement: each moves down one, so a
        # HIS's retried admission (2401 applied twice, the first reversed) is not priced as a repeat. A later stay
        # settled already keeps the number it was priced with.
        conn.execute(update(V).where(V.c.person_id == v.person_id, V.c.kind == "inpatient", V.c.id != visit_id,
                                     V.c.admission_number > v.admission_number, V.c.status.in_(("admitted", "discharged")),
                                     V.c.visit_date >= date(year, 1, 1), V.c.visit_date < date(year + 1, 1, 1))
                     .values(admission_number=V.c.admission_number - 1, updated_at=now))
    conn.execute(update(V).where(V.c.id == visit_id).values(status="cancelled", updated_at=now))
    return get(conn, institution.id, visit_id)


def undo_discharge(conn: Connection, now: datetime, *, institution: Institution, visit_id: str) -> Visit:
    """Undo a discharge (2405): the stay is admitted again, before it is settled."""
    _forget(conn)
    v = get(conn, institution.id, visit_id, lock=True)
    if v.kind != "inpatient":
        raise Conflict("visit_id", "not_inpatient", "只有住院就诊可以撤销出院", "only an inpatient stay has a discharge to undo")
    if v.status == "admitted":
        return v  # undone already
    if v.status != "discharged":
        raise Conflict("visit_id", f"visit_{v.status}", "已结算的住院不能撤销出院，请先撤销结算", f"the stay is {v.status}; cancel the settlement first")
    conn.execute(update(V).where(V.c.id == visit_id).values(status="admitted", discharged_at=None, updated_at=now))
    return get(conn, institution.id, visit_id)


_OPEN_BILL = Sql("SELECT id FROM payment_orders WHERE visit_id = :visit_id AND status = 'billed' LIMIT 1")  # on the settle path


def open_bill(conn: Connection, visit_id: str) -> str | None:
    """The mobile bill published for this visit and not yet paid or withdrawn (services/payments/bills.py), if any."""
    row = _OPEN_BILL(conn, {"visit_id": visit_id}).first()
    return row.id if row else None


_OPEN_PAYMENT = Sql("SELECT id FROM payment_orders WHERE visit_id = :visit_id AND status IN ("
                    + ", ".join(f"'{s}'" for s in po.OPEN if s != po.BILLED) + ") ORDER BY updated_at DESC LIMIT 1")


def open_payment(conn: Connection, visit_id: str) -> str | None:
    """The payment that holds this visit's settlement while it waits (the holder's PIN, the cash), if any: what a
    visit in status "settling" waits for (services/payments)."""
    row = _OPEN_PAYMENT(conn, {"visit_id": visit_id}).first()
    return row.id if row else None


def refuse_if_billed(conn: Connection, visit_id: str) -> None:
    """While the holder has the visit's bill on the phone, its lines and its price must stay what the bill shows,
    and no other payment may settle it (the bill would stay waiting for good): the hospital withdraws it first."""
    bill = open_bill(conn, visit_id)
    if bill is not None:
        raise Conflict("visit_id", "visit_billed", f"该就诊的账单 {bill} 已发送到参保人手机，等待支付；如需修改明细或改用其他方式收费，请先撤回账单",
                       f"the visit's bill {bill} is on the holder's phone awaiting payment: withdraw it before changing the lines "
                       "or taking payment another way")


def upload_lines(conn: Connection, now: datetime, *, institution: Institution, visit_id: str, items: list[Any],
                 opened: Opened | None = None) -> list[dict]:
    """Upload fee lines (2204 / 2301): codes and quantities. The platform decides each line's class, price cap and
    self-pay ratio from the treatment region's catalogue on the fee's date (services/catalogue); a class, cap or ratio
    sent by the institution is refused. A prescription line must name its prescriber (seed 002: legal prescribing first).

    ``opened``: the visit as this unit just opened it (`open_visit_for`), with its patient — it has no lines and no bill
    yet, so none of them is read, and nothing is answered (a payment opening a visit for its lines wants no list)."""
    if opened is not None:
        v, patient, existing = opened.visit, opened.patient, {}
    else:
        _forget(conn)
        v = get(conn, institution.id, visit_id, lock=True)
    if v.status in ("settled", "cancelled", "settling"):
        raise Conflict("visit_id", f"visit_{v.status}", "已结算或支付中的就诊不能再上传明细，请先撤销结算", f"the visit is {v.status}; cancel the settlement first")
    if opened is None:
        refuse_if_billed(conn, visit_id)
    if not isinstance(items, list) or not items:
        raise InputError("lines", "no_lines", "费用明细不能为空", "must be a non-empty list of fee lines")
    if opened is None:
        existing = {r.feedetl_sn: r for r in conn.execute(select(L).where(L.c.visit_id == visit_id)).all()}
        patient = people.get(conn, v.person_id)
    b_ratio = default_b_ratio(v)
    # Per code, the quantity already on the visit: a per-visit quantity limit counts it.
    counted: dict[str, int] = {}
    counted_day: dict[tuple[str, date], int] = {}  # per code and day of the fee: a per-day limit counts it
    for r in existing.values():
        if r.status == "active" and r.med_list_codg and r.line_class not in ("C", "unlisted"):  # what was paid
            counted[r.med_list_codg] = counted.get(r.med_list_codg, 0) + int(r.quantity)
            key = (r.med_list_codg, _fee_day(r.fee_ocur_time, v.visit_date))
            counted_day[key] = counted_day.get(key, 0) + int(r.quantity)
    rows, seen = [], set()
    lines = [upload_line_from_mapping(item, f"lines[{i}]") for i, item in enumerate(items)]
    mapped = mappings.resolve_many(conn, institution.id, {line.medins_list_codg for line in lines if line.medins_list_codg is not None})
    catalogue = versions.Upload(conn, v.region, {c for line in lines
                                                 for c in (line.med_list_codg, mapped.get(line.medins_list_codg or "", (None,))[0]) if c})
    for i, line in enumerate(lines):
        path = f"lines[{i}]"
        if _line_total(line.unit_price, line.quantity) > MAX_FEN:
            raise InputError(f"{path}.quantity", "line_total_too_large", f"单价×数量超出上限¥{format_yuan(MAX_FEN)}",
                             f"unit_price × quantity exceeds the limit of ¥{format_yuan(MAX_FEN)}")
        sn = line.feedetl_sn
        if sn in seen:
            raise InputError(f"{path}.feedetl_sn", "duplicate_serial", "同一批次内明细流水号重复", "repeats a serial number in this upload")
        seen.add(sn)
        old = existing.get(sn)
        if old is not None:
            if not _same_line(old, line) or old.status != "active":
                raise Conflict(f"{path}.feedetl_sn", "serial_reused", f"明细流水号 {sn} 已用于另一条明细", f"serial {sn} was already used for a different line")
            continue  # the same line again: a retried upload
        at = (line.fee_ocur_time or now).astimezone(timezone.utc)  # stored in UTC: SQLite keeps no offset
        day = at.astimezone(CHINA).date()  # catalogue dates are Beijing dates
        if line.fee_ocur_time is None:
            day = max(day, v.visit_date)  # a visit registered for a later day: its fees fall on that day
        elif day < v.visit_date or at > now + timedelta(minutes=5):
            raise InputError(f"{path}.fee_ocur_time", "fee_time_outside_visit", f"费用发生时间应在就诊日期 {v.visit_date} 之后且不晚于现在",
                             f"the fee's time must be on or after the visit date {v.visit_date} and not in the future")
        code = decisions.resolve(conn, institution.id, med_list_codg=line.med_list_codg, medins_list_codg=line.medins_list_codg, path=path,
                                 mapped_codes=mapped)
        if code.hilist_code is None:
            assert code.unmapped is not None
            decided = decisions.Decided(code.unmapped, None, None)
        else:
            facts = LineFacts(day=day, visit_kind=v.kind, institution_level=institution.level,
                              age=age_on(patient.birth_date, day) if patient else 0, quantity=line.quantity,
                              quantity_before=counted.get(code.hilist_code, 0),
                              quantity_before_day=counted_day.get((code.hilist_code, day), 0), prescription=line.prescription,
                              prescriber=line.prescriber, hosp_appr_flag=line.hosp_appr_flag)
            decided = decisions.decide(conn, region=v.region, hilist_code=code.hilist_code, facts=facts, default_b_ratio=b_ratio,
                                       catalogue=catalogue)
            if not decided.decision.own_expense:  # what was paid counts against the visit's limit; what was refused does not
                counted[code.hilist_code] = counted.get(code.hilist_code, 0) + line.quantity
                counted_day[(code.hilist_code, day)] = counted_day.get((code.hilist_code, day), 0) + line.quantity
        d = decided.decision
        rows.append(dict(region=v.region, visit_id=visit_id, feedetl_sn=sn, code=line.medins_list_codg or code.hilist_code or "",
                         name=(line.name or code.name or decided.entry_name or line.medins_list_codg or code.hilist_code or "")[:200],
                         line_class=d.line_class, unit_price=line.unit_price, quantity=line.quantity, price_cap=d.price_cap,
                         self_pay_ratio=d.self_pay_ratio, prescription=line.prescription, prescriber=line.prescriber, status="active",
                         med_list_codg=code.hilist_code, medins_list_codg=line.medins_list_codg, chrgitm_lv=d.chrgitm_lv,
                         catalogue_version=decided.catalogue_version, lmt_used_flag=d.lmt_used_flag, hosp_appr_flag=line.hosp_appr_flag,
                         memo=d.memo[:300], fee_ocur_time=at, item_category="|".join(d.categories) or None, created_at=now))
    if rows:
        total = sum(_line_total(r.unit_price, r.quantity) for r in existing.values() if r.status == "active")
        if total + sum(_line_total(r["unit_price"], r["quantity"]) for r in rows) > MAX_FEN:
            raise InputError("lines", "visit_total_too_large", f"就诊费用合计超出上限¥{format_yuan(MAX_FEN)}",
                             f"the visit's fee lines would total more than the limit of ¥{format_yuan(MAX_FEN)}")
        _INSERT_LINES(conn, rows)
    if opened is None:
        return list_lines(conn, institution.id, visit_id)
    memo = unit_memo(conn)
    if memo is not None:  # the settlement that follows in this unit needs none of it read back (`fresh`)
        memo[("visit", visit_id)] = Fresh(v, patient, tuple(FreshLine(*(row[f] for f in FreshLine._fields)) for row in rows))
    return []


def _fee_day(at: datetime | None, visit_date: date) -> date:
    """The Beijing date of a stored line's fee time (kept in UTC; SQLite gives it back without an offset); a line
    uploaded before fee times were kept falls on its visit's date."""
    if at is None:
        return visit_date
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(CHINA).date()


def _same_line(old: Any, line: Any) -> bool:
    """Whether a stored line is what this upload says again (a retried upload): the codes as sent, price and quantity."""
    codes = old.medins_list_codg == line.medins_list_codg and (line.med_list_codg is None or old.med_list_codg == line.med_list_codg)
    return codes and (int(old.unit_price), int(old.quantity), bool(old.prescription)) == (line.unit_price, line.quantity, line.prescription)


def default_b_ratio(visit: Visit) -> int:
    """The class-B self-pay ratio a line without its own is priced with (the engine's default for this visit)."""
    policy, cat = policies_for(visit.insured_region, visit.region, visit.visit_date.year)
    return (cat or policy).b_self_pay_ratio


def _line_total(unit_price: int, quantity: int) -> int:
    """What the settlement computes for the line (fen): stored totals must fit the money fields."""
    return div_round_half_up(unit_price * quantity, QTY_SCALE)


def revoke_line(conn: Connection, *, institution: Institution, visit_id: str, feedetl_sn: str) -> None:
    """Revoke one uploaded line before settlement (2205)."""
    _forget(conn)
    v = get(conn, institution.id, visit_id, lock=True)
    if v.status in ("settled", "cancelled", "settling"):
        raise Conflict("visit_id", f"visit_{v.status}", "已结算或支付中的就诊不能撤销明细，请先撤销结算", f"the visit is {v.status}; cancel the settlement first")
    refuse_if_billed(conn, visit_id)
    res = conn.execute(update(L).where(L.c.visit_id == visit_id, L.c.feedetl_sn == feedetl_sn, L.c.status == "active").values(status="revoked"))
    if res.rowcount != 1:
        raise NotFound("feedetl_sn", "not_found", "明细不存在或已撤销", "line not found or already revoked")


def mark_refunded(conn: Connection, visit_id: str, feedetl_sns: list[str]) -> None:
    """Lines of a settled visit given back by a refund of items (services/payments/refunds.py): no longer active, so the
    settlement's remaining items are the active ones."""
    _forget(conn)
    if feedetl_sns:
        conn.execute(update(L).where(L.c.visit_id == visit_id, L.c.feedetl_sn.in_(feedetl_sns), L.c.status == "active")
                     .values(status="refunded"))


def list_lines(conn: Connection, institution_id: str, visit_id: str) -> list[dict]:
    get(conn, institution_id, visit_id)
    rows = conn.execute(select(L).where(L.c.visit_id == visit_id).order_by(L.c.id)).all()
    return [dict(r._mapping) for r in rows]


_SET_STATUS = Sql("UPDATE visits SET status = :status, updated_at = :now WHERE id = :id")  # on the settle path


def set_status(conn: Connection, visit_id: str, status: str, now: datetime) -> None:
    _forget(conn)
    _SET_STATUS(conn, {"id": visit_id, "status": status, "now": now})
