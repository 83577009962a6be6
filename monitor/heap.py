"""The garbage collector's policy for the long-running processes (``slawatch run``, ``slawatch serve``).

At a province's size a process holds millions of objects that live as long as it does: the inventory, every
contract's engine with the month's histories and incidents, the scheduler's heap. CPython's full collections
walk every tracked object, and they run on the event loop's thread: measured at 100,000 nodes (2.5 million
objects), each one held the loop for 1.4-1.6 s, several times in the first minutes and every few minutes
after; with the long-lived heap frozen they took 140-200 ms, and with it frozen after every cycle a few ms.

* :meth:`Heap.freeze` (at start, after the incident projection is built): collects the young generations and
  :func:`gc.freeze` moves everything alive out of the collector's sight (still freed by reference counting
  when dropped). It costs what the young generations hold, not the heap: no pause at start-up.
* :meth:`Heap.after_cycle` (after each live cycle): the same, so the generations the collector walks stay the
  size of one cycle's work. Objects frozen while part of a garbage cycle would never be freed: once every
  ``full_every_s`` (an hour) :meth:`Heap.settle` unfreezes everything and collects in full (one pause of about
  a second and a half at 100,000 nodes), then freezes again.
* :meth:`Heap.release` gives Python's defaults back (the loop stopped).

Nothing here changes what is computed; only when the collector runs. Durations are seconds.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from time import monotonic, perf_counter

__all__ = ["Heap"]

log = logging.getLogger(__name__)


class Heap:
    """When the collector runs in a long-running process. ``clock``: monotonic seconds (injected for tests)."""

    def __init__(self, *, full_every_s: float = 3600.0, clock: Callable[[], float] = monotonic) -> None:
        if full_every_s <= 0:
            raise ValueError(f"full_every_s is > 0, not {full_every_s}")
        self.full_every_s = full_every_s
        self._clock = clock
        self._last_full = clock()

    def settle(self, reason: str) -> float:
        """Collect in full, then freeze everything alive; returns the seconds the collection took."""
        gc.unfreeze()
        began = perf_counter()
        collected = gc.collect()
        gc.freeze()
        took = perf_counter() - began
        self._last_full = self._clock()
        extra = {"reason": reason, "collected": collected, "frozen": gc.get_freeze_count(), "seconds": round(took, 3)}
        log.info("heap settled", extra=extra)
        return took

    def release(self) -> None:
        """Back to Python's defaults (the loop stopped): everything frozen is unfrozen, collected as usual."""
        gc.unfreeze()

    def freeze(self) -> None:
        """Collect the young generations, then freeze everything alive."""
        gc.collect(1)
        gc.freeze()

    def after_cycle(self) -> None:
        """Collect the young generations and freeze what survived; in full once every ``full_every_s``."""
        if self._clock() - self._last_full >= self.full_every_s:
            self.settle("periodic")
            return
        self.freeze()
