"""/admin's forms and figures through HTTP without a browser (the ASGI app in-process), on SQLite and PostgreSQL:
a suspension needs its reason and the suspended row shows when and why; admissions in a region that does not
exist or with a level that does not fit are refused in words; the overview counts a day's settlements by status."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.identity import admit
from tests.support.pages import flash, tokens
from tests.support.settlement import open_with_lines, settle
from tests.support.world import seed
from yibao.app import create_app
from yibao.services.agency import payment_institutions as pis
from yibao.services.care import settlement


@pytest.fixture
def site(db, keyring):
    world = seed(db, keyring)
    admit(db, "wechat")
    app = create_app(db, keyring=keyring, demo=True)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=True) as client:
        page = client.get("/admin/login").text
        r = client.post("/admin/sessions", data={**tokens(page), "token": "demo-operator-token"})
        assert r.url.path == "/admin", r.text
        yield world, client


def _form(html: str, action: str) -> str:
    return re.search(rf'<form[^>]+action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S).group(1)


def test_a_suspension_without_a_reason_is_refused_and_a_suspended_row_shows_when_and_why(site, db, clock):
    _, client = site
    page = client.get("/admin/institutions").text
    action = "/admin/payment-institutions/wechat/suspension"
    refused = client.post(action, data={**tokens(_form(page, action)), "reason": "   "})
    assert flash(refused.text) == "请填写暂停原因"
    assert db.run(lambda c: pis.get(c, "wechat"), write=False).status == "admitted"

    clock.advance(hours=2)  # 2026-11-22 11:00 UTC = 19:00 in UTC+8; admitted at 17:00 local
    done = client.post(action, data={**tokens(_form(client.get("/admin/institutions").text, action)), "reason": "风险事件"})
    assert flash(done.text) == "已暂停"
    row = re.search(r'<tr id="pi-wechat">(.*?)</tr>', done.text, re.S).group(1)
    assert re.search(r'id="pi-suspended-wechat"><time datetime="[^"]+">2026-11-22 19:00</time>', row), row
    assert 'id="pi-suspension-reason-wechat">风险事件<' in row and "2026-11-22 17:00" not in row


def test_admissions_in_an_unknown_region_or_with_a_level_that_does_not_fit_are_refused_in_words(site):
    _, client = site
    page = client.get("/admin/institutions").text
    inst = {"form": "inst", "code": "P44030099", "region": "999999", "name": "新药房", "kind": "pharmacy", "level": "pharmacy"}
    r = client.post("/admin/institutions", data={**tokens(_form(page, "/admin/institutions")), **inst})
    assert flash(r.text) == "统筹区 999999 不存在（已配置：330200、370200、440300）"
    r = client.post("/admin/institutions", data={**tokens(_form(r.text, "/admin/institutions")), **inst, "region": "440300", "level": "level2"})
    assert flash(r.text) == "药店的级别应为“药店”（pharmacy）；“二级”（level2）是医院的级别，药店不能选"
    pi = {"id": "newpay", "region": "999999", "name": "新支付", "kind": "wallet", "admission_ref": "准〔2026〕1号"}
    r = client.post("/admin/payment-institutions", data={**tokens(_form(r.text, "/admin/payment-institutions")), **pi})
    assert flash(r.text) == "统筹区 999999 不存在（已配置：330200、370200、440300）"
    client.get("/lang", params={"to": "en", "next": "/admin/institutions"})
    page = client.get("/admin/institutions").text
    r = client.post("/admin/payment-institutions", data={**tokens(_form(page, "/admin/payment-institutions")), **pi})
    assert flash(r.text) == "region 999999 does not exist (configured: 330200, 370200, 440300)"


def test_the_replayed_admission_says_the_same_in_both_languages(site):
    _, client = site
    page = client.get("/admin/institutions").text
    form = {**tokens(_form(page, "/admin/institutions")), "form": "inst", "code": "H44030077", "region": "440300", "name": "新医院",
            "kind": "hospital", "level": "level2"}
    first = client.post("/admin/institutions", data=form)
    assert 'id="credential"' in first.text
    again = client.post("/admin/institutions", data=form)
    assert flash(again.text) == "机构 H44030077 已准入；凭证已在首次提交时显示"
    client.get("/lang", params={"to": "en", "next": "/admin"})
    assert flash(client.post("/admin/institutions", data=form).text) == "Institution H44030077 is admitted; its credential was shown on the first submit"


def test_the_overview_counts_settled_and_cancelled_apart_and_the_money_of_the_settled_ones(site, db):
    world, client = site
    kept = open_with_lines(db, world.hospital, world.employee.id)
    settle(db, world.hospital, kept.id, "OV-1")  # 375.00: pool 9.00, account 366.00
    undone = open_with_lines(db, world.hospital, world.retiree.id)
    doc = settle(db, world.hospital, undone.id, "OV-2")
    db.run(lambda c: settlement.cancel(c, db.clock(), institution=world.hospital, setl_id=doc["setl_id"], actor="test"))
    page = client.get("/admin").text
    assert re.search(r'id="today-count">1<', page) and re.search(r'id="today-partial" data-n="0">部分退款 0 笔<', page)
    assert re.search(r'id="today-in-progress" data-n="0">支付中 0 笔<', page) and "撤销 1 笔" in page
    row = re.search(r'<tr id="region-440300">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    # settled, partial, cancelled, in progress, total, pool, serious illness, large amount, other (oth_pay), assistance, account,
    # cash, returned ×2
    assert cells == ["1", "0", "1", "0", "¥375.00", "¥9.00", "¥0.00", "¥0.00", "¥0.00", "¥0.00", "¥366.00", "¥0.00", "¥0.00", "¥0.00"]


@pytest.mark.parametrize("region, said", [("abc", "统筹区代码应为6位数字"), ("123456", "统筹区 123456 不存在")])
def test_the_audit_log_filtered_by_a_region_that_is_not_one_says_so(site, region, said):
    world, client = site
    page = client.get("/admin/audit", params={"region": region})
    assert page.url.path == "/admin/audit" and not page.url.query  # back to the whole log
    assert said in flash(page.text)
    assert client.get("/admin/audit", params={"region": "440300"}).status_code == 200
