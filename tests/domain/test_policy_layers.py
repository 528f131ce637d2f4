"""Issue 16, item 4: basic-fund bands measured on the year's cumulative in-scope cost, and stacked layers above the
basic fund (a large-amount layer with its own threshold and bands, a subsidy on the year's personal share, a layer for
cost above the large-amount cap reported as oth_pay or hifmi_pay). Qingdao's policy edited as each test says; every
amount is computed by hand in the comment beside it (yuan). A year is replayed visit by visit (test_policy_accumulators).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain.test_policy_accumulators import bill, emp_inpatient, qd_policy, year
from yibao.domain.errors import PolicyError

# ------------------------------------------------------------------ yearly bands


def test_basic_bands_measured_on_the_years_cumulative_in_scope_cost() -> None:
    # Employee inpatient level 1: 90 % to 10000, 95 % above, bands_basis yearly (the shipped rule: cumulative per stay).
    # 1. stay, A 6000: deductible 300; measured from 0 + 300: [300, 6000) 5700*0.90 = 5130.00; the year's in-scope 6000
    # 2. outpatient, community, A 1000: outpatient cost, not on the inpatient measure (deductible 300, 700*0.70 = 490.00)
    # 3. stay 2, A 8000: deductible 150; measured from 6000 + 150 = 6150: [6150, 10000) 3850*0.90 = 3465.00
    #    + [10000, 14000) 4000*0.95 = 3800.00 = 7265.00   (per stay, cumulative: 7850*0.90 = 7065.00)
    def edit(data: dict[str, Any]) -> None:
        emp_inpatient(data)["bands_basis"] = "yearly"

    first, out, second = year(qd_policy(edit), bill(amount="6000.00"), bill("outpatient", "community", "1000.00"),
                              bill(amount="8000.00", admission=2))
    assert first.pool_fund == 513_000 and out.pool_fund == 49_000
    assert (second.deductible, second.pool_fund) == (15_000, 726_500)


def test_yearly_bands_with_the_scheme_cap_binding_send_the_rest_to_the_large_amount_layer() -> None:
    # As above with the employee cap lowered to 10000. Stay 1 pays 5130.00; stay 2's raw 7265.00 > 10000 - 5130 = 4870:
    # it pays 4870.00: the 90 % band's [6150, 10000) pays 3850*0.90 = 3465.00, the remaining 1405.00 at 95 % covers
    # 1405/0.95 = 1478.947 of cost: covered 3850 + 1478.947 = 5328.947 -> 5328.95; beyond: 7850 - 5328.95 = 2521.05
    # of paying cost -> large amount 2521.05*0.90 = 2268.945 -> 2268.95
    def edit(data: dict[str, Any]) -> None:
        emp_inpatient(data)["bands_basis"] = "yearly"
        data["schemes"]["employee"]["annual_cap"] = "10000"
        data["schemes"]["employee"]["annual_cap_counts_against"] = "inpatient_pool_paid"

    _, second = year(qd_policy(edit), bill(amount="6000.00"), bill(amount="8000.00", admission=2))
    assert (second.pool_fund, second.large_amount) == (487_000, 226_895)


# ------------------------------------------------------------------ the large-amount layer's own threshold and bands


def test_a_large_amount_layer_with_a_yearly_threshold_and_bands() -> None:
    # Inpatient ceiling 10000; large amount: threshold 5000 on the year's cost beyond the basic layer, bands measured
    # above it: 80 % to 20000, 90 % above.
    # 1. stay, A 20000: deductible 300, 10000 within (pool 9700*0.90 + 300*0.95 = 9015.00), beyond 9700;
    #    the year's base 0 -> 9700, above the threshold [5000, 9700) -> measured [0, 4700) * 0.80 = 3760.00
    # 2. stay 2, A 25000: deductible 150, no room left (10000 used), beyond 24850; base 9700 -> 34550:
    #    measured [4700, 29550): 15300*0.80 + 9550*0.90 = 12240 + 8595 = 20835.00
    def edit(data: dict[str, Any]) -> None:
        emp_inpatient(data)["eligible_ceiling"] = "10000"
        data["large_amount"] = {"threshold": "5000", "bands": [{"upto": "20000", "ratio": "0.80"}, {"ratio": "0.90"}],
                                "annual_cap": "500000"}

    first, second = year(qd_policy(edit), bill(amount="20000.00"), bill(amount="25000.00", admission=2))
    assert (first.pool_fund, first.large_amount) == (901_500, 376_000)
    assert (second.pool_fund, second.large_amount) == (0, 2_083_500)


# ------------------------------------------------------------------ stacked layers


def stacked(data: dict[str, Any], *layers: str) -> None:
    emp_inpatient(data)["eligible_ceiling"] = "10000"
    data["schemes"]["employee"]["second_layer"] = list(layers)


def test_a_subsidy_on_the_years_personal_share_stacked_on_the_large_amount_layer() -> None:
    # Employees: large amount (top level, 90 %), then their own serious-illness section on the personal share:
    # threshold 1000, 50 %. Stay, A 20000: pool 9015.00, large amount 9700*0.90 = 8730.00; in-scope share left
    # 20000 - 9015 - 8730 = 2255.00 -> (2255 - 1000)*0.50 = 627.50; cash 20000 - 9015 - 8730 - 627.50 = 1627.50
    def edit(data: dict[str, Any]) -> None:
        stacked(data, "large_amount", "serious_illness")
        data["schemes"]["employee"]["serious_illness"] = {"threshold": "1000", "bands": "0.50"}

    (s,) = year(qd_policy(edit), bill(amount="20000.00"))
    assert (s.pool_fund, s.large_amount, s.serious_illness, s.cash_pay) == (901_500, 873_000, 62_750, 162_750)


@pytest.mark.parametrize("reported_as", ["oth_pay", "hifmi_pay"])
def test_a_layer_for_cost_above_the_large_amount_cap(reported_as: str) -> None:
    # Large amount capped at 5000 a year; above it a layer pays 70 % (reported as the policy says).
    # Stay, A 20000: pool 9015.00; beyond the basic layer 9700: large amount raw 8730 > 5000 -> 5000.00, covering
    # 5000/0.90 = 5555.56 of cost; above its cap 9700 - 5555.56 = 4144.44 -> 4144.44*0.70 = 2901.108 -> 2901.11;
    # cash 20000 - 9015 - 5000 - 2901.11 = 3083.89
    def edit(data: dict[str, Any]) -> None:
        stacked(data, "large_amount", "beyond_large_amount")
        data["large_amount"]["annual_cap"] = "5000"
        data["beyond_large_amount"] = {"bands": "0.70", "reported_as": reported_as}

    (s,) = year(qd_policy(edit), bill(amount="20000.00"))
    beyond = (s.other, s.serious_illness)[reported_as == "hifmi_pay"]
    assert (s.pool_fund, s.large_amount, beyond, s.cash_pay) == (901_500, 500_000, 290_111, 308_389)
    assert s.fund_total == s.pool_fund + s.serious_illness + s.large_amount + s.other + s.assistance
    assert (s.other if reported_as == "hifmi_pay" else s.serious_illness) == 0


def test_a_layer_above_the_large_amount_cap_pays_nothing_while_the_cap_has_room() -> None:
    # The shipped cap (500000) is far: large amount 9700*0.90 = 8730.00, nothing above it.
    def edit(data: dict[str, Any]) -> None:
        stacked(data, "large_amount", "beyond_large_amount")
        data["beyond_large_amount"] = {"bands": "0.70", "reported_as": "oth_pay"}

    (s,) = year(qd_policy(edit), bill(amount="20000.00"))
    assert (s.large_amount, s.other) == (873_000, 0)


def test_layers_must_follow_the_rules_of_stacking() -> None:
    def beyond_first(data: dict[str, Any]) -> None:
        stacked(data, "beyond_large_amount")
        data["beyond_large_amount"] = {"bands": "0.70", "reported_as": "oth_pay"}

    def two_hifmi(data: dict[str, Any]) -> None:
        stacked(data, "large_amount", "serious_illness", "beyond_large_amount")
        data["beyond_large_amount"] = {"bands": "0.70", "reported_as": "hifmi_pay"}

    with pytest.raises(PolicyError, match="beyond_large_amount"):
        qd_policy(beyond_first)
    with pytest.raises(PolicyError, match="hifmi_pay"):
        qd_policy(two_hifmi)


def test_the_stacked_example_of_docs_policy_md() -> None:
    # docs/policy.md "Stacked layers": large amount capped at 5000, then 70 % above its cap (oth_pay), then the
    # employees' subsidy on the personal share (threshold 1000, 50 %). Stay, A 20000: pool 9015.00; large amount 5000.00;
    # above its cap 4144.44*0.70 = 2901.11; in-scope share left 20000 - 9015 - 5000 - 2901.11 = 3083.89 ->
    # (3083.89 - 1000)*0.50 = 1041.945 -> 1041.95; cash 20000 - 17958.06 = 2041.94
    def edit(data: dict[str, Any]) -> None:
        stacked(data, "large_amount", "beyond_large_amount", "serious_illness")
        data["schemes"]["employee"]["serious_illness"] = {"threshold": "1000", "bands": "0.50"}
        data["large_amount"]["annual_cap"] = "5000"
        data["beyond_large_amount"] = {"ratio": "0.70", "reported_as": "oth_pay"}

    (s,) = year(qd_policy(edit), bill(amount="20000.00"))
    assert (s.pool_fund, s.large_amount, s.other, s.serious_illness) == (901_500, 500_000, 290_111, 104_195)
    assert (s.fund_total, s.cash_pay) == (1_795_806, 204_194)


def test_an_explanation_cites_the_schemes_own_section_when_it_priced_the_layer():
    """Ningbo's children have their own serious-illness section (threshold 12500.00, 70 %): a stay of 100000.00 in scope
    at level 3 leaves 12950.00 above it after the basic fund — 9065.00 — and the explanation cites that section, not the
    file's top-level one (which Ningbo's residents use)."""
    from yibao.domain.settlement import settle
    from yibao.formats.bill_json import bill_from_mapping
    from yibao.policies.loader import builtin_policy

    child = bill_from_mapping({"insured_region": "330200", "treatment_region": "330200", "date": "2026-06-01",
                               "person": {"insurance_type": "child", "age": 8}, "visit": {"kind": "inpatient", "institution_level": "level3"},
                               "lines": [{"code": "A1", "class": "A", "unit_price": "100000.00", "quantity": "1"}]})
    s = settle(child, builtin_policy("330200", 2026))
    si = next(e for e in s.explanation if e.code == "serious_illness")
    assert (si.amount, si.clause) == (906500, "330200-2026.2 schemes.child.serious_illness")
