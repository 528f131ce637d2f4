"""Money cannot be minted (SQLite and PostgreSQL, over HTTP): an operator's credit to a personal account draws
from the contributions collected into its region, and above the region's threshold waits for a second operator."""

from __future__ import annotations

from tests.support.api import CHECKER, OPERATOR, key, post


def _error(r, status: int, code: str, field: str) -> dict:  # noqa: ANN001
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"]) == (code, field), err
    return err


def test_a_credit_of_99999999999_99_with_nothing_collected_is_refused_and_the_books_do_not_move(client, world):
    psn = world.employee.id
    before = client.get("/api/v1/admin/ledger/totals", headers=OPERATOR).json()
    r = post(client, f"/api/v1/admin/persons/{psn}/account-credits", {"amount": "99999999999.99"}, OPERATOR)
    err = _error(r, 409, "exceeds_collected", "amount")
    assert "¥99999999999.99" in err["message_zh"] and "record the collection first" in err["message_en"]
    assert client.get("/api/v1/admin/ledger/totals", headers=OPERATOR).json() == before
    assert client.get("/api/v1/admin/regions/440300/contributions", headers=OPERATOR).json()["available"] == "0.00"


def test_a_large_credit_is_requested_by_one_operator_and_approved_once_by_another(client, world):
    psn = world.employee.id
    r = post(client, "/api/v1/admin/regions/440300/contribution-collections", {"amount": "20000.00", "reference": "BANK-20261122-01"},
             OPERATOR)
    assert r.status_code == 201 and r.json()["available"] == "20000.00", r.text

    small = post(client, f"/api/v1/admin/persons/{psn}/account-credits", {"amount": "500.00"}, OPERATOR)
    assert small.status_code == 200 and small.json()["status"] == "credited" and small.json()["balance"] == "3500.00", small.text

    asked = post(client, f"/api/v1/admin/persons/{psn}/account-credits", {"amount": "10000.01"}, OPERATOR)
    assert asked.status_code == 202 and asked.json()["status"] == "awaiting_approval", asked.text
    credit_id = asked.json()["credit_id"]
    waiting = client.get("/api/v1/admin/account-credits?status=awaiting_approval", headers=OPERATOR).json()["items"]
    assert [c["credit_id"] for c in waiting] == [credit_id]

    approval = f"/api/v1/admin/account-credits/{credit_id}/approval"
    _error(client.post(approval, headers={**OPERATOR, **key()}), 403, "same_operator", "credit_id")
    done = client.post(approval, headers={**CHECKER, **key()})
    assert done.status_code == 200 and done.json()["balance"] == "13500.01" and done.json()["approved_by"] == "operator:demo-checker", done.text
    again = client.post(approval, headers={**CHECKER, **key()})  # a second approval, another key: nothing moves again
    assert again.status_code == 200 and again.json()["balance"] == "13500.01"
    assert client.get("/api/v1/admin/regions/440300/contributions", headers=OPERATOR).json()["available"] == "9499.99"
    assert client.get("/api/v1/admin/account-credits?status=awaiting_approval", headers=OPERATOR).json()["items"] == []
    assert client.get("/api/v1/admin/ledger/totals", headers=OPERATOR).json()["balanced"] is True
