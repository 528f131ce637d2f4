"""Validate a policy file's mapping into a ``Policy``; every error names the file and the field.

The format is documented in docs/policy.md. Amounts are yuan strings, ratios decimal
strings between 0 and 1; both are parsed exactly (no floats).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable, Mapping

from yibao.domain.clearing import MAX_DEPOSIT_RATIO, ClearingRules
from yibao.domain.credit import CreditRules
from yibao.domain.errors import InputError, PolicyError, one_of
from yibao.domain.money import RATIO_ONE, apply_ratio, parse_ratio, parse_yuan
from yibao.domain.policy import (
    BASE_PARTS,
    ELIGIBLE_ACCUMULATORS,
    FILINGS,
    INSURANCE_TYPES,
    ITEM_CATEGORIES,
    LAYERS,
    LEVELS,
    MUTUAL_AID_RELATIONS,
    RULE_CAP_ACCUMULATORS,
    SCHEME_CAP_ACCUMULATORS,
    VISIT_KINDS,
    AccountRules,
    AgeRatio,
    Assistance,
    AssistanceStatus,
    Band,
    BenefitVariant,
    BeyondLargeAmount,
    Condition,
    CrossRegion,
    CrossRegionRule,
    ItemRatio,
    LargeAmount,
    Policy,
    RatioSchedule,
    Scheme,
    SeriousIllness,
)

_MISSING = object()
# The keys each level of a file may hold (docs/policy.md names every one; a test checks it).
TOP_LEVEL_KEYS = ("region", "region_name", "year", "revision", "avg_onpost_wage_prev_year", "wage_year", "paycode_ttl_seconds",
                  "catalogue", "schemes", "serious_illness", "large_amount", "beyond_large_amount", "assistance", "cross_region",
                  "personal_account", "references", "credit", "clearing")
SCHEME_KEYS = ("label_zh", "label_en", "tiers", "annual_cap", "annual_cap_counts_against", "personal_account", "second_layer",
               "serious_illness", "large_amount", "beyond_large_amount", *VISIT_KINDS)
VARIANT_KEYS = ("label_zh", "label_en", "when", "deductible", "repeat_admission_factor", "ratio", "bands_basis", "annual_cap",
                "eligible_ceiling", "eligible_ceiling_basis", "eligible_ceiling_counts_against", "annual_cap_counts_against",
                "item_ratios")


class _Reader:
    """Walks a mapping, remembering the dotted path for error messages."""

    def __init__(self, source: str, data: Any, path: str = "") -> None:
        self.source = source
        self.data = data
        self.path = path

    def fail(self, field: str, zh: str, en: str) -> PolicyError:
        sep = "" if field.startswith("[") else "."
        where = f"{self.path}{sep}{field}" if self.path and field else (self.path or field)
        return PolicyError(f"{self.source}: {where}" if where else self.source, "invalid_policy", zh, en)

    def child(self, key: str | int, data: Any) -> "_Reader":
        sub = f"{self.path}[{key}]" if isinstance(key, int) else (f"{self.path}.{key}" if self.path else key)
        return _Reader(self.source, data, sub)

    def mapping(self, key: str, required: bool = True) -> "_Reader | None":
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise self.fail(key, "缺少必填项", "is required")
            return None
        if not isinstance(value, Mapping):
            raise self.fail(key, "应为映射（键: 值）", "must be a mapping")
        return self.child(key, value)

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise self.fail(key, "缺少必填项", "is required")
            return default
        return value

    def _convert(self, key: str, value: Any, parse: Callable[[Any, str], int]) -> int:
        if isinstance(value, float):
            raise self.fail(key, f"请加引号写成字符串，例如 \"{value}\"", f"write it as a quoted string such as \"{value}\" so it stays exact")
        try:
            return parse(value, key)
        except InputError as exc:
            raise self.fail(key, exc.message_zh, exc.message_en) from None

    def yuan(self, key: str, default: Any = _MISSING) -> int | None:
        value = self.raw(key, default)
        if value is None:
            if default is _MISSING:
                raise self.fail(key, "缺少取值（不能为空）", "needs a value (it is empty)")
            return None
        return self._convert(key, value, parse_yuan)

    def cap(self, key: str, required: bool = False) -> int | None:
        """A yearly cap or ceiling: an amount, or the word ``none`` for no cap (absent, when not required, is none too)."""
        value = self.raw(key, _MISSING if required else None)
        if value == "none" or (value is None and not required):
            return None
        if isinstance(value, str) and value.strip().lower() in ("none", "null", "unlimited", "no", "inf", "infinity", "无", "不限"):
            raise self.fail(key, f"无上限请写 none（小写），而不是 {value!r}", f"write none (lower case) for no cap, not {value!r}")
        return self.yuan(key)

    def ratio(self, key: str, default: Any = _MISSING) -> int:
        return self._convert(key, self.raw(key, default), parse_ratio)

    def signed_ratio(self, key: str, default: Any = _MISSING) -> int:
        """A ratio between −1 and 1 ("-0.005"): a step that may fall."""
        value = self.raw(key, default)
        if not isinstance(value, str):
            return self._convert(key, value, parse_ratio)  # a float gets the quoting advice, an integer 0 or 1 passes
        negative = value.strip().startswith("-")
        try:
            ppm = parse_ratio(value.strip()[1:] if negative else value, key)
        except InputError:
            raise self.fail(key, f"应为 −1 与 1 之间的比例（如 \"0.005\" 或 \"-0.005\"），收到 {value!r}",
                            f"must be a ratio between -1 and 1 such as \"0.005\" or \"-0.005\", got {value!r}") from None
        return -ppm if negative else ppm

    def integer(self, key: str, default: Any = _MISSING, minimum: int | None = None, maximum: int = 10**6) -> int | None:
        value = self.raw(key, default)
        if value is None:
            if default is _MISSING:
                raise self.fail(key, "缺少取值（不能为空）", "needs a value (it is empty)")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "应为整数", "must be an integer")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"不能小于{minimum}", f"must be at least {minimum}")
        if value > maximum:
            raise self.fail(key, f"不能大于{maximum}", f"must be at most {maximum}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "应为 true 或 false", "must be true or false")
        return value

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "应为非空字符串", "must be a non-empty string")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.raw(key, default)
        if value not in allowed:
            zh, en = one_of(allowed)
            raise self.fail(key, f"取值应为 {zh}", f"must be {en}, got {value!r}")
        return value

    def names(self, key: str, default: Any = _MISSING) -> frozenset[str]:
        """A list of plain names, e.g. hardship statuses."""
        value = self.raw(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "应为名称列表，如 [tekun, dibao]", "must be a list of names such as [tekun, dibao]")
        return frozenset(value)

    def subset(self, key: str, allowed: tuple[str, ...], default: Any = _MISSING) -> frozenset[str]:
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise self.fail(key, "应为列表", "must be a list")
        for item in value:
            if not isinstance(item, str) or item not in allowed:
                raise self.fail(key, f"未知取值 {item!r}，可选 {' | '.join(allowed)}", f"unknown value {item!r}; allowed: {' | '.join(allowed)}")
        return frozenset(value)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        """Unknown keys are refused: a misspelt key would otherwise silently change a benefit."""
        for key in self.data:
            if key not in allowed:
                raise self.fail(str(key), f"未知字段，可用字段：{', '.join(allowed)}", f"unknown field; known fields: {', '.join(allowed)}")


def _age_ratio(r: _Reader, key: str) -> AgeRatio:
    """{base: "0.50", step: "0.004", from_age: 0, min: "0.55", max: "0.75"}: base + step × max(0, age − from_age), within [min, max]."""
    ar = r.child(key, r.raw(key))
    ar.check_keys(("base", "step", "from_age", "min", "max"))
    age = AgeRatio(base=ar.ratio("base"), step=ar.signed_ratio("step"),
                   from_age=ar.integer("from_age", 0, minimum=0, maximum=150),  # type: ignore[arg-type]
                   lo=ar.ratio("min", "0"), hi=ar.ratio("max", "1"))
    if age.lo > age.hi:
        raise ar.fail("min", "min 大于 max", "is above max")
    return age


def _band(r: _Reader, key: str, upto: int | None) -> Band:
    """A band's ratio: a ratio, or a ratio by age (a mapping)."""
    if isinstance(r.raw(key), Mapping):
        age = _age_ratio(r, key)
        return Band(upto, age.at(0), age)
    return Band(upto, r.ratio(key))


def _schedule(r: _Reader, key: str) -> RatioSchedule:
    """A ratio ("0.9"), a ratio by age ({base, step, ...}) or bands ([{upto: "50000", ratio: "0.6"}, {ratio: "0.7"}])."""
    value = r.raw(key)
    if isinstance(value, Mapping):
        return RatioSchedule((_band(r, key, None),))
    if not isinstance(value, list):
        return RatioSchedule.flat(r.ratio(key))
    if not value:
        raise r.fail(key, "分段列表不能为空", "band list must not be empty")
    bands: list[Band] = []
    previous = 0
    for i, item in enumerate(value):
        br = r.child(key, value).child(i, item)
        if not isinstance(item, Mapping):
            raise br.fail("", "分段应为 {upto, ratio}", "each band must be a mapping {upto, ratio}")
        br.check_keys(("upto", "ratio"))
        upto = br.yuan("upto", None)
        last = i == len(value) - 1
        if upto is None and not last:
            raise br.fail("upto", "只有最后一段可以不设上限", "only the last band may omit upto")
        if upto is not None and upto <= previous:
            raise br.fail("upto", "分段上限必须递增", "band limits must increase")
        bands.append(_band(br, "ratio", upto))
        previous = upto or previous
    if bands[-1].upto is not None:
        bands.append(Band(None, 0))  # nothing is paid above the last limit
    return RatioSchedule(tuple(bands))


def _by_level(r: _Reader, key: str, convert: Callable[[_Reader, str], Any], scalar_key: str | None = None) -> dict[str, Any]:
    """A value per institution level, or one scalar that applies to every level of ``ratio`` (a mapping holding
    ``scalar_key`` is such a scalar: `deductible: {wage_share: "0.01"}`)."""
    value = r.raw(key)
    if isinstance(value, Mapping) and not (scalar_key is not None and scalar_key in value):
        sub = r.child(key, value)
        sub.check_keys(LEVELS)
        return {level: convert(sub, level) for level in value}
    return {"*": convert(r, key)}


def _condition(r: _Reader | None, tiers: tuple[int, ...] | None) -> Condition:
    if r is None:
        return Condition()
    r.check_keys(("tier", "retired", "age_min", "age_max"))
    retired = r.raw("retired", None)
    if retired is not None and not isinstance(retired, bool):
        raise r.fail("retired", "应为 true 或 false", "must be true or false")
    cond = Condition(
        tier=r.integer("tier", None, minimum=1, maximum=9),
        retired=retired,
        age_min=r.integer("age_min", None, minimum=0, maximum=150),
        age_max=r.integer("age_max", None, minimum=0, maximum=150),
    )
    if cond.tier is not None and (tiers is None or cond.tier not in tiers):  # a rule no one can match
        raise r.fail("tier", f"该险种没有档次 {cond.tier}", f"the scheme has no tier {cond.tier}")
    if cond.age_min is not None and cond.age_max is not None and cond.age_min > cond.age_max:
        raise r.fail("age_min", "age_min 大于 age_max，无人能匹配", "is above age_max, so no one can match")
    return cond


def _deductible(wage: int, shares: dict[str, int]) -> Callable[[_Reader, str], int]:
    """An amount ("600"), or a share of the previous year's average wage ({wage_share: "0.05"}), rounded once."""
    def convert(r: _Reader, key: str) -> int:
        value = r.raw(key)
        if not isinstance(value, Mapping):
            return r.yuan(key)  # type: ignore[return-value]
        wr = r.child(key, value)
        wr.check_keys(("wage_share",))
        shares[key] = wr.ratio("wage_share")
        return apply_ratio(wage, shares[key])
    return convert


def _item_ratios(r: _Reader) -> tuple[ItemRatio, ...]:
    """[{category: implant, ratio: "0.80"}, {code: "XA01…", ratio: "1", label_zh: …, label_en: …}]"""
    value = r.raw("item_ratios", [])
    if not isinstance(value, list):
        raise r.fail("item_ratios", "应为规则列表，如 [{category: implant, ratio: \"0.80\"}]",
                     "must be a list of rules such as [{category: implant, ratio: \"0.80\"}]")
    lr = r.child("item_ratios", value)
    out, seen = [], {}
    for i, item in enumerate(value):
        ir = lr.child(i, item)
        if not isinstance(item, Mapping):
            raise ir.fail("", "应为映射 {code 或 category, ratio}", "must be a mapping {code or category, ratio}")
        ir.check_keys(("code", "category", "ratio", "label_zh", "label_en"))
        if ("code" in item) == ("category" in item):
            both_en = "not both" if "code" in item else "one of the two is missing"
            raise ir.fail("", "须写 code（医保目录编码）或 category（项目类别）之一", f"needs either code (a national catalogue code) or category: {both_en}")
        code = None if "code" not in item else ir.text("code")
        category = None if "category" not in item else ir.choice("category", tuple(ITEM_CATEGORIES))
        key = ("code", code) if code is not None else ("category", category)
        if key in seen:
            raise ir.fail("", f"与第 {seen[key]} 条规则重复（只有第一条会生效）", f"repeats rule {seen[key]} (only the first would ever apply)")
        seen[key] = i
        zh, en = ITEM_CATEGORIES[category] if category is not None else (code, code)
        out.append(ItemRatio(path=ir.path, code=code, category=category, ratio=ir.ratio("ratio"),
                             label_zh=ir.text("label_zh", zh), label_en=ir.text("label_en", en)))
    return tuple(out)


def _variant(r: _Reader, kind: str, tiers: tuple[int, ...] | None, wage: int = 0) -> BenefitVariant:
    r.check_keys(VARIANT_KEYS)
    ratio = _by_level(r, "ratio", _schedule)
    if "*" in ratio:
        raise r.fail("ratio", "请按机构级别给出比例（community, level1, level2, level3, pharmacy）",
                     "give the ratio per institution level (community, level1, level2, level3, pharmacy)")
    if not ratio:
        raise r.fail("ratio", "至少要有一个机构级别", "must cover at least one institution level")
    shares: dict[str, int] = {}
    deductible = _by_level(r, "deductible", _deductible(wage, shares), "wage_share")
    if "*" in deductible:
        deductible = {level: deductible["*"] for level in ratio}
        shares = {level: shares["deductible"] for level in ratio} if shares else {}
    missing = [level for level in ratio if level not in deductible]
    if missing:  # a forgotten level must not silently mean "no deductible"
        raise r.fail("deductible", f"缺少这些级别的起付线：{', '.join(missing)}", f"has no amount for covered levels: {', '.join(missing)}")
    factors: tuple[int, ...] = (RATIO_ONE,)
    raw_factors = r.raw("repeat_admission_factor", None)
    if raw_factors is not None:
        if kind != "inpatient":
            raise r.fail("repeat_admission_factor", "仅住院可设置多次住院起付线系数", "only inpatient rules have repeat-admission factors")
        if not isinstance(raw_factors, list) or not raw_factors:
            raise r.fail("repeat_admission_factor", "应为非空列表，如 [\"1\", \"0.5\", \"0\"]", "must be a non-empty list such as [\"1\", \"0.5\", \"0\"]")
        fr = r.child("repeat_admission_factor", raw_factors)
        factors = tuple(fr._convert(f"[{i}]", v, parse_ratio) for i, v in enumerate(raw_factors))
    annual_cap = r.cap("annual_cap")
    if "annual_cap" in r.data and kind == "inpatient":
        raise r.fail("annual_cap", "住院统筹的年度限额在 schemes.<险种>.annual_cap 设置", "the inpatient yearly cap is the scheme's annual_cap")
    return BenefitVariant(
        path=r.path,
        label_zh=r.text("label_zh", r.path),
        label_en=r.text("label_en", r.path),
        when=_condition(r.mapping("when", required=False), tiers),
        deductible=deductible,
        ratio=ratio,
        repeat_admission_factors=factors,
        bands_basis=r.choice("bands_basis", ("excess", "cumulative", "yearly"), "excess"),
        annual_cap=annual_cap,
        eligible_ceiling=r.cap("eligible_ceiling"),
        deductible_shares=shares,
        item_ratios=_item_ratios(r),
        eligible_ceiling_basis=r.choice("eligible_ceiling_basis", ("excess", "cumulative"), "excess"),
        # By default a rule counts against its visit class's accumulators: a stay never uses up an outpatient ceiling.
        eligible_counts_against=r.choice("eligible_ceiling_counts_against", ELIGIBLE_ACCUMULATORS,
                                         "inpatient_eligible_used" if kind == "inpatient" else "outpatient_eligible_used"),
        pool_counts_against=r.choice("annual_cap_counts_against", RULE_CAP_ACCUMULATORS,
                                     "inpatient_pool_paid" if kind == "inpatient" else "outpatient_pool_paid"),
    )


def _scheme(r: _Reader, insurance_type: str, wage: int = 0) -> Scheme:
    r.check_keys(SCHEME_KEYS)
    tiers = r.raw("tiers", None)
    if tiers is not None and (not isinstance(tiers, list) or not tiers
                              or not all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= 9 for t in tiers)):
        raise r.fail("tiers", "应为1–9的整数列表，如 [1, 2]", "must be a list of integers 1–9 such as [1, 2]")
    account = r.raw("personal_account")
    if isinstance(account, bool):
        has_account, account_tiers = account, None
    elif isinstance(account, list) and account and tiers and all(isinstance(t, int) and not isinstance(t, bool) and t in tiers for t in account):
        has_account, account_tiers = True, tuple(account)
    else:
        raise r.fail("personal_account", "应为 true、false 或本险种档次的列表，如 [1]",
                     "must be true, false or a non-empty list of this scheme's tiers such as [1]")
    benefits: dict[str, tuple[BenefitVariant, ...]] = {}
    for kind in VISIT_KINDS:
        value = r.raw(kind, None)
        if value is None:
            continue
        if not isinstance(value, list) or not value:
            raise r.fail(kind, "应为非空的规则列表", "must be a non-empty list of benefit rules")
        lr = r.child(kind, value)
        variants = []
        for i, item in enumerate(value):
            vr = lr.child(i, item)
            if not isinstance(item, Mapping):
                raise vr.fail("", "应为映射", "must be a mapping")
            variants.append(_variant(vr, kind, tuple(tiers) if tiers else None, wage))
        if variants[-1].when != Condition():
            raise lr.fail("", "最后一条规则不能带 when 条件（兜底规则）", "the last rule must have no `when`, so every person matches one")
        benefits[kind] = tuple(variants)
    for kind in ("outpatient", "inpatient"):
        if kind not in benefits:
            raise r.fail(kind, "缺少必填项", "is required")
    layers = _layers(r)
    return Scheme(
        insurance_type=insurance_type,
        label_zh=r.text("label_zh", insurance_type),
        label_en=r.text("label_en", insurance_type),
        tiers=tuple(tiers) if tiers else None,
        annual_cap=r.cap("annual_cap", required=True),
        personal_account_tiers=account_tiers,
        has_personal_account=has_account,
        second_layer=layers[0] if layers else None,
        layers=layers,
        benefits=benefits,
        annual_cap_counts_against=r.choice("annual_cap_counts_against", SCHEME_CAP_ACCUMULATORS, "pool_fund_paid"),
        serious_illness=_serious_illness(si_r) if (si_r := r.mapping("serious_illness", required=False)) else None,
        large_amount=_large_amount(la_r) if (la_r := r.mapping("large_amount", required=False)) else None,
        beyond_large_amount=_beyond(bl_r) if (bl_r := r.mapping("beyond_large_amount", required=False)) else None,
    )


def _serious_illness(r: _Reader) -> SeriousIllness:
    r.check_keys(("threshold", "bands", "basis", "annual_cap", "base_includes", "hardship"))
    h = r.mapping("hardship", required=False)
    if h is not None:
        h.check_keys(("statuses", "threshold_factor", "ratio_bonus", "no_cap"))
    return SeriousIllness(
        threshold=r.yuan("threshold"),
        bands=_schedule(r, "bands"),
        basis=r.choice("basis", ("excess", "cumulative"), "excess"),
        annual_cap=r.cap("annual_cap"),
        base_includes=r.subset("base_includes", BASE_PARTS, ["in_scope_self_pay"]),
        hardship_statuses=h.names("statuses", []) if h else frozenset(),
        hardship_threshold_factor=h.ratio("threshold_factor", "1") if h else RATIO_ONE,
        hardship_ratio_bonus=h.ratio("ratio_bonus", "0") if h else 0,
        hardship_no_cap=h.boolean("no_cap", False) if h else False,
    )


def _layers(r: _Reader) -> tuple[str, ...]:
    """second_layer: one layer's name, or the layers above the basic fund in the order they pay."""
    value = r.raw("second_layer", None)
    if value is None:
        return ()
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n in LAYERS for n in names) or len(set(names)) != len(names):
        zh, en = one_of(LAYERS)
        raise r.fail("second_layer", f"应为 {zh}，或由它们组成的不重复列表", f"must be {en}, or a list of them without repeats, got {value!r}")
    if "beyond_large_amount" in names and ("large_amount" not in names or names.index("beyond_large_amount") < names.index("large_amount")):
        raise r.fail("second_layer", "beyond_large_amount 须排在 large_amount 之后（它支付大额封顶线以上的费用）",
                     "beyond_large_amount must come after large_amount (it pays on cost above the large-amount cap)")
    return tuple(names)


def _bands_or_ratio(r: _Reader) -> RatioSchedule:
    if ("ratio" in r.data) == ("bands" in r.data):
        raise r.fail("bands", "须给出 ratio 或 bands 之一", "give either ratio or bands")
    return RatioSchedule.flat(r.ratio("ratio")) if "ratio" in r.data else _schedule(r, "bands")


def _large_amount(r: _Reader) -> LargeAmount:
    r.check_keys(("ratio", "bands", "threshold", "basis", "annual_cap"))
    return LargeAmount(bands=_bands_or_ratio(r), annual_cap=r.cap("annual_cap"), threshold=r.yuan("threshold", "0") or 0,
                       basis=r.choice("basis", ("excess", "cumulative"), "excess"))


def _beyond(r: _Reader) -> BeyondLargeAmount:
    r.check_keys(("ratio", "bands", "threshold", "basis", "annual_cap", "reported_as"))
    return BeyondLargeAmount(bands=_bands_or_ratio(r), annual_cap=r.cap("annual_cap"),
                             reported_as=r.choice("reported_as", ("oth_pay", "hifmi_pay")),
                             threshold=r.yuan("threshold", "0") or 0, basis=r.choice("basis", ("excess", "cumulative"), "excess"))


def _assistance(r: _Reader) -> Assistance:
    r.check_keys(("statuses", "base_includes"))
    sr = r.mapping("statuses")
    statuses = {}
    for name, value in sr.data.items():
        if not isinstance(value, Mapping):
            raise sr.fail(str(name), "应为映射", "must be a mapping")
        st = sr.child(str(name), value)
        st.check_keys(("label_zh", "label_en", "threshold", "ratio", "annual_cap"))
        statuses[str(name)] = AssistanceStatus(
            label_zh=st.text("label_zh"), label_en=st.text("label_en"),
            threshold=st.yuan("threshold"), ratio=st.ratio("ratio"), annual_cap=st.cap("annual_cap"),
        )
    return Assistance(statuses=statuses, base_includes=r.subset("base_includes", BASE_PARTS, ["in_scope_self_pay", "pre_self_pay"]))


def _cross_region(r: _Reader) -> CrossRegion:
    r.check_keys(("emergency_counts_as_filed", *FILINGS))
    rules = {}
    for filing in FILINGS:
        fr = r.mapping(filing)
        fr.check_keys(("extra_self_pay", "ratio_cut"))
        rules[filing] = CrossRegionRule(extra_self_pay=fr.ratio("extra_self_pay", "0"), ratio_cut=fr.ratio("ratio_cut", "0"))
    return CrossRegion(emergency_counts_as_filed=r.boolean("emergency_counts_as_filed", True), rules=rules)


def _account(r: _Reader) -> AccountRules:
    r.check_keys(("excludes", "family_mutual_aid", "guardian_min_balance_share", "guardian_visit_kinds", "credit_approval_threshold"))
    return AccountRules(
        excludes=r.subset("excludes", ("own_expense", "over_limit"), []),
        family_mutual_aid=r.subset("family_mutual_aid", MUTUAL_AID_RELATIONS, list(MUTUAL_AID_RELATIONS)),
        guardian_min_balance_share=r.ratio("guardian_min_balance_share", "0.05"),
        guardian_visit_kinds=r.subset("guardian_visit_kinds", VISIT_KINDS, ["outpatient", "emergency", "pharmacy"]),
        credit_approval_threshold=r.yuan("credit_approval_threshold", "10000.00"),  # type: ignore[arg-type]
    )


def _credit(r: _Reader) -> CreditRules:
    r.check_keys(("max_line", "interest_free_days", "grace_days", "reminder_days_before", "min_age"))
    max_line = r.yuan("max_line")
    if not max_line or max_line <= 0 or max_line > 100_000_00:
        raise r.fail("max_line", "应在0.01至100000.00元之间", "must be between 0.01 and 100000.00 yuan")
    days = r.raw("reminder_days_before", [3])
    if (not isinstance(days, list) or len(days) > 5
            or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 30 for d in days) or len(set(days)) != len(days)):
        raise r.fail("reminder_days_before", "应为1–30之间互不相同的整数列表（最多5个）", "must be a list of up to 5 distinct integers between 1 and 30")
    return CreditRules(max_line=max_line, interest_free_days=r.integer("interest_free_days", minimum=1, maximum=90),  # type: ignore[arg-type]
                       grace_days=r.integer("grace_days", 0, minimum=0, maximum=30),  # type: ignore[arg-type]
                       reminder_days_before=tuple(sorted(days, reverse=True)),
                       min_age=r.integer("min_age", 18, minimum=18, maximum=100))  # type: ignore[arg-type]


def _clearing(r: _Reader) -> ClearingRules:
    r.check_keys(("quality_deposit_ratio",))
    ratio = r.ratio("quality_deposit_ratio", "0.05")
    if ratio > MAX_DEPOSIT_RATIO:  # 质量保证金 ≤ 5 % (research/books.md §2)
        raise r.fail("quality_deposit_ratio", "质量保证金比例不得超过5%", "the quality-guarantee deposit may not exceed 5%")
    return ClearingRules(quality_deposit_ratio=ratio)


def policy_from_mapping(data: Any, source: str, text: bytes | str = b"") -> Policy:
    """Build a Policy from a parsed YAML document; ``text`` (the file's bytes) gives the digest."""
    r = _Reader(source, data)
    if not isinstance(data, Mapping):
        raise r.fail("", "策略文件应为 YAML 映射", "a policy file must be a YAML mapping")
    r.check_keys(TOP_LEVEL_KEYS)
    region = str(r.raw("region"))
    if not re.fullmatch(r"[0-9]{6}", region):
        raise r.fail("region", "统筹区代码应为6位数字（如 \"440300\"）", "must be a 6-digit admdvs code such as \"440300\"")
    catalogue = r.mapping("catalogue")
    catalogue.check_keys(("b_self_pay_ratio",))
    schemes_r = r.mapping("schemes")
    schemes_r.check_keys(INSURANCE_TYPES)
    schemes = {}
    wage: int = r.yuan("avg_onpost_wage_prev_year")  # type: ignore[assignment]  # deductibles may be shares of it
    for insurance_type, value in schemes_r.data.items():
        if not isinstance(value, Mapping):
            raise schemes_r.fail(insurance_type, "应为映射", "must be a mapping")
        schemes[insurance_type] = _scheme(schemes_r.child(insurance_type, value), insurance_type, wage)
    si_r = r.mapping("serious_illness", required=False)
    la_r = r.mapping("large_amount", required=False)
    bl_r = r.mapping("beyond_large_amount", required=False)
    beyond = _beyond(bl_r) if bl_r else None
    for insurance_type, scheme in schemes.items():
        for layer in scheme.layer_order:
            # A scheme's own section, else the file's top-level one (the default for every scheme).
            own = getattr(scheme, layer)
            if own is None and {"serious_illness": si_r, "large_amount": la_r, "beyond_large_amount": bl_r}[layer] is None:
                raise r.fail(layer, f"险种 {insurance_type} 使用了该层但文件未定义", f"scheme {insurance_type} uses this layer but the file does not define it")
        b = scheme.beyond_large_amount or beyond
        if "beyond_large_amount" in scheme.layer_order and "serious_illness" in scheme.layer_order and b and b.reported_as == "hifmi_pay":
            raise r.fail(f"schemes.{insurance_type}.second_layer", "大病保险与 reported_as: hifmi_pay 的封顶线以上层不能同在一个险种（同一字段 hifmi_pay）",
                         "serious_illness and a beyond_large_amount reported as hifmi_pay cannot both be in one scheme (one hifmi_pay)")
    assistance_r = r.mapping("assistance", required=False)
    references = r.raw("references", [])
    if not isinstance(references, list) or not all(isinstance(x, str) for x in references):
        raise r.fail("references", "应为字符串列表", "must be a list of strings")
    raw_text = text.encode() if isinstance(text, str) else text
    return Policy(
        region=region,
        region_name=r.text("region_name"),
        year=r.integer("year", minimum=2000, maximum=2100),
        revision=r.integer("revision", 1, minimum=1),
        digest=hashlib.sha256(raw_text).hexdigest()[:12],
        source=source,
        avg_onpost_wage=wage,
        wage_year=r.integer("wage_year", minimum=2000, maximum=2100),
        paycode_ttl_seconds=r.integer("paycode_ttl_seconds", 180, minimum=10, maximum=3600),
        b_self_pay_ratio=catalogue.ratio("b_self_pay_ratio"),
        schemes=schemes,
        serious_illness=_serious_illness(si_r) if si_r else None,
        large_amount=_large_amount(la_r) if la_r else None,
        beyond_large_amount=beyond,
        assistance=_assistance(assistance_r) if assistance_r else None,
        cross_region=_cross_region(r.mapping("cross_region")),
        account=_account(r.mapping("personal_account", required=False) or _Reader(source, {}, "personal_account")),
        references=tuple(references),
        credit=_credit(credit_r) if (credit_r := r.mapping("credit", required=False)) else None,
        clearing=_clearing(clearing_r) if (clearing_r := r.mapping("clearing", required=False)) else ClearingRules(),
    )
