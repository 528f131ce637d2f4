"""/admin and the admin API check the audit chain against its anchors (the ASGI app in-process, no browser), on SQLite
and PostgreSQL: a head rewound behind the anchor shows as a broken chain on the overview, the audit page and
`GET /api/v1/admin/audit/verify`."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support import audit as attack
from tests.support.api import OPERATOR
from tests.support.pages import tokens
from tests.support.world import seed
from yibao.app import create_app
from yibao.services.books import audit

REGION = "440300"


@pytest.fixture
def site(db, keyring):
    world = seed(db, keyring)
    app = create_app(db, keyring=keyring, demo=True, anchor_interval=0)  # anchored on each check only
    with TestClient(app, raise_server_exceptions=False, follow_redirects=True) as client:
        page = client.get("/admin/login").text
        r = client.post("/admin/sessions", data={**tokens(page), "token": "demo-operator-token"})
        assert r.url.path == "/admin", r.text
        yield world, client


def _status(html: str) -> str:
    return re.search(r'id="chain-status">([^<]*)<', html).group(1)


def test_a_head_rewound_behind_the_anchor_shows_broken_on_admin_and_in_the_api(site, db, audit_anchor):
    _, client = site
    count = len(attack.entries(db, REGION))
    for i in range(3):  # entries that move no money, anchored by the next check
        db.run(lambda c, i=i: audit.append(c, region=REGION, actor="operator:a", action="pii.lookup", subject=f"P{i}", detail={},
                                           now=db.clock()))
    assert _status(client.get("/admin").text) == "全部审计链完整"
    assert client.get("/api/v1/admin/audit/verify", headers=OPERATOR).json()["ok"] is True
    assert audit_anchor.exists()

    attack.rewind(db, REGION, count)
    assert _status(client.get("/admin").text) == "审计链校验失败"
    page = client.get("/admin/audit").text
    assert _status(page) == "审计链校验失败" and "(truncated or rewound)" in page
    answer = client.get("/api/v1/admin/audit/verify", headers=OPERATOR).json()
    assert answer["ok"] is False and "(truncated or rewound)" in next(c for c in answer["chains"] if c["region"] == REGION)["problem"]
