"""What the engine prices: a person, a visit, fee lines, the year's accumulators, the account choice."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

from yibao.domain.family import GuardianFacts


@dataclass(frozen=True, slots=True)
class Person:
    insurance_type: str  # employee | resident | child
    tier: int | None
    retired: bool
    age: int
    hardship: str | None  # a status the policy names (tekun, dibao, ...)
    filing: str | None  # None: treated at home; long_term | temporary | unfiled


@dataclass(frozen=True, slots=True)
class Visit:
    kind: str  # outpatient | emergency | inpatient | pharmacy
    institution_level: str  # community | level1 | level2 | level3 | pharmacy
    admission_number: int = 1  # this year's n-th admission (inpatient)


@dataclass(frozen=True, slots=True)
class FeeLine:
    code: str
    name: str
    line_class: str  # A (甲) | B (乙) | C (丙) | unlisted
    unit_price: int  # fen
    quantity: int  # 1/10000 units
    price_cap: int | None = None  # fen per unit (限价)
    self_pay_ratio: int | None = None  # ppm; B lines only (None: the catalogue default)
    categories: tuple[str, ...] = ()  # the catalogue entry's item categories (implant, imported, ...): item_ratios
    hilist_code: str | None = None  # the national code when ``code`` is the institution's own (item_ratios match it)


@dataclass(frozen=True, slots=True)
class Accumulators:
    """A person's running totals for the year; a settlement returns its deltas in the same shape."""

    outpatient_deductible_used: int = 0
    pool_fund_paid: int = 0
    outpatient_pool_paid: int = 0  # pooled fund paid by outpatient-class rules (outpatient, emergency, pharmacy)
    inpatient_pool_paid: int = 0  # pooled fund paid by inpatient rules
    # Eligible cost counted against yearly ceilings: each rule names one of these (policy.ELIGIBLE_ACCUMULATORS).
    inpatient_eligible_used: int = 0
    outpatient_eligible_used: int = 0
    # The year's in-scope cost per visit class (yearly basic-fund bands measure on it).
    inpatient_in_scope: int = 0
    outpatient_in_scope: int = 0
    serious_illness_base: int = 0
    serious_illness_paid: int = 0
    large_amount_base: int = 0  # the year's cost beyond the basic layer (the large-amount layer's measure)
    large_amount_paid: int = 0
    beyond_cap_base: int = 0  # the year's cost above the large-amount cap, and what its layer paid
    beyond_cap_paid: int = 0
    assistance_base: int = 0
    assistance_paid: int = 0

    def plus(self, delta: "Accumulators") -> "Accumulators":
        return Accumulators(*(getattr(self, f.name) + getattr(delta, f.name) for f in fields(self)))

    def negated(self) -> "Accumulators":
        return Accumulators(*(-getattr(self, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ACCUMULATOR_FIELDS = tuple(f.name for f in fields(Accumulators))


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """Whether and whose personal account pays the patient's share.

    payer: "self" (own account), "guardian" (a child's bill from the guardian's account,
    Shenzhen rule) or "family" (family mutual aid from a spouse's, parent's or child's account).
    ``balance`` is the paying account's balance before this bill.
    """

    use: bool = False
    balance: int = 0
    payer: str = "self"
    relation: str | None = None  # for payer "family"
    guardian: GuardianFacts | None = None  # for payer "guardian"


@dataclass(frozen=True, slots=True)
class Bill:
    insured_region: str
    treatment_region: str
    date: date
    person: Person
    visit: Visit
    lines: tuple[FeeLine, ...]
    accumulators: Accumulators = Accumulators()
    account: AccountChoice = AccountChoice()

    @property
    def cross_region(self) -> bool:
        return self.insured_region != self.treatment_region
