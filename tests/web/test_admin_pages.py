"""/admin in Chromium: log-in, today's volumes as SVG charts, the chains' verification, suspending
and admitting again a payment institution (and the holder's app following), the audit log."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from tests.support.pages import log_in_holder, log_in_operator
from yibao.domain.audit_actions import NAMES
from yibao.sandbox.demo import institution_code
from yibao.services.agency.institutions import get as get_institution
from yibao.services.books import volumes
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
    ningbo = bars.filter(has_text="宁波市（330200）")
    expect(ningbo).to_have_count(1)
    assert int(ningbo.get_attribute("data-value")) >= 1
    assert int(page.locator("#today-count").inner_text()) == sum(int(b.get_attribute("data-value")) for b in bars.all())
    expect(page.locator("#chart-layers g.bar")).to_have_count(7)  # pool, serious illness, large amount, other (oth_pay), assistance, account, cash
    expect(page.locator("#chain-status")).to_have_text("全部审计链完整")
    expect(page.locator("#ledger-balanced")).to_have_text("借贷平衡")
    page.locator("#lang-toggle").click()
    expect(page.locator("#chart-counts g.bar").filter(has_text="Ningbo (330200)")).to_have_count(1)
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
    page.locator("#inst-new-region").select_option("440300")
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


# Every text of a chart, measured where the browser drew it (CSS px), and the page's width against the viewport's.
CHART_TEXT = """(id) => {
  const svg = document.getElementById(id);
  const box = svg.getBoundingClientRect();
  // The drawn size of a text's font: its font size in the SVG's units times the SVG's scale on the screen.
  const texts = [...svg.querySelectorAll('text')].map(t => { const r = t.getBoundingClientRect();
    return {text: t.textContent, height: r.height, font: parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a,
            left: r.left, right: r.right}; });
  return {box: {left: box.left, right: box.right}, texts,
          scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth};
}"""


def test_the_charts_are_readable_on_a_phone_and_their_numbers_are_in_a_table(phone, live):
    settle_one(live)
    page = phone.new_page()
    log_in_operator(page)
    for chart, table in (("chart-counts", "chart-counts-table"), ("chart-layers", "chart-layers-table")):
        got = page.evaluate(CHART_TEXT, chart)
        assert got["scrollWidth"] <= got["clientWidth"], f"/admin scrolls sideways on a phone: {got['scrollWidth']} > {got['clientWidth']}"
        assert len(got["texts"]) >= 3
        for t in got["texts"]:
            assert t["height"] >= 11 and t["font"] >= 11, f"{chart}: {t['text']!r} is drawn {t['height']:.1f} px tall ({t['font']:.1f} px font)"
            assert got["box"]["left"] - 1 <= t["left"] and t["right"] <= got["box"]["right"] + 1, f"{chart}: {t['text']!r} leaves the chart"
        # The same numbers in the table under the chart, row for row.
        values = [int(b.get_attribute("data-value")) for b in page.locator(f"#{chart} g.bar").all()]
        cells = page.locator(f"#{table} tbody td.num")
        expect(cells).to_have_count(len(values))
        shown = [c.get_attribute("data-fen") or c.inner_text() for c in cells.all()]
        assert [int(v) for v in shown] == values
    expect(page.locator("#chart-counts-table tbody tr").filter(has_text="宁波市（330200）")).to_have_count(1)


ADMIN_PAGES = ("/admin", "/admin/institutions", "/admin/pilots", "/admin/rollout", "/admin/cards", "/admin/audit",
               "/admin/reconciliation", "/admin/clearing", "/admin/whatif")
PAGE_WIDTH = "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
# Each cell of a row of the payment institutions' table: where it is and how many lines its text takes.
PI_CELLS = """(id) => [...document.getElementById(id).cells].map(td => { const r = td.getBoundingClientRect();
  const range = document.createRange(); range.selectNodeContents(td);
  const lines = new Set([...range.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top))).size;
  return {text: td.innerText, left: r.left, right: r.right, label: td.dataset.label, lines}; })"""


def test_no_admin_page_scrolls_sideways_on_a_phone_and_institutions_are_cards(phone, live):
    page = phone.new_page()
    log_in_operator(page)
    for lang in ("zh", "en"):
        for path in ADMIN_PAGES:
            page.goto(path)
            scroll, client = page.evaluate(PAGE_WIDTH)
            assert scroll <= client, f"{path} ({lang}) scrolls sideways on a phone: {scroll} > {client}"
        # /admin/institutions: one card per institution, every cell on the screen under its column's name, a name on one line.
        page.goto("/admin/institutions")
        cells = page.evaluate(PI_CELLS, "pi-bank-440300")
        assert len(cells) == 7
        for c in cells:
            assert 0 <= c["left"] and c["right"] <= client, f"{c['label']}: {c['text']!r} leaves the screen"
            assert c["label"]
        name = next(c for c in cells if "医保信用银行" in c["text"])
        assert name["lines"] == 1, f"the name {name['text']!r} takes {name['lines']} lines"
        button = page.locator("#suspend-bank-440300").bounding_box()
        assert 0 <= button["x"] and button["x"] + button["width"] <= client
        if lang == "zh":
            page.locator("#lang-toggle").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_dashboard_shows_a_chosen_period_and_refuses_a_reversed_or_too_long_one(desktop, live):
    settle_one(live)
    today = volumes.local_day(live.clock())
    page = desktop.new_page()
    log_in_operator(page)
    expect(page.locator("#preset-today")).to_have_attribute("aria-current", "true")
    # From the first of last month (the demo's history: its counter settlements) to today, typed as dates.
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    page.locator("#date-from").fill(first.isoformat())
    page.locator("#date-to").fill(today.isoformat())
    page.locator("#period-show").click()
    expect(page.locator("#period-shown")).to_have_attribute("data-from", first.isoformat())
    days = live.db.run(lambda c: volumes.by_region(c, first, today), write=False)
    only_today = live.db.run(lambda c: volumes.by_region(c, today), write=False)
    assert sum(d.settled for d in days) > sum(d.settled for d in only_today)  # the history is in it
    expect(page.locator("#today-count")).to_have_text(str(sum(d.settled for d in days)))
    expect(page.locator("#layers-total")).to_have_attribute("data-fen", str(sum(d.total for d in days)))
    expect(page.locator("#period-total")).to_have_attribute("data-fen", str(sum(d.total for d in days)))
    assert [int(b.get_attribute("data-value")) for b in page.locator("#chart-counts g.bar").all()] == [d.settled for d in days]
    expect(page.locator("#chart-counts title")).to_have_text(f"{first.isoformat()} 至 {today.isoformat()} 结算笔数")

    page.locator("#preset-month").click()
    expect(page.locator("#period-shown")).to_have_attribute("data-from", today.replace(day=1).isoformat())
    expect(page.locator("#preset-month")).to_have_attribute("aria-current", "true")
    month = live.db.run(lambda c: volumes.by_region(c, today.replace(day=1), today), write=False)
    expect(page.locator("#today-count")).to_have_text(str(sum(d.settled for d in month)))

    page.locator("#date-from").fill(today.isoformat())
    page.locator("#date-to").fill((today - timedelta(days=1)).isoformat())
    page.locator("#period-show").click()
    expect(page.locator("#flash")).to_have_text(f"开始日期 {today.isoformat()} 晚于结束日期 {(today - timedelta(days=1)).isoformat()}")
    expect(page.locator("#date-from")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#period-shown")).to_have_attribute("data-from", today.isoformat())  # today's figures meanwhile
    page.goto(f"/admin?date_from={(today - timedelta(days=400)).isoformat()}&date_to={today.isoformat()}")
    expect(page.locator("#flash")).to_have_text("时间范围最长 366 天（所选为 401 天）")


def test_a_region_is_chosen_by_name_and_an_unknown_one_is_refused_naming_the_field(desktop, live):
    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-institutions").click()
    page.locator("summary", has_text="准入新的支付机构").click()
    region = page.locator("#pi-new-region")
    expect(region.locator("option[value='330200']")).to_have_text("宁波市（330200）")
    assert region.locator("option").count() > 3
    page.locator("#pi-new-id").fill("page-pi-330200")
    page.locator("#pi-new-name").fill("页面支付")
    page.locator("#pi-new-ref").fill("甬医保准〔2026〕9号")
    # A value no option offers (a hand-made request): refused in words naming the region.
    region.evaluate("s => { const o = document.createElement('option'); o.value = '999999'; o.text = 'x'; s.add(o); s.value = '999999'; }")
    page.locator("#admit-pi").click()
    expect(page.locator("#flash")).to_contain_text("统筹区 999999 不存在")
    expect(page.locator("#pi-new-id")).to_have_value("page-pi-330200")
    page.locator("#pi-new-region").select_option("330200")
    page.locator("#admit-pi").click()
    # No connector configured: not admitted, said in words; it stays registered (待接入), so nobody can bind it.
    expect(page.locator("#flash")).to_contain_text("尚未配置接入参数（连接器），不能准入")
    expect(page.locator("#pi-status-page-pi-330200")).to_have_text("已登记，待接入")
    # Its connector configured (the sandbox Alipay's, as for alipay-330200): admitting it again passes the signed check.
    from yibao.services.agency import connectors as channel_registry

    def connect(c):  # noqa: ANN001, ANN202
        built = channel_registry.build(channel_registry.require(c, "alipay-330200"), live.keyring)
        channel_registry.configure(c, live.keyring, live.clock(), pi_id="page-pi-330200", actor="test", **channel_registry.settings_of(built))
    live.db.run(connect)
    page.locator("#ref-page-pi-330200").fill("甬医保准〔2026〕9号")
    page.locator("#readmit-page-pi-330200").click()
    expect(page.locator("#flash")).to_have_text("已准入")
    expect(page.locator("#pis tbody tr").filter(has_text="page-pi-330200")).to_contain_text("宁波市（330200）")
    expect(page.locator("#pi-status-page-pi-330200")).to_have_text("已准入")
    page.locator("#lang-toggle").click()
    expect(page.locator("#pi-new-region option[value='330200']")).to_have_text("Ningbo (330200)")


def test_the_audit_log_names_actions_and_regions_pages_back_and_filters(desktop, live):
    settle_one(live)
    page = desktop.new_page()
    log_in_operator(page)
    page.goto("/admin/audit")
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(50)
    for row in rows.all()[:10]:
        code = row.get_attribute("data-action")
        assert row.locator(".action-name").inner_text() == NAMES[code][0]
    expect(rows.filter(has_text="宁波市（330200）").first).to_be_visible()

    def entries() -> list[tuple[str, str, str]]:  # (time, region / sequence, hash) of each row, read off the page at once
        return [tuple(x) for x in page.eval_on_selector_all("#audit tbody tr", "rows => rows.map(r => [0, 1, 5].map(i => r.cells[i].title || "
                                                            "r.cells[i].innerText))")]
    first_page = entries()
    page.locator("#audit-older").click()
    expect(page.locator("#audit-newest")).to_be_visible()
    second = entries()
    assert second and not {e[2] for e in second} & {e[2] for e in first_page}  # no entry twice (by its hash)
    assert second[0][0] <= first_page[-1][0]  # older, or the same second

    today = volumes.local_day(live.clock()).isoformat()
    page.goto("/admin/audit")
    page.locator("#region-filter").select_option("330200")
    page.locator("#action-filter").select_option("settlement.settle")
    page.locator("#actor-filter").fill("te")
    page.locator("#audit-from").fill(today)
    page.locator("#audit-to").fill(today)
    page.locator("#audit-filter").click()
    expect(rows.first).to_contain_text("结算")
    shown = page.eval_on_selector_all("#audit tbody tr", "rows => rows.map(r => [r.dataset.action, r.dataset.region, r.cells[2].innerText])")
    assert {(a, r) for a, r, _ in shown} == {("settlement.settle", "330200")} and all(who.startswith("te") for _, _, who in shown)
    expect(page.locator("#action-filter")).to_have_value("settlement.settle")
    page.locator("#lang-toggle").click()
    expect(rows.first.locator(".action-name")).to_have_text("Settled")
    expect(rows.first).to_contain_text("Ningbo (330200)")

    page.goto(f"/admin/audit?date_from={today}&date_to=2000-01-01")
    expect(page.locator("#flash")).to_contain_text(f"the start date {today} is after the end date 2000-01-01")
    page.goto("/admin/audit?action=no.such")
    expect(page.locator("#flash")).to_contain_text("there is no action no.such")
