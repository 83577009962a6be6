"""The collector's policy for long-running processes (``monitor.heap``): what survives a cycle is frozen, young
garbage cycles are still collected, and frozen garbage is freed by the periodic full collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from monitor.heap import Heap


class Link:
    other: Link | None = None


def garbage_cycle() -> weakref.ref[Link]:
    a, b = Link(), Link()
    a.other, b.other = b, a  # only the cycle collector frees these
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session keeps Python's defaults


def test_young_garbage_cycles_are_collected_after_a_cycle() -> None:
    heap = Heap(clock=lambda: 0.0)
    ref = garbage_cycle()
    heap.after_cycle()
    assert ref() is None and gc.get_freeze_count() > 0


def test_frozen_garbage_is_freed_by_the_periodic_full_collection() -> None:
    now = [0.0]
    heap = Heap(full_every_s=10, clock=lambda: now[0])
    a, b = Link(), Link()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    heap.after_cycle()  # alive: frozen
    del a, b
    heap.after_cycle()  # garbage now, but frozen: the young collection does not see it
    assert ref() is not None
    now[0] = 10.0
    heap.after_cycle()  # an hour (here 10 s) since the last full collection: unfrozen, collected, frozen again
    assert ref() is None and gc.get_freeze_count() > 0


def test_settle_collects_everything_and_bad_periods_are_refused() -> None:
    heap = Heap(clock=lambda: 0.0)
    gc.freeze()
    ref = garbage_cycle()
    gc.freeze()  # garbage frozen by someone else
    assert heap.settle("test") >= 0 and ref() is None
    with pytest.raises(ValueError, match="full_every_s is > 0, not 0"):
        Heap(full_every_s=0)


def test_release_gives_the_defaults_back() -> None:
    heap = Heap(clock=lambda: 0.0)
    heap.after_cycle()
    assert gc.get_freeze_count() > 0
    heap.release()
    assert gc.get_freeze_count() == 0
