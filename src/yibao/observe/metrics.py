"""Prometheus metrics (prometheus-client) and the middleware behind the HTTP ones and the request id.

- `yibao_http_requests_total{method,route,status}` and `yibao_http_request_duration_seconds{method,route}`: every
  request, by its route TEMPLATE (`/api/v1/his/visits/{mdtrt_id}/settle`, never the ids; `<unmatched>` for a 404
  that matched no route), counted by `RequestMiddleware`;
- `yibao_notification_lag_seconds{institution,kind}`: from the time an institution says an event happened (a
  payment's paid time) to the platform's record of its notification (services/payments/notifications.py);
- settlements and payment orders by status are read from the database at each scrape (runtime: the app's
  /metrics), so they are right whichever worker answers and across restarts.

Counters live in the process; with several workers set PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode, an empty directory per start) and /metrics adds them up over the workers.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Mount

from yibao.observe.logs import REQUEST_ID

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format generate_latest writes, which every Prometheus reads
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")  # a caller's X-Request-ID is kept only if it is this
UNMATCHED = "<unmatched>"
QUIET_PATHS = ("/healthz", "/metrics")  # their access lines are DEBUG: a scraper or a probe every few seconds is no news

REQUESTS = Counter("yibao_http_requests", "HTTP requests answered, by route template and status", ["method", "route", "status"])
LATENCY = Histogram("yibao_http_request_duration_seconds", "Time to answer an HTTP request, by route template", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
NOTIFICATION_LAG = Histogram("yibao_notification_lag_seconds", "From an institution's event (its paid time) to the platform's record "
                             "of its notification", ["institution", "kind"],
                             buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400))

access_log = logging.getLogger("yibao.access")


def notification_recorded(institution: str, kind: str, event_at: datetime | None, recorded_at: datetime) -> None:
    """A notification was recorded at ``recorded_at``; the institution said the event happened at ``event_at``."""
    if event_at is None:
        return
    NOTIFICATION_LAG.labels(institution, kind).observe(max(0.0, (recorded_at - event_at).total_seconds()))


def request_id_of(given: str) -> str:
    """The caller's X-Request-ID when it is a plain token of at most 64 characters, else a new one."""
    return given if REQUEST_ID_PATTERN.fullmatch(given) else uuid.uuid4().hex[:16]


def _route_of(scope: dict) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:
        return UNMATCHED
    if isinstance(route, Mount):  # static files, or a mounted app that matched none of its routes
        return f"{path}/{{path}}"
    return (scope.get("root_path") or "") + path  # a route of a mounted app (the sandboxes) under its mount


class RequestMiddleware:
    """Every HTTP request: its id (a valid X-Request-ID, else a new one) on request.state, in REQUEST_ID for every
    log line written while it runs, and echoed in the answer's X-Request-ID; then one access line and the metrics.
    Plain ASGI rather than @app.middleware("http"), which runs the app in an extra task per request."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1"))
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message) -> None:  # noqa: ANN001
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route, method = _route_of(scope), scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(elapsed)
            path = scope["path"]
            access_log.log(logging.DEBUG if path in QUIET_PATHS else logging.INFO, "%s %s %s %.1f ms", method, path, status, elapsed * 1000,
                           extra={"method": method, "path": path, "status": status, "duration_ms": round(elapsed * 1000, 2)})
            REQUEST_ID.reset(token)


class _Families(Collector):
    def __init__(self, families: Iterable) -> None:
        self.families = list(families)

    def collect(self):  # noqa: ANN201
        return self.families


def by_status(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, n in sorted(counts.items()):
        family.add_metric([status], n)
    return family


def exposition(families: Iterable = ()) -> bytes:
    """The text format: this process's metrics (or every worker's, in multiprocess mode) and ``families`` read just now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        own = generate_latest(registry)
    else:
        own = generate_latest(REGISTRY)
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Families(families))
    return own + generate_latest(extra)
