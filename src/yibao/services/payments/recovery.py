"""Recovery: payments and refunds a crash or a silent institution left midway are finished or undone —
at start-up, in the background of a serving process, and from the CLI (`yibao payments recover`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from yibao.domain import payment_order as po
from yibao.domain.money import format_yuan
from yibao.services import Context
from yibao.services.books import ledger
from yibao.services.payments import agreements, refunds
from yibao.services.payments import callbacks as his_callbacks
from yibao.services.payments import cash as cash_leg
from yibao.services.payments import orders as payments
from yibao.services.payments.orders import Order

log = logging.getLogger("yibao.payments")

CASH_GRACE = timedelta(seconds=60)  # an in-flight request (timeout ≤ 60 s) has finished by then; recovery queries after it
HELD_GRACE = timedelta(seconds=60)  # a held order not sent on within this is abandoned


@dataclass
class RecoveryReport:
    completed: int = 0
    voided: int = 0
    still_unknown: int = 0
    holds_expired: int = 0
    orders: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, str] = field(default_factory=dict)
    agreements: dict[str, str] = field(default_factory=dict)  # unbound agreements told to their institution: terminated | terminating
    errors: dict[str, str] = field(default_factory=dict)  # an order or refund whose step raised: logged, left for the next round
    totals: dict[str, int] = field(default_factory=dict)  # each order's total (fen), as ``orders`` names it
    completed_amount: int = 0  # fen: the totals of the orders completed, and of those voided
    voided_amount: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"completed": self.completed, "voided": self.voided, "still_unknown": self.still_unknown,
                "holds_expired": self.holds_expired, "errors": len(self.errors),
                "completed_amount": format_yuan(self.completed_amount), "voided_amount": format_yuan(self.voided_amount),
                "agreements_terminated": sum(1 for s in self.agreements.values() if s == "terminated"),
                "agreements_terminating": sum(1 for s in self.agreements.values() if s != "terminated")}


async def recover(ctx: Context, now: datetime | None = None, *, cash_grace: timedelta = CASH_GRACE,
                  held_grace: timedelta = HELD_GRACE, progress: Callable[[int, int], None] | None = None) -> RecoveryReport:
    """Find payments stopped midway and finish or undo them.

    - cash requested, answer unknown → ask the institution: completed, or voided (failed / never seen);
    - created or held, never sent to an institution, older than ``held_grace`` → voided (abandoned);
    - awaiting confirmation past its expiry → voided;
    - agreements left terminating (the holder unbound, the institution not reached) → terminated at the institution again;
    - then ledger holds past their timeout are released.

    ``progress(done, total)`` is told after each order and refund (the CLI's bar).
    """
    now = now or ctx.now()
    actor = "platform:recovery"
    found = await ctx.run(lambda c: payments.stranded(c, now, cash_grace=cash_grace, held_grace=held_grace), write=False)
    report = RecoveryReport()

    def count(order: Order) -> None:
        report.orders[order.id] = order.status
        report.totals[order.id] = order.total
        if order.status == po.COMPLETED:
            report.completed += 1
            report.completed_amount += order.total
        elif order.status == po.VOIDED:
            report.voided += 1
            report.voided_amount += order.total
        else:
            report.still_unknown += 1

    steps = [0, len(found.held) + len(found.expired) + len(found.in_doubt)]  # done, of how many (the refunds added when found)

    async def each(subject: str, step: Awaitable[Any]) -> Any:
        """One order's or refund's step: an error in it (a ledger refusal, a bug) is logged and counted, and the round
        goes on with the others — one bad order must not stop recovery of every other payment."""
        try:
            return await step
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 — see the docstring
            log.exception("payment recovery: %s failed (%s); the round goes on", subject, type(exc).__name__)
            report.errors[subject] = f"{type(exc).__name__}: {exc}"[:300]
            return None
        finally:
            steps[0] += 1
            if progress:
                progress(*steps)

    for order in found.held:
        done = await each(order.id, ctx.run(lambda c, o=order: payments.void(c, now, order_id=o.id, event=po.ABANDONED, actor=actor,
                                                                             only_from=(po.CREATED, po.HELD))))
        if done is not None:
            count(done)
    for order in found.expired:
        done = await each(order.id, ctx.run(lambda c, o=order: payments.void(c, now, order_id=o.id, event=po.CONFIRMATION_EXPIRED,
                                                                             actor=actor, only_from=(po.AWAITING_CONFIRMATION,))))
        if done is not None:
            count(done)
    for order in found.in_doubt:
        done = await each(order.id, cash_leg.ask(ctx, order, actor=actor))
        if done is not None:
            count(done)
    stranded_refunds = await ctx.run(lambda c: refunds.stranded(c, now, grace=CASH_GRACE), write=False)
    steps[1] += len(stranded_refunds)
    for r in stranded_refunds:
        done = await each(r.id, refunds.drive(ctx, r, actor=actor))
        if done is not None:
            report.refunds[done.id] = done.status
    steps[1] += 1  # the agreements' round
    ended = await each("agreements", agreements.retry_terminations(ctx, now, grace=CASH_GRACE, actor=actor))
    report.agreements = ended or {}
    report.holds_expired = await ctx.run(lambda c: ledger.expire_pending(c, now))
    await his_callbacks.deliver(ctx, now=now)  # hospital callbacks still due (a failed attempt waits its backoff)
    if report.orders or report.holds_expired or report.errors or report.agreements:
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
