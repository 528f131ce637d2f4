"""The cash leg of a payment: the payer's agreement at their payment institution, and driving a held
order to its end — the institution (or the payer's credit line) called between units, never inside one.

    hold + cash_requested (one unit) → pay (call) → answer (unit)

The hold and the cash request commit together when the payer has signed the agreement (on the institution's page,
before any payment: agreements.py): nothing is called between them, and a crash before that commit leaves nothing.
A payer without a signed agreement is never signed here: the held order is voided (`agreement_not_signed`, the
event `no_channel`) and the holder is told to sign in the app first.

A crash after the hold leaves `held` (recovery voids it: no institution ever heard of it); after
`cash_requested` recovery asks the institution (`ask`: the truth) and completes or voids. The
institution's pay is idempotent by our out_trade_no (the order id), so asking again never charges twice.

An order the institution *accepted* (signed: WeChat's 204, UnionPay's 00, Alipay's 10003) whose result is not known
yet keeps that on the order (``cash_accepted_at``). The institution may take a while to make an accepted order visible
to its query; so for such an order a signed "not found" is not believed until `ACCEPTED_WAIT` after the acceptance —
voiding it sooner risks money collected on a voided order. An order never accepted (a timeout, a 5xx before anything
happened) is voided on the first "not found" after recovery's short grace, as before.

``finish(conn, order)``, when given, runs inside the unit that leaves the order where this request ends it (the
answer's unit, or the hold's when it ends there): the API stores its receipt under the Idempotency-Key there, so
the answer needs no unit of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy.engine import Connection

from yibao.channels.base import (
    AcceptedUnknown,
    BadSignature,
    Channel,
    ChannelError,
    Declined,
    NotFoundAtChannel,
    OutcomeUnknown,
    PaymentRequest,
    sent_at_kw,
)
from yibao.crypto.pii import Keyring
from yibao.domain import payment_order as po
from yibao.domain.credit import BankOutcomeUnknown
from yibao.domain.errors import Conflict, NotFound, YibaoError
from yibao.services import Context
from yibao.services.agency import connectors
from yibao.services.agency.institutions import Institution
from yibao.services.credit import reservations as credit_reservations
from yibao.services.payments import agreements, medins
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order
from yibao.store.sql import Sql

log = logging.getLogger("yibao.payments")

Finish = Callable[[Connection, Order], None]  # run in the unit where the order ends for this request (see above)

# [guess] How long an institution may take to make a payment it accepted visible to its query. No institution publishes
# a bound (WeChat's papay deduction and UnionPay's consume usually settle within minutes; Alipay says to keep querying a
# 10003); half a day is far beyond any delay seen, and it must end well before the ledger holds do (orders.HOLD_TIMEOUT,
# 24 h): an order still in doubt when its holds expire could no longer be completed.
ACCEPTED_WAIT = timedelta(hours=12)


def _finished(conn: Connection, order: Order, finish: Finish | None) -> Order:
    if finish is not None:
        finish(conn, order)
    return order


# ---- the payer's password-free agreement at the institution ---------------------------------------

@dataclass(frozen=True)
class Agreement:
    out_agreement_no: str
    agreement_no: str | None  # None until the institution has signed it
    holder_token: str
    limit_fen: int


@dataclass(frozen=True)
class CashRoute:
    config: Any  # connectors.ChannelConfig
    agreement: Agreement


def cash_route(conn: Connection, keyring: Keyring, order: Order) -> CashRoute:
    """Where an order's cash goes: the institution's channel configuration and the payer's agreement there (one read)."""

    assert order.payment_institution_id is not None
    return CashRoute(connectors.require(conn, order.payment_institution_id),
                     agreement_for(conn, keyring, order.payer_id, order.payment_institution_id))


_AGREEMENT = Sql("""SELECT out_agreement_no, agreement_no, limit_fen, status FROM channel_agreements
                    WHERE person_id = :person_id AND payment_institution_id = :pi_id""")  # every payment: prepared (store/sql.py)


def agreement_for(conn: Connection, keyring: Keyring, payer_id: str, pi_id: str) -> Agreement:
    """The payer's password-free agreement at the institution: its number there once the holder has signed it on the
    institution's page (agreements.py), else None — a password-free payment is then refused, never signed here."""
    token = agreements.token_for(keyring, payer_id, pi_id)
    r = _AGREEMENT(conn, {"person_id": payer_id, "pi_id": pi_id}).first()
    if r is not None and r.status == "active":
        return Agreement(r.out_agreement_no, r.agreement_no, token, int(r.limit_fen))
    return Agreement(agreements.out_agreement_no(keyring, payer_id, pi_id), None, token, agreements.AGREEMENT_LIMIT_FEN)


# ---- driving a held order ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What the hold's unit left: the order, where its cash goes (read in that unit; None without cash to collect
    from an institution), and whether that unit also recorded the cash request (the institution is to be asked now)."""

    order: Order
    route: CashRoute | None
    requested: bool


def hold_and_request(conn: Connection, keyring: Keyring, now: datetime, *, order_id: str, institution: Institution, use_account: bool,
                     actor: str, pay_by: str = "channel", finish: Finish | None = None, created: Order | None = None) -> Held:
    """One unit: price and hold the order, then — when its cash goes password-free to an institution where the payer
    has signed the agreement, or to their credit line — record ``cash_requested`` too. An order that ends here (no
    cash) is handed to ``finish``. ``created``: the order as this unit inserted it (not read again)."""
    routes: list[CashRoute | None] = []

    def request_now(held: Order) -> bool:
        # Decided on the order as held, before its row is written: the hold and the cash request are then one UPDATE.
        if held.cash_source == "credit":  # the bank is asked next: recorded before, as for an institution
            routes.append(None)
            return True
        try:
            route = cash_route(conn, keyring, held)
        except YibaoError:
            return False  # no configuration: `collect` voids it (no channel), as before any request
        routes.append(route)
        return route.agreement.agreement_no is not None  # no signed agreement: `collect` voids it (agreement_not_signed)

    order = payments.hold(conn, now, order_id=order_id, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by,
                          created=created, request_cash_if=request_now)
    if order.status == po.CASH_REQUESTED and routes:
        return Held(order, routes[0], True)  # held and requested here, in this unit
    if order.status in po.CASH_IN_DOUBT:
        return Held(order, None, False)  # a twin of this request got there first (it is calling the institution, or died)
    if order.status != po.HELD:
        return Held(_finished(conn, order, finish), None, False)  # completed (no cash) or waiting for the holder: this request ends here
    return Held(order, routes[0] if routes else None, False)


async def hold(ctx: Context, order: Order, *, institution: Institution, use_account: bool, actor: str, pay_by: str = "channel",
               finish: Finish | None = None) -> Held:
    """Price and hold a created order (and request its cash); if that fails, the order is voided (its code stays used)
    and the failure raised."""
    now = ctx.now()
    try:
        return await ctx.run(lambda c: hold_and_request(c, ctx.keyring, now, order_id=order.id, institution=institution,
                                                        use_account=use_account, actor=actor, pay_by=pay_by, finish=finish))
    except YibaoError as exc:
        event = po.NO_CHANNEL if exc.code == "no_default_binding" else po.ABANDONED
        await ctx.run(lambda c: payments.void(c, now, order_id=order.id, event=event, actor=actor, only_from=(po.CREATED,)))
        raise


async def drive(ctx: Context, order: Order, *, institution: Institution, use_account: bool, actor: str, pay_by: str = "channel",
                finish: Finish | None = None) -> Order:
    """Take an order as far as it can go now (a retry of the same request resumes here)."""
    if order.status == po.CREATED:
        held = await hold(ctx, order, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by, finish=finish)
        return await after_hold(ctx, held, actor=actor, finish=finish)
    return await _resume(ctx, order, actor, finish)


async def after_hold(ctx: Context, held: Held, *, actor: str, finish: Finish | None = None) -> Order:
    """Go on from what the hold's unit left (`hold_and_request`, run on its own or in a kind's first unit)."""
    order = held.order
    if held.requested:  # cash_requested committed with the hold: ask the institution (or the bank) now
        if order.cash_source == "credit":
            return await _credit_pay(ctx, order, actor, finish)
        assert held.route is not None and held.route.agreement.agreement_no is not None
        return await _pay(ctx, ctx.connectors.get(held.route.config), order, held.route.agreement.agreement_no, actor, finish)
    return await _resume(ctx, order, actor, finish, held.route)


async def _resume(ctx: Context, order: Order, actor: str, finish: Finish | None, route: CashRoute | None = None) -> Order:
    if order.status == po.HELD:
        return await collect(ctx, order, actor=actor, route=route, finish=finish)
    if order.status == po.CASH_REQUESTED and order.cash_source != "credit":
        # Requested by a copy of this request that is calling the institution now (or died doing so): asking for the
        # same out_trade_no again is the same trade, and answers once it is decided — a query could find nothing yet
        # and void a payment the institution is about to collect. Sent again, a refusal is not believed: a real
        # institution refuses a second pay of a trade it already collected (ORDERPAID, ACQ.TRADE_HAS_SUCCESS), so
        # only a query may void the order (`_pay` ``resent``); and the order's time moves first, so a recovery that
        # read it before cannot void it on a stale "not found" while the request is on its way (review of issue 13).
        return await collect(ctx, order, actor=actor, finish=finish, resend=True)
    if order.status in po.CASH_IN_DOUBT:
        return await ask(ctx, order, actor=actor, finish=finish)
    return order


def not_signed(pi_id: str) -> Conflict:
    return Conflict("payment_institution_id", "agreement_not_signed",
                    "付款人尚未在该支付机构签署免密支付协议：请先在应用的绑定页面完成签约，再付款",
                    f"the payer has not signed the password-free agreement at {pi_id}: sign it in the app's bindings first, then pay")


async def _route(ctx: Context, order: Order, actor: str, route: CashRoute | None = None) -> tuple[Channel, str]:
    """The institution's connector and the payer's signed agreement number there; `agreement_not_signed` without one."""
    if route is None:
        route = await ctx.run(lambda c: cash_route(c, ctx.keyring, order), write=False)
    if route.agreement.agreement_no is None:
        raise not_signed(route.config.payment_institution_id)
    return ctx.connectors.get(route.config), route.agreement.agreement_no


async def collect(ctx: Context, order: Order, *, actor: str, route: CashRoute | None = None, finish: Finish | None = None,
                  resend: bool = False) -> Order:
    """Collect the cash of a held order (password-free) or of a confirmed one (already cash_requested)."""
    assert order.payment_institution_id is not None
    if order.cash_source == "credit":
        now = ctx.now()
        order = await ctx.run(lambda c: payments.request_cash(c, now, order_id=order.id, actor=actor))  # recorded before the bank is called
        return order if order.terminal else await _credit_pay(ctx, order, actor, finish)
    try:
        channel, agreement_no = await _route(ctx, order, actor, route)
    except (ChannelError, YibaoError) as exc:
        if order.status in po.CASH_IN_DOUBT:
            raise  # a confirmed order cannot be voided on our side alone once requested; recovery will ask
        log.warning("payment %s: no channel for the cash (%s)", order.id, exc.code)
        now = ctx.now()
        return await ctx.run(lambda c: _finished(c, payments.void(c, now, order_id=order.id, event=po.NO_CHANNEL, actor=actor,
                                                                  only_from=(po.HELD, po.AWAITING_CONFIRMATION)), finish))
    now = ctx.now()

    order = await ctx.run(lambda c: payments.request_cash(c, now, order_id=order.id, actor=actor, resend=resend))
    if order.terminal:
        return order
    return await _pay(ctx, channel, order, agreement_no, actor, finish, resent=resend)


async def _pay(ctx: Context, channel: Channel, order: Order, agreement_no: str, actor: str, finish: Finish | None = None,
               resent: bool = False) -> Order:
    trade_no, accepted = None, False
    try:
        result = await channel.pay(PaymentRequest(order.id, order.cash_pay, payments.CASH_DESCRIPTION, agreement_no, sent_at=order.created_at))
        outcome, trade_no = ("succeeded" if result.status == "succeeded" else "unknown"), result.trade_no
        accepted = outcome == "unknown"  # "processing": accepted, signed, its result to come
    except Declined:
        outcome = "unknown" if resent else "declined"  # resent: the refusal may be of a second pay of a collected trade
    except AcceptedUnknown as exc:
        outcome, accepted = "unknown", True  # accepted, then asking found nothing (yet) or gave no answer
        log.info("payment %s: accepted by the institution, its result not known yet (%s); recovery will ask", order.id, exc.code)
    except (OutcomeUnknown, NotFoundAtChannel, ChannelError) as exc:
        outcome = "unknown"  # timeout, 5xx, unsigned answer: only a query (or a verified notification) may end it
        log.warning("payment %s: the cash outcome is unknown (%s: %s); recovery will ask", order.id, type(exc).__name__, exc.code)
    else:
        if outcome == "unknown":
            log.info("payment %s: the institution answered %s; waiting for its result", order.id, result.status)
    now = ctx.now()
    return await ctx.run(lambda c: _finished(c, payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no,
                                                                     actor=actor, accepted=accepted), finish))


async def ask(ctx: Context, order: Order, *, actor: str, finish: Finish | None = None) -> Order:
    """Ask the institution what became of the cash (PSync: the truth), and record it."""
    assert order.payment_institution_id is not None
    if order.cash_source == "credit":
        return await _credit_ask(ctx, order, actor, finish)
    if order.cash_source == "wallet":  # a med-ins order: the wallet collected the self-pay part; its mixed order says
        return await medins.ask(ctx, order, actor=actor, finish=finish)  # `finish` in the unit that records it, as below
    trade_no = None
    try:
        channel = await ctx.channel(order.payment_institution_id)
        truth = await channel.query(order.id, **sent_at_kw(channel, order.created_at))  # UnionPay names it by orderId + txnTime
        outcome = {"succeeded": "succeeded", "failed": "failed"}.get(truth.status, "unknown")
        trade_no = truth.trade_no
        if truth.status == "succeeded" and truth.amount_fen != order.cash_pay:
            log.error("payment %s: the institution reports %s fen, we asked %s", order.id, truth.amount_fen, order.cash_pay)
            outcome = "unknown"  # never complete on an amount we did not ask for; an operator looks at it
    except NotFoundAtChannel:
        outcome = "not_found"  # signed: it never saw the order, so nothing was collected
        if order.cash_accepted_at is not None and ctx.now() < order.cash_accepted_at + ACCEPTED_WAIT:
            outcome = "unknown"  # it accepted the request: not visible yet is not "never seen" (module docstring)
            log.info("payment %s: accepted at %s and not found yet; asked again later", order.id, order.cash_accepted_at)
    except (OutcomeUnknown, BadSignature, ChannelError, YibaoError) as exc:
        outcome = "unknown"
        log.warning("payment %s: the query gave no answer (%s: %s); asked again later", order.id, type(exc).__name__, exc.code)
    now = ctx.now()
    return await ctx.run(lambda c: _finished(c, payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no,
                                                                     actor=actor, seen=order.updated_at), finish))


async def _credit_pay(ctx: Context, order: Order, actor: str, finish: Finish | None = None) -> Order:
    """The cash from the payer's credit line: reserved at the bank (in place of `Channel.pay`), captured at once
    (the bank pays the hospital; the holder owes a bill), and the order completed. A refusal (line exceeded,
    suspended, the bank's no) voids the order — the line's hold released by credit; no answer: unknown, and
    recovery asks `credit_reservations.resolve`."""
    trade_no = None
    if not await _reaches_bank(ctx, order):
        outcome = "declined"  # the platform reaches no such bank: nothing was asked of it or held on the line
    else:
        try:
            await credit_reservations.reserve(ctx, order_ref=order.id, holder_id=order.payer_id, institution_id=order.institution_id,
                                              amount=order.cash_pay, pi_id=order.payment_institution_id, actor=actor)
            captured = await credit_reservations.capture(ctx, order.id, actor=actor)
            outcome, trade_no = "succeeded", captured.bill_no
        except BankOutcomeUnknown:
            outcome = "unknown"
        except YibaoError as exc:
            log.info("payment %s: credit refused (%s)", order.id, exc.code)
            outcome = "declined"
    now = ctx.now()
    return await ctx.run(lambda c: _finished(c, payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no,
                                                                     actor=actor), finish))


async def _reaches_bank(ctx: Context, order: Order) -> bool:
    assert order.payment_institution_id is not None
    try:
        await ctx.bank(order.payment_institution_id)
    except NotFound:
        return False
    return True


async def _credit_ask(ctx: Context, order: Order, actor: str, finish: Finish | None = None) -> Order:
    """Recovery for a credit order: `credit_reservations.resolve` (the bank's truth), then capture a reservation still open."""
    trade_no = None
    if not await _reaches_bank(ctx, order):
        # The bank cannot be asked: with nothing held on the line nothing happened there (voided); with a
        # reservation, only the bank knows what became of it — the order stays in doubt until it is reached again.
        held = await ctx.run(lambda c: credit_reservations.exists(c, order.id), write=False)
        outcome = "unknown" if held else "not_found"
    else:
        try:
            r = await credit_reservations.resolve(ctx, order.id, actor=actor)
            if r.state == "reserved":
                r = await credit_reservations.capture(ctx, order.id, actor=actor)
            outcome = {"captured": "succeeded", "failed": "failed", "released": "failed"}.get(r.state, "unknown")
            trade_no = r.bill_no
        except NotFound:
            outcome = "not_found"  # no reservation was ever made: nothing was held at the bank
        except BankOutcomeUnknown:
            outcome = "unknown"
        except YibaoError as exc:
            log.warning("payment %s: credit resolve refused (%s)", order.id, exc.code)
            outcome = "unknown"
    now = ctx.now()
    return await ctx.run(lambda c: _finished(c, payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no,
                                                                     actor=actor), finish))
