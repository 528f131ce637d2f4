"""What every connector shares: its configuration, the HTTP transport, the clock, and reading an answer.

Each institution's connector (wxpay.py, alipay.py, unionpay.py, bank.py) subclasses `Connector` and
adds its own signed call and the Channel methods; the wire format stays in its transformers module.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import httpx

from yibao.channels.base import unknown
from yibao.channels.wire import WireError


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
