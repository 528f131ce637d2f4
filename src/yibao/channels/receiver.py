"""Receiving notifications: verify, deduplicate, acknowledge — in that order, and nothing trusted unverified.

Institutions resend until acknowledged and sometimes send one event twice, under the same or a
new notify id. A `NotificationReceiver` hands each business event (`Notification.dedup_key`: the
same order reaching the same state) to the platform once, and acknowledges repeats without
handing them on. A notification that fails verification is refused (the institution resends, and
the platform should query the order rather than wait).

The default memory of seen events is in-process and bounded; the platform plugs in a durable one
(a unique key in its database) through `claim`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping

from yibao.channels.base import Ack, Channel, ChannelError, Notification


@dataclass(frozen=True)
class Receipt:
    ack: Ack  # what to answer the institution
    notification: Notification | None  # None when refused
    fresh: bool  # True the first time this business event is seen: act on it; False: a repeat, already handled
    refusal: str | None = None  # the reason, when refused


class MemorySeen:
    """A bounded, thread-safe set of dedup keys (oldest forgotten first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._keys: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def __call__(self, key: tuple[str, ...]) -> bool:
        """Claim a key: True if it was not seen before."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self._capacity:
                self._keys.popitem(last=False)
            return True


class NotificationReceiver:
    def __init__(self, channel: Channel, *, claim: Callable[[tuple[str, ...]], bool] | None = None) -> None:
        self.channel = channel
        self.claim = claim or MemorySeen()

    def receive(self, headers: Mapping[str, str], body: bytes) -> Receipt:
        try:
            notification = self.channel.verify_notification(headers, body)
        except ChannelError as exc:
            return Receipt(self.channel.ack(False), None, False, exc.code)
        return Receipt(self.channel.ack(True), notification, self.claim(notification.dedup_key))
