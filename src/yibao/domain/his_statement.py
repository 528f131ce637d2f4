"""A hospital's reconciliation with the platform (national 3201 对总账 / 3202 对明细账, docs/reconciliation-his.md):
the rows each side holds for a period and what their comparison says. Pure: amounts in fen, no I/O.

A settlement is a **forward row** on the day it was settled (``refd_setl_flag`` "0"); its cancellation (2208/2305) is
a **reverse row** on the day it was cancelled ("1", amounts negative), so a period's totals are net and a cancellation
in a later period does not rewrite an earlier one (research/policy_rules.md: "a refund shows as a forward row plus a
reverse row"). A settlement reversed by 2601 (冲正) never happened: it is neither [guess: the HIS undoes its own record
of it too]."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from yibao.domain.errors import InputError

FORWARD = "0"
REVERSE = "1"
BALANCED = "0"  # stmt_rslt: 0 平
UNBALANCED = "1"  # 1 不平


MAX_DAYS = 93  # [guess] a quarter at most: reconciliation is daily or monthly in practice (research/books.md §2)


@dataclass(frozen=True)
class Period:
    """What one 3201/3202 covers: one institution's settlements of patients cleared by ``setl_optins`` (the insured
    region), settled in [begin, end] (Beijing days), of the given insurance types and visit kinds (None: all)."""
    setl_optins: str
    begin: date
    end: date
    insurance_types: tuple[str, ...] | None = None
    visit_kinds: tuple[str, ...] | None = None


def check_period(begin: date, end: date, field: str) -> None:
    if end < begin:
        raise InputError(f"{field}.stmt_enddate", "end_before_begin", "对账结束日期不能早于开始日期", "must not be before stmt_begndate")
    if (end - begin).days + 1 > MAX_DAYS:
        raise InputError(f"{field}.stmt_enddate", "period_too_long", f"对账期间最长 {MAX_DAYS} 天", f"a period covers at most {MAX_DAYS} days")


@dataclass(frozen=True)
class Row:
    setl_id: str
    mdtrt_id: str
    psn_no: str
    medfee: int  # medfee_sumamt, fen; negative on a reverse row
    fund: int  # fund_pay_sumamt
    acct: int  # acct_pay
    refd_setl_flag: str  # "0" forward, "1" reverse
    cash: int = 0  # cash_payamt (3202's declared totals); not a column of the detail file
    msgid: str = ""  # the settle message id (the result file's msgid), the platform's side only

    @property
    def key(self) -> tuple[str, str]:
        return (self.setl_id, self.refd_setl_flag)


@dataclass(frozen=True)
class Totals:
    medfee: int
    fund: int
    acct: int
    cash: int
    count: int  # fixmedins_setl_cnt: forward rows less reverse rows

    @staticmethod
    def of(rows: Iterable[Row]) -> Totals:
        medfee = fund = acct = cash = count = 0
        for r in rows:
            medfee += r.medfee
            fund += r.fund
            acct += r.acct
            cash += r.cash
            count += 1 if r.refd_setl_flag == FORWARD else -1
        return Totals(medfee, fund, acct, cash, count)


# The fields 3201 compares, their national names and what a person reads (Chinese, English).
TOTAL_FIELDS = (("medfee", "medfee_sumamt", "医疗费总额", "medical fees"),
                ("fund", "fund_pay_sumamt", "基金支付总额", "fund paid"),
                ("acct", "acct_pay", "个人账户支付总额", "personal account paid"),
                ("count", "fixmedins_setl_cnt", "结算笔数", "settlements"))


@dataclass(frozen=True)
class TotalsDifference:
    field: str  # the national name
    hospital: int
    platform: int
    zh: str
    en: str


def compare_totals(hospital: Totals, platform: Totals) -> list[TotalsDifference]:
    return [TotalsDifference(name, getattr(hospital, attr), getattr(platform, attr), zh, en)
            for attr, name, zh, en in TOTAL_FIELDS if getattr(hospital, attr) != getattr(platform, attr)]


# What a result row's memo says (the national result file's per-row codes were not found [?]: these are yibao's).
MEMO = {"balanced": ("一致", "agrees"),
        "missing_at_platform": ("医保无此结算（医院单边账）", "the platform has no such settlement (hospital only)"),
        "missing_at_hospital": ("医院未上传此结算（医保单边账）", "the hospital did not send this settlement (platform only)"),
        "differs": ("金额或就诊信息不符", "amounts or visit details differ"),
        "duplicate": ("医院重复上传", "sent twice by the hospital")}


@dataclass(frozen=True)
class ResultRow:
    row: Row  # the platform's row where there is one, else the hospital's
    result: str  # BALANCED | UNBALANCED
    reason: str  # a key of MEMO
    fields: tuple[str, ...] = ()  # differs: the national names that differ

    @property
    def memo(self) -> str:
        zh, en = MEMO[self.reason]
        text = f"{zh} {en}"
        return f"{text}: {', '.join(self.fields)}" if self.fields else text


def _differing(h: Row, p: Row) -> tuple[str, ...]:
    out = [name for attr, name in (("medfee", "medfee_sumamt"), ("fund", "fund_pay_sumamt"), ("acct", "acct_pay"))
           if getattr(h, attr) != getattr(p, attr)]
    out += [name for name in ("mdtrt_id", "psn_no") if getattr(h, name) != getattr(p, name)]
    return tuple(out)


def compare_rows(hospital: Iterable[Row], platform: Iterable[Row]) -> list[ResultRow]:
    """Every row of either side once, in the hospital's order then the platform's rows it lacked: matched by
    (setl_id, refd_setl_flag); a matched pair balances when the amounts, the visit and the person agree."""
    mine = {r.key: r for r in platform}
    seen: set[tuple[str, str]] = set()
    out: list[ResultRow] = []
    for h in hospital:
        if h.key in seen:
            out.append(ResultRow(h, UNBALANCED, "duplicate"))
            continue
        seen.add(h.key)
        p = mine.get(h.key)
        if p is None:
            out.append(ResultRow(h, UNBALANCED, "missing_at_platform"))
            continue
        differ = _differing(h, p)
        out.append(ResultRow(p, UNBALANCED, "differs", differ) if differ else ResultRow(p, BALANCED, "balanced"))
    out += [ResultRow(p, UNBALANCED, "missing_at_hospital") for key, p in mine.items() if key not in seen]
    return out
