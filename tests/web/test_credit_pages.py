"""信用支付 in Chromium: 李明 enrols with the demo's SANDBOX credit bank (mounted in the app, reached over
HTTP), the cashier has the cash share of a one-code payment paid from his line, and the bill is repaid
in part by him and the rest by his wife from 家人的账单 ("先看病，回家再让家人付款", seed 004)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.pages import (
    LI_MING,
    PHONE,
    WANG_FANG,
    fen,
    log_in_cashier,
    log_in_holder,
    open_visit_with_sample,
    pay_split,
    same_split,
    show_code,
)
from yibao.domain.money import format_yuan

BANK = "bank-440300"


def figures(page) -> dict[str, int]:
    return {k: fen(page.locator(f"#{k}-{BANK}").inner_text()) for k in ("limit", "available", "held", "owed")}


def bank_knobs(live, **knobs) -> None:
    """The SANDBOX bank's failure knobs (its admin endpoint), e.g. every call answered 5xx."""
    httpx.put(f"{live.url}/sandbox/bank/sandbox/knobs", json=knobs, timeout=10).raise_for_status()


def pay_by_credit(holder, cashier) -> tuple[dict[str, str], str]:
    """A visit of the holder paid one-code with 信用支付: the pre-settlement and the bill number (the payment's trade no)."""
    holder.goto("/app")
    presettled = open_visit_with_sample(cashier, show_code(holder), "none")
    holder.goto("/app")
    cashier.locator("#onecode-code").fill(show_code(holder))
    cashier.get_by_label("个人自付").select_option("credit")
    cashier.locator("#onecode-pay").click()
    expect(cashier.locator("#pay-status")).to_have_text("支付完成")
    same_split(presettled, pay_split(cashier))
    return presettled, cashier.locator("#trade-no").inner_text().strip()


@pytest.mark.both_databases
def test_a_holder_enrols_pays_by_credit_and_the_bill_is_repaid_by_him_and_his_wife(browser, phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, LI_MING)
    holder.locator("#nav-credit").click()
    # Not enrolled: the conditions in words, each met or not; consent is given on the form.
    expect(holder.locator("#condition-adult")).to_have_attribute("data-met", "yes")
    expect(holder.locator("#condition-insured_active")).to_have_attribute("data-met", "yes")
    expect(holder.locator("#condition-ecard_bound")).to_have_attribute("data-met", "yes")
    expect(holder.locator("#condition-consent_given")).to_have_attribute("data-met", "todo")
    expect(holder.locator("#terms")).to_contain_text("医保基金支付部分不经过银行")
    expect(holder.get_by_label("信用银行")).to_have_value(BANK)
    holder.locator("#enrol").click()  # without ticking the consent: refused, the condition named
    expect(holder.locator("#flash")).to_have_text("不符合信用支付开通条件：须阅读并同意当前版本的信用支付协议")
    holder.get_by_label(re.compile("我已阅读并同意")).check()
    holder.locator("#enrol").click()
    expect(holder.locator("#flash")).to_have_text("信用支付已开通")
    expect(holder.locator(f"#line-status-{BANK}")).to_have_text("正常")
    before = figures(holder)
    assert before["limit"] > 0 and before["available"] == before["limit"] and before["held"] == before["owed"] == 0
    expect(holder.locator(f"#no-bills-{BANK}")).to_be_visible()

    # The cashier has the cash share paid from the line.
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    presettled, bill_no = pay_by_credit(holder, cashier)
    cash = fen(presettled["split-cash"])
    assert cash > 0 and bill_no

    holder.goto("/app/credit")
    bill = holder.locator(f"#bill-{bill_no}")
    expect(bill).to_contain_text("深圳市第一人民医院（演示）")
    expect(holder.locator(f"#bill-status-{bill_no}")).to_have_text("待还")
    assert fen(holder.locator(f"#bill-amount-{bill_no}").inner_text()) == cash
    assert fen(holder.locator(f"#bill-owed-{bill_no}").inner_text()) == cash
    after_pay = figures(holder)
    assert after_pay["available"] == before["available"] - cash and after_pay["owed"] == before["owed"] + cash

    # More than owed: refused in words, the field marked, what was typed kept.
    amount = holder.locator(f"#repay-amount-{bill_no}")
    amount.fill(format_yuan(cash + 1))
    holder.locator(f"#repay-{bill_no}").click()
    expect(holder.locator("#flash")).to_have_text(f"还款金额超过待还金额¥{format_yuan(cash)}")
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(amount).to_have_value(format_yuan(cash + 1))
    amount.fill("abc")
    holder.locator(f"#repay-{bill_no}").click()
    expect(holder.locator("#flash")).to_contain_text("金额")
    assert figures(holder) == after_pay

    # The bank does not answer: the repayment is 确认中 until the bank is asked.
    bank_knobs(live, server_error_rate=1.0)
    try:
        amount.fill("1.00")
        holder.locator(f"#repay-{bill_no}").click()
        expect(holder.locator("#flash")).to_contain_text("银行未给出确定结果")
    finally:
        bank_knobs(live, server_error_rate=0.0)
    doubt = bill.locator("[id^=doubt-text-]")
    expect(doubt).to_have_text("¥1.00 还款确认中")
    assert fen(holder.locator(f"#bill-owed-{bill_no}").inner_text()) == cash
    bill.get_by_role("button", name="向银行查询").click()
    expect(holder.locator("#flash")).to_have_text("银行已确认还款¥1.00")
    expect(doubt).to_have_count(0)
    expect(holder.locator(f"#bill-owed-{bill_no}")).to_have_text(f"¥{format_yuan(cash - 100)}")

    # A partial repayment by the holder.
    amount.fill("2.00")
    holder.locator(f"#repay-{bill_no}").click()
    expect(holder.locator("#flash")).to_have_text(f"已还款¥2.00，尚欠¥{format_yuan(cash - 300)}")
    assert figures(holder)["available"] == after_pay["available"] + 300

    # His wife (mutual aid) repays the rest from 家人的账单, with her own session.
    wife_context = browser.new_context(viewport=PHONE, base_url=live.url, is_mobile=True, has_touch=True)
    try:
        wife = wife_context.new_page()
        log_in_holder(wife, live, WANG_FANG)
        wife.goto("/app/credit")
        family_bill = wife.locator(f"#family-bill-list #bill-{bill_no}")
        expect(family_bill).to_contain_text("配偶（家庭共济）")
        expect(wife.locator(f"#repay-amount-{bill_no}")).to_have_value(format_yuan(cash - 300))  # the rest, by default
        wife.locator(f"#repay-{bill_no}").click()
        expect(wife.locator("#flash")).to_have_text(f"已还款¥{format_yuan(cash - 300)}，该账单已还清")
        expect(wife.locator(f"#bill-{bill_no}")).to_have_count(0)  # nothing left to repay for him
    finally:
        wife_context.close()

    holder.goto("/app/credit")
    expect(holder.locator(f"#bill-status-{bill_no}")).to_have_text("已还清")
    expect(holder.locator(f"#repay-form-{bill_no}")).to_have_count(0)
    assert figures(holder) == before  # the line is whole again
    holder.locator("#lang-toggle").click()
    expect(holder.locator(f"#bill-status-{bill_no}")).to_have_text("Repaid")
    holder.locator("#lang-toggle").click()


def test_credit_payment_for_a_holder_not_enrolled_is_refused_in_words(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, WANG_FANG)
    holder.goto("/app/credit")
    expect(holder.locator("#condition-ecard_bound")).to_have_attribute("data-met", "no")  # no credit bank bound
    expect(holder.locator("#no-credit-bank")).to_contain_text("医保信用银行（沙箱）")
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    holder.goto("/app")
    open_visit_with_sample(cashier, show_code(holder), "none")
    holder.goto("/app")
    cashier.locator("#onecode-code").fill(show_code(holder))
    cashier.locator("#onecode-pay-by").select_option("credit")
    cashier.locator("#onecode-pay").click()
    expect(cashier.locator("#flash")).to_have_text("尚未开通信用支付")
