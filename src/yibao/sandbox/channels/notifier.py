"""SANDBOX asynchronous notifications: signed POSTs to the platform, resent with backoff until acknowledged.

Real institutions resend for hours (WeChat Pay: 15s, 15s, 30s, 3m, 10m, 20m, 30m … over 24h;
Alipay: 8 times in 25h). The delays here are a constructor argument so tests can use milliseconds,
and `flush()` (or POST /sandbox/notifications/flush) sends everything pending at once.

Knobs act per notification: dropped (never sent), duplicated (two deliveries of one event), or
signed wrongly at delivery time (the platform must refuse it; the resend is signed right if the
knob has been turned off by then).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from yibao.channels.http import tls_context
from yibao.sandbox.channels.core import Books, Event

REAL_WORLD_DELAYS_MS = (15_000, 15_000, 30_000, 180_000, 600_000, 1_200_000, 1_800_000, 1_800_000, 1_800_000, 3_600_000)

Render = Callable[[Event, bool], tuple[dict[str, str], bytes]]  # (event, tamper) → headers, body
IsAck = Callable[[httpx.Response], bool]


@dataclass
class Delivery:
    id: int
    event: Event
    url: str | None
    state: str = "pending"  # pending | delivered | given_up | dropped | no_url
    attempts: int = 0
    next_at: float = 0.0
    last_result: str = ""

    def view(self) -> dict[str, object]:
        rec = self.event.record
        return {"id": self.id, "event_id": self.event.event_id, "kind": self.event.kind, "state": self.state, "attempts": self.attempts,
                "url": self.url, "last_result": self.last_result,
                "subject": getattr(rec, "out_refund_no", None) or getattr(rec, "out_trade_no", None)
                or getattr(rec, "out_agreement_no", None) or getattr(rec, "subject", None)}


class Notifier:
    def __init__(self, books: Books, render: Render, is_ack: IsAck, *, callback_url: str | None,
                 delays_ms: tuple[int, ...] = REAL_WORLD_DELAYS_MS, timeout: float = 5.0) -> None:
        self.books = books
        self.render = render
        self.is_ack = is_ack
        self.callback_url = callback_url
        self.delays_ms = tuple(delays_ms)
        self.timeout = timeout
        self.deliveries: list[Delivery] = []  # every delivery ever made (the admin view)
        # The pending ones, by id (so in the order made): the resend loop and a flush look at these, not at the whole
        # history. Written under books.lock (enqueue may run on a test's thread); a delivery leaves when it is done.
        self._pending: dict[int, Delivery] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: asyncio.Lock | None = None
        # A long-lived `yibao sandbox` process keeps one client and its connections (a client per notification cost a TCP
        # connection and the client's set-up each: most of the sandbox's CPU per payment in bench/payments.py). Sandboxes
        # inside tests and the demo app, whose event loops come and go, make one per notification and close it.
        self.keep_connections = False
        self._client: httpx.AsyncClient | None = None
        books.on_event = self.enqueue
        books.on_delayed = self._poke

    def enqueue(self, event: Event) -> None:
        url = event.notify_url or self.callback_url
        knobs = self.books.knobs
        with self.books.lock:
            if url is None:
                self.deliveries.append(Delivery(next(self._ids), event, None, state="no_url"))
                return
            copies = 1
            dropped = knobs.drop_notification_rate > 0 and self.books.random.random() < knobs.drop_notification_rate
            if not dropped and knobs.duplicate_notification_rate > 0 and self.books.random.random() < knobs.duplicate_notification_rate:
                copies = 2
            for _ in range(copies):
                d = Delivery(next(self._ids), event, url, state="dropped" if dropped else "pending", next_at=time.monotonic())
                self.deliveries.append(d)
                if not dropped:
                    self._pending[d.id] = d
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def ensure_started(self) -> None:
        """Start the resend loop on the running event loop (the sandbox's), once."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop, self._wake, self._sending = loop, asyncio.Event(), asyncio.Lock()
        self._client = httpx.AsyncClient(timeout=self.timeout, verify=tls_context()) if self.keep_connections else None
        self._task = loop.create_task(self._run(), name=f"sandbox-notifier-{self.books.prefix}")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self.books.settle_due()
            now = time.monotonic()
            for d in [d for d in self.pending() if d.next_at <= now]:
                await self._attempt(d)
            waits = [d.next_at - time.monotonic() for d in self.pending()]
            with self.books.lock:
                pending_settlement = self.books.trades.settling()
            if pending_settlement:
                waits.append(0.02)  # a delayed payment is due soon: look again shortly
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, min(waits)) if waits else None)
            except asyncio.TimeoutError:
                pass

    async def _attempt(self, d: Delivery) -> None:
        assert self._sending is not None
        async with self._sending:  # the resend loop and a flush never send the same delivery twice at once
            if d.state != "pending" or d.url is None:
                return
            headers, body = self.render(d.event, self.books.knobs.bad_notification_signature)
            d.attempts += 1
            try:
                if self._client is not None:
                    resp = await self._client.post(d.url, content=body, headers=headers)
                else:
                    async with httpx.AsyncClient(timeout=self.timeout, verify=tls_context()) as client:  # no CA bundle read per send
                        resp = await client.post(d.url, content=body, headers=headers)
                ok, d.last_result = self.is_ack(resp), f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                ok, d.last_result = False, type(exc).__name__
            if ok:
                d.state = "delivered"
            else:
                delays = self.books.knobs.notify_delays_ms or self.delays_ms
                if d.attempts > len(delays):
                    d.state = "given_up"
                else:
                    d.next_at = time.monotonic() + max(0, delays[d.attempts - 1]) / 1000
            if d.state != "pending":
                with self.books.lock:
                    self._pending.pop(d.id, None)

    def pending(self) -> list[Delivery]:
        """The deliveries still pending, in the order they were made."""
        with self.books.lock:
            return [d for d in self._pending.values() if d.state == "pending"]

    async def flush(self) -> dict[str, int]:
        """Send every pending notification now (one attempt each), then report the counts by state."""
        self.ensure_started()
        self.books.settle_due()
        for d in self.pending():
            await self._attempt(d)
        return self.counts()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.state] = counts.get(d.state, 0) + 1
        return counts
