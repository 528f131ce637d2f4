"""One-code payment over HTTP: the hospital's request, the holder's confirmation, the admin's channel registry."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from tests.support.api import OPERATOR, his, key, login
from tests.support.payments import BIG_LINES, LINES, payment_world
from yibao.app import create_app
from yibao.channels.crypto import generate_rsa_key, private_pem, public_pem


@pytest.fixture
def pw(db, keyring, wxpay):
    return payment_world(db, keyring, wxpay, limit=50000, balance=20000)


@pytest.fixture
def client(db, keyring, sms_gateway):
    with TestClient(create_app(db, keyring=keyring, demo=True, sms_gateway=sms_gateway), raise_server_exceptions=False) as c:
        yield c


def test_a_password_free_one_code_payment_answers_one_receipt_and_replays_it(client, pw):
    headers = {**his(pw), **key()}
    body = {"code": pw.code(), "lines": LINES, "terminal_id": "T9", "account": {"use": True}}
    r = client.post("/api/v1/his/payments/onecode", json=body, headers=headers)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "completed" and doc["in_progress"] is False and doc["terminal_id"] == "T9"
    assert (doc["total"], doc["fund"]["pool"], doc["fund"]["total"], doc["account"]["amount"], doc["cash"]["amount"]) == (
        "375.00", "9.00", "9.00", "200.00", "166.00")
    assert doc["cash"]["payment_institution_id"] == pw.pi_id and doc["cash"]["trade_no"] and doc["cash"]["out_trade_no"] == doc["payment_id"]
    again = client.post("/api/v1/his/payments/onecode", json=body, headers=headers)
    assert again.json() == doc and again.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/api/v1/his/payments/{doc['payment_id']}", headers=his(pw)).json() == doc
    other = client.get(f"/api/v1/his/payments/{doc['payment_id']}", headers={"Authorization": f"Bearer {pw.w.other_credential}"})
    assert other.status_code == 404 and other.json()["error"]["field"] == "payment_id"
    # The settlement behind it is an ordinary settled one for the hospital.
    s = client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(pw)).json()
    assert (s["status"], s["acct_pay"], s["psn_cash_pay"]) == ("settled", "200.00", "166.00")


def test_a_refused_code_is_answered_with_its_code_and_the_same_answer_on_retry(client, pw):
    code = pw.code()
    assert client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES}, headers={**his(pw), **key()}).status_code == 200
    headers = {**his(pw), **key()}
    r = client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "paycode_used" and r.json()["error"]["field"] == "code"
    again = client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES}, headers=headers)
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    both = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "visit_id": "X"}, headers={**his(pw), **key()})
    assert both.status_code == 422 and both.json()["error"]["code"] == "visit_or_lines"


def test_above_the_limit_the_holder_confirms_in_the_app_and_the_hospital_learns_it(client, pw):
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": BIG_LINES}, headers={**his(pw), **key()})
    assert r.status_code == 202, r.text
    waiting = r.json()
    assert waiting["status"] == "awaiting_confirmation" and waiting["in_progress"] and waiting["confirm_expires_at"]
    me = login(client, pw.w.phones["employee"])
    pending = client.get("/api/v1/patient/payments/pending", headers=me).json()["items"]
    assert [p["payment_id"] for p in pending] == [waiting["payment_id"]]
    confirm = f"/api/v1/patient/payments/{waiting['payment_id']}/confirm"
    no_pin = client.post(confirm, json={"pin": "246810"}, headers={**me, **key()})
    assert no_pin.status_code == 409 and no_pin.json()["error"]["code"] == "pin_not_set"
    weak = client.post("/api/v1/patient/payment-pin", json={"pin": "123456"}, headers={**me, **key()})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "pin_too_simple"
    assert client.post("/api/v1/patient/payment-pin", json={"pin": "246810"}, headers={**me, **key()}).json()["pin_set"] is True
    wrong = client.post(confirm, json={"pin": "246811"}, headers={**me, **key()})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "pin_wrong"
    badform = client.post(confirm, json={"pin": "24681"}, headers={**me, **key()})
    assert badform.status_code == 422 and badform.json()["error"]["field"] == "pin"
    done = client.post(confirm, json={"pin": "246810"}, headers={**me, **key()})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed" and done.json()["cash"]["trade_no"]
    assert client.get(f"/api/v1/his/payments/{waiting['payment_id']}", headers=his(pw)).json()["status"] == "completed"
    assert client.get("/api/v1/patient/payments/pending", headers=me).json()["items"] == []
    # Changing the PIN needs the old one.
    change = client.post("/api/v1/patient/payment-pin", json={"pin": "135790"}, headers={**me, **key()})
    assert change.status_code == 409 and change.json()["error"]["code"] == "old_pin_required"
    changed = client.post("/api/v1/patient/payment-pin", json={"pin": "135790", "old_pin": "246810"}, headers={**me, **key()})
    assert changed.status_code == 200 and changed.json()["changed"] is True


def test_the_holder_declines_and_everything_held_is_released(client, pw):
    before = pw.balances()
    waiting = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": BIG_LINES, "account": {"use": True}},
                          headers={**his(pw), **key()}).json()
    assert pw.balances() != before
    me = login(client, pw.w.phones["employee"])
    r = client.post(f"/api/v1/patient/payments/{waiting['payment_id']}/decline", headers={**me, **key()})
    assert r.status_code == 200 and (r.json()["status"], r.json()["void_reason"]) == ("voided", "holder_declined")
    assert pw.balances() == before
    stranger = login(client, pw.w.phones["retiree"])
    assert client.post(f"/api/v1/patient/payments/{waiting['payment_id']}/decline", headers={**stranger, **key()}).status_code == 404


def test_the_channel_registry_keeps_keys_encrypted_and_never_shows_them(client, pw, db):
    key_pem = private_pem(generate_rsa_key()).decode()
    body = {"connector": "alipay", "base_url": "https://openapi.example.com/gateway", "merchant_id": "2021000000000001",
            "private_key_pem": key_pem, "institution_public_key_pem": public_pem(generate_rsa_key()).decode(), "timeout_ms": 3000}
    r = client.put(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel", json=body, headers={**OPERATOR, **key()})
    assert r.status_code == 200, r.text
    view = client.get(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel", headers=OPERATOR).json()
    assert view["connector"] == "alipay" and view["has_private_key"] and len(view["institution_key_serial"]) == 40
    assert "BEGIN" not in str(view)
    from sqlalchemy import select

    from yibao.store.tables import channel_configs

    stored = db.run(lambda c: c.execute(select(channel_configs.c.private_key_enc)).scalar_one(), write=False)
    assert b"PRIVATE KEY" not in bytes(stored)
    bad = client.put(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel", json={**body, "private_key_pem": "nope"},
                     headers={**OPERATOR, **key()})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "private_key_pem"
    secret = client.put(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel",
                        json={**body, "connector": "bank", "shared_secret": base64.b64encode(b"x" * 31).decode()}, headers={**OPERATOR, **key()})
    assert secret.status_code == 422 and secret.json()["error"]["code"] == "invalid_secret"
    wx_only = client.put(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel", json={**body, "plan_id": 12535}, headers={**OPERATOR, **key()})
    assert wx_only.status_code == 422 and (wx_only.json()["error"]["field"], wx_only.json()["error"]["code"]) == ("plan_id", "not_applicable")
    wx = client.put(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel", headers={**OPERATOR, **key()},
                    json={**body, "connector": "wxpay", "app_id": "wxd678efh567hg6787", "shared_secret": base64.b64encode(b"k" * 32).decode(),
                          "institution_public_key_pem": None, "certificate_mode": "certificates", "plan_id": 12535, "deduct_notice": False})
    assert wx.status_code == 200, wx.text
    assert (wx.json()["certificate_mode"], wx.json()["plan_id"], wx.json()["platform_key_id"], wx.json()["deduct_notice"]) == \
        ("certificates", 12535, None, False)
    no_notice = client.put(f"/api/v1/admin/payment-institutions/{pw.pi_id}/channel", json={**body, "deduct_notice": True},
                           headers={**OPERATOR, **key()})  # body: not wxpay
    assert no_notice.status_code == 422 and no_notice.json()["error"]["field"] == "deduct_notice"
    missing = client.get("/api/v1/admin/payment-institutions/nobody/channel", headers=OPERATOR)
    assert missing.status_code == 404


def test_the_scan_that_opened_the_visit_pays_it_once_and_only_for_a_while(client, pw, db):
    """POST /paycodes/verify answers a paycode_id; within ten minutes it pays that person's visit once (no second code)."""
    scan = client.post("/api/v1/his/paycodes/verify", json={"code": pw.code(), "terminal_id": "T1"}, headers={**his(pw), **key()})
    assert scan.status_code == 200, scan.text
    scanned = scan.json()
    visit = client.post("/api/v1/his/visits", json={"psn_no": scanned["psn_no"], "kind": "outpatient"}, headers={**his(pw), **key()})
    assert visit.status_code == 201, visit.text
    visit_id = visit.json()["mdtrt_id"]
    assert client.post(f"/api/v1/his/visits/{visit_id}/fee-lines", json={"lines": LINES}, headers={**his(pw), **key()}).status_code == 200

    both = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "paycode_id": scanned["paycode_id"], "visit_id": visit_id},
                       headers={**his(pw), **key()})
    assert both.status_code == 422 and both.json()["error"]["code"] == "code_or_scan"
    elsewhere = client.post("/api/v1/his/payments/onecode", json={"paycode_id": scanned["paycode_id"], "visit_id": visit_id},
                            headers={"Authorization": f"Bearer {pw.w.other_credential}", **key()})
    assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "scan_unknown"

    r = client.post("/api/v1/his/payments/onecode", json={"paycode_id": scanned["paycode_id"], "visit_id": visit_id, "account": {"use": True}},
                    headers={**his(pw), **key()})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    assert r.json()["terminal_id"] == "T1"  # the scan's terminal
    again = client.post("/api/v1/his/payments/onecode", json={"paycode_id": scanned["paycode_id"], "lines": LINES},
                        headers={**his(pw), **key()})
    assert again.status_code == 409 and again.json()["error"]["code"] == "paycode_used"

    late = client.post("/api/v1/his/paycodes/verify", json={"code": pw.code()}, headers={**his(pw), **key()}).json()
    db.clock.advance(minutes=10)
    r = client.post("/api/v1/his/payments/onecode", json={"paycode_id": late["paycode_id"], "lines": LINES}, headers={**his(pw), **key()})
    assert r.status_code == 409 and r.json()["error"]["code"] == "scan_expired"


def test_a_settlement_paid_through_an_institution_is_refunded_through_its_payment_not_cancelled(client, pw):
    """2208 / 2601 on a one-code payment's settlement would give back fund and account but leave the cash with
    the institution: refused, naming the payment to refund through."""
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES, "account": {"use": True}},
                    headers={**his(pw), **key()})
    doc = r.json()
    assert doc["status"] == "completed", r.text
    cancel = client.post(f"/api/v1/his/settlements/{doc['setl_id']}/cancel", headers={**his(pw), **key()})
    assert cancel.status_code == 409 and cancel.json()["error"]["code"] == "settlement_paid_by_payment"
    assert doc["payment_id"] in cancel.json()["error"]["message_en"]
    s = client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(pw)).json()
    assert s["status"] == "settled"  # nothing moved
    refund = client.post(f"/api/v1/his/payments/{doc['payment_id']}/refunds", json={"scope": "all"}, headers={**his(pw), **key()})
    assert refund.status_code == 200, refund.text
    assert client.get(f"/api/v1/his/settlements/{doc['setl_id']}", headers=his(pw)).json()["status"] == "cancelled"


def test_a_one_code_payment_stores_its_answer_in_its_last_unit(client, pw):
    platform = client.app.state.platform
    body = {"code": pw.code(), "lines": LINES}
    assert client.post("/api/v1/his/payments/onecode", json=body, headers={**his(pw), **key()}).status_code == 200  # the agreement
    units: list[bool] = []
    run = platform.run

    async def counting(work, *, write=True):  # noqa: ANN001, ANN202
        units.append(write)
        return await run(work, write=write)
    platform.run = counting
    try:
        headers = {**his(pw), **key()}
        body = {"code": pw.code(), "lines": LINES}
        r = client.post("/api/v1/his/payments/onecode", json=body, headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "completed"
        # the key looked up, the code, the order, the hold and the cash request; the answer with the receipt stored under
        # the key. Neither the look-up, the receipt nor the stored answer takes a unit of its own.
        assert units == [True, True]
    finally:
        platform.run = run
    again = client.post("/api/v1/his/payments/onecode", json=body, headers=headers)
    assert again.json() == r.json() and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/his/payments/onecode", json={**body, "terminal_id": "T2"}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_an_expired_or_suspended_pilot_agreement_refuses_one_code_but_not_the_counter(client, pw, db, clock):
    """Seed 002: no mobile-mode payment without an agreement in force — refused naming the agreement, the code not used
    up (the same code pays once the agreement is renewed); counter settlement goes on; the operator's API renews,
    suspends and restores."""
    from datetime import date

    from sqlalchemy import update

    from yibao.services.agency import pilots
    from yibao.store.tables import pilot_agreements as AG

    ops = OPERATOR
    agreement = db.run(lambda c: pilots.in_force(c, pilots.today(clock()), institution_id=pw.w.hospital.id))
    # The hospital's agreement was signed a year ago and ended yesterday (the policies go no further than 2026: the
    # clock cannot be moved a year on instead).
    db.run(lambda c: c.execute(update(AG).where(AG.c.id == agreement.id).values(starts_on=date(2025, 11, 21), expires_on=date(2026, 11, 21))))
    code = pw.code()
    r = client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES}, headers={**his(pw), **key()})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("pilot_agreement_expired", "pilot_agreement") and agreement.id in err["message_zh"]
    # The counter settles the same patient at the same hospital.
    visit = client.post("/api/v1/his/visits", json={"psn_no": pw.w.employee.id, "kind": "outpatient"}, headers={**his(pw), **key()}).json()
    assert client.post(f"/api/v1/his/visits/{visit['mdtrt_id']}/fee-lines", json={"lines": LINES}, headers={**his(pw), **key()}).status_code == 200
    settled = client.post(f"/api/v1/his/visits/{visit['mdtrt_id']}/settle", json={}, headers={**his(pw), **key()})
    assert settled.status_code == 200 and settled.json()["status"] == "settled", settled.text
    # Renewed by the operator: the same code (never used) pays.
    r = client.post(f"/api/v1/admin/pilot-agreements/{agreement.id}/renewal", headers={**ops, **key()})
    assert r.status_code == 201 and r.json()["state"] == "active", r.text
    r = client.post("/api/v1/his/payments/onecode", json={"code": code, "lines": LINES}, headers={**his(pw), **key()})
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    # Suspended: refused, saying so; restored: paid.
    r = client.post(f"/api/v1/admin/institutions/{pw.w.hospital.id}/pilot-suspension", json={"reason": "风险核查"}, headers={**ops, **key()})
    assert r.status_code == 200 and r.json()["status"] == "suspended", r.text
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES}, headers={**his(pw), **key()})
    assert r.status_code == 403 and r.json()["error"]["code"] == "pilot_agreement_suspended"
    assert client.post(f"/api/v1/admin/institutions/{pw.w.hospital.id}/pilot-restoration", headers={**ops, **key()}).status_code == 200
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES}, headers={**his(pw), **key()})
    assert r.status_code == 200, r.text
    listed = client.get("/api/v1/admin/pilots", headers=ops).json()
    assert {g["id"]: g["state"] for g in listed["agreements"]}[agreement.id] == "expired"


def test_the_rollout_report_counts_a_region_live_after_a_completed_one_code_payment(client, pw):
    """GET /api/v1/admin/rollout (operators only): Shenzhen goes live in one-code — not in face — once its hospital completes one."""
    def shenzhen(mode):  # noqa: ANN001, ANN202
        r = client.get("/api/v1/admin/rollout", headers=OPERATOR)
        assert r.status_code == 200, r.text
        m = next(m for m in r.json()["modes"] if m["mode"] == mode)
        return next(p for p in m["provinces"] if p["province"] == "44")

    assert client.get("/api/v1/admin/rollout", headers=his(pw)).status_code == 401
    before = shenzhen("onecode")
    assert (before["regions_live"], before["institutions_live"], before["targets"][1]["gap"]) == (0, 0, 1)
    r = client.post("/api/v1/his/payments/onecode", json={"code": pw.code(), "lines": LINES}, headers={**his(pw), **key()})
    assert r.json()["status"] == "completed", r.text
    after = shenzhen("onecode")
    assert (after["regions_live"], after["institutions_live"], after["institutions_eligible_live"]) == (1, 1, 1)
    assert {t["key"]: (t["gap"], t["met"]) for t in after["targets"]} == {"pilot_cities": (1, False), "regions": (0, True), "institutions": (2, False)}
    assert shenzhen("face")["regions_live"] == 0
