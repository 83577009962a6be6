"""Pure blind verdicts (SPEC §2): when the collector cannot observe, nodes are *unknown*, never *down*.

Three ways to go blind, each turned into ``state: unknown`` events for the affected polled nodes (nodes
already unknown get none: the stream only records transitions):

* **Sentinels** (:func:`sentinels_blind`): the collector pings a few targets of its own (its uplink
  gateway...) in every ICMP batch; when every one of them fails, the batch says nothing about the network:
  every polled node is unknown from the batch's time (known when the batch completes) and its results are
  thrown away.
* **Lag** (:func:`lag_events`): a node without a poll result for more than ``blind_after`` of its intervals
  (the cycles fell behind, the rate limit deferred it, the process was stalled) is unknown from
  ``last result + blind_after x interval``. Nodes deliberately not polled behind a blocking parent are
  exempt.
* **Restart** (:func:`restart_events`): while the service was not running nothing was observed: at start
  every polled node is unknown from the last heartbeat (or from now on a first start); at a clean stop,
  from the stop (:func:`unknown_events`).

Recovery is not decided here: after ``unknown`` a node needs ``up_after`` good polls (or ``down_after``
failed ones) through the confirmer, dated at the first poll of that fresh run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

from monitor.events import NodeState, StateEvent

__all__ = ["lag_events", "restart_events", "sentinels_blind", "unknown_events"]


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


def lag_events(
    now: datetime,
    polled: Iterable[str],
    last_result: Mapping[str, datetime],
    intervals: Mapping[str, float],
    blind_after: int,
    *,
    states: Mapping[str, NodeState],
    exempt: Collection[str] = (),
    since: datetime | None = None,
) -> list[StateEvent]:
    """``unknown`` for each polled node whose last result (``since`` when it has none) is more than
    ``blind_after x intervals[node]`` seconds before ``now``: dated when that limit passed, known ``now``.
    Nodes in ``exempt`` (held behind a blocking parent), or without an interval, are skipped."""
    if blind_after < 1:
        raise ValueError("blind_after must be at least 1")
    out: list[StateEvent] = []
    for node in dict.fromkeys(polled):
        if node in exempt or node not in intervals:
            continue
        last = last_result.get(node, since)
        if last is None:
            continue
        limit = last + timedelta(seconds=blind_after * intervals[node])
        if now > limit:
            out.extend(unknown_events([node], states, at=limit, known_at=now))
    return out
