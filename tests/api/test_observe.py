"""What operators watch: /metrics (Prometheus text, behind its own token) and JSON log lines carrying the request id."""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import OPERATOR, his, open_visit, post
from tests.support.presence import card_with_pin, present_card_over_http
from yibao.app import create_app
from yibao.observe import logs

SCRAPER = {"Authorization": "Bearer demo-metrics-token"}
SETTLE = "/api/v1/his/visits/{visit_id}/settle"


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # noqa: ANN001
    r = client.get("/metrics", headers=SCRAPER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(r.text) for s in f.samples}


def value(samples, name: str, **labels: str) -> float:  # noqa: ANN001
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_settlement_moves_the_counts_a_scrape_reads(client, world, db, keyring):
    before = scrape(client)
    vid = open_visit(client, world, world.employee)
    assert present_card_over_http(client, his(world), card_with_pin(db, keyring, world.employee.id), visit_id=vid).status_code == 201
    r = post(client, f"/api/v1/his/visits/{vid}/settle", {"account": {"use": True}}, his(world))
    assert r.status_code == 200, r.text
    after = scrape(client)
    assert value(after, "yibao_settlements", status="settled") == value(before, "yibao_settlements", status="settled") + 1
    settled = dict(method="POST", route=SETTLE, status="200")
    assert value(after, "yibao_http_requests_total", **settled) == value(before, "yibao_http_requests_total", **settled) + 1
    timed = dict(method="POST", route=SETTLE)
    assert value(after, "yibao_http_request_duration_seconds_count", **timed) == \
        value(before, "yibao_http_request_duration_seconds_count", **timed) + 1
    # A page is counted by its template too, and a path that matched no route under one label, not its own.
    client.get("/api/v1/his/visits/nope-1", headers=his(world))
    client.get("/no/such/path/123")
    later = scrape(client)
    assert value(later, "yibao_http_requests_total", method="GET", route="/api/v1/his/visits/{visit_id}", status="404") >= 1
    assert value(later, "yibao_http_requests_total", method="GET", route="<unmatched>", status="404") >= 1
    assert not any("nope-1" in dict(labels).get("route", "") for _, labels in later)


def test_metrics_need_their_own_token_and_production_serves_none_without_one(client, db, keyring, monkeypatch):
    for headers in ({}, OPERATOR, {"Authorization": "Bearer demo-metrics-tokenX"}):  # an operator's token is not the scraper's
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["field"] == "Authorization" and r.headers["WWW-Authenticate"] == "Bearer"
    monkeypatch.delenv("YIBAO_METRICS_TOKEN", raising=False)
    with TestClient(create_app(db, keyring=keyring)) as production:
        assert production.get("/metrics", headers=SCRAPER).status_code == 404
    monkeypatch.setenv("YIBAO_METRICS_TOKEN", "s3cret-scrape-token-of-the-prometheus-job")
    with TestClient(create_app(db, keyring=keyring)) as production:
        assert production.get("/metrics", headers=SCRAPER).status_code == 401
        assert production.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token-of-the-prometheus-job"}).status_code == 200


@contextmanager
def captured(fmt: str):  # noqa: ANN201
    """The lines logged meanwhile, as logs.configure(fmt) writes them; the root logger as it was afterwards."""
    stream, root = io.StringIO(), logging.getLogger()
    level, handler = root.level, logs.configure(fmt, stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_the_request_id_to_every_line_of_the_request(client, world):
    with captured("json") as stream:
        r = client.get("/api/v1/his/visits/nope-2", headers={**his(world), "X-Request-ID": "trace-abc.123"})
        assert r.status_code == 404 and r.headers["X-Request-ID"] == "trace-abc.123" and r.json()["error"]["request_id"] == "trace-abc.123"
        bad = client.get("/healthz", headers={"X-Request-ID": "two words\tand a tab"})  # not a plain token: replaced
        assert bad.headers["X-Request-ID"] != "two words\tand a tab" and len(bad.headers["X-Request-ID"]) == 16
        generated = client.get("/healthz").headers["X-Request-ID"]
        assert len(generated) == 16 and generated != bad.headers["X-Request-ID"]
        logging.getLogger("yibao.test").warning("outside any request")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "yibao.access" and x["request_id"] == "trace-abc.123"]
    assert len(access) == 1
    assert {k: access[0][k] for k in ("level", "method", "path", "status")} == {
        "level": "info", "method": "GET", "path": "/api/v1/his/visits/nope-2", "status": 404}
    assert access[0]["duration_ms"] >= 0 and access[0]["time"].endswith("Z") and "404" in access[0]["message"]
    assert lines[-1]["logger"] == "yibao.test" and lines[-1]["request_id"] is None and lines[-1]["message"] == "outside any request"
    assert all({"time", "level", "logger", "message", "request_id"} <= set(x) for x in lines)


def test_a_line_logged_inside_a_request_names_it(db, keyring):
    """Any line written while a request runs — in an async endpoint or a sync one on the thread pool — carries its id:
    the context, not an argument passed down."""
    app = create_app(db, keyring=keyring, demo=True)

    async def async_work() -> dict:
        logging.getLogger("yibao.services.example").warning("async work")
        return {}

    def sync_work() -> dict:
        logging.getLogger("yibao.services.example").warning("sync work")
        return {}

    app.add_api_route("/test/async", async_work)
    app.add_api_route("/test/sync", sync_work)
    with captured("json") as stream, TestClient(app) as client:
        client.get("/test/async", headers={"X-Request-ID": "rid-async"})
        client.get("/test/sync", headers={"X-Request-ID": "rid-sync"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = {(x["message"], x["request_id"]) for x in lines if x["logger"] == "yibao.services.example"}
    assert mine == {("async work", "rid-async"), ("sync work", "rid-sync")}


def test_text_lines_for_the_demo_name_the_request_too():
    with captured("text") as stream:
        token = logs.REQUEST_ID.set("rid-text")
        logging.getLogger("yibao.x").warning("hello")
        logs.REQUEST_ID.reset(token)
    assert stream.getvalue().rstrip().endswith("WARNING yibao.x [rid-text] hello")
