"""The payment PIN is limited per HOLDER, across payments and bills (issue 11, point 4), over HTTP on SQLite and
PostgreSQL: four wrong PINs per payment, for as many payments as one liked, used to be the only limit. Now the
fifth wrong PIN within three hours — whichever payment, bill or PIN change it was typed for — locks the holder's
PIN like a wallet's payment password: every PIN is refused (the right one too) with Retry-After."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.api import his, key, login
from tests.support.payments import LINES, payment_world
from yibao.app import create_app

PIN, WRONG = "246810", "135790"
HOLDER_WINDOW_S = 3 * 3600  # services/payments/pins.py: HOLDER_WINDOW


@pytest.fixture
def pw(db, keyring, wxpay):
    return payment_world(db, keyring, wxpay, limit=0, balance=20000)


@pytest.fixture
def client(db, keyring, sms_gateway):
    with TestClient(create_app(db, keyring=keyring, sms_gateway=sms_gateway), raise_server_exceptions=False) as c:
        yield c


def _waiting(client, pw) -> str:  # noqa: ANN001
    """A one-code payment above the password-free limit (0): it waits for the holder's PIN."""
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES}, headers={**his(pw), **key()})
    assert r.status_code == 202 and r.json()["status"] == "awaiting_confirmation", r.text
    return r.json()["payment_id"]


def _bill(client, pw) -> str:  # noqa: ANN001
    v = client.post("/api/v1/his/visits", json={"psn_no": pw.w.employee.id, "kind": "outpatient"}, headers={**his(pw), **key()}).json()
    assert client.post(f"/api/v1/his/visits/{v['mdtrt_id']}/fee-lines", json={"lines": LINES}, headers={**his(pw), **key()}).status_code == 200
    b = client.post(f"/api/v1/his/visits/{v['mdtrt_id']}/bill", headers={**his(pw), **key()})
    assert b.status_code == 201, b.text
    return b.json()["payment_id"]


def _wrong(r, left: int) -> None:
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert (err["field"], err["code"]) == ("pin", "pin_wrong") and f"{left} attempts left" in err["message_en"], err


def _locked(r, field: str = "pin") -> int:
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert (err["field"], err["code"]) == (field, "pin_locked") and "分钟" in err["message_zh"], err
    wait = int(r.headers["Retry-After"])
    assert 0 < wait <= HOLDER_WINDOW_S
    return wait


def test_wrong_pins_count_per_holder_across_payments_and_bills(client, pw, clock):
    me = login(client, pw.w.phones["employee"])
    assert client.post("/api/v1/patient/payment-pin", json={"pin": PIN}, headers={**me, **key()}).status_code == 200
    a, b, bill = _waiting(client, pw), _waiting(client, pw), _bill(client, pw)

    def confirm(order: str, pin: str):  # noqa: ANN202
        return client.post(f"/api/v1/patient/payments/{order}/confirm", json={"pin": pin}, headers={**me, **key()})

    def pay(pin: str):  # noqa: ANN202
        return client.post(f"/api/v1/patient/bills/{bill}/pay", json={"use_account": False, "pin": pin}, headers={**me, **key()})

    _wrong(confirm(a, WRONG), 4)
    _wrong(confirm(a, WRONG), 3)
    _wrong(confirm(b, WRONG), 2)  # a payment of its own had four tries left: the holder has two
    _wrong(pay(WRONG), 1)
    _locked(pay(WRONG))  # the fifth wrong PIN, on the third door
    _locked(confirm(a, PIN))  # locked: the right PIN too, wherever it is typed
    _locked(pay(PIN))
    change = client.post("/api/v1/patient/payment-pin", json={"pin": "975310", "old_pin": PIN}, headers={**me, **key()})
    _locked(change, "old_pin")
    # No payment reached its own limit of five: none was voided by the lock.
    for order in (a, b):
        assert client.get(f"/api/v1/his/payments/{order}", headers=his(pw)).json()["status"] == "awaiting_confirmation"
    clock.advance(hours=3, seconds=1)
    paid = pay(PIN)
    assert paid.status_code == 200 and paid.json()["status"] == "completed", paid.text


def test_a_right_pin_ends_the_holders_count(client, pw):
    me = login(client, pw.w.phones["employee"])
    assert client.post("/api/v1/patient/payment-pin", json={"pin": PIN}, headers={**me, **key()}).status_code == 200
    for _ in range(2):  # eight wrong PINs in all, each four ended by the right one: never locked
        order = _waiting(client, pw)
        for left in (4, 3, 2, 1):
            _wrong(client.post(f"/api/v1/patient/payments/{order}/confirm", json={"pin": WRONG}, headers={**me, **key()}), left)
        done = client.post(f"/api/v1/patient/payments/{order}/confirm", json={"pin": PIN}, headers={**me, **key()})
        assert done.status_code == 200 and done.json()["status"] == "completed", done.text
