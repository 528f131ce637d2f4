"""The agency's medical-insurance catalogue (医保目录): its entries, their validation, and the decision a fee line gets.

Pure. A hospital uploads codes and quantities; the platform, not the hospital, decides each line's class
(chrgitm_lv), price cap (pric_uplmt_amt) and class-B self-pay ratio (selfpay_prop) from the entry in force on the
fee's date, and whether a limited-use rule (限定支付范围) makes the line the patient's own expense. docs/catalogue.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date

from yibao.domain.errors import InputError
from yibao.domain.money import QTY_SCALE, apply_ratio, div_round_half_up, format_yuan, parse_quantity, parse_ratio, parse_yuan
from yibao.domain.policy import ITEM_CATEGORIES, VISIT_KINDS

# list_type (目录类别). The national code list was not available: these codes are a GUESS (docs/catalogue.md).
LIST_TYPES = {"101": ("西药", "western medicine"), "102": ("中成药", "Chinese patent medicine"),
              "103": ("中药饮片", "Chinese herbal pieces"), "201": ("医疗服务项目", "medical service item"),
              "301": ("医用耗材", "medical consumable")}
# chrgitm_lv (收费项目等级): 01 甲类, 02 乙类, 03 丙类 (the engine's A, B, C).
CHRGITM_LV = {"01": "A", "02": "B", "03": "C"}
CHRGITM_LV_ZH = {"01": "甲类", "02": "乙类", "03": "丙类"}
# The minimum institution level of a limited-use rule: an order over the levels (a pharmacy ranks with community).
LEVEL_RANK = {"pharmacy": 0, "community": 0, "level1": 1, "level2": 2, "level3": 3}
MIN_LEVELS = ("level1", "level2", "level3")
_KIND_ZH = {"outpatient": "门诊", "emergency": "急诊", "inpatient": "住院", "pharmacy": "药店购药"}

# The file's columns (docs/catalogue.md). The first ones are national field names (1312 目录信息, 1318 限价, 1319 先自付
# 比例); lmt_* beyond lmt_used_flag, rx_flag and fund_prop are OUR names for the limited-use rules (a guess at no
# national spelling). lmt_cnt_day came last, so files written before it still read the same; item_category (OUR
# name too: the item categories a policy's item_ratios may pay at their own ratio) came after it.
COLUMNS = ("hilist_code", "hilist_name", "list_type", "chrgitm_lv", "pric_uplmt_amt", "selfpay_prop", "fund_prop",
           "lmt_med_type", "lmt_medins_lv", "lmt_cnt", "lmt_age_min", "lmt_age_max", "hosp_appr_flag", "rx_flag",
           "begndate", "enddate", "lmt_cnt_day", "item_category")
REQUIRED = ("hilist_code", "hilist_name", "list_type", "chrgitm_lv", "begndate")

_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{2,29}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalogue entry (amounts in fen, ratios in ppm, quantities in 1/10000 units)."""

    hilist_code: str
    hilist_name: str
    list_type: str
    chrgitm_lv: str  # 01 | 02 | 03
    begndate: date
    enddate: date | None = None
    pric_uplmt_amt: int | None = None  # fen per unit
    selfpay_prop: int | None = None  # 乙类 only; None: the region's default (policy file catalogue.b_self_pay_ratio)
    fund_prop: int | None = None  # stored and shown; the engine does not use it yet (a later issue)
    lmt_med_type: tuple[str, ...] = ()  # visit kinds it is paid in; () any
    lmt_medins_lv: str | None = None  # the minimum institution level
    lmt_cnt: int | None = None  # the most paid per visit
    lmt_age_min: int | None = None
    lmt_age_max: int | None = None
    hosp_appr_flag: bool = False  # paid only with the hospital's approval on the line
    rx_flag: bool = False  # paid only on a prescription naming its prescriber
    lmt_cnt_day: int | None = None  # the most paid per day of the fee (a stay's daily dose, e.g. bed days)
    item_category: tuple[str, ...] = ()  # implant | imported | negotiated: what a policy's item_ratios may name

    @property
    def limited(self) -> bool:
        """限制使用: the entry carries a limited-use rule."""
        return bool(self.lmt_med_type or self.lmt_medins_lv or self.lmt_cnt is not None or self.lmt_cnt_day is not None
                    or self.lmt_age_min is not None
                    or self.lmt_age_max is not None or self.hosp_appr_flag)

    def valid_on(self, day: date) -> bool:
        return self.begndate <= day and (self.enddate is None or day <= self.enddate)

    def as_row(self) -> dict[str, object]:
        """The entry as stored (store column names are the field names)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["lmt_med_type"] = "|".join(self.lmt_med_type) or None
        row["item_category"] = "|".join(self.item_category) or None
        return row


def entry_from_row(row: dict[str, object]) -> Entry:
    """An entry from a stored row (the inverse of as_row)."""
    values = {f.name: row[f.name] for f in fields(Entry)}
    values["lmt_med_type"] = tuple(str(values["lmt_med_type"]).split("|")) if values["lmt_med_type"] else ()
    values["item_category"] = tuple(str(values["item_category"]).split("|")) if values["item_category"] else ()
    for k in ("pric_uplmt_amt", "selfpay_prop", "fund_prop", "lmt_cnt", "lmt_cnt_day", "lmt_age_min", "lmt_age_max"):
        values[k] = None if values[k] is None else int(values[k])  # type: ignore[arg-type]
    values["hosp_appr_flag"], values["rx_flag"] = bool(values["hosp_appr_flag"]), bool(values["rx_flag"])
    return Entry(**values)  # type: ignore[arg-type]


# ---- reading a file's rows -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong where: the file, its line number (the header is line 1 after any # lines) and the column."""

    file: str
    row: int
    field: str
    code: str
    zh: str
    en: str

    def describe(self) -> str:
        return f"{self.file}:{self.row}: {self.field}: {self.zh} / {self.en}"


class CatalogueFileError(InputError):
    """A file with errors: all of them, each naming file, row and field; nothing of the file is loaded."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        first = errors[0]
        more_zh = f"（另有 {len(errors) - 1} 处错误）" if len(errors) > 1 else ""
        more_en = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.file}:{first.row}.{first.field}", first.code, f"{first.file} 第 {first.row} 行 {first.field}：{first.zh}{more_zh}",
                         f"{first.file} row {first.row} {first.field}: {first.en}{more_en}")


def _date(text: str, field: str) -> date:
    try:
        if _DATE_RE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise InputError(field, "invalid_date", f"日期格式应为 YYYY-MM-DD，收到 {text!r}", f"must be a date YYYY-MM-DD, got {text!r}")


def _flag(text: str, field: str) -> bool:
    if text in ("", "0"):
        return False
    if text == "1":
        return True
    raise InputError(field, "invalid_flag", f"应为 0 或 1，收到 {text!r}", f"must be 0 or 1, got {text!r}")


def _int(text: str, field: str, lo: int, hi: int) -> int:
    if not text.isascii() or not text.isdigit() or not lo <= int(text) <= hi:
        raise InputError(field, "out_of_range", f"应为 {lo}–{hi} 的整数，收到 {text!r}", f"must be a whole number {lo}–{hi}, got {text!r}")
    return int(text)


def parse_entry(raw: dict[str, str]) -> Entry:
    """One row of a catalogue file (every value a string; "" is absent). Raises InputError naming the column."""
    v = {k: (raw.get(k) or "").strip() for k in COLUMNS}
    for k in REQUIRED:
        if not v[k]:
            raise InputError(k, "required", "必填", "is required")
    code = v["hilist_code"]
    if not _CODE_RE.match(code):
        raise InputError("hilist_code", "invalid_code", f"医保目录编码应为3–30位大写字母、数字，收到 {code!r}",
                         f"must be 3–30 capital letters and digits, got {code!r}")
    if len(v["hilist_name"]) > 200:
        raise InputError("hilist_name", "too_long", "名称最多200个字符", "at most 200 characters")
    if v["list_type"] not in LIST_TYPES:
        raise InputError("list_type", "invalid_choice", f"目录类别应为 {' | '.join(LIST_TYPES)}", f"must be one of {', '.join(LIST_TYPES)}")
    if v["chrgitm_lv"] not in CHRGITM_LV:
        raise InputError("chrgitm_lv", "invalid_choice", "收费项目等级应为 01（甲）| 02（乙）| 03（丙）", "must be 01 (A), 02 (B) or 03 (C)")
    cap = parse_yuan(v["pric_uplmt_amt"], "pric_uplmt_amt") if v["pric_uplmt_amt"] else None
    prop = parse_ratio(v["selfpay_prop"], "selfpay_prop") if v["selfpay_prop"] else None
    if prop is not None and v["chrgitm_lv"] != "02":
        raise InputError("selfpay_prop", "selfpay_prop_not_b", "只有乙类（02）项目有先行自付比例", "only class B (02) entries carry a self-pay ratio")
    fund = parse_ratio(v["fund_prop"], "fund_prop") if v["fund_prop"] else None
    kinds = tuple(k for k in v["lmt_med_type"].split("|") if k) if v["lmt_med_type"] else ()
    for k in kinds:
        if k not in VISIT_KINDS:
            raise InputError("lmt_med_type", "invalid_choice", f"就诊类型应为 {' | '.join(VISIT_KINDS)}，以 | 分隔",
                             f"visit kinds separated by |, each one of {', '.join(VISIT_KINDS)}")
    categories = tuple(k for k in v["item_category"].split("|") if k) if v["item_category"] else ()
    for k in categories:
        if k not in ITEM_CATEGORIES:
            raise InputError("item_category", "invalid_choice", f"项目类别应为 {' | '.join(ITEM_CATEGORIES)}，以 | 分隔",
                             f"item categories separated by |, each one of {', '.join(ITEM_CATEGORIES)}")
    level = v["lmt_medins_lv"] or None
    if level is not None and level not in MIN_LEVELS:
        raise InputError("lmt_medins_lv", "invalid_choice", f"最低机构级别应为 {' | '.join(MIN_LEVELS)}", f"must be one of {', '.join(MIN_LEVELS)}")
    cnt = parse_quantity(v["lmt_cnt"], "lmt_cnt") if v["lmt_cnt"] else None
    cnt_day = parse_quantity(v["lmt_cnt_day"], "lmt_cnt_day") if v["lmt_cnt_day"] else None
    age_min = _int(v["lmt_age_min"], "lmt_age_min", 0, 150) if v["lmt_age_min"] else None
    age_max = _int(v["lmt_age_max"], "lmt_age_max", 0, 150) if v["lmt_age_max"] else None
    if age_min is not None and age_max is not None and age_min > age_max:
        raise InputError("lmt_age_max", "age_range", "最大年龄不能小于最小年龄", "must not be below lmt_age_min")
    begin = _date(v["begndate"], "begndate")
    end = _date(v["enddate"], "enddate") if v["enddate"] else None
    if end is not None and end < begin:
        raise InputError("enddate", "end_before_begin", "结束日期早于开始日期", "is before begndate")
    return Entry(code, v["hilist_name"], v["list_type"], v["chrgitm_lv"], begin, end, cap, prop, fund, kinds, level, cnt, age_min, age_max,
                 _flag(v["hosp_appr_flag"], "hosp_appr_flag"), _flag(v["rx_flag"], "rx_flag"), cnt_day, tuple(dict.fromkeys(categories)))


def parse_rows(file: str, header: list[str], rows: list[tuple[int, dict[str, str]]], header_line: int = 1) -> list[Entry]:
    """Every row of a file (``rows``: line number, values); all errors at once, each naming file, row and field."""
    errors: list[RowError] = []
    unknown = [h for h in header if h not in COLUMNS]
    for h in unknown:
        errors.append(RowError(file, header_line, h or "(empty)", "unknown_column", f"未知列，可用：{', '.join(COLUMNS)}",
                               f"unknown column; known: {', '.join(COLUMNS)}"))
    for h in REQUIRED:
        if h not in header:
            errors.append(RowError(file, header_line, h, "missing_column", "缺少必需的列", "a required column is missing"))
    if errors:
        raise CatalogueFileError(errors)
    entries, seen = [], {}
    for line, raw in rows:
        if None in raw:  # csv puts a row's extra cells under the key None
            errors.append(RowError(file, line, "(row)", "extra_cells", "该行的单元格比表头多", "the row has more cells than the header"))
            continue
        try:
            e = parse_entry(raw)
        except InputError as exc:
            errors.append(RowError(file, line, exc.field, exc.code, exc.message_zh, exc.message_en))
            continue
        if e.hilist_code in seen:
            errors.append(RowError(file, line, "hilist_code", "duplicate_code", f"编码重复（第 {seen[e.hilist_code]} 行已有）",
                                   f"repeats the code of row {seen[e.hilist_code]}"))
            continue
        seen[e.hilist_code] = line
        entries.append(e)
    if not entries and not errors:
        errors.append(RowError(file, header_line, "(file)", "empty", "目录文件没有条目", "the catalogue file has no entries"))
    if errors:
        raise CatalogueFileError(errors)
    return entries


# ---- differences between two versions ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Diff:
    added: tuple[Entry, ...]
    removed: tuple[Entry, ...]
    changed: tuple[tuple[Entry, Entry, tuple[str, ...]], ...]  # old, new, the fields that differ


def diff(old: list[Entry], new: list[Entry]) -> Diff:
    a = {e.hilist_code: e for e in old}
    b = {e.hilist_code: e for e in new}
    changed = []
    for code in sorted(a.keys() & b.keys()):
        names = tuple(f.name for f in fields(Entry) if getattr(a[code], f.name) != getattr(b[code], f.name))
        if names:
            changed.append((a[code], b[code], names))
    return Diff(tuple(b[c] for c in sorted(b.keys() - a.keys())), tuple(a[c] for c in sorted(a.keys() - b.keys())), tuple(changed))


# ---- the decision a fee line gets ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LineFacts:
    """What the decision needs about the line and its visit."""

    day: date  # the fee's date (fee_ocur_time)
    visit_kind: str
    institution_level: str
    age: int  # the patient's age on that day
    quantity: int  # this line's, 1/10000 units
    quantity_before: int = 0  # the same code's paid lines already on the visit
    quantity_before_day: int = 0  # ... of them, those of the fee's day
    prescription: bool = False
    prescriber: str | None = None
    hosp_appr_flag: bool = False  # the hospital approved the limited use on this line


@dataclass(frozen=True, slots=True)
class Decision:
    """What the platform decided for a line: the engine's class (C / unlisted = own expense), the cap and ratio it
    prices with, the catalogue level (None: no entry), the limited-use flag and the reason in words."""

    line_class: str  # A | B | C | unlisted
    chrgitm_lv: str | None
    price_cap: int | None
    self_pay_ratio: int | None
    lmt_used_flag: str  # "1": the entry is limited-use (its rules were applied), else "0"
    code: str  # why: in_scope | class_c | not_in_catalogue | unmapped | not_yet_valid | expired | no_catalogue | lmt_*
    memo: str  # Chinese / English
    categories: tuple[str, ...] = ()  # the entry's item categories, on a line the fund pays (item_ratios of the policy)

    @property
    def own_expense(self) -> bool:
        return self.line_class in ("C", "unlisted")


def own_expense(code: str, zh: str, en: str, *, chrgitm_lv: str | None = None, limited: bool = False) -> Decision:
    return Decision("unlisted", chrgitm_lv, None, None, "1" if limited else "0", code, f"{zh} / {en}")


def unknown_code(hilist_code: str) -> Decision:
    return own_expense("not_in_catalogue", f"医保目录中无编码 {hilist_code}，全自费", f"{hilist_code} is not in the catalogue: own expense")


def unmapped(medins_list_codg: str) -> Decision:
    return own_expense("unmapped", f"本院项目 {medins_list_codg} 未与医保目录对照，全自费",
                       f"the institution's item {medins_list_codg} is not mapped to the catalogue: own expense")


def no_catalogue(region: str, day: date) -> Decision:
    return own_expense("no_catalogue", f"统筹区 {region} 在 {day} 没有生效的医保目录，全自费",
                       f"region {region} has no catalogue in force on {day}: own expense")


def _breach(e: Entry, f: LineFacts) -> tuple[str, str, str] | None:
    """The first limited-use rule the line breaks: (code, zh, en), or None."""
    if e.lmt_med_type and f.visit_kind not in e.lmt_med_type:
        zh = "、".join(_KIND_ZH[k] for k in e.lmt_med_type)
        return "lmt_med_type", f"限{zh}使用", f"limited to {', '.join(e.lmt_med_type)} visits"
    if e.lmt_medins_lv and LEVEL_RANK[f.institution_level] < LEVEL_RANK[e.lmt_medins_lv]:
        n = LEVEL_RANK[e.lmt_medins_lv]
        return "lmt_medins_lv", f"限{'一二三'[n - 1]}级及以上医疗机构使用", f"limited to level-{n} institutions and above"
    if e.lmt_age_min is not None and f.age < e.lmt_age_min:
        return "lmt_age", f"限{e.lmt_age_min}岁及以上使用", f"limited to patients aged {e.lmt_age_min} and over"
    if e.lmt_age_max is not None and f.age > e.lmt_age_max:
        return "lmt_age", f"限{e.lmt_age_max}岁及以下使用", f"limited to patients aged {e.lmt_age_max} and under"
    if e.lmt_cnt is not None and f.quantity_before + f.quantity > e.lmt_cnt:
        most = _qty(e.lmt_cnt)
        return "lmt_cnt", f"每次就诊限{most}，本行超出", f"at most {most} per visit; this line goes beyond it"
    if e.lmt_cnt_day is not None and f.quantity_before_day + f.quantity > e.lmt_cnt_day:
        most = _qty(e.lmt_cnt_day)
        return "lmt_cnt_day", f"每日限{most}，本行超出", f"at most {most} per day; this line goes beyond it"
    if e.hosp_appr_flag and not f.hosp_appr_flag:
        return "hosp_appr", "限医院审批后使用，本行未经审批", "needs the hospital's approval, which the line does not carry"
    return None


def _qty(units: int) -> str:
    whole, frac = divmod(units, QTY_SCALE)
    return f"{whole}.{frac:04d}".rstrip("0").rstrip(".")


def decide(entry: Entry, facts: LineFacts, default_b_ratio: int) -> Decision:
    """The line's class, cap and ratio from ``entry``, or own expense with the reason (the entry already chosen as the one
    in force for the fee's date and region; its own begndate/enddate are checked here)."""
    e, lv = entry, entry.chrgitm_lv
    if facts.day < e.begndate:
        return own_expense("not_yet_valid", f"目录项目 {e.hilist_code} 自 {e.begndate} 起生效，费用发生日 {facts.day} 尚未生效，全自费",
                           f"{e.hilist_code} is valid from {e.begndate}, after the fee's date {facts.day}: own expense", chrgitm_lv=lv)
    if e.enddate is not None and facts.day > e.enddate:
        return own_expense("expired", f"目录项目 {e.hilist_code} 已于 {e.enddate} 失效，全自费",
                           f"{e.hilist_code} ended on {e.enddate}, before the fee's date {facts.day}: own expense", chrgitm_lv=lv)
    if lv == "03":
        return Decision("C", lv, None, None, "0", "class_c", "丙类项目，全自费 / class C: own expense")
    if e.rx_flag and not (facts.prescription and facts.prescriber):
        return own_expense("rx_required", "处方药品须凭医师处方（合法处方是医保支付的前提），本行无处方，全自费",
                           "a prescription item without a prescription naming its prescriber: own expense", chrgitm_lv=lv, limited=e.limited)
    broken = _breach(e, facts)
    if broken is not None:
        code, zh, en = broken
        return own_expense(code, f"{zh}，全自费", f"{en}: own expense", chrgitm_lv=lv, limited=True)
    ratio = (e.selfpay_prop if e.selfpay_prop is not None else default_b_ratio) if lv == "02" else None
    words = [f"{CHRGITM_LV_ZH[lv]}", f"class {CHRGITM_LV[lv]}"]
    if e.pric_uplmt_amt is not None:
        words[0] += f"，限价{format_yuan(e.pric_uplmt_amt)}元"
        words[1] += f", price cap {format_yuan(e.pric_uplmt_amt)}"
    if e.limited:
        words[0] += "，符合限定支付范围"
        words[1] += ", within its limited-use rules"
    return Decision(CHRGITM_LV[lv], lv, e.pric_uplmt_amt, ratio, "1" if e.limited else "0", "in_scope", f"{words[0]} / {words[1]}",
                    e.item_category)


# ---- the national per-line result -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LineSplit:
    """total = own_expense + over_limit + pre_self_pay + in_scope (before any cross-region extra)."""

    total: int
    own_expense: int  # fulamt_ownpay_amt
    over_limit: int  # overlmt_amt
    pre_self_pay: int  # preselfpay_amt
    in_scope: int  # inscp_scp_amt


def split_line(line_class: str, unit_price: int, quantity: int, price_cap: int | None, self_pay_ratio: int | None,
               default_b_ratio: int) -> LineSplit:
    """One line's split as the engine's step 1 makes it (the engine calls this too): the cap is applied to the unit
    price and rounded once, the over-limit part is what remains; a class-B line pays its ratio of what is allowed first."""
    total = div_round_half_up(unit_price * quantity, QTY_SCALE)
    if line_class in ("C", "unlisted"):
        return LineSplit(total, total, 0, 0, 0)
    allowed, over = total, 0
    if price_cap is not None and unit_price > price_cap:
        allowed = div_round_half_up(price_cap * quantity, QTY_SCALE)
        over = total - allowed
    pre = 0
    if line_class == "B":
        pre = apply_ratio(allowed, default_b_ratio if self_pay_ratio is None else self_pay_ratio)
    return LineSplit(total, 0, over, pre, total - over - pre)


__all__ = ["CHRGITM_LV", "COLUMNS", "LIST_TYPES", "CatalogueFileError", "Decision", "Diff", "Entry",
           "LineFacts", "LineSplit", "RowError", "decide", "diff", "entry_from_row", "no_catalogue", "own_expense", "parse_entry",
           "parse_rows", "split_line", "unknown_code", "unmapped"]
