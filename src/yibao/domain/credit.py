"""Credit payment (信用支付) rules: pure, no I/O.

Seed 004: with a contract between the insured person and a bank, the bank pays the hospital the
person's cash share within an approved line ("医院看病，回家付钱"); the holder, or a family member,
repays later. The numbers come from the region's policy file (`credit:` section, `CreditRules`).

Bills: one per payment. Hangzhou's 医信付 counts its interest-free period per transaction, and the
bank books one bill per payment it makes to a hospital; so each visit has its own due date, and a
relative can settle one visit's bill without touching another's.

Everything is integer fen and Beijing calendar days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from yibao.domain.errors import Conflict, Forbidden, InputError
from yibao.domain.money import format_yuan

# The credit terms the app shows before enrolment; the holder accepts a version, which the bank checks.
CONSENT_VERSION = "credit-terms-v1"
CONSENT_TEXT_ZH = ("本人同意：医保平台向合作银行提供本人的匿名标识与本次就医需个人现金支付的金额；银行在核定的授信额度内"
                   "先行向医疗机构支付个人负担的现金部分；本人（或家庭成员代为）在还款日前足额还款；逾期未还将暂停信用支付。"
                   "医保基金支付部分不经过银行。")
CONSENT_TEXT_EN = ("I agree that the platform gives the partner bank an anonymous token for me and the cash share of each visit; the "
                   "bank pays the hospital that cash share within my approved line; I (or a family member for me) repay by the due "
                   "date; an overdue bill suspends credit payment. No fund share ever goes through the bank.")

_ORDER_REF = re.compile(r"^[A-Za-z0-9]{8,32}$")  # what every payment institution accepts as our order number


class CreditError(Conflict):
    """A credit refusal that clashes with the line's state (409)."""


@dataclass(frozen=True, slots=True)
class CreditRules:
    """A region's credit-payment parameters (policy file, `credit:`)."""

    max_line: int  # fen: the most any holder's line may be here, whatever the bank grants
    interest_free_days: int  # a bill is due this many days after the bank paid the hospital
    grace_days: int  # days after the due date before the line is suspended
    reminder_days_before: tuple[int, ...]  # reminders this many days before the due date (besides the due day)
    min_age: int = 18


# ---- eligibility ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Condition:
    code: str
    zh: str
    en: str


ADULT = Condition("adult", "须年满18周岁", "must be 18 or older")
INSURED_ACTIVE = Condition("insured_active", "须在本统筹区正常参保", "must be insured and active in this region")
CONSENT_GIVEN = Condition("consent_given", "须阅读并同意当前版本的信用支付协议", "must accept the current credit-payment terms")
ECARD_BOUND = Condition("ecard_bound", "电子社保卡须已激活并绑定该银行", "the e-card must be active and bound to this bank")
CONDITIONS = (ADULT, INSURED_ACTIVE, CONSENT_GIVEN, ECARD_BOUND)


@dataclass(frozen=True, slots=True)
class EligibilityFacts:
    age: int
    insured_active: bool
    consent_version: str | None  # the version the holder accepted now, if any
    ecard_bound_to_bank: bool


def failed_conditions(facts: EligibilityFacts, rules: CreditRules) -> tuple[Condition, ...]:
    """Every condition not met, in order, so a refusal can name all of them at once."""
    met = {ADULT: facts.age >= rules.min_age, INSURED_ACTIVE: facts.insured_active,
           CONSENT_GIVEN: facts.consent_version == CONSENT_VERSION, ECARD_BOUND: facts.ecard_bound_to_bank}
    return tuple(c for c in CONDITIONS if not met[c])


def require_eligible(facts: EligibilityFacts, rules: CreditRules) -> None:
    failed = failed_conditions(facts, rules)
    if failed:
        field = failed[0].code
        raise Forbidden(field, "credit_not_eligible", "不符合信用支付开通条件：" + "；".join(c.zh for c in failed),
                        "not eligible for credit payment: " + "; ".join(c.en for c in failed))


def line_limit(bank_limit: int, rules: CreditRules) -> int:
    """The line the platform lets the holder use: what the bank granted, capped by the region."""
    return max(0, min(bank_limit, rules.max_line))


# ---- the line ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Line:
    """limit ≥ used ≥ 0; used = reserved (held for payments in progress) + owed (bills outstanding)."""

    limit: int
    used: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.used <= self.limit:
            raise ValueError(f"a line needs 0 ≤ used ≤ limit, got used={self.used} limit={self.limit}")

    @property
    def available(self) -> int:
        return self.limit - self.used

    def reserve(self, amount: int) -> "Line":
        check_amount(amount)
        if amount > self.available:
            raise CreditError("amount", "credit_line_exceeded",
                              f"超出信用额度：需要¥{format_yuan(amount)}，可用¥{format_yuan(self.available)}",
                              f"above the credit line: needs ¥{format_yuan(amount)}, available ¥{format_yuan(self.available)}")
        return Line(self.limit, self.used + amount)

    def release(self, amount: int) -> "Line":
        """A reservation given back (payment voided), or a repayment: the line is free again by that much."""
        check_amount(amount)
        if amount > self.used:
            raise ValueError("cannot give back more than is used")
        return Line(self.limit, self.used - amount)


def check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InputError("amount", "invalid_amount", "金额须大于0", "the amount must be greater than 0")


def check_order_ref(order_ref: str) -> None:
    if not isinstance(order_ref, str) or not _ORDER_REF.match(order_ref):
        raise InputError("order_ref", "invalid_order_ref", "订单号应为8–32位字母或数字", "the order number must be 8–32 letters or digits")


# ---- bills, repayment, reminders, overdue ------------------------------------------------------

def due_date(paid_on: date, rules: CreditRules) -> date:
    """The last day to repay without interest: the day the bank paid the hospital + the interest-free days."""
    return paid_on + timedelta(days=rules.interest_free_days)


@dataclass(frozen=True, slots=True)
class Bill:
    amount: int
    repaid: int
    due: date

    def __post_init__(self) -> None:
        if not 0 <= self.repaid <= self.amount:
            raise ValueError(f"a bill needs 0 ≤ repaid ≤ amount, got repaid={self.repaid} amount={self.amount}")

    @property
    def outstanding(self) -> int:
        return self.amount - self.repaid

    def status(self, today: date) -> str:
        if self.outstanding == 0:
            return "repaid"
        return "overdue" if today > self.due else "open"

    def suspends_line(self, today: date, rules: CreditRules) -> bool:
        """Past the due date and the grace days with money still owed."""
        return self.outstanding > 0 and today > self.due + timedelta(days=rules.grace_days)

    def repay(self, amount: int) -> "Bill":
        """Apply a repayment (whole or partial) by anyone allowed to pay: never above what is owed."""
        check_amount(amount)
        if amount > self.outstanding:
            raise CreditError("amount", "repayment_exceeds_outstanding",
                              f"还款金额超过待还金额¥{format_yuan(self.outstanding)}",
                              f"the repayment is more than the ¥{format_yuan(self.outstanding)} still owed")
        return Bill(self.amount, self.repaid + amount, self.due)


def line_suspended(bills: list[Bill], today: date, rules: CreditRules) -> bool:
    """The overdue rule: any bill past due + grace suspends the line; repaying those in full restores it."""
    return any(b.suspends_line(today, rules) for b in bills)


def reminder_kind(bill: Bill, today: date, rules: CreditRules) -> str | None:
    """The reminder a bill should have by ``today``: "d-N" from N days before the due date, "d0" on the
    due day, "overdue" after it; only the latest one that has come (a job that missed a day does not
    send three messages at once). None once repaid, or before the first reminder's day."""
    if bill.outstanding == 0:
        return None
    if today > bill.due:
        return "overdue"
    if today == bill.due:
        return "d0"
    days_left = (bill.due - today).days
    passed = [n for n in rules.reminder_days_before if n >= days_left]
    return f"d-{min(passed)}" if passed else None


def may_repay(payer_id: str, holder_id: str, family_relation: str | None) -> None:
    """The holder repays their own bills; a family member only with an active family link."""
    if payer_id != holder_id and family_relation is None:
        raise Forbidden("payer", "not_family", "只能为本人或已关联的家庭成员还款",
                        "you may repay only your own bills or those of a linked family member")


# ---- ledger accounts ---------------------------------------------------------------------------
# A line is a no-overdraft account credited with the limit by the bank's grants account: the
# ledger itself then refuses a hold above the line. A capture debits it to the hospital's cash
# account (the bank paid the hospital); a repayment credits it back from outside money.

def line_account(enrolment_id: str) -> str:
    return f"credit:{enrolment_id}"


def grants_account(payment_institution_id: str) -> str:
    return f"bank:{payment_institution_id}:lines"


def repayments_source(region: str) -> str:
    """Money from outside the ledger: what holders and their families pay the bank back."""
    return f"external:{region}:credit_repayments"


class BankOutcomeUnknown(CreditError):
    """The bank gave no trustworthy answer: the state is kept as unknown until a query resolves it."""

    def __init__(self, field: str, what_zh: str, what_en: str) -> None:
        super().__init__(field, "bank_outcome_unknown", f"银行未给出确定结果（{what_zh}），已记录待查询，请稍后查看",
                         f"the bank gave no definite answer ({what_en}); it is recorded and will be queried — check again later")


def bank_refusal(field: str, bank_code: str) -> CreditError:
    """A bank's signed refusal, as our own stable code (the bank's code kept in the message)."""
    known = {
        "LINE_SUSPENDED_OVERDUE": ("credit_line_suspended", "信用额度因账单逾期已暂停", "the credit line is suspended: a bill is overdue"),
        "CREDIT_LIMIT_EXCEEDED": ("credit_line_exceeded", "超出银行授信额度", "above the bank's credit line"),
        "EXCEEDS_PASSWORD_FREE_LIMIT": ("credit_single_limit_exceeded", "超出单笔免密额度", "above the per-payment limit agreed with the bank"),
        "CREDIT_REFUSED": ("credit_refused", "银行未批准授信", "the bank did not grant a credit line"),
        "CONSENT_REQUIRED": ("consent_outdated", "银行要求同意最新版协议", "the bank requires the current terms to be accepted"),
        "REPAYMENT_EXCEEDS_OUTSTANDING": ("repayment_exceeds_outstanding", "还款金额超过银行记录的待还金额",
                                          "the repayment is more than the bank says is owed"),
    }
    code, zh, en = known.get(bank_code, ("bank_declined", "银行拒绝了该请求", "the bank declined the request"))
    return CreditError(field, code, f"{zh}（银行代码 {bank_code}）", f"{en} (bank code {bank_code})")


def suspended_error() -> CreditError:
    return CreditError("credit_line", "credit_line_suspended", "信用额度因账单逾期已暂停，还清逾期账单后恢复",
                       "the credit line is suspended because a bill is overdue; repaying it in full restores the line")
