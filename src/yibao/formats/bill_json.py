"""Parse the bill JSON format (docs/quote.md) into domain values; errors name the field path."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Mapping

from yibao.domain.bill import ACCUMULATOR_FIELDS, AccountChoice, Accumulators, Bill, FeeLine, Person, Visit
from yibao.domain.errors import InputError, one_of
from yibao.domain.family import GuardianFacts
from yibao.domain.money import parse_quantity, parse_ratio, parse_yuan
from yibao.domain.policy import FILINGS, INSURANCE_TYPES, ITEM_CATEGORIES, LEVELS, LINE_CLASSES, MUTUAL_AID_RELATIONS, VISIT_KINDS

_ABSENT = object()
GUARDIAN_FACT_FIELDS = {
    "child_insured_in_region": "child_insured_in_region",
    "child_has_financial_card": "child_has_financial_card",
    "ecard_bound": "guardian_ecard_bound",
    "child_card_linked": "child_card_linked",
    "family_linked": "family_account_linked",
    "matches_enrolment": "guardian_matches_enrolment",
}


_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_REGION_RE = re.compile(r"^[0-9]{6}$")


def show(value: Any) -> str:
    """A value as the user wrote it (JSON), short — never a Python repr."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(key, "duplicate_key", f"JSON 对象中字段 {key} 重复", f"the key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _no_constants(name: str) -> Any:
    raise InputError("", "invalid_number", f"不支持 {name}，金额和数量须为有限的十进制数", f"{name} is not allowed; amounts and quantities are finite decimals")


def loads_bill_text(text: str) -> Any:
    """JSON with exact decimals: 12.50 becomes Decimal("12.50"), never a float; duplicate keys refused."""
    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno} column {exc.colno}", "invalid_json", f"JSON 格式错误：{exc.msg}", f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError("", "invalid_json", "JSON 嵌套层级过深", "the JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise InputError("", "invalid_json", "JSON 中的数字过大", f"a number in the JSON is too large ({str(exc)[:60]})") from None


class _Obj:
    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InputError(path or "(bill)", "not_an_object", "应为 JSON 对象", "must be a JSON object")
        self.data = data
        self.path = path

    def f(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = _ABSENT) -> Any:
        value = self.data.get(key, _ABSENT)
        if value is _ABSENT:
            if default is _ABSENT:
                raise InputError(self.f(key), "required", "缺少必填字段", "is required")
            return default
        if value is None and default is not None:
            # null is only "absent" for fields whose default is null; elsewhere it hides a mistake.
            raise InputError(self.f(key), "null_not_allowed", "不能为 null", "must not be null")
        return value

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        """Unknown keys are refused: a misspelt "price_cap" would otherwise silently change the money."""
        for key in self.data:
            if key not in allowed:
                raise InputError(self.f(str(key)), "unknown_field", f"未知字段，可用字段：{', '.join(allowed)}",
                                 f"unknown field; known fields: {', '.join(allowed)}")

    def obj(self, key: str, required: bool = True) -> "_Obj | None":
        value = self.get(key, _ABSENT if required else None)
        return None if value is None else _Obj(value, self.f(key))

    def choice(self, key: str, allowed: tuple[str, ...], default: Any = _ABSENT) -> Any:
        value = self.get(key, default)
        if value is None and default is None:
            return None
        if value not in allowed:
            zh, en = one_of(allowed)
            raise InputError(self.f(key), "invalid_choice", f"取值应为 {zh}，收到 {show(value)}", f"must be {en}, got {show(value)}")
        return value

    def boolean(self, key: str, default: Any = _ABSENT) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise InputError(self.f(key), "invalid_boolean", f"应为 true 或 false，收到 {show(value)}", f"must be true or false, got {show(value)}")
        return value

    def integer(self, key: str, default: Any = _ABSENT, lo: int | None = None, hi: int | None = None) -> Any:
        value = self.get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(self.f(key), "invalid_integer", f"应为整数，收到 {show(value)}", f"must be an integer, got {show(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InputError(self.f(key), "out_of_range", f"应在 {lo}–{hi} 之间", f"must be between {lo} and {hi}, got {value}")
        return value

    def text(self, key: str, default: Any = _ABSENT) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise InputError(self.f(key), "invalid_text", "应为非空字符串", "must be a non-empty string")
        return value

    def region(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not _REGION_RE.match(value):
            raise InputError(self.f(key), "invalid_region", "统筹区代码应为6位数字字符串，如 \"440300\"", "must be a 6-digit region code string such as \"440300\"")
        return value

    def yuan(self, key: str, default: Any = _ABSENT) -> Any:
        value = self.get(key, default)
        return None if value is None else parse_yuan(value, self.f(key))


LINE_FIELDS = ("code", "name", "class", "unit_price", "quantity", "price_cap", "self_pay_ratio", "categories",
               # what a hospital's upload adds (the engine ignores them)
               "feedetl_sn", "prescription", "prescriber")


def fee_line_from_mapping(item: Any, path: str) -> FeeLine:
    """One fee line of the bill format (also what a hospital uploads); errors name ``path``.field."""
    ln = _Obj(item, path)
    ln.check_keys(LINE_FIELDS)
    cls = ln.choice("class", LINE_CLASSES)
    ratio = ln.get("self_pay_ratio", None)
    ratio_ppm = None if ratio is None else parse_ratio(ratio, ln.f("self_pay_ratio"))
    if ratio_ppm and cls != "B":
        raise InputError(ln.f("self_pay_ratio"), "self_pay_ratio_not_b", "只有乙类（B）项目有先行自付比例",
                         f"only class B lines carry a self-pay ratio; this line is class {cls}")
    categories = ln.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise InputError(ln.f("categories"), "invalid_list", "项目类别应为列表，如 [\"implant\"]", "must be a list such as [\"implant\"]")
    for c in categories:
        if c not in ITEM_CATEGORIES:
            raise InputError(ln.f("categories"), "invalid_choice", f"项目类别应为 {' | '.join(ITEM_CATEGORIES)}，收到 {show(c)}",
                             f"each category must be one of {' | '.join(ITEM_CATEGORIES)}, got {show(c)}")
    return FeeLine(
        code=ln.text("code"),
        name=ln.text("name", ln.data.get("code") or "-"),
        line_class=cls,
        unit_price=ln.yuan("unit_price"),
        quantity=parse_quantity(ln.get("quantity"), ln.f("quantity")),
        price_cap=ln.yuan("price_cap", None),
        self_pay_ratio=ratio_ppm,
        categories=tuple(dict.fromkeys(categories)),
    )


def bill_from_mapping(data: Any) -> Bill:
    root = _Obj(data, "")
    root.check_keys(("insured_region", "treatment_region", "date", "person", "visit", "lines", "accumulators", "account"))
    raw_date = root.get("date")
    try:
        visit_date = date.fromisoformat(raw_date) if isinstance(raw_date, str) and _DATE_RE.match(raw_date) else None
    except ValueError:
        visit_date = None
    if visit_date is None:
        raise InputError("date", "invalid_date", f"日期格式应为 YYYY-MM-DD，收到 {show(raw_date)}", f"must be a date YYYY-MM-DD, got {show(raw_date)}")

    p = root.obj("person")
    p.check_keys(("insurance_type", "tier", "retired", "age", "hardship", "filing"))
    person = Person(
        insurance_type=p.choice("insurance_type", INSURANCE_TYPES),
        tier=p.integer("tier", None, lo=1, hi=9),
        retired=p.boolean("retired", False),
        age=p.integer("age", lo=0, hi=150),
        hardship=p.get("hardship", None),
        filing=p.choice("filing", FILINGS, None),
    )
    if person.hardship is not None and (not isinstance(person.hardship, str) or not person.hardship):
        raise InputError("person.hardship", "invalid_text", "应为 null 或困难身份名称", "must be null or a hardship status name")

    v = root.obj("visit")
    v.check_keys(("kind", "institution_level", "admission_number"))
    visit = Visit(
        kind=v.choice("kind", VISIT_KINDS),
        institution_level=v.choice("institution_level", LEVELS),
        admission_number=v.integer("admission_number", 1, lo=1, hi=366),
    )

    raw_lines = root.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise InputError("lines", "no_lines", "费用明细不能为空", "must be a non-empty list of fee lines")
    lines = [fee_line_from_mapping(item, f"lines[{i}]") for i, item in enumerate(raw_lines)]

    a = root.obj("accumulators", required=False)
    accumulators = Accumulators()
    if a is not None:
        for key in a.data:
            if key not in ACCUMULATOR_FIELDS:
                raise InputError(a.f(key), "unknown_field", f"未知累计项，可用：{', '.join(ACCUMULATOR_FIELDS)}",
                                 f"unknown accumulator; known: {', '.join(ACCUMULATOR_FIELDS)}")
        accumulators = Accumulators(**{k: a.yuan(k, "0") for k in ACCUMULATOR_FIELDS})

    acct = root.obj("account", required=False)
    account = AccountChoice()
    if acct is not None:
        acct.check_keys(("use", "balance", "payer", "relation", "guardian"))
        payer = acct.choice("payer", ("self", "guardian", "family"), "self")
        balance = acct.yuan("balance", "0")
        guardian = None
        g = acct.obj("guardian", required=False)
        if g is not None:
            g.check_keys(tuple(GUARDIAN_FACT_FIELDS))
            guardian = GuardianFacts(guardian_balance=balance, **{attr: g.boolean(key) for key, attr in GUARDIAN_FACT_FIELDS.items()})
        account = AccountChoice(
            use=acct.boolean("use", False), balance=balance, payer=payer,
            relation=acct.choice("relation", MUTUAL_AID_RELATIONS, None), guardian=guardian,
        )

    return Bill(
        insured_region=root.region("insured_region"),
        treatment_region=root.region("treatment_region"),
        date=visit_date,
        person=person,
        visit=visit,
        lines=tuple(lines),
        accumulators=accumulators,
        account=account,
    )


# ---- what a hospital uploads: codes and quantities; the platform decides class, cap and ratio --------------------

# Fields the platform decides from the catalogue (services/catalogue): a hospital sending one is refused, never trusted.
DECIDED_FIELDS = ("class", "price_cap", "self_pay_ratio", "chrgitm_lv", "pric_uplmt_amt", "selfpay_prop", "categories", "item_category")
UPLOAD_FIELDS = ("feedetl_sn", "med_list_codg", "medins_list_codg", "name", "unit_price", "quantity", "fee_ocur_time",
                 "prescription", "prescriber", "hosp_appr_flag")
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True, slots=True)
class UploadedLine:
    """A fee line as a hospital uploads it (2204 feedetail): codes, price and quantity, never a class."""

    feedetl_sn: str
    med_list_codg: str | None
    medins_list_codg: str | None
    name: str | None
    unit_price: int
    quantity: int
    fee_ocur_time: datetime | None
    prescription: bool
    prescriber: str | None
    hosp_appr_flag: bool


def _code(ln: _Obj, key: str, most: int) -> str | None:
    value = ln.get(key, None)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise InputError(ln.f(key), "invalid_text", f"应为1–{most}个字符的编码", f"must be a code of 1–{most} characters")
    return value.strip()


def _time(ln: _Obj, key: str) -> datetime | None:
    """ISO 8601, or the national "yyyy-MM-dd HH:mm:ss" (Beijing time, like every national time without an offset)."""
    value = ln.get(key, None)
    if value is None:
        return None
    at = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            at = None
    if at is None:
        raise InputError(ln.f(key), "invalid_time", f"时间格式应为 yyyy-MM-dd HH:mm:ss 或 ISO 8601，收到 {show(value)}",
                         f"must be a time yyyy-MM-dd HH:mm:ss or ISO 8601, got {show(value)}")
    at = at.replace(tzinfo=CHINA) if at.tzinfo is None else at
    if not 1900 <= at.year <= 2100:  # the year 1 or 9999 with an offset cannot even be turned to UTC
        raise InputError(ln.f(key), "invalid_time", f"时间应在1900–2100年之间，收到 {show(value)}", f"must be a time in 1900–2100, got {show(value)}")
    return at


def upload_line_from_mapping(item: Any, path: str) -> UploadedLine:
    """One uploaded fee line; errors name ``path``.field. A field the platform decides is refused by name."""
    ln = _Obj(item, path)
    for key in DECIDED_FIELDS:
        if key in ln.data:
            raise InputError(ln.f(key), "decided_by_platform", f"{key} 由医保平台按医保目录确定，医药机构不能上传（请上传 med_list_codg 或本院编码 "
                             "medins_list_codg）", f"{key} is decided by the platform from the catalogue and is never taken from the "
                             "institution: send med_list_codg or your own medins_list_codg")
    ln.check_keys(UPLOAD_FIELDS)
    sn = ln.get("feedetl_sn")
    if not isinstance(sn, str) or not sn.strip() or len(sn) > 30:
        raise InputError(ln.f("feedetl_sn"), "invalid_text", "明细流水号应为1–30个字符", "must be a 1–30 character line serial number")
    med, own = _code(ln, "med_list_codg", 30), _code(ln, "medins_list_codg", 50)
    if med is None and own is None:
        raise InputError(ln.f("med_list_codg"), "code_required", "须填写医保目录编码 med_list_codg 或本院项目编码 medins_list_codg",
                         "give the national code med_list_codg or your own item code medins_list_codg")
    name = ln.get("name", None)
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        raise InputError(ln.f("name"), "invalid_text", "名称应为1–200个字符", "must be 1–200 characters")
    prescription = ln.boolean("prescription", False)
    prescriber = ln.get("prescriber", None)
    if prescriber is not None and (not isinstance(prescriber, str) or len(prescriber) > 60):
        raise InputError(ln.f("prescriber"), "invalid_text", "开方医师应为最多60个字符", "must be at most 60 characters")
    if prescription and (not isinstance(prescriber, str) or not prescriber.strip()):
        raise InputError(ln.f("prescriber"), "prescriber_required", "处方项目须填写开方医师（合法处方是医保支付的前提）",
                         "a prescription line must name its prescriber (legal prescribing comes before insurance payment)")
    return UploadedLine(sn, med, own, name, ln.yuan("unit_price"), parse_quantity(ln.get("quantity"), ln.f("quantity")), _time(ln, "fee_ocur_time"),
                        prescription, prescriber if prescription else None, ln.boolean("hosp_appr_flag", False))
