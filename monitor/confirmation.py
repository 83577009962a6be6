"""From raw poll results to confirmed state changes (SPEC §2).

A node becomes *down* after ``down_after`` consecutive failed polls and *up* after ``up_after`` consecutive
successes; a node in *unknown* state needs the same runs. The change is **dated** at the first poll of the
confirming run and **known** when the run completes. Polls of a node older than (or as old as) the last one
seen are not applied, and are reported as not applied with the reason (SPEC R7), never dropped silently. A
``state`` event for a node (any state) interrupts its run: the next poll starts a fresh one (SPEC R7).

:class:`Confirmer` is pure bookkeeping (no I/O, no clock) and the one place where polls become states:
:meth:`Confirmer.feed` takes a batch of events in stream order (polls and everything else) and returns the
same stream with each poll replaced by the change it confirms, if any. The service feeds every ingested batch
through one long-lived instance (live collectors and replayed ``poll`` events alike); the engine only ever sees
state events. Its per-node :class:`PollRun` can be stored and restored so that a replay split in two files
equals one.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.events import Event, NodeState, PollEvent, StateEvent, format_time


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


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A batch after confirmation: ``events`` in stream order, each poll replaced by the state change it
    confirmed (polls that confirmed nothing are left out); ``not_applied`` the polls refused, as
    ``(index in the batch, reason)``; ``confirmed`` how many changes the polls confirmed."""

    events: tuple[Event, ...]
    confirmed: int
    not_applied: tuple[tuple[int, str], ...]


class Confirmer:
    """Turns polls into :class:`StateEvent` s. ``state_of`` gives the node's current confirmed state."""

    def __init__(self, settings: ConfirmationSettings | None = None) -> None:
        self.settings = settings or ConfirmationSettings()
        self.runs: dict[str, PollRun] = {}

    def feed(self, events: Sequence[Event], states: MutableMapping[str, NodeState]) -> Confirmed:
        """Confirm a batch in stream order. ``states`` (node -> confirmed state; absent: up) is read and kept
        up to date with every state change of the batch, given or confirmed."""
        out: list[Event] = []
        refused: list[tuple[int, str]] = []
        confirmed = 0
        for i, event in enumerate(events):
            if isinstance(event, PollEvent):
                stale = self.stale(event)
                if stale is not None:
                    refused.append((i, stale))
                    continue
                change = self.observe(event, states.get(event.node, NodeState.UP))
                if change is None:
                    continue
                confirmed += 1
                states[event.node] = change.state
                out.append(change)
                continue
            if isinstance(event, StateEvent):
                states[event.node] = event.state
                self.interrupt(event.node)  # any given state needs fresh runs after it (SPEC R7)
            out.append(event)
        return Confirmed(tuple(out), confirmed, tuple(refused))

    def stale(self, poll: PollEvent) -> str | None:
        """Why ``poll`` cannot be applied (dated at or before the node's last applied poll), or None."""
        run = self.runs.get(poll.node)
        if run is not None and poll.at <= run.last_poll:
            return (
                f"poll dated {format_time(poll.at)} is not after the last applied poll of {poll.node} "
                f"({format_time(run.last_poll)})"
            )
        return None

    def observe(self, poll: PollEvent, current: NodeState) -> StateEvent | None:
        """Account one poll (not stale: see :meth:`stale`); return the confirmed change it completes, if any."""
        run = self.runs.get(poll.node)
        if run is not None and poll.at <= run.last_poll:
            return None  # stale: callers check :meth:`stale` first
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
        """A state was given for the node: the next poll starts a new run; stale polls stay refused."""
        run = self.runs.get(node)
        if run is not None:
            self.runs[node] = PollRun(run.ok, 0, run.since, run.last_poll)

    def restore(self, runs: dict[str, PollRun]) -> None:
        self.runs = dict(runs)
