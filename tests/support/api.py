"""Steps over the HTTP API for tests: credentials, idempotency keys, SMS log-in (the code read from the app's
SANDBOX SMS gateway, as a demo visitor reads it), a visit with fee lines,
the holder's path to an e-card with the sandbox face verifier, a face scan at a terminal, and the
error shape. The fixtures that serve the app (``client``, ``api``, ``world``) are in tests/api/conftest.py."""

from __future__ import annotations

import uuid

from starlette.testclient import TestClient

from tests.support.identity import id_number_of, name_of
from tests.support.sms import gateway_of, gateway_url, latest_code
from yibao.sandbox.face_samples import capture

OPERATOR = {"Authorization": "Bearer demo-operator-token"}
CHECKER = {"Authorization": "Bearer demo-checker-token"}  # a second operator: approves what OPERATOR requests (maker-checker)
LIVE = {"method": "structured_light", "score": 0.97}
FACE = "face-of-employee"

LINE = [{"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "300.00", "quantity": "1"}]
LINES = [
    {"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "300.00", "quantity": "1"},
    {"feedetl_sn": "2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D0042"},
]


def his(world, other=False):
    """The HIS credentials of seed()'s hospital (or its other hospital), of a World or a PaymentWorld's."""
    world = getattr(world, "w", world)  # a PaymentWorld carries its World as .w
    return {"Authorization": f"Bearer {world.other_credential if other else world.hospital_credential}"}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def post(client, path, body, headers):
    return client.post(path, json=body, headers={**headers, **key()})


def open_visit(client, world, person, kind="outpatient", lines=LINES):
    """A visit of ``person`` opened by seed()'s hospital, with ``lines``: its id."""
    r = post(client, "/api/v1/his/visits", {"psn_no": person.id, "kind": kind}, his(world))
    assert r.status_code == 201, r.text
    visit = r.json()
    r = post(client, f"/api/v1/his/visits/{visit['mdtrt_id']}/fee-lines", {"lines": lines}, his(world))
    assert r.status_code == 200, r.text
    return visit["mdtrt_id"]


def visit(client, credential, psn_no):
    """An outpatient visit opened, with one fee line, by the institution whose credential this is."""
    v = post(client, "/api/v1/his/visits", {"psn_no": psn_no, "kind": "outpatient"}, bearer(credential)).json()["mdtrt_id"]
    assert post(client, f"/api/v1/his/visits/{v}/fee-lines", {"lines": LINE}, bearer(credential)).status_code == 200
    return v


def login(client, phone: str) -> dict[str, str]:
    """Ask for a code, read it where the app's SMS gateway (the sandbox) keeps what it sent, log in."""
    r = client.post("/api/v1/patient/sms-codes", json={"phone": phone})
    assert r.status_code == 200, r.text
    code = latest_code(gateway_of(client), phone)
    r = client.post("/api/v1/patient/sessions", json={"phone": phone, "code": code})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def login(self, phone: str) -> dict[str, str]:
        r = self.client.post("/api/v1/patient/sms-codes", json={"phone": phone})
        assert r.status_code == 200, r.text
        r = self.client.post("/api/v1/patient/sessions", json={"phone": phone, "code": latest_code(gateway_url(self.client.app), phone)})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def send(self, method: str, path: str, auth: dict[str, str], body=None, key: str | None = None):  # noqa: ANN001, ANN201
        headers = {**auth, "Idempotency-Key": key or uuid.uuid4().hex}
        return self.client.request(method, path, headers=headers, json=body)

    def get(self, path: str, auth: dict[str, str]):  # noqa: ANN201
        return self.client.get(path, headers=auth)


def error(r, status: int, field: str, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["message_zh"] and err["message_en"]
    if code:
        assert err["code"] == code
    return err


def authenticated_ecard(api: Api, world, n: int, phone: str, face: str) -> dict[str, str]:
    """Enrol the face (agency), log in, real name, real person, e-card: the holder's session."""
    psn = getattr(world, {1: "employee", 2: "retiree"}[n]).id
    assert api.send("POST", f"/api/v1/admin/persons/{psn}/face", OPERATOR, {"capture": capture(face)}).status_code == 200
    me = api.login(phone)
    assert api.send("POST", "/api/v1/patient/identity/real-name", me, {"name": name_of(n), "id_number": id_number_of(n)}).status_code == 200
    r = api.send("POST", "/api/v1/patient/identity/real-person", me, {"capture": capture(face, day=3), "liveness": LIVE})
    assert r.status_code == 200, r.text
    assert api.send("POST", "/api/v1/patient/ecards", me).status_code == 201
    return me


def scan_face(api, world, psn_no: str, face: str, *, payer: str | None = None, score: float = 0.97, day: int = 5):  # noqa: ANN001, ANN202
    """A face authorization asked for at the hospital's terminal FACE-01."""
    body = {"psn_no": psn_no, "capture": capture(face, day=day), "liveness": {**LIVE, "score": score}, "terminal_id": "FACE-01"}
    if payer:
        body["payer_psn_no"] = payer
    return api.send("POST", "/api/v1/his/face-authorizations", his(world), body)
