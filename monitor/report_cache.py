"""Computed month reports kept in memory: asking again for a report when nothing has changed answers at once.

A month's report is a pure function of its inputs (SPEC R8, R9): the contract and its policy, the inventory,
the month, the events known by its as-of, and the as-of. A :class:`ReportKey` names all but the as-of; the
event log's *position* (its highest sequence number) stands for the events stored, since any new event, whatever
its dates and however it arrived, moves it. A 100,000-channel month takes 20-50 s to replay and assess; kept,
it is served in milliseconds (issue 9: "never recomputed on every GET").

* A report asked **as of a given time** is served from memory only for that exact time and the same key.
* A report asked **as of now** is served from the newest computation for the same key that is at most
  ``max_age_s`` old: nothing was stored since, so it is the report *as of that computation's time*, and it says
  so (its ``as_of`` and ``generated_at``; the API adds ``Age``). With ``max_age_s`` 0, "now" always computes.

Memory only, never the database (computing stores nothing, R9), and bounded: at most ``entries`` reports, the
least recently used dropped first. :meth:`ReportCache.lock` lets concurrent requests for one key wait for the
first computation instead of each running their own (one 100,000-channel report at a time is already a core).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import Generic, TypeVar

__all__ = ["ReportCache", "ReportKey"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class ReportKey:
    """Everything a computed month report depends on except its as-of."""

    contract: str
    terms: str  # the contract as stored (its scopes and its policy), as canonical JSON
    month: str
    inventory: tuple[object, ...]  # the stored inventory's fingerprint (monitor.storage.heartbeats)
    position: int  # the event log's highest sequence number when the computation loaded its events

    def __post_init__(self) -> None:
        if self.position < 0:
            raise ValueError(f"an event-log position is >= 0, not {self.position}")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[R]):
    report: R
    as_of: datetime  # what the report was computed as of
    for_now: bool  # computed for a request "as of now"
    computed_at: float  # monotonic seconds


class ReportCache(Generic[R]):
    """At most ``entries`` computed reports (``R``: whatever the service computes), by key and as-of."""

    def __init__(self, *, entries: int = 4, max_age_s: float = 60.0, clock: Callable[[], float] = monotonic) -> None:
        if entries < 0:
            raise ValueError(f"entries is >= 0, not {entries}")
        if max_age_s < 0:
            raise ValueError(f"max_age_s is >= 0, not {max_age_s}")
        self.entries = entries
        self.max_age_s = max_age_s
        self._clock = clock
        self._kept: OrderedDict[tuple[ReportKey, datetime], _Entry[R]] = OrderedDict()
        self._locks: dict[ReportKey, asyncio.Lock] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: ReportKey, as_of: datetime | None) -> tuple[R, float] | None:
        """The kept report for ``key`` as of ``as_of`` (None: as of now, within ``max_age_s``) and its age (s)."""
        now = self._clock()
        found: tuple[ReportKey, datetime] | None = None
        if as_of is not None:
            found = (key, as_of) if (key, as_of) in self._kept else None
        else:
            newest: _Entry[R] | None = None
            for (k, at), entry in self._kept.items():
                fresh = k == key and entry.for_now and now - entry.computed_at <= self.max_age_s
                if fresh and (newest is None or entry.computed_at > newest.computed_at):
                    newest, found = entry, (k, at)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._kept.move_to_end(found)
        entry = self._kept[found]
        return entry.report, max(0.0, now - entry.computed_at)

    def put(self, key: ReportKey, as_of: datetime, report: R, *, for_now: bool) -> None:
        """Keep ``report``, computed as of ``as_of`` (``for_now``: for a request as of now)."""
        if self.entries == 0:
            return
        # A newer position makes every report of an older one unreachable: drop them now, not when evicted.
        stale = [k for k in self._kept if _same_but_position(k[0], key) and k[0].position < key.position]
        for k in stale:
            del self._kept[k]
        self._kept[(key, as_of)] = _Entry(report, as_of, for_now, self._clock())
        self._kept.move_to_end((key, as_of))
        while len(self._kept) > self.entries:
            self._kept.popitem(last=False)

    def lock(self, key: ReportKey) -> asyncio.Lock:
        """One lock per key (without its position: a report being computed for an older position is waited for
        too, then found stale). Locks of keys no longer kept are dropped as new ones are made."""
        base = _unpositioned(key)
        lock = self._locks.get(base)
        if lock is None:
            live = {_unpositioned(k) for k, _ in self._kept}
            self._locks = {k: v for k, v in self._locks.items() if k in live or v.locked()}
            lock = self._locks[base] = asyncio.Lock()
        return lock


def _unpositioned(key: ReportKey) -> ReportKey:
    return ReportKey(key.contract, key.terms, key.month, key.inventory, 0)


def _same_but_position(a: ReportKey, b: ReportKey) -> bool:
    return _unpositioned(a) == _unpositioned(b)
