"""/cashier in Chromium, the counter's other pieces: 王芳 (no account of her own) is offered 李明's shared account
(家庭共济), named, and the settlement debits his; an inpatient stay admitted, its fees entered over several days,
discharged and settled; the shift summary (交班汇总) of a settlement and its cancellation, every total the sum of its
rows; and a pharmacy's counter that goes straight to the purchase, never asking to register a visit."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import select

from tests.support.identity import enrol_adult
from tests.support.pages import fen, flash, log_in_cashier, look_up_card, present_card_on_visit, tokens
from tests.support.presence import card_with_pin, present
from tests.support.world import seed
from yibao.app import create_app
from yibao.domain.identity import make_id_number
from yibao.domain.ledger import person_account
from yibao.services.books import ledger, volumes
from yibao.services.people import families
from yibao.store.tables import settlements as S

PHARMACY = "P440300P1.demo-p440300p1"


def _balance(live, name: str) -> int:
    return live.db.run(lambda c: ledger.balance(c, person_account(live.psn(name))), write=False)


def _settle_without_account(cashier) -> str:  # noqa: ANN001
    """Pre-settle with no personal account, confirm: the receipt's settlement id."""
    cashier.locator("#account").select_option("none")
    cashier.locator("#presettle").click()
    expect(cashier.locator("#split")).to_be_visible()
    cashier.locator("#confirm-settle").click()
    expect(cashier.locator("#receipt")).to_be_visible()
    expect(cashier.locator("#balance-after")).to_have_count(0)  # the account was not used: no balance "after" it
    return cashier.locator("#setl-id").inner_text()


def test_mutual_aid_offers_the_relatives_account_by_name_and_settles_on_it(desktop, live):
    # A card read with its PIN and not yet used pays the first visit at this hospital within 10 minutes: skip past any
    # an earlier test of the session left, so that 李明 is not present here until he presents his card below.
    live.clock.advance(minutes=11)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    look_up_card(cashier, live, "王芳")  # tier 2: no account of her own; 李明 shares his with her
    expect(cashier.locator("#patient-name")).to_have_text("王*")
    expect(cashier.locator("#account option")).to_have_text(["李*的个人账户（家庭共济）", "不使用个人账户"])
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(5)
    cashier.locator("#presettle").click()
    expect(cashier.locator("#presence-needed")).to_be_visible()  # his account pays once he is here: his card and PIN
    present_card_on_visit(cashier, live, "李明")
    account_pay = fen(cashier.locator("#split-account").inner_text())
    assert account_pay > 0
    before = _balance(live, "李明")
    shown = re.search(r"余额 (¥[\d.]+)", cashier.locator("#account option:checked").inner_text())
    assert shown and fen(shown.group(1)) == before  # the balance before this visit, once its owner is present
    cashier.locator("#confirm-settle").click()
    expect(cashier.locator("#receipt")).to_be_visible()
    assert _balance(live, "李明") == before - account_pay
    assert fen(cashier.locator("#balance-after").inner_text().split()[-1]) == before - account_pay  # the account that paid: 李明's


def test_an_inpatient_stay_is_admitted_charged_day_by_day_discharged_and_settled(desktop, live):
    today = volumes.local_day(live.clock())
    days = [today - timedelta(days=2), today - timedelta(days=1), today]
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.locator("#lookup-form").evaluate("f => f.closest('details').open = true")
    cashier.locator("#card_no").fill(live.people["李明"]["card_no"])
    cashier.locator("#lookup-kind").select_option("inpatient")
    cashier.locator("#lookup-kind-admit-date").fill(days[0].isoformat())
    cashier.locator("#lookup").click()
    expect(cashier.locator("#flash")).to_have_text("已办理入院，请逐日录入住院费用")
    expect(cashier.locator("#visit-status")).to_have_text("在院")
    expect(cashier.locator("#admitted-on")).to_contain_text(days[0].isoformat())
    expect(cashier.locator("#settle-after-discharge")).to_be_visible()
    expect(cashier.locator("#visit-closed")).to_have_count(0)  # an admitted stay is not "already settled"
    expect(cashier.locator("#presettle")).to_have_count(0)  # not settled while admitted
    for n, day in enumerate(days, start=1):
        cashier.locator("#sample-day").fill(day.isoformat())
        cashier.locator("#load-sample").click()
        expect(cashier.locator("#fee-days tbody tr")).to_have_count(n)
    rows = cashier.locator("#fee-days tbody tr")
    assert [rows.nth(i).get_attribute("data-day") for i in range(3)] == [d.isoformat() for d in days]
    day_totals = [fen(rows.nth(i).locator("td.num").last.inner_text()) for i in range(3)]
    assert day_totals[0] > 0 and len(set(day_totals)) == 1  # the same set each day
    lines = cashier.locator("#lines tbody tr")
    assert cashier.locator("#lines td.fee-day").all_inner_texts() == [d.isoformat() for d in days for _ in range(5)]  # by day
    names = lines.locator("td:nth-child(3)").all_inner_texts()
    assert any("床位费" in n for n in names) and any("护理费" in n for n in names) and not any("门诊" in n for n in names)
    notes = cashier.locator("#lines .line-memo").all_inner_texts()
    assert notes and not any(re.search(r"[A-Za-z]|甲类|乙类|丙类", n) for n in notes), notes  # zh only, not the class again
    assert any("先行自付" in n for n in notes)  # what the note adds: the class B drug's self-pay ratio

    cashier.locator("#discharge").click()
    expect(cashier.locator("#visit-status")).to_have_text("已出院")
    expect(cashier.locator("#presettle-title")).to_have_text("出院结算")
    cashier.locator("#account").select_option("none")
    cashier.locator("#presettle").click()
    expect(cashier.locator("#split")).to_be_visible()
    assert fen(cashier.locator("#split-total").inner_text()) == sum(day_totals)
    cashier.locator("#confirm-settle").click()
    expect(cashier.locator("#receipt")).to_be_visible()
    expect(cashier.locator("#receipt-title")).to_have_text("住院结算单（出院结算）")  # the discharge settlement, titled so
    expect(cashier.locator("#stay")).to_have_text(f"入院日期 {days[0]} · 出院日期 {today} · 住院 2 天")
    assert cashier.locator("#receipt td.fee-day").all_inner_texts() == [d.isoformat() for d in days for _ in range(5)]


def _cells(row) -> dict[str, int]:  # noqa: ANN001
    cells = row.locator("td[data-k]:not([data-k=mode])")
    out = {}
    for i in range(cells.count()):
        text = cells.nth(i).inner_text()
        out[cells.nth(i).get_attribute("data-k")] = fen(text) if "¥" in text else int(text or 0)
    return out


def test_the_shift_summary_counts_the_shifts_settlements_and_refunds_and_adds_up(desktop, live):
    cashier = desktop.new_page()
    log_in_cashier(cashier)  # a new log-in: a new shift
    cashier.goto("/cashier/shift")
    expect(cashier.locator("#shift-empty")).to_be_visible()
    look_up_card(cashier, live, "李明")
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(5)
    setl_id = _settle_without_account(cashier)
    paid = {k: fen(cashier.locator(f"#split-{k}").inner_text()) for k in ("total", "fund", "cash")}
    cashier.once("dialog", lambda dialog: dialog.accept())
    cashier.locator("#refund").click()
    expect(cashier.locator("#cancelled-stamp")).to_be_visible()

    cashier.goto("/cashier")
    cashier.locator("#shift-link").click()
    expect(cashier.locator("#scope-shift")).to_have_text(re.compile("本班次"))
    settled = cashier.locator("#shift-settlements tbody tr")
    refunded = cashier.locator("#shift-refunds tbody tr")
    expect(settled).to_have_count(1)
    expect(refunded).to_have_count(1)
    for rows in (settled, refunded):
        row = _cells(rows.first)
        assert rows.first.get_attribute("data-setl") == setl_id
        assert (row["total"], row["fund"], row["account"], row["cash"]) == (paid["total"], paid["fund"], 0, paid["cash"])
        assert rows.first.locator("[data-k=mode]").inner_text() == "窗口收费"
    for table in ("#shift-settlements", "#shift-refunds"):  # each footer is the sum of its rows
        rows = cashier.locator(f"{table} tbody tr")
        foot = _cells(cashier.locator(f"{table} tfoot tr"))
        assert foot == {k: sum(_cells(rows.nth(i))[k] for i in range(rows.count())) for k in foot}
    layers = {k: _cells(cashier.locator(f"#shift-layers tr[data-row={k}]")) for k in ("settled", "refunded", "net")}
    assert layers["settled"]["count"] == layers["refunded"]["count"] == 1
    assert layers["net"] == {k: layers["settled"][k] - layers["refunded"][k] for k in ("total", "fund", "account", "cash")}
    assert layers["net"]["total"] == 0
    modes = cashier.locator("#shift-modes tbody tr[data-mode]")
    total = _cells(cashier.locator("#shift-modes tr[data-row=total]"))
    assert total == {k: sum(_cells(modes.nth(i))[k] for i in range(modes.count())) for k in total}
    assert total["settled-count"] == 1 and total["settled"] == paid["total"]
    cashier.locator("#scope-day").click()  # the day holds this shift's rows, and any earlier shift's
    expect(cashier.locator(f"#shift-settlements tr[data-setl='{setl_id}']")).to_have_count(1)


def test_a_pharmacy_goes_straight_to_the_purchase_without_registering_a_visit(desktop, live):
    cashier = desktop.new_page()
    log_in_cashier(cashier, PHARMACY)
    expect(cashier.locator("h1")).to_have_text("扫码购药")
    assert "登记" not in cashier.locator("main").inner_text()
    expect(cashier.locator("#kind")).to_have_count(0)
    look_up_card(cashier, live, "李明")
    expect(cashier.locator("#flash")).to_have_text("已核验，请录入所购药品")
    expect(cashier.locator("#lines-title")).to_have_text("所购药品")
    expect(cashier.locator("#visit-status")).to_have_text("购药中")  # a purchase, not a visit (就诊中)
    assert "登记" not in cashier.locator("main").inner_text()
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(3)
    _settle_without_account(cashier)
    expect(cashier.locator("#receipt")).to_contain_text("药店购药")


# ---- the same counter through HTTP without a browser (the ASGI app in-process), on SQLite and PostgreSQL ----------

@pytest.fixture
def counter(db, keyring):
    world = seed(db, keyring)
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False, follow_redirects=True) as client:
        page = client.get("/cashier/login").text
        client.post("/cashier/sessions", data={**tokens(page), "credential": world.hospital_credential})
        yield world, client


def _form(html: str, form_id: str) -> dict[str, str]:
    return tokens(html[html.index(f'id="{form_id}"'):])


def _open_by_card(client, card_no: str, **extra: str):  # noqa: ANN001, ANN202
    page = client.get("/cashier").text
    return client.post("/cashier/lookup", data={**_form(page, "lookup-form"), "card_no": card_no, "kind": "outpatient", **extra})


def test_a_relatives_shared_account_is_offered_only_once_shared_and_pays_only_with_its_owner_present(counter, db, keyring):
    world, client = counter
    spouse = enrol_adult(db, keyring, n=21, name="配偶甲")
    card_no = card_with_pin(db, keyring, spouse.id)
    r = _open_by_card(client, card_no)
    base = str(r.url).split("?")[0]
    assert f"family:{world.employee.id}" not in r.text  # nothing shared with her yet
    db.run(lambda c: families.grant_mutual_aid(c, keyring, db.clock(), holder_id=world.employee.id, relation="spouse",
                                               id_number=make_id_number("440301", date(1980, 1, 21), 21), name="配偶甲", actor="test"))
    page = client.get(base).text
    # Her own account first (she has one), then his, named, then none.
    assert re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page[page.index('id="account"'):].split("</select>")[0]) == [
        ("self", "本人个人账户"), (f"family:{world.employee.id}", "测**的个人账户（家庭共济）"), ("none", "不使用个人账户")]
    r = client.post(base + "/sample-lines", data={**_form(page, "sample-form"), "account": f"family:{world.employee.id}"})
    # Someone who shares nothing with her, even present: refused in words by the settlement's own rule.
    present(db, world.hospital, world.retiree.id, base.rsplit("/", 1)[1], person_id=spouse.id)
    page = client.get(base, params={"account": f"family:{world.retiree.id}", "presettle": "1"}).text
    assert "该参保人未授权家庭共济" in page
    before = db.run(lambda c: ledger.balance(c, person_account(world.employee.id)), write=False)
    settle = {"account": f"family:{world.employee.id}", "payer_psn_no": ""}
    r = client.post(base + "/settle", data={**_form(page, "presence-card-form"), **settle})
    assert flash(r.text).startswith("从个人账户支付须账户所有人本人到场")  # the owner is not here: nothing moves
    present(db, world.hospital, world.employee.id, base.rsplit("/", 1)[1], person_id=spouse.id)  # he presents a credential
    page = client.get(base, params={"account": f"family:{world.employee.id}", "presettle": "1"}).text
    r = client.post(base + "/settle", data={**_form(page, "settle-form"), **settle})
    assert "/cashier/settlements/" in str(r.url), flash(r.text)
    setl_id = str(r.url).rsplit("/", 1)[1]
    row = db.run(lambda c: c.execute(select(S.c.account_id, S.c.account_pay).where(S.c.id == setl_id)).one(), write=False)
    assert row.account_id == person_account(world.employee.id) and row.account_pay > 0
    assert db.run(lambda c: ledger.balance(c, person_account(world.employee.id)), write=False) == before - row.account_pay


def test_an_admission_takes_fees_within_the_stay_and_settles_only_after_discharge(counter, db, keyring):
    world, client = counter
    card_no = card_with_pin(db, keyring, world.employee.id)
    today = volumes.local_day(db.clock())
    r = _open_by_card(client, card_no, kind="inpatient", admit_date="2026-13-01")
    assert flash(r.text) == "入院日期格式应为 yyyy-mm-dd"
    r = _open_by_card(client, card_no, kind="inpatient", admit_date=(today - timedelta(days=1)).isoformat())
    assert flash(r.text) == "已办理入院，请逐日录入住院费用"
    base = str(r.url).split("?")[0]
    line = {"medins_list_codg": "A310", "name": "血常规检查", "unit_price": "20.00", "quantity": "1", "account": "none"}
    r = client.post(base + "/lines", data={**_form(r.text, "line-form"), **line, "fee_date": (today - timedelta(days=2)).isoformat()})
    assert "费用发生时间应在就诊日期" in flash(r.text)  # before the admission: refused, naming the rule
    for day in (today - timedelta(days=1), today):
        r = client.post(base + "/lines", data={**_form(r.text, "line-form"), **line, "fee_date": day.isoformat()})
        assert flash(r.text) == "已添加费用明细"
    assert [d for d in re.findall(r'data-day="([\d-]+)"', r.text)] == [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    r = client.post(base + "/settle", data={**_form(r.text, "discharge-form"), "account": "none"})
    assert flash(r.text) == "住院费用在出院后结算"
    r = client.post(base + "/discharge", data={**_form(r.text, "discharge-form"), "account": "none"})
    assert flash(r.text) == "已办理出院，请预结算后办理出院结算"
    r = client.post(base + "/undo-discharge", data={**_form(r.text, "undo-discharge-form"), "account": "none"})  # 撤销出院: admitted again
    assert flash(r.text) == "已撤销出院，可继续录入住院费用" and 'id="discharge-form"' in r.text
    r = client.post(base + "/discharge", data={**_form(r.text, "discharge-form"), "account": "none"})
    assert 'id="undo-discharge-form"' in r.text
    page = client.get(base, params={"account": "none", "presettle": "1"}).text
    assert 'id="split-total">¥40.00<' in page
    r = client.post(base + "/settle", data={**_form(page, "settle-form"), "account": "none"})
    assert "/cashier/settlements/" in str(r.url), flash(r.text)
