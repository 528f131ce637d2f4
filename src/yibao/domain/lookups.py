"""When an institution's look-ups of people by number look like someone walking through the numbers.

Card numbers are handed out in sequence (the demo's are D4403000001, D4403000002 …), so an institution
that reads card after card by number learns who holds each. A counter looks people up as they come:
a few numbers, scattered, nearly all found. Within WINDOW, an institution's look-ups are an enumeration
when they show either
- MISSES numbers that hold nobody (guessing), or
- NEIGHBOURS distinct numbers in one block — the same number but for its last BLOCK_TAIL characters —
  (walking a sequence: 1000 numbers share a block, and patients at one counter almost never do).
[G: guessed thresholds; a counter's honest typos stay well below them.]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

WINDOW = timedelta(minutes=10)
MISSES = 10
NEIGHBOURS = 5
BLOCK_TAIL = 3


def block_of(number: str) -> str:
    """The number's block: its neighbours in a sequence share it (the number without its last characters)."""
    normal = number.strip().upper()
    return normal[:-BLOCK_TAIL] if len(normal) > BLOCK_TAIL else ""


@dataclass(frozen=True)
class Looked:
    """One look-up as the rule sees it: keyed hashes of the number and its block, and whether it found someone."""

    number: str
    block: str
    found: bool


@dataclass(frozen=True)
class Signs:
    misses: int
    neighbours: int  # the most distinct numbers looked up in one block

    @property
    def enumeration(self) -> bool:
        return self.misses >= MISSES or self.neighbours >= NEIGHBOURS


def signs(looks: Iterable[Looked]) -> Signs:
    """What the window's look-ups show (the caller passes those within WINDOW)."""
    misses = 0
    blocks: dict[str, set[str]] = {}
    for look in looks:
        if not look.found:
            misses += 1
        blocks.setdefault(look.block, set()).add(look.number)
    return Signs(misses, max((len(numbers) for numbers in blocks.values()), default=0))
