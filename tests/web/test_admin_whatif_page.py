"""/admin/whatif in Chromium (issue 16, item 8): the operator uploads a new Shenzhen policy (tests/support/whatif.py)
and names a period; the page shows what the service computes over the demo's stored history — per layer, insurance
type and institution level, the persons most affected, the chart of stored beside re-priced — in Chinese and in
English; a reversed period and a missing file are refused in words. (The figures themselves are hand-computed in
tests/services/care/test_whatif.py; here the page must show the service's, to the fen.)"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.support.pages import PHONE, fen, log_in_operator
from tests.support.whatif import new_policy
from yibao.policies.loader import load_policy_file
from yibao.sandbox.catalogue import load as load_catalogue
from yibao.sandbox.demo import make_id_number
from yibao.services.agency import institutions
from yibao.services.care import settlement, visits, whatif
from yibao.services.care.settlement import AccountRequest
from yibao.services.people import persons as people

CHINA = timezone(timedelta(hours=8))
CT = [{"feedetl_sn": "1", "medins_list_codg": "A520", "name": "CT检查（平扫）", "unit_price": "360.00", "quantity": "3"}]


def _two_visits(live) -> str:  # noqa: ANN001
    """A Shenzhen employee of this test's own with two outpatient settlements (1,080.00 in scope each) at a level-3 hospital
    of its own, in October. Hand-computed: stored (1,080 − 300) × 0.50 + 1,080 × 0.50 = 390.00 + 540.00; under the new file
    (deductible 400, level-3 ratio 0.60) (1,080 − 400) × 0.60 + 1,080 × 0.60 = 408.00 + 648.00: +126.00."""
    db, keyring = live.db, live.keyring
    when = datetime(2026, 10, 20, 10, tzinfo=CHINA).astimezone(timezone.utc)
    code = "H4403WI" + secrets.token_hex(3).upper()
    inst, _ = db.run(lambda c: institutions.admit(c, when, code=code, region="440300", name="测算页面测试医院", kind="hospital",
                                                  level="level3", actor="test"))
    db.run(lambda c: load_catalogue(c, when, [inst], actor="test"))
    serial = secrets.randbelow(900) + 100
    person = db.run(lambda c: people.enrol(c, keyring, when, region="440300", id_number=make_id_number("440303", date(1980, 4, 4), serial),
                                           name="测算测试", insurance_type="employee", employment_status="employed", tier=1, actor="test"))
    for n in (1, 2):
        at = when + timedelta(days=n)
        visit = db.run(lambda c, at=at: visits.open_visit(c, at, institution=inst, person_id=person.id, kind="outpatient"))
        db.run(lambda c, at=at, visit=visit: visits.upload_lines(c, at, institution=inst, visit_id=visit.id, items=CT))
        db.run(lambda c, at=at, visit=visit, n=n: settlement.settle(c, at, institution=inst, visit_id=visit.id, msgid=f"WI-PAGE-{n}",
                                                                   account=AccountRequest(use=False), actor="test"))
    return person.id


@pytest.mark.both_databases  # the stream (a server-side cursor on PostgreSQL) under the page, on both
def test_the_what_if_on_the_page_shows_the_services_figures(desktop, live, tmp_path):
    psn = _two_visits(live)
    path = new_policy(tmp_path)
    today = live.clock().astimezone(CHINA).date()
    start = date(today.year, 1, 1)
    expected = live.db.run(lambda c: whatif.replay(c, load_policy_file(path), start=start, end=today, top=1000), write=False)
    assert expected.repriced >= 2 and expected.total.change != 0  # this test's two, the demo's month, what earlier page tests settled

    page = desktop.new_page()
    log_in_operator(page)
    page.locator("#nav-whatif").click()
    expect(page.locator("#whatif-from")).to_have_value(start.isoformat())
    page.locator("#whatif-policy").set_input_files(str(path))
    page.locator("#whatif-to").fill(today.isoformat())
    page.locator("#whatif-top").fill("1000")
    page.locator("#whatif-run").click()

    mine = page.locator(f"#person-{psn} td")  # the hand-computed person: 930.00 → 1,056.00
    expect(mine.nth(1)).to_have_text("2")
    assert [int(mine.nth(i).get_attribute("data-fen")) for i in (2, 3, 4)] == [93000, 105600, 12600]
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
    expect(page.locator("#whatif-counts")).to_contain_text(f"settlements re-priced: {expected.repriced}")
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
