"""Sessions, CSRF, double submits, redirects and error pages, through HTTP without a browser
(the ASGI app in-process), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.channels import replay_sandbox_keys
from tests.support.identity import admit, ecard, id_number_of, name_of
from tests.support.pages import flash, tokens
from tests.support.sms import gateway_url, texts_to
from tests.support.world import seed
from yibao.app import create_app
from yibao.services.books import volumes
from yibao.services.people import bindings
from yibao.store.tables import institutions as institutions_table


@pytest.fixture(scope="module")
def sandbox_keys() -> list:
    return []


@pytest.fixture
def site(db, keyring, sms_gateway, monkeypatch, sandbox_keys):
    replay_sandbox_keys(monkeypatch, sandbox_keys)  # the mounted sandboxes' eight RSA keys, made once for the module
    world = seed(db, keyring)
    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    admit(db, "wechat")
    # In-process (no server): the texts go to the loopback sandbox gateway, not to the mounted one at a URL nobody serves.
    app = create_app(db, keyring=keyring, sandboxes=True, sms_gateway=sms_gateway)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=True) as client:
        yield world, client


def log_in(client, phone: str) -> str:
    page = client.get("/app/login").text
    client.post("/app/sms-codes", data={**tokens(page), "phone": phone})
    code = re.search(r"验证码为 (\d{6})", texts_to(gateway_url(client.app), phone)[0]).group(1)  # the sandbox gateway's memory
    r = client.post("/app/sessions", data={**tokens(page), "phone": phone, "code": code}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app"
    cookie = SimpleCookie(r.headers["set-cookie"])["yibao_app"]
    assert cookie["httponly"] and cookie["samesite"] == "strict" and cookie["path"] == "/app"
    return cookie.value


def test_the_holders_cookie_is_the_session_and_log_out_ends_it_on_the_server(site):
    world, client = site
    token = log_in(client, world.phones["employee"])
    page = client.get("/app")
    assert page.status_code == 200 and 'id="who"' in page.text
    assert page.headers["cache-control"] == "no-store" and "script-src 'self'" in page.headers["content-security-policy"]
    client.post("/app/logout", data=tokens(page.text))
    client.cookies.clear()
    client.cookies.set("yibao_app", token, path="/app")  # a copy of the old cookie no longer works
    assert client.get("/app").url.path == "/app/login"


def _console_log_in(client, area: str, field: str, credential: str) -> str:
    page = client.get(f"/{area}/login").text
    r = client.post(f"/{area}/sessions", data={**tokens(page), field: credential}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/{area}", r.text
    cookie = SimpleCookie(r.headers["set-cookie"])[f"yibao_{area}"]
    assert cookie["httponly"] and cookie["samesite"] == "strict" and cookie["path"] == f"/{area}"
    return cookie.value


@pytest.mark.parametrize("area, field, home", [("cashier", "credential", "#scan-form"), ("admin", "token", "chart-counts")])
def test_the_cashier_and_operator_cookies_die_at_log_out(site, db, area, field, home):
    """Their sessions were signed claims checked on every request: log-out cleared the browser's cookie, and a copy
    of it worked for hours. Now the cookie is a random token whose hash only is stored, and log-out deletes it."""
    world, client = site
    credential = world.hospital_credential if area == "cashier" else "demo-operator-token"
    token = _console_log_in(client, area, field, credential)
    page = client.get(f"/{area}")
    assert page.url.path == f"/{area}" and home.lstrip("#") in page.text
    client.post(f"/{area}/logout", data=tokens(page.text))
    client.cookies.clear()
    client.cookies.set(f"yibao_{area}", token, path=f"/{area}")  # a copy of the old cookie no longer works
    assert client.get(f"/{area}").url.path == f"/{area}/login"
    # Server-side: only the token's hash was stored, and log-out deleted it.
    from yibao.store.tables import console_sessions

    assert db.run(lambda c: c.execute(select(console_sessions)).all(), write=False) == []
    token = _console_log_in(client, area, field, credential)
    stored = db.run(lambda c: c.execute(select(console_sessions.c.token_hash)).scalars().all(), write=False)
    assert len(stored) == 1 and token not in stored[0] and stored[0] == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("area, field", [("cashier", "credential"), ("admin", "token")])
def test_a_console_session_still_expires_and_still_ends_with_its_credential(site, clock, area, field):
    world, client = site
    credential = world.hospital_credential if area == "cashier" else "demo-operator-token"
    _console_log_in(client, area, field, credential)
    clock.advance(hours=7, minutes=59)
    assert client.get(f"/{area}").url.path == f"/{area}"
    clock.advance(minutes=2)  # a shift (eight hours) later: over
    assert client.get(f"/{area}").url.path == f"/{area}/login"
    _console_log_in(client, area, field, credential)
    platform = client.app.state.platform
    if area == "cashier":  # a suspended institution stops at once
        db = platform.db
        db.run(lambda c: c.execute(institutions_table.update().where(institutions_table.c.id == world.hospital.id).values(status="suspended")))
    else:  # an operator token removed from the configuration stops at once
        platform.operator_tokens.clear()
    assert client.get(f"/{area}").url.path == f"/{area}/login"


def test_a_post_without_the_right_csrf_token_changes_nothing_and_says_why(site, db):
    world, client = site
    log_in(client, world.phones["employee"])
    page = client.get("/app/bindings").text
    for csrf in ("", "0" * 40):
        r = client.post("/app/bindings", data={**tokens(page), "csrf": csrf, "payment_institution_id": "wechat"})
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
        assert "页面已过期或来源不明" in r.text and "{" not in r.text
    assert db.run(lambda c: bindings.of_holder(c, world.employee.id), write=False) == []


def test_the_same_form_sent_twice_changes_things_once(site, db):
    world, client = site
    log_in(client, world.phones["employee"])
    form = {**tokens(client.get("/app/bindings").text), "payment_institution_id": "wechat", "password_free_limit": "100.00"}
    first = client.post("/app/bindings", data=form)
    second = client.post("/app/bindings", data=form)  # not "already bound": the first outcome again
    assert flash(first.text) == flash(second.text) == "已绑定"
    assert [b["payment_institution_id"] for b in db.run(lambda c: bindings.of_holder(c, world.employee.id), write=False)] == ["wechat"]
    again = client.post("/app/bindings", data={**form, "nonce": tokens(client.get("/app/bindings").text)["nonce"]})
    assert flash(again.text) == "已绑定该支付机构"  # a new form is a new request


def test_a_settlement_confirmed_twice_is_one_settlement(site, db):
    world, client = site
    from yibao.services.payments import paycodes

    code = db.run(lambda c: paycodes.issue(c, site_keyring(client), db.clock(), holder_id=world.employee.id, actor="test")).code
    page = client.get("/cashier/login").text
    client.post("/cashier/sessions", data={**tokens(page), "credential": world.hospital_credential})
    visit = client.post("/cashier/scan", data={**tokens(client.get("/cashier").text), "code": code, "kind": "outpatient"})
    assert "/cashier/visits/" in str(visit.url)
    client.post(str(visit.url).split("?")[0] + "/sample-lines", data={**tokens(visit.text), "account": "self"})
    split = client.get(str(visit.url) + "&presettle=1").text
    form = {**tokens(split[split.index('id="settle-form"'):]), "account": "self", "payer_psn_no": ""}
    first = client.post(str(visit.url).split("?")[0] + "/settle", data=form)
    second = client.post(str(visit.url).split("?")[0] + "/settle", data=form)
    assert first.url == second.url and "/cashier/settlements/" in str(first.url)
    assert len(db.run(lambda c: volumes.recent_for_institution(c, world.hospital.id), write=False)) == 1


def site_keyring(client):  # noqa: ANN001, ANN201
    return client.app.state.platform.keyring


def test_the_language_toggle_sets_a_cookie_and_goes_back_only_to_this_site(site):
    _, client = site
    r = client.get("/lang", params={"to": "en", "next": "/app/login"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/login"
    assert 'lang="en"' in client.get("/app/login").text
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert client.get("/lang", params={"to": "zh", "next": evil}, follow_redirects=False).headers["location"] == "/"


def test_pages_answer_in_html_and_the_api_keeps_its_json(site):
    _, client = site
    page = client.get("/cashier/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html") and "页面不存在" in page.text
    api = client.get("/api/v1/his/no-such-call")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    bad = client.get("/app/account", params={"month": "2026-13"})
    assert bad.url.path == "/app/login"  # no session: log in first, whatever the query


def test_a_tampered_cashier_cookie_is_no_session(site):
    world, client = site
    page = client.get("/cashier/login").text
    client.post("/cashier/sessions", data={**tokens(page), "credential": world.hospital_credential})
    assert client.get("/cashier").url.path == "/cashier"
    token = client.cookies.get("yibao_cashier")  # a random session token now (its hash is stored), no longer a signed claim
    forged = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]  # another token: no such session
    client.cookies.clear()
    client.cookies.set("yibao_cashier", forged, path="/cashier")
    assert client.get("/cashier").url.path == "/cashier/login"


def test_a_cashiers_cookie_never_passes_as_an_operators_even_when_the_names_match(site):
    world, client = site
    page = client.get("/cashier/login").text
    client.post("/cashier/sessions", data={**tokens(page), "credential": world.hospital_credential})
    cashier_claim = client.cookies.get("yibao_cashier")
    platform = client.app.state.platform
    code = world.hospital_credential.split(".")[0]
    platform.operator_tokens["0" * 64] = code  # an operator whose name is the institution's code
    client.cookies.clear()
    client.cookies.set("yibao_admin", cashier_claim, path="/admin")
    assert client.get("/admin").url.path == "/admin/login"
    client.cookies.set("yibao_cashier", cashier_claim, path="/cashier")
    assert client.get("/cashier").url.path == "/cashier"  # in its own area it is still the cashier's session


@pytest.mark.parametrize("value", ["abc.é", "é.abc", "%E9.%FF", "a" * 9000, "..", "e30.e30"])
def test_a_malformed_cookie_is_no_cookie_not_an_error(site, value):
    world, client = site
    sent = f"yibao_flash={value}; yibao_cashier={value}".encode("utf-8")  # raw bytes, as any client may send them
    login = client.get("/cashier", headers={"cookie": sent})
    assert login.status_code == 200 and login.url.path == "/cashier/login"
    assert client.get("/", headers={"cookie": sent}).status_code == 200


def test_what_a_refused_form_keeps_travels_encrypted(site):
    world, client = site
    log_in(client, world.phones["employee"])
    page = client.get("/app/family").text
    form = re.search(r'<form[^>]+action="/app/family/mutual-aid"[^>]*>(.*?)</form>', page, re.S).group(1)
    data = {**tokens(form), "relation": "spouse", "name": "王大锤", "id_number": "440304198801011234"}
    r = client.post("/app/family/mutual-aid", data=data, follow_redirects=False)
    assert r.status_code == 303
    sealed = SimpleCookie(r.headers["set-cookie"])["yibao_flash"].value
    import base64

    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    assert "王大锤".encode() not in raw and b"spouse" not in raw and b"relation" not in raw
    shown = client.get(r.headers["location"]).text
    assert 'value="王大锤"' in shown  # the reader still gets the form back as typed


def test_a_failed_real_name_log_in_gives_the_name_back_but_not_the_id_number(site):
    world, client = site
    page = client.get("/app/login").text
    form = re.search(r'<form[^>]+action="/app/sessions/real-name"[^>]*>(.*?)</form>', page, re.S).group(1)
    r = client.post("/app/sessions/real-name", data={**tokens(form), "name": "王大锤", "id_number": "440304198801011234",
                                                     "sample": "live:retiree"})
    assert r.url.path == "/app/login"
    assert 'value="王大锤"' in r.text and "440304198801011234" not in r.text



def _presettled_visit(site, db) -> tuple[str, str]:  # noqa: ANN001
    world, client = site
    from yibao.services.payments import paycodes

    code = db.run(lambda c: paycodes.issue(c, site_keyring(client), db.clock(), holder_id=world.employee.id, actor="test")).code
    client.post("/cashier/sessions", data={**tokens(client.get("/cashier/login").text), "credential": world.hospital_credential})
    visit = client.post("/cashier/scan", data={**tokens(client.get("/cashier").text), "code": code, "kind": "outpatient"})
    base = str(visit.url).split("?")[0]
    client.post(base + "/sample-lines", data={**tokens(visit.text), "account": "self"})
    return base, client.get(str(visit.url) + "&presettle=1").text


@pytest.mark.parametrize("payer", ["440300NOSUCH0000", "OTHER"])
def test_face_payment_answers_an_unknown_and_an_unlinked_payer_alike(site, db, payer):
    """A cashier cannot tell from the answer whether a person number exists: both are 'not a linked guardian'."""
    world, client = site
    base, page = _presettled_visit(site, db)
    payer_id = world.retiree.id if payer == "OTHER" else payer
    r = client.post(base + "/face", data={**tokens(page), "sample": "same", "face_payer": payer_id, "account": "self"})
    assert flash(r.text) == "付款人不是该参保人已关联的监护人"


def test_face_payment_says_the_lock_out_before_looking_at_the_sample(site, db):
    from yibao.store.tables import face_attempts as FA

    world, client = site
    now = db.clock()
    db.run(lambda c: [c.execute(FA.insert().values(region=world.hospital.region, person_id=world.employee.id, institution_id=world.hospital.id,
                                                   terminal_id="t", outcome="face_mismatch", created_at=now)) for _ in range(3)])
    base, page = _presettled_visit(site, db)
    r = client.post(base + "/face", data={**tokens(page), "sample": "not-a-sample", "face_payer": "", "account": "self"})
    assert flash(r.text).startswith("刷脸失败已达3次")
