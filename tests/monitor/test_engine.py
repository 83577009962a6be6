"""SPEC §1–§2 in the engine: channel state by the topmost not-up node, active intervals, instants."""

from __future__ import annotations

import pytest

from monitor.engine import ChannelState, Engine, state_at
from monitor.policy import DEFAULT_POLICY
from tests.monitor.builders import (
    ack,
    by_id,
    down,
    engine,
    only,
    pos,
    run,
    t,
    tree,
    unknown,
    up,
)

OFF, ON, UNK, INACT = ChannelState.OFFLINE, ChannelState.ONLINE, ChannelState.UNKNOWN, ChannelState.INACTIVE


# ---------------------------------------------------------------------------------------- topmost not-up node
def test_paused_camera_behind_a_down_cpe_is_offline_attributed_to_the_cpe() -> None:
    inv = tree("T1/CPE-1:cam*2")
    h = run(inv, [down("CPE-1", t(10)), down("CPE-1.1", t(10))], as_of=t(12))
    inc = only(h)
    # both channels offline, one incident scoped (and named) by the topmost down node, the CPE
    assert inc.id == "CPE-1@2026-10-03T10:00:00Z" and inc.scope == "CPE-1"
    assert h.transitions[pos(inv, "CPE-1.1")] == ((t(10), OFF),)
    assert inc.peak == 2


def test_camera_down_behind_a_cpe_that_comes_back_stays_offline_in_its_incident() -> None:
    inv = tree("T1/CPE-1:cam*2")
    ev = [down("CPE-1", t(10)), down("CPE-1.1", t(10, 30)), up("CPE-1", t(11)), up("CPE-1.1", t(11, 30))]
    h = run(inv, ev, as_of=t(12))
    inc = only(h)
    c1, c2 = pos(inv, "CPE-1.1"), pos(inv, "CPE-1.2")
    assert h.transitions[c1] == ((t(10), OFF), (t(11, 30), ON))  # camera still down after the CPE came back
    assert h.transitions[c2] == ((t(10), OFF), (t(11), ON))
    assert inc.end == t(11, 30)


def test_stale_down_behind_an_unknown_node_is_unknown() -> None:
    inv = tree("T1/CPE-1:cam")
    ev = [down("CPE-1.1", t(10)), unknown("CPE-1", t(10, 30)), up("CPE-1", t(11))]
    eng = engine(inv)
    eng.replay(ev[:2])
    c = pos(inv, "CPE-1.1")
    assert eng.state[c] is UNK  # the camera's "down" is stale: the CPE in front of it is not seen
    (inc,) = eng.open_incidents()
    assert inc.offline == set() and inc.pending == {c}  # unknown keeps the incident open
    eng.replay(ev[2:])
    h = eng.snapshot(t(12))
    assert h.transitions[c] == ((t(10), OFF), (t(10, 30), UNK), (t(11), OFF))
    inc_v = only(h)  # offline again: rejoins the same incident
    assert inc_v.intervals[c] == ((t(10), t(10, 30)), (t(11), None))
    assert inc_v.open


def test_unknown_is_never_offline() -> None:
    inv = tree("T1/CPE-1:cam*3")
    h = run(inv, [unknown("CPE-1", t(10)), up("CPE-1", t(11))], as_of=t(12))
    assert h.incidents == ()
    assert h.transitions[0] == ((t(10), UNK), (t(11), ON))


def test_an_incident_with_an_unknown_channel_ends_only_when_it_is_seen_online() -> None:
    inv = tree("T1/CPE-1:cam*2")
    ev = [
        down("CPE-1", t(10)),
        unknown("CPE-1.2", t(10, 10)),  # behind the down CPE: still offline (the CPE is topmost)
        up("CPE-1", t(11)),  # CPE-1.1 online; CPE-1.2 now unknown (its own node is unknown)
        up("CPE-1.2", t(12)),
    ]
    eng = engine(inv)
    eng.replay(ev[:3])
    assert eng.state[pos(inv, "CPE-1.2")] is UNK
    assert len(eng.open_incidents()) == 1  # unknown keeps it open
    eng.replay(ev[3:])
    assert only(eng.snapshot(t(13))).end == t(12)


# ---------------------------------------------------------------------------------------- active intervals
def test_channel_commissioned_while_its_path_is_down_goes_offline_then() -> None:
    """Read literally (SPEC §3), the new channel is grouped like any other at 10:30: the CPE's incident started
    10:00, outside the 300 s window, so it opens its own incident, scoped by the down CPE."""
    inv = tree("T1/CPE-1:cam*2", attrs={"CPE-1.2": {"commissioned": t(10, 30)}})
    h = run(inv, [down("CPE-1", t(10)), up("CPE-1", t(11))], as_of=t(12))
    c2 = pos(inv, "CPE-1.2")
    assert h.initial[c2] is INACT
    assert h.transitions[c2] == ((t(10, 30), OFF), (t(11), ON))
    assert [i.id for i in h.incidents] == ["CPE-1@2026-10-03T10:00:00Z", "CPE-1@2026-10-03T10:30:00Z"]


def test_channel_commissioned_within_the_window_joins_the_incident() -> None:
    inv = tree("T1/CPE-1:cam*2", attrs={"CPE-1.2": {"commissioned": t(10, 5)}})  # 300 s after: inclusive
    h = run(inv, [down("CPE-1", t(10)), up("CPE-1", t(11))], as_of=t(12))
    assert only(h).members == (0, 1) and only(h).peak == 2


def test_decommissioned_while_offline_leaves_the_incident() -> None:
    inv = tree("T1/CPE-1:cam*2", attrs={"CPE-1.2": {"decommissioned": t(11)}})
    h = run(inv, [down("CPE-1.1", t(10)), down("CPE-1.2", t(10)), up("CPE-1.1", t(10, 30))], as_of=t(12))
    inc = only(h)
    c2 = pos(inv, "CPE-1.2")
    # CPE-1.1 back at 10:30; CPE-1.2 leaves at 11:00 when decommissioned: the incident ends then
    assert h.transitions[c2] == ((t(10), OFF), (t(11), INACT))
    assert inc.end == t(11) and inc.intervals[c2] == ((t(10), t(11)),)


def test_outside_its_interval_a_channel_takes_no_state_and_joins_nothing() -> None:
    inv = tree("T1/CPE-1:cam*2", attrs={"CPE-1.2": {"commissioned": t(12)}})
    h = run(inv, [down("CPE-1", t(10)), up("CPE-1", t(11))], as_of=t(13))
    c2 = pos(inv, "CPE-1.2")
    assert h.transitions[c2] == ((t(12), ON),)
    assert only(h).members == (pos(inv, "CPE-1.1"),)


def test_a_parents_interval_does_not_switch_off_its_children() -> None:
    inv = tree("T1/CPE-1:cam", attrs={"CPE-1": {"decommissioned": t(10)}})
    h = run(inv, [], as_of=t(12))
    assert h.initial[0] is ON and h.transitions[0] == ()


# ---------------------------------------------------------------------------------------- instants
def test_state_changes_of_an_instant_apply_together_peak_measured_after() -> None:
    """At 10:10 CPE-1.1 returns and CPE-1.2's failure (dated 10:03) becomes known, in one instant: the peak is
    measured after both apply, so it stays 1 (SPEC §2 says so, although the dated spans overlap 10:03-10:10),
    and the incident does not end (it is not over after the instant: CPE-1.2 joined it)."""
    inv = tree("T1/CPE-1:cam*2")
    ev = [down("CPE-1.1", t(10)), up("CPE-1.1", t(10, 10)), down("CPE-1.2", t(10, 3), known=t(10, 10))]
    h = run(inv, ev, as_of=t(12))
    inc = only(h)
    assert inc.peak == 1 and inc.open and inc.start == t(10)
    assert inc.intervals == {0: ((t(10), t(10, 10)),), 1: ((t(10, 3), None),)}


def test_return_and_failure_in_the_same_instant_keep_the_incident() -> None:
    inv = tree("T1/CPE-1:cam*2")
    eng = engine(inv)
    eng.replay([down("CPE-1.1", t(10))])
    eng.apply_instant(t(10, 4), [up("CPE-1.1", t(10, 4)), down("CPE-1.2", t(10, 4))])
    h = eng.snapshot(t(11))
    inc = only(h)
    assert inc.open and inc.peak == 1 and set(inc.members) == {0, 1}


def test_conflicting_events_of_an_instant_the_later_stands() -> None:
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    eng.apply_instant(t(10), [down("CPE-1", t(10)), up("CPE-1", t(10))])
    assert eng.state[0] is ON and eng.incidents == []
    eng.apply_instant(t(11), [up("CPE-1", t(11)), down("CPE-1", t(11))])
    assert eng.state[0] is OFF and len(eng.incidents) == 1


def test_an_identical_repeat_is_the_same_event_at_its_first_position() -> None:
    """down, up, down in one instant: the second "down" is the first event again (storage keeps one copy, in
    the order it first arrived), so the stream is down, up and the later, up, stands. Reading chosen so that a
    replayed file and its stored copy give the same history."""
    eng = engine(tree("T1/CPE-1:cam"))
    eng.apply_instant(t(10), [down("CPE-1", t(10)), up("CPE-1", t(10)), down("CPE-1", t(10))])
    assert eng.state[0] is ON and eng.incidents == []


def test_identical_events_are_one_event() -> None:
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    eng.replay([down("CPE-1", t(10)), down("CPE-1", t(10)), ack("CPE-1", t(10, 5)), ack("CPE-1", t(10, 5))])
    assert eng.unmatched == []  # the second ack is not even seen (else it would be "no incident to apply")
    assert len(eng.incidents) == 1 and eng.incidents[0].ack == t(10, 5)
    assert len([e for e in eng.incidents[0].timeline if e.kind == "ack"]) == 1


def test_acks_of_an_instant_come_after_its_state_changes() -> None:
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    eng.apply_instant(t(10), [ack("CPE-1", t(10)), down("CPE-1", t(10))])  # ack listed first
    assert eng.incidents[0].ack == t(10)


def test_an_ack_in_the_instant_an_incident_ends_finds_it_closed() -> None:
    inv = tree("T1/CPE-1:cam")
    eng = engine(inv)
    eng.replay([down("CPE-1", t(10))])
    eng.apply_instant(t(11), [up("CPE-1", t(11)), ack("CPE-1", t(11))])
    assert eng.incidents[0].ack is None and len(eng.unmatched) == 1


def test_instants_must_not_go_back_in_time() -> None:
    eng = engine(tree("T1/CPE-1:cam"))
    eng.replay([down("CPE-1", t(10))])
    with pytest.raises(ValueError, match="before the engine's time"):
        eng.replay([up("CPE-1", t(9))])


def test_backdated_state_change_is_dated_not_known() -> None:
    inv = tree("T1/CPE-1:cam")
    h = run(inv, [down("CPE-1", t(10), known=t(10, 2))], as_of=t(11))
    assert h.transitions[0] == ((t(10), OFF),) and only(h).start == t(10)


def test_state_at() -> None:
    tr = ((t(10), OFF), (t(11), ON))
    assert state_at(tr, ON, t(9)) == (ON, None)
    assert state_at(tr, ON, t(10)) == (OFF, t(10))  # half-open: the change applies at its instant
    assert state_at(tr, ON, t(10, 59)) == (OFF, t(10))
    assert state_at(tr, ON, t(11)) == (ON, t(11))


def test_engine_over_a_subset_of_channels() -> None:
    inv = tree("T1/CPE-1:cam", "T2/CPE-2:cam")
    eng = Engine(inv, DEFAULT_POLICY, channels=[pos(inv, "CPE-2.1")])
    eng.replay([down("CPE-1", t(10)), down("CPE-2", t(10))])
    h = eng.snapshot(t(11))
    assert h.channels == (1,) and [i.id for i in h.incidents] == ["CPE-2@2026-10-03T10:00:00Z"]
    assert by_id(h, "CPE-2@2026-10-03T10:00:00Z").members == (1,)
