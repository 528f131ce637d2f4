"""Bills published over the national interface's mobile payment (6201): the bill is the REST bill (`bills.publish`),
and it carries a `payToken` — a per-order secret the hospital presents in every later call about it (6202, 6301,
6203, 6401), on top of the gateway's own signature. The token is 256 random bits answered once; only its SHA-256 is
kept (a fast hash is enough for a random secret of that length: there is nothing to guess). The hospital's own order
number (`medOrgOrd`) is kept beside it, answered back by the query.

The token never authorises paying: the account is debited only when the holder pays the bill in the app
(`bills.pay`, services/care/presence.py)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from yibao.domain.errors import Conflict, Forbidden
from yibao.services.agency.institutions import Institution
from yibao.services.payments import bills
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.store.tables import bill_tokens as T


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def publish(conn: Connection, now: datetime, *, institution: Institution, visit_id: str, request_key: str, request_hash: str,
            med_org_ord: str, actor: str, method: str = "mobile") -> tuple[Order, str]:
    """Publish the visit's bill to the holder's phone (`bills.publish`, the REST path) and give it a payToken:
    the order and the token in clear (answered once; only its hash is stored). ``method`` ``medins``: an order a wallet
    pays with the holder's pay_auth_no (services/payments/medins.py), not a bill on the holder's phone."""
    order = bills.publish(conn, now, institution=institution, visit_id=visit_id, request_key=request_key, request_hash=request_hash,
                          actor=actor, method=method)
    if conn.execute(select(T.c.order_id).where(T.c.order_id == order.id)).first() is not None:  # a REST key that collides
        raise Conflict("Idempotency-Key", "idempotency_key_reused", "该请求编号已用于另一个账单", "this request key was already used for another bill")
    token = secrets.token_hex(32)
    conn.execute(T.insert().values(order_id=order.id, region=order.region, institution_id=institution.id, token_hash=_digest(token),
                                   med_org_ord=med_org_ord, created_at=now))
    return order, token


def order_for(conn: Connection, *, institution_id: str, order_id: str, token: str) -> tuple[Order, str]:
    """The hospital's own bill (another's is "not found", as everywhere) whose payToken this is: the order and its
    medOrgOrd. A bill published without a token (over REST) is refused like a wrong token."""
    order = payments.for_institution(conn, institution_id, order_id)
    row = conn.execute(select(T.c.token_hash, T.c.med_org_ord).where(T.c.order_id == order.id)).first()
    if row is None or not hmac.compare_digest(row.token_hash, _digest(token)):
        raise Forbidden("pay_token", "pay_token_mismatch", "payToken 与该支付订单不符（以 6201 返回的为准）",
                        "is not the payToken 6201 answered for this order")
    return order, row.med_org_ord
