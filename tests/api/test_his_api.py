"""The HIS audience over HTTP, on SQLite and PostgreSQL: paths, idempotency, errors, access control."""

from __future__ import annotations

import pytest

from tests.support.api import LINES, OPERATOR, his, key, open_visit, post
from tests.support.presence import card_with_pin, present_card_over_http


def balance(client, world, person_id):
    r = client.get("/api/v1/admin/ledger/totals", headers=OPERATOR)
    assert r.json()["balanced"] is True
    return None


def test_outpatient_path_over_http(client, world, db, keyring):
    r = post(client, "/api/v1/his/persons/lookup", {"credential_type": "id_number", "credential_no": "440301196001010018"}, his(world))
    assert r.status_code in (404, 422)  # not an enrolled number: no leak of who exists
    vid = open_visit(client, world, world.employee)
    # The holder reads their card and types its PIN for this visit: the account may pay it (services/care/presence.py).
    assert present_card_over_http(client, his(world), card_with_pin(db, keyring, world.employee.id), visit_id=vid).status_code == 201
    pre = client.post(f"/api/v1/his/visits/{vid}/presettle", json={"account": {"use": True}}, headers=his(world))
    assert pre.status_code == 200, pre.text
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world))
    assert r.status_code == 200, r.text
    doc = r.json()
    # 300 + 25 = 325; B over 5.00, pre 2.00, in 18.00; in scope 318.00; deductible 300; (318-300)*0.50 = 9.00
    assert doc["medfee_sumamt"] == "325.00" and doc["hifp_pay"] == "9.00" and doc["acct_pay"] == "316.00"
    assert {k: pre.json()[k] for k in ("hifp_pay", "acct_pay")} == {k: doc[k] for k in ("hifp_pay", "acct_pay")}
    assert client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(world)).json()["status"] == "settled"
    r = post(client, f"/api/v1/his/settlements/{doc['setl_id']}/cancel", {}, his(world))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.get("/api/v1/admin/ledger/totals", headers=OPERATOR).json()["balanced"] is True
    assert client.get(f"/api/v1/his/visits/{vid}", headers=his(world)).json()["status"] == "open"


def test_inpatient_path_and_reversal_over_http(client, world, db, keyring):
    lines = [{"feedetl_sn": "1", "medins_list_codg": "A010", "name": "手术", "unit_price": "5000.00", "quantity": "1"}]
    vid = open_visit(client, world, world.retiree, kind="inpatient", lines=lines)
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world))
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_discharged"
    assert post(client, f"/api/v1/his/visits/{vid}/discharge", {}, his(world)).status_code == 200
    assert present_card_over_http(client, his(world), card_with_pin(db, keyring, world.retiree.id), visit_id=vid).status_code == 201
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}, "msgid": "H440300012026112200001"}, his(world))
    assert r.status_code == 200 and r.json()["hifp_pay"] == "4180.00"
    r = post(client, "/api/v1/his/reversals", {"omsgid": "H440300012026112200001", "oinfno": "2207"}, his(world))
    assert r.status_code == 200 and r.json()["status"] == "reversed"
    assert client.get(f"/api/v1/his/visits/{vid}", headers=his(world)).json()["status"] == "discharged"


def test_same_idempotency_key_never_charges_twice(client, world, db, keyring):
    vid = open_visit(client, world, world.employee)
    assert present_card_over_http(client, his(world), card_with_pin(db, keyring, world.employee.id), visit_id=vid).status_code == 201
    headers = {**his(world), "Idempotency-Key": "settle-once"}
    first = client.post(f"/api/v1/his/visits/{vid}/settle", json={"account": {"use": True}}, headers=headers)
    second = client.post(f"/api/v1/his/visits/{vid}/settle", json={"account": {"use": True}}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    other = client.post(f"/api/v1/his/visits/{vid}/settle", json={"account": {"use": False}}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["field"] == "Idempotency-Key"
    r = client.get("/api/v1/admin/audit?limit=1000", headers=OPERATOR).json()["items"]
    assert sum(1 for e in r if e["action"] == "settlement.settle") == 1


@pytest.mark.parametrize("body, field", [
    ({"lines": [{**LINES[0], "unit_price": "12.345"}]}, "lines[0].unit_price"),
    ({"lines": [{**LINES[0], "quantity": "0"}]}, "lines[0].quantity"),
    ({"lines": [{**LINES[0], "class": "D"}]}, "lines[0].class"),
    ({"lines": [{**LINES[1], "prescriber": None}]}, "lines[0].prescriber"),
    ({"lines": [{**LINES[0], "price_cp": "1"}]}, "lines[0].price_cp"),
    ({"lines": []}, "lines"),
    ({}, "lines"),
])
def test_bad_fee_lines_get_422_naming_the_field(client, world, body, field):
    r = post(client, "/api/v1/his/visits", {"psn_no": world.employee.id, "kind": "outpatient"}, his(world))
    vid = r.json()["mdtrt_id"]
    r = post(client, f"/api/v1/his/visits/{vid}/fee-lines", body, his(world))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message_zh"] and err["message_en"] and err["code"]


def test_missing_idempotency_key_and_credentials(client, world):
    r = client.post("/api/v1/his/visits", json={"psn_no": world.employee.id, "kind": "outpatient"}, headers=his(world))
    assert r.status_code == 422 and r.json()["error"]["field"] == "Idempotency-Key"
    r = client.post("/api/v1/his/visits", json={"psn_no": world.employee.id, "kind": "outpatient"}, headers=key())
    assert r.status_code == 401 and r.json()["error"]["field"] == "Authorization"
    r = client.post("/api/v1/his/visits", json={"psn_no": world.employee.id, "kind": "outpatient"},
                    headers={"Authorization": f"Bearer {world.hospital.id}.wrong", **key()})
    assert r.status_code == 401
    r = client.get("/api/v1/admin/audit", headers=his(world))
    assert r.status_code == 401  # an institution is not an operator


def test_an_institution_cannot_read_another_institutions_visits(client, world, db, keyring):
    vid = open_visit(client, world, world.employee)
    assert present_card_over_http(client, his(world), card_with_pin(db, keyring, world.employee.id), visit_id=vid).status_code == 201
    doc = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world)).json()
    assert client.get(f"/api/v1/his/visits/{vid}", headers=his(world, other=True)).status_code == 404
    assert client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(world, other=True)).status_code == 404
    assert post(client, f"/api/v1/his/settlements/{doc['setl_id']}/cancel", {}, his(world, other=True)).status_code == 404
    assert post(client, f"/api/v1/his/visits/{vid}/fee-lines", {"lines": LINES}, his(world, other=True)).status_code == 404
    # message ids are each institution's own: another's "reversal" of this id touches nothing of ours
    r = post(client, "/api/v1/his/reversals", {"omsgid": doc["msgid"], "oinfno": "2207"}, his(world, other=True))
    assert r.status_code == 200 and r.json()["status"] == "reversed_before_arrival"
    assert client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(world)).json()["status"] == "settled"


def test_unknown_route_and_wrong_method_use_the_error_shape(client):
    r = client.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.delete("/api/v1/his/visits")
    assert r.status_code == 405 and r.json()["error"]["message_zh"]


def test_json_numbers_are_amounts_read_exactly_from_their_text(client, world):
    """A JSON number for a price or a quantity is the same amount as the string (as the CLI's bill format takes it), read
    from the number's own text: more than 2 places is refused naming the field even where a float would have rounded it
    away (0.1000000000000000055511151231257827 is the float 0.1)."""
    def upload(line):
        vid = post(client, "/api/v1/his/visits", {"psn_no": world.employee.id, "kind": "outpatient"}, his(world)).json()["mdtrt_id"]
        return post(client, f"/api/v1/his/visits/{vid}/fee-lines", {"lines": [{**LINES[0], **line}]}, his(world))

    as_text = upload({"unit_price": "12.50", "quantity": "2"})
    assert as_text.status_code == 200, as_text.text
    for numbers in ({"unit_price": 12.5, "quantity": 2}, {"unit_price": 12.50, "quantity": 2.0}, {"unit_price": 1.25e1, "quantity": 2}):
        r = upload(numbers)
        assert r.status_code == 200, (numbers, r.text)
        assert _lines(r.json()) == _lines(as_text.json()), numbers
        assert (r.json()["lines"][0]["pric"], r.json()["lines"][0]["cnt"], r.json()["lines"][0]["det_item_fee_sumamt"]) == ("12.50", "2", "25.00")
    for bad, field, code in ((12.345, "lines[0].unit_price", "too_many_decimals"),
                             ("0.1000000000000000055511151231257827", "lines[0].unit_price", "too_many_decimals"),
                             (-1.5, "lines[0].unit_price", "negative"), (1e40, "lines[0].unit_price", "too_large")):
        body = '{"lines": [{"feedetl_sn": "1", "medins_list_codg": "A001", "unit_price": %s, "quantity": 1}]}' % bad  # the number as written
        vid = post(client, "/api/v1/his/visits", {"psn_no": world.employee.id, "kind": "outpatient"}, his(world)).json()["mdtrt_id"]
        r = client.post(f"/api/v1/his/visits/{vid}/fee-lines", content=body,
                        headers={**his(world), **key(), "Content-Type": "application/json"})
        assert r.status_code == 422, (bad, r.text)
        err = r.json()["error"]
        assert (err["field"], err["code"]) == (field, code), (bad, err)
        assert "金额" in err["message_zh"] and "amount" in err["message_en"]
    r = upload({"quantity": 0.00001})
    assert r.status_code == 422 and r.json()["error"]["field"] == "lines[0].quantity" and r.json()["error"]["code"] == "too_many_decimals"
    r = upload({"unit_price": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "lines[0].unit_price"
    # A number where an object belongs is still refused (were numbers read as Decimal, pydantic would take one for an
    # object of defaults: {"account": 1.5} as "no account").
    vid = post(client, "/api/v1/his/visits", {"psn_no": world.employee.id, "kind": "outpatient"}, his(world)).json()["mdtrt_id"]
    for body in ({"account": 1.5}, 2.5):
        r = client.post(f"/api/v1/his/visits/{vid}/presettle", json=body, headers=his(world))
        assert r.status_code == 422 and r.json()["error"]["field"] in ("account", "body"), (body, r.text)


def _lines(doc):
    return [{k: v for k, v in ln.items() if k != "fee_ocur_time"} for ln in doc["lines"]]


def test_a_choice_is_refused_in_chinese_and_in_english_apart(client, world):
    r = post(client, "/api/v1/his/visits", {"psn_no": world.employee.id, "kind": "dental"}, his(world))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "kind"
    assert err["message_zh"] == "取值应为 outpatient、emergency、inpatient 或 pharmacy 之一"
    assert err["message_en"] == "must be one of outpatient, emergency, inpatient or pharmacy"


def test_openapi_says_money_and_quantities_take_numbers(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    line = schemas["FeeLineIn"]["properties"]
    for name in ("unit_price", "quantity"):
        assert {"type": "number"} in line[name]["anyOf"] and any(s.get("type") == "string" for s in line[name]["anyOf"]), line[name]
        assert "JSON number" in line[name]["description"]
