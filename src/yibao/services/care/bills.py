"""The engine's Bill for a stored visit: one builder for settling it (settlement.py) and for re-pricing its history
(whatif.py), so a what-if prices exactly what settlement would have priced.

Pure: the rows are read by the callers; this turns the person, the visit, its active fee lines and the year's
accumulators into a Bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from yibao.domain.bill import AccountChoice, Accumulators, Bill, FeeLine
from yibao.domain.bill import Person as BillPerson
from yibao.domain.bill import Visit as BillVisit
from yibao.domain.identity import age_on


@dataclass(frozen=True)
class Patient:
    """The insured person's facts the engine prices with (their age is taken on the visit's date)."""

    id: str
    region: str
    insurance_type: str
    tier: int | None
    retired: bool
    hardship: str | None
    birth_date: date

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)


def fee_line(r: Any) -> FeeLine:
    """A stored fee line (code, name, line_class, unit_price, quantity, price_cap, self_pay_ratio, item_category,
    med_list_codg) as the engine's."""
    return fee_line_of(r.code, r.name, r.line_class, r.unit_price, r.quantity, r.price_cap, r.self_pay_ratio, r.item_category,
                       r.med_list_codg)


def fee_line_of(code: str, name: str, line_class: str, unit_price: Any, quantity: Any, price_cap: Any, self_pay_ratio: Any,
                item_category: str | None, med_list_codg: str | None) -> FeeLine:
    """The same from the columns in that order (the what-if reads its stream by position). The categories the catalogue
    gave the line and its national code: a policy's item_ratios name them."""
    return FeeLine(code, name, line_class, int(unit_price), int(quantity), None if price_cap is None else int(price_cap),
                   None if self_pay_ratio is None else int(self_pay_ratio),
                   tuple(item_category.split("|")) if item_category else (), med_list_codg)


def build(patient: Patient, *, treatment_region: str, visit_date: date, kind: str, level: str, admission_number: int,
          filing: str | None, lines: tuple[FeeLine, ...], accumulators: Accumulators, account: AccountChoice = AccountChoice()) -> Bill:
    return Bill(
        insured_region=patient.region, treatment_region=treatment_region, date=visit_date,
        person=BillPerson(insurance_type=patient.insurance_type, tier=patient.tier, retired=patient.retired,
                          age=patient.age_on(visit_date), hardship=patient.hardship, filing=filing),
        visit=BillVisit(kind=kind, institution_level=level, admission_number=admission_number),
        lines=lines, accumulators=accumulators, account=account,
    )
