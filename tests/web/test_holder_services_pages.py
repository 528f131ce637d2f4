"""The holder's services in /app, clicked in Chromium: payment-institution bindings (bind, limit, default,
unbind, with bad limits said in words naming the field and the typed value kept), card services (the
photo of a card being made, reporting a card lost, cancelling it), the monthly statement and the five
guardian conditions as a checklist.

陈静 (Ningbo, her card still being made) binds and uploads; 张建国 (Qingdao) reports his card lost and
cancels it — no other page test uses their cards or bindings. 李明's statement and checklist are read only.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.pages import fen, log_in_cashier, log_in_holder
from yibao.sandbox.demo import institution_code
from yibao.sandbox.face_samples import face_png
from yibao.services.agency import institutions
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.payments import paycodes

CHEN_JING, ZHANG_JIANGUO, LI_MING = "13800138003", "13800138002", "13800138001"


def test_bindings_bind_set_the_limit_make_default_and_unbind(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, CHEN_JING)
    page.goto("/app/bindings")
    wechat, alipay = page.locator("#binding-wechat-330200"), page.locator("#binding-alipay-330200")
    expect(wechat.locator("#default-wechat-330200")).to_be_visible()
    expect(alipay).to_have_count(0)

    page.locator("#payment_institution_id").select_option("alipay-330200")
    page.locator("#new-limit").fill("abc")
    page.locator("#bind").click()
    expect(page.locator("#flash")).to_have_text(re.compile("^免密额度：金额"))  # the field, then the rule
    expect(page.locator("#new-limit")).to_have_value("abc")
    expect(page.locator("#new-limit")).to_have_attribute("aria-invalid", "true")
    expect(alipay).to_have_count(0)

    page.locator("#payment_institution_id").select_option("alipay-330200")
    page.locator("#new-limit").fill("200.00")
    page.locator("#new-default").check()
    page.locator("#bind").click()
    expect(page.locator("#flash")).to_have_text("已绑定")
    expect(alipay.locator("#default-alipay-330200")).to_be_visible()
    expect(wechat.locator("#default-wechat-330200")).to_have_count(0)  # one default
    expect(page.locator("#limit-alipay-330200")).to_have_value("200.00")

    # A bad limit on one binding: refused in words, kept as typed on that binding only, nothing changed.
    page.locator("#limit-alipay-330200").fill("12.345")
    alipay.get_by_role("button", name="修改额度").click()
    expect(page.locator("#flash")).to_have_text(re.compile("^免密额度：金额最多2位小数"))
    expect(page.locator("#limit-alipay-330200")).to_have_value("12.345")
    expect(page.locator("#limit-alipay-330200")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#limit-wechat-330200")).to_have_value("1000.00")
    expect(page.locator("#limit-wechat-330200")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#new-limit")).to_have_value("0.00")  # another binding's refusal is not the new binding's
    page.reload()
    expect(page.locator("#limit-alipay-330200")).to_have_value("200.00")  # the refusal changed nothing

    page.locator("#limit-alipay-330200").fill("300.00")
    alipay.get_by_role("button", name="修改额度").click()
    expect(page.locator("#flash")).to_have_text("免密额度已修改")
    expect(page.locator("#limit-alipay-330200")).to_have_value("300.00")

    page.locator("#make-default-wechat-330200").click()
    expect(wechat.locator("#default-wechat-330200")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#unbind-alipay-330200").click()
    expect(alipay).to_have_count(0)
    expect(wechat.locator("#default-wechat-330200")).to_be_visible()


def test_the_photo_of_a_card_being_made_is_uploaded(phone, live, tmp_path):
    page = phone.new_page()
    log_in_holder(page, live, CHEN_JING)
    page.goto("/app/cards")
    card = page.locator("li.card-item", has_text="0027")
    expect(card.locator(".tag")).to_have_text("制卡中 · 已受理")  # the stage it is at, as the progress says it
    expect(card.locator("ol.progress li.done")).to_have_count(1)  # accepted; printing, mailed, ready to come
    expect(card.locator("ol.progress li.done")).to_contain_text("已受理")
    photo = tmp_path / "photo.png"
    photo.write_bytes(face_png("陈静"))
    not_an_image = tmp_path / "photo.txt"
    not_an_image.write_text("not a picture")
    card.locator("input[type=file]").set_input_files(not_an_image)
    card.get_by_role("button", name="上传照片").click()
    expect(page.locator("#flash")).to_have_class(re.compile("flash-error"))
    card.locator("input[type=file]").set_input_files(photo)
    card.get_by_role("button", name="上传照片").click()
    expect(page.locator("#flash")).to_have_text("照片已上传")
    expect(card).to_contain_text("已上传")
    card.locator("details summary").click()
    expect(card.locator(".timeline")).to_contain_text("上传照片")
    expect(card.locator(".timeline")).not_to_contain_text("photo_uploaded")


def test_a_card_reported_lost_found_lost_again_replaced_then_cancelled(phone, live):
    """挂失, 解挂 (back in use), 挂失 again, 补卡 (a new card being made; the old one neither found nor replaced again), 注销."""
    page = phone.new_page()
    log_in_holder(page, live, ZHANG_JIANGUO)
    page.goto("/app/cards")
    card = page.locator("li.card-item", has_text="0015")
    expect(card.locator(".tag")).to_have_text("正常使用")
    said: list[str] = []  # the confirmation dialogs say what happens to a physical card: bindings are the e-card's

    def accept(dialog):
        said.append(dialog.message)
        dialog.accept()

    for round_ in range(2):
        page.once("dialog", accept)
        card.get_by_role("button", name="挂失").click()
        expect(card.locator(".tag")).to_have_text("已挂失")
        if round_ == 0:
            page.once("dialog", accept)
            card.get_by_role("button", name="解挂").click()
            expect(page.locator("#flash")).to_have_text("已解挂，卡片恢复使用")
            expect(card.locator(".tag")).to_have_text("正常使用")
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="补卡").click()
    expect(page.locator("#flash")).to_have_text("已申请补卡，新卡已受理")
    expect(card.locator(".tag")).to_have_text("已挂失 · 已补卡")
    expect(card.get_by_role("button", name=re.compile("^(解挂|补卡)$"))).to_have_count(0)
    new = page.locator("li.card-item", has=page.locator(".tag", has_text="制卡中 · 已受理"))
    expect(new).to_have_count(1)
    assert "不能使用" in said[0] and "不受影响" in said[0] and "解除" not in said[0]
    assert said[1] == "确定解挂该卡？解挂后该卡恢复使用。"  # nothing about e-card bindings
    old_no, new_no = (c.locator("dd").first.inner_text() for c in (card, new))
    assert re.fullmatch(r"\w{2}\*{6}\d{4}", old_no) and re.fullmatch(r"\d{2}\*{6}\d{4}", new_no)  # one mask format
    card.locator("details summary").click()
    expect(card.locator(".timeline")).to_contain_text("解挂")
    expect(card.locator(".timeline")).to_contain_text("补卡")
    expect(card.locator(".timeline")).to_contain_text("可领取")  # the production stages in words, not stage_ready
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="注销").click()
    expect(card.locator(".tag")).to_have_text("已注销 · 已补卡")
    expect(card.get_by_role("button")).to_have_count(0)  # nothing more to do with a cancelled card


def test_the_monthly_statement_adds_up_and_the_guardian_conditions_are_a_checklist(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    page.goto("/app/account")
    figures = [fen(page.locator("#statement dd").nth(i).inner_text()) for i in range(5)]
    opening, income, refunds, debits, closing = figures
    assert opening + income + refunds - debits == closing and debits >= 5000  # the demo's visit paid ¥50.00 from it this month
    assert closing == fen(page.locator("#balance").inner_text())
    page.goto("/app/account?month=2026-13")  # not a month: this month's statement, the refusal said, the field marked
    expect(page).to_have_url(re.compile("/app/account$"))
    expect(page.locator("#flash")).to_have_text(re.compile("^月份"))
    expect(page.locator("#month")).to_have_attribute("aria-invalid", "true")
    page.locator("#month").fill("2025-01")
    page.locator("#show-statement").click()
    expect(page.locator("#statement dd").first).to_have_text("¥0.00")  # before the account existed

    page.goto("/app/family")
    child = live.psn("李小雨")
    checklist = page.locator(f"#checklist-{child}")
    expect(checklist.locator("ol.checklist li")).to_have_count(5)
    expect(checklist.locator("ol.checklist li.met")).to_have_count(5)
    expect(page.locator(f"#checklist-verdict-{child}")).to_have_class(re.compile("flash-ok"))
    expect(checklist).to_contain_text("5008.80")  # the fifth: the balance above 5% of the average wage


def test_the_holder_signs_the_password_free_agreement_on_the_institutions_own_page(phone, live):
    """Issue 14: 张建国 binds Alipay and UnionPay, then signs each on the institution's page (the sandbox's, same
    origin in the demo): a QR and link for Alipay's page.sign redirect, UnionPay's front-end form; confirmed there, he
    comes back, and the platform — having asked the institution — shows the agreement signed."""
    page = phone.new_page()
    log_in_holder(page, live, ZHANG_JIANGUO)
    for pi_id in ("alipay-370200", "unionpay-370200"):
        page.goto("/app/bindings")
        page.locator("#payment_institution_id").select_option(pi_id)
        page.locator("#new-limit").fill("100.00")
        page.locator("#bind").click()
        expect(page.locator("#flash")).to_have_text("已绑定")
        expect(page.locator(f"#agreement-{pi_id}")).to_have_attribute("data-status", "none")
        page.locator(f"#sign-{pi_id}").click()
        expect(page.locator("#signing h1")).to_have_text("前往支付机构签约")
        if pi_id.startswith("alipay"):
            expect(page.locator("#signing-qr svg")).to_be_visible()
        page.locator("#signing-link").click()
        expect(page.locator("h1")).to_contain_text("免密支付签约")  # the institution's page, not ours
        expect(page.locator("#merchant")).not_to_be_empty()
        expect(page.locator("#limit")).to_have_text("¥50000.00")
        page.get_by_role("button", name=re.compile("确认签约")).click()
        expect(page).to_have_url(re.compile("/app/bindings"))
        expect(page.locator("#flash")).to_have_text("已签约免密支付")
        expect(page.locator(f"#agreement-{pi_id}")).to_have_attribute("data-status", "active")
        expect(page.locator(f"#sign-{pi_id}")).to_have_count(0)
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator(f"#unbind-{pi_id}").click()  # leave his bindings as they were
        expect(page.locator(f"#binding-{pi_id}")).to_have_count(0)


def _childs_visit_settled_on_the_guardians_account_then_cancelled(live) -> tuple[str, int, str]:
    """李明 shows 李小雨's code at the demo's level-3 hospital; her visit is settled on his account, then cancelled
    (the money comes back to him). Straight through the services: the cashier's pages for it are tested elsewhere."""
    guardian, child, now = live.psn("李明"), live.psn("李小雨"), live.clock()

    def work(conn):
        hospital = institutions.get(conn, institution_code("440300", "level3"))
        v = visits.open_visit(conn, now, institution=hospital, person_id=child, kind="outpatient")
        visits.upload_lines(conn, now, institution=hospital, visit_id=v.id, items=[
            {"feedetl_sn": "1", "medins_list_codg": "A001", "name": "普通门诊诊查费", "unit_price": "25.00", "quantity": "1"}])
        code = paycodes.issue(conn, live.keyring, now, holder_id=guardian, person_id=child, actor="test").code
        paycodes.unwrap(paycodes.consume(conn, live.keyring, now, code=code, institution=hospital, terminal_id="T", actor="test", visit_id=v.id))
        doc = settlement.settle(conn, now, institution=hospital, visit_id=v.id, msgid=f"H17D{v.id}", actor="test",
                                account=AccountRequest(use=True, payer="guardian", payer_person_id=guardian))
        settlement.cancel(conn, now, institution=hospital, setl_id=doc["setl_id"], actor="test")
        return doc["setl_id"], fen(doc["acct_pay"]), hospital.name
    return live.db.run(work)


def test_the_guardians_statement_names_the_hospital_and_the_child_and_a_refund_is_not_income(phone, desktop, live):
    """Issue 17: the account's lines say the hospital and whose visit (the holder's own child in full); the month's
    statement shows what came back as 退款, apart from income, and the figures add up; the cancelled receipt says 已撤销
    with neither the balance after settlement nor a print button, and names the insured region."""
    setl_id, paid, hospital = _childs_visit_settled_on_the_guardians_account_then_cancelled(live)
    assert paid > 0
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    page.goto("/app/account")
    rows = page.locator("#transactions tbody tr", has_text=setl_id)
    expect(rows).to_have_count(2)  # paid, then given back
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("[data-k=about]")).to_contain_text(f"{hospital} · 就诊人：李小雨")
    statement = page.locator("#statement")
    opening, closing = (fen(statement.locator("dd").nth(i).inner_text()) for i in (0, 4))
    income, refunds, payments = (fen(statement.locator(f"[data-k={k}]").inner_text()) for k in ("income", "refunds", "payments"))
    assert refunds >= paid and opening + income + refunds - payments == closing
    expect(page.locator("table.list tr", has=page.locator(".tag", has_text="退款"))).not_to_have_count(0)
    # a credit says where it came from, never the raw psn_no it was filed under (trial 17 point 7)
    expect(page.locator("main")).to_contain_text("个人账户划入（单位/个人缴费）")
    expect(page.locator("main")).not_to_contain_text(live.psn("李明"))
    # 支付记录: the holder's own child in full (not 李**), and the account share came from the holder's own account
    page.goto("/app/payments")
    expect(page.locator("#records, main").first).to_contain_text("李小雨")
    page.goto(f"/app/payments/settlements/{setl_id}")
    expect(page.locator("#record .meta")).to_contain_text("李小雨")
    expect(page.locator("#record-account-owner")).to_have_text("（从您本人的个人账户支付 · 监护人账户）")

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.goto(f"/cashier/settlements/{setl_id}")
    expect(cashier.locator("#cancelled-stamp")).to_have_text("已撤销")
    expect(cashier.locator("#receipt")).to_contain_text("参保地 深圳市（440300）")
    expect(cashier.locator("#balance-after")).to_have_count(0)
    expect(cashier.locator("#print")).to_have_count(0)
