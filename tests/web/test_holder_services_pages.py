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

from tests.support.pages import fen, log_in_holder
from yibao.sandbox.face_samples import face_png

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
    expect(card.locator(".tag")).to_have_text("制作中")
    expect(card.locator("ol.progress li.done")).to_have_count(1)  # accepted; printing, mailed, ready to come
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


def test_a_card_reported_lost_then_cancelled(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, ZHANG_JIANGUO)
    page.goto("/app/cards")
    card = page.locator("li.card-item", has_text="0015")
    expect(card.locator(".tag")).to_have_text("正常使用")
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="挂失").click()
    expect(card.locator(".tag")).to_have_text("已挂失")
    card.locator("details summary").click()
    expect(card.locator(".timeline")).to_contain_text("挂失")
    expect(card.locator(".timeline")).to_contain_text("可领取")  # the production stages in words, not stage_ready
    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="注销").click()
    expect(card.locator(".tag")).to_have_text("已注销")
    expect(card.get_by_role("button")).to_have_count(0)  # nothing more to do with a cancelled card


def test_the_monthly_statement_adds_up_and_the_guardian_conditions_are_a_checklist(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    page.goto("/app/account")
    figures = [fen(page.locator("#statement dd").nth(i).inner_text()) for i in range(4)]
    opening, credits, debits, closing = figures
    assert opening + credits - debits == closing and debits >= 5000  # the demo's visit paid ¥50.00 from it this month
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
