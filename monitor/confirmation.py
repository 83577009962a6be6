"""From raw poll results to confirmed state changes (SPEC §2).

A node becomes *down* after ``down_after`` consecutive failed polls and *up* after ``up_after`` consecutive
successes; a node in *unknown* state needs the same runs. The change is **dated** at the first poll of the
confirming run and **known** when the run completes. Polls of a node older than (or as old as) the last one
seen are ignored, so that the same poll ingested twice is one poll.

:class:`Confirmer` is pure bookkeeping (no I/O, no clock): the live collectors and replayed ``poll`` events go
through the same instance inside the engine, and its per-node :class:`PollRun` can be stored and restored so
that a replay split in two files equals one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.events import NodeState, PollEvent, StateEvent


@dataclass(frozen=True, slots=True)
class PollRun:
    """The current run of like results for one node: ``ok`` results, ``count`` long, begun at ``since``."""

    ok: bool
    count: int
    since: datetime
    last_poll: datetime


@dataclass(frozen=True, slots=True)
class ConfirmationSettings:
    """Consecutive results needed to believe a change."""

    down_after: int = 3
    up_after: int = 2

    def __post_init__(self) -> None:
        if self.down_after < 1 or self.up_after < 1:
            raise ValueError("down_after and up_after must be at least 1")


class Confirmer:
    """Turns polls into :class:`StateEvent` s. ``state_of`` gives the node's current confirmed state."""

    def __init__(self, settings: ConfirmationSettings | None = None) -> None:
        self.settings = settings or ConfirmationSettings()
        self.runs: dict[str, PollRun] = {}

    def observe(self, poll: PollEvent, current: NodeState) -> StateEvent | None:
        """Account one poll; return the confirmed change it completes, if any."""
        run = self.runs.get(poll.node)
        if run is not None and poll.at <= run.last_poll:
            return None  # a duplicate or a stale poll
        if run is None or run.ok != poll.ok or run.count == 0:
            run = PollRun(poll.ok, 1, poll.at, poll.at)
        else:
            run = PollRun(run.ok, run.count + 1, run.since, poll.at)
        self.runs[poll.node] = run
        target = NodeState.UP if poll.ok else NodeState.DOWN
        needed = self.settings.up_after if poll.ok else self.settings.down_after
        if current is not target and run.count >= needed:
            return StateEvent(at=run.since, node=poll.node, state=target, known_at=poll.at)
        return None

    def interrupt(self, node: str) -> None:
        """The node went unknown (not observed): the next poll starts a new run; stale polls stay ignored."""
        run = self.runs.get(node)
        if run is not None:
            self.runs[node] = PollRun(run.ok, 0, run.since, run.last_poll)

    def restore(self, runs: dict[str, PollRun]) -> None:
        self.runs = dict(runs)
