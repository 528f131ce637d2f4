"""Identity, cards, bindings and families over HTTP, with the sandbox face verifier as a real loopback server."""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.support.api import LIVE, OPERATOR, Api, authenticated_ecard, error
from tests.support.face import png_bomb
from tests.support.identity import active_card, admit, enrol_child, id_number_of, name_of
from tests.support.payments import configure_channel
from tests.support.world import seed
from yibao.face import FaceVerifier
from yibao.face.image import encode_grey
from yibao.sandbox.face_samples import capture
from yibao.services.agency import payment_institutions as pis
from yibao.services.people import bindings
from yibao.store.tables import channel_configs


def _admit(api: Api, pi_id: str, region: str = "440300", *, connect: tuple[Any, Any, Any] | None = None):  # noqa: ANN202
    """Admission over the API; ``connect`` (db, keyring, a sandbox institution): registered and its connector configured
    first, as admission requires a connector that answers (agency/admission.py)."""
    if connect is not None:
        db, keyring, live = connect
        db.run(lambda c: pis.register(c, db.clock(), pi_id=pi_id, region=region, name=f"{pi_id} 支付", kind="wallet", actor="test"))
        configure_channel(db, keyring, pi_id, live.channel)
    return api.send("POST", "/api/v1/admin/payment-institutions", OPERATOR,
                    {"id": pi_id, "region": region, "name": f"{pi_id} 支付", "kind": "wallet", "admission_ref": f"准入〔2026〕{pi_id}"})


def test_admission_requires_a_connector_that_answers_and_binding_requires_one(api, db, keyring, alipay, face_sandbox):
    w = seed(db, keyring)
    me = authenticated_ecard(api, w, 1, "13800000001", "张伟")
    # No connector: refused in words, the institution registered (待接入) so that its connector can be configured.
    err = error(_admit(api, "newpay"), 409, "connector", "connector_missing")
    assert "尚未配置接入参数" in err["message_zh"] and "no connector configured" in err["message_en"]
    assert [(i["id"], i["status"]) for i in api.get("/api/v1/admin/payment-institutions?status=registered", OPERATOR).json()["items"]] \
        == [("newpay", "registered")]
    assert api.get("/api/v1/patient/payment-institutions", me).json()["items"] == []
    # A connector configured at an address nothing answers: the check fails, still not admitted.
    configure_channel(db, keyring, "newpay", alipay.channel, base_url="http://127.0.0.1:9")
    err = error(_admit(api, "newpay"), 409, "connector", "connector_check_failed")
    assert "连接器检测未通过" in err["message_zh"]
    assert db.run(lambda c: pis.get(c, "newpay"), write=False).status == "registered"
    # The sandbox Alipay's own address: its signed "no such order" passes the check.
    configure_channel(db, keyring, "newpay", alipay.channel)
    r = _admit(api, "newpay")
    assert r.status_code == 201 and r.json()["status"] == "admitted", r.text

    # A holder cannot bind an institution the platform has no connector for (recorded directly, as an old database may have
    # it), and a binding to it left from before is not the default a payment goes through.
    admit(db, "oldpay", connected=False)
    assert [i["id"] for i in api.get("/api/v1/patient/payment-institutions", me).json()["items"]] == ["newpay"]  # not offered
    error(api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "oldpay"}), 409, "payment_institution_id",
          "not_connected")
    configure_channel(db, keyring, "oldpay", alipay.channel)
    assert api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "oldpay", "default": True}).status_code == 201
    assert api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "newpay"}).status_code == 201
    db.run(lambda c: c.execute(channel_configs.delete().where(channel_configs.c.payment_institution_id == "oldpay")))
    listed = api.get("/api/v1/patient/ecard/bindings", me).json()["items"]
    assert [(b["payment_institution_id"], b["default"], b["connected"]) for b in listed] == [("oldpay", True, False), ("newpay", False, True)]
    assert db.run(lambda c: bindings.default_binding(c, w.employee.id), write=False).payment_institution_id == "newpay"
    error(api.send("PUT", "/api/v1/patient/ecard/bindings/oldpay/default", me), 409, "payment_institution_id", "not_connected")


def test_identity_then_ecard_then_bindings(api, db, keyring, face_sandbox, alipay):
    w = seed(db, keyring)
    me = api.login("13800000001")
    psn = w.employee.id
    assert api.get("/api/v1/patient/identity", me).json() == {"psn_no": psn, "face_enrolled": False, "real_name_verified_at": None,
                                                               "real_person_verified_at": None}
    error(api.send("POST", "/api/v1/patient/ecards", me), 403, "real_name", "real_name_required")
    error(api.send("POST", "/api/v1/patient/identity/real-name", me, {"name": name_of(1), "id_number": id_number_of(2)}),
          403, "id_number", "real_name_mismatch")
    error(api.send("POST", "/api/v1/patient/identity/real-name", me, {"name": name_of(1), "id_number": "123"}), 422, "id_number")
    r = api.send("POST", "/api/v1/patient/identity/real-name", me, {"name": name_of(1), "id_number": id_number_of(1)})
    assert r.status_code == 200 and r.json()["real_name_verified_at"]

    real_person = {"capture": capture("张伟", day=2, fmt="JPEG"), "liveness": LIVE}  # a camera's JPEG against the PNG enrolled below
    error(api.send("POST", "/api/v1/patient/identity/real-person", me, real_person), 409, "face_template", "face_not_enrolled")
    r = api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture("张伟")})
    assert r.status_code == 200 and r.json()["face_enrolled"] is True and "tpl_" not in r.text
    error(api.send("POST", "/api/v1/patient/identity/real-person", me, {"capture": capture("李娜", day=1), "liveness": LIVE}),
          403, "capture", "face_mismatch")
    # Set-up changed with issue 11 (point 5): what fails liveness is the enrolment photo itself (day 0), not a low score.
    error(api.send("POST", "/api/v1/patient/identity/real-person", me,
                   {"capture": capture("张伟", day=0), "liveness": {"method": "tof", "score": 0.3}}), 403, "liveness", "liveness_failed")
    error(api.send("POST", "/api/v1/patient/identity/real-person", me, {"capture": capture("张伟"), "liveness": {"method": "photo", "score": 1}}),
          422, "liveness.method")
    r = api.send("POST", "/api/v1/patient/identity/real-person", me, real_person)
    assert r.status_code == 200, r.text
    assert r.json()["liveness"] == "pass" and r.json()["similarity"] >= 0.9 and r.json()["real_person_verified_at"]

    r = api.send("POST", "/api/v1/patient/ecards", me)
    assert r.status_code == 201 and r.json()["kind"] == "ecard" and r.json()["status"] == "active"
    assert re.fullmatch(r"E4\*+\d{4}", r.json()["card_no"])
    error(api.send("POST", "/api/v1/patient/ecards", me), 409, "ecard", "ecard_exists")

    for pi_id, region in [("wechat", "440300"), ("alipay", "440300"), ("suspended-pay", "440300"), ("qd-bank", "370200")]:
        assert _admit(api, pi_id, region, connect=(db, keyring, alipay)).status_code == 201
    assert api.send("POST", "/api/v1/admin/payment-institutions/suspended-pay/suspension", OPERATOR, {"reason": "整改"}).status_code == 200
    listed = api.get("/api/v1/patient/payment-institutions", me).json()["items"]
    assert [i["id"] for i in listed] == ["alipay", "wechat"]
    admin_list = api.get("/api/v1/admin/payment-institutions?status=suspended", OPERATOR).json()["items"]
    assert [i["id"] for i in admin_list] == ["suspended-pay"]

    r = api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "wechat"})
    assert r.status_code == 201 and r.json()["items"][0]["default"] is True and r.json()["max_password_free_limit"] == "2000.00"
    r = api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "alipay", "password_free_limit": "200.00"})
    assert [(i["payment_institution_id"], i["default"], i["password_free_limit"]) for i in r.json()["items"]] == \
        [("wechat", True, "0.00"), ("alipay", False, "200.00")]
    error(api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "suspended-pay"}),
          409, "payment_institution_id", "not_admitted")
    error(api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "qd-bank"}), 404, "payment_institution_id")
    error(api.send("POST", "/api/v1/patient/ecard/bindings", me, {"payment_institution_id": "alipay"}), 409, "payment_institution_id",
          "already_bound")
    r = api.send("PUT", "/api/v1/patient/ecard/bindings/alipay/default", me)
    assert r.status_code == 200 and [i["payment_institution_id"] for i in r.json()["items"] if i["default"]] == ["alipay"]
    for bad in ("2000.01", "-1", "1.234", "abc"):
        error(api.send("PUT", "/api/v1/patient/ecard/bindings/wechat/limit", me, {"password_free_limit": bad}), 422, "password_free_limit")
    r = api.send("PUT", "/api/v1/patient/ecard/bindings/wechat/limit", me, {"password_free_limit": "2000.00"})
    assert {i["payment_institution_id"]: i["password_free_limit"] for i in r.json()["items"]}["wechat"] == "2000.00"
    r = api.send("DELETE", "/api/v1/patient/ecard/bindings/alipay", me)
    assert [(i["payment_institution_id"], i["default"]) for i in r.json()["items"]] == [("wechat", True)]
    error(api.send("DELETE", "/api/v1/patient/ecard/bindings/alipay", me), 404, "payment_institution_id", "not_bound")
    assert api.get("/api/v1/patient/ecard/bindings", me).json()["items"][0]["payment_institution_id"] == "wechat"


def test_retries_replay_and_never_call_the_verifier_twice(api, db, keyring, face_sandbox, alipay):
    w = seed(db, keyring)
    psn = w.retiree.id
    enrol = {"capture": capture("王芳")}
    first = api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, enrol, key="enrol-1")
    calls, enrolled = face_sandbox.state.calls, face_sandbox.state.enrolled
    again = api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, enrol, key="enrol-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json()) and again.headers["Idempotent-Replayed"] == "true"
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture("刘洋")}, key="enrol-1"),
          409, "Idempotency-Key", "idempotency_key_reused")
    assert (face_sandbox.state.calls, face_sandbox.state.enrolled) == (calls, enrolled)

    me = api.login("13800000002")
    api.send("POST", "/api/v1/patient/identity/real-name", me, {"name": name_of(2), "id_number": id_number_of(2)})
    body = {"capture": capture("王芳", day=1), "liveness": LIVE}
    first = api.send("POST", "/api/v1/patient/identity/real-person", me, body, key="rp-1")
    calls = face_sandbox.state.calls
    again = api.send("POST", "/api/v1/patient/identity/real-person", me, body, key="rp-1")
    assert first.status_code == 200 and again.json() == first.json() and face_sandbox.state.calls == calls
    error(api.send("POST", "/api/v1/patient/identity/real-person", me, {**body, "liveness": {"method": "tof", "score": 0.99}}, key="rp-1"),
          409, "Idempotency-Key")

    ecard = api.send("POST", "/api/v1/patient/ecards", me, key="ec-1")
    assert api.send("POST", "/api/v1/patient/ecards", me, key="ec-1").json() == ecard.json()
    assert len(api.get(f"/api/v1/patient/persons/{psn}/cards", me).json()["items"]) == 1

    assert _admit(api, "wechat", connect=(db, keyring, alipay)).status_code == 201
    assert _admit(api, "wechat").status_code == 409  # a new key: a real second admission, refused
    bind = {"payment_institution_id": "wechat", "password_free_limit": "50.00"}
    r1 = api.send("POST", "/api/v1/patient/ecard/bindings", me, bind, key="bind-1")
    r2 = api.send("POST", "/api/v1/patient/ecard/bindings", me, bind, key="bind-1")
    assert r1.status_code == r2.status_code == 201 and r1.json() == r2.json()
    error(api.send("POST", "/api/v1/patient/ecard/bindings", me, {**bind, "password_free_limit": "60.00"}, key="bind-1"), 409,
          "Idempotency-Key")


def test_face_verifier_outages_are_503_in_the_error_shape(api, db, keyring, face_sandbox):
    w = seed(db, keyring)
    psn = w.employee.id
    face_sandbox.state.knobs = face_sandbox.state.knobs.model_copy(update={"error_rate": 1.0})
    r = api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture("赵敏")}, key="k-outage")
    err = error(r, 503, "face_verifier", "face_verifier_sandbox_injected_error")
    assert err["request_id"] and r.headers["Retry-After"] == "5"
    face_sandbox.reset()
    ok = api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture("赵敏")}, key="k-outage")
    assert ok.status_code == 200  # the failed attempt stored nothing under its key
    error(api.send("POST", "/api/v1/admin/persons/nobody/face", OPERATOR, {"capture": capture("赵敏")}), 404, "psn_no")
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": "aGVsbG8="}), 422, "capture", "capture_type")
    gif = base64.b64encode(b"GIF89a" + bytes(64)).decode()
    err = error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": gif}), 422, "capture", "capture_type")
    assert "JPEG或PNG" in err["message_zh"] and "JPEG or PNG" in err["message_en"]
    wide = base64.b64encode(encode_grey([[(x * 3) % 256 for x in range(1500)]] * 16)).decode()
    err = error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": wide}), 422, "capture", "capture_too_large")
    assert "1500×16" in err["message_en"] and "1024" in err["message_zh"]
    bomb = base64.b64encode(png_bomb(40_000, 40_000)).decode()  # 1.6 gigapixels declared in a few hundred bytes
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": bomb}), 422, "capture", "capture_too_large")
    blank = base64.b64encode(encode_grey([[7] * 32] * 32)).decode()
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": blank}), 422, "capture", "bad_capture")

    api.client.app.state.platform.face = FaceVerifier("http://127.0.0.1:9", "k", timeout=0.5)
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture("赵敏")}), 503, "face_verifier",
          "face_verifier_unreachable")
    api.client.app.state.platform.face = None
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture("赵敏")}), 503, "face_verifier",
          "face_verifier_not_configured")


PNG_PHOTO = encode_grey([[(x + y) % 256 for x in range(60)] for y in range(80)])


def test_card_life_cycle_photo_and_progress_over_http(api, db, keyring):
    w = seed(db, keyring)
    psn = w.resident.id
    me = api.login("13800000003")
    r = api.send("POST", f"/api/v1/admin/persons/{psn}/cards", OPERATOR, {"financial": True, "card_no": "Q12345678"})
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["card_no"] == "Q1***5678" and card["status"] == "in_production" and card["production_stage"] == "accepted"
    cid = card["card_id"]
    error(api.send("POST", f"/api/v1/admin/persons/{psn}/cards", OPERATOR, {"financial": True}), 409, "psn_no", "card_exists")

    photo = {"photo": base64.b64encode(PNG_PHOTO).decode()}
    error(api.send("PUT", f"/api/v1/patient/cards/{cid}/photo", me, {"photo": base64.b64encode(b"GIF89a" + bytes(99)).decode()}),
          422, "photo", "photo_type")
    error(api.send("PUT", f"/api/v1/patient/cards/{cid}/photo", me, {"photo": "@@@"}), 422, "photo", "invalid_base64")
    assert api.send("PUT", f"/api/v1/patient/cards/{cid}/photo", me, photo).json()["photo"] is True
    got = api.get(f"/api/v1/patient/cards/{cid}/photo", me)
    assert got.status_code == 200 and got.json()["content_type"] == "image/png" and base64.b64decode(got.json()["photo"]) == PNG_PHOTO

    error(api.send("POST", f"/api/v1/admin/cards/{cid}/production", OPERATOR, {"stage": "ready"}), 409, "stage", "stage_out_of_order")
    error(api.send("POST", f"/api/v1/admin/cards/{cid}/issue", OPERATOR), 409, "card_id", "not_ready")
    for stage in ("printing", "mailed", "ready"):
        assert api.send("POST", f"/api/v1/admin/cards/{cid}/production", OPERATOR, {"stage": stage}).status_code == 200
    error(api.send("PUT", f"/api/v1/patient/cards/{cid}/photo", me, photo), 409, "card_id", "photo_locked")
    mine = api.get(f"/api/v1/patient/persons/{psn}/cards", me).json()["items"][0]
    assert [p["done"] for p in mine["progress"]] == [True, True, True, True] and mine["status"] == "in_production"
    error(api.send("POST", f"/api/v1/patient/cards/{cid}/activation", me), 409, "card_id", "not_issued")
    assert api.send("POST", f"/api/v1/admin/cards/{cid}/issue", OPERATOR).json()["status"] == "issued"
    assert api.send("POST", f"/api/v1/patient/cards/{cid}/activation", me).json()["status"] == "active"
    error(api.send("POST", f"/api/v1/admin/cards/{cid}/replacement", OPERATOR), 409, "card_id", "not_lost")  # in use
    assert api.send("POST", f"/api/v1/patient/cards/{cid}/loss-report", me).json()["status"] == "lost"
    r = api.send("POST", f"/api/v1/admin/cards/{cid}/replacement", OPERATOR)  # 补卡: a new card in production
    assert r.status_code == 201 and (r.json()["status"], r.json()["production_stage"], r.json()["financial"]) == ("in_production", "accepted", True)
    new_id = r.json()["card_id"]
    error(api.send("POST", f"/api/v1/admin/cards/{cid}/replacement", OPERATOR), 409, "card_id", "already_replaced")
    r = api.send("POST", f"/api/v1/patient/cards/{cid}/cancellation", me)
    assert r.json()["status"] == "cancelled"
    assert [e["event"] for e in r.json()["events"]] == ["created", "photo_uploaded", "stage_printing", "stage_mailed", "stage_ready",
                                                         "issued", "activated", "loss_reported", "replaced", "cancelled"]
    listed = {c["card_id"]: c["status"] for c in api.get(f"/api/v1/admin/persons/{psn}/cards", OPERATOR).json()["items"]}
    assert listed == {cid: "cancelled", new_id: "in_production"}
    # no clear card number anywhere in what the holder sees
    assert "Q12345678" not in api.get(f"/api/v1/patient/persons/{psn}/cards", me).text


def test_guardian_links_a_child_and_sees_the_checklist(api, db, keyring, face_sandbox, alipay):
    w = seed(db, keyring, balance=600000)
    child = enrol_child(db, keyring, w.employee.id)
    active_card(db, keyring, child.id, card_no="CHILD0001")
    guardian = authenticated_ecard(api, w, 1, "13800000001", "张伟")
    link = {"card_no": "CHILD0001", "child_name": "小明"}
    err = error(api.send("POST", "/api/v1/patient/family/child-cards", guardian, link), 403, "conditions", "guardian_conditions_not_met")
    assert "条件2" in err["message_zh"] and "condition 2 not met" in err["message_en"] and "条件1" not in err["message_zh"]
    error(api.get(f"/api/v1/patient/family/children/{child.id}/checklist", guardian), 404, "psn_no")

    assert _admit(api, "wechat", connect=(db, keyring, alipay)).status_code == 201
    api.send("POST", "/api/v1/patient/ecard/bindings", guardian, {"payment_institution_id": "wechat"})
    error(api.send("POST", "/api/v1/patient/family/child-cards", guardian, {**link, "child_name": "小红"}), 404, "card_no")
    r = api.send("POST", "/api/v1/patient/family/child-cards", guardian, link, key="link-1")
    assert r.status_code == 201 and r.json()["child_psn_no"] == child.id
    assert api.send("POST", "/api/v1/patient/family/child-cards", guardian, link, key="link-1").json() == r.json()
    error(api.send("POST", "/api/v1/patient/family/child-cards", guardian, link), 409, "relation", "already_linked")

    r = api.send("POST", f"/api/v1/patient/family/children/{child.id}/family-account", guardian)
    assert r.status_code == 201 and r.json()["allowed"] is True
    check = api.get(f"/api/v1/patient/family/children/{child.id}/checklist", guardian).json()
    assert [(c["number"], c["met"]) for c in check["conditions"]] == [(1, True), (2, True), (3, True), (4, True), (5, True)]
    assert (check["conditions"][4]["threshold"], check["conditions"][4]["balance"]) == ("5008.80", "6000.00")
    cards = api.get(f"/api/v1/patient/persons/{child.id}/cards", guardian).json()["items"]
    assert cards[0]["card_no"] == "CH***0001"
    family = api.get("/api/v1/patient/family", guardian).json()["items"]
    # the guardian's own child, in full to the guardian (who typed the name); the child's view of the guardian stays masked
    assert {(f["relation"], f["other_psn_no"], f["other_name"]) for f in family} == {("child_card", child.id, "小明"), ("guardian", child.id, "小明")}

    # another family's holder sees none of it
    other = api.login("13800000002")
    for path in (f"/api/v1/patient/persons/{child.id}/cards", f"/api/v1/patient/family/children/{child.id}/checklist",
                 f"/api/v1/patient/persons/{child.id}/account", f"/api/v1/patient/persons/{w.employee.id}/account",
                 f"/api/v1/patient/persons/{w.employee.id}/cards"):
        error(api.get(path, other), 404, "psn_no")
    ecard_id = next(c["card_id"] for c in api.get(f"/api/v1/patient/persons/{w.employee.id}/cards", guardian).json()["items"])
    error(api.send("POST", f"/api/v1/patient/cards/{ecard_id}/cancellation", other), 404, "card_id")
    error(api.get(f"/api/v1/patient/cards/{ecard_id}/photo", other), 404, "card_id")
    error(api.send("POST", f"/api/v1/patient/family/children/{child.id}/family-account", other), 404, "psn_no")


def test_mutual_aid_grant_revoke_and_visibility(api, db, keyring):
    w = seed(db, keyring)
    holder, relative = api.login("13800000001"), api.login("13800000003")
    grant = {"relation": "parent", "id_number": id_number_of(3), "name": name_of(3)}
    error(api.send("POST", "/api/v1/patient/family/mutual-aid", holder, {**grant, "name": "别人"}), 404, "id_number", "no_matching_person")
    error(api.send("POST", "/api/v1/patient/family/mutual-aid", holder, {**grant, "relation": "cousin"}), 422, "relation")
    error(api.get(f"/api/v1/patient/persons/{w.employee.id}/account", relative), 404, "psn_no")
    r = api.send("POST", "/api/v1/patient/family/mutual-aid", holder, grant)
    assert r.status_code == 201 and r.json() == {"holder_psn_no": w.employee.id, "member_psn_no": w.resident.id, "relation": "parent",
                                                 "name": "测**", "status": "active"}
    assert id_number_of(3) not in r.text
    # a grant lets the relative's bills use the account; it does not let the relative read it
    error(api.get(f"/api/v1/patient/persons/{w.employee.id}/account", relative), 404, "psn_no")
    r = api.send("DELETE", f"/api/v1/patient/family/mutual-aid/{w.resident.id}", holder)
    assert r.status_code == 200 and r.json()["status"] == "removed"
    error(api.get(f"/api/v1/patient/persons/{w.employee.id}/account", relative), 404, "psn_no")
    error(api.send("DELETE", f"/api/v1/patient/family/mutual-aid/{w.resident.id}", holder), 404, "psn_no", "not_granted")


def test_institutions_and_operators_never_reach_patient_endpoints(api, db, keyring):
    w = seed(db, keyring)
    me = api.login("13800000001")
    for auth in ({"Authorization": f"Bearer {w.hospital_credential}"}, OPERATOR, {}):
        for method, path in [("GET", "/api/v1/patient/identity"), ("GET", f"/api/v1/patient/persons/{w.employee.id}/cards"),
                             ("GET", "/api/v1/patient/ecard/bindings"), ("GET", "/api/v1/patient/family"),
                             ("POST", "/api/v1/patient/ecards"), ("POST", "/api/v1/patient/family/mutual-aid")]:
            r = api.send(method, path, auth, {"relation": "spouse", "id_number": id_number_of(2), "name": name_of(2)}) if method == "POST" \
                else api.get(path, auth)
            error(r, 401, "Authorization")
    error(api.send("POST", "/api/v1/admin/payment-institutions", me, {"id": "x1", "region": "440300", "name": "n", "kind": "bank",
                                                                      "admission_ref": "r"}), 401, "Authorization")
    error(api.get("/api/v1/admin/payment-institutions", {"Authorization": f"Bearer {w.hospital_credential}"}), 401, "Authorization")
