"""Credit payment over HTTP, with the SANDBOX bank as a real loopback server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import secrets
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.support.api import OPERATOR, login
from tests.support.credit import BANK, advance, balanced, credit_world, relative, run
from tests.support.sms import gateway_url, texts_to
from yibao.app import create_app
from yibao.channels.bank import transformers as tx
from yibao.domain import credit as rules_
from yibao.services.credit import lines as credit
from yibao.services.credit import reservations as credit_reservations


@pytest.fixture
def setup(db, keyring, clock, bank, sms_gateway):
    cw = credit_world(db, keyring, clock, bank)
    app = create_app(db, keyring=keyring, demo=True, sms_gateway=sms_gateway)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield cw, client


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def enrol(client, holder):
    return client.post("/api/v1/patient/credit/enrol", json={"payment_institution_id": BANK, "consent_version": rules_.CONSENT_VERSION},
                       headers={**holder, **key()})


def captured(cw, amount):
    r = run(credit_reservations.reserve(cw.ctx, order_ref="ORD" + secrets.token_hex(8).upper(), holder_id=cw.holder,
                           institution_id=cw.world.hospital.id, amount=amount, actor="test"))
    return run(credit_reservations.capture(cw.ctx, r.order_ref, actor="test"))


def test_enrol_view_and_repay_by_the_holder(db, setup):
    cw, client = setup
    holder = login(client, cw.world.phones["employee"])
    terms = client.get("/api/v1/patient/credit", headers=holder).json()
    assert terms["terms"]["version"] == rules_.CONSENT_VERSION and terms["lines"] == []
    r = enrol(client, holder)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active" and r.json()["consent_version"] == rules_.CONSENT_VERSION
    again = enrol(client, holder)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_enrolled"

    done = captured(cw, 150_00)
    view = client.get("/api/v1/patient/credit", headers=holder).json()["lines"][0]
    assert (view["used"], view["overdue"], [b["bill_no"] for b in view["bills"]]) == ("150.00", False, [done.bill_no])

    k = key()
    paid = client.post(f"/api/v1/patient/credit/bills/{done.bill_no}/repay", json={"amount": "50.00"}, headers={**holder, **k})
    assert paid.status_code == 200, paid.text
    assert (paid.json()["bill"]["repaid"], paid.json()["bill"]["outstanding"]) == ("50.00", "100.00")
    replay = client.post(f"/api/v1/patient/credit/bills/{done.bill_no}/repay", json={"amount": "50.00"}, headers={**holder, **k})
    assert replay.json() == paid.json() and replay.headers["Idempotent-Replayed"] == "true"
    over = client.post(f"/api/v1/patient/credit/bills/{done.bill_no}/repay", json={"amount": "100.01"}, headers={**holder, **key()})
    assert over.status_code == 409 and over.json()["error"]["code"] == "repayment_exceeds_outstanding"
    assert over.json()["error"]["field"] == "amount"
    bad = client.post(f"/api/v1/patient/credit/bills/{done.bill_no}/repay", json={"amount": "abc"}, headers={**holder, **key()})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "amount"
    assert client.get("/api/v1/patient/credit", headers=holder).json()["lines"][0]["used"] == "100.00"
    assert balanced(db)


def test_a_relative_lists_and_repays_a_bill_and_a_stranger_is_refused(db, keyring, setup):
    cw, client = setup
    enrol(client, login(client, cw.world.phones["employee"]))
    done = captured(cw, 80_00)
    kin = relative(db, keyring, cw, n=22)
    them = login(client, "13900000022")
    listed = client.get("/api/v1/patient/credit/family-bills", headers=them).json()["items"]
    assert [(b["bill_no"], b["psn_no"], b["outstanding"]) for b in listed] == [(done.bill_no, cw.holder, "80.00")]
    r = client.post(f"/api/v1/patient/credit/bills/{done.bill_no}/repay", json={"amount": "80.00"}, headers={**them, **key()})
    assert r.status_code == 200 and r.json()["payer_psn_no"] == kin.id and r.json()["bill"]["status"] == "repaid"

    stranger = login(client, cw.world.phones["retiree"])
    other = captured(cw, 10_00)
    assert client.get("/api/v1/patient/credit/family-bills", headers=stranger).json()["items"] == []
    r = client.post(f"/api/v1/patient/credit/bills/{other.bill_no}/repay", json={"amount": "10.00"}, headers={**stranger, **key()})
    assert r.status_code == 403 and (r.json()["error"]["code"], r.json()["error"]["field"]) == ("not_family", "payer")


def test_admin_jobs_and_the_overdue_list(db, setup, clock):
    cw, client = setup
    holder = login(client, cw.world.phones["employee"])
    enrol(client, holder)
    done = captured(cw, 60_00)
    advance(clock, cw.bank, 27)
    r = client.post("/api/v1/admin/credit/jobs/reminders", headers={**OPERATOR, **key()})
    assert r.status_code == 200 and r.json()["by_kind"] == {"d-3": 1}
    sms = [{"text": t} for t in texts_to(gateway_url(client.app), cw.world.phones["employee"])]  # what the gateway sent
    assert done.bill_no in sms[0]["text"]
    assert client.post("/api/v1/admin/credit/jobs/reminders", headers={**OPERATOR, **key()}).json()["sent"] == 0
    assert client.get("/api/v1/admin/credit/overdue", headers=OPERATOR).json()["items"] == []

    advance(clock, cw.bank, 7)  # due + 4 days: past the grace
    r = client.post("/api/v1/admin/credit/jobs/overdue", headers={**OPERATOR, **key()})
    assert r.status_code == 200 and r.json()["suspended"] == 1
    [item] = client.get("/api/v1/admin/credit/overdue", headers=OPERATOR).json()["items"]
    assert (item["bill_no"], item["line_status"], item["days_overdue"]) == (done.bill_no, "suspended", 4)
    holder = login(client, cw.world.phones["employee"])  # a month later: a new session
    view = client.get("/api/v1/patient/credit", headers=holder).json()["lines"][0]
    assert (view["status"], view["overdue"], view["available"]) == ("suspended", True, "0.00")
    assert client.get("/api/v1/admin/credit/overdue", headers=holder).status_code == 401
    r = client.post(f"/api/v1/patient/credit/bills/{done.bill_no}/repay", json={"amount": "60.00"}, headers={**holder, **key()})
    assert r.status_code == 200 and r.json()["line_status"] == "active"


def test_bank_notifications_tampered_refused_genuine_applied(db, setup):
    cw, client = setup
    enrol(client, login(client, cw.world.phones["employee"]))
    done = captured(cw, 30_00)
    enrolment = db.run(lambda c: credit.holder_enrolment(c, cw.holder), write=False)
    run(cw.bank.channel.repay(done.bill_no, "RP" + secrets.token_hex(8).upper(), 30_00, credit.token_for(cw.ctx.keyring, cw.holder, BANK)))
    cfg = cw.bank.channel.config
    body = json.dumps({"event_id": "E" + secrets.token_hex(4), "event": "bill.repaid", "data": {
        "bill_no": done.bill_no, "out_trade_no": done.order_ref, "agreement_no": enrolment.agreement_no, "amount": "30.00",
        "refunded": "0.00", "repaid": "30.00", "outstanding": "0.00", "due_date": "2030-01-01", "status": "repaid"}}).encode()
    ts, nonce = str(int(time.time())), secrets.token_hex(8)
    headers = {"X-Bank-Merchant": cfg.merchant_id, "X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce,
               "X-Bank-Signature": tx.notify_signature(cfg.secret, ts, nonce, body), "Content-Type": "application/json"}
    url = f"/api/v1/credit/notify/{BANK}"
    r = client.post(url, content=body.replace(b"30.00", b"31.00", 1), headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "notification_refused"
    r = client.post(url, content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"code": "OK"}
    bill = db.run(lambda c: credit.overview(c, cw.holder, db.clock()), write=False)["lines"][0]["bills"][0]
    assert (bill["repaid"], bill["status"]) == ("30.00", "repaid")
    assert client.post("/api/v1/credit/notify/nobank", content=body, headers=headers).status_code == 404
