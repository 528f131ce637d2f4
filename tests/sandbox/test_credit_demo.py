"""The demo's 信用支付: its SANDBOX bank (mounted in the app, reached over HTTP) is each region's credit bank,
李明's e-card is bound to it, so he can enrol and have a visit's cash paid from his line; and a restart
(fresh sandboxes, same database) keeps his line and bills usable."""

from __future__ import annotations

import uuid

import httpx

from tests.support.api import login
from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.payments import PlatformServer
from yibao.app import create_app
from yibao.domain import credit as rules_
from yibao.sandbox import demo
from yibao.services.payments import paycodes

BANK = "bank-440300"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def _pay_by_credit(db, keyring, server, holder_id: str, credential: str, price: str) -> dict:
    code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=holder_id, person_id=holder_id, actor="test")).code
    lines = [{"feedetl_sn": "1", "medins_list_codg": "C901", "name": "护理用品", "unit_price": price, "quantity": "1"}]
    r = httpx.post(f"{server.url}/api/v1/his/payments/onecode", json={"code": code, "lines": lines, "pay_by": "credit"}, timeout=30,
                   headers={"Authorization": f"Bearer {credential}", **_key()})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_demo_enrols_li_ming_with_its_sandbox_bank_and_a_restart_keeps_his_line(db, keyring):
    guide = demo.ensure(db, keyring)
    li_ming = next(p for p in guide.people if p["name"] == "李明")
    credential = next(i["credential"] for i in guide.institutions if i["region"].startswith("440300") and i["level"] == "level3")
    server = PlatformServer(lambda url: create_app(db, keyring=keyring, sandboxes=True, base_url=url, sandbox_timeout_s=CLIENT_TIMEOUT_S))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            holder = login(client, li_ming["phone"])
            r = client.post("/api/v1/patient/credit/enrol", json={"payment_institution_id": BANK, "consent_version": rules_.CONSENT_VERSION},
                            headers={**holder, **_key()})
            assert r.status_code == 201, r.text
            limit = r.json()["limit"]
            paid = _pay_by_credit(db, keyring, server, li_ming["psn_no"], credential, "30.00")
            assert (paid["status"], paid["cash"]["amount"], paid["cash"]["payment_institution_id"]) == ("completed", "30.00", BANK)
            line = client.get("/api/v1/patient/credit", headers=holder).json()["lines"][0]
            assert (line["owed"], line["held"], line["used"]) == ("30.00", "0.00", "30.00")
            [bill] = line["bills"]
            books = server.app.state.sandbox_institutions["bank"].runtime.books
            assert books.bills[bill["bill_no"]].out_trade_no == paid["payment_id"]  # the bank paid the hospital
    finally:
        server.stop()

    # A restart: the sandboxes are made afresh (new books, new secret); the line and its bill are told to the new bank.
    server = PlatformServer(lambda url: create_app(db, keyring=keyring, sandboxes=True, base_url=url, sandbox_timeout_s=CLIENT_TIMEOUT_S))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:  # the session is the platform's: it outlives the process
            again = _pay_by_credit(db, keyring, server, li_ming["psn_no"], credential, "20.00")
            assert again["status"] == "completed"
            r = client.post(f"/api/v1/patient/credit/bills/{bill['bill_no']}/repay", json={"amount": "30.00"}, headers={**holder, **_key()})
            assert r.status_code == 200, r.text
            assert r.json()["bill"]["status"] == "repaid"
            line = client.get("/api/v1/patient/credit", headers=holder).json()["lines"][0]
            assert (line["limit"], line["owed"], line["available"]) == (limit, "20.00", f"{float(limit) - 20:.2f}")
    finally:
        server.stop()
