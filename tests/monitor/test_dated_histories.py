"""Property (SPEC R1, R5): the engine's channel histories equal a brute-force evaluation of the topmost-not-up
rule over the nodes' dated histories.

Streams are generated for a small tree with backdated events, several events known at one instant, identical
events and conflicting ones (a node both down and up in one instant). The brute force below shares no code
with the engine: it keeps each node's dated history (clamped as SPEC §2 says: never before the node's previous
change, never after it became known; a later event of an instant stands; identical events are one), and after
each instant evaluates every channel's state at every dated change point of any node from the instant's
earliest change on. What a channel's history already holds before its last transition is never rewritten
(R5), so the evaluation for a channel starts no earlier than its last transition.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.engine import ChannelState
from monitor.events import NodeState, StateEvent
from monitor.inventory import Inventory
from tests.monitor.builders import engine, secs, t, tree

INV = tree("T1/B1/CPE-1:cam*2", "T1/B1/CPE-2:cam", "T2/CPE-3:nvr2")
NODES = list(INV)
BASE = t(10)

Instant = tuple[datetime, list[StateEvent]]


@st.composite
def streams(draw: st.DrawFn) -> list[Instant]:
    out: list[Instant] = []
    known = BASE
    for _ in range(draw(st.integers(1, 12))):
        known = known + secs(draw(st.sampled_from([1, 30, 60, 300])))
        events = []
        for _ in range(draw(st.integers(1, 4))):
            back = draw(st.sampled_from([0, 0, 5, 30, 90, 400]))
            events.append(
                StateEvent(
                    at=max(BASE, known - secs(back)),
                    node=draw(st.sampled_from(NODES)),
                    state=draw(st.sampled_from(list(NodeState))),
                    known_at=known,
                )
            )
        if draw(st.booleans()):
            events.append(draw(st.sampled_from(events)))  # an identical event in the same instant
        out.append((known, events))
    return out


def _state_at(hist: list[tuple[datetime, NodeState]], at: datetime) -> NodeState:
    current = NodeState.UP
    for d, s in hist:
        if d <= at:
            current = s
    return current


def _rule(inv: Inventory, node: str, hists: dict[str, list[tuple[datetime, NodeState]]], at: datetime) -> ChannelState:
    for nid in inv.path(node):
        s = _state_at(hists.get(nid, []), at)
        if s is NodeState.DOWN:
            return ChannelState.OFFLINE
        if s is NodeState.UNKNOWN:
            return ChannelState.UNKNOWN
    return ChannelState.ONLINE


def brute_force(inv: Inventory, stream: list[Instant]) -> dict[int, list[tuple[datetime, ChannelState]]]:
    hists: dict[str, list[tuple[datetime, NodeState]]] = {}
    channels: dict[int, list[tuple[datetime, ChannelState]]] = {c.position: [] for c in inv.channels}
    for known, events in stream:
        seen: set[str] = set()
        changes: dict[str, tuple[NodeState, datetime]] = {}
        for e in events:
            if e.id in seen:
                continue  # identical events are one: the first stands
            seen.add(e.id)
            changes.pop(e.node, None)
            changes[e.node] = (e.state, e.at)  # the later event of the instant stands
        earliest: datetime | None = None
        for node, (s, at) in changes.items():
            hist = hists.setdefault(node, [])
            if (hist[-1][1] if hist else NodeState.UP) is s:
                continue
            d = min(max(at, hist[-1][0]) if hist else at, known)
            hist.append((d, s))
            earliest = d if earliest is None else min(earliest, d)
        if earliest is None:
            continue
        points = sorted({d for h in hists.values() for d, _ in h})
        for ch in inv.channels:
            out = channels[ch.position]
            begin = max(earliest, out[-1][0]) if out else earliest
            current = out[-1][1] if out else ChannelState.ONLINE
            for at in [begin, *(p for p in points if p > begin)]:
                s = _rule(inv, ch.node, hists, at)
                if s is not current:
                    out.append((at, s))
                    current = s
    return channels


@settings(max_examples=300, deadline=None)
@given(streams())
def test_channel_histories_equal_the_rule_over_dated_node_histories(stream: list[Instant]) -> None:
    eng = engine(INV)
    for known, events in stream:
        eng.apply_instant(known, events)
    expected = brute_force(INV, stream)
    assert {p: list(h) for p, h in eng.transitions.items()} == expected


@settings(max_examples=200, deadline=None)
@given(streams())
def test_incident_spans_are_exactly_the_offline_time(stream: list[Instant]) -> None:
    """Every offline stretch of a channel's history lies in exactly one incident span, and nothing else does."""
    eng = engine(INV)
    for known, events in stream:
        eng.apply_instant(known, events)
    h = eng.snapshot(stream[-1][0] + secs(3600))
    for p, transitions in h.transitions.items():
        offline: list[tuple[datetime, datetime | None]] = []
        for i, (at, s) in enumerate(transitions):
            if s is ChannelState.OFFLINE:
                end = transitions[i + 1][0] if i + 1 < len(transitions) else None
                offline.append((at, end))
        spans = sorted(
            (span for inc in h.incidents for span in inc.intervals.get(p, ())),
            key=lambda s: s[0],
        )
        assert spans == offline
