"""Mobile payment (移动支付) in Chromium: the cashier sends a visit's bill to the holder's phone; the holder
sees it in 待支付 with the split previewed (the same as the cashier's pre-settlement), pays it with the PIN
(a wrong one refused with the tries left) and the cashier sees it completed. A guardian pays a child's bill
from the guardian's account. Other tests move 李明's balance too: only relative changes are asserted."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import LI_MING, balance, fen, log_in_cashier, log_in_holder, pay_split, present_card_on_visit, same_split, split_of

PIN = "246810"
# 赵磊: insured in Ningbo, long-term filing in Shenzhen, treated at the Shenzhen hospital. His account may not pay
# own-expense and over-limit items (Ningbo's rule), so a bill paid with the account still has cash, hence the PIN;
# Shenzhen's rule lets the account pay the whole personal share, so a Shenzhen-insured holder's cash would be 0.
ZHAO_LEI = "13800138004"


def ensure_pin(holder) -> None:
    """The holder needs a payment PIN: set it through /app/pin unless an earlier test did."""
    holder.goto("/app/pin")
    if holder.locator("#old-pin").count() == 0:
        holder.get_by_label("新支付密码", exact=True).fill(PIN)
        holder.get_by_label("再次输入新支付密码").fill(PIN)
        holder.locator("#save-pin").click()
        expect(holder.locator("#flash")).to_have_text("支付密码已设置")


def open_visit_by_card(cashier, card_no: str, pin: str | None = None) -> str:
    """No code: the visit opens by the card number (with ``pin``, typed by its holder: their presence, so the cashier's
    pre-settlement shows the account's share); the sample fee lines are loaded. Answers the visit's id."""
    cashier.goto("/cashier")
    cashier.locator("#lookup-form").evaluate("f => { const d = f.closest('details'); if (d) d.open = true; }")
    cashier.locator("#card_no").fill(card_no)
    if pin is not None:
        cashier.locator("#card-pin").fill(pin)
    cashier.locator("#lookup").click()
    expect(cashier.locator("#patient")).to_be_visible()
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr").first).to_be_visible()
    return re.search(r"/cashier/visits/([^/?]+)", cashier.url).group(1)


def publish(cashier) -> str:
    """发送到手机支付: the cashier lands on the bill's payment page, waiting for the holder. Answers the payment id.
    The same form sent again (a double submit) answers the same bill."""
    form = cashier.locator("#bill-form")
    action, sent = form.get_attribute("action"), form.evaluate("f => Object.fromEntries(new FormData(f))")
    cashier.locator("#publish-bill").click()
    expect(cashier.locator("#flash")).to_have_text("账单已发送到参保人手机，等待参保人支付")
    expect(cashier.locator("#pay-status")).to_have_text("待支付（已发送到手机）")
    expect(cashier.locator("#bill-waiting")).to_be_visible()
    payment_id = cashier.locator("#payment-id").inner_text()
    again = cashier.request.post(action, form=sent, max_redirects=0)
    assert again.status == 303 and again.headers["location"] == f"/cashier/payments/{payment_id}"
    return payment_id


def bill_split(holder, payment_id: str) -> dict[str, int]:
    """The split previewed for a waiting bill, by row (as `pay_split` reads a payment's)."""
    cells = holder.locator(f"#bill-split-{payment_id} td[data-k]")
    return {cells.nth(i).get_attribute("data-k"): fen(cells.nth(i).inner_text()) for i in range(cells.count())}


def pay(holder, payment_id: str, pin: str) -> None:
    item = holder.locator(f"#bill-{payment_id}")
    item.get_by_label("6位支付密码").fill(pin)
    item.locator(f"#pay-bill-{payment_id}").click()


@pytest.mark.both_databases
def test_a_mobile_bill_paid_with_the_pin(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, ZHAO_LEI)
    ensure_pin(holder)
    before = balance(holder)

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    open_visit_by_card(cashier, live.people["赵磊"]["card_no"], PIN)  # he is at the counter: card and PIN
    cashier.locator("#account").select_option("self")
    cashier.locator("#presettle").click()
    expect(cashier.locator("#split")).to_be_visible()
    presettled = split_of(cashier)
    assert fen(presettled["split-account"]) > 0 and fen(presettled["split-cash"]) > 0
    payment_id = publish(cashier)

    # The holder sees the bill with the same split as the pre-settlement; the toggle previews it without the account.
    holder.goto("/app/bills")
    item = holder.locator(f"#bill-{payment_id}")
    expect(item).to_contain_text("深圳")
    expect(item.locator(".bill-patient")).to_have_text("赵磊")  # his own name, in full to him
    expect(item.locator(".row-head .tag")).to_have_text("待支付（医院发来的账单）")  # the holder's wording, not the counter's
    expect(item.locator(f"#pi-{payment_id} option[selected]")).to_have_text(re.compile("（默认）$"))  # full-width brackets
    assert fen(item.locator(".bill-amount").inner_text()) == fen(presettled["split-total"])
    same_split(presettled, bill_split(holder, payment_id))
    holder.get_by_label("使用个人账户").uncheck()
    holder.locator("#re-preview").click()
    without = bill_split(holder, payment_id)
    assert without["account"] == 0 and without["cash"] == fen(presettled["split-cash"]) + fen(presettled["split-account"])
    holder.get_by_label("使用个人账户").check()
    holder.locator("#re-preview").click()
    same_split(presettled, bill_split(holder, payment_id))
    expect(holder.locator(f"#pi-{payment_id}")).to_have_value("wechat-330200")

    # A wrong PIN is refused with the tries left; the same form sent again counts nothing more.
    item.get_by_label("6位支付密码").fill("135791")
    sent = holder.locator(f"#pay-form-{payment_id}").evaluate("f => Object.fromEntries(new FormData(f))")
    holder.locator(f"#pay-bill-{payment_id}").click()
    expect(holder.locator("#flash")).to_have_text("支付密码错误，还可尝试4次")
    again = holder.request.post(f"/app/bills/{payment_id}/pay", form=sent, max_redirects=0)
    assert again.status == 303 and again.headers["location"] == "/app/bills"
    holder.goto("/app/bills")
    pay(holder, payment_id, "975319")
    expect(holder.locator("#flash")).to_have_text("支付密码错误，还可尝试3次")
    cashier.locator("#refresh-payment").click()
    expect(cashier.locator("#pay-status")).to_have_text("待支付（已发送到手机）")
    assert balance(holder) == before

    # The right PIN: paid, and the result page shows it completed with the same split.
    holder.goto("/app/bills")
    pay(holder, payment_id, PIN)
    expect(holder.locator("#flash")).to_have_text("支付成功")
    expect(holder.locator("#pay-status")).to_have_text("支付完成")
    same_split(presettled, pay_split(holder))
    holder.goto("/app/bills")
    expect(holder.locator(f"#bill-{payment_id}")).to_have_count(0)
    expect(holder.locator(f"#done-{payment_id}")).to_contain_text("支付完成")

    cashier.locator("#refresh-payment").click()
    expect(cashier.locator("#pay-status")).to_have_text("支付完成")
    same_split(presettled, pay_split(cashier))
    assert cashier.locator("#trade-no").inner_text().strip()
    setl_id = cashier.locator("#pay-setl-id").inner_text()
    assert balance(holder) == before - fen(presettled["split-account"])
    newest = holder.locator("#transactions tbody tr").first
    expect(newest).to_contain_text(setl_id)
    assert fen(newest.locator("td.num").inner_text()) == -fen(presettled["split-account"])
    cashier.locator("#pay-setl-id").click()  # the receipt says the holder paid the cash on the phone
    expect(cashier.locator("#paid-onecode")).to_contain_text("移动支付")

    holder.goto("/app/bills")
    holder.locator("#lang-toggle").click()
    expect(holder.locator("#mobile-bills h2")).to_have_text("Bills from hospitals")
    holder.locator("#lang-toggle").click()


@pytest.mark.both_databases
def test_a_guardian_pays_a_childs_published_bill_from_the_guardians_account(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, LI_MING)
    ensure_pin(holder)
    before = balance(holder)

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    visit_id = open_visit_by_card(cashier, live.people["李小雨"]["card_no"])
    expect(cashier.locator("#patient-name")).to_have_text("李**")
    # The pre-settlement the guardian will see: the child's account share from the guardian's account —
    # offered first, as a child has no account of her own.
    expect(cashier.locator("#account option:checked")).to_have_text("李*的个人账户（监护人）")  # the guardian named
    expect(cashier.locator("#account option[value='none']")).to_have_count(1)  # still there to choose (she has no account of her own)
    present_card_on_visit(cashier, live, "李明")  # the guardian, at the counter, reads his card with its PIN
    cashier.locator("#presettle").click()
    expect(cashier).to_have_url(re.compile(f"/cashier/visits/{visit_id}\\?(?=.*account=guardian%3A{live.psn('李明')})"))
    presettled = split_of(cashier)
    assert fen(presettled["split-account"]) > 0
    payment_id = publish(cashier)

    holder.goto("/app/bills")
    item = holder.locator(f"#bill-{payment_id}")
    expect(item.locator(".bill-patient")).to_have_text("李小雨")  # the holder's own child, in full
    expect(item).to_contain_text("为家庭成员支付")
    same_split(presettled, bill_split(holder, payment_id))
    # Shenzhen's account pays the whole personal share: no cash, so no PIN is asked for.
    assert fen(presettled["split-cash"]) == 0
    expect(item.locator(f"#bill-pin-{payment_id}")).to_have_count(0)
    expect(item).to_contain_text("无需输入支付密码")
    item.locator(f"#pay-bill-{payment_id}").click()
    expect(holder.locator("#flash")).to_have_text("支付成功")
    expect(holder.locator("#pay-status")).to_have_text("支付完成")

    # The cashier finds the visit's bill from the visit page: completed, paid by the guardian.
    cashier.goto(f"/cashier/visits/{visit_id}")
    cashier.locator("#visit-bill").click()
    expect(cashier.locator("#pay-status")).to_have_text("支付完成")
    expect(cashier.locator("#payment-receipt")).to_contain_text("监护人代付")
    same_split(presettled, pay_split(cashier))
    setl_id = cashier.locator("#pay-setl-id").inner_text()
    assert balance(holder) == before - fen(presettled["split-account"])
    newest = holder.locator("#transactions tbody tr").first
    expect(newest).to_contain_text(setl_id)


def test_a_bill_on_the_phone_is_withdrawn_to_change_its_lines_and_sent_again(phone, desktop, live):
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    visit_id = open_visit_by_card(cashier, live.people["赵磊"]["card_no"])
    first = publish(cashier)
    holder = phone.new_page()
    log_in_holder(holder, live, ZHAO_LEI)
    holder.goto("/app/bills")
    total = fen(holder.locator(f"#bill-{first} .bill-amount").inner_text())

    # While the holder has it, the visit's lines stay as the bill shows them: refused in words, naming the bill.
    cashier.goto(f"/cashier/visits/{visit_id}")
    expect(cashier.locator("#open-bill")).to_contain_text(first)
    expect(cashier.locator("#bill-form")).to_have_count(0)
    cashier.locator("#lines tbody tr").first.get_by_role("button").click()  # revoke a line
    expect(cashier.locator("#flash")).to_contain_text(f"该就诊的账单 {first} 已发送到参保人手机")
    expect(cashier.locator("#lines tbody tr", has_text="已撤销")).to_have_count(0)

    cashier.once("dialog", lambda dialog: dialog.accept())
    cashier.locator("#withdraw-bill").click()
    expect(cashier.locator("#flash")).to_have_text("账单已撤回，可修改明细后重新发送或改用其他方式收费")
    cashier.locator("#lines tbody tr").first.get_by_role("button").click()  # now the line can go
    expect(cashier.locator("#lines tbody tr", has_text="已撤销")).to_have_count(1)
    second = publish(cashier)
    assert second != first

    holder.goto("/app/bills")
    expect(holder.locator(f"#bill-{first}")).to_have_count(0)  # withdrawn: no longer to pay
    expect(holder.locator(f"#done-{first}")).to_contain_text("医院已撤回账单")
    expect(holder.locator(f"#done-{first}")).not_to_contain_text("¥0.00")  # never priced: no amounts to show
    assert fen(holder.locator(f"#bill-{second} .bill-amount").inner_text()) < total  # the new bill, without the line
