"""/admin in Chromium: log-in, today's volumes as SVG charts, the chains' verification, suspending
and admitting again a payment institution (and the holder's app following), the audit log."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.pages import log_in_holder, log_in_operator
from yibao.sandbox.demo import institution_code
from yibao.services.agency.institutions import get as get_institution
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest


def settle_one(live, region: str = "330200") -> None:
    """A settlement today in another region, through the services (what a hospital's HIS would do)."""
    person = live.psn("陈静")
    now = live.db.clock()

    def work(c):  # noqa: ANN001, ANN202
        inst = get_institution(c, institution_code(region, "community"))
        v = visits.open_visit(c, now, institution=inst, person_id=person, kind="outpatient")
        visits.upload_lines(c, now, institution=inst, visit_id=v.id,
                            items=[{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "40.00", "quantity": "1"}])
        settlement.settle(c, now, institution=inst, visit_id=v.id, msgid=f"ADMIN-TEST-{v.id}", account=AccountRequest(), actor="test")
    live.db.run(work)


def test_the_dashboard_draws_todays_volumes_and_verifies_the_chains(desktop, live):
    settle_one(live)
    page = desktop.new_page()
    log_in_operator(page)
    bars = page.locator("#chart-counts g.bar")
    ningbo = bars.filter(has_text="宁波市 330200")
    expect(ningbo).to_have_count(1)
    assert int(ningbo.get_attribute("data-value")) >= 1
    assert int(page.locator("#today-count").inner_text()) == sum(int(b.get_attribute("data-value")) for b in bars.all())
    expect(page.locator("#chart-layers g.bar")).to_have_count(7)  # pool, serious illness, large amount, other (oth_pay), assistance, account, cash
    expect(page.locator("#chain-status")).to_have_text("全部审计链完整")
    expect(page.locator("#ledger-balanced")).to_have_text("借贷平衡")
    page.locator("#lang-toggle").click()
    expect(page.locator("#chart-counts g.bar").filter(has_text="Ningbo 330200")).to_have_count(1)
    expect(page.locator("#chart-layers title")).to_have_text(re.compile(r"^Paid on \d{4}-\d\d-\d\d \(yuan\)$"))
    expect(page.locator("#chain-status")).to_have_text("Every audit chain is intact")


def test_suspending_a_payment_institution_takes_it_off_the_holders_list(desktop, phone, live):
    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-institutions").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#reason-unionpay-440300").fill("演示暂停")
    page.locator("#suspend-unionpay-440300").click()
    expect(page.locator("#pi-status-unionpay-440300")).to_have_text("已暂停")

    holder = phone.new_page()
    log_in_holder(holder, live, "13800138005")  # 王芳, Shenzhen
    holder.goto("/app/bindings")
    options = holder.locator("#payment_institution_id option")
    expect(options.filter(has_text="云闪付")).to_have_count(0)

    page.locator("#ref-unionpay-440300").fill("深医保准〔2026〕再准入")
    page.locator("#readmit-unionpay-440300").click()
    expect(page.locator("#pi-status-unionpay-440300")).to_have_text("已准入")
    holder.reload()
    expect(options.filter(has_text="云闪付")).to_have_count(1)

    page.goto("/admin/audit")
    expect(page.locator("#audit tbody tr").filter(has_text="payment_institution.admit").first).to_contain_text("unionpay-440300")
    expect(page.locator("#audit tbody tr").filter(has_text="payment_institution.suspend").first).to_contain_text("operator:demo-operator")


def test_a_payment_institution_without_a_working_connector_is_not_admitted(desktop, live):
    """No connector configured: the admission is refused in words and the institution is left registered (待接入), so
    nobody can bind it; admitting it again is refused again until its connector answers (docs/pages.md)."""
    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-institutions").click()
    page.locator("#admit-pi-form").evaluate("f => { const d = f.closest('details'); if (d) d.open = true; }")
    page.locator("#pi-new-id").fill("newpay-440300")
    page.locator("#pi-new-region").fill("440300")
    page.locator("#pi-new-name").fill("新支付")
    page.locator("#pi-new-ref").fill("深医保准〔2026〕新")
    page.locator("#admit-pi").click()
    expect(page.locator("#flash")).to_contain_text("尚未配置接入参数（连接器），不能准入")
    expect(page.locator("#pi-status-newpay-440300")).to_have_text("已登记，待接入")
    page.locator("#ref-newpay-440300").fill("深医保准〔2026〕新")
    page.locator("#readmit-newpay-440300").click()
    expect(page.locator("#flash")).to_contain_text("不能准入")
    expect(page.locator("#pi-status-newpay-440300")).to_have_text("已登记，待接入")


def test_a_wrong_operator_token_is_refused_in_words(desktop, live):
    page = desktop.new_page()
    page.goto("/admin")
    page.locator("#token").fill("not-the-token")
    page.locator("#admin-log-in").click()
    expect(page.locator("#flash")).to_have_text("经办人员凭证无效")
    assert page.url.endswith("/admin/login")


def test_admitting_an_institution_shows_its_credential_once_and_it_logs_in(desktop, live):
    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-institutions").click()
    page.locator("summary", has_text="准入新的定点医药机构").click()
    page.locator("#inst-new-code").fill("P44030099")
    page.locator("#inst-new-region").fill("440300")
    page.locator("#inst-new-name").fill("演示新药房")
    page.locator("#inst-new-kind").select_option("pharmacy")
    page.locator("#inst-new-level").select_option("level2")  # a pharmacy's level is "pharmacy": refused in words
    page.locator("#admit-inst").click()
    expect(page.locator("#flash")).to_contain_text("级别应为")
    expect(page.locator("#inst-new-code")).to_have_value("P44030099")  # the form is filled in again
    page.locator("#inst-new-level").select_option("pharmacy")
    form = {name: page.locator(f"#admit-inst-form input[name={name}]").input_value() for name in ("csrf", "nonce")}
    page.locator("#admit-inst").click()
    credential = page.locator("#credential").input_value()
    assert credential.startswith("P44030099.") and len(credential) > 20

    # The same form sent again (a double click, a reload): nothing admitted twice, the secret not shown again.
    again = page.request.post("/admin/institutions", form={**form, "form": "inst", "code": "P44030099", "region": "440300",
                                                          "name": "演示新药房", "kind": "pharmacy", "level": "pharmacy"})
    assert again.ok and credential not in again.text()
    assert "凭证已在首次提交时显示" in again.text()
    page.goto("/admin/institutions")
    expect(page.locator("#institutions")).to_contain_text("演示新药房")

    cashier = desktop.new_page()
    cashier.goto("/cashier/login")
    cashier.locator("#credential").fill(credential)
    cashier.locator("#cashier-log-in").click()
    expect(cashier.locator("body")).to_contain_text("演示新药房")


def test_a_pilot_application_is_approved_suspended_and_restored_on_the_page(desktop, live):
    """An institution applies over its API with the plan and the risk report; the operator approves it on /admin/pilots
    (the agreement: one year, backstop liability), suspends it (mobile-mode payments refused, naming the agreement) and
    restores it."""
    import base64

    import httpx
    import pytest as _pytest

    from yibao.domain.errors import Forbidden
    from yibao.services.agency import institutions, pilots

    code = "H44030077"
    live.db.run(lambda c: institutions.admit(c, live.clock(), code=code, region="440300", name="页面试点医院", kind="hospital", level="level2",
                                             actor="test", secret="page-pilot-secret"))
    doc = {"filename": "实施方案.pdf", "content": base64.b64encode(b"%PDF plan").decode()}
    r = httpx.post(f"{live.url}/api/v1/his/pilot-applications", json={"modes": ["onecode", "mobile"], "assessed_by": "某测评中心", "plan": doc,
                   "risk_report": {**doc, "filename": "风险评估.pdf"}}, headers={"Authorization": f"Bearer {code}.page-pilot-secret",
                   "Idempotency-Key": "page-pilot-1"}, timeout=30)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]

    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-pilots").click()
    expect(page.locator(f"#app-status-{app_id}")).to_have_text("待审核")
    expect(page.locator(f"#app-{app_id}")).to_contain_text("页面试点医院")
    expect(page.locator(f"#app-{app_id} a")).to_have_count(2)  # the plan and the report, to download
    page.locator(f"#approve-{app_id}").click()
    expect(page.locator("#flash")).to_contain_text("已批准")
    expect(page.locator(f"#app-status-{app_id}")).to_have_text("已批准")
    agreement = live.db.run(lambda c: pilots.in_force(c, pilots.today(live.clock()), institution_id=code))
    row = page.locator(f"#agreement-{agreement.id}")
    expect(row).to_contain_text("一码付")
    expect(page.locator(f"#agreement-state-{agreement.id}")).to_have_text("生效")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#preason-{agreement.id}").fill("风险核查")
    page.locator(f"#psuspend-{agreement.id}").click()
    expect(page.locator(f"#agreement-state-{agreement.id}")).to_have_text("已暂停")
    with _pytest.raises(Forbidden) as e:
        live.db.run(lambda c: pilots.require(c, live.clock(), institution_id=code, mode="onecode"))
    assert e.value.code == "pilot_agreement_suspended" and agreement.id in e.value.message_zh
    page.locator(f"#prestore-{agreement.id}").click()
    expect(page.locator(f"#agreement-state-{agreement.id}")).to_have_text("生效")
    live.db.run(lambda c: pilots.require(c, live.clock(), institution_id=code, mode="onecode"))
    page.close()
