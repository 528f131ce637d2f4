"""The one rule every lock-out follows: at most ``limit`` failed attempts within a sliding ``window``.

Once the limit is reached, nothing more is tried (so nothing more is counted) until the oldest of the
last ``limit`` failures leaves the window; then one more try is allowed. Who counts — a terminal, an
institution, a person at an institution, a person — is the caller's choice of rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class AttemptLimit:
    limit: int
    window: timedelta

    def since(self, now: datetime) -> datetime:
        """Failures at or before this instant no longer count."""
        return now - self.window

    def retry_after(self, failures: Iterable[datetime], now: datetime) -> int | None:
        """None while under the limit; else the whole seconds (at least 1) until one more try is allowed.
        ``failures``: the counted failures inside the window, in any order."""
        times = sorted(failures)
        if len(times) < self.limit:
            return None
        return max(1, math.ceil((times[-self.limit] + self.window - now).total_seconds()))

    def left(self, failures: Iterable[datetime]) -> int:
        """Tries left before the lock."""
        return max(0, self.limit - len(list(failures)))
