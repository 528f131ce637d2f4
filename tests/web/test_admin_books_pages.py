"""/admin/reconciliation and /admin/clearing in Chromium (issue 15, point 8): a day reconciled on the page with the
SANDBOX WeChat Pay and its difference resolved there; a month cleared on the page (payee, accept, pay through the
SANDBOX bank: 已清算) and a region pair's cross-region month netted and rolled back — both pages at phone width too.

The live server is the session's: each test makes data nobody else uses — a trade on a day before the demo world
(2026-11-20), a hospital of its own whose October settlements nothing else touches."""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, time, timedelta, timezone

from playwright.sync_api import expect

from tests.support.pages import PHONE, log_in_operator
from yibao.domain.money import apply_ratio
from yibao.sandbox.catalogue import load as load_catalogue
from yibao.sandbox.channels.core import TradeRec
from yibao.sandbox.demo import make_id_number
from yibao.services.agency import institutions
from yibao.services.agency.policies import policy_for
from yibao.services.books import ledger
from yibao.services.care import settlement, visits
from yibao.services.care.settlement import AccountRequest
from yibao.services.clearing import applications
from yibao.services.people import persons as people

CHINA = timezone(timedelta(hours=8))
RECON_DAY = date(2026, 11, 20)  # before the demo world was made: no other trade of the session is on it
GOOD_ACCOUNT = "6222020000123456782"  # passes the sandbox bank's Luhn check
CT = [{"feedetl_sn": "1", "medins_list_codg": "A520", "name": "CT检查（平扫）", "unit_price": "360.00", "quantity": "3"}]


def no_sideways_scroll(context, path: str) -> None:  # noqa: ANN001
    """The page at phone width: wide tables scroll inside their panel, the page itself never sideways."""
    page = context.new_page()
    page.set_viewport_size(PHONE)
    page.goto(path)
    width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"{path} scrolls sideways at phone width: {width}"
    page.close()


def test_a_day_is_reconciled_on_the_page_and_its_difference_resolved_there(desktop, live):
    # Money the institution collected under a number the platform never gave (平台漏单), on a day of this test's own.
    books = live.app.state.sandbox_institutions["wxpay"].runtime.books
    out_trade_no = "PGRC" + secrets.token_hex(6).upper()
    paid_at = datetime.combine(RECON_DAY, time(10), CHINA).astimezone(timezone.utc)
    trade_no = books.new_id("T")
    with books.lock:
        books.trades[out_trade_no] = TradeRec(out_trade_no, trade_no, 12_34, "未经平台的交易", "-", "succeeded", None, paid_at, paid_at=paid_at)

    page = desktop.new_page()
    page.on("dialog", lambda d: d.accept())
    log_in_operator(page)
    page.locator("#nav-reconciliation").click()
    yesterday = (live.clock().astimezone(CHINA).date() - timedelta(days=1)).isoformat()
    expect(page.locator("#recon-day")).to_have_value(yesterday)  # the default: yesterday, Beijing, every institution
    expect(page.locator("#recon-pi")).to_have_value("")

    # Today has not ended: its statement is not whole, and the run is refused in words.
    page.goto(f"/admin/reconciliation?day={live.clock().astimezone(CHINA).date().isoformat()}")
    page.locator("#recon-run").click()
    expect(page.locator("#flash")).to_have_text("对账日期：只能对账已结束的日期（北京时间）")

    page.locator("#recon-day").fill(RECON_DAY.isoformat())
    page.locator("#recon-pi").select_option("wechat-440300")
    page.locator("#recon-show").click()
    expect(page.locator("#no-runs")).to_be_visible()
    page.locator("#recon-run").click()
    expect(page.locator("#flash")).to_have_text("对账完成：1 家支付机构，待处理差异 1 条")
    expect(page.locator("#run-status-wechat-440300")).to_have_text("有待处理差异")
    expect(page.locator("#run-counts-wechat-440300")).to_contain_text("差异 1，待处理 1")

    row = page.locator(f"tr[data-key='{out_trade_no}']")
    diff_id = row.get_attribute("id").removeprefix("diff-")
    expect(page.locator(f"#diff-class-{diff_id}")).to_have_text("平台漏单")
    expect(page.locator(f"#diff-inst-{diff_id}")).to_contain_text("¥12.34")
    expect(page.locator(f"#diff-plat-{diff_id}")).to_contain_text("—")
    # The resolutions this difference allows, no others: its money goes back, or it is accepted with a note.
    assert sorted(b.get_attribute("value") for b in row.locator("button[name=resolution]").all()) == ["accept", "refund"]

    # Accepting without a note is refused in words; nothing changes.
    page.locator(f"#reason-{diff_id}").fill("核对无误")
    page.locator(f"#resolve-accept-{diff_id}").click()
    expect(page.locator("#flash")).to_have_text("接受差异须填写说明")
    expect(page.locator(f"#diff-status-{diff_id}")).to_have_text("待处理")

    page.locator(f"#reason-{diff_id}").fill("平台无此订单，款项退回付款人")
    page.locator(f"#resolve-refund-{diff_id}").click()
    expect(page.locator("#flash")).to_have_text("差异已处理")
    expect(page.locator(f"#diff-status-{diff_id}")).to_have_text("已处理")
    expect(row).to_contain_text("退回款项：平台无此订单，款项退回付款人")
    expect(page.locator("#run-status-wechat-440300")).to_have_text("已平账")
    assert page.locator(f"#resolve-{diff_id}").count() == 0
    with books.lock:
        assert books.trades[out_trade_no].refunded_fen == 12_34  # the institution gave the money back

    # A re-run of the day finds the same difference, resolved: nothing open, the run's count of runs goes up.
    page.locator("#recon-run").click()
    expect(page.locator("#flash")).to_have_text("对账完成：1 家支付机构，待处理差异 0 条")
    expect(page.locator("#open-count")).to_have_text("待处理 0 条")
    page.goto(f"/admin/reconciliation?day={RECON_DAY.isoformat()}&pi=wechat-440300")
    expect(page.locator("#run-status-wechat-440300")).to_have_text("已平账")

    # A day that is no date is said in words; English on the toggle.
    page.goto("/admin/reconciliation?day=2026-13-01")
    expect(page.locator("#flash")).to_have_text("对账日期应为 YYYY-MM-DD")
    page.goto(f"/admin/reconciliation?day={RECON_DAY.isoformat()}&pi=wechat-440300")
    page.locator("#lang-toggle").click()
    expect(page.locator(f"#diff-class-{diff_id}")).to_have_text("Missing at the platform")
    page.locator("#lang-toggle").click()
    assert live.db.run(lambda c: ledger.totals(c), write=False).balanced
    no_sideways_scroll(desktop, f"/admin/reconciliation?day={RECON_DAY.isoformat()}&pi=wechat-440300")


def _october_hospital(live) -> tuple[str, int]:  # noqa: ANN001
    """A hospital of this test's own, with one October settlement of a patient insured in Ningbo (330200): the fund it
    paid (fen). October ended before the session began, and nothing else settles there."""
    db, keyring = live.db, live.keyring
    when = datetime(2026, 10, 15, 10, tzinfo=CHINA).astimezone(timezone.utc)
    code = "H4403PG" + secrets.token_hex(3).upper()
    inst, _ = db.run(lambda c: institutions.admit(c, when, code=code, region="440300", name="清算页面测试医院", kind="hospital",
                                                  level="level2", actor="test"))
    db.run(lambda c: load_catalogue(c, when, [inst], actor="test"))  # its own item codes mapped to the catalogue
    person = db.run(lambda c: people.enrol(c, keyring, when, region="330200", id_number=make_id_number("330204", date(1975, 3, 3), 90),
                                           name="清算测试", insurance_type="employee", employment_status="employed", tier=None, phone=None,
                                           hardship=None, guardian_id=None, actor="test"))
    visit = db.run(lambda c: visits.open_visit(c, when, institution=inst, person_id=person.id, kind="outpatient"))
    db.run(lambda c: visits.upload_lines(c, when, institution=inst, visit_id=visit.id, items=CT))
    done = db.run(lambda c: settlement.settle(c, when, institution=inst, visit_id=visit.id, msgid="PG-CLR-1", account=AccountRequest(use=False),
                                              actor="test"))
    fund = round(float(done["fund_pay_sumamt"]) * 100)
    assert fund > 0 and done["insuplc_admdvs"] == "330200"
    return code, fund


def test_a_month_is_cleared_on_the_page_and_a_region_pair_netted(desktop, live):
    code, fund = _october_hospital(live)
    inst = live.db.run(lambda c: institutions.get(c, code), write=False)
    app = live.db.run(lambda c: applications.apply(
        c, live.clock(), institution=inst, clr_type="11", clr_way="1", setlym="202610", psntime=1, medfee_sumamt=108000, med_sumfee=108000,
        fund_appy_sum=fund + 100, cash_payamt=108000 - fund, acct_pay=0, begndate=date(2026, 10, 1), enddate=date(2026, 10, 31), actor="his:test"))
    app_id = app["clr_appy_evt_id"]
    deposit = apply_ratio(fund, policy_for("440300", 2026).clearing.quality_deposit_ratio)
    payable = fund - deposit

    page = desktop.new_page()
    page.on("dialog", lambda d: d.accept())
    log_in_operator(page)
    page.locator("#nav-clearing").click()
    page.locator("#clearing-month").fill("2026-10")
    page.locator("#month-show").click()
    expect(page.locator(f"#app-status-{app_id}")).to_have_text("已申请（10）")
    expect(page.locator(f"#declared-{app_id}")).to_contain_text(f"基金 ¥{(fund + 100) / 100:.2f}")
    expect(page.locator(f"#platform-{app_id}")).to_contain_text(f"基金 ¥{fund / 100:.2f}")
    expect(page.locator(f"#difference-{app_id}")).to_contain_text("基金 ¥1.00")  # declared one yuan more than the ledger says
    expect(page.locator(f"#payable-{app_id}")).to_contain_text(f"¥{payable / 100:.2f}")
    expect(page.locator(f"#payable-{app_id}")).to_contain_text(f"质保金 ¥{deposit / 100:.2f}")
    expect(page.locator(f"#payee-account-{code}")).to_have_text("未登记")

    # The payee account: a wrong one said in words, then recorded.
    page.locator("#payee-code").fill(code)
    page.locator("#payee-no").fill("12ab")
    page.locator("#payee-name").fill("清算页面测试医院")
    page.locator("#payee-save").click()
    expect(page.locator("#flash")).to_have_text("收款账号应为8–32位数字")
    expect(page.locator("#payee-no")).to_have_attribute("aria-invalid", "true")
    page.locator("#payee-no").fill(GOOD_ACCOUNT)
    page.locator("#payee-save").click()
    expect(page.locator("#flash")).to_have_text("收款账户已保存")
    expect(page.locator(f"#payee-account-{code}")).to_contain_text("****6782")

    page.locator(f"#approve-{app_id}").click()
    expect(page.locator(f"#app-status-{app_id}")).to_have_text("已受理（20）")
    expect(page.locator(f"#payable-{app_id}")).to_contain_text(f"¥{payable / 100:.2f}")
    page.locator(f"#pay-{app_id}").click()
    expect(page.locator("#flash")).to_have_text("已拨付，银行已确认：已清算")
    expect(page.locator(f"#app-status-{app_id}")).to_have_text("已清算（50）")
    expect(page.locator(f"#app-{app_id}")).to_contain_text("银行已确认")
    assert page.locator(f"#pay-{app_id}").count() == 0
    cleared = live.db.run(lambda c: applications.view(c, app_id), write=False)
    assert (cleared["status"], cleared["clr_stas"], cleared["payable"]) == ("cleared", "50", f"{payable / 100:.2f}")

    # The cross-region month between Ningbo and Shenzhen: this hospital's patient from Ningbo is one of its rows.
    page.locator("#region-a").select_option("330200")
    page.locator("#region-b").select_option("440300")
    page.locator("#pair-show").click()
    expect(page.locator("#pair-detail")).to_contain_text(code)
    expect(page.locator("#pair-totals")).to_contain_text("宁波市")
    page.locator("#interregion-confirm").click()
    expect(page.locator("#flash")).to_have_text("异地清算已确认（轧差入账）")
    status = page.locator("#confirmations [id^=ir-status-]").first
    expect(status).to_have_text("已确认")
    assert page.locator("#interregion-confirm").count() == 0  # confirmed: not again until rolled back
    page.locator("#confirmations button.danger").first.click()
    expect(page.locator("#flash")).to_have_text("异地清算已回退")
    expect(page.locator("#confirmations [id^=ir-status-]").first).to_have_text("已回退")
    expect(page.locator("#interregion-confirm")).to_be_visible()
    assert live.db.run(lambda c: ledger.totals(c), write=False).balanced

    # The same region twice is said in words.
    page.goto("/admin/clearing?month=202610&region_a=440300&region_b=440300")
    expect(page.locator("#flash")).to_have_text(re.compile("两个统筹区不能相同"))
    no_sideways_scroll(desktop, "/admin/clearing?month=202610&region_a=330200&region_b=440300")
