"""待遇到卡 in Chromium: an agency's subsidy paid to 李明's financial card through the demo's SANDBOX bank (mounted in the
app, reached over HTTP), then a second one after he closed the card's account at the bank — returned; his app lists both
with agency, purpose, amount, status and date. The data is made here, through the operator's REST API on the live server."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.sync_api import expect

from tests.support.benefits import luhn_account
from tests.support.pages import LI_MING, log_in_holder

BANK = "bank-440300"
OPERATOR = {"Authorization": "Bearer demo-operator-token"}


def paid(client: httpx.Client, psn_no: str, agency: str, purpose: str, amount: str) -> dict:
    batch = {"region": "440300", "agency": agency, "batch_no": uuid.uuid4().hex[:16], "purpose": purpose,
             "rows": [{"psn_no": psn_no, "amount": amount}]}
    r = client.post("/api/v1/admin/benefit-batches", json=batch, headers={**OPERATOR, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/admin/benefit-batches/{r.json()['batch_id']}/submit", headers={**OPERATOR, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    [credit] = r.json()["credits"]
    return credit


def test_the_holder_sees_benefits_credited_and_returned(phone, live):
    psn = live.psn("李明")
    account = luhn_account(int(uuid.uuid4().int % 10**9), prefix="622848")  # his own account: no other test's closure touches it
    with httpx.Client(base_url=live.url, timeout=30) as client:
        [card] = [c for c in client.get(f"/api/v1/admin/persons/{psn}/cards", headers=OPERATOR).json()["items"]
                  if c["kind"] == "physical" and c["financial"] and c["status"] == "active"]
        r = client.put(f"/api/v1/admin/cards/{card['card_id']}/account", json={"bank": BANK, "account_no": account},
                       headers={**OPERATOR, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code == 200, r.text
        credited = paid(client, psn, "深圳市民政局", "高龄津贴", "300.00")
        client.post("/sandbox/bank/sandbox/accounts/closed", json={"account": account}).raise_for_status()
        returned = paid(client, psn, "深圳市残疾人联合会", "残疾人生活补贴", "120.50")
    assert (credited["status"], returned["status"], returned["return_code"]) == ("credited", "returned", "ACCOUNT_CLOSED")

    page = phone.new_page()
    log_in_holder(page, live, LI_MING)
    page.locator("#nav-benefits").click()
    expect(page.locator("h1")).to_have_text("待遇到卡")
    ok = page.locator(f"#benefit-{credited['instruction_no']}")
    expect(ok.locator(".benefit-agency")).to_have_text("深圳市民政局")
    expect(ok.locator(".benefit-purpose")).to_have_text("高龄津贴")
    expect(ok.locator(".benefit-amount")).to_have_text("¥300.00")
    expect(ok.locator(".benefit-status")).to_have_text("已到账")
    expect(ok.locator(".benefit-date")).to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"))
    back = page.locator(f"#benefit-{returned['instruction_no']}")
    expect(back.locator(".benefit-status")).to_have_text("已退回")
    expect(back.locator(".benefit-amount")).to_have_text("¥120.50")
    expect(back.locator(".benefit-reason")).to_contain_text("已销户")
    # Newest first: the returned one (submitted second) leads the list.
    expect(page.locator("#benefits li").first).to_have_attribute("id", f"benefit-{returned['instruction_no']}")
