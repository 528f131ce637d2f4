"""Dynamic payment codes over HTTP: the holder gets and draws a code, the hospital verifies it once."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET

from tests.support.code128 import decode
from tests.support.identity import ecard, guardian_ready, id_number_of, link_child, name_of
from tests.support.sms import gateway_url, texts_to
from tests.support.world import seed
from yibao.domain import paycode
from yibao.services.payments import paycodes

ISSUE = "/api/v1/patient/paycodes"
CURRENT = "/api/v1/patient/paycodes/current"
VERIFY = "/api/v1/his/paycodes/verify"


def login(client, phone: str) -> dict[str, str]:
    assert client.post("/api/v1/patient/sms-codes", json={"phone": phone}).status_code == 200
    text = texts_to(gateway_url(client.app), phone)[0]  # the (sandbox) SMS gateway keeps what it sent
    r = client.post("/api/v1/patient/sessions", json={"phone": phone, "code": re.search(r"(\d{6})", text).group(1)})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def post(client, path, auth, body, key=None):
    return client.post(path, json=body, headers={**auth, "Idempotency-Key": key or uuid.uuid4().hex})


def his(world) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.hospital_credential}"}


def error(r, status: int, code: str, field: str = "code") -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"]) == (code, field) and err["message_zh"] and err["message_en"]
    return err


def holder(db, keyring, client, balance=300000):
    w = seed(db, keyring, balance=balance)
    ecard(db, keyring, w.employee.id, name_of(1), id_number_of(1))
    return w, login(client, w.phones["employee"])


def test_issue_draw_and_verify_once(db, keyring, client):
    w, me = holder(db, keyring, client)
    r = post(client, ISSUE, me, {})
    assert r.status_code == 201, r.text
    got = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert len(got["code"]) == 20 and got["code"].startswith("91") and got["ttl_seconds"] == 180
    assert got["psn_no"] == got["holder_psn_no"] == w.employee.id and got["card_kind"] == "ecard"
    assert got["expires_at"] == "2026-11-22T09:03:00+00:00"
    assert got["links"] == {"current": CURRENT, "qr_svg": CURRENT + "/qr.svg", "barcode_svg": CURRENT + "/barcode.svg"}

    assert client.get(CURRENT, headers=me).json()["code"] == got["code"]
    bar = client.get(CURRENT + "/barcode.svg", headers=me)
    assert bar.status_code == 200 and bar.headers["content-type"].startswith("image/svg+xml")
    assert decode(bar.text, 2) == got["code"]  # the bars carry exactly the code
    qr = client.get(CURRENT + "/qr.svg", headers=me)
    assert qr.status_code == 200 and ET.fromstring(qr.content).tag.endswith("svg")

    r = post(client, VERIFY, his(w), {"code": got["code"], "terminal_id": "T1"}, key="scan-1")
    assert r.status_code == 200, r.text
    who = r.json()
    assert (who["psn_no"], who["holder_psn_no"], who["relation"], who["card_id"]) == (w.employee.id, w.employee.id, "self", got["card_id"])
    assert who["psn_name"] == "测**" and who["terminal_id"] == "T1" and got["code"] not in r.text
    replay = post(client, VERIFY, his(w), {"code": got["code"], "terminal_id": "T1"}, key="scan-1")
    assert replay.json() == who and replay.headers["idempotent-replayed"] == "true"
    error(post(client, VERIFY, his(w), {"code": got["code"]}), 409, "paycode_used")
    error(client.get(CURRENT, headers=me), 404, "no_live_paycode", "psn_no")


def test_a_replayed_issue_carries_no_code_and_refresh_replaces(db, keyring, client):
    w, me = holder(db, keyring, client)
    first = post(client, ISSUE, me, {}, key="tap-1").json()
    replay = post(client, ISSUE, me, {}, key="tap-1")
    assert replay.status_code == 201 and replay.json()["code"] is None  # not kept in clear in the idempotency record
    assert client.get(CURRENT, headers=me).json()["code"] == first["code"]
    second = post(client, ISSUE, me, {}, key="tap-2").json()
    assert second["code"] != first["code"]
    error(post(client, VERIFY, his(w), {"code": first["code"]}), 409, "paycode_replaced")
    db.clock.advance(seconds=181)
    error(post(client, VERIFY, his(w), {"code": second["code"]}), 409, "paycode_expired")


def test_each_refusal_has_its_code(db, keyring, client):
    w, me = holder(db, keyring, client)
    code = post(client, ISSUE, me, {}).json()["code"]
    error(post(client, VERIFY, his(w), {"code": "12345"}), 422, "paycode_format")
    error(post(client, VERIFY, his(w), {"code": "13" + code[2:]}), 422, "paycode_not_medical")
    error(post(client, VERIFY, his(w), {"code": code[:-1] + str((int(code[-1]) + 1) % 10)}), 422, "paycode_check_digit")
    parts = paycode.parse(code)
    body = f"91{parts.slot}{parts.counter_residue:02d}{(int(parts.mac) + 1) % 10**7:07d}"
    error(post(client, VERIFY, his(w), {"code": body + str(paycode.damm(body))}), 404, "paycode_unknown")
    error(post(client, VERIFY, his(w), {"code": code, "terminal_id": ""}), 422, "string_too_short", "terminal_id")
    card_id = client.get(CURRENT, headers=me).json()["card_id"]
    assert post(client, f"/api/v1/patient/cards/{card_id}/loss-report", me, None).status_code == 200
    error(post(client, VERIFY, his(w), {"code": code}), 409, "paycode_card_not_active")
    error(post(client, ISSUE, me, {}), 403, "ecard_required", "ecard")


def test_guessing_is_limited_per_terminal_with_retry_after(db, keyring, client):
    w, me = holder(db, keyring, client)
    code = post(client, ISSUE, me, {}).json()["code"]
    parts = paycode.parse(code)
    for i in range(paycodes.TERMINAL_LIMIT):
        body = f"91{parts.slot}{parts.counter_residue:02d}{(int(parts.mac) + 1 + i) % 10**7:07d}"
        error(post(client, VERIFY, his(w), {"code": body + str(paycode.damm(body)), "terminal_id": "T9"}), 404, "paycode_unknown")
    r = post(client, VERIFY, his(w), {"code": code, "terminal_id": "T9"})
    error(r, 429, "too_many_attempts")
    assert r.headers["retry-after"] == "600"
    assert post(client, VERIFY, his(w), {"code": code, "terminal_id": "T8"}).status_code == 200  # another terminal


def test_guardian_shows_a_linked_childs_code_and_others_cannot(db, keyring, client):
    w = seed(db, keyring, balance=600000)
    child = guardian_ready(db, keyring, w.employee, 1)
    me = login(client, w.phones["employee"])
    error(post(client, ISSUE, me, {"psn_no": child.id}), 403, "not_guardian", "psn_no")
    link_child(db, keyring, w.employee.id)
    got = post(client, ISSUE, me, {"psn_no": child.id}).json()
    assert got["psn_no"] == child.id and got["holder_psn_no"] == w.employee.id
    assert got["links"]["barcode_svg"] == f"{CURRENT}/barcode.svg?psn_no={child.id}"
    assert decode(client.get(got["links"]["barcode_svg"], headers=me).text, 2) == got["code"]
    error(client.get(CURRENT, headers=me), 404, "no_live_paycode", "psn_no")  # the guardian's own: none issued
    who = post(client, VERIFY, his(w), {"code": got["code"]}).json()
    assert (who["psn_no"], who["holder_psn_no"], who["relation"]) == (child.id, w.employee.id, "guardian")
    error(post(client, ISSUE, me, {"psn_no": w.retiree.id}), 403, "not_guardian", "psn_no")


def test_another_regions_hospital_is_refused_without_using_the_code(db, keyring, client):
    w, me = holder(db, keyring, client)
    qd = seed(db, keyring, region="370200")
    code = post(client, ISSUE, me, {}).json()["code"]
    error(post(client, VERIFY, his(qd), {"code": code}), 403, "paycode_other_region")
    assert post(client, VERIFY, his(w), {"code": code}).status_code == 200


def test_images_need_a_session(db, keyring, client):
    holder(db, keyring, client)
    assert client.get(CURRENT + "/qr.svg").status_code == 401
    assert client.post(VERIFY, json={"code": "1"}, headers={"Idempotency-Key": "k"}).status_code == 401
