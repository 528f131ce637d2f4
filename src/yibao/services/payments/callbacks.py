"""Signed callbacks to hospitals (HIS): how a hospital learns a payment's result without asking.

The hospital configures a callback URL; the platform makes a 32-byte secret (shown once, kept
encrypted with the PII keyring). When a payment the hospital cannot see happen (a mobile payment,
paid in the holder's app) ends, the unit that ends it also writes an **outbox** row
(`callback_deliveries`, unique per order and event) — so the callback can be neither lost nor
invented by a crash. Delivery happens after that unit, outside any unit: the exact body is POSTed with

    X-Yibao-Signature: sha256=<hex HMAC-SHA256(secret, body)>
    X-Yibao-Event: payment.completed | payment.voided | refund.succeeded
    X-Yibao-Delivery: <delivery id>

A 2xx answer marks it delivered; anything else (a redirect included: it is not followed) or no answer
is retried with backoff (`BACKOFF`) by the recovery loop, up to `MAX_ATTEMPTS`, then `failed` (the
hospital can still query). Every attempt is recorded on the row (attempts, last status, last error).

**Where callbacks may go.** The platform posts wherever a hospital says, from inside the agency's network:
so only to public HTTPS addresses. A URL must be `https://`, without a user name or password, and its host
must be — or resolve only to — public addresses: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback,
link-local (169.254/16 — cloud metadata services live there — and fe80::/10), shared (100.64/10), multicast,
reserved and unspecified addresses are refused, IPv4 inside IPv6 (::ffff:…, 6to4, 64:ff9b::) judged as the
IPv4 it carries. It is checked at registration and again at every delivery after resolving the name afresh;
the delivery then connects to the very address it checked (the name kept for TLS and Host), so a name that
resolves to a public address for the check and to 127.0.0.1 for the connection (DNS rebinding) does not
help. A refused delivery is recorded like an unanswered one. Tests and the demo post to loopback over
plain HTTP: the composition root allows that (`allow_private_callbacks`); production never does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import ParseResult, urlparse, urlunparse

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


RESOLVE_TIMEOUT_S = 5.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are an IPv4 address


def is_public(address: str) -> bool:
    """Whether an IP address is one a callback may go to: globally routable unicast, nothing else."""
    a: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id is never public
    if isinstance(a, ipaddress.IPv6Address):
        inner = a.ipv4_mapped or a.sixtofour or (ipaddress.IPv4Address(int(a) & 0xFFFFFFFF) if a in _NAT64 else None)
        if inner is not None:
            a = inner  # an IPv4 address carried in IPv6 reaches that IPv4 address: judge it
        elif a.is_site_local:
            return False
    return a.is_global and not (a.is_private or a.is_loopback or a.is_link_local or a.is_multicast or a.is_unspecified or a.is_reserved)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _refuse_address(host: str) -> InputError:
    return InputError("url", "callback_address_not_public", f"回调地址须指向公网地址：{host} 是内网、回环、链路本地、组播、保留或未指定地址",
                      f"must point at a public address: {host} is a private, loopback, link-local, multicast, reserved or "
                      "unspecified address")


def check_form(url: str, *, allow_private: bool = False) -> ParseResult:
    """What can be told from the URL alone (no I/O): the scheme, no credentials, an address written in it."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        raise InputError("url", "invalid_url", "回调地址不是有效的 URL", "is not a valid URL") from None
    if allow_private:
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError("url", "invalid_url", "回调地址应为 http(s) URL", "must be an http(s) URL")
    elif parsed.scheme != "https" or not parsed.hostname:
        raise InputError("url", "callback_https_required", "回调地址须为 https:// URL（生产环境只向公网 HTTPS 地址回调）",
                         "must be an https:// URL (callbacks go to public HTTPS addresses only)")
    if parsed.username is not None or parsed.password is not None:
        raise InputError("url", "callback_credentials", "回调地址不得包含用户名或密码", "must not carry a user name or password")
    if port == 0:
        raise InputError("url", "invalid_url", "回调地址的端口无效", "has an invalid port")
    literal = _literal(parsed.hostname or "")
    if not allow_private and literal is not None and not is_public(literal):
        raise _refuse_address(parsed.hostname or "")
    return parsed


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to now (none if it does not resolve in time). Tests replace this."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S)
    except (OSError, UnicodeError, asyncio.TimeoutError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where one delivery connects: ``url`` (its host the checked address), with the name for Host and TLS."""

    url: str
    host: str | None = None  # the Host header, when the URL names an address in place of the name
    sni: str | None = None  # the name the hospital's certificate is checked against


async def vet(url: str, *, allow_private: bool = False) -> Target:
    """Check a callback URL completely, resolving its name now; the target pinned to a checked address."""
    parsed = check_form(url, allow_private=allow_private)
    host = parsed.hostname or ""
    if allow_private or _literal(host) is not None:
        return Target(url)  # the tests' and demo's loopback, or an address checked by check_form: nothing to resolve
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InputError("url", "invalid_url", "回调地址的主机名无效", "has an invalid host name") from None
    addresses = await resolve(ascii_host, parsed.port or 443)
    if not addresses or not all(is_public(a) for a in addresses):
        # One answer for both: which internal names exist is not the hospital's to learn.
        raise InputError("url", "callback_host_not_public", f"回调地址的主机名 {host} 须能解析，且只解析到公网地址",
                         f"the host name {host} must resolve, and only to public addresses")
    address = addresses[0]
    netloc = (f"[{address}]" if ":" in address else address) + (f":{parsed.port}" if parsed.port else "")
    return Target(urlunparse(parsed._replace(netloc=netloc)), host=parsed.netloc, sni=ascii_host)


def configure(conn: Connection, keyring: Keyring, now: datetime, *, institution: Institution, url: str, actor: str,
              allow_private: bool = False) -> dict[str, Any]:
    """Set the callback URL; a new secret is made each time and answered once (base64), never shown again.
    Its form is checked here; its name is resolved and checked by `prepare_configure`, outside the unit."""
    check_form(url, allow_private=allow_private)
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


async def prepare_configure(ctx: Context, *, institution: Institution, url: str, actor: str) -> Callable[[Connection], dict[str, Any]]:
    """Check the URL completely (its name resolved now, outside any unit), then hand back the unit that stores it."""
    await vet(url, allow_private=ctx.allow_private_callbacks)
    now = ctx.now()
    return lambda conn: configure(conn, ctx.keyring, now, institution=institution, url=url, actor=actor,
                                  allow_private=ctx.allow_private_callbacks)


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
                      transport: httpx.AsyncBaseTransport | None = None, allow_private: bool = False) -> dict[str, int]:
    """One attempt at each due delivery (all, or one order's): vet the URL afresh and POST to the address it
    checked, outside any unit, then record the outcome (a unit). A URL refused now is recorded as a failed
    attempt, its reason as the last error."""
    due = await run(lambda c: _due(c, keyring, now, order_id, limit), write=False)
    report = {"delivered": 0, "pending": 0, "failed": 0}
    if not due:
        return report
    # follow_redirects=False: a redirect would lead to an address nobody checked.
    async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=transport, follow_redirects=False) as client:
        for d in due:
            status: int | None = None
            error: str | None = None
            try:
                target = await vet(d.url, allow_private=allow_private)
                headers = {"Content-Type": "application/json; charset=utf-8", "X-Yibao-Signature": sign(d.secret, d.body),
                           "X-Yibao-Event": d.event, "X-Yibao-Delivery": str(d.id)}
                if target.host:
                    headers["Host"] = target.host
                answer = await client.post(target.url, content=d.body, headers=headers,
                                           extensions={"sni_hostname": target.sni} if target.sni else None)
                status = answer.status_code
            except InputError as exc:
                log.warning("callback %s refused: %s", d.id, exc.message_en)
                error = exc.describe()
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
        return await deliver_due(ctx.run, ctx.keyring, now or ctx.now(), order_id=order_id, allow_private=ctx.allow_private_callbacks)
    except Exception:  # noqa: BLE001 — a callback problem never changes what the payment answers; recovery retries
        log.exception("callback delivery failed")
        return {}
