"""What every connector shares: its configuration, the HTTP transport, the clock, and reading an answer.

Each institution's connector (wxpay.py, alipay.py, unionpay.py, bank.py) subclasses `Connector` and
adds its own signed call and the Channel methods; the wire format stays in its transformers module.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import httpx

from yibao.channels.base import (
    AcceptedUnknown,
    ChannelError,
    OutcomeUnknown,
    PaymentResult,
    RefundResult,
    accepted_unknown,
    declined,
    unknown,
)
from yibao.channels.wire import WireError

R = TypeVar("R", PaymentResult, RefundResult)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Connector:
    def __init__(self, config: Any, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.name: str = config.name
        self._transport = transport
        self._clock = clock or _utc_now

    def _parse(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A transformer's reading of an answer; an answer it cannot read leaves the outcome unknown (never a failure)."""
        try:
            return fn(*args)
        except (WireError, KeyError, TypeError, ValueError) as exc:
            raise unknown(self.name, "garbled_answer", str(exc)) from None

    def _about(self, result: R, out_trade_no: str, out_refund_no: str | None = None) -> R:
        """An answer about the order (and refund) we asked about — else unknown: a signed answer about another one,
        replayed or misrouted, says nothing of ours (an Alipay answer carries no time to limit a replay)."""
        if result.out_trade_no != out_trade_no or (out_refund_no is not None and getattr(result, "out_refund_no", None) != out_refund_no):
            raise unknown(self.name, "mismatched_answer", f"the answer names {result.out_trade_no}, not {out_trade_no}")
        return result

    async def _after_acceptance(self, ask: Callable[[], Awaitable[R]], *, out_trade_no: str, out_refund_no: str | None = None,
                                amount_fen: int, what: str) -> R:
        """The state of a request the institution accepted (its result comes later), asked for once.

        Only the request's own signed final state decides. Anything else leaves the outcome unknown — the notification
        or a later query tells: an error or a refusal of the question itself (a rate limit, no permission: nothing about
        the request), the request not yet visible, an answer about another request, or the number on the books with
        another amount (an operator looks; `services/payments/cash.py` `ask` reads it the same way). Turning any of these
        into a decline would void a payment the institution goes on to collect, or fail a refund it makes.

        Each of these is `AcceptedUnknown`: the request was accepted (signed), which the caller keeps — an accepted
        payment's "not found" later is not believed for long (services/payments/cash.py)."""
        try:
            result = await ask()
        except AcceptedUnknown:
            raise
        except OutcomeUnknown as exc:
            raise accepted_unknown(self.name, exc.code, f"{what} was accepted; asking for it gave no answer") from None
        except ChannelError as exc:
            raise accepted_unknown(self.name, "accepted_then_unclear", f"{what} was accepted; asking for it answered {exc.code}") from None
        try:
            self._about(result, out_trade_no, out_refund_no)
        except OutcomeUnknown as exc:
            raise accepted_unknown(self.name, exc.code, f"{what} was accepted; the answer names another order") from None
        if result.amount_fen != amount_fen:
            raise accepted_unknown(self.name, "params_differ", f"{what} is on the institution's books with another amount")
        if result.status == "failed":
            raise declined(self.name, result.error_code or "failed", f"{what} failed")
        return result
