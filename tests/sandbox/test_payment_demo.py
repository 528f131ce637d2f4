"""The demo pays through its mounted SANDBOX institutions over HTTP."""

from __future__ import annotations

import uuid

import httpx

from tests.support.channels import CLIENT_TIMEOUT_S
from tests.support.payments import PlatformServer
from yibao.app import create_app
from yibao.sandbox import demo
from yibao.services.payments import paycodes


def test_the_demo_pays_a_childs_bill_from_the_guardians_binding_through_its_mounted_sandbox(db, keyring):
    guide = demo.ensure(db, keyring)
    ids = {p["name"]: p["psn_no"] for p in guide.people}
    credential = next(i["credential"] for i in guide.institutions if i["region"].startswith("440300") and i["level"] == "level3")
    server = PlatformServer(lambda url: create_app(db, keyring=keyring, sandboxes=True, base_url=url, sandbox_timeout_s=CLIENT_TIMEOUT_S))
    try:
        def pay(unit_price: str) -> httpx.Response:
            code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=ids["李明"], person_id=ids["李小雨"], actor="test")).code
            lines = [{"feedetl_sn": "1", "medins_list_codg": "C901", "name": "儿童护理用品", "unit_price": unit_price, "quantity": "1"}]
            return httpx.post(f"{server.url}/api/v1/his/payments/onecode", json={"code": code, "lines": lines}, timeout=30,
                              headers={"Authorization": f"Bearer {credential}", "Idempotency-Key": uuid.uuid4().hex})

        small = pay("88.00")
        assert small.status_code == 200, small.text
        doc = small.json()
        assert (doc["status"], doc["psn_no"], doc["payer_psn_no"], doc["cash"]["amount"]) == ("completed", ids["李小雨"], ids["李明"], "88.00")
        assert doc["cash"]["payment_institution_id"] == "wechat-440300"
        books = server.app.state.sandbox_institutions["wxpay"].runtime.books
        assert books.trades[doc["payment_id"]].status == "succeeded" and books.trades[doc["payment_id"]].amount_fen == 8800
        big = pay("1500.00")  # above the demo's 1000.00 password-free limit: the guardian is asked in the app
        assert big.status_code == 202 and big.json()["status"] == "awaiting_confirmation"
    finally:
        server.stop()
