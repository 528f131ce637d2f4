"""The holder's API: SMS log-in through the sandbox outbox, own data only."""

from __future__ import annotations

from tests.support.api import login


def test_login_and_own_account(client, world):
    h = login(client, world.phones["employee"])
    me = client.get("/api/v1/patient/me", headers=h).json()
    assert me["psn_no"] == world.employee.id and "*" in me["certno"] and "*" in me["psn_name"]
    acct = client.get(f"/api/v1/patient/persons/{world.employee.id}/account", headers=h).json()
    assert acct["balance"] == "3000.00"
    tx = client.get(f"/api/v1/patient/persons/{world.employee.id}/account/transactions", headers=h).json()["items"]
    assert tx[0]["amount"] == "3000.00" and tx[0]["code"] == "contribution"
    st = client.get(f"/api/v1/patient/persons/{world.employee.id}/account/statements/2026/11", headers=h).json()
    assert st["opening"] == "0.00" and st["credits"] == "3000.00" and st["closing"] == "3000.00"


def test_a_holder_cannot_read_another_familys_data(client, world):
    h = login(client, world.phones["employee"])
    for path in (f"/api/v1/patient/persons/{world.retiree.id}", f"/api/v1/patient/persons/{world.retiree.id}/account",
                 f"/api/v1/patient/persons/{world.retiree.id}/account/transactions"):
        r = client.get(path, headers=h)
        assert r.status_code == 404 and r.json()["error"]["field"] == "psn_no"


def test_wrong_code_and_bad_token(client, world):
    client.post("/api/v1/patient/sms-codes", json={"phone": world.phones["resident"]})
    r = client.post("/api/v1/patient/sessions", json={"phone": world.phones["resident"], "code": "000000"})
    assert r.status_code == 401 and r.json()["error"]["field"] == "code"
    assert client.get("/api/v1/patient/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = client.post("/api/v1/patient/sms-codes", json={"phone": "12"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "phone"
