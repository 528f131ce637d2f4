"""A pooling region's benefit policy for one year, as validated, immutable values.

Amounts are fen, ratios parts per million. The policy files (YAML) are parsed into these
classes by ``yibao.policies.schema``; nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from yibao.domain.clearing import ClearingRules
from yibao.domain.credit import CreditRules
from yibao.domain.money import RATIO_ONE, apply_ratio

INSURANCE_TYPES = ("employee", "resident", "child")
VISIT_KINDS = ("outpatient", "emergency", "inpatient", "pharmacy")
LEVELS = ("community", "level1", "level2", "level3", "pharmacy")
# A level as a reader says it (explanations, refusals): the codes above are the policy files' words.
LEVEL_ZH = {"community": "社区", "level1": "一级", "level2": "二级", "level3": "三级", "pharmacy": "药店"}
LEVEL_EN = {"community": "community", "level1": "grade-1", "level2": "grade-2", "level3": "grade-3", "pharmacy": "pharmacy"}
FILINGS = ("long_term", "temporary", "unfiled")
LINE_CLASSES = ("A", "B", "C", "unlisted")
BASE_PARTS = ("in_scope_self_pay", "pre_self_pay", "over_limit", "own_expense")
MUTUAL_AID_RELATIONS = ("spouse", "parent", "child")
# Categories of catalogue entries a policy may pay at their own fund ratio (`item_ratios`): the catalogue's
# `item_category` column names them, and so may a quoted bill's line. Our names [G]: no national code list was found.
ITEM_CATEGORIES = {"implant": ("植入材料", "implants"), "imported": ("进口材料", "imported materials"),
                   "negotiated": ("国家谈判药品", "nationally negotiated drugs")}


@dataclass(frozen=True, slots=True)
class AgeRatio:
    """A ratio that follows the patient's age: base + step × max(0, age − from_age), kept within [lo, hi] (ppm)."""

    base: int
    step: int  # ppm per year of age; may be negative
    from_age: int = 0
    lo: int = 0
    hi: int = RATIO_ONE

    def at(self, age: int) -> int:
        return min(self.hi, max(self.lo, self.base + self.step * max(0, age - self.from_age)))


# The layers above the basic fund a scheme may stack (second_layer: one name or a list, in paying order).
LAYERS = ("large_amount", "serious_illness", "beyond_large_amount")
# The accumulators a yearly eligible-cost ceiling or an annual cap may count against (bill.Accumulators fields). A visit
# adds its covered eligible cost to the one its rule's ceiling names, and its pooled payment to pool_fund_paid and to the
# one its rule's cap names; rules naming the same accumulator share it.
ELIGIBLE_ACCUMULATORS = ("inpatient_eligible_used", "outpatient_eligible_used")
RULE_CAP_ACCUMULATORS = ("outpatient_pool_paid", "inpatient_pool_paid")
SCHEME_CAP_ACCUMULATORS = ("pool_fund_paid", "inpatient_pool_paid")


@dataclass(frozen=True, slots=True)
class Band:
    """Pays ``ratio`` on the measured amount below ``upto`` (fen; None = no upper bound).

    With ``by_age`` the ratio is the patient's (``RatioSchedule.for_age``); ``ratio`` then holds its value at age 0."""

    upto: int | None
    ratio: int
    by_age: AgeRatio | None = None


@dataclass(frozen=True, slots=True)
class RatioSchedule:
    """A flat ratio (one open band) or ratio bands by amount, ascending."""

    bands: tuple[Band, ...]

    @classmethod
    def flat(cls, ratio: int) -> "RatioSchedule":
        return cls((Band(None, ratio),))

    @property
    def is_flat(self) -> bool:
        return len(self.bands) == 1

    @property
    def by_age(self) -> bool:
        return any(b.by_age is not None for b in self.bands)

    def for_age(self, age: int) -> "RatioSchedule":
        """The schedule with every age-dependent ratio taken at ``age`` (itself when none depends on age)."""
        if not self.by_age:
            return self
        return RatioSchedule(tuple(Band(b.upto, b.ratio if b.by_age is None else b.by_age.at(age)) for b in self.bands))

    def cut(self, points: int) -> "RatioSchedule":
        """Every band's ratio lowered by ``points`` (ppm), not below zero (cross-region cut)."""
        if not points:
            return self
        return RatioSchedule(tuple(Band(b.upto, max(0, b.ratio - points)) for b in self.bands))

    def bonus(self, points: int) -> "RatioSchedule":
        """Every band's ratio raised by ``points`` (ppm), not above 100% (hardship bonus)."""
        if not points:
            return self
        return RatioSchedule(tuple(Band(b.upto, min(RATIO_ONE, b.ratio + points)) for b in self.bands))

    def pay_exact(self, start: int, amount: int) -> int:
        """Σ ratio × the part of [start, start+amount) in each band, in fen·ppm (not yet rounded)."""
        total = 0
        lo = 0
        end = start + amount
        for band in self.bands:
            hi = band.upto
            a = max(lo, start)
            b = end if hi is None else min(hi, end)
            if b > a:
                total += (b - a) * band.ratio
            if hi is not None:
                lo = hi
            if hi is None or hi >= end:
                break
        return total

    def paying_width(self, a: int, b: int) -> int:
        """How much of [a, b) lies in bands whose ratio is above zero."""
        total, lo = 0, 0
        for band in self.bands:
            hi = band.upto
            x, y = max(lo, a), b if hi is None else min(hi, b)
            if band.ratio and y > x:
                total += y - x
            if hi is None or hi >= b:
                break
            lo = hi
        return total

    def cost_to_pay(self, start: int, pay_fen: int) -> tuple[int, int]:
        """The measured amount from ``start`` whose payment reaches ``pay_fen`` exactly.

        Returned as an exact fraction (numerator, denominator) so the caller rounds once.
        Used when an annual cap binds in the middle of a bill: the cost the fund covered.
        """
        if pay_fen <= 0:
            return 0, 1
        need = pay_fen * RATIO_ONE  # fen·ppm still to pay
        num, den = 0, 1  # cost so far, as num/den fen
        lo = 0
        for band in self.bands:
            hi = band.upto
            a = max(lo, start)
            if hi is None or hi > a:
                width = None if hi is None else hi - a
                if band.ratio and (width is None or width * band.ratio >= need):
                    # The cap is reached inside this band: cost = need / ratio.
                    num = num * band.ratio + need * den
                    den = den * band.ratio
                    return num, den
                if width is None:
                    break  # a zero-ratio open band never reaches the cap
                need -= width * band.ratio
                num += width * den
            if hi is not None:
                lo = hi
        raise ValueError("payment cannot be reached with these bands")


@dataclass(frozen=True, slots=True)
class Condition:
    """Which people a benefit variant applies to; None means "any"."""

    tier: int | None = None
    retired: bool | None = None
    age_min: int | None = None
    age_max: int | None = None

    def matches(self, tier: int | None, retired: bool, age: int) -> bool:
        return (
            (self.tier is None or self.tier == tier)
            and (self.retired is None or self.retired == retired)
            and (self.age_min is None or age >= self.age_min)
            and (self.age_max is None or age <= self.age_max)
        )


@dataclass(frozen=True, slots=True)
class ItemRatio:
    """A catalogue entry (by national ``code``) or a ``category`` of entries whose in-scope cost the pooled fund pays
    at ``ratio`` instead of the visit's ratio (docs/engine.md step 4)."""

    path: str  # where it stands in the policy file, cited in explanations
    code: str | None
    category: str | None
    ratio: int
    label_zh: str
    label_en: str

    def matches(self, code: str, categories: tuple[str, ...]) -> bool:
        return code == self.code if self.code is not None else self.category in categories


@dataclass(frozen=True, slots=True)
class BenefitVariant:
    """Basic pooled-fund rules for one visit class and one group of people.

    ``deductible`` is per admission for inpatient visits and per year otherwise.
    A level missing from ``ratio`` is not covered by the pooled fund at all.
    """

    path: str  # where it stands in the policy file, cited in explanations
    label_zh: str
    label_en: str
    when: Condition
    deductible: Mapping[str, int]
    ratio: Mapping[str, RatioSchedule]
    repeat_admission_factors: tuple[int, ...] = (RATIO_ONE,)
    # "excess": bands measured above the deductible; "cumulative": deductible included; "yearly": on the year's cumulative
    # in-scope cost of the rule's visit class (accumulator in_scope_accumulator), this visit's deductible included
    bands_basis: str = "excess"
    annual_cap: int | None = None  # outpatient pooling's own yearly cap (inpatient uses the scheme cap)
    eligible_ceiling: int | None = None  # yearly in-scope cost above which the basic layer stops
    # level -> share (ppm) of the previous year's average wage the deductible was set from (the file's `wage_share`);
    # the amount itself is in ``deductible``, computed once when the file is read. Shown in the explanation.
    deductible_shares: Mapping[str, int] = field(default_factory=dict)
    item_ratios: tuple[ItemRatio, ...] = ()  # the first that matches a line pays it at its own ratio
    # "excess": the ceiling measures eligible cost (in-scope above the deductible); "cumulative": the deductible counts too
    eligible_ceiling_basis: str = "excess"
    # Where this rule's covered eligible cost and pooled payment count (and its ceiling and cap read): by visit class.
    eligible_counts_against: str = "inpatient_eligible_used"
    pool_counts_against: str = "inpatient_pool_paid"

    @property
    def in_scope_accumulator(self) -> str:
        """The year's in-scope cost of this rule's class (what ``bands_basis: yearly`` measures on)."""
        return "inpatient_in_scope" if self.pool_counts_against == "inpatient_pool_paid" else "outpatient_in_scope"

    def schedule_for(self, level: str, age: int) -> "RatioSchedule | None":
        """The ratio schedule at ``level`` for a patient of ``age`` (None: the level is not covered)."""
        schedule = self.ratio.get(level)
        return None if schedule is None else schedule.for_age(age)

    def deductible_for(self, level: str, admission_number: int) -> int:
        base = self.deductible.get(level, 0)
        factors = self.repeat_admission_factors
        factor = factors[min(admission_number, len(factors)) - 1]
        return apply_ratio(base, factor)


@dataclass(frozen=True, slots=True)
class Scheme:
    insurance_type: str
    label_zh: str
    label_en: str
    tiers: tuple[int, ...] | None
    annual_cap: int | None  # basic pooled fund, per person and year (pool_fund_paid); None: no cap
    personal_account_tiers: tuple[int, ...] | None  # None: every tier has an account
    has_personal_account: bool
    second_layer: str | None  # the first layer above the basic fund: "serious_illness" | "large_amount" | None
    benefits: Mapping[str, tuple[BenefitVariant, ...]]  # visit kind -> variants, first match wins
    # The accumulator annual_cap counts against: pool_fund_paid (every pooled payment: every visit is capped by it) or one
    # class's (only visits whose rule counts there are capped by it).
    annual_cap_counts_against: str = "pool_fund_paid"
    # The scheme's own second-layer sections; None: the file's top-level one (Policy.serious_illness / large_amount).
    serious_illness: "SeriousIllness | None" = None
    large_amount: "LargeAmount | None" = None
    beyond_large_amount: "BeyondLargeAmount | None" = None
    # Every layer above the basic fund, in the order they pay (LAYERS); () with second_layer set means (second_layer,).
    layers: tuple[str, ...] = ()

    @property
    def layer_order(self) -> tuple[str, ...]:
        return self.layers or ((self.second_layer,) if self.second_layer else ())

    def account_for(self, tier: int | None) -> bool:
        if not self.has_personal_account:
            return False
        return self.personal_account_tiers is None or tier in self.personal_account_tiers

    def variants_for(self, kind: str) -> tuple[str, tuple[BenefitVariant, ...]]:
        """Emergency and pharmacy visits use the outpatient rules unless the policy sets their own."""
        if kind in self.benefits:
            return kind, self.benefits[kind]
        return "outpatient", self.benefits["outpatient"]


@dataclass(frozen=True, slots=True)
class SeriousIllness:
    """Resident serious-illness insurance (大病保险, hifmi_pay), measured on a yearly base."""

    threshold: int
    bands: RatioSchedule
    basis: str  # "excess": bands measured above the threshold; "cumulative": on the whole yearly base
    annual_cap: int | None
    base_includes: frozenset[str]
    hardship_statuses: frozenset[str]
    hardship_threshold_factor: int
    hardship_ratio_bonus: int
    hardship_no_cap: bool


@dataclass(frozen=True, slots=True)
class LargeAmount:
    """Employees' large-amount subsidy (职工大额, hifob_pay): pays on cost beyond the basic layer.

    Measured on the year's cost beyond the basic layer (accumulator large_amount_base): nothing below ``threshold``,
    then ``bands`` (a flat ratio is one band), measured above the threshold ("excess") or from 0 ("cumulative")."""

    bands: RatioSchedule
    annual_cap: int | None
    threshold: int = 0
    basis: str = "excess"

    @property
    def ratio(self) -> int:
        return self.bands.bands[0].ratio


@dataclass(frozen=True, slots=True)
class BeyondLargeAmount:
    """A layer for cost above the large-amount cap: the cost the large-amount layer could not pay on because its yearly
    cap ran out, measured yearly (beyond_cap_base) like the large-amount layer; reported as oth_pay or hifmi_pay."""

    bands: RatioSchedule
    annual_cap: int | None
    reported_as: str  # "oth_pay" | "hifmi_pay"
    threshold: int = 0
    basis: str = "excess"


@dataclass(frozen=True, slots=True)
class AssistanceStatus:
    label_zh: str
    label_en: str
    threshold: int  # yearly (起助线)
    ratio: int
    annual_cap: int | None


@dataclass(frozen=True, slots=True)
class Assistance:
    """Medical assistance (医疗救助, maf_pay) for people with a hardship status."""

    statuses: Mapping[str, AssistanceStatus]
    base_includes: frozenset[str]


@dataclass(frozen=True, slots=True)
class CrossRegionRule:
    extra_self_pay: int  # share of each line's in-scope amount the patient pays first
    ratio_cut: int  # points off the pooled-fund ratio


@dataclass(frozen=True, slots=True)
class CrossRegion:
    emergency_counts_as_filed: bool
    rules: Mapping[str, CrossRegionRule]  # filing -> rule


@dataclass(frozen=True, slots=True)
class AccountRules:
    excludes: frozenset[str]  # parts of the patient's share the account may not pay (own_expense, over_limit)
    family_mutual_aid: frozenset[str]  # relations whose account may pay (spouse, parent, child)
    guardian_min_balance_share: int  # of the previous-year average on-post wage; balance must exceed it
    guardian_visit_kinds: frozenset[str]
    # A credit to a personal account above this (fen) needs a second operator's approval (maker-checker).
    credit_approval_threshold: int = 1_000_000


@dataclass(frozen=True, slots=True)
class Policy:
    region: str
    region_name: str
    year: int
    revision: int
    digest: str  # sha256 of the file, first 12 hex digits: which exact text priced a bill
    source: str  # the file it came from, for error messages and citations
    avg_onpost_wage: int  # previous-year average on-post wage, yearly, fen
    wage_year: int
    paycode_ttl_seconds: int
    b_self_pay_ratio: int
    schemes: Mapping[str, Scheme]
    serious_illness: SeriousIllness | None
    large_amount: LargeAmount | None
    assistance: Assistance | None
    cross_region: CrossRegion
    account: AccountRules
    references: tuple[str, ...] = field(default=())
    credit: CreditRules | None = None  # None: the region offers no credit payment
    clearing: ClearingRules = field(default_factory=ClearingRules)  # monthly clearing: the quality-guarantee deposit
    beyond_large_amount: BeyondLargeAmount | None = None  # the default for schemes stacking it without their own

    def serious_illness_for(self, insurance_type: str) -> SeriousIllness | None:
        """The scheme's own serious-illness section, else the file's."""
        return self.schemes[insurance_type].serious_illness or self.serious_illness

    def large_amount_for(self, insurance_type: str) -> LargeAmount | None:
        return self.schemes[insurance_type].large_amount or self.large_amount

    def beyond_large_amount_for(self, insurance_type: str) -> BeyondLargeAmount | None:
        return self.schemes[insurance_type].beyond_large_amount or self.beyond_large_amount

    @property
    def version(self) -> str:
        return f"{self.region}-{self.year}.{self.revision}"

    @property
    def guardian_min_balance(self) -> int:
        """Shenzhen rule (5): the guardian's balance must exceed this (2017: 5% × 100,176 = 5008.80)."""
        return apply_ratio(self.avg_onpost_wage, self.account.guardian_min_balance_share)
