"""Incidents (SPEC §3): grouping offline channels by shared cause, and what an incident records.

:class:`Incident` is the engine's working record (mutable while the incident is open, owned by one engine);
:class:`IncidentView` is its frozen snapshot that the assessment and the report read.
:func:`choose_incident` is the pure grouping rule: rejoin, join by correlation window and lowest common
ancestor below the root (deepest new scope, then earliest), or open a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.events import ExclusionStatus, format_time
from monitor.inventory import Inventory


def incident_id(scope: str, start: datetime) -> str:
    """``{scope}@{start, UTC, RFC 3339 to the second}``, e.g. ``CPE-0042@2026-10-03T00:00:00Z``."""
    return f"{scope}@{format_time(start.replace(microsecond=0))}"


class TimelineKind(StrEnum):
    OPENED = "opened"
    JOINED = "joined"
    LEVEL = "level"
    ACK = "ack"
    ONSITE = "onsite"
    EXPLANATION = "explanation"
    EXCLUSION = "exclusion"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to an incident. ``at`` is its dated time, ``known`` when it became known."""

    at: datetime
    known: datetime
    kind: TimelineKind
    detail: str


@dataclass(frozen=True, slots=True)
class ExclusionStep:
    at: datetime
    status: ExclusionStatus
    cause: str
    evidence: str | None
    by: str | None


@dataclass(slots=True)
class Incident:
    """An open or ended incident in one engine. Times are UTC; ``members`` are channel positions."""

    id: str
    scope: str
    start: datetime
    members: dict[int, None] = field(default_factory=dict)  # insertion-ordered set of channels ever held
    offline: set[int] = field(default_factory=set)  # members offline now
    pending: set[int] = field(default_factory=set)  # members not yet back online (offline or unknown)
    intervals: dict[int, list[list[datetime | None]]] = field(default_factory=dict)  # offline [from, to)
    peak: int = 0
    end: datetime | None = None
    ack: datetime | None = None
    ack_by: str | None = None
    onsite: datetime | None = None
    onsite_by: str | None = None
    explanations: list[tuple[datetime, str]] = field(default_factory=list)
    exclusion: list[ExclusionStep] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.end is None

    def view(self, inventory: Inventory, level: int) -> IncidentView:
        return IncidentView(
            id=self.id,
            scope=self.scope,
            start=self.start,
            end=self.end,
            level=level,
            peak=self.peak,
            members=tuple(self.members),
            intervals={
                c: tuple((a, b) for a, b in spans if a is not None) for c, spans in self.intervals.items()
            },
            ack=self.ack,
            ack_by=self.ack_by,
            onsite=self.onsite,
            onsite_by=self.onsite_by,
            explanations=tuple(self.explanations),
            exclusion=tuple(self.exclusion),
            timeline=tuple(self.timeline),
            circuits=tuple(
                dict.fromkeys(
                    c
                    for c in (inventory.circuit_of(inventory.channels[m].node) for m in self.members)
                    if c is not None
                )
            ),
        )


@dataclass(frozen=True, slots=True)
class IncidentView:
    """A frozen snapshot of an incident; ``intervals`` maps a channel to its offline spans in it (end None: open)."""

    id: str
    scope: str
    start: datetime
    end: datetime | None
    level: int
    peak: int
    members: tuple[int, ...]
    intervals: dict[int, tuple[tuple[datetime, datetime | None], ...]]
    ack: datetime | None
    ack_by: str | None
    onsite: datetime | None
    onsite_by: str | None
    explanations: tuple[tuple[datetime, str], ...]
    exclusion: tuple[ExclusionStep, ...]
    timeline: tuple[TimelineEntry, ...]
    circuits: tuple[str, ...]

    @property
    def open(self) -> bool:
        return self.end is None

    def exclusion_status(self) -> ExclusionStatus | None:
        """The latest decision (approved/rejected) stands; a request alone is no decision."""
        decided = [s.status for s in self.exclusion if s.status is not ExclusionStatus.REQUESTED]
        if decided:
            return decided[-1]
        return ExclusionStatus.REQUESTED if self.exclusion else None

    def explained_by(self, t: datetime) -> bool:
        return any(at <= t for at, _ in self.explanations)


def choose_incident(
    inventory: Inventory,
    node: str,
    t: datetime,
    open_incidents: Iterable[Incident],
    window: timedelta,
) -> tuple[Incident, str] | None:
    """The open incident a channel of ``node`` going offline at ``t`` joins, with its new scope; None: open one.

    Rule (SPEC §3): among open incidents with ``|t - start| <= window`` whose scope's lowest common ancestor
    with ``node`` is not the root, the one whose new scope is deepest, then the earliest.
    """
    best: tuple[int, datetime, Incident, str] | None = None
    for incident in open_incidents:
        if abs(t - incident.start) > window:
            continue
        scope = inventory.lca(incident.scope, node)
        if scope is None:
            continue
        depth = inventory.depth(scope)
        if best is None or (-depth, incident.start) < (-best[0], best[1]):
            best = (depth, incident.start, incident, scope)
    return None if best is None else (best[2], best[3])
