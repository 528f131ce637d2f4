"""Payment institutions' notifications: verified by the institution's connector, then acted on once.

Anything unverified is refused in the institution's own terms (so it resends) and never acted on —
the order is then settled by asking the institution (recovery's query). A verified event is applied
once: its dedup claim is inserted in the same unit of work as its effect. A signed notification whose
amount is not the order's is recorded as an anomaly under a key of its own (the amount in it) and gives
the event's key back: the correct notification that follows is applied, not dropped as a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from yibao.channels.base import Ack, Channel, ChannelError, Notification
from yibao.domain import payment_order as po
from yibao.domain.errors import NotFound
from yibao.observe import metrics
from yibao.services import Context
from yibao.services.agency import connectors
from yibao.services.books import audit
from yibao.services.payments import agreements
from yibao.services.payments import orders as payments
from yibao.store.sql import Sql
from yibao.store.tables import channel_notifications as CN
from yibao.store.upsert import insert_ignore

log = logging.getLogger("yibao.payments")
WRONG_AMOUNT = "wrong_amount"  # _effect's verdict: recorded by apply as an anomaly that does not use up the event's key


async def receive(ctx: Context, pi_id: str, headers: Mapping[str, str], body: bytes) -> Ack:
    """A notification as it arrived: verified with the institution's connector, applied once; the answer the
    institution expects (its own format) is returned, refused when the notification does not verify.

    The connector this process last built for the institution verifies it without a read of its configuration (one
    unit fewer per payment); the unit that applies it checks that configuration's version first, and a notification
    verified under a configuration changed since (a key rotated) is verified again under the current one."""
    built = ctx.connectors.last_built(pi_id)
    if built is not None:
        ack = await _receive(ctx, pi_id, built[0], built[1], headers, body, read=False)
        if ack is not None:
            return ack
    cfg = await ctx.run(lambda c: connectors.get(c, pi_id), write=False)
    if cfg is None:
        raise NotFound("payment_institution_id", "not_found", "支付机构不存在或未配置", "no such configured payment institution")
    ack = await _receive(ctx, pi_id, cfg, ctx.connectors.get(cfg), headers, body, read=True)
    if ack is None:  # changed again between the read and the unit: refused, the institution resends
        log.warning("notification from %s refused: its configuration changed while it was verified", pi_id)
        return ctx.connectors.get(cfg).ack(False)
    return ack


async def _receive(ctx: Context, pi_id: str, cfg: connectors.ChannelConfig, channel: Channel, headers: Mapping[str, str],
                   body: bytes, *, read: bool) -> Ack | None:
    """Verify with ``channel`` and apply under ``cfg`` if it is still the institution's configuration (else None).
    ``read``: ``cfg`` was just read; a connector built before that refuses a notification gets None (try the current one)."""
    try:
        notification = channel.verify_notification(dict(headers), body)
    except ChannelError as exc:
        if not read:
            return None
        log.warning("notification from %s refused: %s", pi_id, exc.code)
        return channel.ack(False)
    now = ctx.now()

    def unit(c: Connection) -> str | None:
        if connectors.version_of(c, pi_id) != cfg.version:
            return None
        return apply(c, now, pi_id=pi_id, region=cfg.region, notification=notification, actor=f"channel:{pi_id}")

    effect = await ctx.run(unit)
    if effect is None:
        return None
    log.info("notification from %s (%s %s): %s", pi_id, notification.kind, notification.status, effect)
    if effect not in ("duplicate", ALREADY_RECORDED):  # recorded now, for the first time: how long after the event
        metrics.notification_recorded(pi_id, notification.kind, notification.event_at, now)
    return channel.ack(True)


ALREADY_RECORDED = "already_recorded"  # apply's answer for a payment's success the order already shows: nothing claimed


def _already_recorded(order: payments.Order | None, pi_id: str, n: Notification) -> bool:
    """A payment's success the order already shows — the institution's answer to our request or query recorded it
    first: nothing to act on, so `apply` claims nothing and its unit writes nothing (a read-only commit, no WAL flush;
    issue 13). Everything else — an order still in doubt, a failure, an amount that is not the order's — is claimed."""
    return (n.kind == "payment" and n.status == "succeeded" and order is not None and order.payment_institution_id == pi_id
            and order.status == po.COMPLETED and order.anomaly is None and (n.amount_fen is None or n.amount_fen == order.cash_pay))


# One notification per payment: its claim and its effect as prepared SQL (store/sql.py), not Core (~100 µs each).
_CLAIM = Sql("""INSERT INTO channel_notifications (payment_institution_id, dedup_key, region, kind, out_trade_no, status, effect, created_at)
                VALUES (:payment_institution_id, :dedup_key, :region, :kind, :out_trade_no, :status, 'pending', :now)
                ON CONFLICT DO NOTHING RETURNING dedup_key""")
_EFFECT = Sql("UPDATE channel_notifications SET effect = :effect WHERE payment_institution_id = :payment_institution_id AND dedup_key = :dedup_key")


def apply(conn: Connection, now: datetime, *, pi_id: str, region: str, notification: Notification, actor: str) -> str:
    """Act on a verified notification once: the dedup claim is inserted in this same unit as its effect,
    so a crash between the two cannot lose the event or apply it twice. Returns what was done (`ALREADY_RECORDED`, with
    nothing claimed, for a success the order already shows)."""
    key = "|".join(notification.dedup_key)[:200]
    order = payments.get(conn, notification.out_trade_no) if notification.kind == "payment" and notification.out_trade_no else None
    if _already_recorded(order, pi_id, notification):
        return ALREADY_RECORDED
    claimed = _CLAIM(conn, dict(payment_institution_id=pi_id, dedup_key=key, region=region, kind=notification.kind,
                                out_trade_no=notification.out_trade_no, status=notification.status, now=now)).first() is not None
    if not claimed:
        return "duplicate"
    effect = _effect(conn, now, pi_id, notification, actor, order)
    if effect == WRONG_AMOUNT:
        # Not applied, so not this event: free its key, and remember the anomaly under one of its own (a resend of the
        # same wrong notification is a duplicate of that, audited once).
        conn.execute(delete(CN).where(CN.c.payment_institution_id == pi_id, CN.c.dedup_key == key))
        if not insert_ignore(conn, CN, dict(payment_institution_id=pi_id, dedup_key=f"{key}|amount:{notification.amount_fen}"[:200],
                                            region=region, kind=notification.kind, out_trade_no=notification.out_trade_no,
                                            status=notification.status, effect="anomaly", created_at=now)):
            return "duplicate"
        order = payments.require(conn, notification.out_trade_no)  # type: ignore[arg-type]
        audit.append(conn, region=order.region, actor=actor, action="payment.anomaly", subject=order.id,
                     detail={"anomaly": "amount_mismatch", "cash_pay": order.cash_pay, "notified": notification.amount_fen}, now=now)
        return "anomaly"
    _EFFECT(conn, {"payment_institution_id": pi_id, "dedup_key": key, "effect": effect})
    return effect


def _effect(conn: Connection, now: datetime, pi_id: str, n: Notification, actor: str, order: payments.Order | None) -> str:
    """``order``: the payment's order as `apply` read it before the claim (record_cash reads it again, locked)."""
    if n.kind == "agreement":
        return agreements.apply_notification(conn, now, pi_id, n, actor)
    if n.kind != "payment" or n.out_trade_no is None or n.status not in ("succeeded", "failed"):
        return "ignored"
    if order is None or order.payment_institution_id != pi_id:
        return "unknown_order"
    if n.amount_fen is not None and n.amount_fen != order.cash_pay:  # signed, but not what we asked for: never complete on it
        return WRONG_AMOUNT
    if order.status not in po.CASH_IN_DOUBT and not order.terminal:
        return "ignored"  # never asked for: nothing the institution says can complete it
    done = payments.record_cash(conn, now, order_id=order.id, outcome=n.status, trade_no=n.trade_no, actor=actor)
    return done.status if done.anomaly is None else "anomaly"
