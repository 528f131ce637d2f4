"""Findings of the platform-core review, each pinned by a test (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tests.support.api import OPERATOR
from yibao.services.books import ledger
from yibao.store.tables import idempotency_records

LINE = [{"feedetl_sn": "1", "code": "A001", "name": "诊查费", "class": "A", "unit_price": "300.00", "quantity": "1"}]


def _h(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _post(client, path, body, headers):
    return client.post(path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})


def _visit(client, credential, psn_no):
    v = _post(client, "/api/v1/his/visits", {"psn_no": psn_no, "kind": "outpatient"}, _h(credential)).json()["mdtrt_id"]
    assert _post(client, f"/api/v1/his/visits/{v}/fee-lines", {"lines": LINE}, _h(credential)).status_code == 200
    return v


def test_sms_codes_cannot_be_guessed_without_limit(client, world):
    phone = world.phones["employee"]
    client.post("/api/v1/patient/sms-codes", json={"phone": phone})
    code = client.get("/api/v1/admin/sandbox/sms", headers=OPERATOR).json()["items"][0]["text"].split("验证码为 ")[1][:6]
    wrong = "000000" if code != "000000" else "111111"
    answers = [client.post("/api/v1/patient/sessions", json={"phone": phone, "code": wrong}).json()["error"]["code"] for _ in range(5)]
    assert answers == ["code_wrong"] * 5
    # the attempts were counted (committed before the refusal), so even the right code is now refused
    r = client.post("/api/v1/patient/sessions", json={"phone": phone, "code": code})
    assert r.status_code == 401 and r.json()["error"]["code"] == "code_invalid"


def test_a_message_id_cannot_answer_for_another_visit(client, world):
    v1, v2 = _visit(client, world.hospital_credential, world.employee.id), _visit(client, world.hospital_credential, world.employee.id)
    assert _post(client, f"/api/v1/his/visits/{v1}/settle", {"msgid": "MSG-1"}, _h(world.hospital_credential)).status_code == 200
    r = _post(client, f"/api/v1/his/visits/{v2}/settle", {"msgid": "MSG-1"}, _h(world.hospital_credential))
    assert r.status_code == 409 and r.json()["error"]["code"] == "msgid_used_for_other_visit"
    assert client.get(f"/api/v1/his/visits/{v2}", headers=_h(world.hospital_credential)).json()["status"] == "open"


def test_message_ids_belong_to_their_institution(client, world):
    # hospital B "reverses" an id hospital A has not used yet: A's settlement with that id still goes through
    r = _post(client, "/api/v1/his/reversals", {"omsgid": "SHARED-1", "oinfno": "2207"}, _h(world.other_credential))
    assert r.json()["status"] == "reversed_before_arrival"
    v = _visit(client, world.hospital_credential, world.employee.id)
    r = _post(client, f"/api/v1/his/visits/{v}/settle", {"msgid": "SHARED-1"}, _h(world.hospital_credential))
    assert r.status_code == 200 and r.json()["status"] == "settled"


def test_an_institutions_secret_is_not_stored_for_replays(client, db, world):
    headers = {**OPERATOR, "Idempotency-Key": "admit-once"}
    body = {"code": "H44030099", "region": "440300", "name": "新医院", "kind": "hospital", "level": "level2"}
    first = client.post("/api/v1/admin/institutions", json=body, headers=headers)
    secret = first.json()["credential"]
    assert first.status_code == 201 and secret.startswith("H44030099.")
    stored = db.run(lambda c: [r.body for r in c.execute(select(idempotency_records.c.body)).all()], write=False)
    assert not any(secret.split(".", 1)[1] in b for b in stored)
    again = client.post("/api/v1/admin/institutions", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["credential"] is None and again.json()["credential_note"]


def test_cross_region_settlement_balances_each_regions_books(client, db, keyring, world):
    from tests.support.world import seed

    ningbo = seed(db, keyring, region="330200")
    r = _post(client, f"/api/v1/admin/persons/{ningbo.employee.id}/filings",
              {"treatment_region": "440300", "filing_type": "long_term", "valid_from": "2026-01-01"}, OPERATOR)
    assert r.status_code == 201
    v = _visit(client, world.hospital_credential, ningbo.employee.id)
    doc = _post(client, f"/api/v1/his/visits/{v}/settle", {"account": {"use": True}}, _h(world.hospital_credential)).json()
    assert doc["insuplc_admdvs"] == "330200" and doc["mdtrtarea_admvs"] == "440300"
    for region in ("330200", "440300"):
        t = db.run(lambda c, r=region: ledger.totals(c, r), write=False)
        assert t.balanced, (region, t)
    # cancelling undoes every leg, in both regions
    assert _post(client, f"/api/v1/his/settlements/{doc['setl_id']}/cancel", {}, _h(world.hospital_credential)).status_code == 200
    for region in ("330200", "440300"):
        assert db.run(lambda c, r=region: ledger.totals(c, r), write=False).balanced
    assert doc["acct_pay"] != "0.00"  # the account leg crossed regions too
