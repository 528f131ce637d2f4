"""The patient API's signing of the password-free agreement (issue 14): start → the institution's page (the WeChat
sandbox's, over HTTP) → the state asked of the institution. Both databases."""

from __future__ import annotations

import asyncio

from tests.support.api import login
from tests.support.channels import play_holder
from tests.support.payments import payment_world
from yibao.channels.base import SigningStart


def test_the_holder_starts_signing_in_the_app_signs_on_wechats_page_and_sees_it_signed(client, db, keyring, wxpay):
    pw = payment_world(db, keyring, wxpay, signed=False)
    h = login(client, pw.w.phones["employee"])
    path = f"/api/v1/patient/ecard/bindings/{pw.pi_id}/agreement"
    assert client.get(path, headers=h).json()["status"] == "none"
    bad = client.post(path, json={"return_url": "javascript:alert(1)"}, headers={**h, "Idempotency-Key": "sign-0"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "return_url"
    r = client.post(path, json={"return_url": "https://app.example.com/back"}, headers={**h, "Idempotency-Key": "sign-1"})
    assert r.status_code == 200, r.text
    started = r.json()
    assert started["status"] == "pending" and started["signing"]["method"] == "GET" and started["signing"]["url"].startswith(wxpay.url)
    assert client.get(path, headers=h).json()["status"] == "pending"  # asked of WeChat: not signed yet
    asyncio.run(play_holder(SigningStart(started["out_agreement_no"], started["signing"]["url"])))
    state = client.get(path, headers=h).json()
    assert (state["status"], state["agreement_no"]) == ("active", wxpay.runtime.books.agreements[started["out_agreement_no"]].agreement_no)
    again = client.post(path, json={}, headers={**h, "Idempotency-Key": "sign-2"})
    assert again.status_code == 200 and again.json()["status"] == "active" and "signing" not in again.json()
    unbound = client.post("/api/v1/patient/ecard/bindings/alipay-440300/agreement", json={}, headers={**h, "Idempotency-Key": "sign-3"})
    assert unbound.status_code == 404 and unbound.json()["error"]["code"] == "not_bound"
    # Unbinding in the app ends the agreement at WeChat too (its contract terminated: no deduction under it any more).
    gone = client.delete(f"/api/v1/patient/ecard/bindings/{pw.pi_id}", headers={**h, "Idempotency-Key": "unbind-1"})
    assert gone.status_code == 200 and pw.pi_id not in [b["payment_institution_id"] for b in gone.json()["items"]]
    assert client.get(path, headers=h).json()["status"] == "terminated"
    assert wxpay.runtime.books.agreements[started["out_agreement_no"]].status == "terminated"
