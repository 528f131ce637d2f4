"""SMS log-in codes (issue 11, points 3 and 4), over HTTP on SQLite and PostgreSQL, against the SANDBOX SMS
gateway on loopback: a code is stored only as a keyed hash and exists nowhere in the platform's database in
clear; operators have no outbox to read; without a gateway the log-in says SMS is unavailable; and guessing is
limited per phone (sends, and wrong codes across codes: a lock-out) and per client address — each refusal in
words, with Retry-After."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, select

from tests.support.api import OPERATOR
from tests.support.sms import gateway_url, latest_code, texts_to
from yibao.app import create_app
from yibao.store.tables import metadata, sms_codes

SEND, LOG_IN = "/api/v1/patient/sms-codes", "/api/v1/patient/sessions"


def from_address(address: str) -> dict[str, str]:
    """A request relayed by the trusted proxy (the test client, see `proxied`) for a client at ``address``."""
    return {"X-Forwarded-For": address}


@pytest.fixture
def proxied(monkeypatch):
    """The test client stands for a reverse proxy the deployment trusts: the client's address is then the one it
    appends to X-Forwarded-For (runtime/clients.py)."""
    monkeypatch.setenv("YIBAO_TRUSTED_PROXIES", "testclient")


def refused(r, status: int, field: str, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["field"], err["code"]) == (field, code), err
    assert err["message_zh"] and err["message_en"]
    return err


def locked(r, field: str, code: str) -> int:
    refused(r, 429, field, code)
    wait = int(r.headers["Retry-After"])
    assert wait > 0
    return wait


def test_a_code_is_stored_only_as_a_keyed_hash_and_nowhere_in_clear(client, world, db):
    phone = world.phones["employee"]
    assert client.post(SEND, json={"phone": phone}).status_code == 200
    code = latest_code(gateway_url(client.app), phone)
    stored = db.run(lambda c: c.execute(select(sms_codes.c.code_hash)).scalars().all(), write=False)
    assert len(stored) == 1
    # Six digits are a million tries for an unkeyed hash: none of them gives the stored one (it did: SHA-256 of the code).
    assert not any(hashlib.sha256(f"{n:06d}".encode()).hexdigest() == stored[0] for n in range(10**6))
    # No text column of any table of the platform holds the code (the sandbox outbox table held the whole message).
    def scan(conn) -> list[str]:  # noqa: ANN001
        found = []
        for table in metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, (String, Text)):
                    hits = conn.execute(select(column).where(column.contains(code))).scalars().all()
                    found += [f"{table.name}.{column.name}" for _ in hits]
        return found
    assert db.run(scan, write=False) == []
    r = client.post(LOG_IN, json={"phone": phone, "code": code})
    assert r.status_code == 201, r.text


def test_operators_have_no_outbox_to_read_codes_from(client, world):
    phone = world.phones["employee"]
    assert client.post(SEND, json={"phone": phone}).status_code == 200
    r = client.get("/api/v1/admin/sandbox/sms", headers=OPERATOR)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "/api/v1/admin/sandbox/sms" not in client.get("/openapi.json").json()["paths"]
    assert texts_to(gateway_url(client.app), phone)  # the code went out: only the gateway has it


def test_without_a_gateway_the_log_in_says_sms_is_unavailable(db, keyring, world, monkeypatch):
    monkeypatch.delenv("YIBAO_SMS_URL", raising=False)
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as bare:
        r = bare.post(SEND, json={"phone": world.phones["employee"]})
    err = refused(r, 503, "sms_gateway", "sms_gateway_not_configured")
    assert "短信" in err["message_zh"] and "SMS" in err["message_en"]
    assert int(r.headers["Retry-After"]) > 0


def test_a_gateway_that_is_down_is_said_and_sends_nothing(client, world, sms_sandbox):
    sms_sandbox.state.knobs = sms_sandbox.state.knobs.model_copy(update={"error_rate": 1.0})
    r = client.post(SEND, json={"phone": world.phones["employee"]})
    refused(r, 503, "sms_gateway", "sms_gateway_sandbox_injected_error")
    assert int(r.headers["Retry-After"]) > 0


def test_wrong_codes_are_counted_per_phone_across_codes_then_the_phone_is_locked(client, world, clock, proxied):
    """Five tries per code used to be the only limit, and a new code came every 30 s (~1.4 % of phones a day)."""
    phone = world.phones["employee"]
    url = gateway_url(client.app)
    answers = []
    for round_ in range(2):  # two codes, five wrong tries each, from ten different addresses
        clock.advance(seconds=31)
        assert client.post(SEND, json={"phone": phone}, headers=from_address(f"10.0.{round_}.1")).status_code == 200
        code = latest_code(url, phone)
        wrong = "000000" if code != "000000" else "111111"
        for i in range(5):
            answers.append(client.post(LOG_IN, json={"phone": phone, "code": wrong}, headers=from_address(f"10.0.{round_}.{10 + i}")))
    assert [r.json()["error"]["code"] for r in answers[:-1]] == ["code_wrong"] * 9
    wait = locked(answers[-1], "code", "sms_code_locked")
    assert wait > 3600  # the tenth wrong code within a day locks the number's SMS log-in for most of that day
    # Locked: a new code is refused, and so is the right code of the last one — from any address.
    clock.advance(seconds=31)
    locked(client.post(SEND, json={"phone": phone}, headers=from_address("10.9.9.9")), "code", "sms_code_locked")
    locked(client.post(LOG_IN, json={"phone": phone, "code": code}, headers=from_address("10.9.9.8")), "code", "sms_code_locked")
    # The other numbers are not concerned; once the window has passed, this one logs in again.
    other = world.phones["retiree"]
    assert client.post(SEND, json={"phone": other}).status_code == 200
    assert client.post(LOG_IN, json={"phone": other, "code": latest_code(url, other)}).status_code == 201
    clock.advance(hours=24)
    assert client.post(SEND, json={"phone": phone}).status_code == 200
    assert client.post(LOG_IN, json={"phone": phone, "code": latest_code(url, phone)}).status_code == 201


def test_a_right_code_ends_the_phones_count(client, world, clock):
    phone = world.phones["employee"]
    url = gateway_url(client.app)
    for _ in range(4):  # twelve wrong codes (the lock is at ten), each round ended by the right one: never locked
        clock.advance(seconds=31)
        assert client.post(SEND, json={"phone": phone}).status_code == 200
        code = latest_code(url, phone)
        for _ in range(3):
            refused(client.post(LOG_IN, json={"phone": phone, "code": "000000" if code != "000000" else "111111"}), 401, "code", "code_wrong")
        assert client.post(LOG_IN, json={"phone": phone, "code": code}).status_code == 201


def test_codes_asked_for_are_limited_per_phone_enrolled_or_not(client, world, clock, proxied):
    for phone in (world.phones["employee"], "13912345678"):  # enrolled, and not: the same answers
        answers = []
        for i in range(6):
            clock.advance(seconds=31)
            answers.append(client.post(SEND, json={"phone": phone}, headers=from_address(f"10.1.{i}.1")))
        assert [r.status_code for r in answers[:5]] == [200] * 5
        wait = locked(answers[5], "phone", "sms_send_limited")
        assert wait <= 3600
        # within 30 s of the last code, a repeat is answered as sent and sends nothing
    assert len(texts_to(gateway_url(client.app), world.phones["employee"])) == 5
    phone = world.phones["retiree"]
    clock.advance(seconds=31)
    assert client.post(SEND, json={"phone": phone}).status_code == 200
    assert client.post(SEND, json={"phone": phone}).status_code == 200
    assert len(texts_to(gateway_url(client.app), phone)) == 1


def test_one_client_address_is_limited_across_phones(client, world, clock, proxied):
    here = from_address("203.0.113.7")
    sends = [client.post(SEND, json={"phone": f"139{n:08d}"}, headers=here) for n in range(21)]
    assert [r.status_code for r in sends[:20]] == [200] * 20
    locked(sends[20], "phone", "sms_address_limited")
    assert client.post(SEND, json={"phone": world.phones["employee"]}, headers=from_address("203.0.113.8")).status_code == 200
    # Wrong codes too: twenty from one address, spread over phones that each have a live code, lock the address.
    url = gateway_url(client.app)
    phones = list(world.phones.values())
    for phone in phones:
        clock.advance(seconds=31)
        assert client.post(SEND, json={"phone": phone}, headers=from_address("198.51.100.1")).status_code == 200
    guesser = from_address("198.51.100.2")
    answers = [client.post(LOG_IN, json={"phone": phones[i % 3], "code": f"{i:06d}"}, headers=guesser) for i in range(21)]
    assert all(r.status_code == 401 for r in answers[:20])
    locked(answers[20], "code", "sms_address_limited")
    # Elsewhere, the phones themselves still log in (each had fewer than ten wrong codes), with a new code.
    phone = phones[0]
    clock.advance(seconds=31)
    assert client.post(SEND, json={"phone": phone}, headers=from_address("198.51.100.3")).status_code == 200
    assert client.post(LOG_IN, json={"phone": phone, "code": latest_code(url, phone)}, headers=from_address("198.51.100.3")).status_code == 201


def test_the_proxy_header_counts_only_from_a_trusted_proxy(client, world, monkeypatch):
    """Without YIBAO_TRUSTED_PROXIES, X-Forwarded-For is the client's own say: ignored, the peer is counted."""
    monkeypatch.delenv("YIBAO_TRUSTED_PROXIES", raising=False)
    sends = [client.post(SEND, json={"phone": f"139{n:08d}"}, headers=from_address(f"192.0.2.{n}")) for n in range(21)]
    assert [r.status_code for r in sends[:20]] == [200] * 20
    locked(sends[20], "phone", "sms_address_limited")


def test_the_sandbox_gateway_refuses_unsigned_and_stale_requests(sms_sandbox):
    body = b'{"request_id":"r1","phone":"13800000001","text":"hi","sent_at":1}'
    r = httpx.post(f"{sms_sandbox.url}/messages", content=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    from yibao.sms import signing

    r = httpx.post(f"{sms_sandbox.url}/messages", content=body, headers={signing.HEADER: signing.sign(sms_sandbox.key.encode(), body)})
    assert r.status_code == 401 and r.json()["error"]["code"] == "stale_request"  # a copied request cannot be replayed later
    assert sms_sandbox.state.sent_to("13800000001") == []

