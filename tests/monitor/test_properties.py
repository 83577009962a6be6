"""Properties of the engine and the assessment over random small trees and random event streams.

(1) online + offline + excluded + blind = active channel-seconds, per channel and in total;
(2) every event duplicated replays to the same history and assessment as once;
(3) an incident's level never falls (checked after every instant); its start is its earliest offline span and
    an ended incident ends no earlier than any of its spans;
(4) a replay split between two instants into two calls equals one; a fresh engine replaying A+B after another
    engine replayed A equals one (no state shared between engines).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from monitor.assessment import US, assess, channel_seconds
from monitor.contracts import default_contract
from monitor.engine import ChannelState, Engine, History, state_at
from monitor.events import FINDING_ITEMS, Event, ExclusionStatus, NodeState
from monitor.incidents import TimelineKind
from monitor.inventory import Inventory
from monitor.policy import DEFAULT_POLICY
from tests.monitor.builders import (
    OCT,
    ack,
    exclude,
    explain,
    finding,
    maint,
    onsite,
    ordered,
    poll,
    state,
    t,
    tree,
)

T0 = t(0, day=3)
STEP = timedelta(minutes=5)
SLOTS = 2 * 24 * 12  # two days of 5-minute slots: two 11:00s (Asia/Shanghai) inside
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def at(slot: int) -> datetime:
    return T0 + slot * STEP


@st.composite
def networks(draw: st.DrawFn) -> Inventory:
    paths: list[str] = []
    attrs: dict[str, dict[str, Any]] = {}
    for a in range(1, draw(st.integers(1, 2)) + 1):
        for b in range(1, draw(st.integers(1, 2)) + 1):
            for c in range(1, draw(st.integers(1, 2)) + 1):
                cpe = f"CPE-{a}{b}{c}"
                n = draw(st.integers(1, 3))
                paths.append(f"T{a}/B{a}{b}/{cpe}:cam*{n}")
                for i in range(1, n + 1):
                    if draw(st.integers(0, 3)) == 0:
                        lo = draw(st.one_of(st.none(), st.integers(0, SLOTS)))
                        hi = draw(st.one_of(st.none(), st.integers(0, SLOTS)))
                        if lo is not None and hi is not None and hi < lo:
                            lo, hi = hi, lo
                        attrs[f"{cpe}.{i}"] = {
                            "commissioned": None if lo is None else at(lo),
                            "decommissioned": None if hi is None else at(hi),
                        }
    return tree(*paths, attrs=attrs)


@st.composite
def streams(draw: st.DrawFn, inv: Inventory) -> list[Event]:
    nodes = list(inv)
    cpes = [n for n in nodes if n.startswith("CPE-") and "." not in n]
    node = st.sampled_from(nodes)
    slot = st.integers(0, SLOTS)
    events: list[Event] = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(
            st.sampled_from(
                ["state"] * 6 + ["poll"] * 2 + ["ack", "onsite", "explain", "exclude"] * 1 + ["maint", "finding"]
            )
        )
        s = draw(slot)
        if kind == "state":
            lag = draw(st.sampled_from([0, 0, 0, 1, 3]))
            st_ = draw(st.sampled_from([NodeState.DOWN, NodeState.DOWN, NodeState.UP, NodeState.UNKNOWN]))
            events.append(state(draw(node), at(s), st_, known=at(s + lag) if lag else None))
        elif kind == "poll":
            cpe = draw(st.sampled_from(cpes))
            ok = draw(st.booleans())
            events.extend(poll(cpe, at(s + i), ok) for i in range(draw(st.integers(1, 4))))
        elif kind == "ack":
            events.append(ack(draw(node), at(s)))
        elif kind == "onsite":
            events.append(onsite(draw(node), at(s)))
        elif kind == "explain":
            events.append(explain(draw(node), at(s)))
        elif kind == "exclude":
            status = draw(st.sampled_from(list(ExclusionStatus)))
            events.append(exclude(draw(node), at(s), status.value))
        elif kind == "maint":
            length = draw(st.integers(1, 60))
            events.append(maint(draw(node), at(s), at(s + length)))
        else:
            item = draw(st.sampled_from(FINDING_ITEMS))
            events.append(finding(item, at(s), draw(st.sampled_from(["0.5", "1", "5"]))))
    return ordered(events)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Inventory, list[Event], datetime]:
    inv = draw(networks())
    note(f"inventory: {[(n.id, n.parent, n.commissioned, n.decommissioned) for n in inv.nodes()]}")
    events = draw(streams(inv))
    as_of = draw(st.one_of(st.just(OCT.end), st.integers(0, SLOTS + 12).map(at)))
    return inv, events, as_of


def replay(inv: Inventory, events: list[Event], as_of: datetime) -> History:
    eng = Engine(inv, DEFAULT_POLICY)
    eng.replay(events)
    return eng.snapshot(max(as_of, eng.now or as_of))


def outcome(inv: Inventory, history: History) -> Any:
    return assess(inv, default_contract(), history, OCT)


def _us(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * US + d.microseconds


@given(cases())
@SETTINGS
def test_categories_add_up_to_active_channel_seconds(case: tuple[Inventory, list[Event], datetime]) -> None:
    inv, events, as_of = case
    h = replay(inv, events, as_of)
    lo, hi = OCT.start, min(OCT.end, max(h.as_of, OCT.start))
    approved = {i.id for i in h.incidents if i.exclusion_status() is ExclusionStatus.APPROVED}
    per = channel_seconds(inv, h, (lo, hi), approved)
    for p, secs in per.items():
        node = inv[inv.channels[p].node]
        a = max(lo, node.commissioned or lo)
        b = min(hi, node.decommissioned or hi)
        assert secs.active == (_us(b - a) if b > a else 0), inv.channels[p].label
        assert min(secs.online, secs.offline, secs.excluded, secs.blind) >= 0
    total = outcome(inv, h).seconds
    assert total.active == sum(x.active for x in per.values())
    assert (total.online, total.offline) == (sum(x.online for x in per.values()), sum(x.offline for x in per.values()))


@given(cases())
@SETTINGS
def test_every_event_twice_equals_once(case: tuple[Inventory, list[Event], datetime]) -> None:
    inv, events, as_of = case
    once = replay(inv, events, as_of)
    twice = replay(inv, [e for e in events for _ in (0, 1)], as_of)
    assert twice == once
    assert outcome(inv, twice) == outcome(inv, once)


@given(cases())
@SETTINGS
def test_level_never_falls_and_spans_bound_the_incident(case: tuple[Inventory, list[Event], datetime]) -> None:
    inv, events, as_of = case
    eng = Engine(inv, DEFAULT_POLICY)
    levels: dict[str, int] = {}
    for known, group in groupby(events, key=lambda e: e.known):
        eng.apply_instant(known, list(group))
        for inc in eng.snapshot(known).incidents:
            assert inc.level >= levels.get(inc.id, 0), inc.id
            assert inc.level == DEFAULT_POLICY.level_for(inc.peak)
            levels[inc.id] = inc.level
            starts = [a for spans in inc.intervals.values() for a, _ in spans]
            assert inc.start == min(starts)
            if inc.end is not None:
                ends = [b for spans in inc.intervals.values() for _, b in spans]
                assert None not in ends and inc.end >= max(e for e in ends if e is not None)
                (ending,) = [e for e in inc.timeline if e.kind is TimelineKind.ENDED]
                assert ending.at == inc.end
                if ending.known == known:  # it ended in this instant: every channel it held is back
                    assert all(eng.state[p] in (ChannelState.ONLINE, ChannelState.INACTIVE) for p in inc.members)
    final = eng.snapshot(max(as_of, eng.now or as_of))
    assert final == replay(inv, events, as_of)  # snapshotting along the way changes nothing


@given(cases(), st.data())
@SETTINGS
def test_a_split_replay_equals_one(case: tuple[Inventory, list[Event], datetime], data: st.DataObject) -> None:
    inv, events, as_of = case
    instants = [list(g) for _, g in groupby(events, key=lambda e: e.known)]
    k = data.draw(st.integers(0, len(instants)))
    a = [e for g in instants[:k] for e in g]
    b = [e for g in instants[k:] for e in g]
    one = replay(inv, events, as_of)
    eng = Engine(inv, DEFAULT_POLICY)
    eng.replay(a)
    eng.replay(b)
    split = eng.snapshot(max(as_of, eng.now or as_of))
    assert split == one
    # storage style: an engine replays A, then a fresh engine replays A + B
    first = Engine(inv, DEFAULT_POLICY)
    first.replay(a)
    first.snapshot(max(as_of, first.now or as_of))
    assert replay(inv, a + b, as_of) == one
    assert outcome(inv, split) == outcome(inv, one)


def test_strategies_cover_the_interesting_cases() -> None:
    """A fixed stream through the same helpers, so the strategies' vocabulary is exercised deterministically."""
    inv = tree("T1/B11/CPE-111:cam*2")
    events = ordered(
        [
            state("CPE-111", at(1), NodeState.DOWN),
            ack("T1", at(2)),
            exclude("CPE-111", at(3), "approved"),
            state("CPE-111", at(4), NodeState.UP),
            finding("4a", at(5), 1),
        ]
    )
    h = replay(inv, events, OCT.end)
    assert len(h.incidents) == 1 and outcome(inv, h).seconds.offline == 0


@given(networks(), st.data())
@SETTINGS
def test_without_backdating_channel_state_is_the_topmost_not_up_node(inv: Inventory, data: st.DataObject) -> None:
    """An oracle: node states from the last state event at or before each slot (the later in the stream wins;
    an identical repeat is the same event, at its first position, as storage keeps it), then each channel by
    the topmost node on its path that is not up; inactive outside its interval."""
    nodes = list(inv)
    raw = data.draw(
        st.lists(
            st.tuples(st.integers(0, SLOTS), st.sampled_from(nodes), st.sampled_from(list(NodeState))), max_size=30
        )
    )
    events = sorted((state(n, at(s), x) for s, n, x in raw), key=lambda e: e.at)
    events = list({e.id: e for e in reversed(events)}.values())[::-1]  # an identical repeat is the first copy
    h = replay(inv, ordered(events), at(SLOTS + 1))
    for slot in range(SLOTS + 2):
        now = at(slot)
        node_state = {n: NodeState.UP for n in nodes}
        for e in events:
            if e.at <= now:
                node_state[e.node] = e.state
        for ch in inv.channels:
            node = inv[ch.node]
            if not node.active_at(now):
                want = ChannelState.INACTIVE
            else:
                top = next((node_state[n] for n in inv.path(ch.node) if node_state[n] is not NodeState.UP), None)
                want = {None: ChannelState.ONLINE, NodeState.DOWN: ChannelState.OFFLINE}.get(top, ChannelState.UNKNOWN)
            got = state_at(h.transitions[ch.position], h.initial[ch.position], now)[0]
            assert got is want, (ch.label, now)
