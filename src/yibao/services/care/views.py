"""JSON views of service objects; PII only masked."""

from __future__ import annotations

from typing import Any

from yibao.formats.timefmt import iso_utc
from yibao.services.care.visits import Visit


def visit_view(v: Visit) -> dict[str, Any]:
    return {"mdtrt_id": v.id, "region": v.region, "insured_region": v.insured_region, "psn_no": v.person_id,
            "fixmedins_code": v.institution_id, "kind": v.kind, "status": v.status, "visit_date": v.visit_date.isoformat(),
            "admission_number": v.admission_number, "filing": v.filing,
            "admitted_at": iso_utc(v.admitted_at),
            "discharged_at": iso_utc(v.discharged_at)}


def _qty(units: int) -> str:
    whole, frac = divmod(units, 10_000)
    return f"{whole}.{frac:04d}".rstrip("0").rstrip(".")


def line_view(row: dict[str, Any]) -> dict[str, Any]:
    """A fee line with what the platform decided for it, in the national per-line result's fields (2204 result: amounts in
    yuan strings, ratios "0.1000"). The split is the engine's step 1 (domain.catalogue.split_line), before any
    cross-region extra, which only the settlement adds."""
    from yibao.domain.catalogue import split_line
    from yibao.domain.money import format_yuan, ratio_to_text

    cap, ratio, cls = row["price_cap"], row["self_pay_ratio"], row["line_class"]
    view = {"feedetl_sn": row["feedetl_sn"], "code": row["code"], "name": row["name"], "class": cls,
            "unit_price": format_yuan(row["unit_price"]), "quantity": _qty(row["quantity"]),
            "price_cap": format_yuan(cap) if cap is not None else None,
            "self_pay_ratio": ratio_to_text(ratio) if ratio is not None else None,
            "prescription": row["prescription"], "prescriber": row["prescriber"], "status": row["status"],
            "med_list_codg": row.get("med_list_codg"), "medins_list_codg": row.get("medins_list_codg"),
            "fee_ocur_time": iso_utc(row.get("fee_ocur_time")), "catalogue_version": row.get("catalogue_version"),
            "cnt": _qty(row["quantity"]), "pric": format_yuan(row["unit_price"]),
            "pric_uplmt_amt": format_yuan(cap) if cap is not None else None,
            "selfpay_prop": ratio_to_text(ratio) if ratio is not None else None,
            "chrgitm_lv": row.get("chrgitm_lv"), "lmt_used_flag": row.get("lmt_used_flag"), "memo": row.get("memo")}
    if cls == "B" and ratio is None:  # a line uploaded before the catalogue (0012): its ratio was the region's default
        view.update(det_item_fee_sumamt=None, fulamt_ownpay_amt=None, overlmt_amt=None, preselfpay_amt=None, inscp_scp_amt=None)
        return view
    sp = split_line(cls, int(row["unit_price"]), int(row["quantity"]), None if cap is None else int(cap), ratio, 0)
    view.update(det_item_fee_sumamt=format_yuan(sp.total), fulamt_ownpay_amt=format_yuan(sp.own_expense),
                overlmt_amt=format_yuan(sp.over_limit), preselfpay_amt=format_yuan(sp.pre_self_pay), inscp_scp_amt=format_yuan(sp.in_scope))
    return view
