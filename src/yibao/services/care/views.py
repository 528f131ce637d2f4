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
    from yibao.domain.money import format_yuan, ratio_to_text

    return {"feedetl_sn": row["feedetl_sn"], "code": row["code"], "name": row["name"], "class": row["line_class"],
            "unit_price": format_yuan(row["unit_price"]), "quantity": _qty(row["quantity"]),
            "price_cap": format_yuan(row["price_cap"]) if row["price_cap"] is not None else None,
            "self_pay_ratio": ratio_to_text(row["self_pay_ratio"]) if row["self_pay_ratio"] is not None else None,
            "prescription": row["prescription"], "prescriber": row["prescriber"], "status": row["status"]}
