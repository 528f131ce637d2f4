"""An institution's secret is shown once, at admission, and a hospital's callback signing secret once, when
the callback is set: a replay of the same request answers without it, and no stored response holds it
(SQLite and PostgreSQL). Findings of the platform-core review and of the security issue."""

from __future__ import annotations

from sqlalchemy import select

from tests.support.api import OPERATOR, his
from yibao.store.tables import idempotency_records


def test_an_institutions_secret_is_not_stored_for_replays(client, db, world):
    headers = {**OPERATOR, "Idempotency-Key": "admit-once"}
    body = {"code": "H44030099", "region": "440300", "name": "新医院", "kind": "hospital", "level": "level2"}
    first = client.post("/api/v1/admin/institutions", json=body, headers=headers)
    secret = first.json()["credential"]
    assert first.status_code == 201 and secret.startswith("H44030099.")
    stored = db.run(lambda c: [r.body for r in c.execute(select(idempotency_records.c.body)).all()], write=False)
    assert not any(secret.split(".", 1)[1] in b for b in stored)
    again = client.post("/api/v1/admin/institutions", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["credential"] is None and again.json()["credential_note"]


def _stored(db) -> list[str]:
    return db.run(lambda c: [r.body for r in c.execute(select(idempotency_records.c.body)).all()], write=False)


def test_a_callback_signing_secret_is_not_stored_for_replays(client, db, world):
    headers = {**his(world), "Idempotency-Key": "callback-once"}
    body = {"url": "https://93.184.216.34/yibao/callback"}  # a public address: nothing to resolve
    first = client.put("/api/v1/his/callback", json=body, headers=headers)
    assert first.status_code == 200, first.text
    secret = first.json()["secret"]
    assert len(secret) >= 40 and not any(secret in b for b in _stored(db))
    again = client.put("/api/v1/his/callback", json=body, headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["secret"] is None and again.json()["secret_note"] and again.json()["url"] == body["url"]
