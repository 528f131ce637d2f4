import pytest

from yibao.domain.family import GUARDIAN_CONDITIONS, GuardianFacts, check_guardian_account

MIN = 500880  # Shenzhen: 5% of 100,176.00 yuan
OK = dict(child_insured_in_region=True, child_has_financial_card=True, guardian_ecard_bound=True, child_card_linked=True,
          family_account_linked=True, guardian_matches_enrolment=True, guardian_balance=600000)


def test_all_five_conditions_met():
    d = check_guardian_account(GuardianFacts(**OK), MIN)
    assert d.allowed and d.failed == ()


@pytest.mark.parametrize("change, code", [
    ({"child_insured_in_region": False}, "child_insured"),
    ({"child_has_financial_card": False}, "child_insured"),
    ({"guardian_ecard_bound": False}, "guardian_ecard_linked"),
    ({"child_card_linked": False}, "guardian_ecard_linked"),
    ({"family_account_linked": False}, "family_account_linked"),
    ({"guardian_matches_enrolment": False}, "enrolment_guardian"),
    ({"guardian_balance": 500880}, "guardian_balance"),
])
def test_each_condition_refuses_and_is_named(change, code):
    d = check_guardian_account(GuardianFacts(**{**OK, **change}), MIN)
    assert not d.allowed
    assert [c.code for c in d.failed] == [code]
    number = next(c.number for c in GUARDIAN_CONDITIONS if c.code == code)
    assert f"条件{number}" in d.reason_zh() and f"condition {number}" in d.reason_en()


def test_the_5008_80_boundary():
    assert not check_guardian_account(GuardianFacts(**{**OK, "guardian_balance": 500880}), MIN).allowed
    assert check_guardian_account(GuardianFacts(**{**OK, "guardian_balance": 500881}), MIN).allowed
    refused = check_guardian_account(GuardianFacts(**{**OK, "guardian_balance": 500880}), MIN)
    assert "5008.80" in refused.reason_zh() and "5008.80" in refused.reason_en()


def test_every_failed_condition_is_listed_in_order():
    facts = GuardianFacts(**{**OK, "family_account_linked": False, "guardian_balance": 0, "child_insured_in_region": False})
    d = check_guardian_account(facts, MIN)
    assert [c.code for c in d.failed] == ["child_insured", "family_account_linked", "guardian_balance"]
