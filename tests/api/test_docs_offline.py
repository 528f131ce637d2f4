"""/docs works offline: Swagger UI and its assets are served by the app itself, never from a CDN."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from yibao.app import create_app


@pytest.fixture
def client(db, keyring):
    with TestClient(create_app(db, keyring=keyring), raise_server_exceptions=False) as c:
        yield c


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_references_only_same_origin_assets(client):
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html and "https://" not in html
    assert "cdn" not in html.lower()
    urls = _asset_urls(html)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "url: '/openapi.json'" in html  # try-it-out against the same origin
    assert client.head("/docs").status_code == 200


def test_docs_assets_are_served(client):
    for url in _asset_urls(client.get("/docs").text):
        r = client.get(url)
        assert r.status_code == 200, url
        if url.endswith(".js"):
            assert len(r.content) > 100_000 and "SwaggerUIBundle" in r.text, url
            # The OpenAPI document is 3.1, which Swagger UI reads from version 5 on (4.x shows "Unable to render").
            version = re.search(r'PACKAGE_VERSION:"(\d+)\.', r.text)
            assert version and int(version.group(1)) >= 5, url
        elif url.endswith(".css"):
            assert len(r.content) > 10_000 and ".swagger-ui" in r.text, url
        else:
            assert r.content, url
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
