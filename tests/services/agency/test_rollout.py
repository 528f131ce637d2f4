"""Rollout tracking (seed 004; docs/governance.md "Rollout"), on SQLite and PostgreSQL: a region is live in a mode once
one of its institutions took a completed payment of it (a payment still waiting for the holder does not count); pilot
cities are regions with a region agreement covering the mode; eligible institutions are active ones whose agreement in
force covers the mode; each province's gap to 2026-12-31, 2027-12-31 and 2028-12-31 as of the platform's day."""

from __future__ import annotations

from datetime import date

from tests.support.payments import BIG_LINES, LINES, payment_world
from yibao.domain import payment_order as po
from yibao.domain import rollout as rules
from yibao.services.agency import pilots, rollout
from yibao.services.agency.pilots import Document


def province(report, mode, code):
    return next(p for m in report["modes"] if m["mode"] == mode for p in m["provinces"] if p["province"] == code)


def targets(p):
    return {t["key"]: (t["done"], t["required"], t["gap"], t["days_left"], t["met"]) for t in p["targets"]}


def test_live_regions_pilot_cities_and_the_gap_to_each_date(db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay)  # 440300: three institutions, each with an agreement covering every mode
    read = lambda: db.run(lambda c: rollout.report(c, db.clock()), write=False)  # noqa: E731

    waiting = pw.pay(key="big", lines=BIG_LINES)  # above the password-free limit: waits for the holder
    assert waiting.status == po.AWAITING_CONFIRMATION
    r = read()
    assert r["day"] == "2026-11-22" and [m["mode"] for m in r["modes"]] == ["onecode", "face", "mobile", "credit"]
    gd = province(r, "onecode", "44")
    assert (gd["name_zh"], gd["regions_total"], gd["regions_live"], gd["institutions_eligible"], gd["institutions_live"]) == ("广东省", 1, 0, 3, 0)
    assert targets(gd) == {"pilot_cities": (0, 1, 1, 39, False), "regions": (0, 1, 1, 404, False), "institutions": (0, 3, 3, 770, False)}

    done = pw.pay(key="small", lines=LINES)
    assert done.status == po.COMPLETED
    r = read()
    gd = province(r, "onecode", "44")
    assert gd["regions_live"] == 1 and gd["regions"][0] == {**gd["regions"][0], "region": "440300", "live": True, "institutions_live": 1}
    # No region agreement: the region is live but not a pilot city.
    assert targets(gd) == {"pilot_cities": (0, 1, 1, 39, False), "regions": (1, 1, 0, 404, True), "institutions": (1, 3, 2, 770, False)}
    assert province(r, "face", "44")["regions_live"] == 0  # a one-code payment makes nothing live in face
    zj = province(r, "onecode", "33")  # Ningbo's province: no institution at all, nothing to count
    assert targets(zj)["institutions"] == (0, 0, 0, 770, False) and targets(zj)["regions"] == (0, 1, 1, 404, False)

    # The province designates Shenzhen a one-code pilot city; a suspended institution is no longer eligible.
    doc = Document("plan", "方案.pdf", b"%PDF plan")
    app = db.run(lambda c: pilots.apply(c, db.clock(), applicant="region", institution_id=None, region="440300", modes=["onecode"], plan=doc,
                                        risk_report=Document("risk_report", "r.pdf", b"%PDF r"), assessed_by="省评估中心", actor="op"))
    db.run(lambda c: pilots.review(c, db.clock(), application_id=app["id"], approve=True, note=None, actor="op2"))
    db.run(lambda c: pilots.suspend(c, db.clock(), institution_id=pw.w.other_hospital.id, reason="核查", actor="op"))
    r = read()
    gd = province(r, "onecode", "44")
    assert gd["pilot_cities"] == ["440300"] and gd["pilot_cities_live"] == 1
    assert targets(gd) == {"pilot_cities": (1, 1, 0, 39, True), "regions": (1, 1, 0, 404, True), "institutions": (1, 2, 1, 770, False)}
    assert province(r, "face", "44")["pilot_cities"] == []  # the region agreement covers one-code only
    assert r["modes"][0]["met"] == {"pilot_cities": 1, "regions": 1, "institutions": 0}


def test_the_modes_a_payment_shows_and_a_missed_date():
    assert rules.modes_of("onecode", None) == ("onecode",)
    assert rules.modes_of("medins", None) == ("mobile",)
    assert rules.modes_of("mobile", "credit") == ("mobile", "credit")
    late = rules.progress("pilot_cities", 1, 2, date(2027, 1, 2))
    assert (late.gap, late.days_left, late.met, late.overdue, late.percent) == (1, -2, False, True, 50)
    assert rules.progress("regions", 3, 3, date(2028, 1, 1)).overdue is False
    assert rules.pilot_cities_required(5) == 2 and rules.pilot_cities_required(1) == 1
