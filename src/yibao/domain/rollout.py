"""Rollout targets of the convenient-payment system (seed 004, docs/governance.md "Rollout"): at least two pilot
cities per province live in 2026, every pooling region of a province live in 2027, every eligible designated
institution live in 2028 — per payment mode (face, one-code, mobile, credit). Pure: the counts come from the
platform's records (services/agency/rollout.py); here they become progress and the gap to each date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from yibao.domain.pilot import MODES, mode_of_method

PILOT_CITIES_PER_PROVINCE = 2  # 首批推进的城市原则上每个省份不少于2个
# (key, the last day, zh, en): each target is judged on the day after its year ends.
TARGETS = (
    ("pilot_cities", date(2026, 12, 31), "首批试点城市落地见效（每省不少于2个）", "first pilot cities live (at least 2 per province)"),
    ("regions", date(2027, 12, 31), "省内统筹地区全覆盖", "every pooling region of the province live"),
    ("institutions", date(2028, 12, 31), "省内符合条件的定点医疗机构全面推开", "every eligible designated institution live"),
)
DEADLINES = {key: day for key, day, _, _ in TARGETS}

# GB/T 2260 province-level codes: the first two digits of a 6-digit region code.
PROVINCES = {
    "11": ("北京市", "Beijing"), "12": ("天津市", "Tianjin"), "13": ("河北省", "Hebei"), "14": ("山西省", "Shanxi"),
    "15": ("内蒙古自治区", "Inner Mongolia"), "21": ("辽宁省", "Liaoning"), "22": ("吉林省", "Jilin"), "23": ("黑龙江省", "Heilongjiang"),
    "31": ("上海市", "Shanghai"), "32": ("江苏省", "Jiangsu"), "33": ("浙江省", "Zhejiang"), "34": ("安徽省", "Anhui"),
    "35": ("福建省", "Fujian"), "36": ("江西省", "Jiangxi"), "37": ("山东省", "Shandong"), "41": ("河南省", "Henan"),
    "42": ("湖北省", "Hubei"), "43": ("湖南省", "Hunan"), "44": ("广东省", "Guangdong"), "45": ("广西壮族自治区", "Guangxi"),
    "46": ("海南省", "Hainan"), "50": ("重庆市", "Chongqing"), "51": ("四川省", "Sichuan"), "52": ("贵州省", "Guizhou"),
    "53": ("云南省", "Yunnan"), "54": ("西藏自治区", "Tibet"), "61": ("陕西省", "Shaanxi"), "62": ("甘肃省", "Gansu"),
    "63": ("青海省", "Qinghai"), "64": ("宁夏回族自治区", "Ningxia"), "65": ("新疆维吾尔自治区", "Xinjiang"),
}


def province_of(region: str) -> str:
    return region[:2]


def province_name(province: str) -> tuple[str, str]:
    return PROVINCES.get(province, (province, province))


def modes_of(method: str, cash_source: str | None) -> tuple[str, ...]:
    """The rollout modes a completed payment order shows: its method (a wallet's medical-insurance order, `medins`,
    is a mobile payment), and credit when the cash came from the payer's credit line (a credit payment rides on a
    one-code or mobile order: it counts in both)."""
    mode = mode_of_method(method)
    modes = [mode] if mode in MODES else []
    if cash_source == "credit":
        modes.append("credit")
    return tuple(modes)


@dataclass(frozen=True)
class Progress:
    key: str
    deadline: date
    required: int  # how many the target asks for
    done: int  # how many count towards it
    gap: int  # how many more
    days_left: int  # from today to the deadline (negative: past)
    met: bool
    overdue: bool  # past the deadline and not met

    @property
    def percent(self) -> int:
        return 100 if self.required == 0 else min(100, self.done * 100 // self.required)


def progress(key: str, done: int, required: int, today: date) -> Progress:
    """A target with nothing to count (a province with no eligible institution yet) is not met: there is nothing live."""
    deadline = DEADLINES[key]
    gap = max(0, required - done)
    met = required > 0 and gap == 0
    days_left = (deadline - today).days
    return Progress(key, deadline, required, min(done, required) if required else done, gap, days_left, met, days_left < 0 and not met)


def pilot_cities_required(regions_in_province: int) -> int:
    """Two per province — or every region where a province has fewer (the demo's provinces have one region each)."""
    return min(PILOT_CITIES_PER_PROVINCE, regions_in_province)
