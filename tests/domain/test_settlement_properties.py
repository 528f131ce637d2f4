"""The money identities of docs/engine.md, for every generated bill, person and policy."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tests.support.strategies import accumulators, priced
from yibao.domain.bill import Accumulators
from yibao.domain.settlement import settle

AMOUNT_FIELDS = ("total", "own_expense", "over_limit", "pre_self_pay", "in_scope", "deductible", "pool_fund",
                 "serious_illness", "large_amount", "other", "assistance", "fund_total", "person_total", "account_pay",
                 "mutual_aid_pay", "cash_pay", "balance_after")


def _variant(bill, policy):  # noqa: ANN001, ANN202
    _, variants = policy.schemes[bill.person.insurance_type].variants_for(bill.visit.kind)
    return next(v for v in variants if v.when.matches(bill.person.tier, bill.person.retired, bill.person.age))


@given(priced())
def test_identities_hold(case):
    bill, policy, catalogue = case
    s = settle(bill, policy, catalogue)
    for ln in s.lines:
        assert ln.total == ln.own_expense + ln.over_limit + ln.pre_self_pay + ln.in_scope
        assert min(ln.own_expense, ln.over_limit, ln.pre_self_pay, ln.in_scope) >= 0
    assert s.total == sum(ln.total for ln in s.lines)
    assert s.total == s.own_expense + s.over_limit + s.pre_self_pay + s.in_scope
    assert s.total == s.fund_total + s.person_total
    assert s.person_total == s.account_pay + s.cash_pay
    assert s.fund_total == s.pool_fund + s.serious_illness + s.large_amount + s.other + s.assistance
    for name in AMOUNT_FIELDS:
        assert getattr(s, name) >= 0, name
    assert s.deductible <= s.in_scope
    assert s.mutual_aid_pay <= s.account_pay


@given(priced())
def test_no_fund_pays_beyond_its_remaining_cap(case):
    bill, policy, catalogue = case
    s = settle(bill, policy, catalogue)
    acc = bill.accumulators
    scheme = policy.schemes[bill.person.insurance_type]
    kind, variants = scheme.variants_for(bill.visit.kind)
    variant = next(v for v in variants if v.when.matches(bill.person.tier, bill.person.retired, bill.person.age))
    if scheme.annual_cap is not None and scheme.annual_cap_counts_against in ("pool_fund_paid", variant.pool_counts_against):
        assert s.pool_fund <= max(0, scheme.annual_cap - getattr(acc, scheme.annual_cap_counts_against))  # None: `annual_cap: none`
    if kind != "inpatient" and variant.annual_cap is not None:
        assert s.pool_fund <= max(0, variant.annual_cap - getattr(acc, variant.pool_counts_against))
    delta = s.accumulator_delta
    if variant.eligible_ceiling is not None:
        room = max(0, variant.eligible_ceiling - getattr(acc, variant.eligible_counts_against))
        # what the basic layer covered stays within the room the rule's own accumulator left
        measured = s.deductible if variant.eligible_ceiling_basis == "cumulative" else 0
        assert getattr(delta, variant.eligible_counts_against) - measured <= max(0, room - measured)
    # a visit adds only to its own rule's accumulators
    for name in ("inpatient_eligible_used", "outpatient_eligible_used"):
        if name != variant.eligible_counts_against:
            assert getattr(delta, name) == 0
    for name in ("inpatient_pool_paid", "outpatient_pool_paid"):
        assert getattr(delta, name) == (s.pool_fund if name == variant.pool_counts_against else 0)
    la = policy.large_amount_for(bill.person.insurance_type)
    if la is not None and la.annual_cap is not None:
        assert s.large_amount <= max(0, la.annual_cap - acc.large_amount_paid)
    si = policy.serious_illness_for(bill.person.insurance_type)
    hard = si is not None and bill.person.hardship in si.hardship_statuses
    if si is not None and si.annual_cap is not None and not (hard and si.hardship_no_cap):
        assert delta.serious_illness_paid <= max(0, si.annual_cap - acc.serious_illness_paid)
    bl = policy.beyond_large_amount_for(bill.person.insurance_type)
    if bl is not None and bl.annual_cap is not None:
        assert delta.beyond_cap_paid <= max(0, bl.annual_cap - acc.beyond_cap_paid)
    layers = policy.schemes[bill.person.insurance_type].layer_order
    if "beyond_large_amount" not in layers:
        assert s.other == 0 and delta.beyond_cap_paid == 0
    # every layer's payment is in exactly one reported field
    assert s.serious_illness + s.other == delta.serious_illness_paid + delta.beyond_cap_paid
    if s.assistance:
        status = policy.assistance.statuses[bill.person.hardship]
        if status.annual_cap is not None:
            assert s.assistance <= max(0, status.annual_cap - acc.assistance_paid)


@given(priced())
def test_no_account_goes_below_zero(case):
    bill, policy, catalogue = case
    s = settle(bill, policy, catalogue)
    assert s.account_pay <= bill.account.balance
    assert s.balance_after == bill.account.balance - s.account_pay >= 0
    if not bill.account.use or s.account_refusal is not None:
        assert s.account_pay == 0


@given(priced())
def test_deltas_then_their_negation_restore_the_accumulators(case):
    bill, policy, catalogue = case
    s = settle(bill, policy, catalogue)
    acc = bill.accumulators
    after = acc.plus(s.accumulator_delta)
    assert after.plus(s.accumulator_delta.negated()) == acc
    assert all(v >= 0 for v in s.accumulator_delta.as_dict().values())
    assert after.pool_fund_paid - acc.pool_fund_paid == s.pool_fund
    assert (after.serious_illness_paid - acc.serious_illness_paid) + (after.beyond_cap_paid - acc.beyond_cap_paid) == s.serious_illness + s.other
    assert after.large_amount_paid - acc.large_amount_paid == s.large_amount
    assert after.assistance_paid - acc.assistance_paid == s.assistance


@given(accumulators(), accumulators())
def test_accumulator_negation_is_exact(a, d):
    assert a.plus(d).plus(d.negated()) == a
    assert d.negated().negated() == d
    assert a.plus(Accumulators()) == a


@given(priced())
def test_settling_again_with_updated_accumulators_never_exceeds_caps(case):
    """A second identical bill after the first one's deltas still respects every cap."""
    bill, policy, catalogue = case
    import dataclasses

    first = settle(bill, policy, catalogue)
    second_bill = dataclasses.replace(bill, accumulators=bill.accumulators.plus(first.accumulator_delta))
    second = settle(second_bill, policy, catalogue)
    scheme = policy.schemes[bill.person.insurance_type]
    paid = getattr(bill.accumulators, scheme.annual_cap_counts_against)
    if scheme.annual_cap is not None and paid <= scheme.annual_cap and \
            scheme.annual_cap_counts_against in ("pool_fund_paid", _variant(bill, policy).pool_counts_against):
        assert first.pool_fund + second.pool_fund <= scheme.annual_cap - paid


@given(priced())
def test_every_explanation_renders_in_both_languages(case):
    bill, policy, catalogue = case
    s = settle(bill, policy, catalogue)
    assert [e.step for e in s.explanation] == sorted(e.step for e in s.explanation)
    for e in s.explanation:
        for text in (e.zh, e.en):
            assert text and "{" not in text and "}" not in text
        assert not re.search(r"\blevel[123]\b", e.en), e.en  # a reader's words, not the policy file's codes
    assert s.explanation[-1].code == "cash" and s.explanation[-1].amount == s.cash_pay


@given(priced(), st.integers(1, 100))
def test_one_fen_more_cap_headroom_moves_the_patients_share_by_little(case, fen):
    """Continuity at a binding cap: a little more headroom shifts the patient's share by a bounded amount.
    (The sharper regression for cost in zero-ratio bands is the table test
    test_cost_in_a_band_that_pays_nothing_never_spills_when_the_cap_binds.)"""
    import dataclasses

    bill, policy, catalogue = case
    scheme = policy.schemes[bill.person.insurance_type]
    cap = scheme.annual_cap  # None (`annual_cap: none`): what was paid before changes nothing
    field = scheme.annual_cap_counts_against  # the accumulator the scheme cap reads
    paid = max(0, cap - 10_000) if cap is not None else getattr(bill.accumulators, field)
    base = dataclasses.replace(bill, accumulators=dataclasses.replace(bill.accumulators, **{field: paid}))
    more = dataclasses.replace(base, accumulators=dataclasses.replace(base.accumulators,
                                                                      **{field: max(0, getattr(base.accumulators, field) - fen)}))
    a, b = settle(base, policy, catalogue), settle(more, policy, catalogue)
    # fen more cap can lower the patient's share by at most fen / (lowest ratio) (cost the fund now covers) plus rounding
    assert abs(a.person_total - b.person_total) <= 1_000 * fen + 2
    if cap is None:
        assert (a.pool_fund, a.person_total) == (b.pool_fund, b.person_total)


def test_the_domain_checks_its_own_inputs():
    """Callers other than the JSON parser (the services read rows) cannot slip negative or empty values in."""
    import dataclasses

    import pytest

    from yibao.domain.errors import InputError
    from yibao.formats.bill_json import bill_from_mapping
    from yibao.policies.loader import builtin_policy

    policy = builtin_policy("440300", 2026)
    bill = bill_from_mapping({"insured_region": "440300", "treatment_region": "440300", "date": "2026-11-22",
                              "person": {"insurance_type": "employee", "tier": 1, "age": 40},
                              "visit": {"kind": "inpatient", "institution_level": "level3"},
                              "lines": [{"code": "A", "name": "x", "class": "A", "unit_price": "10.00", "quantity": "1"}]})
    bad = [
        dataclasses.replace(bill, lines=(dataclasses.replace(bill.lines[0], quantity=-10_000),)),
        dataclasses.replace(bill, visit=dataclasses.replace(bill.visit, admission_number=0)),
        dataclasses.replace(bill, account=dataclasses.replace(bill.account, use=True, balance=-1)),
        dataclasses.replace(bill, lines=()),
    ]
    for b in bad:
        with pytest.raises(InputError):
            settle(b, policy, policy)


@given(priced())
def test_items_at_the_visit_s_own_flat_ratio_change_nothing(case):
    """Item rules that pay every category and code at the visit's own flat ratio price the bill exactly as without them:
    the items' bands continue the visit's, so the deductible, a cap or a ceiling binding, the spill and the rounding
    (once) all come out the same (docs/engine.md step 4)."""
    import dataclasses

    from hypothesis import assume

    from tests.support.strategies import CODES
    from yibao.domain.policy import ITEM_CATEGORIES, ItemRatio

    bill, policy, catalogue = case
    scheme = policy.schemes[bill.person.insurance_type]
    kind, variants = scheme.variants_for(bill.visit.kind)
    i, variant = next((i, v) for i, v in enumerate(variants) if v.when.matches(bill.person.tier, bill.person.retired, bill.person.age))
    schedule = variant.schedule_for(bill.visit.institution_level, bill.person.age)
    assume(schedule is not None and schedule.is_flat)
    r = schedule.bands[0].ratio

    def with_rules(rules):
        v = dataclasses.replace(variant, item_ratios=rules)
        benefits = {**scheme.benefits, kind: variants[:i] + (v,) + variants[i + 1:]}
        return dataclasses.replace(policy, schemes={**policy.schemes, bill.person.insurance_type: dataclasses.replace(scheme, benefits=benefits)})

    rules = tuple(ItemRatio("p", None, c, r, "项目", "item") for c in ITEM_CATEGORIES) + tuple(ItemRatio("p", c, None, r, "项目", "item") for c in CODES)
    plain, items = settle(bill, with_rules(()), catalogue), settle(bill, with_rules(rules), catalogue)
    for name in AMOUNT_FIELDS:
        assert getattr(plain, name) == getattr(items, name), name
    assert plain.accumulator_delta == items.accumulator_delta
