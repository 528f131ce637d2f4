"""Face payment as a payment method over HTTP (SQLite and PostgreSQL): the sandbox face verifier and a SANDBOX
institution on loopback. A verified face pays once; the payer is the face's holder (a guardian pays a linked child's
cash from their own binding)."""

from __future__ import annotations

from tests.support.api import FACE, authenticated_ecard, error, his, scan_face
from tests.support.identity import active_card, admit, bind, enrol_child, link_child
from tests.support.payments import LINES, PaymentWorld, configure_channel, sign_agreement
from tests.support.world import seed


def _world(api, db, keyring, wxpay, *, balance: int = 20000) -> PaymentWorld:  # noqa: ANN001
    w = seed(db, keyring, balance=balance)
    authenticated_ecard(api, w, 1, w.phones["employee"], FACE)
    pi_id = "wxpay-440300"
    admit(db, pi_id)
    configure_channel(db, keyring, pi_id, wxpay.channel, notify_url=wxpay.notify_url)
    bind(db, w.employee.id, pi_id, password_free_limit=50000, make_default=True)
    pw = PaymentWorld(w, pi_id, db, keyring)
    sign_agreement(pw)  # on WeChat's page (the sandbox's), before any payment
    return pw


def _pay(api, pw: PaymentWorld, auth: str, *, key: str | None = None, use: bool = False, **where):  # noqa: ANN001, ANN202
    body = {"face_authorization": auth, "account": {"use": use}, **(where or {"lines": LINES})}
    return api.send("POST", "/api/v1/his/payments/face", his(pw.w), body, key=key)


def test_a_verified_face_pays_once_and_the_retry_replays(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    before = pw.balances()
    auth = scan_face(api, pw.w, pw.w.employee.id, FACE).json()["face_authorization"]
    r = _pay(api, pw, auth, key="face-1", use=True)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["method"], doc["status"], doc["psn_no"], doc["payer_psn_no"], doc["terminal_id"]) == (
        "face", "completed", pw.w.employee.id, pw.w.employee.id, "FACE-01")
    assert (doc["total"], doc["fund"]["total"], doc["account"]["amount"], doc["cash"]["amount"]) == ("375.00", "9.00", "200.00", "166.00")
    assert doc["cash"]["trade_no"] and doc["cash"]["payment_institution_id"] == pw.pi_id
    after = pw.balances()
    assert before["holder"] - after["holder"] == 200_00 and after["pending"] == 0
    again = _pay(api, pw, auth, key="face-1", use=True)
    assert again.json() == doc and again.headers["Idempotent-Replayed"] == "true"
    assert pw.balances() == after  # the retry paid nothing
    # the authorization is spent: a new request with it is refused, nothing moves
    error(_pay(api, pw, auth), 409, "face_authorization", "face_authorization_used")
    error(_pay(api, pw, "FA-NOPE"), 404, "face_authorization", "face_authorization_unknown")
    assert pw.balances() == after
    assert api.get(f"/api/v1/his/payments/{doc['payment_id']}", his(pw.w)).json() == doc


def test_a_malformed_request_does_not_spend_the_authorization(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    auth = scan_face(api, pw.w, pw.w.employee.id, FACE).json()["face_authorization"]
    error(_pay(api, pw, auth, lines=LINES, visit_id="V1"), 422, "visit_id", "visit_or_lines")
    other = api.send("POST", "/api/v1/his/visits", his(pw.w), {"psn_no": pw.w.retiree.id, "kind": "outpatient"})
    assert other.status_code == 201, other.text
    error(_pay(api, pw, auth, visit_id=other.json()["mdtrt_id"]), 409, "visit_id", "visit_other_person")
    assert _pay(api, pw, auth).json()["status"] == "completed"


def test_a_guardian_pays_a_linked_childs_cash_with_their_own_binding(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    child = enrol_child(db, keyring, pw.w.employee.id)
    active_card(db, keyring, child.id, card_no="CHILD0001")
    link_child(db, keyring, pw.w.employee.id)
    before = pw.balances()
    auth = scan_face(api, pw.w, child.id, FACE, payer=pw.w.employee.id).json()["face_authorization"]
    r = _pay(api, pw, auth, use=True)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["status"], doc["psn_no"], doc["payer_psn_no"]) == ("completed", child.id, pw.w.employee.id)
    assert doc["cash"]["payment_institution_id"] == pw.pi_id and float(doc["cash"]["amount"]) > 0
    assert before["holder"] - pw.balances()["holder"] == int(round(float(doc["account"]["amount"]) * 100))
