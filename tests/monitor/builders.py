"""Small builders for engine and assessment tests: trees, times, events, and a one-call run.

A tree is written as paths: ``tree("T1/B1/CPE-1:cam*3", "T1/B2/CPE-2:cam")`` builds area ``T1``, branches
``B1``/``B2``, circuits ``CPE-1``/``CPE-2`` and cameras ``CPE-1.1``..``CPE-1.3`` and ``CPE-2.1``. A node's
kind comes from its id's prefix (``T`` area, ``B`` branch, ``P`` power, ``SW`` switch, ``SITE`` site, ``CPE``
cpe, ``CAM`` camera, ``NVR`` nvr); ``:nvr8`` adds an NVR ``<leaf>.nvr`` with 8 channels. Nodes are in order of
first appearance (inventory order); ``attrs`` overrides fields per node id.

Times: ``t(hh, mm, day=3)`` is 2026-10-``day`` ``hh:mm`` UTC (11:00 Asia/Shanghai is ``t(3)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from monitor.assessment import Assessment, IncidentScore, Month, assess
from monitor.confirmation import ConfirmationSettings
from monitor.contracts import Contract, default_contract
from monitor.engine import Engine, History
from monitor.events import (
    AckEvent,
    BaseEvent,
    Event,
    ExclusionEvent,
    ExclusionStatus,
    ExplanationEvent,
    FindingEvent,
    MaintenanceEvent,
    NodeState,
    OnsiteEvent,
    PollEvent,
    StateEvent,
)
from monitor.incidents import IncidentView
from monitor.inventory import Inventory, Node, NodeKind
from monitor.policy import DEFAULT_POLICY, Policy

H = 3600
MIN = 60

_PREFIXES: tuple[tuple[str, NodeKind], ...] = (
    ("SITE", NodeKind.SITE),
    ("CPE", NodeKind.CPE),
    ("CAM", NodeKind.CAMERA),
    ("NVR", NodeKind.NVR),
    ("SW", NodeKind.SWITCH),
    ("T", NodeKind.AREA),
    ("B", NodeKind.BRANCH),
    ("P", NodeKind.POWER),
)


def t(hh: int = 0, mm: int = 0, ss: int = 0, *, day: int = 3, month: int = 10, year: int = 2026) -> datetime:
    """2026-10-``day`` ``hh:mm:ss`` UTC."""
    return datetime(year, month, day, hh, mm, ss, tzinfo=UTC)


def secs(n: float) -> timedelta:
    return timedelta(seconds=n)


def kind_of(node_id: str) -> NodeKind:
    for prefix, kind in _PREFIXES:
        if node_id.startswith(prefix):
            return kind
    raise ValueError(f"cannot tell the kind of {node_id!r} from its prefix")


def tree(*paths: str, attrs: Mapping[str, Mapping[str, Any]] | None = None) -> Inventory:
    """An inventory from paths ``A/B/C[:cam*N|:cam|:nvrN]`` (see the module docstring)."""
    nodes: dict[str, Node] = {}
    attrs = attrs or {}

    def add(node_id: str, kind: NodeKind, parent: str | None, **kw: Any) -> None:
        if node_id in nodes:
            if nodes[node_id].parent != parent:
                raise ValueError(f"{node_id!r} given two parents")
            return
        if kind is NodeKind.CAMERA:
            kw.setdefault("channels", 1)
        if kind is NodeKind.CPE:
            kw.setdefault("monthly_fee", Decimal(100))
        kw.update(attrs.get(node_id, {}))
        nodes[node_id] = Node(id=node_id, kind=kind, parent=parent, **kw)

    for spec in paths:
        path, _, extra = spec.partition(":")
        parent: str | None = None
        for part in path.split("/"):
            add(part, kind_of(part), parent)
            parent = part
        leaf = parent
        assert leaf is not None
        if extra.startswith("cam"):
            n = int(extra.partition("*")[2] or 1)
            for i in range(1, n + 1):
                add(f"{leaf}.{i}", NodeKind.CAMERA, leaf)
        elif extra.startswith("nvr"):
            add(f"{leaf}.nvr", NodeKind.NVR, leaf, channels=int(extra[3:]))
        elif extra:
            raise ValueError(f"unknown suffix {extra!r}")
    return Inventory(nodes.values())


def pos(inv: Inventory, label: str) -> int:
    """A channel's position from its label (``CPE-1.2``, or ``CPE-1.nvr#3``)."""
    for ch in inv.channels:
        if ch.label == label:
            return ch.position
    raise KeyError(label)


# ---------------------------------------------------------------------------------------- events
def state(node: str, at: datetime, st: NodeState, known: datetime | None = None) -> StateEvent:
    return StateEvent(at=at, node=node, state=st, known_at=known)


def down(node: str, at: datetime, known: datetime | None = None) -> StateEvent:
    return state(node, at, NodeState.DOWN, known)


def up(node: str, at: datetime, known: datetime | None = None) -> StateEvent:
    return state(node, at, NodeState.UP, known)


def unknown(node: str, at: datetime, known: datetime | None = None) -> StateEvent:
    return state(node, at, NodeState.UNKNOWN, known)


def poll(node: str, at: datetime, ok: bool = True) -> PollEvent:
    return PollEvent(at=at, node=node, ok=ok)


def polls(node: str, start: datetime, n: int, ok: bool, every: int = 60) -> list[PollEvent]:
    return [poll(node, start + secs(i * every), ok) for i in range(n)]


def _target(target: str) -> dict[str, str]:
    return {"incident": target} if "@" in target else {"node": target}


def ack(target: str, at: datetime, by: str = "crew") -> AckEvent:
    return AckEvent(at=at, by=by, **_target(target))


def onsite(target: str, at: datetime, by: str = "crew") -> OnsiteEvent:
    return OnsiteEvent(at=at, by=by, **_target(target))


def explain(target: str, at: datetime, text: str = "written explanation") -> ExplanationEvent:
    return ExplanationEvent(at=at, text=text, **_target(target))


def exclude(target: str, at: datetime, status: str = "approved", cause: str = "grid power cut") -> ExclusionEvent:
    return ExclusionEvent(at=at, status=ExclusionStatus(status), cause=cause, **_target(target))


def maint(scope: str, start: datetime, end: datetime, at: datetime | None = None) -> MaintenanceEvent:
    return MaintenanceEvent(at=at or start, start=start, end=end, scope=scope)


def finding(item: str, at: datetime, points: float | str | int) -> FindingEvent:
    return FindingEvent(at=at, item=item, points=Decimal(str(points)))


def ordered(events: Iterable[BaseEvent]) -> list[Event]:
    """Stable sort by known time (the order the engine wants)."""
    return cast(list[Event], sorted(events, key=lambda e: e.known))


# ---------------------------------------------------------------------------------------- running
def engine(inv: Inventory, policy: Policy = DEFAULT_POLICY, confirmation: ConfirmationSettings | None = None) -> Engine:
    return Engine(inv, policy, confirmation=confirmation)


def run(
    inv: Inventory,
    events: Sequence[BaseEvent],
    as_of: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    confirmation: ConfirmationSettings | None = None,
) -> History:
    """Replay ``events`` (sorted by known time) and snapshot at ``as_of`` (default: the month's end)."""
    eng = engine(inv, policy, confirmation)
    eng.replay(ordered(events))
    return eng.snapshot(as_of or OCT.end)


def month(key: str = "2026-10", policy: Policy = DEFAULT_POLICY) -> Month:
    return Month.parse(key, policy)


OCT = month("2026-10")
NOV = month("2026-11")


def assess_month(
    inv: Inventory,
    events: Sequence[BaseEvent],
    as_of: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
    key: str = "2026-10",
) -> Assessment:
    contract: Contract = default_contract(policy) if policy is not DEFAULT_POLICY else default_contract()
    history = run(inv, events, as_of or month(key, policy).end, policy)
    return assess(inv, contract, history, month(key, policy))


def only(history: History) -> IncidentView:
    assert len(history.incidents) == 1, [i.id for i in history.incidents]
    return history.incidents[0]


def by_id(history: History, incident: str) -> IncidentView:
    for i in history.incidents:
        if i.id == incident:
            return i
    raise KeyError(incident)


def score_of(a: Assessment, incident: str) -> IncidentScore:
    for s in a.incidents:
        if s.incident.id == incident:
            return s
    raise KeyError(incident)


def lost(a: Assessment, key: str) -> Decimal:
    return next(i.lost for i in a.items if i.key == key)


def with_policy(**kw: Any) -> Policy:
    return replace(DEFAULT_POLICY, **kw)
