"""Signed callbacks to hospitals (HIS): how a hospital learns a payment's result without asking.

The hospital configures a callback URL; the platform makes a 32-byte secret (shown once, kept
encrypted with the PII keyring). When a payment the hospital cannot see happen (a mobile payment,
paid in the holder's app) ends, the unit that ends it also writes an **outbox** row
(`callback_deliveries`, unique per order and event) — so the callback can be neither lost nor
invented by a crash. Delivery happens after that unit, outside any unit: the exact body is POSTed with

    X-Yibao-Signature: sha256=<hex HMAC-SHA256(secret, body)>
    X-Yibao-Event: payment.completed | payment.voided | refund.succeeded
    X-Yibao-Delivery: <delivery id>

A 2xx answer marks it delivered; anything else (or no answer) is retried with backoff
(`BACKOFF`) by the recovery loop, up to `MAX_ATTEMPTS`, then `failed` (the hospital can still query).
Every attempt is recorded on the row (attempts, last status, last error).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.crypto.pii import Keyring
from yibao.domain.errors import InputError, NotFound
from yibao.formats.timefmt import iso_utc
from yibao.services import Context
from yibao.services.agency.institutions import Institution
from yibao.services.books import audit
from yibao.store.tables import callback_deliveries as D
from yibao.store.tables import his_callbacks as H
from yibao.store.upsert import insert_ignore

log = logging.getLogger("yibao.payments")

MAX_ATTEMPTS = 8
BACKOFF = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
           timedelta(hours=1), timedelta(hours=4))  # guessed: after attempt n, wait BACKOFF[n-1]
TIMEOUT_S = 5.0
_SECRET_CONTEXT = "his callback secret"


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """What a hospital does with a callback (and what the tests do): constant-time compare."""
    return hmac.compare_digest(sign(secret, body), signature or "")


def configure(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, url: str, actor: str) -> dict[str, Any]:
    """Set the callback URL; a new secret is made each time and answered once (base64), never shown again."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError("url", "invalid_url", "回调地址应为 http(s) URL", "must be an http(s) URL")
    secret = secrets.token_bytes(32)
    secret_b64 = base64.b64encode(secret).decode()
    enc = keyring.encrypt(secret_b64, _SECRET_CONTEXT)
    if not insert_ignore(conn, H, dict(institution_id=institution.id, region=institution.region, url=url, secret_enc=enc,
                                       updated_at=now, created_at=now)):
        conn.execute(update(H).where(H.c.institution_id == institution.id).values(url=url, secret_enc=enc, updated_at=now))
    audit.append(conn, region=institution.region, actor=actor, action="his.callback_configured", subject=institution.id,
                 detail={"url": url}, now=now)
    return {"fixmedins_code": institution.id, "url": url, "secret": secret_b64, "algorithm": "HMAC-SHA256",
            "header": "X-Yibao-Signature", "updated_at": iso_utc(now)}


def view(conn: Connection, institution: Institution) -> dict[str, Any]:
    r = conn.execute(select(H).where(H.c.institution_id == institution.id)).first()
    if r is None:
        raise NotFound("url", "callback_not_configured", "尚未配置回调地址", "no callback URL is configured")
    return {"fixmedins_code": institution.id, "url": r.url, "algorithm": "HMAC-SHA256", "header": "X-Yibao-Signature",
            "updated_at": iso_utc(r.updated_at)}


def enqueue(conn: Connection, now: datetime, *, institution_id: str, region: str, order_id: str, event: str, payload: dict[str, Any]) -> bool:
    """Write the callback to the outbox in the caller's unit (the one that ends the order). Once per (order, event)."""
    configured = conn.execute(select(H.c.institution_id).where(H.c.institution_id == institution_id)).first()
    if configured is None:
        return False
    body = json.dumps({"event": event, "payment": payload}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return insert_ignore(conn, D, dict(region=region, institution_id=institution_id, order_id=order_id, event=event, body=body,
                                       status="pending", attempts=0, next_attempt_at=now, created_at=now))


@dataclass(frozen=True)
class Due:
    id: int
    event: str
    url: str
    secret: bytes
    body: bytes


def _due(conn: Connection, keyring: Keyring, now: datetime, order_id: str | None, limit: int) -> list[Due]:
    q = select(D.c.id, D.c.event, D.c.body, H.c.url, H.c.secret_enc).join(H, H.c.institution_id == D.c.institution_id).where(
        D.c.status == "pending", D.c.next_attempt_at <= now)
    if order_id is not None:
        q = q.where(D.c.order_id == order_id)
    rows = conn.execute(q.order_by(D.c.id).limit(limit)).all()
    return [Due(int(r.id), r.event, r.url, base64.b64decode(keyring.decrypt(bytes(r.secret_enc), _SECRET_CONTEXT)), r.body.encode("utf-8"))
            for r in rows]


def _record(conn: Connection, now: datetime, delivery_id: int, status: int | None, error: str | None) -> str:
    r = conn.execute(select(D).where(D.c.id == delivery_id).with_for_update()).first()
    if r is None or r.status != "pending":
        return r.status if r is not None else "gone"
    attempts = int(r.attempts) + 1
    if status is not None and 200 <= status < 300:
        conn.execute(update(D).where(D.c.id == delivery_id).values(status="delivered", attempts=attempts, last_status=status,
                                                                   last_error=None, delivered_at=now))
        return "delivered"
    outcome = "failed" if attempts >= MAX_ATTEMPTS else "pending"
    wait = BACKOFF[min(attempts, len(BACKOFF)) - 1]
    conn.execute(update(D).where(D.c.id == delivery_id).values(status=outcome, attempts=attempts, last_status=status,
                                                               last_error=(error or "")[:200] or None, next_attempt_at=now + wait))
    if outcome == "failed":
        audit.append(conn, region=r.region, actor="platform:callbacks", action="his.callback_failed", subject=r.order_id,
                     detail={"delivery": delivery_id, "event": r.event, "attempts": attempts}, now=now)
    return outcome


async def deliver_due(run: Any, keyring: Keyring, now: datetime, *, order_id: str | None = None, limit: int = 100,
                      transport: httpx.AsyncBaseTransport | None = None) -> dict[str, int]:
    """One attempt at each due delivery (all, or one order's): POST outside any unit, then record the outcome (a unit)."""
    due = await run(lambda c: _due(c, keyring, now, order_id, limit), write=False)
    report = {"delivered": 0, "pending": 0, "failed": 0}
    if not due:
        return report
    async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=transport) as client:
        for d in due:
            status: int | None = None
            error: str | None = None
            try:
                answer = await client.post(d.url, content=d.body, headers={
                    "Content-Type": "application/json; charset=utf-8", "X-Yibao-Signature": sign(d.secret, d.body),
                    "X-Yibao-Event": d.event, "X-Yibao-Delivery": str(d.id)})
                status = answer.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            outcome = await run(lambda c, d=d, s=status, e=error: _record(c, now, d.id, s, e))
            report[outcome] = report.get(outcome, 0) + 1
    return report


def deliveries(conn: Connection, institution: Institution, order_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = select(D).where(D.c.institution_id == institution.id)
    if order_id is not None:
        q = q.where(D.c.order_id == order_id)
    return [{"delivery_id": int(r.id), "payment_id": r.order_id, "event": r.event, "status": r.status, "attempts": int(r.attempts),
             "last_status": r.last_status, "last_error": r.last_error, "next_attempt_at": iso_utc(r.next_attempt_at),
             "delivered_at": iso_utc(r.delivered_at) if r.delivered_at else None, "created_at": iso_utc(r.created_at)}
            for r in conn.execute(q.order_by(D.c.id.desc()).limit(limit)).all()]


async def deliver(ctx: Context, order_id: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """One delivery attempt for the hospital callbacks that are due (one order's, or all); failures stay for the next round."""
    try:
        return await deliver_due(ctx.run, ctx.keyring, now or ctx.now(), order_id=order_id)
    except Exception:  # noqa: BLE001 — a callback problem never changes what the payment answers; recovery retries
        log.exception("callback delivery failed")
        return {}
