"""Blind verdicts, pure and hand-computed; and what the engine makes of them (unknown, never offline).

Times: ``t(hh, mm, ss)`` on 2026-10-03 UTC (tests/monitor/builders.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from collectors.blind import BlindClock, BlindClocks, lag_events, restart_events, sentinels_blind, unknown_events
from monitor.confirmation import ConfirmationSettings
from monitor.engine import ChannelState
from monitor.events import Event, NodeState, StateEvent
from tests.monitor.builders import poll, polls, pos, run, t, tree

U = NodeState.UNKNOWN


def unknown(node: str, at: datetime, known: datetime) -> StateEvent:
    return StateEvent(at=at, node=node, state=U, known_at=known)


# ---------------------------------------------------------------------- sentinels


def test_sentinels_blind_only_when_every_sentinel_failed() -> None:
    assert sentinels_blind({"127.0.0.1": False})
    assert sentinels_blind({"127.0.0.1": False, "127.0.0.2": False})
    assert not sentinels_blind({"127.0.0.1": False, "127.0.0.2": True})
    assert not sentinels_blind({"127.0.0.1": True})
    assert not sentinels_blind({})  # no sentinel probed: no verdict


def test_unknown_events_skip_nodes_already_unknown_and_keep_order() -> None:
    states = {"A": NodeState.DOWN, "B": U}
    events = unknown_events(["C", "A", "B", "A"], states, at=t(8), known_at=t(8, 0, 2))
    assert events == [unknown("C", t(8), t(8, 0, 2)), unknown("A", t(8), t(8, 0, 2))]  # C: up by default
    assert events[0].known == t(8, 0, 2)


# ---------------------------------------------------------------------- restart gap


def test_restart_is_blind_from_the_last_heartbeat() -> None:
    states = {"CPE-1": NodeState.UP, "CPE-2": U}
    events = restart_events(["CPE-1", "CPE-2", "CPE-3"], states, heartbeat=t(8, 0, 30), now=t(9))
    assert events == [unknown("CPE-1", t(8, 0, 30), t(9)), unknown("CPE-3", t(8, 0, 30), t(9))]


def test_first_start_is_unknown_from_now() -> None:
    assert restart_events(["CPE-1"], {}, heartbeat=None, now=t(9)) == [unknown("CPE-1", t(9), t(9))]


def test_a_heartbeat_from_the_future_is_clamped_to_now() -> None:
    assert restart_events(["CPE-1"], {}, heartbeat=t(10), now=t(9)) == [unknown("CPE-1", t(9), t(9))]


# ---------------------------------------------------------------------- lag (SPEC R2)


def test_lag_needs_blind_after_probes_sent_without_a_verdict() -> None:
    clocks = BlindClocks()
    clocks.due("A", t(8))
    states: dict[str, NodeState] = {}
    intervals = {"A": 60.0}
    # probes at 08:01, 08:02 sent, no verdict: two misses of three
    clocks.missed("A", t(8, 1))
    clocks.missed("A", t(8, 2))
    assert clocks.lag(t(8, 3, 30), intervals, 3, states=states) == []
    # the third miss at 08:03: the clock started 08:00, + 3 x 60 s = 08:03:00 < 08:03:30 -> unknown from 08:03
    clocks.missed("A", t(8, 3))
    assert clocks.lag(t(8, 3, 30), intervals, 3, states=states) == [unknown("A", t(8, 3), t(8, 3, 30))]
    # already unknown: no second event
    assert clocks.lag(t(8, 4), intervals, 3, states={"A": U}) == []


def test_a_late_cycle_alone_never_makes_a_node_unknown() -> None:
    # A down CPE polled at the suspect interval (2 s): cycles ran late, its last verdict is 11 s old, i.e.
    # 5.5 suspect intervals, but no probe of it went without a verdict: it stays down, not unknown.
    clocks = BlindClocks()
    clocks.verdict("CPE-1", t(8, 0, 0))
    assert clocks.lag(t(8, 0, 11), {"CPE-1": 2.0}, 3, states={"CPE-1": NodeState.DOWN}) == []
    # an hour later, still nothing sent (the loop stalled): still no verdict of blindness from time alone
    assert clocks.lag(t(9), {"CPE-1": 2.0}, 3, states={"CPE-1": NodeState.DOWN}) == []


def test_a_verdict_restarts_the_count() -> None:
    clocks = BlindClocks()
    clocks.due("A", t(8))
    clocks.missed("A", t(8, 1))
    clocks.missed("A", t(8, 2))
    clocks.verdict("A", t(8, 3))  # a timeout is a verdict too (the node failed: down, not unknown)
    clocks.missed("A", t(8, 4))
    clocks.missed("A", t(8, 5))
    assert clocks.lag(t(8, 5, 30), {"A": 60.0}, 3, states={}) == []
    clocks.missed("A", t(8, 6))
    # 3 misses since 08:03: unknown from 08:03 + 180 s = 08:06:00, known 08:06:30
    assert clocks.lag(t(8, 6, 30), {"A": 60.0}, 3, states={}) == [unknown("A", t(8, 6), t(8, 6, 30))]


def test_a_held_node_is_not_due_and_its_clock_starts_again_when_released() -> None:
    # CAM-1 answered at 10:00:00 (60 s interval); its CPE fails at 10:00:30 and holds it back until the CPE
    # answers at 10:03:00 (the last plan that held it: 10:02:59). Nothing was sent to CAM-1 meanwhile.
    clocks = BlindClocks()
    clocks.verdict("CAM-1", t(10))
    for second in range(30, 180):  # a plan every second holds it
        clocks.hold("CAM-1", t(10) + timedelta(seconds=second))
        # held nodes are left out of the lag check, and would not qualify anyway: nothing was missed
        assert clocks.lag(t(10) + timedelta(seconds=second), {"CAM-1": 60.0}, 3, states={}) == []
    assert clocks.clocks["CAM-1"] == BlindClock(t(10, 2, 59), 0)
    # released at 10:03:00 (the plan resets its clock once more) and probed at once: the probe is lost
    clocks.hold("CAM-1", t(10, 3))
    clocks.missed("CAM-1", t(10, 3))
    clocks.missed("CAM-1", t(10, 4))
    assert clocks.lag(t(10, 5, 30), {"CAM-1": 60.0}, 3, states={}) == []
    clocks.missed("CAM-1", t(10, 5))
    # three misses since it was due again: unknown from 10:03:00 + 180 s = 10:06:00, never inside the outage
    assert clocks.lag(t(10, 6, 1), {"CAM-1": 60.0}, 3, states={}) == [unknown("CAM-1", t(10, 6), t(10, 6, 1))]


def test_lag_is_only_asked_for_nodes_with_an_interval() -> None:
    clocks = BlindClocks()
    for at in (t(8, 1), t(8, 2), t(8, 3)):
        clocks.missed("A", at)
    assert clocks.clocks["A"] == BlindClock(t(8, 1), 3)  # never due before: the clock starts at the first miss
    assert lag_events(t(9), clocks.clocks, {}, 3, states={}) == []  # not a target (or held) now
    clocks.forget("A")
    assert clocks.clocks == {}


def test_blind_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="blind_after"):
        lag_events(t(8), {}, {"A": 60.0}, 0, states={})


# ---------------------------------------------------------------------- through the engine


def channel_history(events: list[Event], down_after: int = 2, up_after: int = 2) -> list[tuple[datetime, str]]:
    inv = tree("T1/CPE-1:cam")
    history = run(inv, events, as_of=t(12), confirmation=ConfirmationSettings(down_after, up_after))
    return [(at, str(state)) for at, state in history.transitions[pos(inv, "CPE-1.1")]]


def test_restart_gap_is_unknown_then_up_after_fresh_good_polls() -> None:
    # up by polls until 08:02 (heartbeat), service down until 09:00, then good polls every minute
    before = polls("CPE-1", t(8), 3, ok=True)
    gap = restart_events(["CPE-1"], {}, heartbeat=t(8, 2), now=t(9))
    after = polls("CPE-1", t(9, 0, 10), 3, ok=True)
    history = channel_history([*before, *gap, *after], up_after=2)
    # unknown from the heartbeat; up again dated at the first poll of the FRESH run (not 08:00)
    assert history == [(t(8, 2), ChannelState.UNKNOWN), (t(9, 0, 10), ChannelState.ONLINE)]


def test_a_node_down_before_a_restart_is_unknown_then_down_from_its_first_failed_poll() -> None:
    before = polls("CPE-1", t(8), 2, ok=False)  # down dated 08:00
    gap = restart_events(["CPE-1"], {"CPE-1": NodeState.DOWN}, heartbeat=t(8, 1), now=t(9))
    after = polls("CPE-1", t(9, 0, 10), 2, ok=False)
    history = channel_history([*before, *gap, *after])
    assert history == [
        (t(8), ChannelState.OFFLINE),
        (t(8, 1), ChannelState.UNKNOWN),  # the gap is blind, not offline
        (t(9, 0, 10), ChannelState.OFFLINE),  # a fresh run of 2 failures, dated at its first
    ]


def test_sentinel_blind_cycle_interrupts_a_failure_run() -> None:
    # one failed poll, then a blind cycle (its polls thrown away), then one more failure: not down
    events: list[Event] = [
        poll("CPE-1", t(8), ok=False),
        *unknown_events(["CPE-1"], {}, at=t(8, 1), known_at=t(8, 1, 1)),
        poll("CPE-1", t(8, 2), ok=False),
    ]
    assert channel_history(events) == [(t(8, 1), ChannelState.UNKNOWN)]
