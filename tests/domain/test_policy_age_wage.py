"""Ratios as a function of age and deductibles as a share of the previous year's average wage (issue 16, item 6).

Table-driven on Qingdao's shipped file (src/yibao/policies/370200-2026.yaml) with one benefit rule changed; every
expected amount is worked out by hand in the comment beside it (docs/engine.md, docs/policy.md), in yuan. Qingdao's
previous-year average on-post wage is 118872.00; its resident inpatient rule for under-70s has deductible 1000.00 at
level 3 and ratio 0.60, its resident outpatient pooling deductible 0 and ratio 0.50 at the community centre.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from yibao.domain.errors import PolicyError
from yibao.domain.settlement import settle
from yibao.formats.bill_json import bill_from_mapping
from yibao.policies.loader import BUILTIN_DIR
from yibao.policies.schema import policy_from_mapping

QD_TEXT = (BUILTIN_DIR / "370200-2026.yaml").read_text(encoding="utf-8")


def qd(edit) -> Any:
    """Qingdao's policy with ``edit(data)`` applied to the parsed file."""
    data = copy.deepcopy(yaml.safe_load(QD_TEXT))
    edit(data)
    return policy_from_mapping(data, "edited.yaml")


def res_inpatient(**changes: Any):
    """Change the resident inpatient fallback rule (under 70s)."""
    def edit(data: dict) -> None:
        data["schemes"]["resident"]["inpatient"][1].update(changes)
    return edit


def res_outpatient(**changes: Any):
    def edit(data: dict) -> None:
        data["schemes"]["resident"]["outpatient"][0].update(changes)
    return edit


def bill(age: int, *prices: str, kind: str = "inpatient", level: str = "level3") -> Any:
    return bill_from_mapping({
        "insured_region": "370200", "treatment_region": "370200", "date": "2026-05-10",
        "person": {"insurance_type": "resident", "tier": None, "retired": False, "age": age, "hardship": None, "filing": None},
        "visit": {"kind": kind, "institution_level": level, "admission_number": 1},
        "lines": [{"code": f"A{i}", "class": "A", "unit_price": p, "quantity": "1"} for i, p in enumerate(prices)],
    })


AGE_RATIO = {"base": "0.50", "step": "0.004", "min": "0.55", "max": "0.75"}
LEVELS_QD = {"community": "0.90", "level1": "0.85", "level2": "0.75"}

CASES = [
    # ratio = 0.50 + 0.004 × 30 = 0.62; A 10000.00 − deductible 1000.00 = 9000.00 × 0.62 = 5580.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": AGE_RATIO}), bill(30, "10000.00"), 100000, 558000, 620000, id="age-30-in-bounds"),
    # 0.50 + 0.004 × 10 = 0.54, below the bound: 0.55; 9000.00 × 0.55 = 4950.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": AGE_RATIO}), bill(10, "10000.00"), 100000, 495000, 550000, id="age-10-min-bound"),
    # 0.50 + 0.004 × 65 = 0.76, above the bound: 0.75; 9000.00 × 0.75 = 6750.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": AGE_RATIO}), bill(65, "10000.00"), 100000, 675000, 750000, id="age-65-max-bound"),
    # from_age 60: 0.60 + 0.01 × max(0, 64 − 60) = 0.64; 9000.00 × 0.64 = 5760.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": {"base": "0.60", "step": "0.01", "from_age": 60, "max": "0.90"}}),
                 bill(64, "10000.00"), 100000, 576000, 640000, id="from-age-60-at-64"),
    # below from_age the base applies: 0.60; 9000.00 × 0.60 = 5400.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": {"base": "0.60", "step": "0.01", "from_age": 60, "max": "0.90"}}),
                 bill(40, "10000.00"), 100000, 540000, 600000, id="from-age-60-at-40"),
    # a falling ratio: 0.95 − 0.005 × 10 = 0.90; 9000.00 × 0.90 = 8100.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": {"base": "0.95", "step": "-0.005", "min": "0.80"}}),
                 bill(10, "10000.00"), 100000, 810000, 900000, id="negative-step"),
    # ... and at 45: 0.95 − 0.225 = 0.725, below the bound: 0.80; 9000.00 × 0.80 = 7200.00
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": {"base": "0.95", "step": "-0.005", "min": "0.80"}}),
                 bill(45, "10000.00"), 100000, 720000, 800000, id="negative-step-min-bound"),
    # an age ratio inside bands: first band 0.50 + 0.002 × 40 = 0.58 on 5000.00 = 2900.00, then 4000.00 × 0.80 = 3200.00;
    # pool 6100.00 (pool_prop_selfpay reports the first band: 0.58)
    pytest.param(res_inpatient(ratio={**LEVELS_QD, "level3": [{"upto": "5000", "ratio": {"base": "0.50", "step": "0.002"}}, {"ratio": "0.80"}]}),
                 bill(40, "10000.00"), 100000, 610000, 580000, id="age-ratio-in-a-band"),
    # deductible 1% of 118872.00 = 1188.72; (10000.00 − 1188.72) × 0.60 = 8811.28 × 0.60 = 5286.768 → 5286.77
    pytest.param(res_inpatient(deductible={"community": "100", "level1": "200", "level2": "500", "level3": {"wage_share": "0.01"}}),
                 bill(45, "10000.00"), 118872, 528677, 600000, id="wage-share-deductible"),
    # 1.23% of 118872.00 = 1462.1256 → 1462.13 (rounded once); (10000.00 − 1462.13) × 0.60 = 5122.722 → 5122.72
    pytest.param(res_inpatient(deductible={"wage_share": "0.0123"}), bill(45, "10000.00"), 146213, 512272, 600000,
                 id="wage-share-deductible-every-level"),
    # outpatient, per year: 0.1% of 118872.00 = 118.872 → 118.87; (300.00 − 118.87) × 0.50 = 90.565 → 90.57
    pytest.param(res_outpatient(deductible={"wage_share": "0.001"}), bill(45, "300.00", kind="outpatient", level="community"),
                 11887, 9057, 500000, id="wage-share-outpatient-deductible"),
    # both: deductible 1188.72 and ratio 0.62 at 30: 8811.28 × 0.62 = 5463.0 (5462.9936 → 5462.99)
    pytest.param(res_inpatient(deductible={"wage_share": "0.01"}, ratio={**LEVELS_QD, "level3": AGE_RATIO}),
                 bill(30, "10000.00"), 118872, 546299, 620000, id="wage-share-and-age-ratio"),
]


@pytest.mark.parametrize(("edit", "the_bill", "deductible", "pool_fund", "pool_ratio"), CASES)
def test_hand_computed(edit, the_bill, deductible, pool_fund, pool_ratio):
    s = settle(the_bill, qd(edit))
    assert (s.deductible, s.pool_fund, s.pool_ratio) == (deductible, pool_fund, pool_ratio)
    assert s.total == s.fund_total + s.person_total and s.person_total == s.account_pay + s.cash_pay


def test_the_explanation_says_the_ratio_came_from_the_age():
    s = settle(bill(30, "10000.00"), qd(res_inpatient(ratio={**LEVELS_QD, "level3": AGE_RATIO})))
    pool = next(e for e in s.explanation if e.code == "pool_fund")
    assert "62%" in pool.zh and "30岁" in pool.zh
    assert "62%" in pool.en and "age 30" in pool.en


def test_the_explanation_says_the_deductible_came_from_the_wage():
    s = settle(bill(45, "10000.00"), qd(res_inpatient(deductible={"wage_share": "0.01"})))
    ded = next(e for e in s.explanation if e.code == "deductible")
    assert "¥118872.00" in ded.zh and "1%" in ded.zh and "¥1188.72" in ded.zh
    assert "average wage" in ded.en and "¥1188.72" in ded.en


@pytest.mark.parametrize(("value", "where", "words"), [
    ({"base": "0.50", "step": "0.01", "min": "0.80", "max": "0.60"}, "ratio.level3.min", "max"),
    ({"base": "0.50", "steps": "0.01"}, "ratio.level3.steps", "unknown field"),
    ({"step": "0.01"}, "ratio.level3.base", "required"),
    ({"base": "0.50", "step": 0.01}, "ratio.level3.step", "quoted"),
    ({"base": "0.50", "step": "-1.5"}, "ratio.level3.step", "between"),
    ({"base": "0.50", "step": "0.01", "from_age": 200}, "ratio.level3.from_age", "at most 150"),
])
def test_a_bad_age_ratio_is_refused_naming_the_field(value, where, words):
    with pytest.raises(PolicyError) as err:
        qd(res_inpatient(ratio={**LEVELS_QD, "level3": value}))
    assert f"schemes.resident.inpatient[1].{where}" in err.value.field
    assert words in err.value.message_en


@pytest.mark.parametrize(("value", "where", "words"), [
    ({"level3": {"wage_share": "1.5"}}, "deductible.level3.wage_share", "between 0 and 1"),
    ({"level3": {"wage_shares": "0.1"}}, "deductible.level3.wage_shares", "unknown field"),
    ({"wage_share": "0.01", "level3": "100"}, "deductible", "unknown field"),
])
def test_a_bad_wage_share_is_refused_naming_the_field(value, where, words):
    with pytest.raises(PolicyError) as err:
        qd(res_inpatient(deductible=value))
    assert f"schemes.resident.inpatient[1].{where}" in err.value.field
    assert words in err.value.message_en


def test_the_shipped_files_still_load():
    """Every shipped file loads, at the revision it states (Ningbo's revision 2 uses ratios by age and a wage-share
    deductible; the other two are unchanged, revision 1)."""
    for path in sorted(Path(BUILTIN_DIR).glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        assert policy_from_mapping(data, path.name, text).version == f"{data['region']}-{data['year']}.{data.get('revision', 1)}"
