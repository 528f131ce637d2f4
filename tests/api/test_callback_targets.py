"""Hospitals' callbacks go only to public HTTPS addresses (SQLite and PostgreSQL): refused at registration —
http://, loopback, link-local (cloud metadata), private, shared, multicast and unspecified addresses, IPv4 inside
IPv6, a name resolving to any of them, credentials in the URL — each in words naming `url`; and refused again at
every delivery after resolving the name afresh, the connection made to the address checked (DNS rebinding
gains nothing). The tests' loopback endpoint is reached only under the composition root's explicit allowance."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.api import his, key, login
from tests.support.callbacks import HospitalEndpoint
from tests.support.payments import LINES, payment_world
from yibao.app import create_app
from yibao.services import Context
from yibao.services.payments import callbacks as his_callbacks
from yibao.store.tables import callback_deliveries

PUBLIC = "93.184.216.34"
NAMES = {  # what the platform's resolver answers in these tests (other names: the real resolver, e.g. localhost)
    "his.hospital.example": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"],
    "intranet.hospital.example": ["10.20.30.40"],
    "mixed.hospital.example": [PUBLIC, "127.0.0.1"],
    "nowhere.hospital.example": [],
}


@pytest.fixture
def resolver(monkeypatch):
    real = his_callbacks.resolve
    names = dict(NAMES)
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(names[host]) if host in names else await real(host, port)
    monkeypatch.setattr(his_callbacks, "resolve", resolve)
    return names, asked


@pytest.fixture
def pw(db, keyring, wxpay):
    return payment_world(db, keyring, wxpay, limit=0, balance=20000)


def _client(db, keyring, sms_gateway, **kw):  # noqa: ANN001, ANN202
    # The holder logs in by SMS (the sandbox gateway); callbacks follow allow_private_callbacks alone.
    return TestClient(create_app(db, keyring=keyring, sms_gateway=sms_gateway, **kw), raise_server_exceptions=False)


@pytest.fixture
def hospital():
    endpoint = HospitalEndpoint().start()
    yield endpoint
    endpoint.stop()


REFUSED = [
    ("http://127.0.0.1:8000/yibao/callback", "callback_https_required"),
    ("http://his.hospital.example/yibao/callback", "callback_https_required"),
    ("https://127.0.0.1/yibao/callback", "callback_address_not_public"),
    ("https://169.254.169.254/latest/meta-data/", "callback_address_not_public"),
    ("https://10.0.0.8/cb", "callback_address_not_public"),
    ("https://172.16.5.4/cb", "callback_address_not_public"),
    ("https://192.168.1.20/cb", "callback_address_not_public"),
    ("https://100.64.0.1/cb", "callback_address_not_public"),
    ("https://0.0.0.0/cb", "callback_address_not_public"),
    ("https://224.0.0.1/cb", "callback_address_not_public"),
    ("https://[::1]/cb", "callback_address_not_public"),
    ("https://[fe80::1]/cb", "callback_address_not_public"),
    ("https://[fd12:3456::1]/cb", "callback_address_not_public"),
    ("https://[ff02::1]/cb", "callback_address_not_public"),
    ("https://[::]/cb", "callback_address_not_public"),
    ("https://[::ffff:127.0.0.1]/cb", "callback_address_not_public"),
    ("https://[::ffff:a9fe:a9fe]/cb", "callback_address_not_public"),  # 169.254.169.254 inside IPv6
    ("https://[64:ff9b::a00:1]/cb", "callback_address_not_public"),  # 10.0.0.1 through NAT64
    ("https://localhost/yibao/callback", "callback_host_not_public"),  # a name resolving to loopback (/etc/hosts)
    ("https://2130706433/cb", "callback_host_not_public"),  # 127.0.0.1 spelt as a number: resolved, then refused
    (f"https://user:secret@{PUBLIC}/cb", "callback_credentials"),
]
REFUSED_NAMES = [  # through the resolver fixture
    ("https://intranet.hospital.example/cb", "callback_host_not_public"),
    ("https://mixed.hospital.example/cb", "callback_host_not_public"),  # one private address is one too many
    ("https://nowhere.hospital.example/cb", "callback_host_not_public"),
]


def _refused(client, pw, cases) -> None:  # noqa: ANN001
    for url, code in cases:
        r = client.put("/api/v1/his/callback", json={"url": url}, headers={**his(pw), **key()})
        assert r.status_code == 422, (url, r.text)
        error = r.json()["error"]
        assert (error["field"], error["code"]) == ("url", code), url
        assert error["message_zh"] and error["message_en"]
    assert client.get("/api/v1/his/callback", headers=his(pw)).status_code == 404  # nothing was stored


def test_registration_refuses_every_address_but_a_public_https_one(db, keyring, pw):
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:  # production's app
        _refused(client, pw, REFUSED)
        url = f"https://{PUBLIC}/yibao/callback"
        assert client.put("/api/v1/his/callback", json={"url": url}, headers={**his(pw), **key()}).status_code == 200
        assert client.get("/api/v1/his/callback", headers=his(pw)).json()["url"] == url


def test_registration_resolves_a_name_and_refuses_one_reaching_inside(db, keyring, pw, resolver):
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:  # production's app
        _refused(client, pw, REFUSED_NAMES)
        url = "https://his.hospital.example:8443/yibao/callback"
        assert client.put("/api/v1/his/callback", json={"url": url}, headers={**his(pw), **key()}).status_code == 200
        assert client.get("/api/v1/his/callback", headers=his(pw)).json()["url"] == url
    assert resolver[1] == ["intranet.hospital.example", "mixed.hospital.example", "nowhere.hospital.example", "his.hospital.example"]


def _pay_a_bill(client, pw) -> str:  # noqa: ANN001
    visit = client.post("/api/v1/his/visits", json={"psn_no": pw.w.employee.id, "kind": "outpatient"}, headers={**his(pw), **key()})
    visit_id = visit.json()["mdtrt_id"]
    assert client.post(f"/api/v1/his/visits/{visit_id}/fee-lines", json={"lines": LINES}, headers={**his(pw), **key()}).status_code == 200
    bill = client.post(f"/api/v1/his/visits/{visit_id}/bill", headers={**his(pw), **key()}).json()
    me = login(client, pw.w.phones["employee"])
    assert client.post("/api/v1/patient/payment-pin", json={"pin": "246810"}, headers={**me, **key()}).status_code == 200
    paid = client.post(f"/api/v1/patient/bills/{bill['payment_id']}/pay", json={"use_account": True, "pin": "246810"},
                       headers={**me, **key()})
    assert paid.status_code == 200 and paid.json()["status"] == "completed", paid.text
    return bill["payment_id"]


def _delivery(db, payment_id: str):  # noqa: ANN001, ANN202
    return db.run(lambda c: c.execute(select(callback_deliveries).where(callback_deliveries.c.order_id == payment_id)).one(), write=False)


class Recorder:
    """An httpx transport that records what would have been sent and answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)


def test_a_url_registered_under_the_allowance_is_not_delivered_without_it(db, keyring, pw, hospital, sms_gateway):
    with _client(db, keyring, sms_gateway, allow_private_callbacks=True) as client:  # as the tests and the demo run
        assert client.put("/api/v1/his/callback", json={"url": hospital.url}, headers={**his(pw), **key()}).status_code == 200
        hospital.answers = [503]
        payment_id = _pay_a_bill(client, pw)
    assert len(hospital.received) == 1 and _delivery(db, payment_id).status == "pending"
    ctx = Context.for_database(db, keyring)
    later = db.clock()
    for url in (hospital.url, "https://127.0.0.1/yibao/callback", "https://169.254.169.254/latest/meta-data/", "https://10.0.0.8/cb",
                "https://localhost/yibao/callback", f"http://{PUBLIC}/cb"):
        # stored as it would have been under the allowance; then delivered by production, which has none
        db.run(lambda c, url=url: his_callbacks.configure(c, keyring, later, institution=pw.w.hospital, url=url, actor="test",
                                                          allow_private=True))
        later += timedelta(hours=5)  # past any backoff
        recorder = Recorder()
        report = asyncio.run(his_callbacks.deliver_due(ctx.run, keyring, later, transport=recorder.transport))
        assert report == {"delivered": 0, "pending": 1, "failed": 0}, url
        assert recorder.requests == [] and len(hospital.received) == 1, url
        row = _delivery(db, payment_id)
        assert row.status == "pending" and row.last_status is None and row.last_error.startswith("url: "), (url, row.last_error)
    # the same delivery with the allowance goes out: the refusals above were the rule, not a broken path
    db.run(lambda c: his_callbacks.configure(c, keyring, later, institution=pw.w.hospital, url=hospital.url, actor="test",
                                             allow_private=True))
    report = asyncio.run(his_callbacks.deliver_due(ctx.run, keyring, later + timedelta(hours=5), allow_private=True))
    assert report["delivered"] == 1 and len(hospital.received) == 2


def test_the_name_is_resolved_at_each_delivery_and_the_address_checked_is_the_one_connected(db, keyring, pw, resolver, sms_gateway):
    names, asked = resolver
    url = "https://his.hospital.example/yibao/callback?from=yibao"
    with _client(db, keyring, sms_gateway) as client:  # production's rule
        assert client.put("/api/v1/his/callback", json={"url": url}, headers={**his(pw), **key()}).status_code == 200
        names["his.hospital.example"] = ["127.0.0.1"]  # the name now points inside (DNS rebinding)
        payment_id = _pay_a_bill(client, pw)  # the platform delivers at once: refused, nothing sent
    row = _delivery(db, payment_id)
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, None) and "his.hospital.example" in row.last_error
    assert asked.count("his.hospital.example") == 2  # at registration, and again at the delivery

    names["his.hospital.example"] = [PUBLIC]
    recorder = Recorder()
    later = db.clock() + timedelta(hours=1)
    report = asyncio.run(his_callbacks.deliver_due(Context.for_database(db, keyring).run, keyring, later, transport=recorder.transport))
    assert report["delivered"] == 1
    [sent] = recorder.requests
    # connected to the address just checked, never to whatever the name resolves to by the time it connects;
    # the name kept for the Host header and for checking the hospital's TLS certificate
    assert (sent.url.scheme, sent.url.host, sent.url.path, sent.url.query) == ("https", PUBLIC, "/yibao/callback", b"from=yibao")
    assert sent.headers["host"] == "his.hospital.example" and sent.extensions["sni_hostname"] == "his.hospital.example"
