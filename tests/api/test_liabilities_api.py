"""Backstop liability (兜底责任, seed 002) over HTTP on SQLite and PostgreSQL: a fund loss caused by a mobile payment is
charged to the hospital — receivable back to the fund, never more than the payment's fund share — and the recourse to
the payment institution is recorded; both audited and listed."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.api import OPERATOR, his, key
from tests.support.payments import LINES, payment_world
from yibao.app import create_app


@pytest.fixture
def pw(db, keyring, wxpay):
    return payment_world(db, keyring, wxpay, limit=50000, balance=20000)


@pytest.fixture
def client(db, keyring):
    with TestClient(create_app(db, keyring=keyring, demo=True), raise_server_exceptions=False) as c:
        yield c


def _admin(client, path: str, body: dict, k: str | None = None):  # noqa: ANN001, ANN202
    return client.post(path, json=body, headers={**OPERATOR, "Idempotency-Key": k or uuid.uuid4().hex})


def test_a_fund_loss_is_charged_to_the_hospital_and_the_recourse_recorded(client, pw):
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                    headers={**his(pw), **key()})
    doc = r.json()
    assert doc["status"] == "completed" and doc["fund"]["total"] == "9.00"
    before = pw.balances()
    k = uuid.uuid4().hex
    charged = _admin(client, "/api/v1/admin/liabilities", {"payment_id": doc["payment_id"], "amount": "6.00", "cause": "冒用他人医保码"}, k)
    assert charged.status_code == 201, charged.text
    lb = charged.json()
    assert (lb["amount"], lb["status"], lb["fixmedins_code"], lb["payment_institution_id"], lb["outstanding"]) == (
        "6.00", "charged", pw.w.hospital.id, pw.pi_id, "6.00")
    after = pw.balances()  # asserts the ledger sums to zero
    assert before["receivable"] - after["receivable"] == 6_00 and after["pool"] - before["pool"] == 6_00
    assert after["holder"] == before["holder"] and after["hospital_cash"] == before["hospital_cash"]
    replay = _admin(client, "/api/v1/admin/liabilities", {"payment_id": doc["payment_id"], "amount": "6.00", "cause": "冒用他人医保码"}, k)
    assert replay.json() == lb and pw.balances() == after  # a retry charges nothing more
    over = _admin(client, "/api/v1/admin/liabilities", {"payment_id": doc["payment_id"], "amount": "3.01", "cause": "再次"})
    assert over.status_code == 409 and (over.json()["error"]["field"], over.json()["error"]["code"]) == ("amount", "exceeds_fund_share")
    rest = _admin(client, "/api/v1/admin/liabilities", {"payment_id": doc["payment_id"], "amount": "3.00", "cause": "再次"})
    assert rest.status_code == 201 and pw.balances()["pool"] - before["pool"] == 9_00
    part = _admin(client, f"/api/v1/admin/liabilities/{lb['liability_id']}/recourse", {"amount": "4.00", "note": "支付机构赔付"})
    assert part.status_code == 200 and (part.json()["recovered"], part.json()["status"], part.json()["outstanding"]) == ("4.00", "recovering", "2.00")
    too_much = _admin(client, f"/api/v1/admin/liabilities/{lb['liability_id']}/recourse", {"amount": "2.01"})
    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "exceeds_liability"
    done = _admin(client, f"/api/v1/admin/liabilities/{lb['liability_id']}/recourse", {"amount": "2.00"})
    assert done.json()["status"] == "recovered" and len(done.json()["recourses"]) == 2
    listed = client.get(f"/api/v1/admin/liabilities?fixmedins_code={pw.w.hospital.id}", headers=OPERATOR).json()["items"]
    assert {x["liability_id"] for x in listed} == {lb["liability_id"], rest.json()["liability_id"]}
    actions = [e["action"] for e in client.get("/api/v1/admin/audit?limit=1000", headers=OPERATOR).json()["items"]]
    assert actions.count("liability.charge") == 2 and actions.count("liability.recourse") == 2
    assert client.get("/api/v1/admin/liabilities", headers=his(pw)).status_code in (401, 403)


def test_only_a_paid_payment_can_be_charged(client, pw):
    missing = _admin(client, "/api/v1/admin/liabilities", {"payment_id": "PO-NOPE", "amount": "1.00", "cause": "x"})
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "payment_id"
    bad = _admin(client, "/api/v1/admin/liabilities", {"payment_id": "PO-NOPE", "amount": "abc", "cause": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "amount"
