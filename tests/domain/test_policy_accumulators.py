"""Issue 16, items 1, 2 and 5: which accumulator each ceiling and cap counts against, the ceiling's basis, and
second-layer sections per scheme. Every amount is computed by hand in the comment beside it (yuan), from
src/yibao/policies/370200-2026.yaml (Qingdao) with the edits each test states.

A year is replayed visit by visit: each bill starts from the accumulators the previous settlements left
(``acc.plus(delta)``), so the tests say nothing about which accumulator fields exist — only what the year's
earlier visits may and may not use up.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
import yaml

from yibao.domain.bill import Accumulators
from yibao.domain.errors import PolicyError
from yibao.domain.policy import Policy
from yibao.domain.settlement import Settlement, settle
from yibao.formats.bill_json import bill_from_mapping
from yibao.policies.loader import BUILTIN_DIR
from yibao.policies.schema import policy_from_mapping

QD = "370200"


def qd_policy(edit: Callable[[dict[str, Any]], None] | None = None) -> Policy:
    """Qingdao's shipped policy, edited as the test says."""
    data = yaml.safe_load((BUILTIN_DIR / f"{QD}-2026.yaml").read_text(encoding="utf-8"))
    if edit is not None:
        edit(data)
    return policy_from_mapping(data, f"{QD}-2026.yaml")


def emp_inpatient(data: dict[str, Any]) -> dict[str, Any]:
    """The in-service employee's inpatient rule (the second, catch-all one)."""
    return data["schemes"]["employee"]["inpatient"][1]


def emp_outpatient(data: dict[str, Any]) -> dict[str, Any]:
    return data["schemes"]["employee"]["outpatient"][1]


def bill(kind: str = "inpatient", level: str = "level1", amount: str = "1000.00", admission: int = 1,
         insurance: str = "employee", acc: Accumulators | None = None, hardship: str | None = None) -> Any:
    person = {"insurance_type": insurance, "tier": 1 if insurance == "employee" else None, "retired": False,
              "age": 8 if insurance == "child" else 45, "hardship": hardship}
    b = bill_from_mapping({
        "insured_region": QD, "treatment_region": QD, "date": "2026-05-10", "person": person,
        "visit": {"kind": kind, "institution_level": level, "admission_number": admission},
        "lines": [{"code": "A1", "name": "item", "class": "A", "unit_price": amount, "quantity": "1"}],
    })
    return dataclasses.replace(b, accumulators=acc or Accumulators())


def year(policy: Policy, *bills: Any) -> list[Settlement]:
    """Settle the bills in order, each from the accumulators the earlier ones left."""
    acc = Accumulators()
    out = []
    for b in bills:
        s = settle(dataclasses.replace(b, accumulators=acc), policy)
        assert s.total == s.fund_total + s.person_total and s.person_total == s.account_pay + s.cash_pay
        assert s.fund_total == s.pool_fund + s.serious_illness + s.large_amount + s.other + s.assistance
        acc = acc.plus(s.accumulator_delta)
        out.append(s)
    return out


# ------------------------------------------------------------------ item 1: one accumulator per ceiling


def ceiling_20000(data: dict[str, Any]) -> None:
    emp_inpatient(data)["eligible_ceiling"] = "20000"


def test_an_outpatient_visit_does_not_use_up_the_inpatient_eligible_ceiling() -> None:
    # Qingdao employee, inpatient ceiling lowered to 20000 (the shipped rule shape: outpatient rules have none).
    # 1. stay, level 1, A 15000: deductible 300, eligible 14700 (all within the ceiling);
    #    bands cumulative from 300: 9700*0.90 + 5000*0.95 = 8730 + 4750 = 13480.00
    # 2. outpatient, community, A 1000: yearly deductible 300, 700*0.70 = 490.00 — its 700 of eligible cost is
    #    outpatient pooling's and must not count against the inpatient ceiling
    # 3. stay 2, level 1, A 6000: deductible 300*0.5 = 150, eligible 5850; ceiling room 20000-14700 = 5300
    #    pool 5300*0.90 = 4770.00 (all in the first band, [150, 5450)); spill 550 -> large amount 550*0.90 = 495.00
    #    (the old engine took the outpatient 700 off the room too: 4600*0.90 = 4140.00 and 1250*0.90 = 1125.00)
    first, out, third = year(qd_policy(ceiling_20000), bill(amount="15000.00"),
                             bill("outpatient", "community", "1000.00"), bill(amount="6000.00", admission=2))
    assert (first.pool_fund, first.large_amount) == (1_348_000, 0)
    assert out.pool_fund == 49_000
    assert (third.deductible, third.pool_fund, third.large_amount) == (15_000, 477_000, 49_500)
    assert third.cash_pay == 600_000 - 477_000 - 49_500


def test_an_inpatient_stay_does_not_use_up_an_outpatient_eligible_ceiling() -> None:
    # Outpatient pooling given a ceiling of 2000 (eligible cost a year); the stay before uses 14700 of inpatient cost.
    # Outpatient, community, A 1000: deductible 300, eligible 700 within 2000 -> 700*0.70 = 490.00 (old engine: 0.00,
    # the stay had used the only accumulator past 2000) and nothing moves on (outpatient cost never does).
    def edit(data: dict[str, Any]) -> None:
        emp_outpatient(data)["eligible_ceiling"] = "2000"

    _, out = year(qd_policy(edit), bill(amount="15000.00"), bill("outpatient", "community", "1000.00"))
    assert (out.deductible, out.pool_fund, out.large_amount, out.cash_pay) == (30_000, 49_000, 0, 51_000)


def test_rules_that_name_the_same_accumulator_share_the_ceiling() -> None:
    # The outpatient rule says its eligible cost counts against the inpatient ceiling's accumulator, so the year of
    # test 1 replays as the old single accumulator did: room at stay 2 = 20000 - 14700 - 700 = 4600;
    # pool 4600*0.90 = 4140.00; spill 5850-4600 = 1250 -> 1250*0.90 = 1125.00.
    def edit(data: dict[str, Any]) -> None:
        ceiling_20000(data)
        emp_outpatient(data)["eligible_ceiling_counts_against"] = "inpatient_eligible_used"

    *_, third = year(qd_policy(edit), bill(amount="15000.00"), bill("outpatient", "community", "1000.00"),
                     bill(amount="6000.00", admission=2))
    assert (third.pool_fund, third.large_amount) == (414_000, 112_500)


def test_a_scheme_cap_counting_only_inpatient_payments_ignores_outpatient_pooling() -> None:
    # Employee annual cap lowered to 20000 and counted on inpatient payments only (outpatient pooling has its own cap).
    # 1. outpatient, community, A 1000: 700*0.70 = 490.00 (within the outpatient cap of 3000)
    # 2. stay, level 1, A 25000: deductible 300; raw 9700*0.90 + 15000*0.95 = 8730 + 14250 = 22980 > cap left 20000
    #    (the old engine: 20000 - 490 = 19510). The fund pays 20000.00; the cost it covered is
    #    9700 + (20000-8730)/0.95 = 9700 + 11863.1579 = 21563.16; beyond it 24700 - 21563.16 = 3136.84 of paying cost
    #    -> large amount 3136.84*0.90 = 2823.156 -> 2823.16
    def edit(data: dict[str, Any]) -> None:
        data["schemes"]["employee"]["annual_cap"] = "20000"
        data["schemes"]["employee"]["annual_cap_counts_against"] = "inpatient_pool_paid"

    out, stay = year(qd_policy(edit), bill("outpatient", "community", "1000.00"), bill(amount="25000.00"))
    assert out.pool_fund == 49_000
    assert (stay.pool_fund, stay.large_amount) == (2_000_000, 282_316)


def test_by_default_the_scheme_cap_counts_every_pooled_payment() -> None:
    # As before: the same year with the cap on pool_fund_paid (the default) leaves 20000 - 490 = 19510 for the stay;
    # covered 9700 + (19510-8730)/0.95 = 9700 + 11347.368 = 21047.37; beyond 24700 - 21047.37 = 3652.63
    # -> 3652.63*0.90 = 3287.367 -> 3287.37
    def edit(data: dict[str, Any]) -> None:
        data["schemes"]["employee"]["annual_cap"] = "20000"

    _, stay = year(qd_policy(edit), bill("outpatient", "community", "1000.00"), bill(amount="25000.00"))
    assert (stay.pool_fund, stay.large_amount) == (1_951_000, 328_737)


def test_a_cap_or_ceiling_naming_an_unknown_accumulator_is_refused_by_field() -> None:
    def bad_ceiling(data: dict[str, Any]) -> None:
        emp_inpatient(data)["eligible_ceiling_counts_against"] = "pool_fund_paid"

    def bad_cap(data: dict[str, Any]) -> None:
        data["schemes"]["employee"]["annual_cap_counts_against"] = "serious_illness_paid"

    with pytest.raises(PolicyError, match="eligible_ceiling_counts_against"):
        qd_policy(bad_ceiling)
    with pytest.raises(PolicyError, match="annual_cap_counts_against"):
        qd_policy(bad_cap)


# ------------------------------------------------------------------ item 2: the ceiling's basis


def test_a_ceiling_measured_with_the_deductible_leaves_less_room() -> None:
    # Inpatient ceiling 20000, basis cumulative: the deductible counts towards the ceiling.
    # Stay, level 1, A 25000: in-scope 25000, deductible 300; the ceiling covers in-scope [0, 20000), so the
    # eligible part within it is 20000 - 300 = 19700 and 24700 - 19700 = 5000 spills.
    # pool from 300: 9700*0.90 + 10000*0.95 = 8730 + 9500 = 18230.00; large amount 5000*0.90 = 4500.00
    def edit(data: dict[str, Any]) -> None:
        ceiling_20000(data)
        emp_inpatient(data)["eligible_ceiling_basis"] = "cumulative"

    (s,) = year(qd_policy(edit), bill(amount="25000.00"))
    assert (s.pool_fund, s.large_amount, s.cash_pay) == (1_823_000, 450_000, 2_500_000 - 1_823_000 - 450_000)


def test_a_ceiling_measured_without_the_deductible_is_the_default() -> None:
    # basis excess (default): the ceiling counts eligible cost only; 20000 of the 24700 is within it, 4700 spills.
    # pool 9700*0.90 + 10300*0.95 = 8730 + 9785 = 18515.00; large amount 4700*0.90 = 4230.00
    for basis in (None, "excess"):
        def edit(data: dict[str, Any], basis: str | None = basis) -> None:
            ceiling_20000(data)
            if basis:
                emp_inpatient(data)["eligible_ceiling_basis"] = basis

        (s,) = year(qd_policy(edit), bill(amount="25000.00"))
        assert (s.pool_fund, s.large_amount) == (1_851_500, 423_000)


def test_a_cumulative_ceiling_counts_each_stays_deductible_across_the_year() -> None:
    # basis cumulative, ceiling 20000. Stay 1, A 19000: deductible 300, measured 19000 (all within) ->
    # 9700*0.90 + 9000*0.95 = 8730 + 8550 = 17280.00. Stay 2, A 3000: deductible 150; room 20000 - 19000 = 1000,
    # of which the deductible takes 150 first: 850 of eligible cost within, 3000-150-850 = 2000 spills.
    # pool 850*0.90 = 765.00; large amount 2000*0.90 = 1800.00 (basis excess would give 1300 within: 1170.00 + 1395.00)
    def edit(data: dict[str, Any]) -> None:
        ceiling_20000(data)
        emp_inpatient(data)["eligible_ceiling_basis"] = "cumulative"

    first, second = year(qd_policy(edit), bill(amount="19000.00"), bill(amount="3000.00", admission=2))
    assert first.pool_fund == 1_728_000
    assert (second.deductible, second.pool_fund, second.large_amount) == (15_000, 76_500, 180_000)


# ------------------------------------------------------------------ item 5: second layers per scheme


def test_a_scheme_may_carry_its_own_large_amount_section() -> None:
    # Employee inpatient ceiling 10000; the employee scheme's own large_amount pays 80 % (the file's top level: 90 %).
    # Stay, level 1, A 20000: deductible 300, eligible 19700, 10000 within: 9700*0.90 + 300*0.95 = 8730 + 285 = 9015.00;
    # spill 9700 -> 9700*0.80 = 7760.00
    def edit(data: dict[str, Any]) -> None:
        emp_inpatient(data)["eligible_ceiling"] = "10000"
        data["schemes"]["employee"]["large_amount"] = {"ratio": "0.80", "annual_cap": "100000"}

    (s,) = year(qd_policy(edit), bill(amount="20000.00"))
    assert (s.pool_fund, s.large_amount) == (901_500, 776_000)

    def without_top_level(data: dict[str, Any]) -> None:
        edit(data)
        del data["large_amount"]

    (s,) = year(qd_policy(without_top_level), bill(amount="20000.00"))
    assert (s.pool_fund, s.large_amount) == (901_500, 776_000)


def test_residents_and_children_of_one_city_may_have_different_serious_illness_rules() -> None:
    # The resident scheme's own serious_illness: threshold 10000, a flat 50 %; children keep the top level
    # (threshold 18000, 60 % to 100000).
    # Resident, level 3, A 50000: deductible 1000, pool 49000*0.60 = 29400.00, base 20600 -> (20600-10000)*0.50 = 5300.00
    # Child, level 3, A 50000: deductible 600, pool 49400*0.75 = 37050.00, base 12950 < 18000 -> 0.00
    def edit(data: dict[str, Any]) -> None:
        data["schemes"]["resident"]["serious_illness"] = {"threshold": "10000", "bands": "0.50",
                                                          "base_includes": ["in_scope_self_pay"]}

    policy = qd_policy(edit)
    (res,) = year(policy, bill(level="level3", amount="50000.00", insurance="resident"))
    (kid,) = year(policy, bill(level="level3", amount="50000.00", insurance="child"))
    assert (res.pool_fund, res.serious_illness) == (2_940_000, 530_000)
    assert (kid.pool_fund, kid.serious_illness) == (3_705_000, 0)


def test_a_schemes_own_serious_illness_hardship_statuses_are_the_ones_a_bill_may_name() -> None:
    # The resident section knows only "dibao"; "tekun" stays known through assistance, whose statuses the file lists.
    # Resident dibao, level 3, A 50000: base 20600, own threshold 10000 × factor 0.5 = 5000, ratio 0.50 + 0.10 = 0.60:
    # (20600 - 5000) * 0.60 = 9360.00
    def edit(data: dict[str, Any]) -> None:
        data["schemes"]["resident"]["serious_illness"] = {
            "threshold": "10000", "bands": "0.50", "hardship": {"statuses": ["dibao"], "threshold_factor": "0.5",
                                                                "ratio_bonus": "0.10"}}

    (s,) = year(qd_policy(edit), bill(level="level3", amount="50000.00", insurance="resident", hardship="dibao"))
    assert s.serious_illness == 936_000


def test_a_scheme_naming_a_layer_that_neither_it_nor_the_file_defines_is_refused() -> None:
    def edit(data: dict[str, Any]) -> None:
        del data["large_amount"]

    with pytest.raises(PolicyError, match="large_amount"):
        qd_policy(edit)
