"""SPEC §2: a channel's state is decided by the topmost node on its path (its own node included) that is not up.

Tree: area T1 / branch B1 / CPE-1 / cameras CPE-1.1, CPE-1.2 and an 8-channel NVR CPE-1.nvr; area T2 / CPE-2 /
camera CPE-2.1; and a camera CAM-R directly under the root (no parent).
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.channels import ChannelState, channel_state
from monitor.events import NodeState
from monitor.inventory import Inventory, Node, NodeKind
from monitor.metrics import area_baseline, channel_states_by_area
from monitor.sample import sample_inventory
from monitor.status import channel_states
from tests.monitor.builders import down, engine, t, tree, unknown, up

DOWN, UP, UNK = NodeState.DOWN, NodeState.UP, NodeState.UNKNOWN
OFF, ON, BLIND, INACT = ChannelState.OFFLINE, ChannelState.ONLINE, ChannelState.UNKNOWN, ChannelState.INACTIVE
NOW = t(10)


def network() -> Inventory:
    inv = tree("T1/B1/CPE-1:cam*2", "T1/B1/CPE-1:nvr8", "T2/CPE-2:cam")
    return Inventory(
        [
            *inv.nodes(),
            Node("CAM-R", NodeKind.CAMERA, channels=1),
            Node("CAM-NEW", NodeKind.CAMERA, parent="CPE-2", channels=1, commissioned=t(12)),
            Node("CAM-OLD", NodeKind.CAMERA, parent="CPE-2", channels=1, decommissioned=t(9)),
        ]
    )


INV = network()
SAMPLE = Inventory(
    [  # the sample network, with a camera commissioned at 12:00 and one decommissioned at 09:00 (day of t())
        *sample_inventory().nodes(),
        Node("CAM-LATE", NodeKind.CAMERA, parent="CPE-0001", channels=1, commissioned=t(12)),
        Node("CAM-GONE", NodeKind.CAMERA, parent="CPE-0002", channels=1, decommissioned=t(9)),
    ]
)


@pytest.mark.parametrize(
    ("name", "states", "node", "want"),
    [
        ("no state at all: every node is up", {}, "CPE-1.1", (ON, None)),
        ("explicitly up everywhere", {"T1": UP, "B1": UP, "CPE-1": UP, "CPE-1.1": UP}, "CPE-1.1", (ON, None)),
        ("its own node down", {"CPE-1.1": DOWN}, "CPE-1.1", (OFF, "CPE-1.1")),
        ("its own node unknown", {"CPE-1.1": UNK}, "CPE-1.1", (BLIND, "CPE-1.1")),
        ("a parent down", {"CPE-1": DOWN}, "CPE-1.1", (OFF, "CPE-1")),
        # a paused camera behind a down CPE is offline, attributed to the CPE
        ("down above unknown", {"CPE-1": DOWN, "CPE-1.1": UNK}, "CPE-1.1", (OFF, "CPE-1")),
        # a stale "down" behind a node the monitor cannot see is unknown, never offline
        ("unknown above down", {"B1": UNK, "CPE-1": DOWN, "CPE-1.1": DOWN}, "CPE-1.1", (BLIND, "B1")),
        ("the topmost of two downs decides", {"B1": DOWN, "CPE-1": DOWN}, "CPE-1.nvr", (OFF, "B1")),
        ("the area (a child of the root) down", {"T1": DOWN, "B1": UNK}, "CPE-1.2", (OFF, "T1")),
        ("a sibling's state does not matter", {"CPE-1.2": DOWN, "CPE-2": UNK}, "CPE-1.1", (ON, None)),
        ("another area's state does not matter", {"T2": DOWN}, "CPE-1.1", (ON, None)),
        ("a camera under the root: its own node only", {"T1": DOWN, "T2": DOWN}, "CAM-R", (ON, None)),
        ("a camera under the root, down", {"CAM-R": DOWN}, "CAM-R", (OFF, "CAM-R")),
        ("a camera under the root, unknown", {"CAM-R": UNK}, "CAM-R", (BLIND, "CAM-R")),
        ("not commissioned yet: inactive whatever the path", {"CPE-2": DOWN}, "CAM-NEW", (INACT, None)),
        ("decommissioned: inactive whatever the path", {"T2": UNK, "CAM-OLD": DOWN}, "CAM-OLD", (INACT, None)),
        ("active camera beside them", {"T2": UNK}, "CPE-2.1", (BLIND, "T2")),
    ],
)
def test_topmost_node_not_up_decides(
    name: str, states: dict[str, NodeState], node: str, want: tuple[ChannelState, str | None]
) -> None:
    assert channel_state(INV, node, states, NOW) == want, name


def test_the_active_interval_is_half_open() -> None:
    # CAM-NEW commissioned 12:00: inactive at 11:59:59, active (and decided by its path) from 12:00:00
    states = {"CPE-2": DOWN}
    assert channel_state(INV, "CAM-NEW", states, t(11, 59, 59)) == (INACT, None)
    assert channel_state(INV, "CAM-NEW", states, t(12)) == (OFF, "CPE-2")
    # CAM-OLD decommissioned 09:00: active at 08:59:59, inactive at 09:00:00
    assert channel_state(INV, "CAM-OLD", states, t(8, 59, 59)) == (OFF, "CPE-2")
    assert channel_state(INV, "CAM-OLD", states, t(9)) == (INACT, None)


def test_status_and_metrics_count_by_the_same_rule() -> None:
    # B1 unknown over a down CPE-1: its 2 cameras and 8 NVR channels are unknown; CPE-2 down: CPE-2.1 offline,
    # CAM-NEW inactive (not yet commissioned at 10:00), CAM-OLD inactive (decommissioned 09:00); CAM-R online.
    states = {"B1": UNK, "CPE-1": DOWN, "CPE-2": DOWN}
    want = {"unknown": 10, "offline": 1, "inactive": 2, "online": 1}
    assert channel_states(INV, states, NOW) == Counter(want)
    by_area = channel_states_by_area(INV, states, NOW)
    assert by_area == Counter(
        {("T1", "unknown"): 10, ("T2", "offline"): 1, ("T2", "inactive"): 2, ("CAM-R", "online"): 1}
    )


def test_agrees_with_the_engines_channel_states() -> None:
    # The engine keeps each node's latest state; every channel's state after each instant is the rule's.
    inv = tree("T1/B1/CPE-1:cam*2", "T1/B1/CPE-2:nvr8")
    steps = [
        down("CPE-1.1", t(9)),
        down("CPE-1", t(10)),
        unknown("B1", t(10, 5)),
        up("CPE-1", t(10, 10)),
        down("T1", t(10, 20)),
        up("B1", t(10, 30)),
        up("T1", t(10, 40)),
        up("CPE-1.1", t(11)),
    ]
    eng = engine(inv)
    seen: set[ChannelState] = set()
    for event in steps:
        eng.apply_instant(event.known, [event])
        for ch in inv.channels:
            want, _ = channel_state(inv, ch.node, eng.node_state, event.known)
            assert eng.state[ch.position].value == want.value, (event, ch.label)
            seen.add(want)
    assert seen == {OFF, BLIND, ON}  # every state the path can give an active channel was exercised


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from([DOWN, UNK, UP])), max_size=40),
    hour=st.sampled_from([8, 10, 13]),
)
def test_the_metrics_baseline_counts_what_every_channel_counted_one_by_one(
    picks: list[tuple[int, NodeState]], hour: int
) -> None:
    """``/metrics`` starts from a baseline (every node up) and decides again only what is under a node that is
    not up; over the sample network with any nodes down or unknown, at times around commissioning dates, that
    is each channel's own state by the rule, counted by area."""
    ids = list(SAMPLE)
    states = {ids[i % len(ids)]: state for i, state in picks}
    now = t(hour)
    want: Counter[tuple[str, str]] = Counter()
    for channel in SAMPLE.channels:
        want[(SAMPLE.area_of(channel.node), channel_state(SAMPLE, channel.node, states, now)[0].value)] += 1
    baseline = area_baseline(SAMPLE, now)
    assert channel_states_by_area(SAMPLE, states, now, baseline) == want
    assert channel_states_by_area(SAMPLE, states, now) == want
