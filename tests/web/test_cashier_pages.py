"""/cashier with /app in Chromium: a holder shows a code, the cashier types it, enters fees,
pre-settles, confirms; the receipt matches the pre-settlement; the holder's account shows it;
a refreshed code's predecessor is refused at the counter; a refund restores the balance."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import LI_MING, balance, fen, log_in_cashier, log_in_holder, show_code, split_of


@pytest.mark.both_databases
def test_a_code_shown_on_the_phone_is_settled_at_the_counter_and_the_account_shows_it(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, LI_MING)
    before = balance(holder)
    holder.goto("/app")
    code = show_code(holder)

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.get_by_label(re.compile("医保支付码|Payment code")).fill(" ".join(code[i:i + 4] for i in range(0, 20, 4)))
    cashier.locator("#verify-code").click()
    expect(cashier.locator("#patient-name")).to_have_text("李*")
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(5)
    cashier.locator("#presettle").click()
    expect(cashier.locator("#explanation li").first).to_be_visible()
    presettled = split_of(cashier)
    assert fen(presettled["split-total"]) == 2500 + 2500 + 2000 + 3000 + 36000  # the sample set: 25 + 12.50×2 + 20 + 30 + 360
    assert fen(presettled["split-pool"]) > 0  # above the year's deductible: the pooled fund pays a share
    assert fen(presettled["split-total"]) == fen(presettled["split-fund"]) + fen(presettled["split-account"]) + fen(presettled["split-cash"])
    explanation = cashier.locator("#explanation").inner_text()
    assert "¥" in explanation

    cashier.locator("#confirm-settle").click()
    expect(cashier.locator("#receipt")).to_be_visible()
    assert split_of(cashier) == presettled  # the receipt's split is the pre-settlement's
    setl_id = cashier.locator("#setl-id").inner_text()
    expect(cashier.locator("#cash-note")).to_contain_text(presettled["split-cash"])

    account_pay = fen(presettled["split-account"])
    assert account_pay > 0
    assert balance(holder) == before - account_pay
    newest = holder.locator("#transactions tbody tr").first
    expect(newest).to_contain_text(setl_id)
    expect(newest).to_contain_text("医保结算支付")
    assert fen(newest.locator("td.num").inner_text()) == -account_pay

    # The code was used up by the scan: the same code again is refused, in words.
    cashier.goto("/cashier")
    cashier.locator("#code").fill(code)
    cashier.locator("#verify-code").click()
    expect(cashier.locator("#flash")).to_have_text(re.compile("该支付码已使用"))

    # Refund: the settlement is cancelled and the account gets its money back.
    cashier.goto(f"/cashier/settlements/{setl_id}")
    cashier.once("dialog", lambda dialog: dialog.accept())
    cashier.locator("#refund").click()
    expect(cashier.locator("#cancelled-stamp")).to_be_visible()
    assert balance(holder) == before
    expect(holder.locator("#transactions tbody tr").first).to_contain_text("结算撤销退回")


def test_a_refreshed_codes_predecessor_is_refused_at_the_counter_with_its_own_message(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, LI_MING)
    old = show_code(holder)
    holder.locator("#refresh").click()
    expect(holder.locator("#barcode text")).not_to_have_text(" ".join(old[i:i + 4] for i in range(0, 20, 4)))

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.locator("#code").fill(old)
    cashier.locator("#verify-code").click()
    expect(cashier.locator("#flash")).to_have_text("该支付码已被新码替换（已刷新），请扫描最新的码")
    expect(cashier.locator("#refusals")).to_contain_text("码已被刷新替换")  # in words, not the code "paycode_replaced"
    cashier.locator("#lang-toggle").click()
    cashier.locator("#code").fill(old)
    cashier.locator("#verify-code").click()
    expect(cashier.locator("#flash")).to_have_text("this code was replaced by a newer one (refreshed); scan the newest code")


@pytest.mark.both_databases
def test_a_childs_code_settles_on_the_guardians_account(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, LI_MING)
    before = balance(holder)
    holder.goto(f"/app?psn_no={live.psn('李小雨')}")
    code = show_code(holder)

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.locator("#code").fill(code)
    cashier.locator("#verify-code").click()
    expect(cashier.locator("#patient-name")).to_have_text("李**")
    expect(cashier.locator("#account")).to_have_value(f"guardian:{live.psn('李明')}")
    cashier.locator("#line-form").evaluate("f => f.closest('details').open = true")
    cashier.get_by_label(re.compile("项目编码|Item code")).fill("A201")
    cashier.get_by_label(re.compile("项目名称|Item name")).fill("儿科诊查费")
    cashier.get_by_label(re.compile("单价（元）|Unit price")).fill("25.00")
    cashier.locator("#add-line").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(1)
    cashier.locator("#presettle").click()
    account_pay = fen(cashier.locator("#split-account").inner_text())
    assert account_pay > 0
    guardians = re.compile(r"^个人账户支付（其中监护人账户 ¥[\d.]+）")  # the guardian's money, not 共济
    expect(cashier.locator("#split-account").locator("xpath=..").locator("th")).to_have_text(guardians)
    cashier.locator("#confirm-settle").click()
    expect(cashier.locator("#receipt")).to_be_visible()
    expect(cashier.locator("#split-account").locator("xpath=..").locator("th")).to_have_text(guardians)
    assert balance(holder) == before - account_pay


def test_bad_fee_input_is_said_in_words_and_the_form_keeps_what_was_typed(desktop, live, phone):
    holder = phone.new_page()
    log_in_holder(holder, live, "13800138004")  # 赵磊, insured in Ningbo, filed in Shenzhen
    code = show_code(holder)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.locator("#code").fill(code)
    cashier.locator("#verify-code").click()
    cashier.locator("#line-form").evaluate("f => f.closest('details').open = true")
    cashier.locator("#l-code").fill("A001")
    cashier.locator("#l-price").fill("12.345")
    cashier.locator("#add-line").click()
    expect(cashier.locator("#flash")).to_have_text(re.compile("^单价：金额最多2位小数"))  # the field named, then the rule
    expect(cashier.locator("#l-price")).to_have_value("12.345")
    expect(cashier.locator("#l-price")).to_have_attribute("aria-invalid", "true")
    expect(cashier.locator("#l-qty")).not_to_have_attribute("aria-invalid", "true")
    assert "message_zh" not in cashier.content()
    cashier.locator("#line-form").evaluate("f => f.closest('details').open = true")
    cashier.locator("#l-price").fill("12.00")
    cashier.locator("#l-qty").fill("abc")
    cashier.locator("#l-rx").check()
    cashier.locator("#l-prescriber").fill("王医生")
    cashier.locator("#add-line").click()
    expect(cashier.locator("#flash")).to_have_text(re.compile("^数量不是有效的数字"))  # the field named (its message starts with it), then the rule
    expect(cashier.locator("#l-qty")).to_have_attribute("aria-invalid", "true")
    expect(cashier.locator("#l-rx")).to_be_checked()  # the whole line comes back, the prescription too
    expect(cashier.locator("#l-prescriber")).to_have_value("王医生")
