"""SPEC §3: grouping, ids, ends, levels, acknowledgements, arrivals, explanations and exclusion targeting."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from monitor.engine import History
from monitor.events import ExclusionStatus
from monitor.incidents import incident_id
from tests.monitor.builders import (
    MIN,
    H,
    ack,
    assess_month,
    by_id,
    down,
    engine,
    exclude,
    explain,
    maint,
    only,
    onsite,
    ordered,
    pos,
    run,
    score_of,
    secs,
    t,
    tree,
    unknown,
    up,
)

# Two areas; T1 has branches B1 (CPE-1, CPE-2) and B2 (CPE-3), and B3 (CPE-5).
NET = tree(
    "T1/B1/CPE-1:cam*2",
    "T1/B1/CPE-2:cam*2",
    "T1/B2/CPE-3:cam*2",
    "T1/B3/CPE-5:cam",
    "T2/B9/CPE-9:cam*2",
)


def ids(h: History) -> list[str]:
    return [i.id for i in h.incidents]


# ---------------------------------------------------------------------------------------- ids
def test_incident_id_format() -> None:
    assert incident_id("CPE-0042", datetime(2026, 10, 3, tzinfo=UTC)) == "CPE-0042@2026-10-03T00:00:00Z"
    assert incident_id("B1", t(8, 0, 0) + secs(0.75)) == "B1@2026-10-03T08:00:00Z"  # to the second


# ---------------------------------------------------------------------------------------- grouping
def test_rejoin_an_open_incident() -> None:
    # CPE-1.1 down 10:00, up 10:10, down again 11:00 while CPE-1.2 (down since 10:01) keeps the incident open
    ev = [down("CPE-1.1", t(10)), down("CPE-1.2", t(10, 1)), up("CPE-1.1", t(10, 10)), down("CPE-1.1", t(11))]
    h = run(NET, ev, as_of=t(12))
    inc = only(h)
    assert inc.intervals[0] == ((t(10), t(10, 10)), (t(11), None))


def test_window_is_300_seconds_inclusive() -> None:
    # 10:05:00 - 10:00:00 = 300 s <= 300: joins; 10:05:01 is 301 s: a new incident
    h = run(NET, [down("CPE-1", t(10)), down("CPE-2", t(10, 5, 0))], as_of=t(11))
    assert ids(h) == ["CPE-1@2026-10-03T10:00:00Z"] and only(h).scope == "B1"
    h = run(NET, [down("CPE-1", t(10)), down("CPE-2", t(10, 5, 1))], as_of=t(11))
    assert ids(h) == ["CPE-1@2026-10-03T10:00:00Z", "CPE-2@2026-10-03T10:05:01Z"]


def test_the_window_is_measured_from_the_start_not_the_latest_channel() -> None:
    # 10:00, 10:04 (joins), 10:08: 480 s after the start -> new, although only 240 s after the last join
    h = run(NET, [down("CPE-1.1", t(10)), down("CPE-1.2", t(10, 4)), down("CPE-2", t(10, 8))], as_of=t(11))
    assert len(h.incidents) == 2


def test_lowest_common_ancestor_must_not_be_the_root() -> None:
    h = run(NET, [down("CPE-1", t(10)), down("CPE-9", t(10))], as_of=t(11))
    assert ids(h) == ["CPE-1@2026-10-03T10:00:00Z", "CPE-9@2026-10-03T10:00:00Z"]


def test_scope_widens_to_the_lowest_common_ancestor() -> None:
    eng = engine(NET)
    eng.replay([down("CPE-1", t(10))])
    assert eng.incidents[0].scope == "CPE-1"
    eng.replay([down("CPE-2.1", t(10, 1))])
    assert eng.incidents[0].scope == "B1"  # lca(CPE-1, CPE-2.1)
    eng.replay([down("CPE-3", t(10, 2))])
    assert eng.incidents[0].scope == "T1"  # lca(B1, CPE-3)
    assert eng.incidents[0].id == "CPE-1@2026-10-03T10:00:00Z"  # the id never changes


def test_several_candidates_deepest_new_scope_first() -> None:
    """I1 opens at 10:10 (CPE-1, under B1); I2 at known 10:20 dated 10:04 (CPE-3, under B2: 360 s before I1's
    start, so a separate incident). A channel of CPE-2 (B1) dated 10:07 is within 300 s of both; its lca with I1
    is B1 (depth 2), with I2 it is T1 (depth 1): it joins I1 although I2 is earlier."""
    ev = [
        down("CPE-1", t(10, 10)),
        down("CPE-3", t(10, 4), known=t(10, 20)),
        down("CPE-2.1", t(10, 7), known=t(10, 25)),
    ]
    h = run(NET, ev, as_of=t(11))
    i1, i2 = "CPE-1@2026-10-03T10:10:00Z", "CPE-3@2026-10-03T10:04:00Z"
    assert ids(h) == [i1, i2]
    assert pos(NET, "CPE-2.1") in by_id(h, i1).members
    assert by_id(h, i1).scope == "B1"
    assert by_id(h, i1).start == t(10, 7)  # moved back by the backdated channel; the id stays


def test_several_candidates_same_depth_the_earliest() -> None:
    """Same two incidents; a channel of CPE-5 (B3) dated 10:07: lca is T1 with both, so the earliest start
    wins: I2 (10:04), although I1 was opened first."""
    ev = [
        down("CPE-1", t(10, 10)),
        down("CPE-3", t(10, 4), known=t(10, 20)),
        down("CPE-5", t(10, 7), known=t(10, 25)),
    ]
    h = run(NET, ev, as_of=t(11))
    i2 = by_id(h, "CPE-3@2026-10-03T10:04:00Z")
    assert pos(NET, "CPE-5.1") in i2.members and i2.scope == "T1"


def test_new_incident_scope_is_the_topmost_down_node() -> None:
    h = run(NET, [down("CPE-1.1", t(10)), down("B1", t(10))], as_of=t(11))
    inc = only(h)
    assert inc.id == "B1@2026-10-03T10:00:00Z" and inc.scope == "B1"
    assert inc.members == tuple(pos(NET, c) for c in ("CPE-1.1", "CPE-1.2", "CPE-2.1", "CPE-2.2"))


def test_channels_of_one_instant_are_taken_in_inventory_order() -> None:
    # listed CPE-3 first, but CPE-1 comes first in the inventory: it opens (and names) the incident
    eng = engine(NET)
    eng.apply_instant(t(10), [down("CPE-3", t(10)), down("CPE-1", t(10))])
    (inc,) = eng.incidents
    assert inc.id == "CPE-1@2026-10-03T10:00:00Z" and inc.scope == "T1"
    assert list(inc.members) == [pos(NET, c) for c in ("CPE-1.1", "CPE-1.2", "CPE-3.1", "CPE-3.2")]


def test_backdated_channel_moves_the_start_back_and_the_id_stays() -> None:
    # opens 10:10; CPE-2 dated 10:06 (240 s earlier, within the window) known 10:12: start 10:06
    h = run(NET, [down("CPE-1", t(10, 10)), down("CPE-2", t(10, 6), known=t(10, 12))], as_of=t(11))
    inc = only(h)
    assert inc.id == "CPE-1@2026-10-03T10:10:00Z" and inc.start == t(10, 6)


# ---------------------------------------------------------------------------------------- end and level
def test_ends_when_every_channel_is_online_again() -> None:
    ev = [down("CPE-1.1", t(10)), down("CPE-1.2", t(10, 1)), up("CPE-1.1", t(10, 30)), up("CPE-1.2", t(10, 45))]
    assert only(run(NET, ev, as_of=t(11))).end == t(10, 45)


def test_unknown_channel_keeps_the_incident_open() -> None:
    ev = [down("CPE-1", t(10)), unknown("CPE-1", t(10, 30))]
    inc = only(run(NET, ev, as_of=t(11)))
    assert inc.open
    inc = only(run(NET, [*ev, up("CPE-1", t(12))], as_of=t(13)))
    assert inc.end == t(12)


def test_level_is_the_peak_offline_at_one_instant_can_rise_never_falls() -> None:
    inv = tree("T1/CPE-1:cam*12")
    cams = [f"CPE-1.{i}" for i in range(1, 13)]
    eng = engine(inv)
    eng.replay([down(c, t(10)) for c in cams[:5]])  # 5 offline: a fault
    assert eng.incidents[0].peak == 5
    eng.replay([up(c, t(10, 1)) for c in cams[:4]])  # 1 offline
    eng.replay([down(c, t(10, 2)) for c in cams[5:11]])  # 1 + 6 = 7 offline: level 3 (>= 6)
    h = eng.snapshot(t(10, 3))
    assert only(h).peak == 7 and only(h).level == 3
    eng.replay([up(c, t(10, 4)) for c in cams[4:11]])  # all back: the level stays 3
    h = eng.snapshot(t(11))
    assert only(h).level == 3 and only(h).end == t(10, 4)
    # 5 + 6 = 11 channels were held, but never more than 7 at once: not level 2
    assert len(only(h).members) == 11


def test_level_thresholds() -> None:
    inv = tree("T1/CPE-1:cam*20")
    for n, level in ((5, 0), (6, 3), (9, 3), (10, 2), (19, 2), (20, 1)):
        h = run(inv, [down(f"CPE-1.{i}", t(10)) for i in range(1, n + 1)], as_of=t(11))
        assert only(h).level == level, n


# ---------------------------------------------------------------------------------------- acknowledgement
def test_ack_by_node_acks_every_open_unacked_incident_that_held_a_channel_under_it() -> None:
    # I1 (CPE-1, 10:00) and I2 (CPE-3, 11:00) both in T1; I3 in T2. CPE-1.1 went back online but I1 is
    # still open (CPE-1.2): it "has held" a channel under T1. An ack naming T1 at 11:30 acks I1 and I2.
    ev = [
        down("CPE-1.1", t(10)),
        down("CPE-1.2", t(10)),
        up("CPE-1.1", t(10, 30)),
        down("CPE-3", t(11)),
        down("CPE-9", t(11)),
        ack("T1", t(11, 30)),
        ack("T1", t(11, 40), by="late"),  # only the first counts
    ]
    h = run(NET, ev, as_of=t(12))
    assert by_id(h, "CPE-1.1@2026-10-03T10:00:00Z").ack == t(11, 30)
    assert by_id(h, "CPE-3@2026-10-03T11:00:00Z").ack == t(11, 30)
    assert by_id(h, "CPE-9@2026-10-03T11:00:00Z").ack is None
    assert [u.event.at for u in h.unmatched] == [t(11, 40)]


def test_ack_by_node_names_a_channel_it_held() -> None:
    ev = [down("CPE-1.1", t(10)), down("CPE-1.2", t(10)), up("CPE-1.1", t(10, 5)), ack("CPE-1.1", t(10, 6))]
    assert only(run(NET, ev, as_of=t(11))).ack == t(10, 6)


def test_ack_by_node_skips_ended_incidents() -> None:
    ev = [down("CPE-1", t(10)), up("CPE-1", t(10, 5)), ack("CPE-1", t(10, 6))]
    h = run(NET, ev, as_of=t(11))
    assert only(h).ack is None and len(h.unmatched) == 1


def test_ack_by_id_only_the_first_counts() -> None:
    i = "CPE-1@2026-10-03T10:00:00Z"
    ev = [down("CPE-1", t(10)), ack(i, t(10, 20), by="a"), ack(i, t(10, 10), by="b")]
    # (the second is dated earlier but known later: the first processed counts)
    eng = engine(NET)
    eng.replay(ordered(ev[:2]))
    eng.apply_instant(t(10, 30), ordered(ev[2:]))
    inc = eng.incidents[0]
    assert (inc.ack, inc.ack_by) == (t(10, 20), "a")


def test_ack_by_unknown_id_is_unmatched() -> None:
    h = run(NET, [ack("CPE-1@2026-10-03T10:00:00Z", t(10))], as_of=t(11))
    assert h.incidents == () and len(h.unmatched) == 1


def test_response_recovery_and_onsite() -> None:
    # start 10:00, ack 10:40, on site 11:15, end 12:30
    ev = [down("CPE-1", t(10)), ack("CPE-1", t(10, 40)), onsite("CPE-1", t(11, 15)), up("CPE-1", t(12, 30))]
    a = assess_month(NET, ev)
    s = score_of(a, "CPE-1@2026-10-03T10:00:00Z")
    assert s.response_s == 40 * MIN
    assert s.onsite_s == 75 * MIN
    assert s.recovery_s == 2 * H + 30 * MIN
    assert s.clock_start == t(10)


def test_response_is_capped_by_the_end_and_never_negative() -> None:
    # ack (by id) after the end: response = min(ack, end) - start = end - start = 30 min
    i = "CPE-1@2026-10-03T10:00:00Z"
    a = assess_month(NET, [down("CPE-1", t(10)), up("CPE-1", t(10, 30)), ack(i, t(11))])
    assert score_of(a, i).response_s == 30 * MIN
    # no ack at all: response runs to the end
    a = assess_month(NET, [down("CPE-1", t(10)), up("CPE-1", t(10, 30))])
    assert score_of(a, i).response_s == 30 * MIN
    # a backdated channel moves the start back: response 10:01 - 09:58 = 3 min
    ev = [down("CPE-1", t(10)), ack(i, t(10, 1)), down("CPE-2", t(9, 58), known=t(10, 2))]
    a = assess_month(NET, [*ev, up("CPE-1", t(11)), up("CPE-2", t(11))])
    s = score_of(a, i)
    assert s.incident.start == t(9, 58) and s.response_s == 3 * MIN
    # ack before the clock starts (maintenance 10:00-11:00 overrun to 12:00, ack 10:30): max(0, -30 min) = 0
    ev = [maint("CPE-1", t(10), t(11)), down("CPE-1", t(10)), ack("CPE-1", t(10, 30)), up("CPE-1", t(12))]
    s = score_of(assess_month(NET, ev), i)
    assert s.clock_start == t(11) and s.response_s == 0 and s.recovery_s == H
    # open at as_of: measured to it, reported open
    a = assess_month(NET, [down("CPE-1", t(10))], as_of=t(13))
    s = score_of(a, i)
    assert s.incident.open and s.recovery_s == 3 * H and s.response_s == 3 * H


def test_onsite_only_the_first() -> None:
    ev = [down("CPE-1", t(10)), onsite("CPE-1", t(10, 30)), onsite("CPE-1", t(10, 50)), up("CPE-1", t(11))]
    assert only(run(NET, ev, as_of=t(12))).onsite == t(10, 30)


def test_restore_limit_by_in_county() -> None:
    inv = tree(
        "T1/CPE-1:cam",
        "T1/CPE-2:cam",
        "T2/CPE-3:cam",
        attrs={"CPE-1": {"in_county": False}, "CPE-2": {"in_county": True}, "CPE-3": {"in_county": False}},
    )
    # CPE-3 alone, outside the county: 8 h; restored after exactly 8 h: met (within the limit)
    a = assess_month(inv, [down("CPE-3", t(10)), up("CPE-3", t(18))])
    s = score_of(a, "CPE-3@2026-10-03T10:00:00Z")
    assert (s.restore_limit_s, s.restore_met) == (8 * H, True)
    a = assess_month(inv, [down("CPE-3", t(10)), up("CPE-3", t(18, 0, 1))])
    assert not score_of(a, "CPE-3@2026-10-03T10:00:00Z").restore_met
    # CPE-1 (outside) and CPE-2 (inside) in one incident: any inside -> 2 h; 2 h 1 s: not met
    a = assess_month(inv, [down("CPE-1", t(10)), down("CPE-2", t(10)), up("T1", t(12, 0, 1))])
    s = score_of(a, "CPE-1@2026-10-03T10:00:00Z")
    assert (s.restore_limit_s, s.restore_met) == (2 * H, False)
    # not stated (None) counts as inside
    inv2 = tree("T1/CPE-1:cam")
    s = assess_month(inv2, [down("CPE-1", t(10)), up("CPE-1", t(11))]).incidents[0]
    assert (s.restore_limit_s, s.restore_met) == (2 * H, True)


def test_restore_is_measured_from_the_start_not_the_clock_start() -> None:
    inv = tree("T1/CPE-1:cam", attrs={"CPE-1": {"in_county": False}})
    # maintenance 10:00-11:00, outage 10:00-18:30: clock_start 11:00 (scored), restore 8.5 h from 10:00: not met
    a = assess_month(inv, [maint("CPE-1", t(10), t(11)), down("CPE-1", t(10)), up("CPE-1", t(18, 30))])
    s = a.incidents[0]
    assert s.clock_start == t(11) and s.recovery_s == Fraction(7 * H + 30 * MIN)
    assert not s.restore_met


# ---------------------------------------------------------------------------------------- explanation, exclusion
def test_explanation_by_node_goes_to_the_latest_incident_started_at_or_before_it() -> None:
    # I1 CPE-1 10:00-10:30, I2 CPE-1 12:00-12:30, I3 CPE-9 13:00; explanation naming CPE-1.1 at 12:00
    # (I2 started at 12:00: "at or before") -> I2; one at 11:00 -> I1; one naming T1 at 13:30 -> I2 (I3 is T2)
    ev = [
        down("CPE-1", t(10)),
        up("CPE-1", t(10, 30)),
        explain("CPE-1.1", t(11), "one"),
        down("CPE-1", t(12)),
        explain("CPE-1.1", t(12), "two"),
        up("CPE-1", t(12, 30)),
        down("CPE-9", t(13)),
        explain("T1", t(13, 30), "three"),
        explain("CPE-1", t(9), "before anything"),
    ]
    eng = engine(NET)
    eng.replay(ordered(ev[:-1]))
    eng.apply_instant(t(14), ordered(ev[-1:]))  # dated 09:00, known later: no incident had started by 09:00
    h = eng.snapshot(t(15))
    i1, i2 = by_id(h, "CPE-1@2026-10-03T10:00:00Z"), by_id(h, "CPE-1@2026-10-03T12:00:00Z")
    assert [x for _, x in i1.explanations] == ["one"]
    assert [x for _, x in i2.explanations] == ["two", "three"]
    assert by_id(h, "CPE-9@2026-10-03T13:00:00Z").explanations == ()
    assert [u.event.at for u in h.unmatched] == [t(9)]


def test_exclusion_decisions_the_latest_stands_a_request_is_no_decision() -> None:
    i = "CPE-1@2026-10-03T10:00:00Z"
    base = [down("CPE-1", t(10)), up("CPE-1", t(11))]

    def status(*steps: tuple[str, int]) -> ExclusionStatus | None:
        h = run(NET, [*base, *(exclude(i, t(12, m), s) for s, m in steps)], as_of=t(13))
        return only(h).exclusion_status()

    assert status() is None
    assert status(("requested", 0)) is ExclusionStatus.REQUESTED
    assert status(("requested", 0), ("approved", 1)) is ExclusionStatus.APPROVED
    assert status(("approved", 1), ("requested", 2)) is ExclusionStatus.APPROVED
    assert status(("approved", 1), ("rejected", 2)) is ExclusionStatus.REJECTED
    assert status(("rejected", 1), ("approved", 2)) is ExclusionStatus.APPROVED
    # both decisions in one instant: the later in the stream stands
    eng = engine(NET)
    eng.replay(base)
    eng.apply_instant(t(12), [exclude(i, t(12), "rejected"), exclude(i, t(12), "approved")])
    assert eng.snapshot(t(13)).incidents[0].exclusion_status() is ExclusionStatus.APPROVED


def test_exclusion_by_node() -> None:
    ev = [down("CPE-1", t(10)), up("CPE-1", t(11)), down("CPE-2", t(12)), exclude("CPE-2", t(12, 30))]
    h = run(NET, ev, as_of=t(13))
    assert by_id(h, "CPE-2@2026-10-03T12:00:00Z").exclusion_status() is ExclusionStatus.APPROVED
    assert by_id(h, "CPE-1@2026-10-03T10:00:00Z").exclusion == ()


def test_end_is_the_latest_return_even_when_an_earlier_dated_return_is_known_last() -> None:
    """CPE-1.1 returns at 10:30 (known then); CPE-1.2's return is dated 10:20 but confirmed only at 10:35.
    The incident ends when the last channel is back: 10:30, not 10:20 (every channel held is online then)."""
    ev = [
        down("CPE-1.1", t(10)),
        down("CPE-1.2", t(10)),
        up("CPE-1.1", t(10, 30)),
        up("CPE-1.2", t(10, 20), known=t(10, 35)),
    ]
    h = run(NET, ev, as_of=t(11))
    inc = only(h)
    assert inc.intervals == {0: ((t(10), t(10, 30)),), 1: ((t(10), t(10, 20)),)}
    assert inc.end == t(10, 30)
