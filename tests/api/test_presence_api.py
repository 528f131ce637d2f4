"""Presence over HTTP, on SQLite and PostgreSQL: nobody moves a holder's money without the holder.

A hospital debits a personal account only with a credential the account's owner presented there for that visit —
the scanned code, a face authorization, the card with its PIN — used once. The look-up by number tells a counter
what it needs and no more (no balance, no birth date), is throttled per institution, and an enumeration is audited."""

from __future__ import annotations

import pytest

from tests.support.api import OPERATOR, bearer, error, his, post
from tests.support.presence import PIN, card_with_pin, present_card_over_http
from yibao.domain.ledger import person_account
from yibao.services.agency import institutions
from yibao.services.books import ledger

BIG_LINE = [{"feedetl_sn": "1", "medins_list_codg": "C900", "name": "营养品", "unit_price": "500.00", "quantity": "1"}]


def balance(db, person_id):
    return db.run(lambda c: ledger.balance(c, person_account(person_id)), write=False)


def visit_with(client, headers, psn_no, lines=BIG_LINE):
    r = post(client, "/api/v1/his/visits", {"psn_no": psn_no, "kind": "outpatient"}, headers)
    assert r.status_code == 201, r.text
    vid = r.json()["mdtrt_id"]
    assert post(client, f"/api/v1/his/visits/{vid}/fee-lines", {"lines": lines}, headers).status_code == 200
    return vid


def audit_actions(client, action):
    return [e for e in client.get("/api/v1/admin/audit?limit=1000", headers=OPERATOR).json()["items"] if e["action"] == action]


def test_the_attack_a_card_number_looked_up_then_a_settlement_with_the_account_is_refused(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id)
    before = balance(db, world.employee.id)
    found = post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": card_no}, his(world))
    assert found.status_code == 200, found.text
    vid = visit_with(client, his(world), found.json()["psn_no"])
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world))
    err = error(r, 403, "account", "presence_required")
    assert "医保码" in err["message_zh"] and "PIN" in err["message_en"]  # says what to present, in words
    assert balance(db, world.employee.id) == before
    assert client.get(f"/api/v1/his/visits/{vid}", headers=his(world)).json()["status"] == "open"  # nothing half-written
    # The pre-settlement with the account would show the share, hence the balance: refused the same way.
    pre = client.post(f"/api/v1/his/visits/{vid}/presettle", json={"account": {"use": True}}, headers=his(world))
    error(pre, 403, "account", "presence_required")


def test_the_cross_region_variant_no_scan_no_card_no_debit(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id)
    qingdao, secret = db.run(lambda c: institutions.admit(c, db.clock(), code="H37020001", region="370200", name="青岛医院", kind="hospital",
                                                          level="level3", actor="test", secret="qingdao-secret"))
    qd = bearer(f"{qingdao.id}.qingdao-secret")
    before = balance(db, world.employee.id)
    found = post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": card_no}, qd)
    vid = visit_with(client, qd, found.json()["psn_no"])
    error(post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, qd), 403, "account", "presence_required")
    # Nor with the card and its PIN: the same region rule as the scan's (insured in Shenzhen, not filed in Qingdao).
    error(present_card_over_http(client, qd, card_no, visit_id=vid), 403, "card_no", "card_other_region")
    error(post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, qd), 403, "account", "presence_required")
    assert balance(db, world.employee.id) == before
    # Without the account, the visit is settled in cash as before.
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": False}}, qd)
    assert r.status_code == 200 and r.json()["acct_pay"] == "0.00"


def test_a_card_read_with_its_pin_pays_once_and_not_twice(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id)
    before = balance(db, world.employee.id)
    vid = visit_with(client, his(world), world.employee.id)
    wrong = present_card_over_http(client, his(world), card_no, pin="975319", visit_id=vid)
    error(wrong, 422, "pin", "pin_wrong")
    r = present_card_over_http(client, his(world), card_no, visit_id=vid)
    assert r.status_code == 201, r.text
    shown = r.json()
    assert shown["kind"] == "card_pin" and shown["mdtrt_id"] == vid and shown["owner_psn_no"] == world.employee.id
    assert "balc" not in shown["person"] and "birth_date" not in shown["person"]
    pre = client.post(f"/api/v1/his/visits/{vid}/presettle", json={"account": {"use": True}}, headers=his(world))
    assert pre.status_code == 200 and pre.json()["acct_pay"] == "500.00"  # after presence, the share (and balc) is shown
    doc = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world)).json()
    assert doc["acct_pay"] == "500.00" and balance(db, world.employee.id) == before - 50000
    # Used: after a cancel the same visit cannot take the account again without a new presentation.
    assert post(client, f"/api/v1/his/settlements/{doc['setl_id']}/cancel", {}, his(world)).status_code == 200
    error(post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world)), 403, "account", "presence_required")
    assert balance(db, world.employee.id) == before


def test_a_retry_of_the_same_settlement_is_the_same_settlement_not_a_second_use(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id)
    vid = visit_with(client, his(world), world.employee.id)
    assert present_card_over_http(client, his(world), card_no, visit_id=vid).status_code == 201
    first = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}, "msgid": "MSG-PRESENT-1"}, his(world))
    again = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}, "msgid": "MSG-PRESENT-1"}, his(world))
    assert first.status_code == again.status_code == 200, again.text  # another key, the same message id: the same answer
    assert first.json() == again.json()
    assert len(audit_actions(client, "settlement.settle")) == 1


def test_presented_at_one_institution_or_for_one_visit_pays_nothing_elsewhere(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id)
    before = balance(db, world.employee.id)
    x = visit_with(client, his(world), world.employee.id)
    y = visit_with(client, his(world), world.employee.id)
    elsewhere = visit_with(client, his(world, other=True), world.employee.id)
    assert present_card_over_http(client, his(world), card_no, visit_id=x).status_code == 201
    error(post(client, f"/api/v1/his/visits/{y}/settle", {"account": {"use": True}}, his(world)), 403, "account", "presence_required")
    error(post(client, f"/api/v1/his/visits/{elsewhere}/settle", {"account": {"use": True}}, his(world, other=True)),
          403, "account", "presence_required")
    assert balance(db, world.employee.id) == before
    assert post(client, f"/api/v1/his/visits/{x}/settle", {"account": {"use": True}}, his(world)).status_code == 200
    # Another institution's visit cannot be named when presenting, either.
    error(present_card_over_http(client, his(world, other=True), card_no, visit_id=x), 404, "visit_id")


def test_a_settlement_without_the_account_needs_no_credential(client, world, db):
    before = balance(db, world.employee.id)
    vid = visit_with(client, his(world), world.employee.id)
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": False}}, his(world))
    assert r.status_code == 200, r.text
    assert r.json()["acct_pay"] == "0.00" and r.json()["psn_cash_pay"] == "500.00"
    assert balance(db, world.employee.id) == before


def test_the_look_up_answers_what_a_counter_needs_and_no_balance_or_birth_date(client, world, db, keyring):
    from tests.support.identity import id_number_of

    card_no = card_with_pin(db, keyring, world.employee.id)
    expected = {"psn_no": world.employee.id, "psn_name": "测**", "insuplc_admdvs": "440300", "insutype": "employee", "status": "active"}
    r = post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": card_no}, his(world))
    assert r.status_code == 200 and r.json() == {**expected, "card_status": "active"}
    r = post(client, "/api/v1/his/persons/lookup", {"credential_type": "id_number", "credential_no": id_number_of(1)}, his(world))
    assert r.status_code == 200 and r.json() == {**expected, "card_status": None}
    assert "balc" not in r.text and "birth_date" not in r.text and "certno" not in r.text


def test_look_ups_are_throttled_per_institution_with_retry_after(client, world, db, keyring, clock):
    for i in range(20):  # the misses an institution may make in 10 minutes (services/people/lookups.py)
        r = post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": f"ZZ{i:08d}XY"}, his(world))
        assert r.status_code == 404
    r = post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": "ZZ99999999XY"}, his(world))
    error(r, 429, "credential_no", "too_many_lookups")
    assert 0 < int(r.headers["Retry-After"]) <= 600
    # A card read with its PIN is a look-up too: refused unseen while throttled.
    card_no = card_with_pin(db, keyring, world.employee.id)
    error(present_card_over_http(client, his(world), card_no), 429, "credential_no", "too_many_lookups")
    # Another institution is not held back by this one's misses; this one is let in again after the window.
    assert post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": card_no}, his(world, other=True)).status_code == 200
    clock.advance(seconds=int(r.headers["Retry-After"]))
    assert post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": card_no}, his(world)).status_code == 200


def test_walking_sequential_card_numbers_raises_one_audited_alert(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id, card_no="SZ4403000100")
    for n in range(101, 105):  # the card's neighbours, one after another
        post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": f"SZ4403000{n}"}, his(world))
    assert audit_actions(client, "pii.lookup_enumeration") == []  # four misses, four neighbours: not yet
    post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": card_no}, his(world))  # the fifth
    alerts = audit_actions(client, "pii.lookup_enumeration")
    assert len(alerts) == 1 and alerts[0]["subject"] == world.hospital.id
    post(client, "/api/v1/his/persons/lookup", {"credential_type": "card", "credential_no": "SZ4403000107"}, his(world))
    assert len(audit_actions(client, "pii.lookup_enumeration")) == 1  # once per window


def test_a_scanned_code_pays_once(client, world, db, keyring):
    from tests.support.identity import ecard, id_number_of, name_of
    from yibao.services.payments import paycodes

    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    before = balance(db, world.employee.id)
    vid = visit_with(client, his(world), world.employee.id)
    code = db.run(lambda c: paycodes.issue(c, keyring, db.clock(), holder_id=world.employee.id, actor="test")).code
    scanned = post(client, "/api/v1/his/paycodes/verify", {"code": code, "mdtrt_id": vid}, his(world))
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["presence"]["kind"] == "paycode" and scanned.json()["presence"]["mdtrt_id"] == vid
    doc = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world)).json()
    assert doc["acct_pay"] == "500.00" and balance(db, world.employee.id) == before - 50000
    assert post(client, f"/api/v1/his/settlements/{doc['setl_id']}/cancel", {}, his(world)).status_code == 200
    error(post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world)), 403, "account", "presence_required")
    # The same code scanned again is refused as used: it presents nothing.
    assert post(client, "/api/v1/his/paycodes/verify", {"code": code, "mdtrt_id": vid}, his(world)).json()["error"]["code"] == "paycode_used"


@pytest.mark.parametrize("who", ["patient", "relative"])
def test_family_mutual_aid_needs_the_relative_whose_account_pays(client, world, db, keyring, who):
    from tests.support.identity import ecard, id_number_of, name_of
    from yibao.services.people import families

    ecard(db, keyring, world.employee.id, name_of(1), id_number_of(1))
    db.run(lambda c: families.grant_mutual_aid(c, keyring, db.clock(), holder_id=world.employee.id, relation="parent",
                                               id_number=id_number_of(2), name=name_of(2), actor="test"))
    before = balance(db, world.employee.id)
    vid = visit_with(client, his(world), world.retiree.id)
    # The patient (the retiree) reads her own card with her PIN; the account that would pay is her relative's.
    presenter = world.retiree.id if who == "patient" else world.employee.id
    assert present_card_over_http(client, his(world), card_with_pin(db, keyring, presenter), visit_id=vid).status_code == 201
    body = {"account": {"use": True, "payer": "family", "payer_person_id": world.employee.id}}
    r = post(client, f"/api/v1/his/visits/{vid}/settle", body, his(world))
    if who == "patient":
        error(r, 403, "account", "presence_required")
        assert balance(db, world.employee.id) == before
    else:
        assert r.status_code == 200, r.text
        assert balance(db, world.employee.id) == before - 50000


def test_pin_format_is_checked_before_anything_is_read(client, world, db, keyring):
    card_no = card_with_pin(db, keyring, world.employee.id)
    error(present_card_over_http(client, his(world), card_no, pin="12ab56"), 422, "pin", "pin_format")
    assert PIN != "12ab56"
