"""Table-driven settlement cases on the three demo regions, every amount computed by hand.

Each expected amount is an integer in fen, worked out from the policy files
(src/yibao/policies/{440300,370200,330200}-2026.yaml) and the rules of docs/engine.md;
the arithmetic (in yuan) stands in a comment next to the case. Nothing here was copied
from the engine's output.

Conventions of the table:
- ``bill(...)`` builds a bill dict with defaults (Shenzhen, employee tier 1 in service,
  aged 45, inpatient at a level-1 hospital, first admission, no accumulators, no account);
  a case states only what differs.
- ``case(id, bill, **expected)``: every keyword is a ``Settlement`` field compared exactly.
  ``serious_illness``, ``large_amount``, ``assistance``, ``account_pay`` and
  ``mutual_aid_pay`` are expected to be 0 unless given, and ``account_refusal`` None unless
  ``refusal=`` (code) / ``failed=`` (failed condition codes) are given.
  ``lines=`` lists per line (total, own_expense, over_limit, pre_self_pay, in_scope);
  ``extra=`` the per-line ``cross_region_extra``; ``delta=`` the accumulator deltas (all
  fields compared, unlisted ones 0 but the visit class's ``*_in_scope``, which must be the bill's in-scope amount).
- Every case is also checked against the identities of docs/engine.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from yibao.domain.bill import ACCUMULATOR_FIELDS
from yibao.formats.bill_json import bill_from_mapping
from yibao.services.care.quote import quote

SZ, QD, NB = "440300", "370200", "330200"  # Shenzhen, Qingdao, Ningbo
NO_POLICY = "110000"  # a treatment region with no policy file on record

# ---------------------------------------------------------------------------- helpers


def _line(cls: str, price: str, qty: str, cap: str | None = None, ratio: str | None = None,
          categories: list[str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"code": f"{cls}-{price}", "class": cls, "unit_price": price, "quantity": qty}
    if cap is not None:
        d["price_cap"] = cap
    if ratio is not None:
        d["self_pay_ratio"] = ratio
    if categories is not None:
        d["categories"] = categories
    return d


def a(price: str, qty: str = "1", cap: str | None = None, categories: list[str] | None = None) -> dict[str, Any]:
    """甲 (class A) line; ``categories`` as the catalogue's item_category would give them (implant, imported…)."""
    return _line("A", price, qty, cap, categories=categories)


def b(price: str, qty: str = "1", ratio: str | None = None, cap: str | None = None) -> dict[str, Any]:
    """乙 (class B) line; ratio None: the catalogue's default b_self_pay_ratio."""
    return _line("B", price, qty, cap, ratio)


def c(price: str, qty: str = "1") -> dict[str, Any]:
    """丙 (class C) line."""
    return _line("C", price, qty)


def u(price: str, qty: str = "1") -> dict[str, Any]:
    """Unlisted line."""
    return _line("unlisted", price, qty)


def bill(
    region: str = SZ,
    *lines: dict[str, Any],
    treated: str | None = None,
    kind: str = "inpatient",
    level: str = "level1",
    admission: int = 1,
    insurance: str = "employee",
    tier: int | None = None,
    retired: bool = False,
    age: int | None = None,
    hardship: str | None = None,
    filing: str | None = None,
    acc: dict[str, str] | None = None,
    account: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if insurance == "employee" and tier is None:
        tier = 1
    if age is None:
        age = {"employee": 66 if retired else 45, "resident": 45, "child": 8}[insurance]
    data: dict[str, Any] = {
        "insured_region": region,
        "treatment_region": treated or region,
        "date": "2026-05-10",
        "person": {"insurance_type": insurance, "tier": tier, "retired": retired, "age": age,
                   "hardship": hardship, "filing": filing},
        "visit": {"kind": kind, "institution_level": level, "admission_number": admission},
        "lines": list(lines),
    }
    if acc:
        data["accumulators"] = dict(acc)
    if account:
        data["account"] = account
    return data


def own(balance: str) -> dict[str, Any]:
    """Pay from the person's own personal account."""
    return {"use": True, "payer": "self", "balance": balance}


def family(balance: str, relation: str = "spouse") -> dict[str, Any]:
    return {"use": True, "payer": "family", "relation": relation, "balance": balance}


def guardian(balance: str = "6000.00", **facts: bool) -> dict[str, Any]:
    """A guardian's account for a child's bill; all five conditions met unless a fact is set False."""
    g = {"child_insured_in_region": True, "child_has_financial_card": True, "ecard_bound": True,
         "child_card_linked": True, "family_linked": True, "matches_enrolment": True}
    g.update(facts)
    return {"use": True, "payer": "guardian", "balance": balance, "guardian": g}


def case(id: str, data: dict[str, Any], xfail: str | None = None, **expected: Any) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(data, expected, id=id, marks=marks)


# Shared bills (each used by several cases below).

def sz_child_outpatient(**kw: Any) -> dict[str, Any]:
    # Shenzhen child, community outpatient: A 300.00 + B 100.00 (default 10%).
    # pre 10.00; in-scope 390.00; deductible 0; pool 390.00*0.75 = 292.50; person 400.00-292.50 = 107.50
    return bill(SZ, a("300.00"), b("100.00"), insurance="child", kind="outpatient", level="community", **kw)


def sz_res_l3_20000(**kw: Any) -> dict[str, Any]:
    # Shenzhen resident, level-3 inpatient, A 20000.00: deductible 1000.00,
    # pool (20000-1000)*0.60 = 11400.00, in-scope self-pay 20000-11400 = 8600.00 (the SI base).
    return bill(SZ, a("20000.00"), insurance="resident", level="level3", **kw)


SZ_RES_POOL = 1140000
SZ_RES_DELTA = {"pool_fund_paid": 1140000, "inpatient_pool_paid": 1140000, "inpatient_eligible_used": 1900000, "serious_illness_base": 860000}


def qd_res_l3_50000(**kw: Any) -> dict[str, Any]:
    # Qingdao resident, level-3 inpatient, A 50000.00: deductible 1000.00,
    # pool (50000-1000)*0.60 = 29400.00, in-scope self-pay 50000-29400 = 20600.00 (the SI base).
    return bill(QD, a("50000.00"), insurance="resident", level="level3", **kw)


def nb_res_l3(**kw: Any) -> dict[str, Any]:
    # Ningbo resident, level-3 inpatient, A 40000.00 + B 10000.00 (Ningbo default 15%): pre 1500.00,
    # in-scope 40000+8500 = 48500.00, deductible 1000.00, pool (48500-1000)*0.65 = 30875.00,
    # in-scope self-pay 48500-30875 = 17625.00; SI base (in_scope_self_pay + pre_self_pay) = 19125.00.
    return bill(NB, a("40000.00"), b("10000.00"), insurance="resident", level="level3", **kw)


def nb_res_l2_capped_line(**kw: Any) -> dict[str, Any]:
    # Ningbo resident, level-2 inpatient: A 4000.00 + A 300.00 x2 capped at 250.00
    # (total 600.00, over 100.00, in 500.00). in-scope 4500.00, deductible 600.00,
    # pool (4500-600)*0.75 = 2925.00, in-scope self-pay 1575.00; SI base 1575.00 (+pre 0);
    # assistance base = 1575.00 + pre 0 + over 100.00 = 1675.00.
    return bill(NB, a("4000.00"), a("300.00", "2", cap="250.00"), insurance="resident", level="level2", **kw)


# ------------------------------------------------------------------------------ cases

SHENZHEN = [
    # ---- employee, inpatient / outpatient, in service / retired
    case("sz-emp-inpatient-level3", bill(SZ, a("5128.00"), level="level3"),
         total=512800, in_scope=512800, deductible=60000,
         pool_fund=407520,  # (5128.00-600.00)*0.90 = 4075.20
         fund_total=407520, person_total=105280, cash_pay=105280,  # 5128.00-4075.20 = 1052.80
         delta={"pool_fund_paid": 407520, "inpatient_pool_paid": 407520, "inpatient_eligible_used": 452800}),
    case("sz-emp-retired-inpatient", bill(SZ, a("8000.00"), level="level2", retired=True),
         total=800000, in_scope=800000, deductible=40000,
         pool_fund=722000,  # (8000-400)*0.95 = 7220.00
         person_total=78000, cash_pay=78000),
    case("sz-emp-outpatient", bill(SZ, a("500.00"), kind="outpatient"),
         total=50000, in_scope=50000, deductible=30000,  # yearly deductible 300.00, none used
         pool_fund=14000,  # (500-300)*0.70 = 140.00
         person_total=36000, cash_pay=36000,
         delta={"outpatient_deductible_used": 30000, "pool_fund_paid": 14000,
                "outpatient_pool_paid": 14000, "outpatient_eligible_used": 20000}),
    case("sz-emp-retired-outpatient", bill(SZ, a("450.00"), kind="outpatient", level="community", retired=True),
         deductible=20000,  # retirees' yearly deductible 200.00
         pool_fund=20000,  # (450-200)*0.80 = 200.00
         person_total=25000, cash_pay=25000),
    case("sz-emp-outpatient-deductible-partly-used",
         bill(SZ, a("400.00"), kind="outpatient", level="level2", acc={"outpatient_deductible_used": "120.00"}),
         deductible=18000,  # 300.00-120.00 = 180.00 left
         pool_fund=13200,  # (400-180)*0.60 = 132.00
         person_total=26800, cash_pay=26800,
         delta={"outpatient_deductible_used": 18000, "pool_fund_paid": 13200,
                "outpatient_pool_paid": 13200, "outpatient_eligible_used": 22000}),
    case("sz-emp-outpatient-deductible-fully-used",
         bill(SZ, a("333.33"), kind="outpatient", level="level3", acc={"outpatient_deductible_used": "300.00"}),
         total=33333, deductible=0,
         pool_fund=16667,  # 333.33*0.50 = 166.665 -> 166.67
         person_total=16666, cash_pay=16666),  # 333.33-166.67
    # ---- line split: B lines, price cap, C and unlisted
    case("sz-emp-b-lines-own-ratio-and-default",
         bill(SZ, a("1000.00"), b("2000.00"), b("1500.00", ratio="0.20")),
         lines=[(100000, 0, 0, 0, 100000),
                (200000, 0, 0, 20000, 180000),  # 2000*0.10 (catalogue default) = 200.00
                (150000, 0, 0, 30000, 120000)],  # 1500*0.20 (own ratio) = 300.00
         total=450000, own_expense=0, over_limit=0, pre_self_pay=50000, in_scope=400000,
         deductible=20000,
         pool_fund=349600,  # (4000-200)*0.92 = 3496.00
         person_total=100400, cash_pay=100400),  # 4500-3496
    case("sz-emp-over-limit-class-c-unlisted",
         bill(SZ, a("4000.00"), a("120.00", "3", cap="100.00"), b("85.50", "2", cap="80.00"),
              c("230.00"), u("45.65", "0.5"), level="level2"),
         lines=[(400000, 0, 0, 0, 400000),
                (36000, 0, 6000, 0, 30000),  # 120*3 = 360; over (120-100)*3 = 60.00
                (17100, 0, 1100, 1600, 14400),  # 85.50*2 = 171; over 5.50*2 = 11; pre (171-11)*0.10 = 16
                (23000, 23000, 0, 0, 0),  # class C: all own expense
                (2283, 2283, 0, 0, 0)],  # unlisted 45.65*0.5 = 22.825 -> 22.83
         total=478383, own_expense=25283, over_limit=7100, pre_self_pay=1600, in_scope=444400,
         deductible=40000,
         pool_fund=368004,  # (4444.00-400)*0.91 = 3680.04
         person_total=110379, cash_pay=110379),  # 4783.83-3680.04
    # ---- repeat admissions: deductible x [1, 0.5, 0]
    case("sz-emp-2nd-admission-deductible-halved", bill(SZ, a("3000.00"), level="level3", admission=2),
         deductible=30000,  # 600*0.5
         pool_fund=243000,  # (3000-300)*0.90 = 2430.00
         person_total=57000, cash_pay=57000),
    case("sz-emp-3rd-admission-deductible-waived", bill(SZ, a("3000.00"), level="level3", admission=3),
         deductible=0,  # 600*0
         pool_fund=270000,  # 3000*0.90
         person_total=30000, cash_pay=30000),
    # ---- yearly caps
    case("sz-emp-pool-cap-mid-bill-to-large-amount",
         bill(SZ, a("5000.00"), acc={"pool_fund_paid": "600000.00"}),
         deductible=20000,
         pool_fund=105600,  # raw (5000-200)*0.92 = 4416.00 > cap left 601056-600000 = 1056.00
         # covered = 1056/0.92 = 1147.826 -> 1147.83; overflow 4800-1147.83 = 3652.17
         large_amount=328695,  # 3652.17*0.90 = 3286.953 -> 3286.95
         fund_total=434295, person_total=65705, cash_pay=65705,  # 5000-1056-3286.95 = 657.05
         # inpatient_eligible_used grows by the cost the basic layer covered: 1147.83
         delta={"pool_fund_paid": 105600, "inpatient_pool_paid": 105600, "inpatient_eligible_used": 114783, "large_amount_base": 365217, "large_amount_paid": 328695}),
    case("sz-emp-pool-cap-used-up-large-amount-cap",
         bill(SZ, a("3000.00"), level="level3",
              acc={"pool_fund_paid": "601056.00", "large_amount_paid": "999000.00"}),
         deductible=60000,
         pool_fund=0,  # cap left 0; overflow = all of (3000-600) = 2400.00
         large_amount=100000,  # min(2400*0.90 = 2160.00, 1000000-999000 = 1000.00)
         fund_total=100000, person_total=200000, cash_pay=200000,
         delta={"inpatient_eligible_used": 0, "large_amount_base": 240000, "large_amount_paid": 100000}),  # the basic layer covered nothing
    # ---- personal account
    case("sz-emp-account-pays-all-incl-own-expense",
         bill(SZ, a("400.00"), c("100.00"), kind="outpatient", acc={"outpatient_deductible_used": "300.00"},
              account=own("1000.00")),
         total=50000, own_expense=10000, deductible=0,
         pool_fund=28000,  # 400*0.70
         person_total=22000,  # 500-280; Shenzhen excludes nothing
         account_pay=22000, cash_pay=0, balance_after=78000),  # 1000-220
    case("sz-emp-account-balance-short", bill(SZ, a("500.00"), kind="outpatient", account=own("50.00")),
         pool_fund=14000,  # (500-300)*0.70
         person_total=36000, account_pay=5000, cash_pay=31000, balance_after=0),  # 360-50 = 310
    case("sz-emp-tier2-account-refused",
         bill(SZ, a("200.00"), kind="outpatient", level="community", tier=2, account=own("500.00")),
         deductible=0,
         pool_fund=14000,  # tier-2 outpatient: 200*0.70
         person_total=6000, account_pay=0, cash_pay=6000, balance_after=50000,
         refusal="no_personal_account"),
    case("sz-emp-tier2-outpatient-level-not-covered",
         bill(SZ, a("200.00"), kind="outpatient", level="level2", tier=2),
         deductible=0, pool_fund=0,  # tier-2 variant has no level2 ratio
         person_total=20000, cash_pay=20000),
    case("sz-emp-tier2-outpatient-pool-cap",
         bill(SZ, a("200.00"), kind="outpatient", level="community", tier=2,
              acc={"outpatient_pool_paid": "1950.00", "pool_fund_paid": "1950.00"}),
         pool_fund=5000,  # raw 200*0.70 = 140.00 > 2000-1950 = 50.00
         # covered 50/0.70 = 71.428 -> 71.43; cost beyond the outpatient-pooling cap stays co-pay,
         # it does not move to the large-amount layer (only the scheme cap / ceiling overflow does)
         fund_total=5000, person_total=15000, cash_pay=15000,  # 200-50
         delta={"pool_fund_paid": 5000, "outpatient_pool_paid": 5000, "outpatient_eligible_used": 7143}),
    # ---- resident and child
    case("sz-res-inpatient-below-si-threshold",
         bill(SZ, a("10000.00"), b("2000.00"), insurance="resident", level="level2"),
         total=1200000, pre_self_pay=20000, in_scope=1180000, deductible=50000,
         pool_fund=847500,  # (11800-500)*0.75 = 8475.00
         serious_illness=0,  # base 11800-8475 = 3325.00 < 20000
         person_total=352500, cash_pay=352500,  # 12000-8475
         delta={"pool_fund_paid": 847500, "inpatient_pool_paid": 847500, "inpatient_eligible_used": 1130000, "serious_illness_base": 332500}),
    case("sz-res-outpatient", bill(SZ, a("180.50"), insurance="resident", kind="outpatient", level="community"),
         deductible=0,
         pool_fund=9025,  # 180.50*0.50
         person_total=9025, cash_pay=9025,
         delta={"pool_fund_paid": 9025, "outpatient_pool_paid": 9025, "outpatient_eligible_used": 18050,
                "serious_illness_base": 9025}),
    case("sz-res-outpatient-pool-cap",
         bill(SZ, a("100.00"), insurance="resident", kind="outpatient",
              acc={"outpatient_pool_paid": "480.00", "pool_fund_paid": "480.00"}),
         pool_fund=2000,  # raw 100*0.50 = 50.00 > 500-480 = 20.00
         person_total=8000, cash_pay=8000,
         # covered 20/0.50 = 40.00
         delta={"pool_fund_paid": 2000, "outpatient_pool_paid": 2000, "outpatient_eligible_used": 4000,
                "serious_illness_base": 8000}),
    case("sz-res-account-refused",
         bill(SZ, a("100.00"), insurance="resident", kind="outpatient", level="community", account=own("300.00")),
         pool_fund=5000,  # 100*0.50
         person_total=5000, account_pay=0, cash_pay=5000, balance_after=30000, refusal="no_personal_account"),
    case("sz-child-inpatient", bill(SZ, a("6000.00"), insurance="child", level="level2"),
         deductible=30000,
         pool_fund=513000,  # (6000-300)*0.90 = 5130.00
         person_total=87000, cash_pay=87000,
         delta={"pool_fund_paid": 513000, "inpatient_pool_paid": 513000, "inpatient_eligible_used": 570000, "serious_illness_base": 87000}),
    # ---- guardian account (Shenzhen five conditions); min balance 100176.00*5% = 5008.80
    case("sz-child-inpatient-guardian-refused-visit-kind",
         bill(SZ, a("6000.00"), insurance="child", level="level2", account=guardian("6000.00")),
         pool_fund=513000, person_total=87000, account_pay=0, cash_pay=87000, balance_after=600000,
         refusal="guardian_visit_kind"),
    case("sz-child-guardian-all-conditions-met", sz_child_outpatient(account=guardian("6000.00")),
         lines=[(30000, 0, 0, 0, 30000), (10000, 0, 0, 1000, 9000)],
         total=40000, pre_self_pay=1000, in_scope=39000, deductible=0,
         pool_fund=29250,  # 390*0.75
         person_total=10750, account_pay=10750, mutual_aid_pay=10750, cash_pay=0,
         balance_after=589250),  # 6000-107.50
    case("sz-child-guardian-fails-child-insured",
         sz_child_outpatient(account=guardian("6000.00", child_insured_in_region=False)),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=600000,
         refusal="guardian_conditions", failed=("child_insured",)),
    case("sz-child-guardian-fails-child-card",
         sz_child_outpatient(account=guardian("6000.00", child_has_financial_card=False)),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=600000,
         refusal="guardian_conditions", failed=("child_insured",)),
    case("sz-child-guardian-fails-ecard-linked",
         sz_child_outpatient(account=guardian("6000.00", ecard_bound=False)),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=600000,
         refusal="guardian_conditions", failed=("guardian_ecard_linked",)),
    case("sz-child-guardian-fails-child-card-linked",
         sz_child_outpatient(account=guardian("6000.00", child_card_linked=False)),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=600000,
         refusal="guardian_conditions", failed=("guardian_ecard_linked",)),
    case("sz-child-guardian-fails-family-linked",
         sz_child_outpatient(account=guardian("6000.00", family_linked=False)),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=600000,
         refusal="guardian_conditions", failed=("family_account_linked",)),
    case("sz-child-guardian-fails-enrolment",
         sz_child_outpatient(account=guardian("6000.00", matches_enrolment=False)),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=600000,
         refusal="guardian_conditions", failed=("enrolment_guardian",)),
    case("sz-child-guardian-fails-balance", sz_child_outpatient(account=guardian("4000.00")),
         pool_fund=29250, person_total=10750, account_pay=0, cash_pay=10750, balance_after=400000,
         refusal="guardian_conditions", failed=("guardian_balance",)),
    case("sz-child-guardian-balance-5008.80-refused", sz_child_outpatient(account=guardian("5008.80")),
         person_total=10750, account_pay=0, cash_pay=10750, balance_after=500880,
         refusal="guardian_conditions", failed=("guardian_balance",)),
    case("sz-child-guardian-balance-5008.81-allowed", sz_child_outpatient(account=guardian("5008.81")),
         person_total=10750, account_pay=10750, mutual_aid_pay=10750, cash_pay=0,
         balance_after=490131),  # 5008.81-107.50
    # ---- serious illness (cumulative: 20000-50000 60%, 50000-100000 70%, above 80%); bill base 8600.00
    case("sz-si-60-band", sz_res_l3_20000(acc={"serious_illness_base": "25000.00"}),
         deductible=100000, pool_fund=SZ_RES_POOL,
         serious_illness=516000,  # [25000, 33600] * 0.60 = 8600*0.60 = 5160.00
         fund_total=1656000, person_total=344000, cash_pay=344000,  # 20000-11400-5160
         delta={**SZ_RES_DELTA, "serious_illness_paid": 516000}),
    case("sz-si-70-band", sz_res_l3_20000(acc={"serious_illness_base": "60000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=602000,  # 8600*0.70 = 6020.00
         person_total=258000, cash_pay=258000),  # 20000-11400-6020
    case("sz-si-80-band", sz_res_l3_20000(acc={"serious_illness_base": "150000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=688000,  # 8600*0.80 = 6880.00
         person_total=172000, cash_pay=172000),
    case("sz-si-crosses-threshold", sz_res_l3_20000(acc={"serious_illness_base": "15000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=216000,  # [20000, 23600] = 3600*0.60 = 2160.00
         person_total=644000, cash_pay=644000),  # 20000-11400-2160
    case("sz-si-crosses-50000", sz_res_l3_20000(acc={"serious_illness_base": "45000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=552000,  # 5000*0.60 + 3600*0.70 = 3000+2520 = 5520.00
         person_total=308000, cash_pay=308000),
    case("sz-si-crosses-100000", sz_res_l3_20000(acc={"serious_illness_base": "95000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=638000,  # 5000*0.70 + 3600*0.80 = 3500+2880 = 6380.00
         person_total=222000, cash_pay=222000),
    case("sz-si-band-parts-rounded-once", sz_res_l3_20000(acc={"serious_illness_base": "41400.04"}),
         pool_fund=SZ_RES_POOL,
         # 8599.96*0.60 + 0.04*0.70 = 5159.976 + 0.028 = 5160.004 -> 5160.00
         # (rounding each band first would give 5159.98 + 0.03 = 5160.01)
         serious_illness=516000,
         person_total=344000, cash_pay=344000),
    case("sz-si-below-threshold", sz_res_l3_20000(acc={"serious_illness_base": "10000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=0,  # 10000+8600 = 18600 < 20000
         person_total=860000, cash_pay=860000,
         delta=SZ_RES_DELTA),
    case("sz-si-annual-cap",
         sz_res_l3_20000(acc={"serious_illness_base": "150000.00", "serious_illness_paid": "399000.00"}),
         pool_fund=SZ_RES_POOL,
         serious_illness=100000,  # min(8600*0.80 = 6880.00, 400000-399000 = 1000.00)
         person_total=760000, cash_pay=760000,  # 20000-11400-1000
         delta={**SZ_RES_DELTA, "serious_illness_paid": 100000}),
    case("sz-si-hardship-tekun-no-cap-and-assistance",
         sz_res_l3_20000(hardship="tekun",
                         acc={"serious_illness_base": "5000.00", "serious_illness_paid": "400000.00"}),
         pool_fund=SZ_RES_POOL,
         # threshold 20000*0.5 = 10000; base 5000 -> 13600; 3600*(0.60+0.05) = 2340.00; no cap for tekun
         serious_illness=234000,
         # assistance (tekun, threshold 0, 70%): (8600 + pre 0 - 2340) = 6260*0.70 = 4382.00
         assistance=438200,
         fund_total=1812200, person_total=187800, cash_pay=187800,  # 20000-11400-2340-4382 = 1878.00
         delta={**SZ_RES_DELTA, "serious_illness_paid": 234000,
                "assistance_base": 626000, "assistance_paid": 438200}),
    # ---- medical assistance
    case("sz-emp-dibao-assistance-cap",
         bill(SZ, a("5128.00"), b("1000.00"), level="level3", hardship="dibao",
              acc={"assistance_paid": "49500.00"}),
         pre_self_pay=10000, in_scope=602800, deductible=60000,
         pool_fund=488520,  # (6028-600)*0.90 = 4885.20
         # base = in-scope self-pay (6028-4885.20 = 1142.80) + pre 100.00 = 1242.80
         assistance=50000,  # min(1242.80*0.70 = 869.96, 50000-49500 = 500.00)
         fund_total=538520, person_total=74280, cash_pay=74280,  # 6128-4885.20-500
         delta={"pool_fund_paid": 488520, "inpatient_pool_paid": 488520, "inpatient_eligible_used": 542800,
                "assistance_base": 124280, "assistance_paid": 50000}),
    case("sz-res-fanpin-assistance-threshold-4000",
         bill(SZ, a("6000.00"), insurance="resident", level="level2", hardship="fanpin",
              acc={"assistance_base": "3000.00"}),
         deductible=50000,
         pool_fund=412500,  # (6000-500)*0.75 = 4125.00; self-pay 1875.00
         serious_illness=0,  # fanpin threshold 10000 not reached
         assistance=56875,  # (3000+1875 = 4875) - 4000 = 875*0.65 = 568.75
         fund_total=469375, person_total=130625, cash_pay=130625,  # 6000-4125-568.75
         delta={"pool_fund_paid": 412500, "inpatient_pool_paid": 412500, "inpatient_eligible_used": 550000, "serious_illness_base": 187500,
                "assistance_base": 187500, "assistance_paid": 56875}),
    # ---- cross-region, Shenzhen insured: extra self-pay 0 / 10% / 20%
    case("sz-xr-long-term", bill(SZ, a("5000.00"), b("1000.00"), treated=QD, level="level3", filing="long_term"),
         lines=[(500000, 0, 0, 0, 500000), (100000, 0, 0, 10000, 90000)], extra=[0, 0],
         pre_self_pay=10000, in_scope=590000, deductible=60000,
         pool_fund=477000,  # (5900-600)*0.90 = 4770.00
         person_total=123000, cash_pay=123000),
    case("sz-xr-temporary",
         bill(SZ, a("5000.00"), b("1000.00"), a("123.45"), treated=QD, level="level3", filing="temporary"),
         lines=[(500000, 0, 0, 50000, 450000),  # extra 5000*0.10 = 500
                (100000, 0, 0, 19000, 81000),  # pre 100 + extra (1000-100)*0.10 = 90
                (12345, 0, 0, 1235, 11110)],  # extra 123.45*0.10 = 12.345 -> 12.35
         extra=[50000, 9000, 1235],
         total=612345, pre_self_pay=70235, in_scope=542110, deductible=60000,
         pool_fund=433899,  # (5421.10-600)*0.90 = 4338.99
         person_total=178446, cash_pay=178446),  # 6123.45-4338.99
    case("sz-xr-unfiled", bill(SZ, a("5000.00"), b("1000.00"), treated=QD, level="level3", filing="unfiled"),
         lines=[(500000, 0, 0, 100000, 400000),  # extra 5000*0.20 = 1000
                (100000, 0, 0, 28000, 72000)],  # 100 + 900*0.20 = 280
         extra=[100000, 18000],
         pre_self_pay=128000, in_scope=472000,
         pool_fund=370800,  # (4720-600)*0.90 = 3708.00
         person_total=229200, cash_pay=229200),
    case("sz-xr-unfiled-emergency-counts-as-temporary",
         bill(SZ, a("800.00"), treated=QD, kind="emergency", level="level2", filing="unfiled"),
         lines=[(80000, 0, 0, 8000, 72000)], extra=[8000],  # 10% (temporary), not 20%
         deductible=30000,  # outpatient rules: yearly 300.00
         pool_fund=25200,  # (720-300)*0.60 = 252.00
         person_total=54800, cash_pay=54800,
         delta={"outpatient_deductible_used": 30000, "pool_fund_paid": 25200,
                "outpatient_pool_paid": 25200, "outpatient_eligible_used": 42000}),
    case("sz-xr-treated-in-ningbo-b-default-0.15",
         bill(SZ, a("1000.00"), b("3000.00"), treated=NB, filing="long_term"),
         lines=[(100000, 0, 0, 0, 100000), (300000, 0, 0, 45000, 255000)],  # Ningbo catalogue: 3000*0.15
         pre_self_pay=45000, in_scope=355000, deductible=20000,
         pool_fund=308200,  # (3550-200)*0.92 = 3082.00
         person_total=91800, cash_pay=91800),
]

QINGDAO = [
    # ---- employee inpatient: cumulative bands (<10000 / above), deductible counted in the bands
    case("qd-emp-inpatient-first-band", bill(QD, a("8000.00"), level="level2"),
         deductible=50000,
         pool_fund=637500,  # [500, 8000] * 0.85 = 6375.00
         pool_ratio=850000,
         person_total=162500, cash_pay=162500),
    case("qd-emp-inpatient-banded-cumulative", bill(QD, a("30000.33"), b("2000.00"), level="level2"),
         total=3200033, pre_self_pay=20000, in_scope=3180033, deductible=50000,
         # [500, 10000] 9500*0.85 = 8075 + [10000, 31800.33] 21800.33*0.90 = 19620.297 -> 27695.297 -> 27695.30
         pool_fund=2769530,
         person_total=430503, cash_pay=430503,  # 32000.33-27695.30
         delta={"pool_fund_paid": 2769530, "inpatient_pool_paid": 2769530, "inpatient_eligible_used": 3130033}),
    case("qd-emp-retired-inpatient-banded", bill(QD, a("15000.00"), retired=True),
         deductible=30000,
         pool_fund=1387100,  # 9700*0.93 + 5000*0.97 = 9021 + 4850 = 13871.00
         person_total=112900, cash_pay=112900),
    case("qd-emp-2nd-admission-halved", bill(QD, a("12000.00"), level="level3", admission=2),
         deductible=40000,  # 800*0.5
         pool_fund=944000,  # [400, 10000] 9600*0.80 + [10000, 12000] 2000*0.88 = 7680+1760 = 9440.00
         person_total=256000, cash_pay=256000),
    case("qd-emp-3rd-admission-still-halved", bill(QD, a("5000.00"), admission=3),
         deductible=15000,  # last factor 0.5 applies: 300*0.5
         pool_fund=436500,  # [150, 5000] 4850*0.90 = 4365.00
         person_total=63500, cash_pay=63500),
    case("qd-emp-eligible-ceiling-spill",
         bill(QD, a("20000.00"), acc={"inpatient_eligible_used": "440000.00", "pool_fund_paid": "300000.00"}),
         deductible=30000,
         # eligible 19700; within min(19700, 450000-440000 = 10000) = 10000; spill 9700
         pool_fund=901500,  # [300, 10000] 9700*0.90 + [10000, 10300] 300*0.95 = 8730+285 = 9015.00
         large_amount=873000,  # spill 9700*0.90 = 8730.00
         fund_total=1774500, person_total=225500, cash_pay=225500,  # 20000-9015-8730
         delta={"pool_fund_paid": 901500, "inpatient_pool_paid": 901500, "inpatient_eligible_used": 1000000, "large_amount_base": 970000, "large_amount_paid": 873000}),
    case("qd-emp-pool-cap-mid-second-band", bill(QD, a("20000.00"), acc={"pool_fund_paid": "390000.00"}),
         deductible=30000,
         # raw 9700*0.90 + 10000*0.95 = 18230 > cap left 400000-390000 = 10000
         pool_fund=1000000,
         # covered = 9700 + (10000-8730)/0.95 = 9700 + 1336.842 = 11036.842 -> 11036.84
         # overflow 19700-11036.84 = 8663.16
         large_amount=779684,  # 8663.16*0.90 = 7796.844 -> 7796.84
         fund_total=1779684, person_total=220316, cash_pay=220316,
         delta={"pool_fund_paid": 1000000, "inpatient_pool_paid": 1000000, "inpatient_eligible_used": 1103684, "large_amount_base": 866316, "large_amount_paid": 779684}),  # covered 11036.84
    # ---- employee outpatient, account excludes own_expense
    case("qd-emp-outpatient-account-excludes-own-expense",
         bill(QD, a("200.00"), c("150.00"), b("100.00"), kind="outpatient",
              acc={"outpatient_deductible_used": "300.00"}, account=own("1000.00")),
         lines=[(20000, 0, 0, 0, 20000), (15000, 15000, 0, 0, 0), (10000, 0, 0, 1000, 9000)],
         total=45000, own_expense=15000, pre_self_pay=1000, in_scope=29000, deductible=0,
         pool_fund=18850,  # 290*0.65 = 188.50
         person_total=26150,  # 450-188.50
         account_pay=11150,  # 261.50 - own expense 150.00
         cash_pay=15000, balance_after=88850),
    case("qd-emp-retired-outpatient-deductible-partly-used",
         bill(QD, a("1000.00"), kind="outpatient", level="level3", retired=True,
              acc={"outpatient_deductible_used": "100.00"}),
         deductible=20000,  # 300-100
         pool_fund=48000,  # (1000-200)*0.60 = 480.00
         person_total=52000, cash_pay=52000,
         delta={"outpatient_deductible_used": 20000, "pool_fund_paid": 48000,
                "outpatient_pool_paid": 48000, "outpatient_eligible_used": 80000}),
    case("qd-emp-tekun-assistance-cap",
         bill(QD, a("900.00"), kind="outpatient", level="level2", hardship="tekun",
              acc={"assistance_paid": "59800.00"}),
         deductible=30000,
         pool_fund=36000,  # (900-300)*0.60 = 360.00
         assistance=20000,  # min((900-360)*0.75 = 405.00, 60000-59800 = 200.00)
         fund_total=56000, person_total=34000, cash_pay=34000,
         delta={"outpatient_deductible_used": 30000, "pool_fund_paid": 36000, "outpatient_pool_paid": 36000,
                "outpatient_eligible_used": 60000, "assistance_base": 54000, "assistance_paid": 20000}),
    # ---- resident and child
    case("qd-res-inpatient", bill(QD, a("9000.00"), insurance="resident", level="level2"),
         deductible=50000,
         pool_fund=637500,  # (9000-500)*0.75
         person_total=262500, cash_pay=262500,
         delta={"pool_fund_paid": 637500, "inpatient_pool_paid": 637500, "inpatient_eligible_used": 850000, "serious_illness_base": 262500}),
    case("qd-res-70-plus-inpatient", bill(QD, a("9000.00"), insurance="resident", level="level2", age=72),
         deductible=50000,
         pool_fund=680000,  # (9000-500)*0.80
         person_total=220000, cash_pay=220000),
    case("qd-res-outpatient", bill(QD, a("88.88"), insurance="resident", kind="outpatient"),
         deductible=0,
         pool_fund=4444,  # 88.88*0.50
         person_total=4444, cash_pay=4444),
    case("qd-res-family-mutual-aid-spouse",
         bill(QD, a("100.00"), c("20.00"), insurance="resident", kind="outpatient", account=family("500.00")),
         total=12000, own_expense=2000,
         pool_fund=5000,  # 100*0.50
         person_total=7000,
         account_pay=5000, mutual_aid_pay=5000,  # 70.00 - own expense 20.00 (Qingdao excludes it)
         cash_pay=2000, balance_after=45000),
    case("qd-child-inpatient", bill(QD, a("7000.00"), insurance="child", level="level3"),
         deductible=60000,
         pool_fund=480000,  # (7000-600)*0.75
         person_total=220000, cash_pay=220000),
    case("qd-child-outpatient-pool-cap",
         bill(QD, a("100.00"), insurance="child", kind="outpatient", level="community",
              acc={"outpatient_pool_paid": "790.00", "pool_fund_paid": "790.00"}),
         pool_fund=1000,  # min(100*0.60 = 60.00, 800-790 = 10.00)
         person_total=9000, cash_pay=9000,
         # covered 10/0.60 = 16.667 -> 16.67
         delta={"pool_fund_paid": 1000, "outpatient_pool_paid": 1000, "outpatient_eligible_used": 1667,
                "serious_illness_base": 9000}),
    # ---- serious illness, excess basis: threshold 18000, bands on the amount above it (<100000 60%, 75%)
    case("qd-si-excess", qd_res_l3_50000(),
         deductible=100000, pool_fund=2940000,
         serious_illness=156000,  # (20600-18000) = 2600*0.60 = 1560.00
         fund_total=3096000, person_total=1904000, cash_pay=1904000,  # 50000-29400-1560
         delta={"pool_fund_paid": 2940000, "inpatient_pool_paid": 2940000, "inpatient_eligible_used": 4900000,
                "serious_illness_base": 2060000, "serious_illness_paid": 156000}),
    case("qd-si-excess-crosses-band", qd_res_l3_50000(acc={"serious_illness_base": "110000.00"}),
         pool_fund=2940000,
         # base 110000 -> 130600; excess [92000, 112600]: 8000*0.60 + 12600*0.75 = 4800+9450 = 14250.00
         serious_illness=1425000,
         person_total=635000, cash_pay=635000),  # 50000-29400-14250
    case("qd-si-annual-cap",
         qd_res_l3_50000(acc={"serious_illness_base": "50000.00", "serious_illness_paid": "349500.00"}),
         pool_fund=2940000,
         serious_illness=50000,  # min(20600*0.60 = 12360.00, 350000-349500 = 500.00)
         person_total=2010000, cash_pay=2010000),
    case("qd-si-hardship-dibao-and-assistance", qd_res_l3_50000(hardship="dibao"),
         pool_fund=2940000,
         # threshold 18000*0.5 = 9000; excess [0, 11600]*(0.60+0.05) = 7540.00
         serious_illness=754000,
         assistance=914200,  # (20600 + pre 0 - 7540) = 13060*0.70 = 9142.00
         fund_total=4608200, person_total=391800, cash_pay=391800,  # 50000-29400-7540-9142
         delta={"pool_fund_paid": 2940000, "inpatient_pool_paid": 2940000, "inpatient_eligible_used": 4900000, "serious_illness_base": 2060000,
                "serious_illness_paid": 754000, "assistance_base": 1306000, "assistance_paid": 914200}),
]

NINGBO = [
    # ---- employee
    # level-3 deductible: 0.8% of the previous year's average wage, 126600.00*0.008 = 1012.80 (revision 2; was 1000.00)
    case("nb-emp-inpatient-b-default-0.15", bill(NB, a("10000.00"), b("2000.00"), level="level3"),
         lines=[(1000000, 0, 0, 0, 1000000), (200000, 0, 0, 30000, 170000)],  # 2000*0.15 = 300
         total=1200000, pre_self_pay=30000, in_scope=1170000, deductible=101280,
         pool_fund=940474,  # (11700-1012.80)*0.88 = 10687.20*0.88 = 9404.736 -> 9404.74
         person_total=259526, cash_pay=259526),  # 12000-9404.74
    case("nb-emp-retired-inpatient", bill(NB, a("4321.09"), level="level2", retired=True),
         deductible=50000,
         pool_fund=366825,  # (4321.09-500)*0.96 = 3668.2464 -> 3668.25
         person_total=65284, cash_pay=65284),  # 4321.09-3668.25
    case("nb-emp-2nd-admission-halved", bill(NB, a("3000.00"), level="level2", admission=2),
         deductible=25000,  # 500*0.5
         pool_fund=253000,  # (3000-250)*0.92 = 2530.00
         person_total=47000, cash_pay=47000),
    case("nb-emp-4th-admission-waived", bill(NB, a("3000.00"), level="level3", admission=4),
         deductible=0,  # last factor 0 applies from the 3rd admission on
         pool_fund=264000,  # 3000*0.88
         person_total=36000, cash_pay=36000),
    case("nb-emp-outpatient", bill(NB, a("260.00"), kind="outpatient"),
         deductible=0,
         pool_fund=18200,  # 260*0.70
         person_total=7800, cash_pay=7800),
    case("nb-emp-retired-pharmacy", bill(NB, a("99.99"), kind="pharmacy", level="pharmacy", retired=True),
         deductible=0,
         pool_fund=5999,  # 99.99*0.60 = 59.994 -> 59.99
         person_total=4000, cash_pay=4000,
         delta={"pool_fund_paid": 5999, "outpatient_pool_paid": 5999, "outpatient_eligible_used": 9999}),
    case("nb-emp-account-excludes-own-and-over-limit",
         bill(NB, a("500.00"), b("200.00", ratio="0.05"), a("60.00", "2", cap="50.00"), c("80.00"),
              kind="outpatient", level="level2", account=own("1000.00")),
         lines=[(50000, 0, 0, 0, 50000),
                (20000, 0, 0, 1000, 19000),  # own ratio 5%
                (12000, 0, 2000, 0, 10000),  # over (60-50)*2 = 20.00
                (8000, 8000, 0, 0, 0)],
         total=90000, own_expense=8000, over_limit=2000, pre_self_pay=1000, in_scope=79000,
         pool_fund=47400,  # 790*0.60
         person_total=42600,  # 900-474
         account_pay=32600,  # 426 - own 80 - over 20
         cash_pay=10000, balance_after=67400),
    case("nb-emp-account-exclusion-net-of-assistance",
         bill(NB, a("1000.00", cap="200.00"), kind="outpatient", level="level1", hardship="dibao", account=own("5000.00")),
         total=100000, over_limit=80000, in_scope=20000,
         pool_fund=14000,  # 200*0.70
         assistance=60200,  # base (200-140) + over 800 = 860; *0.70 = 602.00
         fund_total=74200, person_total=25800,  # 1000-140-602
         # assistance's base includes over_limit, so it pays that part first: 800-602 = 198 still excluded
         account_pay=6000,  # 258-198 = 60.00, the in-scope co-pay
         cash_pay=19800, balance_after=494000),
    case("nb-emp-account-balance-short",
         bill(NB, a("10000.00"), b("2000.00"), level="level3", account=own("1000.00")),
         pool_fund=940474, person_total=259526,  # as nb-emp-inpatient-b-default-0.15
         account_pay=100000, cash_pay=159526, balance_after=0),  # 2595.26-1000
    case("nb-emp-pool-cap-mid-bill-to-large-amount",
         bill(NB, a("2000.00"), retired=True, acc={"pool_fund_paid": "359000.00"}),
         deductible=30000,
         pool_fund=100000,  # raw 1700*0.98 = 1666.00 > cap left 360000-359000 = 1000.00
         # covered 1000/0.98 = 1020.408 -> 1020.41; overflow 1700-1020.41 = 679.59
         large_amount=57765,  # 679.59*0.85 = 577.6515 -> 577.65
         fund_total=157765, person_total=42235, cash_pay=42235,  # 2000-1000-577.65
         delta={"pool_fund_paid": 100000, "inpatient_pool_paid": 100000, "inpatient_eligible_used": 102041, "large_amount_base": 67959, "large_amount_paid": 57765}),  # covered 1020.41
    # ---- employee inpatient: implants at their own fund ratio (item_ratios: imported 0.60, then implant 0.80)
    case("nb-emp-implant-own-ratio",
         bill(NB, a("5000.00"), a("20000.00", categories=["implant"]), level="level3"),
         in_scope=2500000, deductible=101280,  # met from the ordinary cost first
         # ordinary (5000-1012.80)*0.88 = 3987.20*0.88 = 3508.736; implant 20000*0.80 = 16000.00;
         # rounded once over both: 19508.736 -> 19508.74
         pool_fund=1950874, pool_ratio=880000,
         person_total=549126, cash_pay=549126),  # 25000-19508.74
    case("nb-emp-implant-meets-rest-of-deductible",
         bill(NB, a("400.00"), a("10000.00", categories=["implant"]), level="level3"),
         deductible=101280,
         # the ordinary 400.00 meets part of the deductible, the implant the other 612.80:
         # (10000-612.80)*0.80 = 9387.20*0.80 = 7509.76
         pool_fund=750976,
         person_total=289024, cash_pay=289024),  # 10400-7509.76
    case("nb-emp-retired-imported-implant-first-rule",
         bill(NB, a("2000.00"), a("30000.00", categories=["implant", "imported"]), level="level2", retired=True),
         deductible=50000,
         # a pacemaker is both: the first rule it matches (imported, 0.60) applies, not implant's 0.80:
         # ordinary (2000-500)*0.96 = 1440.00; pacemaker 30000*0.60 = 18000.00
         pool_fund=1944000,
         person_total=1256000, cash_pay=1256000),  # 32000-19440
    # ---- resident and child
    case("nb-res-inpatient-si-base-includes-pre",
         bill(NB, a("7000.00"), b("1000.00"), insurance="resident", level="level2"),
         pre_self_pay=15000, in_scope=785000, deductible=60000,
         pool_fund=543750,  # (7850-600)*0.75 = 5437.50
         serious_illness=0,  # base (7850-5437.50) + 150 = 2562.50 < 25000
         person_total=256250, cash_pay=256250,
         delta={"pool_fund_paid": 543750, "inpatient_pool_paid": 543750, "inpatient_eligible_used": 725000, "serious_illness_base": 256250}),
    case("nb-res-outpatient-deductible",
         bill(NB, a("150.00"), insurance="resident", kind="outpatient", level="community"),
         deductible=10000,  # yearly 100.00
         pool_fund=2750,  # (150-100)*0.55 = 27.50
         person_total=12250, cash_pay=12250,
         delta={"outpatient_deductible_used": 10000, "pool_fund_paid": 2750, "outpatient_pool_paid": 2750,
                "outpatient_eligible_used": 5000, "serious_illness_base": 12250}),
    case("nb-res-outpatient-deductible-partly-used",
         bill(NB, a("240.00"), insurance="resident", kind="outpatient", level="level2",
              acc={"outpatient_deductible_used": "60.00"}),
         deductible=4000,  # 100-60
         pool_fund=9000,  # (240-40)*0.45
         person_total=15000, cash_pay=15000),
    case("nb-res-outpatient-pool-cap",
         bill(NB, a("100.00"), insurance="resident", kind="outpatient",
              acc={"outpatient_deductible_used": "100.00", "outpatient_pool_paid": "590.00",
                   "pool_fund_paid": "590.00"}),
         deductible=0,
         pool_fund=1000,  # min(100*0.50 = 50.00, 600-590 = 10.00)
         person_total=9000, cash_pay=9000),
    # ---- resident outpatient ratio by age: base until 60, then one point a year, at most ten points more
    case("nb-res-outpatient-ratio-by-age-66",
         bill(NB, a("300.00"), insurance="resident", kind="outpatient", level="community", age=66),
         deductible=10000,
         pool_fund=12200,  # 0.55 + 0.01*(66-60) = 0.61; (300-100)*0.61 = 122.00
         pool_ratio=610000,
         person_total=17800, cash_pay=17800),
    case("nb-res-outpatient-ratio-by-age-75-capped",
         bill(NB, a("200.00"), insurance="resident", kind="outpatient", level="level2", age=75,
              acc={"outpatient_deductible_used": "100.00"}),
         deductible=0,
         pool_fund=11000,  # 0.45 + 0.01*15 = 0.60 -> max 0.55; 200*0.55 = 110.00
         pool_ratio=550000,
         person_total=9000, cash_pay=9000),
    case("nb-res-outpatient-ratio-by-age-60-base",
         bill(NB, a("100.00"), insurance="resident", kind="outpatient", level="level1", age=60,
              acc={"outpatient_deductible_used": "100.00"}),
         pool_fund=5000,  # from_age 60: nothing added at 60; 100*0.50
         pool_ratio=500000,
         person_total=5000, cash_pay=5000),
    case("nb-child-inpatient", bill(NB, a("3000.00"), insurance="child"),
         deductible=20000,
         pool_fund=252000,  # (3000-200)*0.90
         person_total=48000, cash_pay=48000),
    case("nb-child-outpatient", bill(NB, a("80.00"), insurance="child", kind="outpatient", level="community"),
         pool_fund=5200,  # 80*0.65
         person_total=2800, cash_pay=2800),
    # ---- children's own serious-illness section: threshold 12500, 70% of the excess (residents: 25000, bands)
    case("nb-child-own-serious-illness-section",
         bill(NB, a("20000.00"), insurance="child", level="level3", acc={"serious_illness_base": "10000.00"}),
         deductible=60000,
         pool_fund=1455000,  # (20000-600)*0.75 = 14550.00; in-scope self-pay 5450.00
         # base 10000 -> 15450, above 12500 by 2950*0.70 = 2065.00 (the residents' 25000 would pay nothing)
         serious_illness=206500,
         fund_total=1661500, person_total=338500, cash_pay=338500,  # 20000-14550-2065
         delta={"pool_fund_paid": 1455000, "inpatient_pool_paid": 1455000, "inpatient_eligible_used": 1940000,
                "serious_illness_base": 545000, "serious_illness_paid": 206500}),
    case("nb-child-own-section-hardship-halves-its-threshold",
         bill(NB, a("10000.00"), insurance="child", level="level3", hardship="dibao",
              acc={"serious_illness_base": "5000.00"}),
         pool_fund=705000,  # (10000-600)*0.75 = 7050.00; in-scope self-pay 2950.00
         # base 5000 -> 7950; dibao: the section's threshold halved, 12500*0.5 = 6250, ratio 0.70+0.05 = 0.75:
         # (7950-6250)*0.75 = 1275.00 (without the status 7950 < 12500 pays nothing)
         serious_illness=127500,
         # assistance dibao 70%, threshold 0: base 2950.00 less the serious-illness 1275.00 = 1675*0.70 = 1172.50
         assistance=117250,
         fund_total=949750, person_total=50250, cash_pay=50250),  # 10000-7050-1275-1172.50
    # ---- serious illness (cumulative: 25000-50000 60%, above 70%; base includes pre_self_pay)
    case("nb-si-crosses-50000", nb_res_l3(acc={"serious_illness_base": "40000.00"}),
         pre_self_pay=150000, in_scope=4850000, deductible=100000, pool_fund=3087500,
         # base 40000 -> 59125: 10000*0.60 + 9125*0.70 = 6000 + 6387.50 = 12387.50
         serious_illness=1238750,
         fund_total=4326250, person_total=673750, cash_pay=673750,  # 50000-30875-12387.50
         delta={"pool_fund_paid": 3087500, "inpatient_pool_paid": 3087500, "inpatient_eligible_used": 4750000,
                "serious_illness_base": 1912500, "serious_illness_paid": 1238750}),
    case("nb-si-hardship-tekun-capped",
         nb_res_l3(hardship="tekun", acc={"serious_illness_base": "10000.00", "serious_illness_paid": "399000.00"}),
         pool_fund=3087500,
         # threshold 12500; [12500, 29125] 16625*0.65 = 10806.25; Ningbo keeps the cap: 400000-399000
         serious_illness=100000,
         # assistance tekun 80%: (17625 + 1500 + over 0 - 1000) = 18125*0.80 = 14500.00
         assistance=1450000,
         fund_total=4637500, person_total=362500, cash_pay=362500,  # 50000-30875-1000-14500
         delta={"pool_fund_paid": 3087500, "inpatient_pool_paid": 3087500, "inpatient_eligible_used": 4750000, "serious_illness_base": 1912500,
                "serious_illness_paid": 100000, "assistance_base": 1812500, "assistance_paid": 1450000}),
    # ---- assistance: dibao_edge, threshold 5000, 60%, cap 40000; base includes over_limit
    case("nb-dibao-edge-crosses-threshold",
         nb_res_l2_capped_line(hardship="dibao_edge", acc={"assistance_base": "4000.00"}),
         lines=[(400000, 0, 0, 0, 400000), (60000, 0, 10000, 0, 50000)],
         total=460000, over_limit=10000, in_scope=450000, deductible=60000,
         pool_fund=292500,
         assistance=40500,  # (4000+1675 = 5675) - 5000 = 675*0.60 = 405.00
         fund_total=333000, person_total=127000, cash_pay=127000,  # 4600-2925-405
         delta={"pool_fund_paid": 292500, "inpatient_pool_paid": 292500, "inpatient_eligible_used": 390000, "serious_illness_base": 157500,
                "assistance_base": 167500, "assistance_paid": 40500}),
    case("nb-dibao-edge-below-threshold", nb_res_l2_capped_line(hardship="dibao_edge"),
         pool_fund=292500,
         assistance=0,  # 1675 < 5000
         person_total=167500, cash_pay=167500,
         delta={"pool_fund_paid": 292500, "inpatient_pool_paid": 292500, "inpatient_eligible_used": 390000, "serious_illness_base": 157500,
                "assistance_base": 167500}),
    case("nb-dibao-edge-annual-cap",
         nb_res_l2_capped_line(hardship="dibao_edge",
                               acc={"assistance_base": "20000.00", "assistance_paid": "39900.00"}),
         pool_fund=292500,
         assistance=10000,  # min(1675*0.60 = 1005.00, 40000-39900 = 100.00)
         person_total=157500, cash_pay=157500),  # 4600-2925-100
    # ---- cross-region, Ningbo insured: ratio cut 0 / 10 / 15 points
    case("nb-xr-long-term", bill(NB, a("6000.00"), treated=SZ, level="level2", filing="long_term"),
         deductible=50000,
         pool_fund=506000,  # (6000-500)*0.92
         pool_ratio=920000,
         person_total=94000, cash_pay=94000),
    case("nb-xr-temporary-shenzhen-catalogue",
         bill(NB, a("5000.00"), b("1000.00"), treated=SZ, level="level2", filing="temporary"),
         lines=[(500000, 0, 0, 0, 500000), (100000, 0, 0, 10000, 90000)],  # Shenzhen's 10%, not 15%
         extra=[0, 0],
         pre_self_pay=10000, in_scope=590000, deductible=50000,
         pool_fund=442800,  # (5900-500)*(0.92-0.10) = 5400*0.82 = 4428.00
         pool_ratio=820000,
         person_total=157200, cash_pay=157200),
    case("nb-xr-unfiled", bill(NB, a("6000.00"), treated=SZ, level="level2", filing="unfiled"),
         pool_fund=423500,  # (6000-500)*(0.92-0.15) = 5500*0.77 = 4235.00
         pool_ratio=770000,
         person_total=176500, cash_pay=176500),
    case("nb-xr-unfiled-emergency-counts-as-temporary",
         bill(NB, a("300.00"), treated=QD, kind="emergency", level="level3", filing="unfiled"),
         deductible=0,
         pool_fund=15000,  # outpatient level3 0.60-0.10 = 0.50; 300*0.50
         pool_ratio=500000,
         person_total=15000, cash_pay=15000),
    case("nb-xr-treatment-region-without-policy",
         bill(NB, a("5000.00"), b("1000.00"), treated=NO_POLICY, level="level2", filing="temporary"),
         lines=[(500000, 0, 0, 0, 500000), (100000, 0, 0, 15000, 85000)],  # falls back to Ningbo's 15%
         pre_self_pay=15000, in_scope=585000,
         pool_fund=438700,  # (5850-500)*0.82 = 4387.00
         person_total=161300, cash_pay=161300),
]

CASES = SHENZHEN + QINGDAO + NINGBO

DEFAULT_ZERO = ("serious_illness", "large_amount", "assistance", "account_pay", "mutual_aid_pay")


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_settlement_table(data: dict[str, Any], expected: dict[str, Any]) -> None:
    s = quote(bill_from_mapping(data))
    expected = dict(expected)
    lines = expected.pop("lines", None)
    extra = expected.pop("extra", None)
    delta = expected.pop("delta", None)
    refusal = expected.pop("refusal", None)
    failed = expected.pop("failed", ())
    for name in DEFAULT_ZERO:
        expected.setdefault(name, 0)

    got = {name: getattr(s, name) for name in expected}
    assert got == expected

    if lines is not None:
        assert [(ln.total, ln.own_expense, ln.over_limit, ln.pre_self_pay, ln.in_scope) for ln in s.lines] == lines
    if extra is not None:
        assert [ln.cross_region_extra for ln in s.lines] == extra
    if delta is not None:
        # A visit adds its in-scope cost to its class's yearly in-scope accumulator (unless the case lists it).
        kind = "inpatient" if data["visit"]["kind"] == "inpatient" else "outpatient"
        delta = {f"{kind}_in_scope": s.in_scope, **delta}
        assert s.accumulator_delta.as_dict() == {f: delta.get(f, 0) for f in ACCUMULATOR_FIELDS}
    if refusal is None:
        assert s.account_refusal is None
    else:
        assert s.account_refusal is not None
        assert s.account_refusal.code == refusal
        assert s.account_refusal.failed_conditions == tuple(failed)

    # The identities of docs/engine.md hold in every case.
    assert s.total == s.own_expense + s.over_limit + s.pre_self_pay + s.in_scope
    for ln in s.lines:
        assert ln.total == ln.own_expense + ln.over_limit + ln.pre_self_pay + ln.in_scope
    assert s.total == s.fund_total + s.person_total
    assert s.person_total == s.account_pay + s.cash_pay
    assert s.fund_total == s.pool_fund + s.serious_illness + s.large_amount + s.other + s.assistance
    assert s.balance_after == s.balance_before - s.account_pay >= 0


def test_table_spans_regions_and_kinds() -> None:
    """Every demo region has inpatient and outpatient cases in the table."""
    seen = {(p.values[0]["insured_region"], p.values[0]["visit"]["kind"]) for p in CASES}
    for region in (SZ, QD, NB):
        assert (region, "inpatient") in seen
        assert (region, "outpatient") in seen


def test_cost_in_a_band_that_pays_nothing_never_spills_when_the_cap_binds(tmp_path):
    """Review finding F1: a top band with a limit (0% above) and a cap binding one yuan early."""
    import yaml

    from yibao.policies.loader import BUILTIN_DIR

    data = yaml.safe_load((BUILTIN_DIR / "440300-2026.yaml").read_text(encoding="utf-8"))
    data["schemes"]["employee"]["inpatient"][1]["ratio"]["level3"] = [{"upto": "100000", "ratio": "0.90"}]
    path = tmp_path / "440300-2026.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    bill = bill_from_mapping({**BASE_BILL_150K})
    free = quote(bill, path)
    tight = quote(bill_from_mapping({**BASE_BILL_150K, "accumulators": {"pool_fund_paid": "511057.00"}}), path)
    # 150000 − 600 deductible; the band pays 90% of the first 100000 measured above the deductible = 90000.00
    assert (free.pool_fund, free.large_amount, free.cash_pay) == (9_000_000, 0, 6_000_000)
    # cap left 89999.00: the fund pays that; only the one yuan of paying cost it could not cover moves on
    # (1/0.90 = 1.11 yuan of cost × 90% large-amount = 1.00), nothing of the unpaid top band
    assert tight.pool_fund == 8_999_900 and tight.large_amount == 100 and tight.cash_pay == 6_000_000


BASE_BILL_150K = {
    "insured_region": "440300", "treatment_region": "440300", "date": "2026-11-22",
    "person": {"insurance_type": "employee", "tier": 1, "retired": False, "age": 45},
    "visit": {"kind": "inpatient", "institution_level": "level3", "admission_number": 1},
    "lines": [{"code": "A1", "name": "手术", "class": "A", "unit_price": "150000.00", "quantity": "1"}],
}
