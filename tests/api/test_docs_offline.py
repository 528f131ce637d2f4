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


# ---- the documented requests carry what the API requires ------------------------------------------------------------

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
_URL = re.compile(r"(/api/v1/[^\s'\"?\\]*)")


def _documented_requests() -> list[tuple[str, str, str, str]]:
    """Every request written out in README.md and docs/*.md code blocks — `curl` commands (continuation lines joined)
    and HTTP requests ("POST /api/v1/… HTTP/1.1" and their header lines): (file, method, path, the text of its headers)."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```[^\n]*\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
        for block in blocks:
            text = re.sub(r"\\\n", " ", block)
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("curl "):
                    url = _URL.search(line)
                    method = re.search(r"-X\s*([A-Z]+)", line)
                    verb = method.group(1) if method else ("POST" if re.search(r"\s(-d|--data)\b", line) else "GET")
                    if url:
                        found.append((doc.name, verb, url.group(1), line))
            for m in re.finditer(r"^(POST|PUT|PATCH|DELETE|GET) (/api/v1/\S+)(?: HTTP/1\.1)?\n((?:[A-Za-z-]+: .*\n)*)", text, flags=re.M):
                found.append((doc.name, m.group(1), m.group(2), m.group(3)))
    return found


def test_every_documented_request_carries_the_headers_it_needs(client):
    """A documented call the API would refuse for a missing Idempotency-Key (or credential) is a wrong example: each
    request in the docs is matched to its operation in the OpenAPI document and must carry what that one requires."""
    spec = client.get("/openapi.json").json()
    operations = []
    for template, methods in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in methods.items():
            headers = {p["name"].lower() for p in op.get("parameters", []) if p.get("in") == "header" and p.get("required")}
            operations.append((pattern, method.upper(), headers))
    requests = _documented_requests()
    assert len(requests) >= 7 and any(path == "/api/v1/his/paycodes/verify" for _, _, path, _ in requests)
    for doc, method, path, headers in requests:
        concrete = re.sub(r"<[^>]+>", "x", path)
        matched = [needs for pattern, verb, needs in operations if verb == method and pattern.match(concrete)]
        assert matched, f"{doc}: {method} {path} is no operation of the API"
        for needed in matched[0]:
            assert needed in headers.lower(), f"{doc}: {method} {path} needs the {needed} header"
        if path.startswith(("/api/v1/his/", "/api/v1/admin/", "/api/v1/patient/")) and method != "GET":
            assert "authorization" in headers.lower() or "$h" in headers.lower(), f"{doc}: {method} {path} needs its credential"
