"""/cashier and presence, through HTTP without a browser (the ASGI app in-process), on SQLite and PostgreSQL: the counter
settles with a personal account only once its owner has presented a credential for the visit — the card read with its
PIN at the console or on the visit page, or the code scanned — and a card looked up without one shows no balance."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.pages import flash, tokens
from tests.support.presence import PIN, card_with_pin
from tests.support.world import seed
from yibao.app import create_app
from yibao.domain.ledger import person_account
from yibao.services.books import ledger


@pytest.fixture
def counter(db, keyring):
    world = seed(db, keyring)
    card_no = card_with_pin(db, keyring, world.employee.id)
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False, follow_redirects=True) as client:
        page = client.get("/cashier/login").text
        client.post("/cashier/sessions", data={**tokens(page), "credential": world.hospital_credential})
        yield world, client, card_no


def balance(db, person_id):
    return db.run(lambda c: ledger.balance(c, person_account(person_id)), write=False)


def _form(html: str, form_id: str) -> dict[str, str]:
    return tokens(html[html.index(f'id="{form_id}"'):])


def _visit_by_card(client, card_no: str, pin: str = ""):  # noqa: ANN001, ANN202
    page = client.get("/cashier").text
    r = client.post("/cashier/lookup", data={**_form(page, "lookup-form"), "card_no": card_no, "pin": pin, "kind": "outpatient"})
    assert "/cashier/visits/" in str(r.url), flash(r.text)
    base = str(r.url).split("?")[0]
    client.post(base + "/sample-lines", data={**tokens(r.text[r.text.index('/sample-lines'):]), "account": "self"})
    return base, client.get(base + "?account=self&presettle=1").text


def test_the_counter_settles_with_the_account_only_after_the_card_and_its_pin(counter, db):
    world, client, card_no = counter
    before = balance(db, world.employee.id)
    base, page = _visit_by_card(client, card_no)  # the card number alone: a look-up, not a presence
    assert 'id="presence-needed"' in page and 'id="confirm-settle"' not in page
    assert 'id="split-account">¥0.00<' in page  # the split leaves the account (and its balance) out until then
    # The settle form sent anyway with the account: refused in words, nothing moves.
    r = client.post(base + "/settle", data={**_form(page, "settle-form"), "account": "self", "payer_psn_no": ""})
    assert flash(r.text).startswith("从个人账户支付须账户所有人本人到场") and balance(db, world.employee.id) == before
    # A wrong PIN is said and counts; the right one makes the owner present for this visit.
    page = client.get(base + "?account=self&presettle=1").text
    r = client.post(base + "/presence/card", data={**_form(page, "presence-card-form"), "card_no": card_no, "pin": "975319",
                                                   "account": "self"})
    assert flash(r.text).endswith("社保卡密码（支付密码）错误")
    r = client.post(base + "/presence/card", data={**_form(r.text, "presence-card-form"), "card_no": card_no, "pin": PIN, "account": "self"})
    assert flash(r.text) == "读卡验密通过：可从个人账户支付本次就诊"
    assert 'data-kind="card_pin"' in r.text and 'id="confirm-settle"' in r.text and 'id="presence-needed"' not in r.text
    account = r.text.split('id="split-account">¥', 1)[1].split("<", 1)[0]
    assert account != "0.00"
    done = client.post(base + "/settle", data={**_form(r.text, "settle-form"), "account": "self", "payer_psn_no": ""})
    assert "/cashier/settlements/" in str(done.url)
    assert balance(db, world.employee.id) == before - int(account.replace(".", ""))


def test_the_card_and_its_pin_at_the_console_open_the_visit_with_the_owner_present(counter, db):
    world, client, card_no = counter
    wrong = client.post("/cashier/lookup", data={**_form(client.get("/cashier").text, "lookup-form"), "card_no": card_no, "pin": "975319"})
    assert str(wrong.url).endswith("/cashier") and flash(wrong.text).endswith("社保卡密码（支付密码）错误")
    base, page = _visit_by_card(client, card_no, PIN)
    assert 'data-kind="card_pin"' in page and 'id="confirm-settle"' in page
    from yibao.store.tables import person_lookups

    outcomes = db.run(lambda c: [r.outcome for r in c.execute(select(person_lookups.c.outcome).order_by(person_lookups.c.id))], write=False)
    assert outcomes == ["wrong_pin", "found"]  # both reads counted as look-ups, the wrong PIN as a miss


def test_a_card_number_that_names_nobody_is_counted_before_it_is_said(counter, db):
    world, client, _ = counter
    r = client.post("/cashier/lookup", data={**_form(client.get("/cashier").text, "lookup-form"), "card_no": "NOSUCH0001"})
    assert flash(r.text).endswith("未找到该凭证对应的参保人，或卡片不可用")
    from yibao.store.tables import person_lookups

    assert db.run(lambda c: c.execute(select(person_lookups.c.outcome)).scalars().all(), write=False) == ["not_found"]


def test_a_code_scanned_at_the_console_is_presence_for_the_visit_it_opens_only(counter, db, keyring):
    from tests.support.identity import ecard, id_number_of, name_of
    from yibao.services.payments import paycodes

    world, client, card_no = counter
    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=world.employee.id, actor="test")).code
    scanned = client.post("/cashier/scan", data={**_form(client.get("/cashier").text, "scan-form"), "code": code, "kind": "outpatient"})
    assert "/cashier/visits/" in str(scanned.url)
    first = str(scanned.url).split("?")[0]
    # Another visit of the same person, opened by the card number alone: the scan was for the first one.
    other, page = _visit_by_card(client, card_no)
    assert other != first and 'id="presence-needed"' in page and 'id="confirm-settle"' not in page
    client.post(first + "/sample-lines", data={**tokens(scanned.text[scanned.text.index('/sample-lines'):]), "account": "self"})
    page = client.get(first + "?account=self&presettle=1").text
    assert 'data-kind="paycode"' in page and 'id="confirm-settle"' in page
