"""JSON views of service objects; PII only masked."""

from __future__ import annotations

from typing import Any

from yibao.services.visits import Visit


def visit_view(v: Visit) -> dict[str, Any]:
    return {"mdtrt_id": v.id, "region": v.region, "insured_region": v.insured_region, "psn_no": v.person_id,
            "fixmedins_code": v.institution_id, "kind": v.kind, "status": v.status, "visit_date": v.visit_date.isoformat(),
            "admission_number": v.admission_number, "filing": v.filing,
            "admitted_at": v.admitted_at.isoformat() if v.admitted_at else None,
            "discharged_at": v.discharged_at.isoformat() if v.discharged_at else None}
