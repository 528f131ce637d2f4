"""Steps through the pages for tests: log-ins for the holder, the cashier and the operator in Chromium,
the demo people's phones, reading codes, splits and amounts off a page, the sample visit at the counter;
and, without a browser, a form's CSRF token and nonce and the flash message. The served platform and the
browser are fixtures in tests/web/conftest.py."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from yibao.domain.money import parse_yuan

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}

LI_MING = "13800138001"
WANG_FANG = "13800138005"  # Shenzhen, bound to wechat-440300

HOSPITAL = "H440300L3.demo-h440300l3"
PIN = "246810"  # every page test gives the demo holders this payment PIN (whichever sets it first)
SPLIT = ("split-total", "split-pool", "split-fund", "split-account", "split-cash")


_SESSIONS: dict[tuple[str, str], str] = {}  # (served platform, phone) -> the holder's session cookie


def log_in_holder(page, live, phone: str) -> None:
    """Through the pages, as a demo visitor would: ask for a code, read it in the sandbox SMS gateway's outbox (the
    log-in page links it), log in. ``live`` is the served platform of tests/web/conftest.py.

    The session a phone got is used again by the next test that logs that phone in (while it is still valid): SMS
    codes are limited per phone (5 an hour) and per client address (20 an hour) — the browser tests all come from
    127.0.0.1 and log the same demo people in again and again. A phone's first log-in, and any after its session
    ended, go through the SMS pages."""
    known = _SESSIONS.get((live.url, phone))
    if known is not None:
        page.context.add_cookies([{"name": "yibao_app", "value": known, "url": f"{live.url}/app", "httpOnly": True, "sameSite": "Strict"}])
        page.goto("/app")
        if page.locator("#who").count():
            return
    live.clock.advance(seconds=31)  # past the platform's one-code-per-30-s limit for this phone
    page.goto("/app/login")
    page.get_by_label(re.compile("手机号|Mobile number")).fill(phone)
    page.locator("#send-code").click()
    expect(page.locator("#flash")).to_be_visible()  # "a code was sent"
    with page.context.expect_page() as opened:
        page.locator("#outbox-link").click()  # the outbox opens beside the log-in page
    outbox = opened.value
    masked = f"{phone[:3]}****{phone[-4:]}"
    text = outbox.locator("#outbox li", has_text=masked).first.inner_text()
    code = re.search(r"(\d{6})", text.split(masked, 1)[1]).group(1)
    outbox.close()
    expect(page.locator("#phone")).to_have_value(phone)
    page.locator("#code").fill(code)
    page.locator("#log-in").click()
    expect(page.locator("#who")).to_be_visible()  # logged in: the header names the holder
    cookie = next(c for c in page.context.cookies(f"{live.url}/app") if c["name"] == "yibao_app")
    _SESSIONS[(live.url, phone)] = cookie["value"]


def shown_code(page) -> str:
    """The digits printed under the barcode (what a cashier types when the scanner fails)."""
    return re.sub(r"\D", "", page.locator("#barcode text").text_content())


def show_code(page) -> str:
    """The holder's code on screen: asked for when none is live (an earlier test may have left one)."""
    if page.locator("#show-code").count():
        page.locator("#show-code").click()
    expect(page.locator("#qr svg")).to_be_visible()
    return shown_code(page)


def fen(text: str) -> int:
    """¥12.50, +¥12.50 or -¥12.50 as signed fen."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    return sign * parse_yuan(text.lstrip("+-").replace("¥", ""))


def log_in_cashier(page, credential: str = HOSPITAL) -> None:
    page.goto("/cashier")
    page.get_by_label(re.compile("机构凭证|Institution credential")).fill(credential)
    page.locator("#cashier-log-in").click()
    expect(page.locator("#scan-form")).to_be_visible()


def split_of(page) -> dict[str, str]:
    return {k: page.locator(f"#{k}").inner_text() for k in SPLIT}


def balance(page) -> int:
    page.goto("/app/account")
    return fen(page.locator("#balance").inner_text())


def open_visit_with_sample(cashier, code: str, account: str) -> dict[str, str]:
    """Verify a code (the visit opens), load the sample set, pre-settle with the account option: the split."""
    cashier.goto("/cashier")
    cashier.locator("#code").fill(code)
    cashier.locator("#verify-code").click()
    expect(cashier.locator("#patient")).to_be_visible()
    if cashier.locator("#load-sample").count():
        cashier.locator("#load-sample").click()
        expect(cashier.locator("#lines tbody tr").first).to_be_visible()
    if account in ("guardian", "family"):  # the select names the payer: "guardian:<psn_no>"; the one offered is taken
        account = cashier.locator(f"#account option[value^='{account}:']").first.get_attribute("value")
    cashier.locator("#account").select_option(account)
    cashier.locator("#presettle").click()
    expect(cashier.locator("#split")).to_be_visible()
    return split_of(cashier)


def pay_split(page) -> dict[str, int]:
    cells = page.locator("#pay-split td[data-k]")
    return {cells.nth(i).get_attribute("data-k"): fen(cells.nth(i).inner_text()) for i in range(cells.count())}


def same_split(presettled: dict[str, str], paid: dict[str, int]) -> None:
    assert paid["total"] == fen(presettled["split-total"])
    assert paid["pool"] == fen(presettled["split-pool"])
    assert paid["fund"] == fen(presettled["split-fund"])
    assert paid["account"] == fen(presettled["split-account"])
    assert paid["cash"] == fen(presettled["split-cash"])


def log_in_operator(page) -> None:
    page.goto("/admin")
    page.get_by_label(re.compile("经办人员凭证|Operator token")).fill("demo-operator-token")
    page.locator("#admin-log-in").click()
    expect(page.locator("#chart-counts")).to_be_visible()


def tokens(html: str) -> dict[str, str]:
    """The CSRF token and a nonce of the first form on a page."""
    return {"csrf": re.search(r'name="csrf" value="([^"]+)"', html).group(1), "nonce": re.search(r'name="nonce" value="([^"]+)"', html).group(1)}


def flash(html: str) -> str:
    return re.search(r'id="flash">([^<]*)<', html).group(1)


def ensure_pin(live, name: str) -> str:
    """The demo holder's payment PIN — which is also their card's PIN at the counter — set through the services unless
    a test set it already (they all set PIN): set-up for a cashier reading the card with its PIN."""
    from yibao.services.payments import pins

    psn = live.psn(name)
    if live.db.run(lambda c: pins.stored(c, psn), write=False) is None:
        salt = pins.new_salt()
        digest = pins.pin_hash(live.keyring, PIN, salt)
        done = live.db.run(lambda c: pins.set_pin(c, live.clock(), person_id=psn, salt=salt, new_hash=digest, old_candidate=None,
                                                  old_salt=None, actor="test"))
        assert isinstance(done, dict), done
    return PIN


def look_up_card(cashier, live, name: str, pin: str | None = None) -> None:
    """At the console, the person's card read (its number typed) and, with ``pin``, its PIN typed by the holder: a visit opens."""
    cashier.goto("/cashier")
    cashier.locator("#lookup-form").evaluate("f => { const d = f.closest('details'); if (d) d.open = true; }")
    cashier.locator("#card_no").fill(live.people[name]["card_no"])
    if pin is not None:
        cashier.locator("#card-pin").fill(pin)
    cashier.locator("#lookup").click()


def present_card_on_visit(cashier, live, name: str) -> None:
    """On the visit page, the card of ``name`` read and its PIN typed by its holder (读卡验密): their presence for this visit."""
    cashier.locator("#presence-card-form").evaluate("f => f.closest('details').open = true")
    cashier.locator("#presence-card-no").fill(live.people[name]["card_no"])
    cashier.locator("#presence-pin").fill(ensure_pin(live, name))
    cashier.locator("#present-card").click()
    expect(cashier.locator("#flash")).to_have_text("读卡验密通过：可从个人账户支付本次就诊")
