"""The holder's confirmation of a payment above their password-free limit: the PIN in the app, then the
cash is collected (`confirm`); or the holder refuses it (`decline`) and everything held is released.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from yibao.channels.base import ChannelError
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict, InputError, NotFound, YibaoError
from yibao.services import Context
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments
from yibao.services.payments import pins as payment_pins
from yibao.services.payments.orders import Order
from yibao.store.tables import payment_orders as O

log = logging.getLogger("yibao.payments")


def pending_for(conn: Connection, payer_id: str, now: datetime) -> list[Order]:
    rows = conn.execute(select(O).where(O.c.payer_id == payer_id, O.c.status == po.AWAITING_CONFIRMATION).order_by(O.c.created_at)).all()
    return [o for o in map(payments.from_row, rows) if o.confirm_expires_at is None or o.confirm_expires_at > now]


def payer_order(conn: Connection, order_id: str, payer_id: str, *, lock: bool = False) -> Order:
    """The payer's own order (someone else's is "not found")."""
    order = payments.get(conn, order_id, lock=lock)
    if order is None or order.payer_id != payer_id:  # someone else's payment: the same answer as none
        raise NotFound("payment_id", "not_found", "支付单不存在", "payment not found")
    return order


_ENDED_ZH = {po.COMPLETED: "已支付完成", po.VOIDED: "已撤销", po.CASH_REQUESTED: "正在扣款", po.CASH_UNKNOWN: "结果确认中",
             po.REFUNDING: "退款中", po.PARTIALLY_REFUNDED: "已部分退款", po.REFUNDED: "已全额退款"}


def _not_waiting(order: Order) -> Conflict:
    where = _ENDED_ZH.get(order.status, "不在待确认状态")
    return Conflict("payment_id", "not_awaiting_confirmation", f"该支付不再等待确认：{where}",
                    f"the payment is no longer awaiting confirmation (it is {order.status.replace('_', ' ')})")


def record_pin(conn: Connection, now: datetime, *, order_id: str, payer_id: str, pin_ok: bool | None, actor: str) -> Order | YibaoError:
    """The holder's PIN for a waiting payment (checked by the caller against the stored hash, outside the unit:
    ``pin_ok`` None means no PIN is set). Right: cash_requested. Wrong: counted, and after payments.MAX_PIN_ATTEMPTS
    the payment is voided; the holder's own count (pins.PER_HOLDER, across payments and bills) may lock their PIN
    first — then the refusal says so, with Retry-After, and the payment still waits. A refusal is returned, to be
    raised after this unit commits the count."""
    order = payer_order(conn, order_id, payer_id, lock=True)
    if order.status != po.AWAITING_CONFIRMATION:
        raise _not_waiting(order)
    if order.confirm_expires_at is not None and order.confirm_expires_at <= now:
        payments.void_now(conn, order, po.CONFIRMATION_EXPIRED, now, actor)
        return Conflict("payment_id", "confirmation_expired", "确认已超时，支付已撤销，请重新扫码", "confirmation timed out; the payment was voided")
    if pin_ok is None:
        raise Conflict("pin", "pin_not_set", "请先设置支付密码", "set a payment PIN first")
    if not pin_ok:
        attempts = order.pin_attempts + 1
        left = payments.MAX_PIN_ATTEMPTS - attempts
        if left <= 0:
            conn.execute(update(O).where(O.c.id == order.id).values(pin_attempts=attempts))
            payments.void_now(conn, payments.require(conn, order.id), po.PIN_EXHAUSTED, now, actor)
            return Conflict("pin", "pin_attempts_exhausted", "支付密码错误次数过多，支付已撤销", "too many wrong PINs; the payment was voided")
        payments.move(conn, order, po.WRONG_PIN, now, actor, pin_attempts=attempts)
        wait = payment_pins.wait_for(conn, now, payer_id)
        if wait is not None:
            return payment_pins.pin_locked("pin", wait)
        left = min(left, payment_pins.PER_HOLDER.left(conn, now, payer_id))
        return InputError("pin", "pin_wrong", f"支付密码错误，还可尝试{left}次", f"wrong PIN; {left} attempts left")
    return payments.move(conn, order, po.REQUEST_CASH, now, actor)


def decline(conn: Connection, now: datetime, *, order_id: str, payer_id: str, actor: str) -> Order:
    order = payer_order(conn, order_id, payer_id, lock=True)
    if order.status == po.VOIDED and order.void_reason == po.HOLDER_DECLINED:
        return order
    if order.status != po.AWAITING_CONFIRMATION:
        raise _not_waiting(order)
    return payments.void_now(conn, order, po.HOLDER_DECLINED, now, actor)


# ---- the PIN, then the cash ------------------------------------------------------------------------


async def confirm(ctx: Context, *, order_id: str, payer_id: str, pin: str, actor: str) -> Order:
    """The holder confirms a waiting payment with the PIN; then the cash is collected. A payment that no longer waits
    is said so before any PIN is checked (nothing to confirm: no PIN is tried on it)."""
    payment_pins.check_format(pin)
    order = await ctx.run(lambda c: payer_order(c, order_id, payer_id), write=False)
    if order.status != po.AWAITING_CONFIRMATION:
        raise _not_waiting(order)
    if order.confirm_expires_at is not None and order.confirm_expires_at <= ctx.now():
        now = ctx.now()
        expired = await ctx.run(lambda c: record_pin(c, now, order_id=order_id, payer_id=payer_id, pin_ok=None, actor=actor))
        raise expired if isinstance(expired, YibaoError) else _not_waiting(expired)
    if order.status == po.AWAITING_CONFIRMATION and order.payment_institution_id is not None and order.cash_source != "credit":
        # The agreement first (a call): once cash_requested, only the institution's answer may end the order.
        try:
            await cash_leg._route(ctx, order, actor)
        except (ChannelError, YibaoError) as exc:
            log.warning("payment %s: no channel for the cash (%s)", order.id, exc.code)
            now = ctx.now()
            return await ctx.run(lambda c: payments.void(c, now, order_id=order_id, event=po.NO_CHANNEL, actor=actor,
                                                         only_from=(po.AWAITING_CONFIRMATION,)))
    pin_ok = await payment_pins.verify(ctx, payer_id, pin)
    now = ctx.now()
    result = await ctx.run(lambda c: record_pin(c, now, order_id=order_id, payer_id=payer_id, pin_ok=pin_ok, actor=actor))
    if isinstance(result, YibaoError):
        raise result  # the counted attempt (or the void) is committed
    if result.cash_source == "credit":
        return await cash_leg._credit_pay(ctx, result, actor)
    try:
        channel, agreement_no = await cash_leg._route(ctx, result, actor)
    except (ChannelError, YibaoError):
        return result  # cash_requested without a call: recovery asks the institution (not found → voided)
    return await cash_leg._pay(ctx, channel, result, agreement_no, actor)
