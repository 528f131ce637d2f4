"""/admin/whatif in Chromium (issue 16, item 8): the operator uploads a new Shenzhen policy (tests/support/whatif.py)
and names a period; the page shows what the service computes over the demo's stored history — per layer, insurance
type and institution level, the persons most affected, the chart of stored beside re-priced — in Chinese and in
English; a reversed period and a missing file are refused in words. (The figures themselves are hand-computed in
tests/services/care/test_whatif.py; here the page must show the service's, to the fen.)"""

from __future__ import annotations

import re
from datetime import date, timedelta, timezone

from playwright.sync_api import expect

from tests.support.pages import PHONE, fen, log_in_operator
from tests.support.whatif import new_policy
from yibao.policies.loader import load_policy_file
from yibao.services.care import whatif

CHINA = timezone(timedelta(hours=8))


def test_the_what_if_on_the_page_shows_the_services_figures(desktop, live, tmp_path):
    path = new_policy(tmp_path)
    today = live.clock().astimezone(CHINA).date()
    start = date(today.year, 1, 1)
    expected = live.db.run(lambda c: whatif.replay(c, load_policy_file(path), start=start, end=today), write=False)
    assert expected.repriced > 0  # the demo's month of counter settlements, and what earlier page tests settled

    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-whatif").click()
    expect(page.locator("#whatif-from")).to_have_value(start.isoformat())
    page.locator("#whatif-policy").set_input_files(str(path))
    page.locator("#whatif-to").fill(today.isoformat())
    page.locator("#whatif-run").click()

    expect(page.locator("#whatif-fund-change")).to_have_attribute("data-fen", str(expected.total.change))
    expect(page.locator("#whatif-summary")).to_contain_text("440300-2026.2")
    expect(page.locator("#whatif-counts")).to_contain_text(f"重算结算 {expected.repriced} 笔")
    for row in expected.layer_rows():
        cells = page.locator(f"#layer-{row['layer']} td[data-fen]")
        assert [int(cells.nth(i).get_attribute("data-fen")) for i in range(3)] == [row["old"], row["new"], row["change"]]
    for g in expected.insurance_types():
        expect(page.locator(f"#type-{g.key} td").nth(1)).to_have_text(str(g.settlements))
        assert fen(page.locator(f"#type-{g.key} td").nth(4).inner_text()) == g.change
    for g in expected.levels():
        assert fen(page.locator(f"#level-{g.key} td").nth(4).inner_text()) == g.change
    assert [r.get_attribute("id") for r in page.locator("#whatif-persons tbody tr").all()] == [f"person-{p.psn_no}" for p in expected.persons]
    # The chart: each layer's stored and re-priced amounts, in that order, as bars.
    bars = page.locator("#chart-whatif-layers g.bar")
    assert [int(bars.nth(i).get_attribute("data-value")) for i in range(bars.count())] == \
        [v for row in expected.layer_rows() for v in (row["old"], row["new"])]
    expect(page.locator("#not-cancelled")).to_have_attribute("data-n", str(expected.not_repriced["cancelled"]))
    if expected.failed:  # the demo's child (少儿医保): the new policy has no children's scheme
        expect(page.locator("#whatif-failed")).to_have_attribute("data-n", str(expected.failed))

    # In English, the same figures.
    page.goto(f"/lang?to=en&next={'/admin/whatif'}")
    page.locator("#whatif-policy").set_input_files(str(path))
    page.locator("#whatif-to").fill(today.isoformat())
    page.locator("#whatif-run").click()
    expect(page.locator("#whatif-counts")).to_contain_text(f"{expected.repriced} settlements re-priced")
    expect(page.locator("#layer-pool_fund td").first).to_contain_text("pooled fund")
    expect(page.locator("#whatif-fund-change")).to_have_attribute("data-fen", str(expected.total.change))
    page.goto("/lang?to=zh&next=/admin/whatif")

    # Refusals, in words: the period reversed; no file.
    page.locator("#whatif-policy").set_input_files(str(path))
    page.locator("#whatif-from").fill(today.isoformat())
    page.locator("#whatif-to").fill(start.isoformat())
    page.locator("#whatif-run").click()
    expect(page.locator("#flash")).to_have_text(re.compile(f"开始日期 {today.isoformat()} 晚于结束日期 {start.isoformat()}"))
    expect(page.locator("#whatif-from")).to_have_value(today.isoformat())  # the form keeps what was typed
    page.evaluate("() => document.querySelector('#whatif-policy').removeAttribute('required')")
    page.locator("#whatif-from").fill(start.isoformat())
    page.locator("#whatif-run").click()
    expect(page.locator("#flash")).to_have_text("请选择新的策略文件（YAML）")

    narrow = desktop.new_page()
    narrow.set_viewport_size(PHONE)
    narrow.goto("/admin/whatif")
    width = narrow.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"/admin/whatif scrolls sideways at phone width: {width}"
