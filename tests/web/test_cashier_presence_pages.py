"""Presence at /cashier in Chromium: a card looked up by its number alone shows no account share and cannot settle with
the account; once its holder types the card's PIN, the split shows the account and the counter settles it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import LI_MING, balance, ensure_pin, fen, log_in_cashier, log_in_holder, look_up_card


@pytest.mark.both_databases
def test_the_account_pays_at_the_counter_only_after_the_holder_types_the_cards_pin(phone, desktop, live):
    holder = phone.new_page()
    log_in_holder(holder, live, LI_MING)
    before = balance(holder)
    pin = ensure_pin(live, "李明")
    live.clock.advance(minutes=11)  # past any presence of his an earlier test left at this hospital (a scan lives 10 minutes)

    cashier = desktop.new_page()
    log_in_cashier(cashier)
    look_up_card(cashier, live, "李明")  # the number alone: who, not the balance
    expect(cashier.locator("#patient-name")).to_have_text("李*")
    cashier.locator("#load-sample").click()
    expect(cashier.locator("#lines tbody tr")).to_have_count(5)
    cashier.locator("#presettle").click()
    expect(cashier.locator("#presence-needed")).to_have_text(re.compile("^从个人账户支付须账户所有人本人到场"))
    assert fen(cashier.locator("#split-account").inner_text()) == 0
    expect(cashier.locator("#confirm-settle")).to_have_count(0)

    cashier.locator("#presence-card-no").fill(live.people["李明"]["card_no"])
    cashier.locator("#presence-pin").fill(pin)
    cashier.locator("#present-card").click()
    expect(cashier.locator("#flash")).to_have_text("读卡验密通过：可从个人账户支付本次就诊")
    expect(cashier.locator("#presences li[data-kind=card_pin]")).to_be_visible()
    account_pay = fen(cashier.locator("#split-account").inner_text())
    assert account_pay > 0
    cashier.locator("#confirm-settle").click()
    expect(cashier.locator("#receipt")).to_be_visible()
    assert balance(holder) == before - account_pay
