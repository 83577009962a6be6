"""SPEC §7 rulings R1, R3, R5, R6 in the pure engine, each with its arithmetic written out.

Times in the comments are the contract's zone (+08:00); ``t(hh)`` is UTC, so 10:00+08:00 is ``t(2)``.
"""

from __future__ import annotations

from monitor.engine import ChannelState
from monitor.events import NodeState
from tests.monitor.builders import (
    assess_month,
    by_id,
    down,
    engine,
    only,
    pos,
    run,
    secs,
    t,
    tree,
    unknown,
    up,
)

OFF, ON, UNK = ChannelState.OFFLINE, ChannelState.ONLINE, ChannelState.UNKNOWN
US = 1_000_000  # microseconds per second


# ---------------------------------------------------------------------------------------- R1
def test_r1_changes_known_together_apply_in_dated_order() -> None:
    """The four lines of the issue. CPE1 down 10:00:00 (known then); CAM1 unknown dated 10:00:10 and CPE1 up
    dated 10:02:58, both known 10:03:00; CAM1 up 10:05:00.

    CAM1: offline [10:00:00, 10:02:58) = 178 s (CPE1 is the topmost node not up), unknown [10:02:58, 10:05:00)
    = 122 s. CAM2: offline [10:00:00, 10:02:58) = 178 s. Offline 178 + 178 = 356, blind 122.
    """
    inv = tree("T1/CPE1/CAM1", "T1/CPE1/CAM2")
    known = t(2, 3, 0)
    events = [
        down("CPE1", t(2, 0, 0)),
        unknown("CAM1", t(2, 0, 10), known),
        up("CPE1", t(2, 2, 58), known),
        up("CAM1", t(2, 5, 0)),
    ]
    h = run(inv, events, as_of=t(3))
    assert h.transitions[pos(inv, "CAM1")] == ((t(2), OFF), (t(2, 2, 58), UNK), (t(2, 5), ON))
    assert h.transitions[pos(inv, "CAM2")] == ((t(2), OFF), (t(2, 2, 58), ON))
    a = assess_month(inv, events)
    assert a.seconds.offline == 356 * US
    assert a.seconds.blind == 122 * US
    inc = only(h)
    assert inc.start == t(2) and inc.end == t(2, 5)  # CAM1 held it until it was seen online (R3)


def test_r1_a_backdated_return_uses_what_was_known_earlier_but_dated_later() -> None:
    """T1 down 10:00 (known 10:00); CPE1 down 10:05 (known 10:05); T1 up dated 10:01, known 10:10.

    By the nodes' dated histories CAM1's channel is offline [10:00, 10:01) (T1), online [10:01, 10:05) (nothing
    on its path is down), offline from 10:05 (CPE1): 60 s + ... and it rejoins its still-open incident.
    """
    inv = tree("T1/CPE1/CAM1")
    ch = pos(inv, "CAM1")
    events = [down("T1", t(10)), down("CPE1", t(10, 5)), up("T1", t(10, 1), t(10, 10))]
    h = run(inv, events, as_of=t(11))
    assert h.transitions[ch] == ((t(10), OFF), (t(10, 1), ON), (t(10, 5), OFF))
    inc = only(h)
    assert inc.id == "T1@2026-10-03T10:00:00Z" and inc.open
    assert inc.intervals[ch] == ((t(10), t(10, 1)), (t(10, 5), None))


# ---------------------------------------------------------------------------------------- R3
def test_r3_a_recovered_member_that_goes_blind_holds_its_incident_open() -> None:
    """Branch B1 (over C1 with camera K1, and C2 with an 8-channel NVR) down 10:00; the NVR down 10:01; B1 up
    10:02 (K1 online, the NVR's 8 channels still offline); C1 unknown 11:00 (K1 unseen: it holds the incident
    again); the NVR up 15:30; C1 up 17:00: the incident ends at 17:00, not 15:30.

    K1: offline [10:00, 10:02) = 120 s, online [10:02, 11:00), unknown [11:00, 17:00) = 6 h.
    NVR channels: offline [10:00, 15:30) = 5.5 h each.
    """
    inv = tree("T1/B1/CPE-C1/CAM-K1", "T1/B1/CPE-C2:nvr8")
    k1 = pos(inv, "CAM-K1")
    events = [
        down("B1", t(10)),
        down("CPE-C2.nvr", t(10, 1)),
        up("B1", t(10, 2)),
        unknown("CPE-C1", t(11)),
        up("CPE-C2.nvr", t(15, 30)),
        up("CPE-C1", t(17)),
    ]
    h = run(inv, events, as_of=t(18))
    inc = only(h)
    assert inc.end == t(17)
    assert inc.peak == 9
    assert h.transitions[k1] == ((t(10), OFF), (t(10, 2), ON), (t(11), UNK), (t(17), ON))
    a = assess_month(inv, events)
    assert a.seconds.offline == (120 + 8 * 5 * 3600 + 8 * 1800) * US
    assert a.seconds.blind == 6 * 3600 * US
    # still open at 16:00: K1 is unseen, so the incident is not over
    assert only(run(inv, events[:5], as_of=t(16))).open


def test_r3_a_member_that_went_unknown_and_returns_online_ends_the_incident_then() -> None:
    """K1 (the only member) offline 10:00–10:02 via C1, online, unknown at 10:30 while C2's camera is still
    down; C2's camera up 11:00; K1 seen online 12:00: the end is 12:00."""
    inv = tree("T1/B1/CPE-C1/CAM-K1", "T1/B1/CPE-C2/CAM-K2")
    events = [
        down("B1", t(10)),
        down("CAM-K2", t(10, 1)),
        up("B1", t(10, 2)),
        unknown("CAM-K1", t(10, 30)),
        up("CAM-K2", t(11)),
        up("CAM-K1", t(12)),
    ]
    assert only(run(inv, events, as_of=t(13))).end == t(12)


# ---------------------------------------------------------------------------------------- R5
def test_r5_a_backdated_change_on_a_channel_already_offline_changes_nothing_but_its_node() -> None:
    """CPE-1 down 10:00: its camera's channel is offline in CPE-1@10:00. The camera's own down, dated 09:50
    but known at 10:05, changes neither the incident (id, start, scope) nor the channel's history: it only
    enters the camera's own history."""
    inv = tree("T1/CPE-1:cam*2")
    ch = pos(inv, "CPE-1.1")
    eng = engine(inv)
    eng.replay([down("CPE-1", t(10)), down("CPE-1.1", t(9, 50), t(10, 5))])
    h = eng.snapshot(t(11))
    inc = only(h)
    assert (inc.id, inc.start, inc.scope) == ("CPE-1@2026-10-03T10:00:00Z", t(10), "CPE-1")
    assert h.transitions[ch] == ((t(10), OFF),)
    assert eng.node_history["CPE-1.1"] == [(t(9, 50), NodeState.DOWN)]
    # the camera stays offline when its CPE returns (its own node is down), in the same incident
    eng.replay([up("CPE-1", t(11))])
    h = eng.snapshot(t(12))
    assert h.transitions[ch] == ((t(10), OFF),)
    assert h.transitions[pos(inv, "CPE-1.2")] == ((t(10), OFF), (t(11), ON))
    assert only(h).open


# ---------------------------------------------------------------------------------------- R6
def test_r6_a_second_incident_with_the_same_id_gets_a_suffix() -> None:
    """A camera down 10:00:00.2, up 10:00:00.5, down 10:00:00.8: two incidents that both name
    CPE-1.1@2026-10-03T10:00:00Z; the second is ``~2``, in the order they open."""
    inv = tree("T1/CPE-1:cam")
    base = t(10)
    events = [
        down("CPE-1.1", base + secs(0.2)),
        up("CPE-1.1", base + secs(0.5)),
        down("CPE-1.1", base + secs(0.8)),
        up("CPE-1.1", base + secs(1.5)),
        down("CPE-1.1", base + secs(1.9)),
    ]
    h = run(inv, events, as_of=t(11))
    assert [i.id for i in h.incidents] == [
        "CPE-1.1@2026-10-03T10:00:00Z",
        "CPE-1.1@2026-10-03T10:00:00Z~2",
        "CPE-1.1@2026-10-03T10:00:01Z",
    ]
    assert by_id(h, "CPE-1.1@2026-10-03T10:00:00Z~2").end == base + secs(1.5)
