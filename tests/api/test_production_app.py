"""The app the composition root builds is production unless told otherwise (SQLite and PostgreSQL): no demo
operator token, no sandbox SMS outbox (not even in the OpenAPI), no sandboxes, no demo aids; a weak operator
token in YIBAO_ADMIN_TOKENS stops it being built."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from yibao.app import create_app
from yibao.domain.errors import YibaoError

STRONG = "3f9c1a7e5b2d4086c1e9f7a3b5d20c4e"  # 32 characters, 15 different


def test_production_has_no_demo_token_no_sandbox_outbox_and_no_sandboxes(db, keyring, monkeypatch):
    monkeypatch.setenv("YIBAO_ADMIN_TOKENS", f"ops:{STRONG}")
    operator = {"Authorization": f"Bearer {STRONG}"}
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/admin/audit/verify", headers=operator).status_code == 200
        refused = client.get("/api/v1/admin/audit/verify", headers={"Authorization": "Bearer demo-operator-token"})
        assert refused.status_code == 401 and refused.json()["error"]["field"] == "Authorization"
        assert client.get("/api/v1/admin/sandbox/sms", headers=operator).status_code == 404
        assert client.get("/app/sandbox/sms").status_code == 404
        assert client.get("/sandbox/face/healthz").status_code == 404 and client.get("/sandbox/wxpay/sandbox/info").status_code == 404
        assert not [path for path in client.get("/openapi.json").json()["paths"] if "sandbox" in path]
        assert client.app.state.demo_aids is None


def test_production_refuses_a_weak_operator_token_when_it_builds(db, keyring, monkeypatch):
    monkeypatch.setenv("YIBAO_ADMIN_TOKENS", "op:a")
    with pytest.raises(YibaoError) as refused:
        create_app(db, keyring=keyring)
    assert refused.value.field == "YIBAO_ADMIN_TOKENS"


def test_production_never_knows_the_demo_token(db, keyring, monkeypatch):
    monkeypatch.delenv("YIBAO_ADMIN_TOKENS", raising=False)  # no operator configured: still not the demo's
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as client:
        refused = client.get("/api/v1/admin/audit/verify", headers={"Authorization": "Bearer demo-operator-token"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "bad_credentials"
