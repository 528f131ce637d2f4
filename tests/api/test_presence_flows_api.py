"""Presence in the payment flows over HTTP (SQLite and PostgreSQL), with the sandbox face verifier and a SANDBOX
institution on loopback: a face authorization or a scan is its holder's presence for ONE settlement with the account —
by the flow it belongs to or by a settlement at the counter, not both; the holder paying a bill in the app is their own
presence; the items kept after a partial refund are settled again on the presence that paid them."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.api import FACE, authenticated_ecard, error, his, scan_face
from tests.support.identity import admit, bind
from tests.support.payments import LINES, PaymentWorld, configure_channel, sign_agreement
from tests.support.world import seed
from yibao.domain.ledger import person_account
from yibao.services.books import ledger

SESSIONS: dict[str, dict[str, str]] = {}  # the holder's app session of each test's world, by psn_no


def _world(api, db, keyring, wxpay, *, balance: int = 20000) -> PaymentWorld:  # noqa: ANN001
    w = seed(db, keyring, balance=balance)
    SESSIONS[w.employee.id] = authenticated_ecard(api, w, 1, w.phones["employee"], FACE)
    pi_id = "wxpay-440300"
    admit(db, pi_id)
    configure_channel(db, keyring, pi_id, wxpay.channel, notify_url=wxpay.notify_url)
    bind(db, w.employee.id, pi_id, password_free_limit=50000, make_default=True)
    pw = PaymentWorld(w, pi_id, db, keyring)
    sign_agreement(pw)  # on WeChat's page (the sandbox's), before any payment
    return pw


def _visit(api, pw: PaymentWorld) -> str:  # noqa: ANN001
    r = api.send("POST", "/api/v1/his/visits", his(pw.w), {"psn_no": pw.w.employee.id, "kind": "outpatient"})
    assert r.status_code == 201, r.text
    vid = r.json()["mdtrt_id"]
    assert api.send("POST", f"/api/v1/his/visits/{vid}/fee-lines", his(pw.w), {"lines": LINES}).status_code == 200
    return vid


def _account(db, person_id: str) -> int:
    return db.run(lambda c: ledger.balance(c, person_account(person_id)), write=False)


def test_a_face_authorization_pays_one_settlement_at_the_counter_and_then_nothing(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    before = _account(db, pw.w.employee.id)
    auth = scan_face(api, pw.w, pw.w.employee.id, FACE).json()["face_authorization"]
    first, second = _visit(api, pw), _visit(api, pw)
    r = api.send("POST", f"/api/v1/his/visits/{first}/settle", his(pw.w), {"account": {"use": True}})
    assert r.status_code == 200, r.text
    paid = before - _account(db, pw.w.employee.id)
    assert paid > 0
    error(api.send("POST", f"/api/v1/his/visits/{second}/settle", his(pw.w), {"account": {"use": True}}), 403, "account", "presence_required")
    # Used at the counter, the authorization pays nothing more by face either (not even cash from the wallet).
    r = api.send("POST", "/api/v1/his/payments/face", his(pw.w), {"face_authorization": auth, "visit_id": second, "account": {"use": False}})
    error(r, 409, "face_authorization", "face_authorization_used")
    assert before - _account(db, pw.w.employee.id) == paid


def test_a_face_payment_uses_its_own_presence_for_its_visit_only(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    auth = scan_face(api, pw.w, pw.w.employee.id, FACE).json()["face_authorization"]
    paid_by_face, other = _visit(api, pw), _visit(api, pw)
    r = api.send("POST", "/api/v1/his/payments/face", his(pw.w), {"face_authorization": auth, "visit_id": paid_by_face,
                                                                  "account": {"use": True}})
    assert r.status_code == 200 and r.json()["status"] == "completed" and r.json()["account"]["amount"] != "0.00", r.text
    error(api.send("POST", f"/api/v1/his/visits/{other}/settle", his(pw.w), {"account": {"use": True}}), 403, "account", "presence_required")


def test_a_scan_used_by_a_settlement_at_the_counter_pays_no_one_code_payment(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    vid = _visit(api, pw)
    scan = api.send("POST", "/api/v1/his/paycodes/verify", his(pw.w), {"code": pw.code()})
    assert scan.status_code == 200, scan.text
    assert scan.json()["presence"]["mdtrt_id"] is None  # no visit named: it binds to the first it pays
    assert api.send("POST", f"/api/v1/his/visits/{vid}/settle", his(pw.w), {"account": {"use": True}}).status_code == 200
    again = api.send("POST", "/api/v1/his/payments/onecode", his(pw.w), {"paycode_id": scan.json()["paycode_id"], "lines": LINES})
    error(again, 409, "paycode_id", "presence_used")


def test_a_scan_for_one_visit_pays_no_other_by_one_code(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    shown_for, other = _visit(api, pw), _visit(api, pw)
    scan = api.send("POST", "/api/v1/his/paycodes/verify", his(pw.w), {"code": pw.code(), "mdtrt_id": shown_for})
    assert scan.json()["presence"]["mdtrt_id"] == shown_for
    r = api.send("POST", "/api/v1/his/payments/onecode", his(pw.w), {"paycode_id": scan.json()["paycode_id"], "visit_id": other,
                                                                     "account": {"use": True}})
    error(r, 409, "paycode_id", "presence_other_visit")
    r = api.send("POST", "/api/v1/his/payments/onecode", his(pw.w), {"paycode_id": scan.json()["paycode_id"], "visit_id": shown_for,
                                                                     "account": {"use": True}})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text


def test_paying_a_bill_in_the_app_is_the_holders_own_presence_and_used_once(api, db, keyring, wxpay, face_sandbox):
    from yibao.store.tables import presences

    pw = _world(api, db, keyring, wxpay)
    vid = _visit(api, pw)
    bill = api.send("POST", f"/api/v1/his/visits/{vid}/bill", his(pw.w)).json()
    me = SESSIONS[pw.w.employee.id]
    assert api.send("POST", "/api/v1/patient/payment-pin", me, {"pin": "246810"}).status_code == 200
    r = api.send("POST", f"/api/v1/patient/bills/{bill['payment_id']}/pay", me, {"use_account": True, "pin": "246810"})
    assert r.status_code == 200 and r.json()["status"] == "completed" and r.json()["account"]["amount"] != "0.00", r.text
    rows = db.run(lambda c: c.execute(select(presences.c.kind, presences.c.status, presences.c.visit_id, presences.c.setl_id)).all(),
                  write=False)
    assert [(k, s, v, t) for k, s, v, t in rows] == [("app", "used", vid, r.json()["setl_id"])]


def test_the_items_kept_after_a_partial_refund_are_settled_again_on_the_presence_that_paid_them(api, db, keyring, wxpay, face_sandbox):
    pw = _world(api, db, keyring, wxpay)
    r = api.send("POST", "/api/v1/his/payments/onecode", his(pw.w), {"code": pw.code(), "lines": LINES, "account": {"use": True}})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    refund = api.send("POST", f"/api/v1/his/payments/{r.json()['payment_id']}/refunds", his(pw.w), {"scope": "all", "lines_to_keep": ["1"]})
    assert refund.status_code == 200, refund.text
    rebill = refund.json()["rebill"]
    assert rebill["status"] == "completed" and rebill["account"]["amount"] != "0.00"
    # The code's presence paid the visit; carried once to the kept items, which used it: nothing is left live.
    from yibao.store.tables import presences

    rows = db.run(lambda c: c.execute(select(presences.c.kind, presences.c.status).order_by(presences.c.created_at)).all(), write=False)
    assert sorted(tuple(x) for x in rows) == [("paycode", "used"), ("rebill", "used")]
