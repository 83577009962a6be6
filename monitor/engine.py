"""The incident engine (SPEC §2–§4): events in, channel histories and incidents out. Pure: no I/O, no clock.

Events are applied one **instant** (a known time) at a time, in the order they become known:

1. state changes of the instant (confirmed ``state`` events, and ``poll`` events confirmed by the
   :class:`~monitor.confirmation.Confirmer`), plus channels becoming active or inactive at that time, all apply
   together; the later event of the stream stands where two conflict;
2. every channel under a changed node is re-evaluated: the topmost node on its path that is not up decides
   (down → offline, unknown → unknown; all up → online); outside its active interval it is inactive;
3. channels going offline join incidents in inventory order (:func:`~monitor.incidents.choose_incident`);
4. peaks and levels are measured after all changes; incidents whose channels are all back end;
5. then acknowledgements, arrivals on site, explanations, exclusion steps, maintenance and findings.

Each channel's history is a list of ``(dated time, state)`` transitions. :meth:`Engine.snapshot` freezes
everything the assessment needs into a :class:`History`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from monitor.channels import ChannelState, channel_state
from monitor.confirmation import ConfirmationSettings, Confirmer
from monitor.events import (
    AckEvent,
    BaseEvent,
    Event,
    ExclusionEvent,
    ExplanationEvent,
    FindingEvent,
    MaintenanceEvent,
    NodeState,
    OnsiteEvent,
    PollEvent,
    StateEvent,
    TargetedEvent,
    format_time,
)
from monitor.incidents import (
    ExclusionStep,
    Incident,
    IncidentView,
    TimelineEntry,
    TimelineKind,
    choose_incident,
    incident_id,
)
from monitor.inventory import Inventory
from monitor.policy import Policy

__all__ = ["ChannelState", "Engine", "History", "Unmatched", "state_at"]


class _StatesAt(Mapping[str, NodeState]):
    """Each node's state at one dated time, read from the nodes' dated histories (absent: never changed)."""

    def __init__(self, history: Mapping[str, list[tuple[datetime, NodeState]]], at: datetime) -> None:
        self._history = history
        self._at = at

    def __getitem__(self, node: str) -> NodeState:
        hist = self._history.get(node)
        i = bisect.bisect_right(hist, self._at, key=lambda h: h[0]) if hist else 0
        if not i:
            raise KeyError(node)
        return hist[i - 1][1]  # type: ignore[index]

    def get(self, node: str, default: Any = None) -> Any:  # the rule asks every node: no KeyError per miss
        hist = self._history.get(node)
        if not hist:
            return default
        i = bisect.bisect_right(hist, self._at, key=lambda h: h[0])
        return hist[i - 1][1] if i else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._history)

    def __len__(self) -> int:
        return len(self._history)


@dataclass(frozen=True, slots=True)
class Unmatched:
    """An event that found nothing to apply to (an ack before any incident, an unknown node...)."""

    event: BaseEvent
    reason: str


@dataclass(frozen=True, slots=True)
class History:
    """Everything known at ``as_of``: per-channel transitions, incidents, maintenance and findings."""

    as_of: datetime
    channels: tuple[int, ...]  # the positions this engine covers, in inventory order
    initial: dict[int, ChannelState]  # each channel's state before its first transition
    transitions: dict[int, tuple[tuple[datetime, ChannelState], ...]]
    incidents: tuple[IncidentView, ...]
    maintenance: tuple[MaintenanceEvent, ...]
    findings: tuple[FindingEvent, ...]
    unmatched: tuple[Unmatched, ...]


class Engine:
    """One contract's incident engine over ``channels`` (positions in ``inventory.channels``; all by default)."""

    def __init__(
        self,
        inventory: Inventory,
        policy: Policy,
        channels: Iterable[int] | None = None,
        confirmation: ConfirmationSettings | None = None,
    ) -> None:
        self.inventory = inventory
        self.policy = policy
        self.window = timedelta(seconds=policy.window_s)
        all_channels = inventory.channels
        chosen = set(range(len(all_channels))) if channels is None else set(channels)
        self.channels: tuple[int, ...] = tuple(sorted(chosen))
        self._covered = frozenset(self.channels)
        self.confirmer = Confirmer(confirmation)
        self._confirmed_states: dict[str, NodeState] = {}  # the confirmer's view (it reads and updates it)
        self.node_history: dict[str, list[tuple[datetime, NodeState]]] = {}  # each node's dated changes
        self.node_state: dict[str, NodeState] = {}  # each node's latest state (its history's last), for lookups
        self.now: datetime | None = None
        # Channel states and their dated transitions; a channel starts in the state it has before any event.
        self.state: dict[int, ChannelState] = {}
        self.initial: dict[int, ChannelState] = {}
        self.transitions: dict[int, list[tuple[datetime, ChannelState]]] = {}
        boundaries: list[tuple[datetime, int]] = []
        for pos in self.channels:
            node = inventory[all_channels[pos].node]
            initial = ChannelState.INACTIVE if node.commissioned is not None else ChannelState.ONLINE
            self.state[pos] = initial
            self.initial[pos] = initial
            self.transitions[pos] = []
            for t in (node.commissioned, node.decommissioned):
                if t is not None:
                    boundaries.append((t, pos))
        boundaries.sort()
        self._boundaries = boundaries
        self._next_boundary = 0
        self.incidents: list[Incident] = []
        self.by_id: dict[str, Incident] = {}
        self.open: dict[str, Incident] = {}  # insertion-ordered: earliest opened first
        self.member_of: dict[int, Incident] = {}  # channel -> its open incident
        # node -> the incidents that have held a channel at or under it (ids in the order they joined)
        self._held_under: dict[str, dict[str, Incident]] = {}
        self._rank: dict[str, int] = {}  # incident id -> its place in the order incidents opened
        self._held_open: dict[int, Incident] = {}  # channel -> the open incident that has held it
        self._open_in_area: dict[str, dict[str, Incident]] = {}  # area -> its open incidents, in opening order
        self._returned: dict[str, datetime] = {}  # open incident -> latest dated return of any of its channels
        self.maintenance: list[MaintenanceEvent] = []
        self.findings: list[FindingEvent] = []
        self.unmatched: list[Unmatched] = []
        self.changed: set[str] = set()  # ids of incidents opened or changed since the last drain_changed()

    # ------------------------------------------------------------------ driving
    def replay(self, events: Iterable[Event]) -> None:
        """Apply events in known-time order, grouping those known at the same time into one instant."""
        for t, group in groupby(events, key=lambda e: e.known):
            self.apply_instant(t, list(group))

    def advance(self, t: datetime) -> None:
        """Apply every active-interval boundary up to and including ``t`` (each its own instant)."""
        while self._next_boundary < len(self._boundaries) and self._boundaries[self._next_boundary][0] <= t:
            bt = self._boundaries[self._next_boundary][0]
            self._apply_changes(bt, {}, bt)
            self.now = max(self.now or bt, bt)

    def apply_instant(self, t: datetime, events: Sequence[Event]) -> None:
        """Apply the events that became known at ``t`` (SPEC §2, instants)."""
        if self.now is not None and t < self.now:
            raise ValueError(f"instant {format_time(t)} is before the engine's time {format_time(self.now)}")
        # Boundaries strictly before t are their own instants; those at t join this one.
        while self._next_boundary < len(self._boundaries) and self._boundaries[self._next_boundary][0] < t:
            self.advance(self._boundaries[self._next_boundary][0])
        self.now = t
        if len(events) > 1:  # identical events are one event (an id is a hash: spared for lone events)
            unique: dict[str, Event] = {}
            for event in events:
                unique.setdefault(event.id, event)
            events = list(unique.values())
        known_nodes: list[Event] = []
        for event in events:
            if isinstance(event, StateEvent | PollEvent) and event.node not in self.inventory:
                self.unmatched.append(Unmatched(event, f"node {event.node!r} is not in the inventory"))
            else:
                known_nodes.append(event)
        # Polls become states in the one place that does it (the service does the same before storing).
        fed = self.confirmer.feed(known_nodes, self._confirmed_states)
        for i, reason in fed.not_applied:
            self.unmatched.append(Unmatched(known_nodes[i], reason))
        changes: dict[str, tuple[NodeState, datetime]] = {}
        for event in fed.events:
            if isinstance(event, StateEvent):
                changes.pop(event.node, None)  # the later event of the stream stands
                changes[event.node] = (event.state, event.at)
        self._apply_changes(t, changes, t)
        for event in fed.events:
            if not isinstance(event, StateEvent):
                self._apply_other(event, t)

    # ------------------------------------------------------------------ state changes
    def _channel_at(self, pos: int, at: datetime) -> tuple[ChannelState, str | None]:
        """The topmost-not-up rule (SPEC §2) at dated time ``at`` over the nodes' dated histories."""
        return channel_state(self.inventory, self.inventory.channels[pos].node, _StatesAt(self.node_history, at), at)

    def _apply_changes(self, known: datetime, changes: dict[str, tuple[NodeState, datetime]], t: datetime) -> None:
        """Apply one instant's node changes (and the activity boundaries at ``t``).

        Each node's change enters its own dated history (never before its previous change, never after it
        became known). Every channel under a changed node then takes, in dated order, the states the
        topmost-not-up rule gives over those histories from the earliest change on its path (SPEC R1); what a
        channel's history already holds before its last transition is never rewritten (SPEC R5: a backdated
        change on a channel already offline only enters its node's history). The resulting transitions of all
        channels are taken in dated order, then inventory order, for grouping into incidents; peaks and ends
        are measured once, after all of them (SPEC §2, instants).
        """
        inv = self.inventory
        dated: dict[str, datetime] = {}
        for node, (state, at) in changes.items():
            if self.node_state.get(node, NodeState.UP) is state:
                continue
            # A node's own history never runs backwards, nor ahead of when it became known.
            own = self.node_history.setdefault(node, [])
            at = min(max(at, own[-1][0]) if own else at, known)
            own.append((at, state))
            self.node_state[node] = state
            dated[node] = at
        earliest: dict[int, datetime] = {}
        for node, at in dated.items():
            for p in inv.channels_under[node]:
                if p in self._covered and (p not in earliest or at < earliest[p]):
                    earliest[p] = at
        while self._next_boundary < len(self._boundaries) and self._boundaries[self._next_boundary][0] <= t:
            earliest[self._boundaries[self._next_boundary][1]] = t
            self._next_boundary += 1
        if not earliest:
            return
        steps: list[tuple[datetime, int, ChannelState, str | None]] = []
        for pos in sorted(earliest):
            hist = self.transitions[pos]
            begin = max(earliest[pos], hist[-1][0]) if hist else earliest[pos]
            points = {begin}
            for nid in inv.path(inv.channels[pos].node):
                nh = self.node_history.get(nid)
                if nh:
                    i = bisect.bisect_right(nh, begin, key=lambda h: h[0])
                    points.update(at for at, _ in nh[i:])
            if earliest[pos] == t:
                points.add(t)  # an activity boundary at t
            current = self.state[pos]
            for at in sorted(points):
                new, decisive = self._channel_at(pos, at)
                if new is not current:
                    steps.append((at, pos, new, decisive))
                    current = new
        steps.sort(key=lambda s: (s[0], s[1]))
        touched: dict[str, Incident] = {}
        for when, pos, new, decisive in steps:
            old = self.state[pos]
            self.transitions[pos].append((when, new))
            self.state[pos] = new
            incident = self.member_of.get(pos)
            if old is ChannelState.OFFLINE and incident is not None:
                incident.intervals[pos][-1][1] = when
                incident.offline.discard(pos)
                touched[incident.id] = incident
            if new is ChannelState.OFFLINE:
                assert decisive is not None
                incident = self._join(pos, when, decisive, known)
                incident.offline.add(pos)
                incident.pending.add(pos)
                incident.intervals.setdefault(pos, []).append([when, None])
                touched[incident.id] = incident
            elif new is ChannelState.UNKNOWN and incident is None:
                # A member that had returned and now goes unseen holds its open incident again (SPEC R3).
                held = self._holding(pos)
                if held is not None:
                    held.pending.add(pos)
                    self.member_of[pos] = held
                    touched[held.id] = held
            elif new in (ChannelState.ONLINE, ChannelState.INACTIVE) and incident is not None:
                # the latest return so far: an earlier-dated return known later does not end it earlier
                self._returned[incident.id] = max(self._returned.get(incident.id, when), when)
                incident.pending.discard(pos)
                del self.member_of[pos]
                touched[incident.id] = incident
        self.changed.update(touched)
        for incident in touched.values():
            self._measure(incident, known)
            if incident.open and not incident.pending:
                incident.end = self._returned.pop(incident.id, t)
                del self.open[incident.id]
                del self._open_in_area[self._area(incident.scope)][incident.id]
                for member in incident.members:
                    del self._held_open[member]
                incident.timeline.append(TimelineEntry(incident.end, known, TimelineKind.ENDED, ""))

    def _holding(self, pos: int) -> Incident | None:
        """The open incident that has held channel ``pos`` (a channel is in at most one: it rejoins it)."""
        return self._held_open.get(pos)

    def _area(self, node: str) -> str:
        """The child of the root above ``node``: incidents only group within one (their scope is never the
        root), so each area's open incidents are the only candidates for a channel under it."""
        return self.inventory.path(node)[0]

    def _join(self, pos: int, when: datetime, decisive: str, known: datetime) -> Incident:
        node_id = self.inventory.channels[pos].node
        label = self.inventory.channels[pos].label
        incident = self.member_of.get(pos) or self._holding(pos)  # held it, went unknown or back: rejoins
        if incident is None:
            candidates = self._open_in_area.get(self._area(node_id), {}).values()
            chosen = choose_incident(self.inventory, node_id, when, candidates, self.window)
            if chosen is None:
                incident = Incident(id=self._new_id(decisive, when), scope=decisive, start=when)
                self._rank[incident.id] = len(self.incidents)
                self.incidents.append(incident)
                self.by_id[incident.id] = incident
                self.open[incident.id] = incident
                self._open_in_area.setdefault(self._area(decisive), {})[incident.id] = incident
                incident.timeline.append(TimelineEntry(when, known, TimelineKind.OPENED, f"{decisive}: {label}"))
            else:
                incident, scope = chosen
                if scope != incident.scope:
                    incident.scope = scope
                incident.timeline.append(TimelineEntry(when, known, TimelineKind.JOINED, f"{label} via {decisive}"))
        if when < incident.start:
            incident.start = when
        if pos not in incident.members:
            incident.members[pos] = None
            self._held_open[pos] = incident
            for nid in self.inventory.path(node_id):
                self._held_under.setdefault(nid, {})[incident.id] = incident
        self.member_of[pos] = incident
        return incident

    def _new_id(self, scope: str, start: datetime) -> str:
        """``{scope}@{start}``, or with ``~2``, ``~3``... when an earlier incident took it (SPEC R6)."""
        base = incident_id(scope, start)
        if base not in self.by_id:
            return base
        n = 2
        while f"{base}~{n}" in self.by_id:
            n += 1
        return f"{base}~{n}"

    def _measure(self, incident: Incident, known: datetime) -> None:
        count = len(incident.offline)
        if count > incident.peak:
            old_level = self.policy.level_for(incident.peak)
            incident.peak = count
            new_level = self.policy.level_for(count)
            if new_level != old_level:
                incident.timeline.append(
                    TimelineEntry(known, known, TimelineKind.LEVEL, f"level {new_level} at {count} channels")
                )

    # ------------------------------------------------------------------ everything else
    def _targets(self, event: TargetedEvent, *, open_only: bool, unacked: bool, latest: bool) -> list[Incident]:
        if event.incident is not None:
            found = self.by_id.get(event.incident)
            return [found] if found is not None else []
        assert event.node is not None
        # the incidents that have held a channel at or under the node (in the order they first did)
        held = self._held_under.get(event.node, {}).values()
        if latest:
            started = [i for i in held if i.start <= event.at]
            return [max(started, key=lambda i: (i.start, -self._rank[i.id]))] if started else []
        return [i for i in held if (not open_only or i.open) and (not unacked or i.ack is None)]

    def _apply_other(self, event: Event, t: datetime) -> None:
        if isinstance(event, MaintenanceEvent):
            self.maintenance.append(event)
            return
        if isinstance(event, FindingEvent):
            self.findings.append(event)
            return
        if not isinstance(event, TargetedEvent):
            return
        if isinstance(event, AckEvent):
            targets = self._targets(event, open_only=True, unacked=True, latest=False)
        elif isinstance(event, OnsiteEvent):
            targets = self._targets(event, open_only=True, unacked=False, latest=False)
        else:
            targets = self._targets(event, open_only=False, unacked=False, latest=True)
        if not targets:
            self.unmatched.append(Unmatched(event, "no incident to apply it to"))
            return
        self.changed.update(i.id for i in targets)
        for incident in targets:
            if isinstance(event, AckEvent):
                if incident.ack is None:
                    incident.ack, incident.ack_by = event.at, event.by
                    incident.timeline.append(TimelineEntry(event.at, t, TimelineKind.ACK, event.by))
            elif isinstance(event, OnsiteEvent):
                if incident.onsite is None:
                    incident.onsite, incident.onsite_by = event.at, event.by
                    incident.timeline.append(TimelineEntry(event.at, t, TimelineKind.ONSITE, event.by))
            elif isinstance(event, ExplanationEvent):
                incident.explanations.append((event.at, event.text))
                incident.timeline.append(TimelineEntry(event.at, t, TimelineKind.EXPLANATION, event.text))
            elif isinstance(event, ExclusionEvent):
                incident.exclusion.append(
                    ExclusionStep(event.at, event.status, event.cause, event.evidence, event.by)
                )
                incident.timeline.append(
                    TimelineEntry(event.at, t, TimelineKind.EXCLUSION, f"{event.status}: {event.cause}")
                )

    # ------------------------------------------------------------------ output
    def snapshot(self, as_of: datetime) -> History:
        """Freeze the engine's knowledge at ``as_of`` (boundaries up to it applied first)."""
        if self.now is None or as_of >= self.now:
            self.advance(as_of)
        views = []
        for incident in self.incidents:
            views.append(incident.view(self.inventory, self.policy.level_for(incident.peak)))
        return History(
            as_of=as_of,
            channels=self.channels,
            initial=dict(self.initial),
            transitions={p: tuple(h) for p, h in self.transitions.items()},
            incidents=tuple(views),
            maintenance=tuple(self.maintenance),
            findings=tuple(self.findings),
            unmatched=tuple(self.unmatched),
        )

    def drain_changed(self) -> list[IncidentView]:
        """Views of the incidents opened or changed since the last drain (what a store must rewrite)."""
        out = [self.by_id[i].view(self.inventory, self.policy.level_for(self.by_id[i].peak)) for i in self.changed]
        self.changed = set()
        return out

    def forget_changed(self) -> None:
        """Drop the record of what changed since the last drain, without building views (a store of every
        incident, or a reader that stores nothing: at 100,000 channels the views of a month cost 2 s)."""
        self.changed = set()

    def __getstate__(self) -> dict[str, Any]:
        """A snapshot (:mod:`monitor.snapshot`) holds the engine without ``changed``: what changed since the last
        store is the storing process's business; a restored projection is stored whole or not at all."""
        state = dict(self.__dict__)
        state["changed"] = set()
        return state

    def open_incidents(self) -> list[Incident]:
        return list(self.open.values())


def state_at(
    transitions: Sequence[tuple[datetime, ChannelState]], initial: ChannelState, t: datetime
) -> tuple[ChannelState, datetime | None]:
    """A channel's state at ``t`` and since when (None: since before any transition)."""
    i = bisect.bisect_right(transitions, t, key=lambda tr: tr[0])
    if i == 0:
        return initial, None
    return transitions[i - 1][1], transitions[i - 1][0]
