"""Face payment (刷脸支付) and refunds (退款) at /cashier in Chromium.

The cashier pays a visit by face with a chosen capture sample: the app's face verifier (the SANDBOX one
mounted in the app, reached over HTTP) matches the payer on another day and refuses another person or a
photo held up; failures are said with the tries left, then the payment code is asked for. A completed
payment is refunded to the payment institution: everything, or some items (previewed per leg, then one
refund: the payment is partly refunded); a refund whose answer is unknown is asked about with 查询.

赵磊 (Ningbo, filed in Shenzhen; wechat-330200, password-free up to 1000.00) pays here, so that 李明 and
王芳, whose limits other tests change, are left alone; 王芳 (no personal account) tries wrong faces.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import (
    balance,
    ensure_pin,
    fen,
    log_in_cashier,
    log_in_holder,
    look_up_card,
    pay_split,
    present_card_on_visit,
    same_split,
    show_code,
    split_of,
)

ZHAO_LEI = "13800138004"
SAMPLE_TOTAL = 2500 + 2500 + 2000 + 3000 + 36000  # the hospital's sample set: 25 + 12.50×2 + 20 + 30 + 360


def open_visit_by_card(cashier, live, name: str, account: str, pin: str | None = None) -> dict[str, str]:
    """Look the person up by card number (with ``pin``: its PIN typed by the holder, their presence for the account),
    load the sample fee lines, pre-settle: the split."""
    look_up_card(cashier, live, name, pin)
    expect(cashier.locator("#patient")).to_be_visible()
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(5)
    cashier.locator("#account").select_option(account)
    cashier.locator("#presettle").click()
    expect(cashier.locator("#split")).to_be_visible()
    return split_of(cashier)


def pay_by_face(cashier, sample: str) -> None:
    cashier.locator(f"#face-sample-{sample}").check()
    cashier.locator("#face-pay").click()


def pay_by_code(cashier, holder, live) -> dict[str, str]:
    """A completed one-code payment of 赵磊's sample visit, his account used: the pre-settlement (his card read with its
    PIN first, so it shows the account's share)."""
    presettled = open_visit_by_card(cashier, live, "赵磊", "self", pin=ensure_pin(live, "赵磊"))
    holder.goto("/app")
    cashier.locator("#onecode-code").fill(show_code(holder))
    expect(cashier.locator("#onecode-account")).to_be_checked()
    cashier.locator("#onecode-pay").click()
    expect(cashier.locator("#pay-status")).to_have_text("支付完成")
    return presettled


def refund(cashier, scope: str) -> None:
    cashier.locator(f"#refund-scope-{scope}").check()
    cashier.locator("#refund-reason").select_option("items_returned")
    cashier.once("dialog", lambda dialog: dialog.accept())
    cashier.locator("#refund-submit").click()


@pytest.mark.both_databases
def test_face_payment_with_the_payers_face_completes_and_another_face_is_refused_with_the_tries_left(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, ZHAO_LEI)
    before = balance(holder)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    # His card read with its PIN: he is present, so the pre-settlement shows his account's share.
    presettled = open_visit_by_card(cashier, live, "赵磊", "self", pin=ensure_pin(live, "赵磊"))
    assert fen(presettled["split-total"]) == SAMPLE_TOTAL
    account_pay = fen(presettled["split-account"])
    assert account_pay > 0 and 0 < fen(presettled["split-cash"]) <= 100000

    # The samples are PNGs the app serves (the CSP's img-src 'self'), drawn for this payer.
    for sample in ("same", "other", "spoof"):
        image = cashier.locator(f"#face-img-{sample}")
        expect(image).to_be_visible()  # laid out (width/height attributes) — not yet loaded
        # Wait for the load to end either way, then check it drew: a PNG that failed has width 0.
        cashier.wait_for_function("i => i.complete", arg=image.element_handle())
        assert image.evaluate("i => i.naturalWidth") == 64
    expect(cashier.locator("#face-account")).to_be_checked()
    pay_by_face(cashier, "same")
    expect(cashier.locator("#pay-status")).to_have_text("支付完成")
    expect(cashier.locator("#flash")).to_have_text("刷脸支付成功")
    expect(cashier.locator("#pay-method")).to_have_text("刷脸支付")
    same_split(presettled, pay_split(cashier))
    assert cashier.locator("#trade-no").inner_text().strip()
    setl_id = cashier.locator("#pay-setl-id").inner_text()
    assert balance(holder) == before - account_pay
    newest = holder.locator("#transactions tbody tr").first
    expect(newest).to_contain_text(setl_id)
    assert fen(newest.locator("td.num").inner_text()) == -account_pay

    # Another person's face: refused in words with the tries left (none failed since the success); nothing paid.
    open_visit_by_card(cashier, live, "赵磊", "self")
    pay_by_face(cashier, "other")
    expect(cashier.locator("#flash")).to_have_text("人脸比对不一致，还可再试2次")
    expect(cashier.locator("#face-form")).to_be_visible()  # back on the visit, to try again or pay by code
    assert balance(holder) == before - account_pay


def test_three_failed_face_checks_send_the_payer_to_the_payment_code(desktop, live):
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    open_visit_by_card(cashier, live, "王芳", "none")
    pay_by_face(cashier, "spoof")  # the enrolment photo held up: the liveness check fails
    expect(cashier.locator("#flash")).to_have_text(re.compile(r"^活体检测未通过，(还可再试\d次|请改用医保码支付)$"))
    left = re.search(r"还可再试(\d)次", cashier.locator("#flash").inner_text())
    for _ in range(int(left.group(1)) if left else 0):
        pay_by_face(cashier, "other")
        expect(cashier.locator("#flash")).to_have_text(re.compile("^人脸比对不一致，"))
    expect(cashier.locator("#flash")).to_have_text(re.compile("请改用医保码支付$"))
    # The third failure within ten minutes: even the right face is refused (429 face_attempts_exhausted).
    pay_by_face(cashier, "same")
    expect(cashier.locator("#flash")).to_have_text("刷脸失败已达3次，请改用医保码支付")
    cashier.locator("#lang-toggle").click()
    expect(cashier.locator("#face-title")).to_have_text("Face payment")
    cashier.locator("#lang-toggle").click()


@pytest.mark.both_databases
def test_a_refund_gives_everything_back_through_the_institution(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, ZHAO_LEI)
    before = balance(holder)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    presettled = pay_by_code(cashier, holder, live)
    paid = pay_split(cashier)
    assert balance(holder) == before - paid["account"] and paid["account"] > 0
    expect(cashier.locator("#no-refunds")).to_be_visible()
    stale = desktop.new_page()  # the same payment open in a second tab, its form not sent yet
    stale.goto(cashier.url)

    refund(cashier, "all")
    expect(cashier.locator("#flash")).to_have_text("退款成功")
    expect(cashier.locator("#pay-status")).to_have_text("已全额退款")
    row = cashier.locator("#refunds tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("[data-k=status]")).to_have_text("退款成功")
    expect(row.locator("[data-k=scope]")).to_have_text("全部退款")
    assert re.fullmatch(r"\S{6,}", row.locator("[data-k=refund-no]").inner_text())  # the institution's refund number
    assert fen(row.locator("[data-k=insurance]").inner_text()) == fen(presettled["split-fund"]) + fen(presettled["split-account"])
    assert fen(row.locator("[data-k=cash]").inner_text()) == fen(presettled["split-cash"])
    expect(cashier.locator("#refund-form")).to_have_count(0)

    assert balance(holder) == before
    newest = holder.locator("#transactions tbody tr").first
    expect(newest).to_contain_text("退款退回")
    expect(newest).to_contain_text(cashier.locator("#pay-setl-id").inner_text())
    assert fen(newest.locator("td.num").inner_text()) == paid["account"]
    # the month's statement tags it 退款 and does not say 退款 twice ("退款 退款退回", trial 17 point 12)
    tagged = holder.locator("#statement-lines tbody tr", has_text=cashier.locator("#pay-setl-id").inner_text()).last
    expect(tagged).to_contain_text("退款 退回个人账户")

    # The second tab's form: refused in words, nothing moves.
    refund(stale, "all")
    expect(stale.locator("#flash")).to_have_text("该支付已全额退款")
    assert balance(holder) == before


@pytest.mark.both_databases
def legs(page, table: str) -> dict[str, dict[str, int]]:
    """A legs table (#refund-legs, #refund-preview-legs): {column key: {leg: fen}}."""
    out: dict[str, dict[str, int]] = {}
    for row in page.locator(f"#{table} tbody tr").all():
        for cell in row.locator("td[data-k]").all():
            out.setdefault(cell.get_attribute("data-k"), {})[row.get_attribute("data-leg")] = fen(cell.inner_text())
    return out


def test_a_refund_of_some_items_is_previewed_per_leg_then_one_refund_and_the_payment_partly_refunded(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, ZHAO_LEI)
    before = balance(holder)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    pay_by_code(cashier, holder, live)
    payment_id = cashier.locator("#payment-id").inner_text()
    visit_page = cashier.locator("a[href^='/cashier/visits/']").first.get_attribute("href")
    paid = legs(cashier, "refund-legs")["refund_leg_paid"]
    assert paid["total"] == SAMPLE_TOTAL and balance(holder) == before - paid["account"]
    assert cashier.locator("#pay-split tr.cash th").inner_text().startswith("个人现金支付（")  # no space before a full-width bracket

    cashier.locator("#refund-preview").click()  # no item ticked: said in words
    expect(cashier.locator("#flash")).to_have_text("请勾选要退款的项目")
    for sn in ("S4", "S5"):  # the own-expense item and the CT scan go back; S1–S3 remain
        cashier.locator(f"#refund-line-{sn}").check()
    cashier.locator("#refund-preview").click()
    expect(cashier.locator("#refund-preview-items li")).to_have_count(2)
    expect(cashier.locator("#refund-preview-hint")).not_to_contain_text("勾选")  # nothing to tick here
    preview = legs(cashier, "refund-preview-legs")
    this, after = preview["refund_leg_this"], preview["refund_leg_after"]
    assert this["total"] == 3000 + 36000 and after["total"] == SAMPLE_TOTAL - this["total"]  # every fen of the items
    for leg in ("fund", "account", "cash"):
        assert this[leg] + after[leg] == paid[leg] and this[leg] >= 0, leg
    cashier.locator("#refund-confirm").click()  # no PIN from the holder: the hospital's own refund
    expect(cashier.locator("#flash")).to_have_text("退款成功")
    expect(cashier.locator("#pay-status")).to_have_text("部分退款")
    assert cashier.locator("#payment-id").inner_text() == payment_id
    row = cashier.locator("#refunds tbody tr")
    expect(row).to_have_count(1)  # one refund, no new payment
    expect(row.locator("[data-k=scope]")).to_have_text("部分项目")
    expect(row.locator("[data-k=items]")).to_have_text("医用护肤品（自费）、CT检查（平扫）")  # named, not coded
    assert row.locator("[data-k=rebill]").count() == 0
    assert fen(row.locator("[data-k=cash]").inner_text()) == this["cash"]
    shown = legs(cashier, "refund-legs")
    assert (shown["refund_leg_refunded"], shown["refund_leg_remaining"]) == (this, after)
    assert balance(holder) == before - after["account"]

    cashier.goto("/cashier/payments/NOPE/refunds/preview?item=S9")  # no such payment: only the 404, no other refusal
    expect(cashier.locator("#flash")).to_have_count(0)
    assert "退款原因无效" not in cashier.locator("main").inner_text() and "支付单不存在" in cashier.locator("main").inner_text()
    cashier.goto(visit_page)
    statuses = {r.locator("td").first.inner_text(): r.locator("td").nth(5).inner_text() for r in cashier.locator("#lines tbody tr").all()}
    assert statuses == {"S1": "有效", "S2": "有效", "S3": "有效", "S4": "已退款", "S5": "已退款"}


@pytest.mark.both_databases
def test_a_refund_whose_answer_is_unknown_is_asked_about_with_query(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, ZHAO_LEI)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    pay_by_code(cashier, holder, live)
    cash = pay_split(cashier)["cash"]
    knobs = "/sandbox/wxpay/sandbox/knobs"  # 赵磊's wechat-330200 is the SANDBOX WeChat Pay mounted in the app
    assert cashier.request.put(knobs, data={"server_error_rate": 1.0}).ok
    try:
        refund(cashier, "cash")
        expect(cashier.locator("#flash")).to_have_text("退款结果尚未确认，请稍后点“查询”")
        row = cashier.locator("#refunds tbody tr")
        expect(row.locator("[data-k=status]")).to_have_text("结果未知")
        expect(cashier.locator("#pay-status")).to_have_text("退款中")
    finally:
        assert cashier.request.put(knobs, data={"server_error_rate": 0.0}).ok
    row.locator("button", has_text="查询").click()
    expect(cashier.locator("#flash")).to_have_text("退款成功")
    expect(row.locator("[data-k=status]")).to_have_text("退款成功")
    assert fen(row.locator("[data-k=cash]").inner_text()) == cash
    assert row.locator("[data-k=refund-no]").inner_text().strip() not in ("", "—")
    expect(cashier.locator("#pay-status")).to_have_text("部分退款")  # the insurance part is still paid
    expect(cashier.locator("#refund-form")).to_be_visible()


def test_a_guardian_pays_a_childs_visit_by_face(desktop, live):
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    open_visit_by_card(cashier, live, "李小雨", "none")
    present_card_on_visit(cashier, live, "李明")  # the guardian reads his own card with its PIN: his account's share can be shown
    expect(cashier.locator("#face-payer-current")).to_contain_text("患者本人")
    cashier.locator(f"#face-payer-{live.psn('李明')}").click()  # the linked guardian's face, and his account
    expect(cashier.locator("#face-payer-current")).to_contain_text("监护人")
    expect(cashier.locator("#account")).to_have_value(f"guardian:{live.psn('李明')}")
    presettled = split_of(cashier)
    assert fen(presettled["split-account"]) > 0
    pay_by_face(cashier, "same")
    expect(cashier.locator("#pay-status")).to_have_text("支付完成")
    expect(cashier.locator("#payment-receipt")).to_contain_text("监护人代付")
    same_split(presettled, pay_split(cashier))
