"""The settlement engine: of this bill, what does each fund pay, what the account, what cash.

Pure: a Bill and the Policy in, a Settlement out. The eight steps of docs/engine.md run in
order, each driven by the policy file and each explained to the patient. Every derived
amount is rounded ROUND_HALF_UP once; the cash share takes the residue, so the parts add
up exactly (the identities are asserted by the property tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from yibao.domain.bill import Accumulators, Bill
from yibao.domain.catalogue import split_line
from yibao.domain.errors import InputError
from yibao.domain.explain import Explanation
from yibao.domain.family import check_guardian_account
from yibao.domain.money import RATIO_ONE, apply_ratio, div_round_half_up
from yibao.domain.policy import (
    INSURANCE_TYPES,
    ITEM_CATEGORIES,
    LEVEL_EN,
    LEVEL_ZH,
    LEVELS,
    LINE_CLASSES,
    VISIT_KINDS,
    Band,
    BenefitVariant,
    Policy,
    RatioSchedule,
)

KIND_ZH = {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院", "pharmacy": "药店购药"}
FILING_ZH = {"long_term": "长期异地备案", "temporary": "临时外出备案", "unfiled": "未备案"}
FILING_EN = {"long_term": "long-term filing", "temporary": "temporary filing", "unfiled": "no filing"}
PAYER_ZH = {"self": "本人", "guardian": "监护人", "family": "家庭共济"}
PAYER_EN = {"self": "own", "guardian": "guardian's", "family": "family mutual-aid"}


class LineResult(NamedTuple):
    """One fee line adjudicated: total = own_expense + over_limit + pre_self_pay + in_scope."""

    code: str
    name: str
    line_class: str
    total: int
    own_expense: int
    over_limit: int
    pre_self_pay: int
    in_scope: int
    cross_region_extra: int  # the part of pre_self_pay due to cross-region treatment


@dataclass(frozen=True, slots=True)
class AccountRefusal:
    code: str
    zh: str
    en: str
    failed_conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settlement:
    policy_version: str
    policy_digest: str
    catalogue_version: str  # whose catalogue priced the lines (the treatment region's, across regions)
    catalogue_digest: str
    insured_region: str
    treatment_region: str
    total: int
    own_expense: int
    over_limit: int
    pre_self_pay: int
    in_scope: int
    deductible: int
    pool_fund: int
    pool_ratio: int  # the basic ratio applied (first band), ppm
    serious_illness: int
    large_amount: int
    other: int  # oth_pay: a layer the policy reports as other funds (beyond_large_amount)
    assistance: int
    fund_total: int
    person_total: int
    account_pay: int
    mutual_aid_pay: int  # the part of account_pay from a guardian's or relative's account
    cash_pay: int
    balance_before: int
    balance_after: int
    lines: tuple[LineResult, ...]
    accumulator_delta: Accumulators
    explanation: tuple[Explanation, ...]
    account_refusal: AccountRefusal | None
    account_payer: str | None = None  # whose account paid (self | guardian | family), None when no account paid


def _check_values(bill: Bill) -> None:
    """The domain does not trust its callers: amounts, counts and choices are checked here too."""
    person, visit, account = bill.person, bill.visit, bill.account
    if person.insurance_type not in INSURANCE_TYPES:
        raise InputError("person.insurance_type", "invalid_choice", "险种无效", f"unknown insurance type {person.insurance_type!r}")
    if visit.kind not in VISIT_KINDS or visit.institution_level not in LEVELS:
        raise InputError("visit.kind", "invalid_choice", "就诊类型或机构级别无效", "unknown visit kind or institution level")
    if visit.admission_number < 1:
        raise InputError("visit.admission_number", "out_of_range", "住院次数从1开始", "admission numbers start at 1")
    if not 0 <= person.age <= 150:
        raise InputError("person.age", "out_of_range", "年龄应在0–150之间", "age must be between 0 and 150")
    if not bill.lines:
        raise InputError("lines", "no_lines", "费用明细不能为空", "must be a non-empty list of fee lines")
    for i, line in enumerate(bill.lines):
        if line.line_class not in LINE_CLASSES:
            raise InputError(f"lines[{i}].class", "invalid_choice", "项目类别无效", f"unknown class {line.line_class!r}")
        if line.quantity <= 0 or line.unit_price < 0 or (line.price_cap is not None and line.price_cap < 0):
            raise InputError(f"lines[{i}]", "out_of_range", "数量须大于0，价格不能为负", "quantity must be positive and prices not negative")
        if line.self_pay_ratio is not None and not 0 <= line.self_pay_ratio <= RATIO_ONE:
            raise InputError(f"lines[{i}].self_pay_ratio", "out_of_range", "比例应在0–1之间", "the ratio must be between 0 and 1")
        for category in line.categories:
            if category not in ITEM_CATEGORIES:
                raise InputError(f"lines[{i}].categories", "invalid_choice", f"项目类别应为 {' | '.join(ITEM_CATEGORIES)}",
                                 f"unknown item category {category!r}; known: {', '.join(ITEM_CATEGORIES)}")
    if min(bill.accumulators.as_dict().values()) < 0 or account.balance < 0:
        raise InputError("accumulators", "negative", "累计值和余额不能为负", "accumulators and balances must not be negative")


def validate_bill(bill: Bill, policy: Policy) -> None:
    """Checks that need the policy; field names follow the bill JSON format (docs/quote.md)."""
    _check_values(bill)
    person, visit = bill.person, bill.visit
    if bill.insured_region != policy.region:
        raise InputError("insured_region", "policy_region_mismatch",
                         f"策略文件属于统筹区 {policy.region}，与参保地 {bill.insured_region} 不符",
                         f"the policy is for region {policy.region}, not the insured region {bill.insured_region}")
    if bill.date.year != policy.year:
        raise InputError("date", "policy_year_mismatch", f"就诊日期 {bill.date} 不在策略年度 {policy.year} 内",
                         f"date {bill.date} is outside policy year {policy.year} ({policy.version})")
    scheme = policy.schemes.get(person.insurance_type)
    if scheme is None:
        raise InputError("person.insurance_type", "scheme_not_in_policy",
                         f"{policy.version} 未定义险种 {person.insurance_type}",
                         f"policy {policy.version} has no scheme {person.insurance_type!r}; it has {', '.join(policy.schemes)}")
    if scheme.tiers is not None and person.tier not in scheme.tiers:
        choices = " 或 ".join(map(str, scheme.tiers))
        what_zh, what_en = ("为必填项，" if person.tier is None else ""), ("is required; " if person.tier is None else "")
        raise InputError("person.tier", "unknown_tier", f"档次{what_zh}应为 {choices}",
                         f"tier {what_en}must be {' or '.join(map(str, scheme.tiers))} for {person.insurance_type} in {policy.region}")
    if person.hardship is not None:
        known = set(policy.assistance.statuses) if policy.assistance else set()
        if (si := policy.serious_illness_for(person.insurance_type)) is not None:
            known |= si.hardship_statuses
        if person.hardship not in known:
            raise InputError("person.hardship", "unknown_hardship", f"困难身份 {person.hardship!r} 未在策略中定义，可选：{', '.join(sorted(known)) or '无'}",
                             f"hardship status {person.hardship!r} is not in the policy; known: {', '.join(sorted(known)) or 'none'}")
    if bill.cross_region and person.filing is None:
        raise InputError("person.filing", "filing_required", "异地就医须填写备案类型：long_term | temporary | unfiled",
                         "treatment outside the insured region needs a filing: long_term | temporary | unfiled")
    if visit.kind == "inpatient" and visit.institution_level == "pharmacy":
        raise InputError("visit.institution_level", "inpatient_at_pharmacy", "住院不能发生在药店", "an inpatient visit cannot be at a pharmacy")
    if visit.kind == "pharmacy" and visit.institution_level != "pharmacy":
        raise InputError("visit.institution_level", "pharmacy_level", "药店购药的机构级别应为 pharmacy", "a pharmacy visit must be at institution_level pharmacy")
    account = bill.account
    if account.use and account.payer == "guardian":
        if person.insurance_type != "child":
            raise InputError("account.payer", "guardian_for_child_only", "仅少儿医保参保人可使用监护人账户",
                             "only a child's bill may be paid from a guardian's account")
        if account.guardian is None:
            raise InputError("account.guardian", "guardian_facts_required", "使用监护人账户时须提供监护关系信息",
                             "account.guardian is required when account.payer is guardian")
    if account.use and account.payer == "family" and account.relation is None:
        raise InputError("account.relation", "relation_required", "家庭共济须填写关系：spouse | parent | child",
                         "family mutual aid needs a relation: spouse | parent | child")


# The order in which a layer's payment relieves the parts of its base: first what the personal
# account may not pay, so the account stays usable for the policy-scope co-pay.
_ALLOCATION_ORDER = ("own_expense", "over_limit", "pre_self_pay", "in_scope_self_pay")


def _allocate(parts: dict[str, int], paid: int, includes: frozenset[str] | tuple[str, ...]) -> None:
    """Take ``paid`` off the parts it was computed on, in _ALLOCATION_ORDER."""
    for part in _ALLOCATION_ORDER:
        if paid <= 0:
            break
        if part in includes and parts[part]:
            used = min(paid, parts[part])
            parts[part] -= used
            paid -= used


class _Items(NamedTuple):
    """The items of a visit paid at their own fund ratios (``_with_items``)."""

    schedule: RatioSchedule  # the visit's schedule up to the ordinary cost, then one band per item rule
    cost: int  # the items' cost within the basic layer (after the deductible and the eligible-cost ceiling)
    pay: int  # the sum of the items' own explanation lines, each rounded once (hifp_pay is rounded once on its own)
    explanation: tuple[Explanation, ...]


def _with_items(bill: Bill, lines: list[LineResult], variant: BenefitVariant, sched: RatioSchedule, start: int, t_in: int,
                dedc: int, within: int, cut: int, ver: str) -> _Items:
    """Step 4's items paid at their own ratio (`item_ratios`, the first rule that matches a line).

    Their in-scope cost is not measured in the visit's bands: the schedule the fund pays by becomes the visit's, cut at
    the ordinary cost it pays on, followed by one band per item rule at that rule's ratio (less any cross-region cut).
    So the deductible is met from the ordinary cost first, and a yearly cap or eligible-cost ceiling reaches the items
    last; the total is still rounded once. [G] for each of these orders: docs/engine.md."""
    rules = variant.item_ratios
    if not rules:
        return _Items(sched, 0, 0, ())
    cost = [0] * len(rules)
    for fee, line in zip(bill.lines, lines):
        if line.in_scope:
            code = fee.hilist_code or fee.code
            k = next((k for k, rule in enumerate(rules) if rule.matches(code, fee.categories)), None)
            if k is not None:
                cost[k] += line.in_scope
    if not any(cost):
        return _Items(sched, 0, 0, ())
    ordinary = t_in - sum(cost)
    left = max(0, dedc - ordinary)  # the deductible the ordinary cost did not meet
    room = max(0, within - max(0, ordinary - dedc))  # what the ceiling leaves the items
    for k in range(len(rules)):
        used = min(left, cost[k])
        left -= used
        cost[k] = min(cost[k] - used, room)
        room -= cost[k]
    end = start + within - sum(cost)  # where the ordinary cost stops
    bands = []
    for band in sched.bands:
        if band.upto is not None and band.upto < end:
            bands.append(band)
            continue
        bands.append(Band(end, band.ratio))
        break
    ex, pay = [], 0
    for rule, amount in zip(rules, cost):
        if amount:
            ratio = max(0, rule.ratio - cut)
            end += amount
            bands.append(Band(end, ratio))
            paid = apply_ratio(amount, ratio)
            pay += paid
            ex.append(Explanation(4, "item_ratio", paid, f"{ver} {rule.path}", "按项目比例支付（{label_zh}）：{cost:y} × {r:p} = {a:y}",
                                  "Paid at the item's own ratio ({label_en}): {cost:y} × {r:p} = {a:y}",
                                  {"label_zh": rule.label_zh, "label_en": rule.label_en, "cost": amount, "r": ratio, "a": paid}))
    bands.append(Band(None, 0))
    return _Items(RatioSchedule(tuple(bands)), sum(cost), pay, tuple(ex))


def _yearly_layer(bands: RatioSchedule, threshold: int, basis: str, b0: int, base: int, left: int | None) -> tuple[int, int, int]:
    """A layer measured on a yearly base: it pays ``bands`` on the part of [b0, b0 + base) above ``threshold`` (measured
    from the threshold, "excess", or from 0, "cumulative"), at most ``left``. Returns (paid, raw, cost above the cap):
    the last is the paying cost it could not pay on because the cap ran out (rounded once, as the basic layer's)."""
    b1, lo = b0 + base, max(b0, threshold)
    if b1 <= lo:
        return 0, 0, 0
    offset = threshold if basis == "excess" else 0
    raw = div_round_half_up(bands.pay_exact(lo - offset, b1 - lo), RATIO_ONE)
    if left is None or raw <= left:
        return raw, raw, 0
    num, den = bands.cost_to_pay(lo - offset, left)
    covered = min(b1 - lo, div_round_half_up(num, den))
    return left, raw, bands.paying_width(lo - offset + covered, b1 - offset)


def settle(bill: Bill, policy: Policy, catalogue: Policy | None = None) -> Settlement:
    """Price ``bill`` under the insured region's ``policy``.

    ``catalogue`` is the treatment region's policy, whose catalogue (the default 乙 self-pay
    ratio) applies across regions: 就医地目录、参保地政策. None means the insured region's.
    """
    validate_bill(bill, policy)
    person, visit, acc = bill.person, bill.visit, bill.accumulators
    scheme = policy.schemes[person.insurance_type]
    ver = policy.version
    ex: list[Explanation] = []

    # Step 2 (set up first, applied per line): cross-region rule of the insured region.
    xr = None
    filing = None
    emergency_deemed = False
    if bill.cross_region:
        filing = person.filing
        if filing == "unfiled" and visit.kind == "emergency" and policy.cross_region.emergency_counts_as_filed:
            filing, emergency_deemed = "temporary", True
        xr = policy.cross_region.rules[filing]
    extra = xr.extra_self_pay if xr else 0
    cat = catalogue if catalogue is not None else policy
    b_default = cat.b_self_pay_ratio

    # Step 1: split each line.
    lines = []
    t_total = t_own = t_over = t_pre = t_in = t_extra = t_pre_b = 0
    b_ratios: set[int] = set()
    for line in bill.lines:
        # The catalogue's per-line split (the one the fee-line upload answers with), then the cross-region extra.
        sp = split_line(line.line_class, line.unit_price, line.quantity, line.price_cap, line.self_pay_ratio, b_default)
        total, own, over, pre = sp.total, sp.own_expense, sp.over_limit, sp.pre_self_pay
        extra_fen = 0
        if line.line_class not in ("C", "unlisted"):
            if line.line_class == "B":
                b_ratios.add(b_default if line.self_pay_ratio is None else line.self_pay_ratio)
                t_pre_b += pre
            if extra:
                extra_fen = apply_ratio(total - over - pre, extra)
                pre += extra_fen
        in_scope = total - own - over - pre
        lines.append(LineResult(line.code, line.name, line.line_class, total, own, over, pre, in_scope, extra_fen))
        t_total += total
        t_own += own
        t_over += over
        t_pre += pre
        t_in += in_scope
        t_extra += extra_fen

    clause = f"{cat.version} catalogue"
    ex.append(Explanation(1, "total", t_total, clause, "医疗费用总额：{a:y}（{n}项）", "Total medical fees: {a:y} (fee lines: {n})", {"a": t_total, "n": len(lines)}))
    if t_own:
        ex.append(Explanation(1, "own_expense", t_own, clause, "丙类及目录外项目全自费：{a:y}",
                              "Class C and unlisted items, paid in full by the patient: {a:y}", {"a": t_own}))
    if t_over:
        ex.append(Explanation(1, "over_limit", t_over, clause, "超出限价部分个人自付：{a:y}", "Above the price cap, paid by the patient: {a:y}", {"a": t_over}))
    if t_pre_b:
        if len(b_ratios) == 1:
            ex.append(Explanation(1, "pre_self_pay", t_pre_b, f"{cat.version} catalogue.b_self_pay_ratio", "乙类项目先行自付{r:p}：{a:y}",
                                  "Class B items, {r:p} paid first by the patient: {a:y}", {"a": t_pre_b, "r": next(iter(b_ratios))}))
        else:
            ex.append(Explanation(1, "pre_self_pay", t_pre_b, f"{cat.version} catalogue.b_self_pay_ratio", "乙类项目按各自比例先行自付：{a:y}",
                                  "Class B items, each at its own self-pay ratio: {a:y}", {"a": t_pre_b}))
    ex.append(Explanation(1, "in_scope", t_in, clause, "符合政策范围金额：{a:y}", "Within the policy scope: {a:y}", {"a": t_in}))

    if xr is not None:
        zh = "异地就医（{filing_zh}）：按参保地{insured:rzh}政策、就医地{treatment:rzh}目录"
        en = "Treated outside the insured region ({filing_en}): policy of {insured:ren}, catalogue of {treatment:ren}"
        if emergency_deemed:
            zh = "异地就医（未备案急诊，视同临时外出备案）：按参保地{insured:rzh}政策、就医地{treatment:rzh}目录"
            en = "Treated outside the insured region (unfiled emergency, counted as a temporary filing): policy of {insured:ren}, catalogue of {treatment:ren}"
        if catalogue is None:
            zh += "（就医地目录未配置，乙类默认比例按参保地）"
            en += " (no catalogue on file for the treatment region; the insured region's default class-B ratio applies)"
        if t_extra:
            zh += "；异地先行自付{extra:p}：{a:y}"
            en += "; cross-region extra self-pay {extra:p}: {a:y}"
        if xr.ratio_cut:
            zh += "；统筹支付比例降低{cut:pt}个百分点"
            en += "; pooled-fund ratio cut by {cut:pt} points"
        ex.append(Explanation(2, "cross_region", t_extra, f"{ver} cross_region.{filing}", zh, en, {
            "filing_zh": FILING_ZH[filing], "filing_en": FILING_EN[filing], "insured": bill.insured_region,
            "treatment": bill.treatment_region, "extra": xr.extra_self_pay, "a": t_extra, "cut": xr.ratio_cut}))

    # Steps 3–4: deductible and pooled fund, by the first matching benefit variant.
    benefit_kind, variants = scheme.variants_for(visit.kind)
    variant = next(v for v in variants if v.when.matches(person.tier, person.retired, person.age))
    per_year = benefit_kind != "inpatient"
    schedule = variant.schedule_for(visit.institution_level, person.age)
    level = visit.institution_level
    dedc = covered = hifp = overflow = pool_ratio = 0
    if schedule is None:
        ex.append(Explanation(4, "not_covered", 0, f"{ver} {variant.path}.ratio",
                              "{label_zh}：{level_zh}机构不在统筹支付范围，统筹基金支付¥0.00",
                              "Not covered ({label_en}): {level_en} institutions are outside pooled-fund cover; fund pays ¥0.00",
                              {"label_zh": variant.label_zh, "label_en": variant.label_en, "level_zh": LEVEL_ZH[level], "level": level, "level_en": LEVEL_EN[level]}))
    else:
        if per_year:
            annual = variant.deductible.get(level, 0)
            dedc = min(max(0, annual - acc.outpatient_deductible_used), t_in)
            ex.append(Explanation(3, "deductible", dedc, f"{ver} {variant.path}.deductible",
                                  "{kind_zh}年度起付线{annual:y}，本年已用{used:y}，本次计入起付线：{a:y}",
                                  "Yearly deductible {annual:y}, {used:y} used before; this bill: {a:y}",
                                  {"kind_zh": KIND_ZH[visit.kind], "annual": annual, "used": acc.outpatient_deductible_used, "a": dedc}))
        else:
            full = variant.deductible_for(level, visit.admission_number)
            dedc = min(full, t_in)
            ex.append(Explanation(3, "deductible", dedc, f"{ver} {variant.path}.deductible",
                                  "住院起付线（{level_zh}医院{base:y}，本年第{n}次住院应付{full:y}）：{a:y}",
                                  "Inpatient deductible ({level_en} {base:y}, admission {n} this year: {full:y}): {a:y}",
                                  {"level_zh": LEVEL_ZH[level], "level": level, "level_en": LEVEL_EN[level], "base": variant.deductible.get(level, 0),
                                   "n": visit.admission_number, "full": full, "a": dedc}))
        if level in variant.deductible_shares:  # the file set it as a share of the previous year's average wage
            ex[-1] = ex[-1]._replace(zh_template=ex[-1].zh_template + "（起付线为上年度在岗职工平均工资{wage:y}的{share:p}）",
                                     en_template=ex[-1].en_template + " (the deductible is {share:p} of the previous year's average wage {wage:y})",
                                     params={**ex[-1].params, "wage": policy.avg_onpost_wage, "share": variant.deductible_shares[level]})

        eligible = t_in - dedc
        within = eligible
        if variant.eligible_ceiling is not None:
            # The ceiling counts against the accumulator the rule names (by default its visit class's), never one
            # shared by every visit: a stay must not use up an outpatient ceiling nor outpatient visits an inpatient one.
            room = max(0, variant.eligible_ceiling - getattr(acc, variant.eligible_counts_against))
            if variant.eligible_ceiling_basis == "cumulative":
                room = max(0, room - dedc)  # the deductible is measured too, and comes first
            within = min(eligible, room)
        spill = eligible - within
        sched = schedule.cut(xr.ratio_cut) if xr else schedule
        pool_ratio = sched.bands[0].ratio
        # Bands measured per visit from the deductible (excess) or from 0 (cumulative), or on the year's in-scope cost
        # of the rule's class so far (yearly: across admissions).
        start = {"cumulative": dedc, "yearly": getattr(acc, variant.in_scope_accumulator) + dedc}.get(variant.bands_basis, 0)
        items = _with_items(bill, lines, variant, sched, start, t_in, dedc, within, xr.ratio_cut if xr else 0, ver)
        raw = div_round_half_up(items.schedule.pay_exact(start, within), RATIO_ONE)
        # The scheme cap caps every visit when it counts pool_fund_paid, else only visits whose rule counts where it does;
        # a scheme with no cap (annual_cap: none) never binds.
        scheme_acc = scheme.annual_cap_counts_against
        scheme_left = (max(0, scheme.annual_cap - getattr(acc, scheme_acc))
                       if scheme.annual_cap is not None and scheme_acc in ("pool_fund_paid", variant.pool_counts_against) else None)
        cap_left = scheme_left
        if per_year and variant.annual_cap is not None:
            rule_left = max(0, variant.annual_cap - getattr(acc, variant.pool_counts_against))
            cap_left = rule_left if cap_left is None else min(cap_left, rule_left)
        binds = cap_left is not None and raw > cap_left
        scheme_binds = binds and cap_left == scheme_left
        covered = within
        hifp = raw
        if binds:
            assert cap_left is not None
            # The cap binds inside this bill: the fund stops at the cost where it reached the cap.
            hifp = cap_left
            num, den = items.schedule.cost_to_pay(start, cap_left)
            covered = min(within, div_round_half_up(num, den))
        # Only cost the basic layer would have paid on, but could not because its yearly cap ran
        # out, moves to the second layer (with cost above the eligible ceiling). Cost in bands that
        # pay nothing never does, cap or no cap; cost beyond the outpatient-pooling cap stays co-pay.
        beyond = items.schedule.paying_width(start + covered, start + within) if scheme_binds else 0
        overflow = spill + beyond
        zh = "统筹基金支付（{label_zh}，{level_zh}，{s:zh}）：({inscope:y} − 起付线{dedc:y}"
        en = "Pooled fund ({label_en}, {level_en}, {s:en}): ({inscope:y} − deductible {dedc:y}"
        if spill:
            zh += " − 超过年度合规费用上限{spill:y}"
            en += " − {spill:y} above the yearly eligible-cost ceiling"
        if items.cost:
            zh += " − 按项目比例支付的费用{icost:y}) × 比例 + 按项目比例支付{ipay:y} = {raw:y}"
            en += " − {icost:y} paid at item ratios) × ratio + {ipay:y} at item ratios = {raw:y}"
        else:
            zh += ") × 比例 = {raw:y}"
            en += ") × ratio = {raw:y}"
        if scheme_binds and not scheme.layer_order:
            zh += "；已达年度最高支付限额，本次只支付剩余额度{a:y}，超出部分费用{beyond:y}由个人负担"
            en += "; the yearly cap is reached, so only the remaining {a:y} is paid and the patient pays the rest ({beyond:y} of cost)"
        elif scheme_binds:
            zh += "；已达年度最高支付限额，本次只支付剩余额度{a:y}，超出部分费用{beyond:y}转入下一层"
            en += "; the yearly cap is reached, so only the remaining {a:y} is paid and {beyond:y} of cost moves to the next layer"
        elif binds:
            zh += "；已达门诊统筹年度限额，本次只支付剩余额度{a:y}"
            en += "; the yearly outpatient-pooling cap is reached, so only the remaining {a:y} is paid"
        if variant.ratio[level].by_age:
            zh += "；比例按年龄{age}岁确定"
            en += "; the ratio is the one for age {age}"
        ex.extend(items.explanation)
        ex.append(Explanation(4, "pool_fund", hifp, f"{ver} {variant.path}.ratio; schemes.{person.insurance_type}.annual_cap", zh, en, {
            "label_zh": variant.label_zh, "label_en": variant.label_en, "level_zh": LEVEL_ZH[level], "level": level, "level_en": LEVEL_EN[level], "s": sched,
            "inscope": t_in, "dedc": dedc, "spill": spill, "raw": raw, "a": hifp, "beyond": within - covered, "age": person.age,
            "icost": items.cost, "ipay": items.pay}))

    # Step 5: the layers above the basic fund, in the scheme's order. `parts` is what the patient still bears of each
    # part; every later layer's payment is allocated to the parts it was computed on (see _allocate).
    hifmi = hifob = oth = si_base = si_paid = la_base = bl_base = bl_paid = 0
    parts = {"in_scope_self_pay": t_in - hifp, "pre_self_pay": t_pre, "over_limit": t_over, "own_expense": t_own}
    above_la_cap = 0  # cost the large-amount layer could not pay on because its yearly cap ran out
    for layer in scheme.layer_order:
        # The clause an explanation cites: the scheme's own section when it has one, else the file's.
        section = f"schemes.{person.insurance_type}.{layer}" if getattr(scheme, layer) is not None else layer
        la = policy.large_amount_for(person.insurance_type) if layer == "large_amount" else None
        si = policy.serious_illness_for(person.insurance_type) if layer == "serious_illness" else None
        bl = policy.beyond_large_amount_for(person.insurance_type) if layer == "beyond_large_amount" else None
        if la is not None and overflow:
            la_base = overflow
            left = None if la.annual_cap is None else max(0, la.annual_cap - acc.large_amount_paid)
            hifob, raw, above_la_cap = _yearly_layer(la.bands, la.threshold, la.basis, acc.large_amount_base, overflow, left)
            _allocate(parts, hifob, ("in_scope_self_pay",))
            if la.bands.is_flat and not la.threshold:
                ex.append(Explanation(5, "large_amount", hifob, f"{ver} {section}", "职工大额医疗费用补助：{base:y} × {r:p} = {raw:y}，支付{a:y}",
                                      "Employee large-amount subsidy: {base:y} × {r:p} = {raw:y}, paid {a:y}",
                                      {"base": overflow, "r": la.ratio, "raw": raw, "a": hifob}))
            else:
                ex.append(Explanation(5, "large_amount", hifob, f"{ver} {section}",
                                      "职工大额医疗费用补助：本年累计{b1:y}，起付线{thr:y}（{s:zh}）= {raw:y}，支付{a:y}",
                                      "Employee large-amount subsidy: yearly cost beyond the basic layer {b1:y}, threshold {thr:y} ({s:en}) = {raw:y}, paid {a:y}",
                                      {"b1": acc.large_amount_base + overflow, "thr": la.threshold, "s": la.bands, "raw": raw, "a": hifob}))
        elif bl is not None and above_la_cap:
            bl_base = above_la_cap
            left = None if bl.annual_cap is None else max(0, bl.annual_cap - acc.beyond_cap_paid)
            bl_paid, raw, _ = _yearly_layer(bl.bands, bl.threshold, bl.basis, acc.beyond_cap_base, above_la_cap, left)
            _allocate(parts, bl_paid, ("in_scope_self_pay",))
            if bl.reported_as == "oth_pay":
                oth += bl_paid
            else:
                hifmi += bl_paid
            ex.append(Explanation(5, "beyond_large_amount", bl_paid, f"{ver} {section}",
                                  "大额封顶线以上费用{base:y}（{s:zh}）= {raw:y}，支付{a:y}（{field}）",
                                  "Cost above the large-amount cap {base:y} ({s:en}) = {raw:y}, paid {a:y} ({field})",
                                  {"base": above_la_cap, "s": bl.bands, "raw": raw, "a": bl_paid, "field": bl.reported_as}))
        elif si is not None:
            si_base = sum(parts[p] for p in si.base_includes)
            hard = person.hardship in si.hardship_statuses
            thr = apply_ratio(si.threshold, si.hardship_threshold_factor) if hard else si.threshold
            b0 = acc.serious_illness_base
            b1 = b0 + si_base
            lo = max(b0, thr)
            if b1 > lo:
                bands = si.bands.bonus(si.hardship_ratio_bonus) if hard else si.bands
                offset = thr if si.basis == "excess" else 0
                raw = div_round_half_up(bands.pay_exact(lo - offset, b1 - lo), RATIO_ONE)
                left = None if (hard and si.hardship_no_cap) or si.annual_cap is None else max(0, si.annual_cap - acc.serious_illness_paid)
                si_paid = raw if left is None else min(raw, left)
                hifmi += si_paid
                _allocate(parts, si_paid, si.base_includes)
                ex.append(Explanation(5, "serious_illness", si_paid, f"{ver} {section}",
                                      "大病保险：本年累计{b1:y}，起付线{thr:y}，本次超过起付线{above:y}（{s:zh}）= {raw:y}，支付{a:y}",
                                      "Serious-illness insurance: yearly base {b1:y}, threshold {thr:y}, {above:y} above it this bill ({s:en}) = {raw:y}, paid {a:y}",
                                      {"b1": b1, "thr": thr, "above": b1 - lo, "s": bands, "raw": raw, "a": si_paid}))
            elif si_base:
                ex.append(Explanation(5, "serious_illness", 0, f"{ver} {section}.threshold", "大病保险：本年累计{b1:y}，未达起付线{thr:y}",
                                      "Serious-illness insurance: yearly base {b1:y} is below the threshold {thr:y}", {"b1": b1, "thr": thr}))

    # Step 6: medical assistance.
    maf = a_base = 0
    assistance = policy.assistance
    if person.hardship is not None and assistance is not None and person.hardship in assistance.statuses:
        st = assistance.statuses[person.hardship]
        a_base = sum(parts[p] for p in assistance.base_includes)
        a0 = acc.assistance_base
        a1 = a0 + a_base
        lo = max(a0, st.threshold)
        if a1 > lo:
            raw = apply_ratio(a1 - lo, st.ratio)
            left = None if st.annual_cap is None else max(0, st.annual_cap - acc.assistance_paid)
            maf = raw if left is None else min(raw, left)
            _allocate(parts, maf, assistance.base_includes)
        ex.append(Explanation(6, "assistance", maf, f"{ver} assistance.statuses.{person.hardship}",
                              "医疗救助（{label_zh}）：个人自付累计{a1:y}，起助线{thr:y}，超过部分{above:y} × {r:p}，支付{a:y}",
                              "Medical assistance ({label_en}): yearly self-pay {a1:y}, threshold {thr:y}, {above:y} above it × {r:p}, paid {a:y}",
                              {"label_zh": st.label_zh, "label_en": st.label_en, "a1": a1, "thr": st.threshold,
                               "above": max(0, a1 - lo), "r": st.ratio, "a": maf}))

    fund_total = hifp + hifmi + hifob + oth + maf
    person_total = t_total - fund_total

    # Step 7: personal account.
    account = bill.account
    rules = policy.account
    excluded = sum(parts[p] for p in rules.excludes)
    payable = max(0, person_total - excluded)
    acct = mulaid = 0
    refusal: AccountRefusal | None = None
    if account.use:
        if account.payer == "self":
            if scheme.account_for(person.tier):
                acct = min(payable, account.balance)
            else:
                tier_zh = f"{person.tier}档" if scheme.tiers and person.tier else ""
                tier_en = f" tier {person.tier}" if scheme.tiers and person.tier else ""
                refusal = AccountRefusal("no_personal_account", f"{scheme.label_zh}{tier_zh}无个人账户", f"{scheme.label_en}{tier_en} has no personal account")
        elif account.payer == "guardian":
            assert account.guardian is not None
            kinds = sorted(rules.guardian_visit_kinds)
            if visit.kind not in rules.guardian_visit_kinds:
                refusal = AccountRefusal("guardian_visit_kind", f"监护人账户仅可用于{'、'.join(KIND_ZH[k] for k in kinds)}",
                                         f"a guardian's account pays only for {', '.join(kinds)} visits")
            else:
                decision = check_guardian_account(account.guardian, policy.guardian_min_balance)
                if decision.allowed:
                    acct = mulaid = min(payable, account.balance)
                else:
                    refusal = AccountRefusal("guardian_conditions", decision.reason_zh(), decision.reason_en(), tuple(c.code for c in decision.failed))
        elif account.relation in rules.family_mutual_aid:  # family mutual aid
            acct = mulaid = min(payable, account.balance)
        else:
            relations = ", ".join(sorted(rules.family_mutual_aid))
            refusal = AccountRefusal("relation_not_allowed", f"家庭共济仅限：{relations}", f"family mutual aid is only for: {relations}")
        if refusal is not None:
            ex.append(Explanation(7, "account_refused", 0, f"{ver} personal_account", "个人账户不可用：{why}",
                                  "Personal account not used: {why_en}", {"why": refusal.zh, "why_en": refusal.en}))
        else:
            zh = "个人账户（{whose_zh}）支付：{a:y}，余额{balc:y}"
            en = "Personal account ({whose_en}) pays {a:y}; balance {balc:y}"
            if excluded:
                zh += "（{excluded:y}不可由个人账户支付）"
                en += " ({excluded:y} may not be paid from the account)"
            ex.append(Explanation(7, "account", acct, f"{ver} personal_account", zh, en, {
                "whose_zh": PAYER_ZH[account.payer], "whose_en": PAYER_EN[account.payer], "a": acct,
                "balc": account.balance - acct, "excluded": excluded}))

    # Step 8: the rest is cash (through a payment institution or a credit line).
    cash = person_total - acct
    ex.append(Explanation(8, "cash", cash, ver, "基金支付合计{funds:y}，个人负担{person:y}，其中现金支付：{a:y}",
                          "Funds pay {funds:y}; the patient's share is {person:y}, of which cash: {a:y}",
                          {"funds": fund_total, "person": person_total, "a": cash}))

    # What the visit used of its rule's eligible-cost ceiling: the cost the basic layer covered, and the deductible
    # when the ceiling is measured with it.
    used = covered + (dedc if schedule is not None and variant.eligible_ceiling_basis == "cumulative" else 0)

    delta = Accumulators(
        outpatient_deductible_used=dedc if per_year else 0,
        pool_fund_paid=hifp,
        outpatient_pool_paid=hifp if variant.pool_counts_against == "outpatient_pool_paid" else 0,
        inpatient_pool_paid=hifp if variant.pool_counts_against == "inpatient_pool_paid" else 0,
        inpatient_eligible_used=used if variant.eligible_counts_against == "inpatient_eligible_used" else 0,
        outpatient_eligible_used=used if variant.eligible_counts_against == "outpatient_eligible_used" else 0,
        inpatient_in_scope=t_in if variant.in_scope_accumulator == "inpatient_in_scope" else 0,
        outpatient_in_scope=t_in if variant.in_scope_accumulator == "outpatient_in_scope" else 0,
        serious_illness_base=si_base,
        serious_illness_paid=si_paid,
        large_amount_base=la_base,
        large_amount_paid=hifob,
        beyond_cap_base=bl_base,
        beyond_cap_paid=bl_paid,
        assistance_base=a_base,
        assistance_paid=maf,
    )
    return Settlement(
        policy_version=ver, policy_digest=policy.digest, catalogue_version=cat.version, catalogue_digest=cat.digest,
        insured_region=bill.insured_region, treatment_region=bill.treatment_region,
        total=t_total, own_expense=t_own, over_limit=t_over, pre_self_pay=t_pre, in_scope=t_in,
        deductible=dedc, pool_fund=hifp, pool_ratio=pool_ratio, serious_illness=hifmi, large_amount=hifob, other=oth,
        assistance=maf, fund_total=fund_total, person_total=person_total, account_pay=acct,
        mutual_aid_pay=mulaid, cash_pay=cash, balance_before=account.balance, balance_after=account.balance - acct,
        lines=tuple(lines), accumulator_delta=delta, explanation=tuple(ex), account_refusal=refusal,
        account_payer=account.payer if acct else None,
    )
