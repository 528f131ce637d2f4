"""Face payment over HTTP (SQLite and PostgreSQL), issue 11, points 4 and 5: failed face checks are limited per
PERSON across hospitals (three per hospital made fifteen across five), and liveness is the verifier's finding
from the capture — a hospital claiming `liveness.score 0.99` for the enrolment photo is refused."""

from __future__ import annotations

from tests.support.api import FACE, LIVE, authenticated_ecard, error, his, scan_face
from tests.support.world import seed
from yibao.sandbox.face_samples import capture


def _scan_at(api, credential: str, psn_no: str, face_capture: str, liveness=None):  # noqa: ANN001, ANN202
    body = {"psn_no": psn_no, "capture": face_capture, "terminal_id": "FACE-09"}
    if liveness is not None:
        body["liveness"] = liveness
    return api.send("POST", "/api/v1/his/face-authorizations", {"Authorization": f"Bearer {credential}"}, body)


def test_failed_face_checks_count_per_person_across_hospitals(api, db, keyring, clock, face_sandbox):
    w = seed(db, keyring)
    authenticated_ecard(api, w, 1, w.phones["employee"], FACE)
    pharmacy = f"{w.pharmacy.id}.pharmacy-secret"
    other = capture("someone-else", day=4)
    first = error(_scan_at(api, w.hospital_credential, w.employee.id, other, LIVE), 403, "capture", "face_mismatch")
    second = error(_scan_at(api, w.other_credential, w.employee.id, other, LIVE), 403, "capture", "face_mismatch")
    third = error(_scan_at(api, pharmacy, w.employee.id, other, LIVE), 403, "capture", "face_mismatch")
    assert "2 more tries" in first["message_en"] and "1 more tries" in second["message_en"] and "payment code" in third["message_en"]
    # One failure at each of three institutions: the person is locked at every one of them, even with the right face.
    for credential in (w.hospital_credential, w.other_credential, pharmacy):
        r = _scan_at(api, credential, w.employee.id, capture(FACE, day=5), LIVE)
        error(r, 429, "capture", "face_attempts_exhausted")
        assert int(r.headers["Retry-After"]) > 0
    clock.advance(minutes=10, seconds=1)
    assert _scan_at(api, w.other_credential, w.employee.id, capture(FACE, day=5), LIVE).status_code == 201


def test_a_hospital_claiming_liveness_for_the_enrolment_photo_is_refused(api, db, keyring, face_sandbox):
    w = seed(db, keyring)
    authenticated_ecard(api, w, 1, w.phones["employee"], FACE)  # the agency enrolled capture(FACE): day 0
    claim = {"method": "structured_light", "score": 0.99}
    error(scan_face(api, w, w.employee.id, FACE, score=0.99, day=0), 403, "liveness", "liveness_failed")  # the enrolment photo itself
    from yibao.sandbox.face_samples import reshot

    error(_scan_at(api, w.hospital_credential, w.employee.id, reshot(FACE), claim), 403, "liveness", "liveness_failed")  # re-shot
    # A live capture passes whatever the terminal claims, or without a claim at all: the verifier decides.
    assert _scan_at(api, w.hospital_credential, w.employee.id, capture(FACE, day=6), {"method": "tof", "score": 0.01}).status_code == 201
    assert _scan_at(api, w.hospital_credential, w.employee.id, capture(FACE, day=7)).status_code == 201
    assert his(w)  # the hospital's own credential throughout


def test_real_person_and_real_name_log_in_refuse_the_enrolment_photo_whatever_is_claimed(api, db, keyring, face_sandbox):
    w = seed(db, keyring)
    me = authenticated_ecard(api, w, 1, w.phones["employee"], FACE)
    error(api.send("POST", "/api/v1/patient/identity/real-person", me, {"capture": capture(FACE), "liveness": {**LIVE, "score": 1.0}}),
          403, "liveness", "liveness_failed")
    from tests.support.identity import id_number_of, name_of
    from yibao.sandbox.face_samples import reshot

    r = api.client.post("/api/v1/patient/sessions/real-name", json={"id_number": id_number_of(1), "name": name_of(1),
                                                                   "capture": reshot(FACE), "liveness": {**LIVE, "score": 1.0}})
    error(r, 401, "credentials", "real_name_login_failed")
    r = api.client.post("/api/v1/patient/sessions/real-name", json={"id_number": id_number_of(1), "name": name_of(1),
                                                                   "capture": capture(FACE, day=8)})
    assert r.status_code == 201, r.text
