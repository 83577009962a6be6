"""Blind verdicts, pure and hand-computed; and what the engine makes of them (unknown, never offline).

Times: ``t(hh, mm, ss)`` on 2026-10-03 UTC (tests/monitor/builders.py).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from collectors.blind import lag_events, restart_events, sentinels_blind, unknown_events
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


# ---------------------------------------------------------------------- lag


def test_lag_unknown_dated_when_blind_after_intervals_passed() -> None:
    last = {"A": t(8, 0, 0), "B": t(8, 0, 0), "C": t(8, 1, 0), "D": t(8, 0, 0)}
    intervals = {"A": 60.0, "B": 15.0, "C": 60.0, "D": 60.0}
    events = lag_events(t(8, 3, 30), ["A", "B", "C", "D", "E"], last, intervals, 3, states={"D": U})
    # A: 08:00 + 3 x 60 s = 08:03:00 < 08:03:30 -> unknown from 08:03:00
    # B: 08:00 + 3 x 15 s = 08:00:45 -> unknown from 08:00:45
    # C: 08:01 + 180 s = 08:04:00 > now -> nothing; D: already unknown; E: no interval (not a target)
    assert events == [unknown("A", t(8, 3, 0), t(8, 3, 30)), unknown("B", t(8, 0, 45), t(8, 3, 30))]


def test_lag_exactly_at_the_limit_is_not_blind_yet() -> None:
    assert lag_events(t(8, 3), ["A"], {"A": t(8)}, {"A": 60.0}, 3, states={}) == []


def test_nodes_held_behind_a_parent_are_exempt_from_lag() -> None:
    assert lag_events(t(9), ["A"], {"A": t(8)}, {"A": 60.0}, 3, states={}, exempt={"A"}) == []


def test_a_node_never_polled_counts_from_since() -> None:
    events = lag_events(t(8, 5), ["A"], {}, {"A": 60.0}, 3, states={}, since=t(8, 1))
    assert events == [unknown("A", t(8, 4), t(8, 5))]
    assert lag_events(t(8, 5), ["A"], {}, {"A": 60.0}, 3, states={}) == []  # no since: no verdict


def test_blind_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="blind_after"):
        lag_events(t(8), ["A"], {}, {"A": 60.0}, 0, states={})


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
