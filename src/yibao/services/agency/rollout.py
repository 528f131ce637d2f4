"""Rollout tracking (seed 004; docs/governance.md "Rollout"): a read model, computed on each request from the platform's
own records — no table of its own.

Per payment mode (one-code, face, mobile, credit):
- an institution is **live** when it took at least one completed payment of the mode (payment_orders: completed, or
  refunded since — a refund does not undo that the mode worked); a pooling region is live when one of its
  institutions is;
- a **pilot city** is a region whose region pilot agreement (services/agency/pilots.py, applicant "region") is in
  force today and covers the mode: the province designates its first cities, a live region is not one by itself;
- an institution is **eligible** when it is active and its pilot agreement in force today covers the mode (neither
  expired nor suspended): what the 2028 target counts; live institutions outside it are shown but not counted;
- the known regions of a province are those the platform serves (a policy file), those with an institution, and
  those with a region agreement.

Each province is then judged against the three dates of seed 004 (domain/rollout.py) as of today, the platform's clock
(Beijing date)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain import payment_order as po
from yibao.domain import rollout as rules
from yibao.domain.pilot import MODES, Agreement
from yibao.services.agency import institutions
from yibao.services.agency.pilots import in_force_all, today
from yibao.services.agency.policies import known_regions
from yibao.store.tables import payment_orders as O

TAKEN = (po.COMPLETED, po.REFUNDING, po.PARTIALLY_REFUNDED, po.REFUNDED)  # a payment of the mode was completed


def live_institutions(conn: Connection, now: datetime) -> dict[str, dict[str, str]]:
    """Per mode: the institutions (id → region) that took a completed payment of it by ``now``."""
    rows = conn.execute(select(O.c.institution_id, O.c.region, O.c.method, O.c.cash_source)
                        .where(O.c.status.in_(TAKEN), O.c.completed_at.is_not(None), O.c.completed_at <= now).distinct()).all()
    live: dict[str, dict[str, str]] = {m: {} for m in MODES}
    for r in rows:
        for mode in rules.modes_of(r.method, r.cash_source):
            live[mode][r.institution_id] = r.region
    return live


def _covers(agreement: Agreement | None, mode: str, day: date) -> bool:
    return agreement is not None and mode in agreement.modes and agreement.state_on(day) == "active"


def _target(p: rules.Progress) -> dict[str, Any]:
    return {"key": p.key, "deadline": p.deadline.isoformat(), "required": p.required, "done": p.done, "gap": p.gap, "percent": p.percent,
            "days_left": p.days_left, "met": p.met, "overdue": p.overdue}


def report(conn: Connection, now: datetime) -> dict[str, Any]:
    """Per mode and province: pilot cities, live regions, live and eligible institutions, and the three targets."""
    day = today(now)
    live = live_institutions(conn, now)
    by_institution, by_region = in_force_all(conn, day)
    insts = institutions.list_all(conn)
    regions = set(known_regions()) | {i.region for i in insts} | set(by_region)
    by_region_insts: dict[str, list[institutions.Institution]] = {}
    for i in insts:
        by_region_insts.setdefault(i.region, []).append(i)
    provinces: dict[str, list[str]] = {}
    for region in sorted(regions):
        provinces.setdefault(rules.province_of(region), []).append(region)
    modes = []
    for mode in MODES:
        live_regions = set(live[mode].values())
        rows = []
        for province, members in sorted(provinces.items()):
            region_rows = []
            for region in members:
                here = by_region_insts.get(region, [])
                eligible = [i.id for i in here if i.status == "active" and _covers(by_institution.get(i.id), mode, day)]
                region_rows.append({"region": region, "live": region in live_regions, "pilot_city": _covers(by_region.get(region), mode, day),
                                    "institutions": len(here), "institutions_live": sum(1 for i in here if i.id in live[mode]),
                                    "institutions_eligible": len(eligible), "eligible_live": sum(1 for i in eligible if i in live[mode])})
            pilot_cities = [r["region"] for r in region_rows if r["pilot_city"]]
            pilot_live = [r for r in pilot_cities if r in live_regions]
            regions_live = [r["region"] for r in region_rows if r["live"]]
            eligible = sum(r["institutions_eligible"] for r in region_rows)
            eligible_live = sum(r["eligible_live"] for r in region_rows)
            zh, en = rules.province_name(province)
            targets = [rules.progress("pilot_cities", len(pilot_live), rules.pilot_cities_required(len(members)), day),
                       rules.progress("regions", len(regions_live), len(members), day),
                       rules.progress("institutions", eligible_live, eligible, day)]
            rows.append({"province": province, "name_zh": zh, "name_en": en, "regions": region_rows, "regions_total": len(members),
                         "regions_live": len(regions_live), "pilot_cities": pilot_cities, "pilot_cities_live": len(pilot_live),
                         "institutions_live": sum(r["institutions_live"] for r in region_rows), "institutions_eligible": eligible,
                         "institutions_eligible_live": eligible_live, "targets": [_target(t) for t in targets]})
        modes.append({"mode": mode, "provinces": rows, "met": {key: sum(1 for p in rows for t in p["targets"] if t["key"] == key and t["met"])
                                                              for key, *_ in rules.TARGETS}})
    return {"day": day.isoformat(), "provinces": len(provinces),
            "targets": [{"key": key, "deadline": d.isoformat(), "days_left": (d - day).days, "zh": zh, "en": en} for key, d, zh, en in rules.TARGETS],
            "modes": modes}
