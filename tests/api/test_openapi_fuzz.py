"""Schemathesis over the whole OpenAPI document: bad input at every endpoint gets a 4xx naming the
field in the one error shape, never a 500.

The schema is read from the application when the file is collected, so an endpoint added to any
router is fuzzed without touching this file, and `test_every_operation_is_fuzzed` fails if one is
left out. Each case carries valid credentials for its audience (by path prefix) and a fresh
Idempotency-Key on mutating calls, so generated input reaches the handlers; about one case in eight
goes without credentials. Path parameters and `psn_no` in bodies are often swapped for ids that
exist (the seeded people, an open visit, a settlement), so the handlers get past "not found" too.

Bounded: examples and fuzzing phases, positive and negative data, YIBAO_FUZZ_EXAMPLES (default 20)
cases per operation, no deadline, derandomized (the same cases on every run), on SQLite only — the
PostgreSQL half of the suite is covered by the other API tests. For a deeper local run:
`YIBAO_FUZZ_EXAMPLES=200 YIBAO_FUZZ_COVERAGE=1 pytest tests/api/test_openapi_fuzz.py` (adds the
coverage phase: every boundary value of every schema, a few hundred cases per operation).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import content_type_conformance, negative_data_rejection
from starlette.testclient import TestClient

from tests.support.db import Clock
from tests.support.identity import ecard, id_number_of, name_of
from tests.support.presence import PIN, card_with_pin
from tests.support.world import World, seed
from yibao.app import create_app
from yibao.crypto.pii import Keyring
from yibao.services.payments import paycodes
from yibao.store.db import Database

MAX_EXAMPLES = int(os.environ.get("YIBAO_FUZZ_EXAMPLES", "20"))
PHASES = ["examples", "fuzzing"] + (["coverage"] if os.environ.get("YIBAO_FUZZ_COVERAGE") == "1" else [])
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
KEYRING = Keyring(bytes(range(32)))
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _bare_app():
    """An app to read the OpenAPI document and routes from; nothing touches its (in-memory) database."""
    return create_app(Database("sqlite://"), keyring=KEYRING, demo=True)


schema = schemathesis.openapi.from_asgi("/openapi.json", _bare_app())
# Credentials are ours to send (see _prepare), not generated: the fuzzer varies the input, not the token.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES,
                                deterministic=True, database="none", with_security_parameters=False)
schema.config.phases.update(phases=PHASES)


# ---------------------------------------------------------------------------------------------------
# The application under test: one SQLite database for the whole file, seeded once.

LINES = [
    {"feedetl_sn": "1", "medins_list_codg": "A001", "name": "诊查费", "unit_price": "300.00", "quantity": "1"},
    {"feedetl_sn": "2", "medins_list_codg": "XB01", "name": "头孢克肟胶囊", "unit_price": "12.50", "quantity": "2", "prescription": True, "prescriber": "D0042"},
]


@dataclass
class Fuzz:
    app: Any
    world: World
    tokens: dict[str, str]  # path prefix -> bearer token
    known: dict[str, list[Any]]  # parameter name -> values that exist
    fuzzed: Counter = field(default_factory=Counter)  # (method, path) -> cases sent


def _login(client: TestClient, phone: str, outbox: Any) -> str:
    assert client.post("/api/v1/patient/sms-codes", json={"phone": phone}).status_code == 200
    texts = [m["text"] for m in outbox.sent_to(phone)]  # the sandbox SMS gateway's memory: what it sent
    code = re.search(r"(\d{6})", texts[0]).group(1)
    r = client.post("/api/v1/patient/sessions", json={"phone": phone, "code": code})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _visit(client: TestClient, his: dict[str, str], person_id: str, settle: bool, card_no: str | None = None) -> dict[str, str]:
    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(path, json=body, headers={**his, "Idempotency-Key": uuid.uuid4().hex})
        assert r.status_code in (200, 201), r.text
        return r.json()

    vid = post("/api/v1/his/visits", {"psn_no": person_id, "kind": "outpatient"})["mdtrt_id"]
    post(f"/api/v1/his/visits/{vid}/fee-lines", {"lines": LINES})
    if not settle:
        return {"mdtrt_id": vid}
    post("/api/v1/his/card-presentations", {"card_no": card_no, "pin": PIN, "mdtrt_id": vid})  # the holder present, for the account
    return post(f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}})


def _face_verifier():
    """The sandbox face verifier, reached in-process (no socket): face checks answer as they would in
    the demo instead of 503 "no verifier configured"."""
    import httpx

    from yibao.face import FaceVerifier
    from yibao.sandbox.face import create_app as face_sandbox

    key = "fuzz-face-key"
    return FaceVerifier("http://face-sandbox", key, transport=httpx.ASGITransport(app=face_sandbox(key, seed=7)))


def _sms_gateway() -> tuple[Any, Any]:
    """The sandbox SMS gateway, reached in-process (no socket), and its memory (what it sent): log-in codes go out
    as they would in the demo instead of 503 "no SMS gateway configured"."""
    import httpx

    from yibao.sandbox.sms import create_app as sms_sandbox
    from yibao.sms import SmsGateway

    key = "fuzz-sms-key"
    sandbox = sms_sandbox(key, seed=7)
    return SmsGateway("http://sms-sandbox", key, transport=httpx.ASGITransport(app=sandbox)), sandbox.state.sandbox


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/yibao-fuzz.db", clock=Clock())
    db.create_all()
    world = seed(db, KEYRING)
    # The logged-in holder has an e-card, so payment codes are issued and drawn (the SVG answers are checked).
    ecard(db, KEYRING, world.employee.id, name_of(1), id_number_of(1))
    db.run(lambda c: paycodes.issue(c, KEYRING, db.clock(), holder_id=world.employee.id, actor="fuzz"))  # the clock stands still: it stays live
    gateway, outbox = _sms_gateway()
    app = create_app(db, keyring=KEYRING, demo=True, face_verifier=_face_verifier(), sms_gateway=gateway)
    his = {"Authorization": f"Bearer {world.hospital_credential}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        patient = _login(client, world.phones["employee"], outbox)
        open_visit = _visit(client, his, world.employee.id, settle=False)
        settled = _visit(client, his, world.retiree.id, settle=True, card_no=card_with_pin(db, KEYRING, world.retiree.id))
    tokens = {"/api/v1/his/": world.hospital_credential, "/api/v1/patient/": patient, "/api/v1/admin/": "demo-operator-token"}
    known = {"psn_no": [world.employee.id, world.retiree.id, world.resident.id],
             "visit_id": [open_visit["mdtrt_id"], settled["mdtrt_id"]], "setl_id": [settled["setl_id"]],
             "feedetl_sn": ["1", "2"], "year": [2026], "month": [11], "omsgid": [settled["msgid"]]}
    yield Fuzz(app=app, world=world, tokens=tokens, known=known)
    db.dispose()


# ---------------------------------------------------------------------------------------------------
# What every response must satisfy, besides schemathesis's own checks


ERROR_KEYS = {"code", "field", "message_zh", "message_en", "request_id"}
ROUTE_LEVEL = {401, 404, 405}  # no such route / method, or no credentials: the only 4xx that may name no field


def _header(response, name: str) -> str:  # noqa: ANN001
    value = response.headers.get(name.lower()) or response.headers.get(name) or ""
    return value[0] if isinstance(value, list) else value


@schemathesis.check
def yibao_error_shape(ctx, response, case) -> bool | None:  # noqa: ANN001, ARG001
    """Every response is JSON (or a 2xx in a media type its operation documents, e.g. an SVG image, which
    must then parse); every 4xx is {"error": {code, field, message_zh, message_en, request_id}}
    with a code and both messages, and names the field unless the failure is at the route level."""
    if response.status_code in (204, 304):
        return None
    ctype = _header(response, "content-type")
    documented = case.operation.definition.raw.get("responses", {}).get(str(response.status_code), {}).get("content", {})
    media = ctype.split(";")[0].strip()
    if 200 <= response.status_code < 300 and media in documented and media != "application/json":
        if media == "image/svg+xml":
            assert ET.fromstring(response.content).tag == "{http://www.w3.org/2000/svg}svg", "an SVG response that is not SVG"
        return None
    assert ctype.startswith("application/json"), f"{response.status_code} with content-type {ctype!r}, not JSON"
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} with a body that is not JSON: {response.text[:200]!r}") from exc
    if 400 <= response.status_code < 500:
        assert isinstance(body, dict) and set(body) == {"error"}, f"{response.status_code} not in the error shape: {body!r}"
        err = body["error"]
        assert isinstance(err, dict) and set(err) - {"details"} == ERROR_KEYS, f"error keys are not {sorted(ERROR_KEYS)}: {body!r}"
        for part in err.get("details", []):  # a refusal of many parts (a benefit batch's rows): each in the shape, by row
            assert set(part) == {"row", "field", "code", "message_zh", "message_en"} and part["message_zh"] and part["message_en"], body
        assert all(isinstance(err[k], str) for k in ERROR_KEYS), f"an error member is not a string: {body!r}"
        for key in ("code", "message_zh", "message_en", "request_id"):
            assert err[key].strip(), f"error.{key} is empty: {body!r}"
        if response.status_code not in ROUTE_LEVEL:
            assert err["field"].strip(), f"a {response.status_code} must name the field: {body!r}"
    return None


CHECKS = [not_a_server_error, content_type_conformance, negative_data_rejection, yibao_error_shape]


# ---------------------------------------------------------------------------------------------------
# Credentials, idempotency keys and ids that exist


def _valid_key(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 100 and value.isascii() and value.isprintable()


def _prepare(case, fuzz: Fuzz) -> None:  # noqa: ANN001
    """Make a generated case reach the handler. Choices hang off a digest of the generated case, so a
    derandomized run sends the same requests every time (bar the fresh Idempotency-Keys)."""
    digest = hashlib.sha256(repr((case.method, case.path, case.path_parameters, case.query, case.body)).encode()).digest()
    meta = case.meta
    headers = dict(case.headers or {})

    token = next((t for prefix, t in fuzz.tokens.items() if case.path.startswith(prefix)), None)
    if token and digest[0] % 8:
        headers["Authorization"] = f"Bearer {token}"
    if case.method.upper() in MUTATING:
        # A fresh key for a valid generated one: the same body twice is then not a replay. A key the
        # fuzzer broke on purpose (empty, too long) stays broken.
        name = next((h for h in headers if h.lower() == "idempotency-key"), None)
        if name is not None and _valid_key(headers[name]):
            headers[name] = uuid.uuid4().hex
    case.headers = headers

    # Swap valid generated ids for ones that exist, in about half the cases; never touch a component
    # the fuzzer made invalid on purpose (its check expects a 4xx for that).
    if digest[1] % 2 and case.path_parameters and not (meta and meta.is_negative_at(ParameterLocation.PATH)):
        for i, name in enumerate(sorted(case.path_parameters)):
            if fuzz.known.get(name):
                values = fuzz.known[name]
                case.path_parameters[name] = values[digest[2 + i] % len(values)]
    if digest[1] % 2 and isinstance(case.body, dict) and not (meta and meta.is_negative_at(ParameterLocation.BODY)):
        for name in ("psn_no", "omsgid"):
            if isinstance(case.body.get(name), str) and fuzz.known.get(name):
                case.body[name] = fuzz.known[name][digest[8] % len(fuzz.known[name])]


# ---------------------------------------------------------------------------------------------------
# The fuzz run: one test per operation


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_openapi_fuzz(case, fuzz):  # noqa: ANN001
    _prepare(case, fuzz)
    response = case.call(app=fuzz.app)
    fuzz.fuzzed[(case.operation.method.upper(), case.operation.path)] += 1
    case.validate_response(response, checks=CHECKS)


def _documented(app) -> set[tuple[str, str]]:  # noqa: ANN001
    return {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops if m in HTTP_METHODS}


def test_every_operation_is_fuzzed(fuzz, request):
    """The fuzz run covers every path x method of the OpenAPI document, and every API route is in it."""
    app = _bare_app()
    documented = _documented(app)
    parametrized = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert parametrized == documented
    routes = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/api/") for m in r.methods}
    assert routes <= documented, f"API routes left out of the OpenAPI document: {sorted(routes - documented)}"
    selected = {item.operation_label for item in request.session.items
                if getattr(item, "originalname", None) == "test_openapi_fuzz" and getattr(item, "operation_label", None)}
    if len(selected) < len(documented):
        pytest.skip("only part of the fuzz run was selected")
    assert set(fuzz.fuzzed) == documented, f"never fuzzed: {sorted(documented - set(fuzz.fuzzed))}"
    print(f"fuzzed {len(fuzz.fuzzed)} operations with {sum(fuzz.fuzzed.values())} cases")
