"""/app in Chromium: log-in, the payment code (show, tap to refresh, refresh at expiry), a child's
card, the English toggle, errors in words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import LI_MING, log_in_holder, show_code, shown_code
from yibao.sandbox.demo import institution_code
from yibao.services.agency import institutions
from yibao.services.payments import paycodes


def scan_directly(live, code: str):
    """What the platform says to a hospital scanning this code (the service, not the pages)."""
    hospital = live.db.run(lambda c: institutions.get(c, institution_code("440300", "level3")), write=False)
    return live.db.run(lambda c: paycodes.consume(c, live.keyring, live.db.clock(), code=code, institution=hospital, actor="test"))


def test_a_holder_logs_in_and_shows_a_code_with_qr_barcode_and_countdown(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    expect(page.locator("#who")).to_have_text("李*")
    code = show_code(page)
    expect(page.locator("#barcode svg")).to_be_visible()
    assert len(code) == 20 and code.startswith("91")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^[0-3]:\d\d$"))
    assert page.locator("#balance").inner_text().startswith("¥")
    # The pages use no outside asset and no inline script (the CSP forbids both).
    assert page.evaluate("[...document.scripts].every(s => s.src.startsWith(location.origin))")
    assert page.evaluate("[...document.styleSheets].every(s => s.href && s.href.startsWith(location.origin))")


@pytest.mark.both_databases
def test_tapping_the_code_refreshes_it_and_the_old_one_dies(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    old = show_code(page)
    page.locator("#qr").click()  # a tap on the QR code
    expect(page.locator("#barcode text")).not_to_have_text(re.compile(" ".join(old[i:i + 4] for i in range(0, 20, 4))))
    new = shown_code(page)
    assert new != old
    refusal = scan_directly(live, old)
    assert getattr(refusal, "code", None) == "paycode_replaced", refusal
    assert scan_directly(live, new).person_id == live.psn("李明")


def test_a_code_used_at_a_counter_does_not_stay_up_with_its_countdown(phone, live):
    """Trial 17, point 9: the screen polls its code; once a counter used it, the countdown stops and says 已使用, and a
    tap on the dimmed code gets a fresh one."""
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    used = show_code(page)
    assert scan_directly(live, used).person_id == live.psn("李明")
    expect(page.locator("#countdown")).to_have_text("已使用，点击二维码获取新码")
    expect(page.locator("#refresh-form")).to_have_class(re.compile(r"\bused\b"))
    page.locator("#qr").click()
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^[0-3]:\d\d$"))
    assert shown_code(page) != used


def test_the_code_refreshes_itself_when_its_time_is_up(phone, live):
    page = phone.new_page()
    page.clock.install()  # the page's timers run on a clock the test moves
    log_in_holder(page, live, LI_MING)
    old = show_code(page)
    page.clock.run_for(60_000)
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^[12]:\d\d$"))
    page.clock.run_for(125_000)  # past the 180 s lifetime: the page asks for a new code
    page.wait_for_load_state()
    expect(page.locator("#barcode text")).not_to_have_text(" ".join(old[i:i + 4] for i in range(0, 20, 4)))
    assert shown_code(page) != old
    assert getattr(scan_directly(live, old), "code", None) == "paycode_replaced"


def test_a_guardian_switches_to_the_childs_card(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    chooser = page.get_by_label(re.compile("出示谁的码|Whose code"))
    # The holder's own child, in full (the holder's family is not masked to the holder).
    expect(chooser.locator(f"option[value='{live.psn('李小雨')}']")).to_have_text("李小雨（少儿）")
    chooser.select_option(value=live.psn("李小雨"))
    page.locator("#switch-button").click()
    expect(page.locator("#ecard-title")).to_contain_text("李小雨")
    # A child has no account: the guardian's pays, and the screen says whose (not "该参保人没有医保个人账户").
    expect(page.locator("#paid-by-guardian")).to_contain_text("由监护人李明的个人账户支付")
    code = show_code(page)
    expect(page.locator("#ecard-title")).to_contain_text("李小雨")
    consumed = scan_directly(live, code)
    assert consumed.person_id == live.psn("李小雨") and consumed.holder_id == live.psn("李明") and consumed.relation == "guardian"


def test_the_english_toggle_changes_the_language_and_stays(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#nav-account")).to_have_text("账户")
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#nav-account")).to_have_text("Account")
    assert re.search(r"/app$", page.url)  # back on the page it was clicked on
    page.locator("#nav-family").click()
    expect(page.get_by_role("heading", name="Family links")).to_be_visible()
    page.locator("#lang-toggle").click()
    expect(page.get_by_role("heading", name="家庭关联")).to_be_visible()


def test_a_wrong_sms_code_is_said_in_words_not_json(phone, live):
    page = phone.new_page()
    live.clock.advance(seconds=31)
    page.goto("/app/login")
    page.locator("#phone").fill("13800138002")
    page.locator("#send-code").click()
    page.locator("#code").fill("000000")
    page.locator("#log-in").click()
    expect(page.locator("#flash")).to_have_text(re.compile("验证码错误，还可尝试\\d次"))
    body = page.locator("body").inner_text()
    assert "{" not in body and "message_zh" not in body and "Traceback" not in body
    page.locator("#lang-toggle").click()
    page.locator("#phone").fill("13800138002")
    page.locator("#code").fill("000001")
    page.locator("#log-in").click()
    expect(page.locator("#flash")).to_have_text(re.compile(r"wrong code; \d attempts left"))


def test_pages_without_a_session_send_the_reader_to_log_in(phone, live):
    page = phone.new_page()
    page.goto("/app/account")
    assert page.url.endswith("/app/login")
    response = page.goto("/app/no-such-page")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("页面不存在")


def test_real_name_log_in_with_the_face_and_a_photo_refused(phone, live):
    """实名登录: name + ID number + a live face (the demo's sandbox captures); a photo fails the liveness check."""
    page = phone.new_page()
    page.goto("/app/login")
    page.locator("#real-name-login summary").click()
    # The demo guide on the page lists the demo people's ID numbers (synthetic ones).
    id_number = re.search(r"张建国 · 13800138002 · (\d{17}[\dX])", page.locator("body").text_content()).group(1)
    page.locator("#rn-name").fill("张建国")
    page.locator("#rn-id").fill(id_number)
    page.locator("#rn-sample").select_option(label="张建国 的脸（现场采集）")
    page.locator("#rn-name").fill("张建军")  # a wrong name: refused, without saying which part was wrong
    page.locator("#real-name-log-in").click()
    expect(page.locator("#flash")).to_have_text(re.compile("实名信息或人脸核验未通过"))
    expect(page.locator("#real-name-form")).to_be_visible()  # the real-name form stays open
    assert id_number not in repr(page.context.cookies())  # personal data stays out of the cookies
    page.locator("#rn-name").fill("张建国")
    page.locator("#rn-id").fill(id_number)
    page.locator("#rn-sample").select_option(label="李明 的照片（翻拍，活体检测不通过）")  # someone else's photo
    page.locator("#real-name-log-in").click()
    expect(page.locator("#flash")).to_have_text(re.compile("实名信息或人脸核验未通过"))
    page.locator("#rn-name").fill("张建国")
    page.locator("#rn-id").fill(id_number)
    page.locator("#rn-sample").select_option(label="张建国 的脸（现场采集）")
    page.locator("#real-name-log-in").click()
    expect(page.locator("#qr svg, #show-code").first).to_be_visible()
    assert page.url.endswith("/app")


def test_a_relative_sharing_an_account_is_named_in_full_and_said_to_pay(phone, live):
    """Trial 17, points 3 and 12: 王芳 has no account; 李明 shares his with her (家庭共济). The link is mutual: her family
    page names him in full, and her code and account screens say his account can pay for her."""
    page = phone.new_page()
    log_in_holder(page, live, "13800138005")  # 王芳
    said = "李明与您家庭共济：看病时可由李明的个人账户支付。"
    expect(page.locator("#paid-by-family")).to_have_text(said)
    page.goto("/app/account")
    expect(page.locator("#paid-by-family")).to_have_text(said)
    page.goto("/app/family")
    expect(page.locator("#links")).to_contain_text("李明")
    expect(page.locator("#links")).not_to_contain_text("李*")
