"""/cashier, the counter's other pieces: whose personal account may pay a visit (own, a guardian's, a relative's
under 家庭共济 — each named), an inpatient stay's discharge (办理出院 / 撤销出院, then 出院结算 on the visit page), and
the cashier's shift summary (交班汇总, services/books/shifts.py).

The same service calls as the HIS API: the account choice is the settlement's AccountRequest (payer self | guardian |
family with payer_person_id, as `account` in POST /api/v1/his/visits/{id}/presettle), the discharge is
visits.discharge (POST /api/v1/his/visits/{id}/discharge, 2402), its undo visits.undo_discharge (2405)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import InputError
from yibao.domain.money import format_yuan, parse_yuan
from yibao.services.access import sessions
from yibao.services.books import accounts, shifts, volumes
from yibao.services.care import visits
from yibao.services.people import families
from yibao.web import forms, i18n, links, render
from yibao.web.auth import act, cashier, platform

router = APIRouter(include_in_schema=False)
AREA = "cashier"


# ---- whose account pays --------------------------------------------------------------------------

def account_options(conn: Connection, keyring: Keyring, patient_id: str) -> list[dict[str, Any]]:
    """The account select's options: the patient's own account (when they have one), each guardian's and each
    relative's who shares theirs (families.account_payers), and none. ``value`` is what the select sends."""
    out: list[dict[str, Any]] = []
    if accounts.summary(conn, patient_id) is not None:
        out.append({"value": "self", "choice": "self", "payer": None, "name": None})
    for p in families.account_payers(conn, keyring, patient_id):
        out.append({"value": f"{p['payer']}:{p['psn_no']}", "choice": p["payer"], "payer": p["psn_no"], "name": p["name"],
                    "relation": p["relation"]})
    out.append({"value": "none", "choice": "none", "payer": None, "name": None})
    return out


def parse_choice(choice: str, payer_psn_no: str | None) -> tuple[str, str | None]:
    """``guardian:<psn_no>`` / ``family:<psn_no>`` as the select sends them, or the choice with its payer apart."""
    kind, sep, who = choice.partition(":")
    if sep and kind in ("guardian", "family"):
        return kind, who or None
    return choice, (None if choice in ("self", "none") else payer_psn_no)


def default_choice(options: list[dict[str, Any]]) -> tuple[str, str | None]:
    """The account offered first: the patient's own; else (a child, a tier-2 employee) the first account shared with
    them — a guardian's before a relative's, as account_payers lists them; else none."""
    first = options[0]
    return first["choice"], first["payer"]


def balance_before(split: dict[str, Any] | None, needs_presence: Any, choice: str) -> str | None:
    """The paying account's balance before this visit, as the pre-settlement read it (only once its owner is present)."""
    if not split or needs_presence or choice == "none" or not split.get("balc"):
        return None
    return format_yuan(parse_yuan(split["balc"]) + parse_yuan(split["acct_pay"]))


# ---- an inpatient stay: discharge, undo ------------------------------------------------------------

@router.post("/cashier/visits/{visit_id}/discharge")
async def discharge(request: Request, visit_id: str) -> Response:
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: visits.discharge(c, p.now(), institution=who.institution, visit_id=visit_id),
                     back=links.visit_back(visit_id, form), ok=("已办理出院，请预结算后办理出院结算", "Discharged: pre-settle, then settle the stay"))


@router.post("/cashier/visits/{visit_id}/undo-discharge")
async def undo_discharge(request: Request, visit_id: str) -> Response:
    who = await cashier(request)
    p = platform(request)
    form = await forms.read(request, AREA, who.cookie)
    return await act(request, who, form, lambda c: visits.undo_discharge(c, p.now(), institution=who.institution, visit_id=visit_id),
                     back=links.visit_back(visit_id, form), ok=("已撤销出院，可继续录入住院费用", "Discharge undone: fees may be entered again"))


def fee_time(fee_date: str, now: datetime) -> str | None:
    """An inpatient line's fee day (住院费用录入, day by day) as the national fee time: noon of that Beijing day, or
    None for today (the time of entry). Days before admission or after today are refused by visits.upload_lines."""
    if not fee_date:
        return None
    try:
        day = date.fromisoformat(fee_date)
    except ValueError:
        raise InputError("fee_date", "invalid_date", "费用日期格式应为 yyyy-mm-dd", "the fee date must be yyyy-mm-dd") from None
    if day == volumes.local_day(now):
        return None
    return datetime.combine(day, time(12)).strftime("%Y-%m-%d %H:%M:%S")


_SAID_BY_COLUMNS = re.compile(r"^(甲类|乙类|丙类项目|丙类|class [ABC]|限价.*|price cap .*|全自费|own expense)$")


def line_note(line: dict[str, Any], lang: str) -> str:
    """A fee line's note in the reader's language only, without what the line's columns already say: the stored note
    (the national per-line result's memo) reads "中文 / English" and, for a listed line, restates its class (目录类别)
    and price cap; what it adds (符合限定支付范围) is kept, with the class B line's self-pay ratio. An own-expense line's
    note is its reason, kept whole."""
    zh, sep, en = (line.get("memo") or "").partition(" / ")
    text = en if lang == "en" and sep else zh
    parts = [text] if text else []
    if line.get("class") in ("A", "B", "C"):
        parts = [p for p in re.split(r"[，,：:]\s*", text) if p and not _SAID_BY_COLUMNS.match(p.strip())]
        if line.get("class") == "B" and line.get("self_pay_ratio"):
            pct = format((Decimal(line["self_pay_ratio"]) * 100).normalize(), "f")
            parts.insert(0, f"{i18n.text(lang, 'pre_self_pay')} {pct}%")
    return ("，" if lang == "zh" else ", ").join(parts)


def _fee_day(at: str | None, default: date) -> str:
    """A line's fee day (Beijing) from its national fee time, else the visit's date."""
    return volumes.local_day(datetime.fromisoformat(at.replace("Z", "+00:00"))).isoformat() if at else default.isoformat()


def by_fee_day(lines: list[dict[str, Any]], visit_date: date) -> list[dict[str, Any]]:
    """An inpatient stay's lines with their fee day (fee_day), ordered by day (entry order within a day)."""
    out = [{**line, "fee_day": _fee_day(line.get("fee_ocur_time"), visit_date)} for line in lines]
    return sorted(out, key=lambda line: line["fee_day"])


def stay_of(visit: visits.Visit) -> dict[str, Any]:
    """An inpatient stay's admission and discharge days (Beijing) and its length in days (住院天数: discharge day less
    admission day, at least 1), for the discharge settlement's receipt (住院结算单)."""
    def day(at: datetime) -> date:  # SQLite hands back naive UTC
        return volumes.local_day(at if at.tzinfo else at.replace(tzinfo=timezone.utc))

    admitted = visit.visit_date  # the admission date entered at 入院 (admitted_at: when it was entered)
    discharged = day(visit.discharged_at) if visit.discharged_at else None
    return {"admitted": admitted.isoformat(), "discharged": discharged.isoformat() if discharged else None,
            "days": max(1, (discharged - admitted).days) if discharged else None}


def days_of(lines: list[dict[str, Any]], visit: visits.Visit) -> list[dict[str, Any]]:
    """An inpatient stay's active lines by fee day (Beijing), each day with its subtotal (fen): the daily fee list."""
    days: dict[str, dict[str, Any]] = {}
    for line in lines:
        at = line.get("fee_ocur_time")
        day = volumes.local_day(datetime.fromisoformat(at.replace("Z", "+00:00"))).isoformat() if at else visit.visit_date.isoformat()
        d = days.setdefault(day, {"day": day, "count": 0, "total": 0})
        if line["status"] == "active":
            d["count"] += 1
            d["total"] += parse_yuan(line["det_item_fee_sumamt"]) if line.get("det_item_fee_sumamt") else 0
    return [days[k] for k in sorted(days)]


# ---- the shift summary ---------------------------------------------------------------------------

@router.get("/cashier/shift")
async def shift_page(request: Request) -> HTMLResponse:
    """交班汇总: this console session's shift (since its log-in), or the Beijing day (?scope=day)."""
    who = await cashier(request)
    p = platform(request)
    scope = "day" if request.query_params.get("scope") == "day" else "shift"

    def read(conn: Connection) -> dict[str, Any]:
        now = p.now()
        if scope == "day":
            start, _ = volumes.day_bounds(volumes.local_day(now))
        else:
            start = sessions.console_since(conn, who.cookie) or now
        end = now + timedelta(microseconds=1)
        summary = shifts.summary(conn, institution_id=who.principal, start=start, end=end)
        return {"shift": summary, "modes": shifts.by_mode_rows(summary), "scope": scope, "shares": shifts.SHARES}

    data = await p.run(read, write=False)
    return render.render(request, "cashier/shift.html", area=AREA, csrf_cookie=who.cookie, who=who, **data)
