"""Small truths (issue 16, item 7): "no cap" is expressible wherever a cap is; the explanation of a binding cap says who
pays the rest; and the docs say what the code does (the bill's required fields, every policy key, which schemes use
the serious-illness layer). Amounts by hand on Qingdao's file: resident under 70 at level 3, deductible 1000.00, ratio
0.60, basic cap 250000.00; resident outpatient pooling at a community centre, ratio 0.50, yearly cap 500.00."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from yibao.domain.errors import InputError, PolicyError
from yibao.domain.settlement import settle
from yibao.formats.bill_json import bill_from_mapping
from yibao.policies import schema
from yibao.policies.loader import BUILTIN_DIR, builtin_policies
from yibao.policies.schema import policy_from_mapping

DOCS = Path(__file__).resolve().parents[2] / "docs"
QD_TEXT = (BUILTIN_DIR / "370200-2026.yaml").read_text(encoding="utf-8")


def qd(edit) -> Any:
    data = copy.deepcopy(yaml.safe_load(QD_TEXT))
    edit(data)
    return policy_from_mapping(data, "edited.yaml")


def res_bill(*prices: str, kind: str = "inpatient", level: str = "level3", acc: dict[str, str] | None = None) -> Any:
    data: dict[str, Any] = {
        "insured_region": "370200", "treatment_region": "370200", "date": "2026-05-10",
        "person": {"insurance_type": "resident", "tier": None, "retired": False, "age": 45, "hardship": None, "filing": None},
        "visit": {"kind": kind, "institution_level": level, "admission_number": 1},
        "lines": [{"code": f"A{i}", "class": "A", "unit_price": p, "quantity": "1"} for i, p in enumerate(prices)],
    }
    if acc:
        data["accumulators"] = acc
    return bill_from_mapping(data)


# ---------------------------------------------------------------------------- annual_cap: none

def test_no_basic_cap_pays_past_what_the_old_cap_allowed():
    def edit(d):
        d["schemes"]["resident"]["annual_cap"] = "none"
    policy = qd(edit)
    assert policy.schemes["resident"].annual_cap is None
    # 300000.00 already paid this year, past the file's 250000.00: (10000.00 − 1000.00) × 0.60 = 5400.00 all the same
    s = settle(res_bill("10000.00", acc={"pool_fund_paid": "300000.00"}), policy)
    assert (s.pool_fund, s.accumulator_delta.pool_fund_paid) == (540000, 540000)
    assert not any("限额" in e.zh for e in s.explanation if e.code == "pool_fund")


def test_no_outpatient_pooling_cap():
    def edit(d):
        d["schemes"]["resident"]["outpatient"][0]["annual_cap"] = "none"
    # 500.00 already paid (the file's cap): 300.00 × 0.50 = 150.00 all the same
    s = settle(res_bill("300.00", kind="outpatient", level="community", acc={"outpatient_pool_paid": "500.00"}), qd(edit))
    assert s.pool_fund == 15000


@pytest.mark.parametrize(("path", "read"), [
    (("serious_illness", "annual_cap"), lambda p: p.serious_illness.annual_cap),
    (("large_amount", "annual_cap"), lambda p: p.large_amount.annual_cap),
    (("assistance", "statuses", "tekun", "annual_cap"), lambda p: p.assistance.statuses["tekun"].annual_cap),
    (("schemes", "employee", "inpatient", 1, "eligible_ceiling"), lambda p: p.schemes["employee"].benefits["inpatient"][1].eligible_ceiling),
])
def test_none_is_no_cap_wherever_a_cap_is(path, read):
    def edit(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "none"
    assert read(qd(edit)) is None


@pytest.mark.parametrize(("where", "value"), [
    (("schemes", "resident", "annual_cap"), None),  # empty is not "none": say it
    (("schemes", "resident", "annual_cap"), "None"),
    (("schemes", "resident", "annual_cap"), "unlimited"),
    (("serious_illness", "threshold"), "none"),  # a threshold is not a cap
])
def test_only_the_word_none_and_only_on_a_cap(where, value):
    def edit(d):
        node = d
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value
    with pytest.raises(PolicyError) as err:
        qd(edit)
    assert err.value.field.endswith(".".join(where))


# ---------------------------------------------------------------------------- who pays the rest

def test_a_binding_cap_with_no_next_layer_leaves_the_rest_to_the_patient():
    def edit(d):
        del d["schemes"]["resident"]["second_layer"]
    # 248000.00 paid: 2000.00 left of 5400.00; the fund stops at 2000.00 / 0.60 = 3333.33 of cost: 9000.00 − 3333.33
    # = 5666.67 of cost is the patient's
    s = settle(res_bill("10000.00", acc={"pool_fund_paid": "248000.00"}), qd(edit))
    assert (s.pool_fund, s.serious_illness, s.accumulator_delta.inpatient_eligible_used) == (200000, 0, 333333)
    pool = next(e for e in s.explanation if e.code == "pool_fund")
    assert "¥5666.67" in pool.zh and "由个人负担" in pool.zh and "下一层" not in pool.zh
    assert "¥5666.67" in pool.en and "the patient pays the rest" in pool.en and "next layer" not in pool.en


def test_a_binding_cap_with_a_next_layer_still_says_it_moves_there():
    s = settle(res_bill("10000.00", acc={"pool_fund_paid": "248000.00"}), qd(lambda d: None))
    pool = next(e for e in s.explanation if e.code == "pool_fund")
    assert "¥5666.67" in pool.zh and "转入下一层" in pool.zh and "moves to the next layer" in pool.en


# ---------------------------------------------------------------------------- the docs say what the code does

def _quote_rows() -> dict[str, str]:
    """docs/quote.md's bill table (| field | required | values |): field → its `required` cell."""
    rows = {}
    for line in (DOCS / "quote.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]
        if len(cells) == 5 and cells[1].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[1]):
                rows[name] = cells[2]
    return rows


EXAMPLE = {"insured_region": "440300", "treatment_region": "440300", "date": "2026-11-22",
           "person": {"insurance_type": "employee", "tier": 1, "retired": False, "age": 45, "hardship": None, "filing": None},
           "visit": {"kind": "inpatient", "institution_level": "level3", "admission_number": 1},
           "lines": [{"code": "XJ01DDC078A001010100483", "name": "头孢克肟胶囊", "class": "B", "unit_price": "12.50", "quantity": "2",
                      "price_cap": "10.00", "self_pay_ratio": "0.10", "categories": []}],
           "accumulators": {"outpatient_deductible_used": "0.00"}, "account": {"use": True, "balance": "1000.00", "payer": "self"}}


def _without(field: str) -> dict:
    data = json.loads(json.dumps(EXAMPLE))
    parts = field.replace("[]", "").split(".")
    node: Any = data
    for key in parts[:-1]:
        node = node[key][0] if isinstance(node[key], list) else node[key]
    node.pop(parts[-1], None)
    return data


def test_quote_md_marks_exactly_the_required_fields():
    rows = _quote_rows()
    required = [f for f, cell in rows.items() if cell == "**yes**"]
    optional = [f for f, cell in rows.items() if cell.startswith("no")]
    assert {"insured_region", "date", "person.insurance_type", "person.age", "visit.kind", "lines", "lines[].class",
            "lines[].unit_price"} <= set(required)
    assert {"person.retired", "accumulators.*", "account.use", "lines[].categories"} <= set(optional)
    for field in required:
        with pytest.raises(InputError) as err:
            bill_from_mapping(_without(field))
        assert err.value.field.replace("[0]", "[]") == field, field
    for field in optional:
        if not field.endswith("*"):
            bill_from_mapping(_without(field))  # accepted without it


def test_policy_md_names_every_key_the_schema_reads():
    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    for keys in (schema.TOP_LEVEL_KEYS, schema.SCHEME_KEYS, schema.VARIANT_KEYS):
        for key in keys:
            if key not in ("outpatient", "inpatient", "emergency", "pharmacy"):
                assert f"`{key}`" in text or f"`{key}." in text, key
    assert "## `credit`" in text


def test_policy_md_says_which_schemes_of_the_demo_files_use_each_second_layer():
    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    said = set(re.findall(r"^\| (\d{6}) \| (\w+) \| (\w+) \|$", text, re.M))
    used = {(p.region, name, s.second_layer) for p in builtin_policies() for name, s in p.schemes.items() if s.second_layer}
    assert said == used
