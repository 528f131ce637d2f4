"""/admin/rollout and /admin/cards in Chromium, on the session's shared demo server: the rollout table per mode and
province agrees with the API and follows a region designated a pilot city; a card accepted, carried through its
production stages, issued, then reported lost at the counter and replaced — refusals in words."""

from __future__ import annotations

import re
from datetime import date

import httpx
from playwright.sync_api import expect

from tests.support.api import OPERATOR
from tests.support.pages import log_in_operator
from yibao.domain.identity import make_id_number
from yibao.services.agency import pilots
from yibao.services.agency.pilots import Document
from yibao.services.people import cards
from yibao.services.people import persons as people


def test_the_rollout_page_shows_each_mode_and_province_against_the_three_dates(desktop, live):
    # The province designates Ningbo a face-payment pilot city (a region agreement).
    now = live.clock()

    def designate(c):  # noqa: ANN001, ANN202
        app = pilots.apply(c, now, applicant="region", institution_id=None, region="330200", modes=["face"], plan=Document("plan", "p.pdf", b"%PDF p"),
                           risk_report=Document("risk_report", "r.pdf", b"%PDF r"), assessed_by="省评估中心", actor="test")
        pilots.review(c, now, application_id=app["id"], approve=True, note=None, actor="test")
    live.db.run(designate)
    api = httpx.get(f"{live.url}/api/v1/admin/rollout", headers=OPERATOR, timeout=30)
    assert api.status_code == 200, api.text
    assert httpx.get(f"{live.url}/api/v1/admin/rollout", timeout=30).status_code == 401
    report = api.json()

    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-rollout").click()
    expect(page.locator("h1")).to_have_text("医保便捷支付推广进度")
    expect(page.locator("#target-pilot_cities")).to_contain_text("2026-12-31")
    expect(page.locator("#target-institutions")).to_contain_text("2028-12-31")
    for m in report["modes"]:
        expect(page.locator(f"#rollout-{m['mode']} tbody tr")).to_have_count(len(m["provinces"]))
        for pv in m["provinces"]:
            for g in pv["targets"]:
                cell = page.locator(f"#t-{m['mode']}-{pv['province']}-{g['key']}")
                expect(cell).to_have_attribute("data-gap", str(g["gap"]))
                expect(cell).to_contain_text(f"{g['done']} / {g['required']}")
    ningbo_face = page.locator("#region-face-330200")
    expect(ningbo_face).to_contain_text("试点城市")
    expect(page.locator("#region-onecode-330200")).not_to_contain_text("试点城市")  # the agreement covers face only
    zhejiang = next(p for m in report["modes"] if m["mode"] == "face" for p in m["provinces"] if p["province"] == "33")
    pilot = next(g for g in zhejiang["targets"] if g["key"] == "pilot_cities")
    expect(page.locator("#t-face-33-pilot_cities")).to_contain_text("已达成" if pilot["met"] else f"还差 {pilot['gap']} 个")
    page.locator("#lang-toggle").click()
    expect(page.locator("h1")).to_have_text("Rollout of convenient payment")
    expect(page.locator("#row-face-33 th")).to_contain_text("Zhejiang")
    expect(page.locator("#region-face-330200")).to_contain_text("pilot city")
    page.locator("#lang-toggle").click()
    page.close()


def test_a_card_is_made_issued_and_replaced_after_loss_on_the_page(desktop, live):
    id_number = make_id_number("440301", date(1991, 5, 6), 7)
    person = live.db.run(lambda c: people.enrol(c, live.keyring, live.clock(), region="440300", id_number=id_number, name="制卡测试",
                                                insurance_type="resident", employment_status="none"))
    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-cards").click()
    page.locator("#query").fill("440300000000000000")
    page.locator("#lookup").click()
    expect(page.locator("#flash")).to_contain_text("未找到该参保人")
    page.locator("#query").fill(id_number)
    page.locator("#lookup").click()
    expect(page.locator("#person-psn")).to_have_text(person.id)
    expect(page).to_have_url(re.compile(rf"/admin/cards\?psn={person.id}$"))  # the ID number is never in the address
    expect(page.locator("#no-cards")).to_be_visible()

    page.locator("#card_no").fill("ab-1")
    page.locator("#accept").click()
    expect(page.locator("#flash")).to_contain_text("社保卡号应为8–20位大写字母或数字")
    expect(page.locator("#card_no")).to_have_value("ab-1")
    page.locator("#card_no").fill("")
    page.locator("#accept").click()
    expect(page.locator("#flash")).to_contain_text("已受理制卡申请")
    card = live.db.run(lambda c: cards.for_person(c, person.id), write=False)[0]
    expect(page.locator(f"#card-status-{card.id}")).to_have_text("制卡中")
    expect(page.locator(f"#card-stage-{card.id}")).to_have_text("已受理")
    page.locator("#accept").click()  # a second live card is refused in words
    expect(page.locator("#flash")).to_contain_text("已有在制或在用的社保卡")
    for shown in ("印制中", "已寄出", "可领取"):
        page.locator(f"#stage-{card.id}").click()
        expect(page.locator(f"#card-stage-{card.id}")).to_have_text(shown)
    page.locator(f"#issue-{card.id}").click()
    expect(page.locator(f"#card-status-{card.id}")).to_have_text("已发放（待激活）")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#replace-{card.id}").click()
    expect(page.locator("#flash")).to_contain_text("已补办")
    expect(page.locator(f"#card-status-{card.id}")).to_have_text("已挂失")
    expect(page.locator(f"#replaced-{card.id}")).to_be_visible()
    expect(page.locator(f"#replace-{card.id}")).to_have_count(0)  # replaced once
    new = [k for k in live.db.run(lambda c: cards.for_person(c, person.id), write=False) if k.id != card.id]
    assert len(new) == 1 and (new[0].status, new[0].production_stage, new[0].financial) == ("in_production", "accepted", True)
    expect(page.locator(f"#card-status-{new[0].id}")).to_have_text("制卡中")
    page.close()
