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
from yibao.services.people import persons as people
from yibao.web import render
from yibao.web.auth import Who, holder, platform

router = APIRouter(include_in_schema=False)
AREA = "app"


def _page(request: Request, who: Who, template: str, **context: Any) -> HTMLResponse:
    return render.render(request, template, area=AREA, csrf_cookie=who.cookie, who=who, nav="payments", **context)


def _names(conn: Connection, request: Request, records: list[history.Record], who: Who) -> dict[str, str]:
    """The patients' names as the app shows them (masked); the holder is "本人" in the template."""
    keyring = platform(request).keyring
    out: dict[str, str] = {}
    for r in records:
        if r.patient_id != who.principal and r.patient_id not in out:
            out[r.patient_id] = people.masked_view(people.require(conn, r.patient_id), keyring)["psn_name"]
    return out


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
        return {"rec": rec, "names": _names(conn, request, [rec], who)}

    return _page(request, who, "app/payment_record.html", **(await p.run(read, write=False)))
