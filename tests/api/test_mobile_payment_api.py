"""Mobile payment (移动支付) over HTTP, SQLite and PostgreSQL: the hospital publishes a bill, the holder sees the split
previewed and pays it in the app (PIN when cash > 0), the hospital learns the result by a signed callback to its
endpoint on loopback (HMAC-SHA256, retried, recorded) and by query. A SANDBOX institution collects the cash."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.support.api import his, key, login
from tests.support.callbacks import HospitalEndpoint
from tests.support.payments import LINES, payment_world
from yibao.app import create_app
from yibao.services import Context
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import recovery


@pytest.fixture
def pw(db, keyring, wxpay):
    return payment_world(db, keyring, wxpay, limit=0, balance=20000)


@pytest.fixture
def client(db, keyring, sms_gateway):
    # The hospital's endpoint is on loopback over plain HTTP: allowed for tests only (production: public HTTPS).
    with TestClient(create_app(db, keyring=keyring, sms_gateway=sms_gateway, demo=True, allow_private_callbacks=True),
                    raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def hospital():
    endpoint = HospitalEndpoint().start()
    yield endpoint
    endpoint.stop()


def _secret(client, pw, hospital) -> bytes:  # noqa: ANN001
    r = client.put("/api/v1/his/callback", json={"url": hospital.url}, headers={**his(pw), **key()})
    assert r.status_code == 200, r.text
    assert "secret" not in client.get("/api/v1/his/callback", headers=his(pw)).json()
    return base64.b64decode(r.json()["secret"])


def _bill(client, pw, psn_no: str | None = None) -> dict:  # noqa: ANN001
    v = client.post("/api/v1/his/visits", json={"psn_no": psn_no or pw.w.employee.id, "kind": "outpatient"}, headers={**his(pw), **key()})
    assert v.status_code == 201, v.text
    visit_id = v.json()["mdtrt_id"]
    assert client.post(f"/api/v1/his/visits/{visit_id}/fee-lines", json={"lines": LINES}, headers={**his(pw), **key()}).status_code == 200
    b = client.post(f"/api/v1/his/visits/{visit_id}/bill", headers={**his(pw), **key()})
    assert b.status_code == 201, b.text
    assert (b.json()["status"], b.json()["method"], b.json()["in_progress"]) == ("billed", "mobile", True)
    again = client.post(f"/api/v1/his/visits/{visit_id}/bill", headers={**his(pw), **key()})
    assert again.status_code == 409 and again.json()["error"]["code"] == "bill_open"
    return b.json()


def _set_pin(client, me) -> None:  # noqa: ANN001
    assert client.post("/api/v1/patient/payment-pin", json={"pin": "246810"}, headers={**me, **key()}).status_code == 200


def test_a_paid_bill_reaches_the_hospital_by_a_signed_callback(client, pw, hospital):
    secret = _secret(client, pw, hospital)
    bill = _bill(client, pw)
    me = login(client, pw.w.phones["employee"])
    items = client.get("/api/v1/patient/bills", headers=me).json()["items"]
    assert [b["payment_id"] for b in items] == [bill["payment_id"]]
    assert items[0]["preview"]["psn_cash_pay"] == "166.00" and items[0]["preview"]["acct_pay"] == "200.00"
    assert [ln["feedetl_sn"] for ln in items[0]["lines"]] == ["1", "2", "3"]
    pay = f"/api/v1/patient/bills/{bill['payment_id']}/pay"
    before = pw.balances()
    no_pin = client.post(pay, json={"use_account": True}, headers={**me, **key()})
    assert no_pin.status_code == 409 and (no_pin.json()["error"]["field"], no_pin.json()["error"]["code"]) == ("pin", "pin_required")
    _set_pin(client, me)
    wrong = client.post(pay, json={"use_account": True, "pin": "135790"}, headers={**me, **key()})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "pin_wrong"
    assert pw.balances() == before and hospital.received == []
    headers = {**me, **key()}
    r = client.post(pay, json={"use_account": True, "pin": "246810"}, headers=headers)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["status"], doc["account"]["amount"], doc["cash"]["amount"], doc["payer_psn_no"]) == (
        "completed", "200.00", "166.00", pw.w.employee.id)
    after = pw.balances()
    assert before["holder"] - after["holder"] == 200_00 and after["pending"] == 0
    # the hospital got one callback; its signature verifies with the secret, and the body is the receipt
    assert len(hospital.received) == 1
    got = hospital.received[0]
    assert his_callbacks.verify(secret, got.body, got.headers["x-yibao-signature"])
    assert not his_callbacks.verify(b"y" * 32, got.body, got.headers["x-yibao-signature"])
    assert got.headers["x-yibao-event"] == "payment.completed"
    sent = json.loads(got.body)
    assert sent["event"] == "payment.completed" and sent["payment"]["payment_id"] == doc["payment_id"]
    assert sent["payment"]["status"] == "completed" and sent["payment"]["cash"]["amount"] == "166.00"
    assert client.get(f"/api/v1/his/payments/{doc['payment_id']}", headers=his(pw)).json() == doc
    deliveries = client.get("/api/v1/his/callback/deliveries", headers=his(pw)).json()["items"]
    assert [(d["payment_id"], d["status"], d["attempts"], d["last_status"]) for d in deliveries] == [(doc["payment_id"], "delivered", 1, 200)]
    # a retry replays; paying again with another key pays nothing more
    assert client.post(pay, json={"use_account": True, "pin": "246810"}, headers=headers).json() == doc
    other = client.post(pay, json={"use_account": True, "pin": "246810"}, headers={**me, **key()})
    assert other.json()["status"] == "completed" and pw.balances() == after
    assert client.get("/api/v1/patient/bills", headers=me).json()["items"] == []
    assert len(hospital.received) == 1


def test_without_the_account_the_cash_is_the_whole_personal_share(client, pw, hospital):
    _secret(client, pw, hospital)
    bill = _bill(client, pw)
    me = login(client, pw.w.phones["employee"])
    preview = client.get(f"/api/v1/patient/bills/{bill['payment_id']}?use_account=false", headers=me).json()["preview"]
    assert preview["acct_pay"] == "0.00" and preview["psn_cash_pay"] == "366.00"
    _set_pin(client, me)
    before = pw.balances()
    r = client.post(f"/api/v1/patient/bills/{bill['payment_id']}/pay", json={"use_account": False, "pin": "246810"}, headers={**me, **key()})
    assert r.status_code == 200, r.text
    assert (r.json()["account"]["amount"], r.json()["cash"]["amount"]) == ("0.00", "366.00")
    assert pw.balances()["holder"] == before["holder"]


def test_another_holder_can_neither_see_nor_pay_the_bill(client, pw, hospital):
    bill = _bill(client, pw)
    stranger = login(client, pw.w.phones["retiree"])
    assert client.get("/api/v1/patient/bills", headers=stranger).json()["items"] == []
    seen = client.get(f"/api/v1/patient/bills/{bill['payment_id']}", headers=stranger)
    assert seen.status_code == 404 and seen.json()["error"]["field"] == "payment_id"
    paid = client.post(f"/api/v1/patient/bills/{bill['payment_id']}/pay", json={"use_account": True, "pin": "246810"},
                       headers={**stranger, **key()})
    assert paid.status_code == 404
    assert client.get(f"/api/v1/his/payments/{bill['payment_id']}", headers=his(pw)).json()["status"] == "billed"


def test_a_refused_callback_is_retried_and_recorded(client, pw, hospital, db, keyring):
    secret = _secret(client, pw, hospital)
    hospital.answers = [503]
    bill = _bill(client, pw)
    me = login(client, pw.w.phones["employee"])
    _set_pin(client, me)
    r = client.post(f"/api/v1/patient/bills/{bill['payment_id']}/pay", json={"use_account": True, "pin": "246810"}, headers={**me, **key()})
    assert r.status_code == 200 and r.json()["status"] == "completed"  # the hospital's trouble does not change the payment
    first = client.get(f"/api/v1/his/callback/deliveries?payment_id={bill['payment_id']}", headers=his(pw)).json()["items"][0]
    assert (first["status"], first["attempts"], first["last_status"]) == ("pending", 1, 503)
    ctx = Context.for_database(db, keyring, allow_private_callbacks=True)  # as the app above: the endpoint is on loopback
    assert asyncio.run(his_callbacks.deliver(ctx)) == {"delivered": 0, "pending": 0, "failed": 0}  # not due yet
    report = asyncio.run(recovery.recover(ctx, db.clock() + timedelta(seconds=11)))
    assert report.as_dict()["completed"] == 0
    done = client.get(f"/api/v1/his/callback/deliveries?payment_id={bill['payment_id']}", headers=his(pw)).json()["items"][0]
    assert (done["status"], done["attempts"], done["last_status"]) == ("delivered", 2, 200)
    assert len(hospital.received) == 2 and hospital.received[0].body == hospital.received[1].body
    assert his_callbacks.verify(secret, hospital.received[1].body, hospital.received[1].headers["x-yibao-signature"])


def test_a_guardian_sees_and_pays_a_linked_childs_bill(client, pw, hospital, db, keyring):
    from tests.support.identity import active_card, enrol_child, link_child

    child = enrol_child(db, keyring, pw.w.employee.id)
    active_card(db, keyring, child.id, card_no="CHILD0001")
    link_child(db, keyring, pw.w.employee.id)
    bill = _bill(client, pw, child.id)
    me = login(client, pw.w.phones["employee"])
    assert [b["psn_no"] for b in client.get("/api/v1/patient/bills", headers=me).json()["items"]] == [child.id]
    _set_pin(client, me)
    r = client.post(f"/api/v1/patient/bills/{bill['payment_id']}/pay", json={"use_account": False, "pin": "246810"},
                    headers={**me, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["psn_no"], r.json()["payer_psn_no"]) == ("completed", child.id, pw.w.employee.id)


def test_a_bill_on_the_phone_holds_its_visit_until_the_hospital_withdraws_it(client, pw, hospital):
    bill = _bill(client, pw)
    visit_id, bill_id = bill["mdtrt_id"], bill["payment_id"]
    extra = [{"feedetl_sn": "9", "medins_list_codg": "A009", "name": "加项", "unit_price": "360.00", "quantity": "1"}]
    # While the holder has the bill, its lines and its price stay what the bill shows, and nothing else settles it.
    added = client.post(f"/api/v1/his/visits/{visit_id}/fee-lines", json={"lines": extra}, headers={**his(pw), **key()})
    assert added.status_code == 409 and (added.json()["error"]["field"], added.json()["error"]["code"]) == ("visit_id", "visit_billed")
    assert bill_id in added.json()["error"]["message_zh"]
    revoked = client.delete(f"/api/v1/his/visits/{visit_id}/fee-lines/1", headers={**his(pw), **key()})
    assert revoked.status_code == 409 and revoked.json()["error"]["code"] == "visit_billed"
    settled = client.post(f"/api/v1/his/visits/{visit_id}/settle", json={"account": {"use": True}}, headers={**his(pw), **key()})
    assert settled.status_code == 409 and settled.json()["error"]["code"] == "visit_billed"
    before = pw.balances()

    withdrawal = f"/api/v1/his/payments/{bill_id}/withdrawal"
    w = client.post(withdrawal, headers={**his(pw), **key()})
    assert w.status_code == 200, w.text
    assert (w.json()["status"], w.json()["void_reason"]) == ("voided", "withdrawn")
    assert client.post(withdrawal, headers={**his(pw), **key()}).json()["status"] == "voided"  # withdrawn already: as it is
    me = login(client, pw.w.phones["employee"])
    assert client.get("/api/v1/patient/bills", headers=me).json()["items"] == []
    _set_pin(client, me)
    late = client.post(f"/api/v1/patient/bills/{bill_id}/pay", json={"use_account": True, "pin": "246810"}, headers={**me, **key()})
    assert late.json()["status"] == "voided" and pw.balances() == before  # a withdrawn bill pays nothing
    # Withdrawn, the visit is the hospital's again: a line added, settled at the counter.
    assert client.post(f"/api/v1/his/visits/{visit_id}/fee-lines", json={"lines": extra}, headers={**his(pw), **key()}).status_code == 200
    # The holder shows the payment code at the counter for this visit: the account may pay it (services/care/presence.py).
    scan = client.post("/api/v1/his/paycodes/verify", json={"code": pw.code(), "mdtrt_id": visit_id}, headers={**his(pw), **key()})
    assert scan.status_code == 200, scan.text
    done = client.post(f"/api/v1/his/visits/{visit_id}/settle", json={"account": {"use": True}}, headers={**his(pw), **key()})
    assert done.status_code == 200, done.text
    # A bill being paid or paid cannot be withdrawn; another hospital's is not found.
    paid = _bill(client, pw)
    assert client.post(f"/api/v1/patient/bills/{paid['payment_id']}/pay", json={"use_account": True, "pin": "246810"},
                       headers={**me, **key()}).json()["status"] == "completed"
    refused = client.post(f"/api/v1/his/payments/{paid['payment_id']}/withdrawal", headers={**his(pw), **key()})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "bill_not_waiting"


def test_a_bill_is_paid_only_for_the_amounts_the_holder_was_shown(client, pw, hospital):
    bill = _bill(client, pw)
    me = login(client, pw.w.phones["employee"])
    _set_pin(client, me)
    pay = f"/api/v1/patient/bills/{bill['payment_id']}/pay"
    shown = client.get(f"/api/v1/patient/bills/{bill['payment_id']}", headers=me).json()["preview"]
    assert (shown["acct_pay"], shown["psn_cash_pay"]) == ("200.00", "166.00")
    before = pw.balances()
    # The split moved since the holder looked (here: what they were shown is not what it comes to): nothing is held.
    stale = client.post(pay, json={"use_account": True, "pin": "246810", "expected_account": "200.00", "expected_cash": "10.00"},
                        headers={**me, **key()})
    assert stale.status_code == 409, stale.text
    err = stale.json()["error"]
    assert (err["field"], err["code"]) == ("expected_cash", "bill_amount_changed") and "¥166.00" in err["message_zh"]
    assert pw.balances() == before
    assert client.get(f"/api/v1/his/payments/{bill['payment_id']}", headers=his(pw)).json()["status"] == "billed"
    half = client.post(pay, json={"use_account": True, "pin": "246810", "expected_cash": "166.00"}, headers={**me, **key()})
    assert half.status_code == 422 and half.json()["error"]["field"] == "expected_account"
    bad = client.post(pay, json={"use_account": True, "pin": "246810", "expected_account": "abc", "expected_cash": "166.00"},
                      headers={**me, **key()})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "expected_account"
    ok = client.post(pay, json={"use_account": True, "pin": "246810", "expected_account": "200.00", "expected_cash": "166.00"},
                     headers={**me, **key()})
    assert ok.status_code == 200 and ok.json()["status"] == "completed"
    assert before["holder"] - pw.balances()["holder"] == 200_00


def test_a_bill_that_cannot_be_priced_now_says_why_and_the_others_still_show(client, pw, hospital, db):
    from sqlalchemy import update

    from yibao.store.tables import visits

    first, second = _bill(client, pw), _bill(client, pw)
    me = login(client, pw.w.phones["employee"])
    # The first visit was settled meanwhile (a counter payment that raced the bill on another connection):
    # its bill cannot be priced; it says so, and the other bill still shows its split.
    db.run(lambda c: c.execute(update(visits).where(visits.c.id == first["mdtrt_id"]).values(status="settled")))
    items = {b["payment_id"]: b for b in client.get("/api/v1/patient/bills", headers=me).json()["items"]}
    assert set(items) == {first["payment_id"], second["payment_id"]}
    broken = items[first["payment_id"]]
    assert broken["preview"] is None and (broken["problem"]["field"], broken["problem"]["code"]) == ("visit_id", "visit_settled")
    assert broken["problem"]["zh"] and broken["problem"]["en"]
    assert items[second["payment_id"]]["problem"] is None and items[second["payment_id"]]["preview"]["psn_cash_pay"] == "166.00"
