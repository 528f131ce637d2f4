"""Family rules: when a child's bill may use a guardian's personal account (Shenzhen, seed 000).

The five conditions, in the order the seed lists them. A refusal names every failed condition,
so the holder knows what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from yibao.domain.money import format_yuan


@dataclass(frozen=True, slots=True)
class GuardianCondition:
    number: int
    code: str
    zh: str
    en: str


CHILD_INSURED = GuardianCondition(
    1, "child_insured", "少儿需在本统筹区参保并持有效金融社保卡",
    "the child must be insured in this region and hold a valid financial social-security card")
GUARDIAN_ECARD_LINKED = GuardianCondition(
    2, "guardian_ecard_linked", "监护人须已绑定电子社保卡并关联少儿社保卡",
    "the guardian must have bound an e-card and linked the child's card")
FAMILY_ACCOUNT_LINKED = GuardianCondition(
    3, "family_account_linked", "监护人须与少儿完成家庭账户关联绑定",
    "the guardian and the child must be linked as a family account")
ENROLMENT_GUARDIAN = GuardianCondition(
    4, "enrolment_guardian", "监护人须与少儿参保登记时记录的监护人一致",
    "the guardian must be the one recorded at the child's enrolment")
GUARDIAN_BALANCE = GuardianCondition(
    5, "guardian_balance", "监护人医保个人账户余额须超过上年度在岗职工平均工资的5%",
    "the guardian's personal-account balance must exceed 5% of the previous-year average on-post wage")

GUARDIAN_CONDITIONS = (CHILD_INSURED, GUARDIAN_ECARD_LINKED, FAMILY_ACCOUNT_LINKED, ENROLMENT_GUARDIAN, GUARDIAN_BALANCE)


@dataclass(frozen=True, slots=True)
class GuardianFacts:
    """What the platform knows about a guardian–child pair when a bill is paid."""

    child_insured_in_region: bool
    child_has_financial_card: bool
    guardian_ecard_bound: bool
    child_card_linked: bool
    family_account_linked: bool
    guardian_matches_enrolment: bool
    guardian_balance: int  # fen


@dataclass(frozen=True, slots=True)
class GuardianDecision:
    allowed: bool
    failed: tuple[GuardianCondition, ...]
    min_balance: int  # the balance must be strictly above this (fen)

    def reason_zh(self) -> str:
        return "；".join(f"条件{c.number}未满足：{c.zh}" + self._balance_note_zh(c) for c in self.failed)

    def reason_en(self) -> str:
        return "; ".join(f"condition {c.number} not met: {c.en}" + self._balance_note_en(c) for c in self.failed)

    def _balance_note_zh(self, c: GuardianCondition) -> str:
        return f"（须高于¥{format_yuan(self.min_balance)}）" if c is GUARDIAN_BALANCE else ""

    def _balance_note_en(self, c: GuardianCondition) -> str:
        return f" (must be above ¥{format_yuan(self.min_balance)})" if c is GUARDIAN_BALANCE else ""


def check_guardian_account(facts: GuardianFacts, min_balance: int) -> GuardianDecision:
    """Apply the five conditions; ``min_balance`` is the policy's 5% of the average wage in fen."""
    met = {
        CHILD_INSURED: facts.child_insured_in_region and facts.child_has_financial_card,
        GUARDIAN_ECARD_LINKED: facts.guardian_ecard_bound and facts.child_card_linked,
        FAMILY_ACCOUNT_LINKED: facts.family_account_linked,
        ENROLMENT_GUARDIAN: facts.guardian_matches_enrolment,
        GUARDIAN_BALANCE: facts.guardian_balance > min_balance,
    }
    failed = tuple(c for c in GUARDIAN_CONDITIONS if not met[c])
    return GuardianDecision(allowed=not failed, failed=failed, min_balance=min_balance)
