"""JSON views of catalogue entries and mappings: national field names, amounts as yuan strings, ratios as "0.1000"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yibao.domain.catalogue import Entry
from yibao.domain.money import format_yuan, ratio_to_text
from yibao.formats.timefmt import iso_utc


def _qty(units: int) -> str:
    whole, frac = divmod(units, 10_000)
    return f"{whole}.{frac:04d}".rstrip("0").rstrip(".")


def entry_view(e: Entry, updt_time: datetime | None = None) -> dict[str, Any]:
    return {"hilist_code": e.hilist_code, "hilist_name": e.hilist_name, "list_type": e.list_type, "chrgitm_lv": e.chrgitm_lv,
            "pric_uplmt_amt": None if e.pric_uplmt_amt is None else format_yuan(e.pric_uplmt_amt),
            "selfpay_prop": None if e.selfpay_prop is None else ratio_to_text(e.selfpay_prop),
            "fund_prop": None if e.fund_prop is None else ratio_to_text(e.fund_prop),
            "lmt_used_flag": "1" if e.limited else "0", "lmt_med_type": list(e.lmt_med_type), "lmt_medins_lv": e.lmt_medins_lv,
            "lmt_cnt": None if e.lmt_cnt is None else _qty(e.lmt_cnt),
            "lmt_cnt_day": None if e.lmt_cnt_day is None else _qty(e.lmt_cnt_day), "lmt_age_min": e.lmt_age_min, "lmt_age_max": e.lmt_age_max,
            "hosp_appr_flag": "1" if e.hosp_appr_flag else "0", "rx_flag": "1" if e.rx_flag else "0",
            "item_category": list(e.item_category),
            "begndate": e.begndate.isoformat(), "enddate": e.enddate.isoformat() if e.enddate else None,
            "updt_time": iso_utc(updt_time) if updt_time else None}


def mapping_view(r: Any) -> dict[str, Any]:
    return {"fixmedins_code": r.institution_id, "medins_list_codg": r.medins_list_codg, "medins_list_name": r.medins_list_name,
            "med_list_codg": r.hilist_code, "updated_at": iso_utc(r.updated_at)}
