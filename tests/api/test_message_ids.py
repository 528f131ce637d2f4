"""A HIS message id settles one visit only, and belongs to the institution that sent it (SQLite and PostgreSQL).
Findings of the platform-core review."""

from __future__ import annotations

from tests.support.api import bearer, post, visit


def test_a_message_id_cannot_answer_for_another_visit(client, world):
    v1, v2 = visit(client, world.hospital_credential, world.employee.id), visit(client, world.hospital_credential, world.employee.id)
    assert post(client, f"/api/v1/his/visits/{v1}/settle", {"msgid": "MSG-1"}, bearer(world.hospital_credential)).status_code == 200
    r = post(client, f"/api/v1/his/visits/{v2}/settle", {"msgid": "MSG-1"}, bearer(world.hospital_credential))
    assert r.status_code == 409 and r.json()["error"]["code"] == "msgid_used_for_other_visit"
    assert client.get(f"/api/v1/his/visits/{v2}", headers=bearer(world.hospital_credential)).json()["status"] == "open"


def test_message_ids_belong_to_their_institution(client, world):
    # hospital B "reverses" an id hospital A has not used yet: A's settlement with that id still goes through
    r = post(client, "/api/v1/his/reversals", {"omsgid": "SHARED-1", "oinfno": "2207"}, bearer(world.other_credential))
    assert r.json()["status"] == "reversed_before_arrival"
    v = visit(client, world.hospital_credential, world.employee.id)
    r = post(client, f"/api/v1/his/visits/{v}/settle", {"msgid": "SHARED-1"}, bearer(world.hospital_credential))
    assert r.status_code == 200 and r.json()["status"] == "settled"
