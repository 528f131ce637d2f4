"""/app/payments — 支付记录: the holder's settlements and payments, newest first, each with its refunds and the
re-settlement a refund of some items made; and one record's detail, where every fen is explained (the split by fund
layer, personal account and cash adds up to the total; refunds with a minus sign and their date; the hospital by its
name).

Read only, through one service query (`services/payments/history.py`). `/app/payments/{payment_id}` (one payment
order as it stands, for 待支付) stays in holder.py; a record here is a settlement, paid at the counter or not.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from yibao.services.payments import history
from yibao.services.people import families
from yibao.web import render
from yibao.web.auth import Who, holder, platform

router = APIRouter(include_in_schema=False)
AREA = "app"


def _page(request: Request, who: Who, template: str, **context: Any) -> HTMLResponse:
    return render.render(request, template, area=AREA, csrf_cookie=who.cookie, who=who, nav="payments", **context)


def _names(conn: Connection, request: Request, records: list[history.Record], who: Who) -> dict[str, str]:
    """The names of the patients and of the accounts' owners as the holder sees them: their own family (a child, a
    relative linked either way) in full, anyone else masked (`families.display_name`); the holder is "本人" in the
    template."""
    keyring = platform(request).keyring
    out: dict[str, str] = {}
    for r in records:
        for person in (r.patient_id, r.account_owner):
            if person and person != who.principal and person not in out:
                out[person] = families.display_name(conn, keyring, reader_id=who.principal, person_id=person)
    return out


def _account_source(conn: Connection, rec: history.Record) -> str | None:
    """Why someone else's personal account paid the patient's bill: "guardian" (a child's guardian) or "family"
    (家庭共济); None when the patient's own account paid (or none did)."""
    if not rec.account or not rec.account_owner or rec.account_owner == rec.patient_id:
        return None
    relation = families.relation_between(conn, rec.account_owner, rec.patient_id)
    return "family" if relation in families.MUTUAL_AID else "guardian"


@router.get("/app/payments")
async def payments_page(request: Request) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        records = history.for_holder(conn, who.principal)
        return {"records": records, "names": _names(conn, request, records, who)}

    return _page(request, who, "app/payments.html", **(await p.run(read, write=False)))


@router.get("/app/payments/settlements/{setl_id}")
async def payment_record(request: Request, setl_id: str = Path(min_length=1, max_length=30)) -> HTMLResponse:
    who = await holder(request)
    p = platform(request)

    def read(conn: Connection) -> dict[str, Any]:
        rec = history.record(conn, who.principal, setl_id)
        return {"rec": rec, "names": _names(conn, request, [rec], who), "account_source": _account_source(conn, rec)}

    return _page(request, who, "app/payment_record.html", **(await p.run(read, write=False)))
