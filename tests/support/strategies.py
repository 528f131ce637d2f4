"""Hypothesis strategies: bills, people, accumulators and policies for the property tests."""

from __future__ import annotations

import dataclasses
from datetime import date

from hypothesis import strategies as st

from yibao.domain.bill import AccountChoice, Accumulators, Bill, FeeLine, Person, Visit
from yibao.domain.family import GuardianFacts
from yibao.domain.money import QTY_SCALE, RATIO_ONE, div_round_half_up
from yibao.domain.policy import (
    ELIGIBLE_ACCUMULATORS,
    ITEM_CATEGORIES,
    RULE_CAP_ACCUMULATORS,
    SCHEME_CAP_ACCUMULATORS,
    AgeRatio,
    Band,
    BeyondLargeAmount,
    ItemRatio,
    LargeAmount,
    Policy,
    RatioSchedule,
    SeriousIllness,
)
from yibao.policies.loader import builtin_policy

REGIONS = ("440300", "370200", "330200")
POLICIES = {r: builtin_policy(r, 2026) for r in REGIONS}

fen = st.integers(min_value=0, max_value=5_000_000)  # up to 50,000 yuan
ratios = st.integers(min_value=0, max_value=RATIO_ONE)
CODES = tuple(f"L{i}" for i in range(6))  # the national codes lines draw from, so item_ratios by code match some
categories = st.lists(st.sampled_from(tuple(ITEM_CATEGORIES)), max_size=2, unique=True).map(tuple)


@st.composite
def fee_lines(draw) -> FeeLine:
    cls = draw(st.sampled_from(("A", "B", "C", "unlisted")))
    price = draw(st.one_of(st.integers(0, 2_000), st.integers(0, 3_000_000)))
    cap = draw(st.one_of(st.none(), st.integers(0, max(price * 2, 1))))
    own_code = draw(st.booleans())  # the institution's own code, the national one beside it (as the platform stores lines)
    national = draw(st.sampled_from(CODES))
    return FeeLine(
        code=f"H{draw(st.integers(0, 999))}" if own_code else national, name="item", line_class=cls,
        unit_price=price,
        quantity=draw(st.integers(1, 40 * QTY_SCALE)),
        price_cap=cap,
        self_pay_ratio=draw(st.one_of(st.none(), ratios)) if cls == "B" else None,
        categories=draw(categories),
        hilist_code=national if own_code else None,
    )


@st.composite
def band_ratio(draw, upto: int | None) -> Band:
    """A band at a ratio, or at a ratio by age (base + step × max(0, age − from_age) within [lo, hi])."""
    if draw(st.integers(0, 3)):
        return Band(upto, draw(ratios))
    lo, hi = sorted((draw(ratios), draw(ratios)))
    age = AgeRatio(base=draw(ratios), step=draw(st.integers(-30_000, 30_000)), from_age=draw(st.integers(0, 80)), lo=lo, hi=hi)
    return Band(upto, age.at(0), age)


@st.composite
def schedules(draw) -> RatioSchedule:
    if draw(st.booleans()):
        return RatioSchedule((draw(band_ratio(None)),))
    limits = sorted(set(draw(st.lists(st.integers(1, 20_000_000), min_size=1, max_size=3))))
    bands = tuple(draw(band_ratio(u)) for u in limits) + (draw(band_ratio(None)),)
    return RatioSchedule(bands)


@st.composite
def item_ratios(draw, path: str) -> tuple[ItemRatio, ...]:
    """Rules by category or by code, in a drawn order (the first that matches a line pays it)."""
    keys = draw(st.lists(st.one_of(st.sampled_from(tuple(ITEM_CATEGORIES)).map(lambda c: ("category", c)),
                                   st.sampled_from(CODES).map(lambda c: ("code", c))), max_size=4, unique=True))
    return tuple(ItemRatio(f"{path}.item_ratios[{i}]", value if kind == "code" else None, value if kind == "category" else None,
                           draw(st.one_of(ratios, st.just(RATIO_ONE))), "项目", "item") for i, (kind, value) in enumerate(keys))


@st.composite
def policies(draw, base: Policy | None = None, used: tuple[str, str] | None = None) -> Policy:
    """A built-in policy with its money knobs redrawn: caps, ratios, bands, thresholds, ceilings.

    With ``used`` (an insurance type and a visit kind: a bill's), only that scheme and that kind's benefits are redrawn,
    the others kept as built in: a settlement reads no other (``settle`` reads ``policy.schemes[insurance_type]`` and
    its ``variants_for(kind)``), so the knobs a bill meets are drawn as before, with a fifth of the draws."""
    base = base if base is not None else POLICIES[draw(st.sampled_from(REGIONS))]
    schemes = {}
    for name, scheme in base.schemes.items():
        if used is not None and name != used[0]:
            schemes[name] = scheme
            continue
        benefits = {}
        read = scheme.variants_for(used[1])[0] if used is not None else None
        for kind, variants in scheme.benefits.items():
            if read is not None and kind != read:
                benefits[kind] = variants
                continue
            new = []
            for v in variants:
                ratio = {lvl: draw(schedules()) for lvl in v.ratio}
                deductible = {lvl: draw(st.integers(0, 200_000)) for lvl in v.deductible}
                shares = {lvl: draw(st.integers(0, 20_000)) for lvl in v.deductible if draw(st.booleans())}
                deductible.update({lvl: div_round_half_up(base.avg_onpost_wage * share, RATIO_ONE) for lvl, share in shares.items()})
                new.append(dataclasses.replace(
                    v, ratio=ratio,
                    deductible=deductible, deductible_shares=shares, item_ratios=draw(item_ratios(v.path)),
                    bands_basis=draw(st.sampled_from(("excess", "cumulative", "yearly"))),
                    annual_cap=None if kind == "inpatient" else draw(st.one_of(st.none(), st.integers(0, 2_000_000))),
                    eligible_ceiling=draw(st.one_of(st.none(), st.integers(0, 50_000_000))),
                    eligible_ceiling_basis=draw(st.sampled_from(("excess", "cumulative"))),
                    eligible_counts_against=draw(st.sampled_from(ELIGIBLE_ACCUMULATORS)),
                    pool_counts_against=draw(st.sampled_from(RULE_CAP_ACCUMULATORS)),
                ))
            benefits[kind] = tuple(new)
        second = draw(st.sampled_from((scheme.second_layer, None)))  # None: a scheme with no layer above the basic fund
        schemes[name] = dataclasses.replace(scheme, benefits=benefits, annual_cap=draw(st.one_of(st.none(), st.integers(0, 60_000_000))),
                                            annual_cap_counts_against=draw(st.sampled_from(SCHEME_CAP_ACCUMULATORS)),
                                            second_layer=second, layers=scheme.layers if second else ())
    si = base.serious_illness
    if si is not None:
        si = dataclasses.replace(si, threshold=draw(st.integers(0, 5_000_000)), bands=draw(schedules()),
                                 basis=draw(st.sampled_from(("excess", "cumulative"))),
                                 annual_cap=draw(st.one_of(st.none(), st.integers(0, 40_000_000))),
                                 hardship_ratio_bonus=draw(st.integers(0, 200_000)))
    la = base.large_amount
    if la is not None:
        la = dataclasses.replace(la, bands=draw(st.one_of(st.builds(RatioSchedule.flat, ratios), schedules())),
                                 annual_cap=draw(st.one_of(st.none(), st.integers(0, 100_000_000))),
                                 threshold=draw(st.one_of(st.just(0), st.integers(0, 5_000_000))),
                                 basis=draw(st.sampled_from(("excess", "cumulative"))))
    # A scheme's own second-layer section (issue 16 item 5), drawn beside the file's: the scheme's wins.
    for name, scheme in schemes.items():
        if scheme is base.schemes[name] or not draw(st.booleans()):
            continue
        if scheme.second_layer == "large_amount":
            own_la = LargeAmount(bands=draw(schedules()), annual_cap=draw(st.one_of(st.none(), st.integers(0, 100_000_000))),
                                 threshold=draw(st.integers(0, 2_000_000)))
            # Stacked layers (issue 16 item 4): above the large-amount cap (oth_pay or hifmi_pay), then a subsidy on the
            # year's personal share (the serious-illness machinery, hifmi_pay) unless the layer above the cap reports there.
            beyond = BeyondLargeAmount(bands=draw(schedules()), annual_cap=draw(st.one_of(st.none(), st.integers(0, 50_000_000))),
                                       reported_as=draw(st.sampled_from(("oth_pay", "hifmi_pay"))),
                                       threshold=draw(st.integers(0, 1_000_000)))
            layers = ["large_amount"] + (["beyond_large_amount"] if draw(st.booleans()) else [])
            if beyond.reported_as == "oth_pay" and draw(st.booleans()):
                layers.insert(draw(st.integers(1, len(layers))), "serious_illness")
            subsidy = SeriousIllness(threshold=draw(st.integers(0, 5_000_000)), bands=draw(schedules()), basis="excess",
                                     annual_cap=draw(st.one_of(st.none(), st.integers(0, 40_000_000))),
                                     base_includes=frozenset({"in_scope_self_pay"}), hardship_statuses=frozenset(),
                                     hardship_threshold_factor=RATIO_ONE, hardship_ratio_bonus=0, hardship_no_cap=False)
            schemes[name] = dataclasses.replace(scheme, large_amount=own_la, beyond_large_amount=beyond, serious_illness=subsidy,
                                                layers=tuple(layers))
        elif scheme.second_layer == "serious_illness" and si is not None:
            own_si: SeriousIllness = dataclasses.replace(si, threshold=draw(st.integers(0, 5_000_000)), bands=draw(schedules()),
                                                         annual_cap=draw(st.one_of(st.none(), st.integers(0, 40_000_000))))
            schemes[name] = dataclasses.replace(scheme, serious_illness=own_si)
    cross = dataclasses.replace(base.cross_region, rules={
        k: dataclasses.replace(r, extra_self_pay=draw(st.integers(0, 300_000)), ratio_cut=draw(st.integers(0, 300_000)))
        for k, r in base.cross_region.rules.items()})
    parts = st.frozensets(st.sampled_from(("in_scope_self_pay", "pre_self_pay", "over_limit", "own_expense")), min_size=1)
    if si is not None:
        si = dataclasses.replace(si, base_includes=draw(parts))
    assistance = base.assistance
    if assistance is not None:
        assistance = dataclasses.replace(assistance, base_includes=draw(parts))
    account = dataclasses.replace(base.account, excludes=draw(st.frozensets(st.sampled_from(("own_expense", "over_limit")))))
    for name, scheme in schemes.items():
        if scheme is base.schemes[name]:  # not redrawn (``used``)
            continue
        inpatient = tuple(dataclasses.replace(v, repeat_admission_factors=tuple(draw(st.lists(ratios, min_size=1, max_size=3))))
                          for v in scheme.benefits["inpatient"])
        schemes[name] = dataclasses.replace(scheme, benefits={**scheme.benefits, "inpatient": inpatient})
    return dataclasses.replace(base, schemes=schemes, serious_illness=si, large_amount=la, cross_region=cross,
                               b_self_pay_ratio=draw(ratios), assistance=assistance, account=account)


@st.composite
def accumulators(draw) -> Accumulators:
    # Often near typical caps, so caps bind in the middle of bills.
    amount = st.one_of(st.just(0), st.integers(0, 60_000_000), st.integers(0, 400_000))
    return Accumulators(**{f.name: draw(amount) for f in dataclasses.fields(Accumulators)})


@st.composite
def bills_for(draw, policy: Policy) -> Bill:
    insurance_type = draw(st.sampled_from(sorted(policy.schemes)))
    scheme = policy.schemes[insurance_type]
    kind = draw(st.sampled_from(("outpatient", "emergency", "inpatient", "pharmacy")))
    if kind == "pharmacy":
        level = "pharmacy"
    elif kind == "inpatient":
        level = draw(st.sampled_from(("community", "level1", "level2", "level3")))
    else:
        level = draw(st.sampled_from(("community", "level1", "level2", "level3", "pharmacy")))
    statuses = set(policy.assistance.statuses) if policy.assistance else set()
    if (si := policy.serious_illness_for(insurance_type)) is not None:
        statuses |= si.hardship_statuses
    cross = draw(st.booleans())
    treatment = draw(st.sampled_from([r for r in REGIONS if r != policy.region])) if cross else policy.region
    person = Person(
        insurance_type=insurance_type,
        tier=draw(st.sampled_from(scheme.tiers)) if scheme.tiers else None,
        retired=draw(st.booleans()),
        age=draw(st.integers(0, 110)),
        hardship=draw(st.one_of(st.none(), st.sampled_from(sorted(statuses)))) if statuses else None,
        filing=draw(st.sampled_from(("long_term", "temporary", "unfiled"))) if cross else None,
    )
    payer = draw(st.sampled_from(("self", "guardian", "family"))) if insurance_type == "child" else draw(st.sampled_from(("self", "family")))
    balance = draw(st.one_of(fen, st.integers(500_000, 501_000)))
    guardian = None
    if payer == "guardian":
        flags = draw(st.lists(st.booleans(), min_size=6, max_size=6))
        guardian = GuardianFacts(*flags, guardian_balance=balance)
    account = AccountChoice(
        use=draw(st.booleans()), balance=balance, payer=payer,
        relation=draw(st.sampled_from(("spouse", "parent", "child"))) if payer == "family" else None,
        guardian=guardian,
    )
    return Bill(
        insured_region=policy.region, treatment_region=treatment, date=date(policy.year, 11, 22),
        person=person,
        visit=Visit(kind=kind, institution_level=level, admission_number=draw(st.integers(1, 5))),
        lines=tuple(draw(st.lists(fee_lines(), min_size=1, max_size=25))),
        accumulators=draw(accumulators()),
        account=account,
    )


@st.composite
def priced(draw):
    """(bill, insured policy, catalogue policy) — built-in or perturbed policies. The bill is drawn against the built-in
    policy (perturbing changes money knobs, never the schemes, tiers, levels or statuses a bill picks from), then the
    policy perturbed where that bill reads it."""
    policy = draw(st.sampled_from(list(POLICIES.values())))
    bill = draw(bills_for(policy))
    if draw(st.booleans()):
        policy = draw(policies(policy, used=(bill.person.insurance_type, bill.visit.kind)))
    catalogue = POLICIES[bill.treatment_region] if bill.cross_region else policy
    return bill, policy, catalogue
