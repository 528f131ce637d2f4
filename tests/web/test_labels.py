"""Every form control on every page has a label a screen reader announces (label for=, a wrapping
label, aria-label or aria-labelledby) — walked in Chromium, as rendered, for the three areas."""

from __future__ import annotations

from tests.support.pages import LI_MING, log_in_cashier, log_in_holder, log_in_operator

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && el.type !== 'submit' && el.type !== 'button')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => `${el.tagName.toLowerCase()}#${el.id || '?'}[name=${el.name || '?'}]`)"""

APP = ("/app/login", "/app", "/app/account", "/app/bindings", "/app/cards", "/app/family", "/app/bills", "/app/pin", "/app/credit")
CASHIER = ("/cashier",)
ADMIN = ("/admin", "/admin/institutions", "/admin/pilots", "/admin/rollout", "/admin/cards", "/admin/audit")


def _check(page, paths: tuple[str, ...]) -> dict[str, list[str]]:  # noqa: ANN001
    missing = {}
    for path in paths:
        page.goto(path)
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        found = page.evaluate(UNLABELLED)
        if found:
            missing[path] = found
    return missing


def test_every_control_is_labelled(phone, desktop, live):
    holder = phone.new_page()
    assert _check(holder, APP[:1]) == {}  # before log-in
    log_in_holder(holder, live, LI_MING)
    cashier = desktop.new_page()
    log_in_cashier(cashier)
    cashier.locator("#lookup-form").evaluate("f => { const d = f.closest('details'); if (d) d.open = true; }")
    cashier.locator("#lookup-form input[name=card_no]").fill(live.people["李明"]["card_no"])
    cashier.locator("#lookup").click()
    cashier.locator("#load-sample").click()
    cashier.locator("#presettle").click()
    visit = cashier.url.split("?")[0].replace(live.url, "")
    admin = desktop.new_page()
    log_in_operator(admin)
    missing = {**_check(holder, APP[1:]), **_check(cashier, (*CASHIER, visit + "?presettle=1")), **_check(admin, (*ADMIN, f"/admin/cards?psn={live.psn('李明')}"))}
    assert missing == {}
