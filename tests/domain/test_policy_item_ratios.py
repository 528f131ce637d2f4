"""Per-item fund ratios (issue 16, item 3): a catalogue entry (by national code) or a category of entries (implants
植入材料, imported materials 进口材料, negotiated drugs) paid at its own fund ratio instead of the visit's.

Table-driven on Qingdao's shipped file (src/yibao/policies/370200-2026.yaml) with `item_ratios` added to one benefit
rule; every expected amount is worked out by hand in the comment beside it, in yuan, from docs/engine.md step 4:
the deductible is met from the ordinary lines' in-scope cost first, then from the item lines'; an item line's
in-scope cost is not measured in the visit's ratio bands; in the order of the cost the fund pays on, the items come
after the ordinary cost (so a yearly cap or eligible-cost ceiling reaches them last); the pooled-fund amount is
rounded once over the ordinary bands and the items together.

Qingdao: resident under 70, level 3 inpatient — deductible 1000.00, ratio 0.60, basic cap 250000.00, then the
serious-illness layer; employee in service, level 3 inpatient — deductible 800.00, bands measured with the
deductible (cumulative) 0.80 up to 10000.00 and 0.88 above, eligible-cost ceiling 450000.00, large-amount layer
0.90; resident outpatient pooling at a community centre — deductible 0, ratio 0.50, yearly cap 500.00.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from yibao.domain.errors import InputError, PolicyError
from yibao.domain.settlement import settle
from yibao.formats.bill_json import bill_from_mapping
from yibao.policies.loader import BUILTIN_DIR, builtin_policy
from yibao.policies.schema import policy_from_mapping

QD_TEXT = (BUILTIN_DIR / "370200-2026.yaml").read_text(encoding="utf-8")
FULL_CODE = "XA01ABD075A002010100483"

RULES = [
    {"category": "implant", "ratio": "0.80", "label_zh": "植入材料", "label_en": "implants"},
    {"category": "imported", "ratio": "0.50"},
    {"code": FULL_CODE, "ratio": "1", "label_zh": "全额支付项目", "label_en": "item paid in full"},
]


def qd(*edits: Any) -> Any:
    data = copy.deepcopy(yaml.safe_load(QD_TEXT))
    for edit in edits:
        edit(data)
    return policy_from_mapping(data, "edited.yaml")


def rules(scheme: str, kind: str, index: int, value: Any):
    def edit(data: dict) -> None:
        data["schemes"][scheme][kind][index]["item_ratios"] = value
    return edit


RES_IN = rules("resident", "inpatient", 1, RULES)
EMP_IN = rules("employee", "inpatient", 1, [{"category": "implant", "ratio": "0.90"}])
RES_OUT = rules("resident", "outpatient", 0, [{"category": "negotiated", "ratio": "0.70"}])


def cut(data: dict) -> None:
    data["cross_region"]["temporary"] = {"extra_self_pay": "0", "ratio_cut": "0.10"}


def line(price: str, cls: str = "A", code: str | None = None, categories: list[str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"code": code or f"{cls}-{price}", "class": cls, "unit_price": price, "quantity": "1"}
    if categories is not None:
        d["categories"] = categories
    return d


def bill(*lines: dict[str, Any], insurance: str = "resident", kind: str = "inpatient", level: str = "level3",
         acc: dict[str, str] | None = None, treated: str = "370200") -> dict[str, Any]:
    """The bill as JSON (read by the test, so a format the old code refuses fails the case, not the collection)."""
    data: dict[str, Any] = {
        "insured_region": "370200", "treatment_region": treated, "date": "2026-05-10",
        "person": {"insurance_type": insurance, "tier": None, "retired": False, "age": 45, "hardship": None,
                   "filing": None if treated == "370200" else "temporary"},
        "visit": {"kind": kind, "institution_level": level, "admission_number": 1},
        "lines": list(lines),
    }
    if acc:
        data["accumulators"] = acc
    return data


IMPLANT = ["implant"]

CASES = [
    # ordinary 5000.00 − deductible 1000.00 = 4000.00 × 0.60 = 2400.00; implant 10000.00 × 0.80 = 8000.00; pool 10400.00.
    # In-scope self-pay 15000.00 − 10400.00 = 4600.00 (the serious-illness base, below its 18000.00 threshold).
    pytest.param((RES_IN,), bill(line("5000.00"), line("10000.00", categories=IMPLANT)),
                 dict(deductible=100000, pool_fund=1040000, items=[800000],
                      delta=dict(pool_fund_paid=1040000, inpatient_pool_paid=1040000, inpatient_eligible_used=1400000,
                                 inpatient_in_scope=1500000, serious_illness_base=460000)),
                 id="implant-at-its-own-ratio"),
    # ordinary 500.00 meets half the 1000.00 deductible, the implant the other 500.00: (10000.00 − 500.00) × 0.80 = 7600.00
    pytest.param((RES_IN,), bill(line("500.00"), line("10000.00", categories=IMPLANT)),
                 dict(deductible=100000, pool_fund=760000, items=[760000]), id="deductible-reaches-the-item-last"),
    # by national code, class B: 2000.00, 10% paid first (200.00), in scope 1800.00 × 100% = 1800.00; ordinary
    # (3000.00 − 1000.00) × 0.60 = 1200.00; pool 3000.00; the patient 5000.00 − 3000.00 = 2000.00 (200 + 1000 + 800)
    pytest.param((RES_IN,), bill(line("3000.00"), line("2000.00", cls="B", code=FULL_CODE)),
                 dict(deductible=100000, pool_fund=300000, items=[180000], person_total=200000), id="code-at-100-percent-after-pre-self-pay"),
    # both categories: the first rule that matches (implant, 0.80) wins: as the first case
    pytest.param((RES_IN,), bill(line("5000.00"), line("10000.00", categories=["imported", "implant"])),
                 dict(deductible=100000, pool_fund=1040000, items=[800000]), id="first-matching-rule-wins"),
    # imported only: 10000.00 × 0.50 = 5000.00 + 2400.00 = 7400.00
    pytest.param((RES_IN,), bill(line("5000.00"), line("10000.00", categories=["imported"])),
                 dict(deductible=100000, pool_fund=740000, items=[500000]), id="imported-at-50"),
    # a category no rule names: an ordinary line: (15000.00 − 1000.00) × 0.60 = 8400.00
    pytest.param((RES_IN,), bill(line("5000.00"), line("10000.00", categories=["negotiated"])),
                 dict(deductible=100000, pool_fund=840000, items=[]), id="category-without-a-rule-is-ordinary"),
    # rounded once: 4000.01 × 0.60 = 2400.006 plus 100.01 × 0.80 = 80.008 is 2480.014 → 2480.01 (rounding each
    # would give 2400.01 + 80.01 = 2480.02); the item's own line shows 80.01
    pytest.param((RES_IN,), bill(line("5000.01"), line("100.01", categories=IMPLANT)),
                 dict(deductible=100000, pool_fund=248001, items=[8001]), id="rounded-once"),
    # the basic cap leaves 5000.00 (245000.00 paid): the ordinary 4000.00 pays 2400.00, the implant the other 2600.00
    # on 2600.00 / 0.80 = 3250.00 of its cost: covered 7250.00; 14000.00 − 7250.00 = 6750.00 moves to the next layer.
    # In-scope self-pay 15000.00 − 5000.00 = 10000.00 (the serious-illness base, still below 18000.00)
    pytest.param((RES_IN,), bill(line("5000.00"), line("10000.00", categories=IMPLANT), acc={"pool_fund_paid": "245000.00"}),
                 dict(deductible=100000, pool_fund=500000, items=[800000],
                      delta=dict(pool_fund_paid=500000, inpatient_pool_paid=500000, inpatient_eligible_used=725000, inpatient_in_scope=1500000,
                                 serious_illness_base=1000000),
                      says=("下一层", "next layer")),
                 id="basic-cap-reaches-the-item-last"),
    # employee, inpatient ceiling 450000.00 with 445000.00 used (inpatient_eligible_used): 5000.00 left. Ordinary 3800.00 − deductible 800.00 = 3000.00,
    # implant 5000.00: within the ceiling 3000.00 + 2000.00 of the implant, 3000.00 of the implant spills.
    # Bands with the deductible: [800, 3800) at 0.80 = 2400.00; implant 2000.00 × 0.90 = 1800.00; pool 4200.00.
    # Large amount: 3000.00 × 0.90 = 2700.00 on a base of 3000.00 (large_amount_base); in scope 3800.00 + 5000.00 = 8800.00
    pytest.param((EMP_IN,), bill(line("3800.00"), line("5000.00", categories=IMPLANT), insurance="employee",
                                 acc={"inpatient_eligible_used": "445000.00"}),
                 dict(deductible=80000, pool_fund=420000, large_amount=270000, items=[180000],
                      delta=dict(pool_fund_paid=420000, inpatient_pool_paid=420000, inpatient_eligible_used=500000, inpatient_in_scope=880000,
                                 large_amount_base=300000, large_amount_paid=270000)),
                 id="eligible-ceiling-reaches-the-item-last"),
    # the implant is not measured in the bands: ordinary 12000.00: [800, 10000) at 0.80 = 7360.00, [10000, 12000) at
    # 0.88 = 1760.00; implant 20000.00 × 0.90 = 18000.00; pool 27120.00
    pytest.param((EMP_IN,), bill(line("12000.00"), line("20000.00", categories=IMPLANT), insurance="employee"),
                 dict(deductible=80000, pool_fund=2712000, items=[1800000]), id="items-outside-the-bands"),
    # treated in Shenzhen on a temporary filing with a 10-point cut: 4000.00 × 0.50 = 2000.00; 10000.00 × 0.70 = 7000.00
    pytest.param((RES_IN, cut), bill(line("5000.00"), line("10000.00", categories=IMPLANT), treated="440300"),
                 dict(deductible=100000, pool_fund=900000, items=[700000]), id="cross-region-cut-applies-to-items"),
    # outpatient pooling, cap 500.00: ordinary 400.00 × 0.50 = 200.00, negotiated 600.00 × 0.70 = 420.00: 620.00 → 500.00;
    # covered 400.00 + 300.00 / 0.70 = 828.571… → 828.57; the cost beyond stays the patient's (no second layer for it)
    pytest.param((RES_OUT,), bill(line("400.00"), line("600.00", categories=["negotiated"]), kind="outpatient", level="community"),
                 dict(deductible=0, pool_fund=50000, items=[42000],
                      delta=dict(pool_fund_paid=50000, outpatient_pool_paid=50000, outpatient_eligible_used=82857, outpatient_in_scope=100000,
                                 serious_illness_base=50000)),
                 id="outpatient-cap-reaches-the-item-last"),
]


@pytest.mark.parametrize(("edits", "the_bill", "want"), CASES)
def test_hand_computed(edits, the_bill, want):
    the_bill = bill_from_mapping(the_bill)
    catalogue = builtin_policy(the_bill.treatment_region, 2026) if the_bill.cross_region else None
    s = settle(the_bill, qd(*edits), catalogue)
    assert s.deductible == want["deductible"]
    assert s.pool_fund == want["pool_fund"]
    assert s.large_amount == want.get("large_amount", 0)
    assert [e.amount for e in s.explanation if e.code == "item_ratio"] == want["items"]
    if "person_total" in want:
        assert s.person_total == want["person_total"]
    if "delta" in want:
        got = {k: v for k, v in s.accumulator_delta.as_dict().items() if v}
        assert got == want["delta"]
    if "says" in want:
        pool = next(e for e in s.explanation if e.code == "pool_fund")
        assert want["says"][0] in pool.zh and want["says"][1] in pool.en
    assert s.total == s.fund_total + s.person_total == s.own_expense + s.over_limit + s.pre_self_pay + s.in_scope
    assert s.fund_total == s.pool_fund + s.serious_illness + s.large_amount + s.assistance


def test_the_item_has_its_own_line_in_the_explanation():
    s = settle(bill_from_mapping(bill(line("5000.00"), line("10000.00", categories=IMPLANT))), qd(RES_IN))
    item = next(e for e in s.explanation if e.code == "item_ratio")
    assert item.step == 4 and item.amount == 800000
    assert "植入材料" in item.zh and "80%" in item.zh and "¥10000.00" in item.zh and "¥8000.00" in item.zh
    assert "implants" in item.en and "80%" in item.en
    assert item.clause.endswith("inpatient[1].item_ratios[0]")
    pool = next(e for e in s.explanation if e.code == "pool_fund")
    assert "¥10000.00" in pool.zh and "¥10400.00" in pool.zh  # the item cost taken out, the item pay added back


@pytest.mark.parametrize(("value", "where", "words"), [
    ([{"category": "implants", "ratio": "0.8"}], "item_ratios[0].category", "implant"),
    ([{"code": FULL_CODE, "category": "implant", "ratio": "0.8"}], "item_ratios[0]", "either"),
    ([{"ratio": "0.8"}], "item_ratios[0]", "either"),
    ([{"category": "implant"}], "item_ratios[0].ratio", "required"),
    ([{"category": "implant", "ratio": "0.8", "pre_self_pay": "0.1"}], "item_ratios[0].pre_self_pay", "unknown field"),
    ({"category": "implant", "ratio": "0.8"}, "item_ratios", "list"),
    ([{"category": "implant", "ratio": "0.8"}, {"category": "implant", "ratio": "0.7"}], "item_ratios[1]", "repeats"),
])
def test_a_bad_item_rule_is_refused_naming_the_field(value, where, words):
    with pytest.raises(PolicyError) as err:
        qd(rules("resident", "inpatient", 1, value))
    assert err.value.field.endswith(f"schemes.resident.inpatient[1].{where}")
    assert words in err.value.message_en


def test_a_bill_line_with_an_unknown_category_is_refused():
    with pytest.raises(InputError) as err:
        bill_from_mapping(bill(line("10.00", categories=["implants"])))
    assert (err.value.field, err.value.code) == ("lines[0].categories", "invalid_choice")
    assert "implant" in err.value.message_en and "imported" in err.value.message_en
    with pytest.raises(InputError) as err:
        bill_from_mapping(bill(line("10.00", categories="implant")))  # type: ignore[arg-type]
    assert (err.value.field, err.value.code) == ("lines[0].categories", "invalid_list")
