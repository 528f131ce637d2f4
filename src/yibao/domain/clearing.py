"""Monthly clearing (清算, 3203–3205A): pure rules — the month, its dates, the application's codes, the payable.

Facts: research/books.md §1 (3203/3204/3205A) and §2 (institutions declare by the 10th of the next month; the fund pays
within 20 working days of that deadline; a quality-guarantee deposit of at most 5 %). docs/clearing.md says what is a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from yibao.domain.errors import Conflict, InputError
from yibao.domain.money import apply_ratio, format_yuan

CHINA = timezone(timedelta(hours=8))  # a month is a Beijing-time month, as the national interface dates are

# clr_type (清算类别) → the visit kinds whose settlements it clears. [guess] 11 门诊 takes outpatient and emergency visits,
# 21 住院 inpatient stays, 41 药店 a pharmacy's sales; 99 其他 is not offered (nothing on the platform is "other").
CLR_TYPES: dict[str, tuple[str, ...]] = {"11": ("outpatient", "emergency"), "21": ("inpatient",), "41": ("pharmacy",)}
# clr_way (清算方式) [guess]: 1 按项目 (by item) is the only way the platform computes; the code is recorded, not interpreted.
CLR_WAYS = ("1", "2", "3", "4", "5", "6", "9")

# clr_stas (3205A): our status → the national code. A withdrawn application (3204) has no national code: its query says so.
APPLIED, ACCEPTED, CLEARED, WITHDRAWN = "applied", "accepted", "cleared", "withdrawn"
CLR_STAS = {APPLIED: "10", ACCEPTED: "20", CLEARED: "50"}

DECLARE_BY_DAY = 10  # the 10th of the next month (NHSA 即时结算 notice, 2025)
PAY_WITHIN_WORKING_DAYS = 20
MAX_DEPOSIT_RATIO = 50_000  # 5 % in parts per million: 质量保证金 ≤ 5 % (fund-payment measures arts. 25–27)


@dataclass(frozen=True)
class ClearingRules:
    """A region's clearing policy (its policy file's `clearing:`). [guess] the deposit is 5 % of the fund part."""

    quality_deposit_ratio: int = MAX_DEPOSIT_RATIO


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def setlym(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        """The month's first instant (Beijing), as an aware datetime."""
        return datetime(self.year, self.month, 1, tzinfo=CHINA)

    @property
    def end(self) -> datetime:
        """The next month's first instant (Beijing): the month is [start, end)."""
        return datetime(self.year + (self.month == 12), self.month % 12 + 1, 1, tzinfo=CHINA)

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    @property
    def declare_by(self) -> date:
        """The declaration deadline: the 10th of the next month."""
        return self.end.date().replace(day=DECLARE_BY_DAY)

    @property
    def pay_by(self) -> date:
        """20 working days after the declaration deadline. [guess] Working days are Monday to Friday: public holidays and
        the weekends made working days in their place (调休) are not known to the platform."""
        day, left = self.declare_by, PAY_WITHIN_WORKING_DAYS
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day


_SETLYM = re.compile(r"^([0-9]{4})-?([0-9]{2})$")


def parse_month(value: object, field: str = "setlym") -> Month:
    """"202611" (setlym, yyyyMM) or "2026-11" (the CLI's --month)."""
    m = _SETLYM.match(value) if isinstance(value, str) else None
    if m is None or not (1 <= int(m.group(2)) <= 12) or not (2000 <= int(m.group(1)) <= 2100):
        raise InputError(field, "invalid_month", "清算年月应为 yyyyMM（如 202611）或 yyyy-MM（如 2026-11）",
                         "must be a month as yyyyMM (e.g. 202611) or yyyy-MM (e.g. 2026-11)")
    return Month(int(m.group(1)), int(m.group(2)))


def check_clr_type(value: object, field: str = "clr_type") -> str:
    if not isinstance(value, str) or value not in CLR_TYPES:
        raise InputError(field, "invalid_choice", "清算类别应为 11（门诊）、21（住院）或 41（药店）", "must be 11 (outpatient), 21 (inpatient) or 41 (pharmacy)")
    return value


def check_clr_way(value: object, field: str = "clr_way") -> str:
    if not isinstance(value, str) or value not in CLR_WAYS:
        raise InputError(field, "invalid_choice", f"清算方式应为 {'、'.join(CLR_WAYS)} 之一", f"must be one of {', '.join(CLR_WAYS)}")
    return value


def check_month_ended(month: Month, now: datetime) -> None:
    """A month is applied for once it has ended (Beijing time): its figures no longer move."""
    if now < month.end:
        raise Conflict("setlym", "month_not_ended", f"{month.setlym} 尚未结束，月末之后才能申请清算",
                       f"{month.setlym} has not ended yet: apply after the month's end")


def check_dates(month: Month, begndate: date, enddate: date) -> None:
    """`begndate`/`enddate` must be the month's own days ([guess] the platform clears whole months only)."""
    if (begndate, enddate) != (month.first_day, month.last_day):
        raise InputError("begndate", "not_the_whole_month", f"清算起止日期应为 {month.first_day} 至 {month.last_day}（整月清算）",
                         f"begndate and enddate must be {month.first_day} and {month.last_day}: a whole month is cleared")


def is_late(month: Month, now: datetime) -> bool:
    """Declared after the 10th of the next month (Beijing). [guess] A late application is accepted and marked late,
    not refused: refusing would leave the institution unpaid for a month it treated patients in; the agency decides."""
    return now.astimezone(CHINA).date() > month.declare_by


@dataclass(frozen=True)
class Payable:
    """What the fund pays an institution for a month (fen): the platform's figures, never the application's."""

    fund: int  # fund paid for the month's settlements, net of cancels, reversals and refunds
    account: int  # personal accounts paid, likewise
    deposit: int  # the quality-guarantee deposit held back (of the fund part), released at the annual clearing
    recoveries: int  # backstop-liability charges against the institution confirmed that month (already out of the receivable)
    payable: int  # fund + account − deposit − recoveries: what the bank is told to pay

    @property
    def gross(self) -> int:
        return self.fund + self.account


def payable(*, fund: int, account: int, recoveries: int, rules: ClearingRules) -> Payable:
    deposit = apply_ratio(max(fund, 0), rules.quality_deposit_ratio)
    amount = fund + account - deposit - recoveries
    if amount < 0:
        raise Conflict("recoveries", "recoveries_exceed_payable",
                       f"本月兜底责任追回 {format_yuan(recoveries)} 元超过应付 {format_yuan(fund + account - deposit)} 元，请人工处理",
                       f"the month's recoveries ({format_yuan(recoveries)}) exceed what is payable ({format_yuan(fund + account - deposit)}): "
                       "an operator settles the difference")
    return Payable(fund, account, deposit, recoveries, amount)
