"""Real-name log-in (实名登录) over HTTP: name, ID number and a live face against the enrolled one,
with the sandbox face verifier as a real loopback server. Both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.support.api import LIVE, OPERATOR, Api
from tests.support.identity import id_number_of, name_of
from tests.support.world import seed
from yibao.sandbox.face_samples import capture
from yibao.store.tables import face_logins, sessions

URL = "/api/v1/patient/sessions/real-name"


def _login(api: Api, *, n: int = 1, name: str | None = None, id_number: str | None = None, face: str = "张伟", day: int = 2,
           score: float = 0.97):  # noqa: ANN202
    return api.client.post(URL, json={"id_number": id_number or id_number_of(n), "name": name or name_of(n),
                                      "capture": capture(face, day=day), "liveness": {**LIVE, "score": score}})


def _count(db, table) -> int:  # noqa: ANN001
    return db.run(lambda c: c.execute(select(func.count()).select_from(table)).scalar())


def test_name_number_and_face_open_a_session_and_failures_lock(api, db, keyring, face_sandbox):
    w = seed(db, keyring)
    refused = "real_name_login_failed"
    r = _login(api)  # no face enrolled yet: said so (after the name and number matched)
    assert r.status_code == 409 and r.json()["error"]["code"] == "face_not_enrolled"
    assert api.send("POST", f"/api/v1/admin/persons/{w.employee.id}/face", OPERATOR, {"capture": capture("张伟")}).status_code == 200

    ok = _login(api)
    assert ok.status_code == 201, ok.text
    me = {"Authorization": f"Bearer {ok.json()['token']}"}
    assert api.get("/api/v1/patient/me", me).json()["psn_no"] == w.employee.id

    # An ID number nobody has: refused in the same words as a wrong name, and nothing is counted.
    before = _count(db, face_logins)
    nobody = _login(api, id_number=id_number_of(7))
    wrong_name = _login(api, name="王五")
    assert nobody.status_code == wrong_name.status_code == 401
    assert nobody.json()["error"]["code"] == wrong_name.json()["error"]["code"] == refused
    assert nobody.json()["error"]["message_zh"] == wrong_name.json()["error"]["message_zh"]
    assert _count(db, face_logins) == before + 1
    assert _login(api, id_number="123").status_code == 422  # malformed: an input error naming the field

    sessions_before = _count(db, sessions)
    assert _login(api, face="李娜").json()["error"]["code"] == refused  # someone else's face
    # Set-up changed with issue 11 (point 5): liveness is the verifier's finding from the capture, not the caller's
    # score — the photo is the enrolment image itself (day 0).
    locked = _login(api, day=0)  # third failure (a photo: liveness fails) → the fourth try is locked
    assert locked.json()["error"]["code"] == refused
    r = _login(api)
    assert r.status_code == 429 and r.json()["error"]["code"] == "real_name_login_locked"
    assert int(r.headers["Retry-After"]) > 0
    assert _count(db, sessions) == sessions_before  # no session from any of those

    db.clock.advance(minutes=11)  # the window passes
    assert _login(api).status_code == 201
    assert api.login("13800000001")  # the SMS code was never locked


def test_without_a_face_verifier_nothing_is_checked_counted_or_audited(db, keyring, monkeypatch):
    """No verifier configured: 503 for every attempt, right or wrong name alike — the answer must not tell whether a
    name belongs to an ID number, and nothing is counted toward a lock-out or written to the audit log."""
    from starlette.testclient import TestClient

    from yibao.app import create_app
    from yibao.store.tables import audit_log

    monkeypatch.delenv("YIBAO_FACE_URL", raising=False)
    seed(db, keyring)
    before = db.run(lambda c: c.execute(select(func.count()).select_from(audit_log)).scalar(), write=False)
    with TestClient(create_app(db, keyring=keyring, demo=True), raise_server_exceptions=False) as client:
        answers = [client.post(URL, json={"id_number": id_number_of(1), "name": name, "capture": capture("张伟", day=2),
                                          "liveness": {"method": "structured_light", "score": 0.97}}) for name in (name_of(1), "王五", "王五", "王五", name_of(1))]
    assert {(r.status_code, r.json()["error"]["code"]) for r in answers} == {(503, "face_verifier_not_configured")}
    assert db.run(lambda c: c.execute(select(func.count()).select_from(face_logins)).scalar(), write=False) == 0
    assert db.run(lambda c: c.execute(select(func.count()).select_from(audit_log)).scalar(), write=False) == before
