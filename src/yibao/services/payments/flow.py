"""Driving payment orders: units of work (services/payments.py) with the institution called between them.

Nothing here holds a transaction across a call to an institution. The order of steps is what makes
a crash at any point recoverable:

    hold (unit) → agreement signed if missing (call, unit) → cash_requested (unit) → pay (call) → answer (unit)

A crash after the hold leaves `held` (recovery voids it: no institution ever heard of it); after
`cash_requested` recovery asks the institution (`query`, the truth) and completes or voids. The
institution's pay is idempotent by our out_trade_no (the order id), so asking again never charges twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.engine import Connection

from yibao.channels.base import (
    AgreementRequest,
    BadSignature,
    Channel,
    ChannelError,
    Declined,
    NotFoundAtChannel,
    OutcomeUnknown,
    PaymentRequest,
)
from yibao.crypto.pii import Keyring
from yibao.domain import payment_order as po
from yibao.domain.errors import Conflict as YibaoConflict
from yibao.domain.errors import YibaoError
from yibao.services.agency import connectors as channel_registry
from yibao.services.agency.institutions import Institution
from yibao.services.books import ledger
from yibao.services.payments import orders as payments
from yibao.services.payments import pins as payment_pins
from yibao.services.payments.orders import Order

if TYPE_CHECKING:  # bills imports this module's neighbours; at run time it is imported where used
    from yibao.services.payments import bills

log = logging.getLogger("yibao.payments")

CASH_GRACE = timedelta(seconds=60)  # an in-flight request (timeout ≤ 60 s) has finished by then; recovery queries after it
HELD_GRACE = timedelta(seconds=60)  # a held order not sent on within this is abandoned


@dataclass
class Context:
    """What a flow needs: run a unit (``run(work, write=...)``, awaitable), the clock, the keyring, the connectors."""

    run: Callable[..., Awaitable[Any]]
    now: Callable[[], datetime]
    keyring: Keyring
    channels: channel_registry.Channels
    actor: str = "platform:payments"
    credit: Any = None  # services.credit.CreditContext: the banks' credit lines, for orders paid by credit


def context_for_database(db: Any, keyring: Keyring, channels: channel_registry.Channels | None = None) -> Context:
    """A context for a process without an API (the CLI, tests, recovery at start-up): units run on a thread."""
    async def run(work: Callable[[Connection], Any], *, write: bool = True) -> Any:
        return await asyncio.to_thread(db.run, work, write=write)
    return Context(run, db.clock, keyring, channels or channel_registry.Channels(keyring))


# ---- one-code payment ------------------------------------------------------------------------------

async def onecode(ctx: Context, *, institution: Institution, request_key: str, request_hash: str, code: str | None, terminal_id: str | None,
                  visit_id: str | None, lines: list[dict] | None, use_account: bool, actor: str, pay_by: str = "channel",
                  paycode_id: int | None = None) -> Order:
    """一码支付: hold, then (cash within the password-free limit) collect it and complete or void.

    Returns the order as it then stands: completed, voided, awaiting_confirmation (the holder is
    asked in the app), or cash_unknown (recovery and notifications will finish it). Raises a refused code.
    """
    now = ctx.now()
    started = await ctx.run(lambda c: payments.start_onecode(c, ctx.keyring, now, institution=institution, request_key=request_key,
                                                             request_hash=request_hash, code=code, terminal_id=terminal_id, visit_id=visit_id,
                                                             lines=lines, actor=actor, paycode_id=paycode_id))
    if isinstance(started, YibaoError):
        raise started  # its refusal row is committed
    return await drive(ctx, started, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by)


async def face(ctx: Context, *, institution: Institution, request_key: str, request_hash: str, authorization_id: str,
               visit_id: str | None, lines: list[dict] | None, use_account: bool, actor: str, pay_by: str = "channel") -> Order:
    """刷脸支付: the face authorization (a verified 1:1 match, single use) in place of the code; then the same flow."""
    now = ctx.now()
    started = await ctx.run(lambda c: payments.start_face(c, now, institution=institution, request_key=request_key,
                                                          request_hash=request_hash, authorization_id=authorization_id,
                                                          visit_id=visit_id, lines=lines, actor=actor))
    return await drive(ctx, started, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by)


async def hold(ctx: Context, order: Order, *, institution: Institution, use_account: bool, actor: str, pay_by: str = "channel") -> Order:
    """Price and hold a created order; if that fails, the order is voided (its code stays used) and the failure raised."""
    now = ctx.now()
    try:
        return await ctx.run(lambda c: payments.hold(c, now, order_id=order.id, institution=institution, use_account=use_account, actor=actor,
                                                     pay_by=pay_by))
    except YibaoError as exc:
        event = po.NO_CHANNEL if exc.code == "no_default_binding" else po.ABANDONED
        await ctx.run(lambda c: payments.void(c, now, order_id=order.id, event=event, actor=actor, only_from=(po.CREATED,)))
        raise


async def drive(ctx: Context, order: Order, *, institution: Institution, use_account: bool, actor: str, pay_by: str = "channel") -> Order:
    """Take an order as far as it can go now (a retry of the same request resumes here)."""
    if order.status == po.CREATED:
        order = await hold(ctx, order, institution=institution, use_account=use_account, actor=actor, pay_by=pay_by)
    if order.status == po.HELD:
        return await collect(ctx, order, actor=actor)
    if order.status in po.CASH_IN_DOUBT:
        return await ask(ctx, order, actor=actor)
    return order


async def _channel(ctx: Context, pi_id: str) -> Channel:
    cfg = await ctx.run(lambda c: channel_registry.require(c, pi_id), write=False)
    return ctx.channels.get(cfg)


async def _route(ctx: Context, order: Order, actor: str) -> tuple[Channel, str]:
    """The institution's connector and the payer's agreement number there, signed now if this is their first payment."""
    route = await ctx.run(lambda c: payments.cash_route(c, ctx.keyring, order), write=False)
    channel = ctx.channels.get(route.config)
    agreement = route.agreement
    if agreement.agreement_no is not None:
        return channel, agreement.agreement_no
    signed = await channel.sign_agreement(AgreementRequest(agreement.out_agreement_no, agreement.holder_token, agreement.limit_fen))
    if signed.status != "active":
        raise Declined(channel.name, "agreement_not_active", "免密协议未生效", f"{channel.name}: the agreement is {signed.status}")
    now = ctx.now()
    await ctx.run(lambda c: payments.record_agreement(c, now, payer_id=order.payer_id, pi_id=route.config.payment_institution_id,
                                                      region=order.region, out_agreement_no=signed.out_agreement_no,
                                                      agreement_no=signed.agreement_no, limit_fen=signed.limit_fen, actor=actor))
    return channel, signed.agreement_no


async def collect(ctx: Context, order: Order, *, actor: str) -> Order:
    """Collect the cash of a held order (password-free) or of a confirmed one (already cash_requested)."""
    assert order.payment_institution_id is not None
    if order.cash_source == "credit":
        now = ctx.now()
        order = await ctx.run(lambda c: payments.request_cash(c, now, order_id=order.id, actor=actor))  # recorded before the bank is called
        return order if order.terminal else await _credit_pay(ctx, order, actor)
    try:
        channel, agreement_no = await _route(ctx, order, actor)
    except (ChannelError, YibaoError) as exc:
        if order.status in po.CASH_IN_DOUBT:
            raise  # a confirmed order cannot be voided on our side alone once requested; recovery will ask
        log.warning("payment %s: no channel for the cash (%s)", order.id, exc.code)
        now = ctx.now()
        return await ctx.run(lambda c: payments.void(c, now, order_id=order.id, event=po.NO_CHANNEL, actor=actor,
                                                     only_from=(po.HELD, po.AWAITING_CONFIRMATION)))
    now = ctx.now()
    order = await ctx.run(lambda c: payments.request_cash(c, now, order_id=order.id, actor=actor))  # recorded before the call
    if order.terminal:
        return order
    return await _pay(ctx, channel, order, agreement_no, actor)


async def _pay(ctx: Context, channel: Channel, order: Order, agreement_no: str, actor: str) -> Order:
    trade_no = None
    try:
        result = await channel.pay(PaymentRequest(order.id, order.cash_pay, payments.CASH_DESCRIPTION, agreement_no))
        outcome, trade_no = ("succeeded" if result.status == "succeeded" else "unknown"), result.trade_no
    except Declined:
        outcome = "declined"
    except (OutcomeUnknown, NotFoundAtChannel, ChannelError):
        outcome = "unknown"  # timeout, 5xx, unsigned answer: only a query (or a verified notification) may end it
    now = ctx.now()
    return await ctx.run(lambda c: payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no, actor=actor))


async def ask(ctx: Context, order: Order, *, actor: str) -> Order:
    """Ask the institution what became of the cash (PSync: the truth), and record it."""
    assert order.payment_institution_id is not None
    if order.cash_source == "credit":
        return await _credit_ask(ctx, order, actor)
    trade_no = None
    try:
        channel = await _channel(ctx, order.payment_institution_id)
        truth = await channel.query(order.id)
        outcome = {"succeeded": "succeeded", "failed": "failed"}.get(truth.status, "unknown")
        trade_no = truth.trade_no
        if truth.status == "succeeded" and truth.amount_fen != order.cash_pay:
            log.error("payment %s: the institution reports %s fen, we asked %s", order.id, truth.amount_fen, order.cash_pay)
            outcome = "unknown"  # never complete on an amount we did not ask for; an operator looks at it
    except NotFoundAtChannel:
        outcome = "not_found"  # signed: it never saw the order, so nothing was collected
    except (OutcomeUnknown, BadSignature, ChannelError, YibaoError):
        outcome = "unknown"
    now = ctx.now()
    return await ctx.run(lambda c: payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no, actor=actor))


# ---- credit as the cash source (services/credit.py) ------------------------------------------------

async def _credit_pay(ctx: Context, order: Order, actor: str) -> Order:
    """The cash from the payer's credit line: reserved at the bank (in place of `Channel.pay`), captured at once
    (the bank pays the hospital; the holder owes a bill), and the order completed. A refusal (line exceeded,
    suspended, the bank's no) voids the order — the line's hold released by credit; no answer: unknown, and
    recovery asks `credit.resolve`."""
    from yibao.domain.credit import BankOutcomeUnknown
    from yibao.services.credit import lines as credit

    trade_no = None
    if ctx.credit is None:
        outcome = "unknown"  # this process has no bank connection: recovery (which has) resolves it
    else:
        try:
            await credit.reserve(ctx.credit, order_ref=order.id, holder_id=order.payer_id, institution_id=order.institution_id,
                                 amount=order.cash_pay, pi_id=order.payment_institution_id, actor=actor)
            captured = await credit.capture(ctx.credit, order.id, actor=actor)
            outcome, trade_no = "succeeded", captured.bill_no
        except BankOutcomeUnknown:
            outcome = "unknown"
        except YibaoError as exc:
            log.info("payment %s: credit refused (%s)", order.id, exc.code)
            outcome = "declined"
    now = ctx.now()
    return await ctx.run(lambda c: payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no, actor=actor))


async def _credit_ask(ctx: Context, order: Order, actor: str) -> Order:
    """Recovery for a credit order: `credit.resolve` (the bank's truth), then capture a reservation still open."""
    from yibao.domain.credit import BankOutcomeUnknown
    from yibao.domain.errors import NotFound
    from yibao.services.credit import lines as credit

    trade_no = None
    if ctx.credit is None:
        outcome = "unknown"
    else:
        try:
            r = await credit.resolve(ctx.credit, order.id, actor=actor)
            if r.state == "reserved":
                r = await credit.capture(ctx.credit, order.id, actor=actor)
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
    return await ctx.run(lambda c: payments.record_cash(c, now, order_id=order.id, outcome=outcome, trade_no=trade_no, actor=actor))


# ---- the holder's confirmation ---------------------------------------------------------------------

async def confirm(ctx: Context, *, order_id: str, payer_id: str, pin: str, actor: str) -> Order:
    """The holder confirms a waiting payment with the PIN; then the cash is collected."""
    payment_pins.check_format(pin)
    order = await ctx.run(lambda c: payments.payer_order(c, order_id, payer_id), write=False)
    if order.status == po.AWAITING_CONFIRMATION and order.payment_institution_id is not None and order.cash_source != "credit":
        # The agreement first (a call): once cash_requested, only the institution's answer may end the order.
        try:
            await _route(ctx, order, actor)
        except (ChannelError, YibaoError) as exc:
            log.warning("payment %s: no channel for the cash (%s)", order.id, exc.code)
            now = ctx.now()
            return await ctx.run(lambda c: payments.void(c, now, order_id=order_id, event=po.NO_CHANNEL, actor=actor,
                                                         only_from=(po.AWAITING_CONFIRMATION,)))
    stored = await ctx.run(lambda c: payment_pins.stored(c, payer_id), write=False)
    candidate = await asyncio.to_thread(payment_pins.pin_hash, ctx.keyring, pin, stored.salt) if stored else None
    pin_ok = payment_pins.matches(stored, candidate)
    now = ctx.now()
    result = await ctx.run(lambda c: payments.confirm(c, now, order_id=order_id, payer_id=payer_id, pin_ok=pin_ok, actor=actor))
    if isinstance(result, YibaoError):
        raise result  # the counted attempt (or the void) is committed
    if result.cash_source == "credit":
        return await _credit_pay(ctx, result, actor)
    try:
        channel, agreement_no = await _route(ctx, result, actor)
    except (ChannelError, YibaoError):
        return result  # cash_requested without a call: recovery asks the institution (not found → voided)
    return await _pay(ctx, channel, result, agreement_no, actor)


# ---- recovery --------------------------------------------------------------------------------------

@dataclass
class RecoveryReport:
    completed: int = 0
    voided: int = 0
    still_unknown: int = 0
    holds_expired: int = 0
    orders: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"completed": self.completed, "voided": self.voided, "still_unknown": self.still_unknown,
                "holds_expired": self.holds_expired}


async def recover(ctx: Context, now: datetime | None = None, *, cash_grace: timedelta = CASH_GRACE,
                  held_grace: timedelta = HELD_GRACE) -> RecoveryReport:
    """Find payments stopped midway and finish or undo them.

    - cash requested, answer unknown → ask the institution: completed, or voided (failed / never seen);
    - created or held, never sent to an institution, older than ``held_grace`` → voided (abandoned);
    - awaiting confirmation past its expiry → voided;
    - then ledger holds past their timeout are released.
    """
    now = now or ctx.now()
    actor = "platform:recovery"
    found = await ctx.run(lambda c: payments.stranded(c, now, cash_grace=cash_grace, held_grace=held_grace), write=False)
    report = RecoveryReport()

    def count(order: Order) -> None:
        report.orders[order.id] = order.status
        if order.status == po.COMPLETED:
            report.completed += 1
        elif order.status == po.VOIDED:
            report.voided += 1
        else:
            report.still_unknown += 1

    for order in found.held:
        count(await ctx.run(lambda c, o=order: payments.void(c, now, order_id=o.id, event=po.ABANDONED, actor=actor,
                                                             only_from=(po.CREATED, po.HELD))))
    for order in found.expired:
        count(await ctx.run(lambda c, o=order: payments.void(c, now, order_id=o.id, event=po.CONFIRMATION_EXPIRED, actor=actor,
                                                             only_from=(po.AWAITING_CONFIRMATION,))))
    for order in found.in_doubt:
        count(await ask(ctx, order, actor=actor))
    from yibao.services.payments import refunds

    for r in await ctx.run(lambda c: refunds.stranded(c, now, grace=CASH_GRACE), write=False):
        done = await drive_refund(ctx, r, actor=actor)
        report.refunds[done.id] = done.status
    report.holds_expired = await ctx.run(lambda c: ledger.expire_pending(c, now))
    await deliver_callbacks(ctx, now=now)  # hospital callbacks still due (a failed attempt waits its backoff)
    if report.orders or report.holds_expired:
        log.info("payment recovery: %s", report.as_dict())
    return report


async def run_periodically(ctx: Context, interval: float) -> None:
    """Recovery as a background task of a serving process; an error is logged and the next round tries again."""
    while True:
        await asyncio.sleep(interval)
        try:
            await recover(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 — a database hiccup must not end recovery for the life of the process
            log.exception("payment recovery failed; retrying in %s s", interval)


# ---- mobile payment: the holder pays a published bill in the app ------------------------------------

async def pay_bill(ctx: Context, *, order_id: str, holder_id: str, use_account: bool, pi_id: str | None, pin: str | None,
                   actor: str, pay_by: str = "channel", expected: bills.Expected | None = None) -> Order:
    """移动支付: the holder (present, in the app) pays a bill. Cash above 0 needs the PIN (checked here, outside
    any unit; a wrong one counted in a unit of its own). Then the bill is held and its cash collected like any
    order; the hospital learns the end by a signed callback (outbox written with the end, delivered here once
    and retried by recovery). A bill already paid or on its way is driven on, never paid twice.
    ``expected`` (`bills.Expected`): the account and cash amounts the holder was shown; held only if they still hold."""
    from yibao.services.agency import institutions
    from yibao.services.payments import bills

    order = await ctx.run(lambda c: bills.holder_bill(c, order_id, holder_id), write=False)
    if order.status == po.BILLED:
        cash = await ctx.run(lambda c: bills.preview_cash(c, order, holder_id, use_account), write=False)
        pin_verified = False
        if cash > 0:
            if pin is None:
                raise YibaoConflict("pin", "pin_required", "现金部分需输入支付密码", "the cash share needs the payment PIN")
            payment_pins.check_format(pin)
            stored = await ctx.run(lambda c: payment_pins.stored(c, holder_id), write=False)
            candidate = await asyncio.to_thread(payment_pins.pin_hash, ctx.keyring, pin, stored.salt) if stored else None
            pin_ok = payment_pins.matches(stored, candidate)
            now = ctx.now()
            refused = await ctx.run(lambda c: bills.check_pin(c, now, order_id=order_id, holder_id=holder_id, pin_ok=pin_ok, actor=actor))
            if refused is not None:
                await deliver_callbacks(ctx, order_id)  # a 5th wrong PIN voided the bill: the hospital hears of it
                raise refused
            pin_verified = bool(pin_ok)
        now = ctx.now()
        order = await ctx.run(lambda c: bills.start_pay(c, now, order_id=order_id, holder_id=holder_id, use_account=use_account,
                                                        pi_id=pi_id, pin_verified=pin_verified, actor=actor, pay_by=pay_by,
                                                        expected=expected))
    if not order.terminal and order.status != po.BILLED:
        inst = await ctx.run(lambda c: institutions.get(c, order.institution_id), write=False)
        order = await drive(ctx, order, institution=inst, use_account=use_account, actor=actor)
    if order.terminal:
        await deliver_callbacks(ctx, order.id)
    return order


async def deliver_callbacks(ctx: Context, order_id: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """One delivery attempt for the hospital callbacks that are due (one order's, or all); failures stay for the next round."""
    from yibao.services.payments import callbacks as his_callbacks

    try:
        return await his_callbacks.deliver_due(ctx.run, ctx.keyring, now or ctx.now(), order_id=order_id)
    except Exception:  # noqa: BLE001 — a callback problem never changes what the payment answers; recovery retries
        log.exception("callback delivery failed")
        return {}


# ---- refunds ----------------------------------------------------------------------------------------

async def refund(ctx: Context, *, institution: Institution, order_id: str, request_key: str, request_hash: str, scope: str,
                 actor: str, lines_to_keep: list[str] | None = None, reason: str | None = None) -> Any:
    """Refund a completed payment (all, cash only, insurance only). A retry of the same request drives its refund on."""
    from yibao.services.payments import refunds

    now = ctx.now()
    started = await ctx.run(lambda c: refunds.start(c, now, institution=institution, order_id=order_id, request_key=request_key,
                                                    request_hash=request_hash, scope=scope, actor=actor, lines_to_keep=lines_to_keep,
                                                    reason=reason))
    done = await drive_refund(ctx, started, actor=actor)
    if done.rebill_order_id is not None:  # some items refunded: the kept lines are settled again in a new order
        rest = await ctx.run(lambda c: payments.require(c, done.rebill_order_id), write=False)
        if not rest.terminal:
            original = await ctx.run(lambda c: payments.require(c, done.order_id), write=False)
            try:
                await drive(ctx, rest, institution=institution, use_account=original.account_pay > 0, actor=actor)
            except YibaoError as exc:  # the refund stands; the new order is voided and shows why (the hospital charges otherwise)
                log.warning("refund %s: the kept lines could not be settled again (%s)", done.id, exc.code)
    if done.final:
        await deliver_callbacks(ctx, done.order_id)
    return done


async def drive_refund(ctx: Context, r: Any, *, actor: str) -> Any:
    """Ask the institution for the cash back (``requested``) or what became of it (``unknown``), and record the answer.
    The institution's refund is idempotent by our out_refund_no: asking again never refunds twice."""
    from yibao.channels.base import RefundRequest
    from yibao.services.payments import refunds

    if r.final:
        return r
    order = await ctx.run(lambda c: payments.require(c, r.order_id), write=False)
    assert order.payment_institution_id is not None
    refund_no = error_code = None
    try:
        channel = await _channel(ctx, order.payment_institution_id)
        if r.status == "unknown":
            try:
                result = await channel.query_refund(order.id, r.id)
            except NotFoundAtChannel:  # signed: it never got the refund, so nothing was given back: ask for it (same out_refund_no)
                result = await channel.refund(RefundRequest(order.id, r.id, r.cash_fen, order.cash_pay, REFUND_REASON))
        else:
            result = await channel.refund(RefundRequest(order.id, r.id, r.cash_fen, order.cash_pay, REFUND_REASON))
        refund_no, error_code = result.refund_id, result.error_code
        outcome = {"succeeded": "succeeded", "failed": "failed"}.get(result.status, "unknown")
        if outcome == "succeeded" and result.amount_fen != r.cash_fen:
            log.error("refund %s: the institution reports %s fen, we asked %s", r.id, result.amount_fen, r.cash_fen)
            outcome = "unknown"
    except Declined as exc:
        outcome, error_code = "failed", exc.code
    except (OutcomeUnknown, NotFoundAtChannel, BadSignature, ChannelError, YibaoError):
        outcome = "unknown"
    now = ctx.now()
    return await ctx.run(lambda c: refunds.record(c, now, refund_id=r.id, outcome=outcome, refund_no=refund_no, error_code=error_code,
                                                  actor=actor))


REFUND_REASON = "医保支付退款"
