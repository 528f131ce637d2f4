"""/app at phone width (390 × 844) in Chromium, in Chinese and in English: no page scrolls sideways, every
tab of the nav is reachable (the strip scrolls, with or without the script) and the current one is in
view, the header's items never break inside a word; and the payment code's countdown stops at zero and
asks for no new code while the page is hidden. As 陈静, whom no other page test uses."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.pages import PHONE, log_in_holder, show_code, shown_code

CHEN_JING = "13800138003"
PAGES = ("/app", "/app/account", "/app/bindings", "/app/cards", "/app/family", "/app/bills", "/app/payments", "/app/credit", "/app/pin")
TABS = ("card", "account", "bindings", "cards", "family", "bills", "payments", "credit", "benefits")

# How many lines an element's text takes (a word broken over two lines takes two).
LINES = """el => { const r = document.createRange(); r.selectNodeContents(el);
  return new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top))).size; }"""

LAYOUT = """() => {
  const d = document.documentElement, nav = document.querySelector('nav.tabs'), n = nav.getBoundingClientRect();
  const box = el => { const r = el.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  return {scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, nav: box(nav), navOverflow: getComputedStyle(nav).overflowX,
    navScrollWidth: nav.scrollWidth, navClientWidth: nav.clientWidth,
    links: [...nav.querySelectorAll('a')].map(a => ({id: a.id, current: a.getAttribute('aria-current') === 'page',
      inList: !!a.closest('nav.tabs li'), left: a.getBoundingClientRect().left - n.left + nav.scrollLeft,
      right: a.getBoundingClientRect().right - n.left + nav.scrollLeft, box: box(a)}))};
}"""


def check_page(page, path: str) -> None:  # noqa: ANN001
    got = page.evaluate(LAYOUT)
    where = f"{path} ({page.locator('html').get_attribute('lang')})"
    assert got["scrollWidth"] <= got["clientWidth"], f"{where} scrolls sideways: {got['scrollWidth']} > {got['clientWidth']}"
    assert got["nav"]["left"] >= 0 and got["nav"]["right"] <= got["clientWidth"], f"{where}: the nav is wider than the screen"
    assert [link["id"] for link in got["links"]] == [f"nav-{t}" for t in TABS], where
    assert all(link["inList"] for link in got["links"]), f"{where}: the nav is a list of links"
    if got["navScrollWidth"] > got["navClientWidth"]:
        assert got["navOverflow"] in ("auto", "scroll"), f"{where}: the tabs overflow a nav that does not scroll"
    for link in got["links"]:  # inside the strip's scrollable area: reachable by scrolling it
        assert link["left"] >= -0.5 and link["right"] <= got["navScrollWidth"] + 0.5, f"{where}: {link['id']} cannot be reached"
    current = [link for link in got["links"] if link["current"]]
    assert len(current) == 1, f"{where}: one current tab"
    box = current[0]["box"]
    assert got["nav"]["left"] - 0.5 <= box["left"] and box["right"] <= min(got["nav"]["right"], got["clientWidth"]) + 0.5, \
        f"{where}: the current tab {current[0]['id']} is not in view ({box})"
    # The header: brand and tools on the screen; the name, log-out and language toggle each on one line.
    for sel in ("header.top .brand", "#who", "#logout", "#lang-toggle"):
        b = page.locator(sel).bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= got["clientWidth"] + 0.5, f"{where}: {sel} is off the screen"
    for sel in ("#who", "#logout", "#lang-toggle"):
        assert page.locator(sel).evaluate(LINES) == 1, f"{where}: {sel} breaks over two lines"


def reach_every_tab(page) -> None:  # noqa: ANN001
    """Each tab can be brought on screen (what a swipe or the Tab key does) and then lies within it."""
    for tab in TABS:
        link = page.locator(f"#nav-{tab}")
        link.scroll_into_view_if_needed()
        b = link.bounding_box()
        assert b["x"] >= -0.5 and b["x"] + b["width"] <= PHONE["width"] + 0.5, f"#nav-{tab} not reachable: {b}"


def test_every_app_page_fits_a_phone_in_both_languages(phone, live):
    page = phone.new_page()
    log_in_holder(page, live, CHEN_JING)
    for lang in ("zh-CN", "en"):
        if page.locator("html").get_attribute("lang") != lang:
            page.locator("#lang-toggle").click()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        for path in PAGES:
            page.goto(path)
            check_page(page, path)
        reach_every_tab(page)
        # A table wider than the phone (陈静 has no account, so no transactions of her own) scrolls inside
        # its panel, not the page.
        page.goto("/app/account")
        page.locator("section.panel").first.evaluate("""p => p.insertAdjacentHTML('beforeend',
            '<table class="list" id="wide"><tr><td class="when">2026-01-01 00:00</td><td>' + 'X'.repeat(80) + '</td>'
            + '<td class="num">¥123456.00</td><td class="num">¥123456.00</td></tr></table>')""")
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_the_tabs_are_reachable_without_the_script(phone, browser, live):
    page = phone.new_page()
    log_in_holder(page, live, CHEN_JING)
    page.locator("#lang-toggle").click()  # English: the widest tabs
    expect(page.locator("html")).to_have_attribute("lang", "en")
    bare = browser.new_context(viewport=PHONE, base_url=live.url, device_scale_factor=1, is_mobile=True, has_touch=True,
                               java_script_enabled=False)
    try:
        bare.add_cookies(phone.cookies())
        plain = bare.new_page()
        plain.goto("/app/bills")
        expect(plain.locator("#who")).to_be_visible()
        assert plain.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        reach_every_tab(plain)
    finally:
        bare.close()


HIDE = """hidden => {
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_a_hidden_page_asks_for_no_new_code_until_it_is_shown(phone, live):
    page = phone.new_page()
    page.clock.install()
    log_in_holder(page, live, CHEN_JING)
    page.goto("/app")
    old = show_code(page)
    page.evaluate(HIDE, True)  # the phone locked, another tab in front
    page.clock.run_for(185_000)  # past the code's 180 s
    expired = re.compile("码已过期|expired")
    expect(page.locator("#countdown")).to_have_text(expired)
    page.clock.run_for(600_000)  # ten minutes more: the countdown has stopped, no code was asked for
    expect(page.locator("#countdown")).to_have_text(expired)  # not overwritten with 0:00
    assert page.locator("#refresh-form").get_attribute("data-sent") is None
    assert shown_code(page) == old
    page.evaluate(HIDE, False)  # shown again: a new code at once
    page.wait_for_load_state()
    expect(page.locator("#barcode text")).not_to_have_text(" ".join(old[i:i + 4] for i in range(0, 20, 4)))
    assert shown_code(page) != old
