"""Institutions' and operators' credentials cost something (issue 11, point 4), on SQLite and PostgreSQL: wrong
ones are counted per credential (the institution code guessed at) and per client address, and too many refuse
every credential — the right one too — with Retry-After; on the API and on the cashier's and operator's log-in
pages alike. (120 wrong ones were answered in 0.2 s, unthrottled.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.api import OPERATOR, his
from tests.support.pages import tokens
from yibao.app import create_app

VISITS = "/api/v1/his/visits/V-none"
AUDIT = "/api/v1/admin/audit/verify"
LIMIT = 10  # services/access/credentials.py: PER_ADDRESS and PER_INSTITUTION, within 15 minutes


@pytest.fixture
def proxied(monkeypatch):
    """The test client stands for a trusted reverse proxy: the client's address is what it appends to X-Forwarded-For."""
    monkeypatch.setenv("YIBAO_TRUSTED_PROXIES", "testclient")


def at(address: str, auth: dict[str, str] | None = None) -> dict[str, str]:
    return {**(auth or {}), "X-Forwarded-For": address}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def locked(r, field: str = "Authorization") -> int:
    assert r.status_code == 429, r.text
    err = r.json()["error"]
    assert (err["field"], err["code"]) == (field, "credentials_locked") and "分钟" in err["message_zh"] and "min" in err["message_en"]
    wait = int(r.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    return wait


def test_wrong_institution_secrets_lock_the_address_then_the_right_one_is_refused_too(client, world, clock, proxied):
    here = "203.0.113.10"
    code = world.hospital.id
    answers = [client.get(VISITS, headers=at(here, bearer(f"{code}.guess-{i}"))) for i in range(LIMIT)]
    assert [r.status_code for r in answers] == [401] * LIMIT and {r.json()["error"]["code"] for r in answers} == {"bad_credentials"}
    locked(client.get(VISITS, headers=at(here, bearer(f"{code}.guess-x"))))
    locked(client.get(VISITS, headers=at(here, his(world))))  # even the right credential: guessing stops here
    # The lock is the address's and the code's: another hospital's credential is refused from this address too ...
    locked(client.get(VISITS, headers=at(here, his(world, other=True))))
    # ... and once the window has passed, the right credential works again.
    clock.advance(minutes=15, seconds=1)
    assert client.get(VISITS, headers=at(here, his(world))).status_code == 404  # authenticated: the visit is simply not there


def test_wrong_secrets_for_one_institution_from_many_addresses_lock_its_code(client, world, clock, proxied):
    code = world.hospital.id
    # Its own HIS worked from this address before the attack: a lock on the code does not shut it out.
    assert client.get(VISITS, headers=at("198.51.100.77", his(world))).status_code == 404
    for i in range(LIMIT):
        assert client.get(VISITS, headers=at(f"10.2.0.{i}", bearer(f"{code}.guess-{i}"))).status_code == 401
    locked(client.get(VISITS, headers=at("10.2.1.1", bearer(f"{code}.guess-more"))))
    locked(client.get(VISITS, headers=at("10.2.1.2", his(world))))  # a new address with the right secret: refused (no guessing)
    client.app.state.platform._institution_cache.clear()  # not from the process's cache: from what the database remembers
    assert client.get(VISITS, headers=at("198.51.100.77", his(world))).status_code == 404  # its known address still gets in
    assert client.get(VISITS, headers=at("10.2.1.3", his(world, other=True))).status_code == 404  # another code is not locked


def test_wrong_operator_tokens_lock_the_address(client, world, clock, proxied):
    here = "203.0.113.20"
    answers = [client.get(AUDIT, headers=at(here, bearer(f"not-the-token-{i}"))) for i in range(LIMIT)]
    assert [r.status_code for r in answers] == [401] * LIMIT
    locked(client.get(AUDIT, headers=at(here, OPERATOR)))  # the right token too
    assert client.get(AUDIT, headers=at("203.0.113.21", OPERATOR)).status_code == 200  # from elsewhere: not concerned
    clock.advance(minutes=15, seconds=1)
    assert client.get(AUDIT, headers=at(here, OPERATOR)).status_code == 200


def test_the_cashier_and_operator_log_in_pages_count_like_the_api(db, keyring, world, clock, proxied):
    with TestClient(create_app(db, keyring=keyring, demo=True), raise_server_exceptions=False) as client:
        for path, field, good in (("/cashier", "credential", world.hospital_credential), ("/admin", "token", "demo-operator-token")):
            address = "192.0.2.50" if path == "/cashier" else "192.0.2.51"
            page = client.get(f"{path}/login").text
            for i in range(LIMIT):
                wrong = f"H9999{i:04d}.nope" if path == "/cashier" else f"not-the-token-{i}"  # many codes: only the address is counted up
                r = client.post(f"{path}/sessions", data={**tokens(page), field: wrong}, headers=at(address), follow_redirects=False)
                assert r.status_code == 303 and r.headers["location"] == f"{path}/login" and "Retry-After" not in r.headers
            r = client.post(f"{path}/sessions", data={**tokens(page), field: good}, headers=at(address), follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == f"{path}/login"  # the right one: refused, with the lock said
            assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
            shown = client.get(f"{path}/login", headers=at(address)).text
            assert "凭证错误次数过多" in shown
            # The API from the same address is locked too: one count per subject, whatever the door.
            api_path, auth = (VISITS, his(world)) if path == "/cashier" else (AUDIT, OPERATOR)
            locked(client.get(api_path, headers=at(address, auth)))
            r = client.post(f"{path}/sessions", data={**tokens(page), field: good}, headers=at("192.0.2.99"), follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == path  # from another address: in


def test_a_burst_of_requests_with_one_credential_checks_it_once(app, world, monkeypatch):
    """Issue 13: thirty connections of one HIS arriving together, nothing cached yet, make ONE check of the credential
    (the others wait for its answer); each check took the credential's attempt lock and paid the secret's hash, so a
    burst after a start stalled for seconds, one check after the other."""
    import asyncio

    from yibao.services.access import credentials

    calls: list[str] = []
    real = credentials.institution

    def counted(conn, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(kw["code"])
        return real(conn, *args, **kw)

    monkeypatch.setattr(credentials, "institution", counted)
    platform = app.state.platform

    async def burst():  # noqa: ANN202
        return await asyncio.gather(*(platform.institution(his(world)["Authorization"].split(" ", 1)[1], "192.0.2.30") for _ in range(30)))

    found = asyncio.run(burst())
    assert {i.id for i in found} == {world.hospital.id} and calls == [world.hospital.id]
