"""Benefits onto the card over HTTP (the SANDBOX bank as a loopback server), on SQLite and PostgreSQL: the operator records
the cards' accounts and a batch as CSV (refused rows named in `error.details`), submits it, sees it credited and returned;
the holder sees their credit."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.api import OPERATOR, login
from tests.support.benefits import close_account, luhn_account
from tests.support.credit import connect
from tests.support.identity import active_card, admit
from tests.support.world import seed
from yibao.app import create_app

BANK = "bank-440300"


def key() -> dict[str, str]:
    return {**OPERATOR, "Idempotency-Key": uuid.uuid4().hex}


@pytest.fixture
def setup(db, keyring, bank, sms_gateway):
    w = seed(db, keyring)
    admit(db, BANK, kind="bank")
    connect(db, keyring, BANK, bank.channel)
    app = create_app(db, keyring=keyring, demo=True, sms_gateway=sms_gateway)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield w, client


def test_a_csv_batch_is_refused_by_row_then_credited_and_returned_and_the_holder_sees_it(db, keyring, setup, bank):
    w, client = setup
    for n, person in ((1, w.employee), (3, w.resident)):
        card = active_card(db, keyring, person.id)
        r = client.put(f"/api/v1/admin/cards/{card.id}/account", json={"bank": BANK, "account_no": luhn_account(n)}, headers=key())
        assert r.status_code == 200 and r.json()["account_no"] == f"****{luhn_account(n)[-4:]}", r.text
    close_account(bank.url, luhn_account(3))
    batch = {"region": "440300", "agency": "深圳市残疾人联合会", "batch_no": "CL-202612", "purpose": "重度残疾人护理补贴"}
    bad = f"psn_no,amount\n{w.employee.id},120.00\n{w.retiree.id},30.00\n{w.resident.id},0\n"
    r = client.post("/api/v1/admin/benefit-batches", json={**batch, "csv": bad}, headers=key())
    assert r.status_code == 422 and r.json()["error"]["code"] == "rows_refused", r.text
    assert [(d["row"], d["code"]) for d in r.json()["error"]["details"]] == [(2, "no_card_account"), (3, "amount_not_positive")]

    good = f"\ufeffpsn_no,amount\n{w.employee.id},120.00\n{w.resident.id},30.05\n"
    r = client.post("/api/v1/admin/benefit-batches", json={**batch, "csv": good}, headers=key())
    assert r.status_code == 201 and r.json()["status"] == "recorded", r.text
    batch_id = r.json()["batch_id"]
    headers = key()
    r = client.post(f"/api/v1/admin/benefit-batches/{batch_id}/submit", headers=headers)
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["summary"]["credited"], done["summary"]["returned"]) == \
        ("done", {"count": 1, "amount": "120.00"}, {"count": 1, "amount": "30.05"})
    assert client.post(f"/api/v1/admin/benefit-batches/{batch_id}/submit", headers=headers).json() == done  # the key replays
    again = client.post(f"/api/v1/admin/benefit-batches/{batch_id}/submit", headers=key()).json()  # a new key: nothing left to send
    assert again["summary"] == done["summary"] and again["run"]["driven"] == 0
    assert client.get("/api/v1/admin/benefit-batches", params={"region": "440300"}, headers=OPERATOR).json()["items"][0]["batch_id"] == batch_id

    holder = login(client, w.phones["resident"])
    [mine] = client.get("/api/v1/patient/benefits", headers=holder).json()["items"]
    assert (mine["agency"], mine["purpose"], mine["amount"], mine["status"], mine["return_code"]) == \
        ("深圳市残疾人联合会", "重度残疾人护理补贴", "30.05", "returned", "ACCOUNT_CLOSED")
