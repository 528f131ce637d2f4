"""Credit-payment rules (信用支付): exact tables, the policy section, and properties of the line and bills."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from yibao.domain import credit
from yibao.domain.credit import Bill, CreditError, CreditRules, EligibilityFacts, Line
from yibao.domain.errors import Forbidden, InputError, PolicyError
from yibao.policies.loader import BUILTIN_DIR, builtin_policy, load_policy_file

RULES = CreditRules(max_line=1000_00, interest_free_days=10, grace_days=3, reminder_days_before=(3, 1))
OK = EligibilityFacts(age=40, insured_active=True, consent_version=credit.CONSENT_VERSION, ecard_bound_to_bank=True)


# ---- eligibility ------------------------------------------------------------------------------

@pytest.mark.parametrize("facts, failed", [
    (OK, ()),
    (EligibilityFacts(18, True, credit.CONSENT_VERSION, True), ()),
    (EligibilityFacts(17, True, credit.CONSENT_VERSION, True), ("adult",)),
    (EligibilityFacts(40, False, credit.CONSENT_VERSION, True), ("insured_active",)),
    (EligibilityFacts(40, True, None, True), ("consent_given",)),
    (EligibilityFacts(40, True, "credit-terms-v0", True), ("consent_given",)),
    (EligibilityFacts(40, True, credit.CONSENT_VERSION, False), ("ecard_bound",)),
    (EligibilityFacts(12, False, None, False), ("adult", "insured_active", "consent_given", "ecard_bound")),
])
def test_eligibility_names_every_failed_condition(facts, failed):
    assert tuple(c.code for c in credit.failed_conditions(facts, RULES)) == failed


def test_an_ineligible_holder_is_refused_with_every_reason():
    with pytest.raises(Forbidden) as exc:
        credit.require_eligible(EligibilityFacts(17, True, None, True), RULES)
    assert (exc.value.code, exc.value.field) == ("credit_not_eligible", "adult")
    assert "18" in exc.value.message_zh and "credit-payment terms" in exc.value.message_en


@pytest.mark.parametrize("bank, expected", [(5000_00, 1000_00), (1000_00, 1000_00), (300_00, 300_00), (0, 0)])
def test_the_region_caps_the_bank_line(bank, expected):
    assert credit.line_limit(bank, RULES) == expected


# ---- the line ---------------------------------------------------------------------------------

def test_reserve_and_release_move_the_available_amount():
    line = Line(1000_00).reserve(300_00).reserve(700_00)
    assert (line.used, line.available) == (1000_00, 0)
    with pytest.raises(CreditError) as exc:
        line.reserve(1)
    assert (exc.value.code, exc.value.field) == ("credit_line_exceeded", "amount")
    assert line.release(300_00).available == 300_00


@pytest.mark.parametrize("amount", [0, -1, True, 1.5])
def test_amounts_must_be_positive_fen(amount):
    with pytest.raises(InputError):
        Line(1000_00).reserve(amount)


@pytest.mark.parametrize("ref, ok", [("ORDER0001", True), ("A" * 32, True), ("SHORT", False), ("A" * 33, False), ("ORDER-0001", False)])
def test_order_refs_are_what_banks_accept(ref, ok):
    if ok:
        credit.check_order_ref(ref)
    else:
        with pytest.raises(InputError):
            credit.check_order_ref(ref)


ops = st.lists(st.tuples(st.sampled_from(["reserve", "release"]), st.integers(min_value=1, max_value=2000_00)), max_size=40)


@given(limit=st.integers(min_value=0, max_value=5000_00), steps=ops)
def test_used_never_exceeds_the_limit(limit, steps):
    line = Line(limit)
    for op, amount in steps:
        try:
            line = line.reserve(amount) if op == "reserve" else line.release(min(amount, line.used)) if line.used else line
        except CreditError:
            assert amount > line.available  # refused only when it would go above the limit
        assert 0 <= line.used <= line.limit and line.available == line.limit - line.used


# ---- bills ------------------------------------------------------------------------------------

def test_due_date_is_the_payment_day_plus_the_interest_free_days():
    assert credit.due_date(date(2026, 11, 22), RULES) == date(2026, 12, 2)
    assert credit.due_date(date(2026, 12, 28), RULES) == date(2027, 1, 7)


def test_bill_status_and_the_overdue_rule():
    due = date(2026, 12, 2)
    bill = Bill(500_00, 0, due)
    assert [bill.status(due - timedelta(days=1)), bill.status(due), bill.status(due + timedelta(days=1))] == ["open", "open", "overdue"]
    # grace: overdue from the day after the due date, the line suspended only after the grace days
    assert not bill.suspends_line(due + timedelta(days=3), RULES)
    assert bill.suspends_line(due + timedelta(days=4), RULES)
    partly = bill.repay(200_00)
    assert (partly.repaid, partly.outstanding) == (200_00, 300_00) and credit.line_suspended([partly], due + timedelta(days=4), RULES)
    paid = partly.repay(300_00)
    assert paid.status(due + timedelta(days=9)) == "repaid" and not credit.line_suspended([paid], due + timedelta(days=9), RULES)


def test_a_repayment_above_what_is_owed_is_refused():
    with pytest.raises(CreditError) as exc:
        Bill(500_00, 400_00, date(2026, 12, 2)).repay(100_01)
    assert (exc.value.code, exc.value.field) == ("repayment_exceeds_outstanding", "amount")


@pytest.mark.parametrize("days_before_due, kind", [(5, None), (4, None), (3, "d-3"), (2, "d-3"), (1, "d-1"), (0, "d0"), (-1, "overdue"),
                                                   (-20, "overdue")])
def test_reminder_schedule(days_before_due, kind):
    due = date(2026, 12, 2)
    assert credit.reminder_kind(Bill(100_00, 0, due), due - timedelta(days=days_before_due), RULES) == kind


def test_no_reminder_for_a_repaid_bill():
    assert credit.reminder_kind(Bill(100_00, 100_00, date(2026, 12, 2)), date(2026, 12, 2), RULES) is None


def test_only_the_holder_or_a_linked_relative_may_repay():
    credit.may_repay("P1", "P1", None)
    credit.may_repay("P2", "P1", "spouse")
    with pytest.raises(Forbidden) as exc:
        credit.may_repay("P3", "P1", None)
    assert (exc.value.code, exc.value.field) == ("not_family", "payer")


@given(amount=st.integers(min_value=1, max_value=10**9), payments=st.lists(st.integers(min_value=1, max_value=10**9), max_size=30))
def test_repayments_never_exceed_what_was_owed_and_money_is_conserved(amount, payments):
    bill = Bill(amount, 0, date(2026, 12, 2))
    accepted = 0
    for p in payments:
        try:
            bill = bill.repay(p)
            accepted += p
        except CreditError:
            assert p > bill.outstanding
        assert bill.repaid == accepted <= amount
        assert bill.repaid + bill.outstanding == amount  # nothing created or lost


@given(limit=st.integers(min_value=1, max_value=5000_00),
       payments=st.lists(st.tuples(st.integers(min_value=1, max_value=3000_00), st.booleans(), st.integers(min_value=0, max_value=100)),
                         max_size=20))
def test_line_and_bills_agree(limit, payments):
    """Reserve; capture (a bill) or release; repay a share of each bill: used = held + owed, never above the limit."""
    line, bills = Line(limit), []
    for amount, captured, share in payments:
        try:
            line = line.reserve(amount)
        except CreditError:
            continue
        if captured:
            bills.append(Bill(amount, 0, date(2026, 12, 2)))
        else:
            line = line.release(amount)
    for i, b in enumerate(bills):
        part = b.outstanding * share // 100
        if part:
            bills[i] = b.repay(part)
            line = line.release(part)
    assert line.used == sum(b.outstanding for b in bills) <= limit


# ---- the policy file's credit section ----------------------------------------------------------

def test_every_demo_region_states_its_credit_rules():
    sz, qd, nb = (builtin_policy(r, 2026).credit for r in ("440300", "370200", "330200"))
    assert sz == CreditRules(max_line=3000_00, interest_free_days=30, grace_days=3, reminder_days_before=(3,), min_age=18)
    assert nb == CreditRules(max_line=1000_00, interest_free_days=10, grace_days=3, reminder_days_before=(3, 1), min_age=18)
    assert qd is not None and qd.max_line == 1000_00


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((BUILTIN_DIR / "440300-2026.yaml").read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["credit"].update(max_line="0"), "credit.max_line"),
    (lambda d: d["credit"].update(max_line=1000.0), "credit.max_line"),
    (lambda d: d["credit"].update(interest_free_days=0), "credit.interest_free_days"),
    (lambda d: d["credit"].update(interest_free_days=91), "credit.interest_free_days"),
    (lambda d: d["credit"].update(grace_days=-1), "credit.grace_days"),
    (lambda d: d["credit"].update(reminder_days_before=[3, 3]), "credit.reminder_days_before"),
    (lambda d: d["credit"].update(reminder_days_before=[0]), "credit.reminder_days_before"),
    (lambda d: d["credit"].update(min_age=16), "credit.min_age"),
    (lambda d: d["credit"].update(apr="0.18"), "credit.apr"),
])
def test_a_broken_credit_section_names_the_field(tmp_path, mutate, field):
    with pytest.raises(PolicyError) as err:
        load_policy_file(_write(tmp_path, mutate))
    assert err.value.field == f"broken.yaml: {field}"


def test_a_region_without_a_credit_section_offers_none(tmp_path):
    assert load_policy_file(_write(tmp_path, lambda d: d.pop("credit"))).credit is None
