"""Work on a million small objects at once (a day's statement, its reconciliation): the cyclic garbage collector paused.

Such a step makes millions of tuples that live until it ends and hold no cycles; the collector would walk all of them
again and again as they pile up (measured: a third of parsing a 1,000,000-row statement, bench/books.py). Reference
counting still frees everything as usual; the collector resumes, as it was, when the step ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
