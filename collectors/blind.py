"""Pure blind verdicts (SPEC §2, R2): when the collector cannot observe, nodes are *unknown*, never *down*.

Three ways to go blind, each turned into ``state: unknown`` events for the affected polled nodes (nodes
already unknown get none: the stream only records transitions):

* **Sentinels** (:func:`sentinels_blind`): the collector pings a few targets of its own (its uplink
  gateway...) in every ICMP batch; when every one of them fails, the batch says nothing about the network:
  every polled node is unknown from the batch's time (known when the batch completes) and its results are
  thrown away.
* **Lag** (:class:`BlindClocks`, :func:`lag_events`): a node whose *own* probes went out and brought back no
  verdict (no result at all: not even a timeout) ``blind_after`` times in a row, over more than
  ``blind_after`` of its intervals, is unknown from ``clock + blind_after x interval``. Only probes that were
  sent count (SPEC R2): a cycle that runs late, a rate limit that defers a node, or a node held back behind a
  down parent sends nothing, so it never makes a node unknown by itself. A node that is held is not due: its
  clock starts again from the last cycle that held it, i.e. when it is next due.
* **Restart** (:func:`restart_events`): while the service was not running nothing was observed: at start
  every polled node is unknown from the last heartbeat (or from now on a first start); at a clean stop,
  from the stop (:func:`unknown_events`).

Recovery is not decided here: after ``unknown`` a node needs ``up_after`` good polls (or ``down_after``
failed ones) through the confirmer, dated at the first poll of that fresh run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.events import NodeState, StateEvent

__all__ = ["BlindClock", "BlindClocks", "lag_events", "restart_events", "sentinels_blind", "unknown_events"]


def sentinels_blind(results: Mapping[str, bool]) -> bool:
    """True when sentinels were probed (``address -> answered``) and none answered."""
    return bool(results) and not any(results.values())


def unknown_events(
    nodes: Iterable[str], states: Mapping[str, NodeState], *, at: datetime, known_at: datetime
) -> list[StateEvent]:
    """``unknown`` dated ``at``, known ``known_at``, for each node not unknown already (default state: up)."""
    out: list[StateEvent] = []
    for node in dict.fromkeys(nodes):
        if states.get(node, NodeState.UP) is NodeState.UNKNOWN:
            continue
        out.append(StateEvent(at=min(at, known_at), node=node, state=NodeState.UNKNOWN, known_at=known_at))
    return out


def restart_events(
    polled: Iterable[str], states: Mapping[str, NodeState], heartbeat: datetime | None, now: datetime
) -> list[StateEvent]:
    """At start: every polled node unknown since the last heartbeat (since ``now`` when there is none)."""
    at = now if heartbeat is None else min(heartbeat, now)
    return unknown_events(polled, states, at=at, known_at=now)


@dataclass(frozen=True, slots=True)
class BlindClock:
    """One node's blind clock: ``since`` when it runs (its last verdict, or when the node became due), and
    ``missed``: how many of its probes sent since then brought back no verdict."""

    since: datetime
    missed: int = 0


class BlindClocks:
    """The blind clocks of the polled nodes (pure bookkeeping: the caller gives every time).

    * :meth:`due`: the node is a target from ``at`` (its clock starts unless it runs already);
    * :meth:`hold`: the node is held behind a down parent at ``at``: not due, its clock starts again at ``at``;
    * :meth:`verdict`: a probe of the node gave a verdict (answered or timed out) at ``at``;
    * :meth:`missed`: a probe of the node was sent at ``at`` and gave no verdict;
    * :meth:`lag`: the ``unknown`` events the missed probes call for now.
    """

    def __init__(self) -> None:
        self.clocks: dict[str, BlindClock] = {}
        self._missing: set[str] = set()  # nodes whose clock counts missed probes

    def due(self, node: str, at: datetime) -> None:
        if node not in self.clocks:
            self.clocks[node] = BlindClock(at)

    def hold(self, node: str, at: datetime) -> None:
        self.clocks[node] = BlindClock(at)
        self._missing.discard(node)

    def verdict(self, node: str, at: datetime) -> None:
        self.clocks[node] = BlindClock(at)
        self._missing.discard(node)

    def missed(self, node: str, at: datetime) -> None:
        clock = self.clocks.get(node) or BlindClock(at)
        self.clocks[node] = BlindClock(clock.since, clock.missed + 1)
        self._missing.add(node)

    def forget(self, node: str) -> None:
        self.clocks.pop(node, None)
        self._missing.discard(node)

    def lagging(self, blind_after: int) -> list[str]:
        """The nodes that missed at least ``blind_after`` probes in a row (the only ones :meth:`lag` can name):
        a cycle looks at these, not at every polled node."""
        return [n for n in self._missing if self.clocks[n].missed >= blind_after]

    def lag(
        self, now: datetime, intervals: Mapping[str, float], blind_after: int, *, states: Mapping[str, NodeState]
    ) -> list[StateEvent]:
        return lag_events(now, self.clocks, intervals, blind_after, states=states)


def lag_events(
    now: datetime,
    clocks: Mapping[str, BlindClock],
    intervals: Mapping[str, float],
    blind_after: int,
    *,
    states: Mapping[str, NodeState],
) -> list[StateEvent]:
    """``unknown`` for each node (in ``intervals``, in its order) that missed at least ``blind_after`` probes
    in a row since its clock started and whose clock is more than ``blind_after x intervals[node]`` seconds
    old: dated when that limit passed, known ``now``. Time alone (a late cycle, a deferred or held node)
    never makes a node unknown: only probes sent without a verdict do (SPEC R2)."""
    if blind_after < 1:
        raise ValueError("blind_after must be at least 1")
    out: list[StateEvent] = []
    for node, interval in intervals.items():
        clock = clocks.get(node)
        if clock is None or clock.missed < blind_after:
            continue
        limit = clock.since + timedelta(seconds=blind_after * interval)
        if now > limit:
            out.extend(unknown_events([node], states, at=limit, known_at=now))
    return out
