"""/metrics: Prometheus's scrape of this platform (yibao.observe.metrics says what is there), behind its own token.

The scraper presents `Authorization: Bearer $YIBAO_METRICS_TOKEN`, a read-only secret of its own — never an
operator's token, which can approve clearing and pay money (docs/security.md). Without the variable, production
does not serve /metrics at all (404); the demo's token is `demo-metrics-token`. Settlements and payment orders by
status are counted in the database at each scrape (two GROUP BY queries of one status column each): the same
answer whichever worker is asked, and nothing to keep in step with the write paths.
"""

from __future__ import annotations

import hmac
import os

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from yibao.domain.errors import NotFound, Unauthorized
from yibao.observe import metrics
from yibao.store.tables import payment_orders, settlements

DEMO_METRICS_TOKEN = "demo-metrics-token"


def metrics_token(demo: bool) -> str | None:
    return os.environ.get("YIBAO_METRICS_TOKEN") or (DEMO_METRICS_TOKEN if demo else None)


def _counts(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
    def by_status(table) -> dict[str, int]:  # noqa: ANN001
        return {status: n for status, n in conn.execute(select(table.c.status, func.count()).group_by(table.c.status))}

    return by_status(settlements), by_status(payment_orders)


async def endpoint(request: Request) -> Response:
    token = request.app.state.metrics_token
    if not token:
        raise NotFound("path", "not_found", "页面不存在", "no such page")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise Unauthorized("Authorization", "metrics_token_invalid", "需要有效的监控令牌（Authorization: Bearer …）",
                           "a valid metrics token is required (Authorization: Bearer …)")
    settled, orders = await request.app.state.platform.run(_counts, write=False)
    body = metrics.exposition([
        metrics.by_status("yibao_settlements", "Settlements in the database, by status", settled),
        metrics.by_status("yibao_payment_orders", "Payment orders in the database, by status", orders),
    ])
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
