"""SPEC §4 and ruling R4: maintenance covers, planned incidents, and what an incident excluded by maintenance
takes off (its offline time from both sides of the online rate; its channels' 11:00 breaches).

Times below are contract time (Asia/Shanghai, UTC+8) on 2026-10-03 unless said otherwise: ``cst(11)`` is the
claim instant of the day. October 2026 is 31 days: OCT_S = 2,678,400 s per channel. Default policy: window
300 s, claim grace 1 h, 2 points per breach; fewer than 6 channels offline at once is a fault (level 0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from monitor.assessment import (
    US,
    Assessment,
    IncidentScore,
    MaintenanceIndex,
    Seconds,
    planned_until,
    verdict,
    verdicts,
)
from monitor.events import MaintenanceEvent, parse_event
from tests.monitor.builders import (
    MIN,
    H,
    ack,
    assess_month,
    down,
    exclude,
    lost,
    maint,
    only,
    run,
    score_of,
    tree,
    up,
)

OCT_S = 31 * 86_400
CST = ZoneInfo("Asia/Shanghai")


def cst(hh: int, mm: int = 0, ss: int = 0, *, day: int = 3) -> datetime:
    """2026-10-``day`` ``hh:mm:ss`` in contract time, as a UTC instant."""
    return datetime(2026, 10, day, hh, mm, ss, tzinfo=CST).astimezone(UTC)


def s(seconds: float) -> int:
    """Seconds to the assessment's microseconds."""
    return int(seconds * US)


def iid(scope: str, start: datetime) -> str:
    return f"{scope}@{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def only_score(a: Assessment) -> IncidentScore:
    assert len(a.incidents) == 1, [x.incident.id for x in a.incidents]
    return a.incidents[0]


CPE2 = tree("T1/CPE-1:cam*2")  # CPE-1 with cameras CPE-1.1, CPE-1.2
I_1030 = iid("CPE-1", cst(10, 30))


# ---------------------------------------------------------------------------------------- (1), (2)
def test_planned_incident_that_outlasts_its_cover_is_scored_from_the_covers_end() -> None:
    # maintenance 10:00-12:00 over CPE-1; CPE-1 down 10:30-12:30: planned (both channels covered at 10:30),
    # it ends at 12:30 > 12:00, so it is scored with clock_start 12:00: recovery 12:30 - 12:00 = 30 min
    ev = [maint("CPE-1", cst(10), cst(12)), down("CPE-1", cst(10, 30)), up("CPE-1", cst(12, 30))]
    a = assess_month(CPE2, ev)
    x = score_of(a, I_1030)
    assert not x.excluded and x.excluded_by is None
    assert x.clock_start == cst(12)
    assert (x.response_s, x.recovery_s) == (Fraction(30 * MIN), Fraction(30 * MIN))
    # per channel: the window 10:00-12:00 is excluded (2 h, whatever the state); 12:00-12:30 offline (30 min)
    assert a.seconds == Seconds(
        online=s(2 * (OCT_S - 2 * H - 30 * MIN)),
        offline=s(2 * 30 * MIN),
        excluded=s(2 * 2 * H),
    )
    assert a.claim_breaches == ()  # at 11:00 both channels are inside the window


def test_planned_incident_over_by_its_covers_end_is_excluded() -> None:
    # same window, CPE-1 down 10:30-11:30: ends by 12:00: not scored, excluded by maintenance
    ev = [maint("CPE-1", cst(10), cst(12)), down("CPE-1", cst(10, 30)), up("CPE-1", cst(11, 30))]
    a = assess_month(CPE2, ev)
    x = score_of(a, I_1030)
    assert x.excluded and x.excluded_by == "maintenance" and x.clock_start == cst(10, 30)
    assert (x.response_lost, x.recovery_lost, x.unexplained_lost) == (0, 0, 0)
    # offline 0; excluded 2 x 2 h: the offline 10:30-11:30 lies inside the window and is not counted twice
    assert a.seconds == Seconds(online=s(2 * (OCT_S - 2 * H)), excluded=s(2 * 2 * H))
    assert a.claim_breaches == ()


def test_an_incident_ending_exactly_at_the_covers_end_is_excluded() -> None:
    # "ends by the latest end": an end at 12:00 sharp is by 12:00
    ev = [maint("CPE-1", cst(10), cst(12)), down("CPE-1", cst(10, 30)), up("CPE-1", cst(12))]
    assert score_of(assess_month(CPE2, ev), I_1030).excluded_by == "maintenance"


# ---------------------------------------------------------------------------------------- (3) merged covers
@pytest.mark.parametrize(
    ("name", "windows", "excluded_by", "clock_start"),
    [
        # 08:00-10:00 and 10:00-11:30 touch: one cover 08:00-11:30; the incident 09:30-11:15 ends by 11:30
        ("touching", [("CPE-1", cst(8), cst(10)), ("CPE-1", cst(10), cst(11, 30))], "maintenance", cst(9, 30)),
        ("overlapping", [("CPE-1", cst(8), cst(10, 30)), ("CPE-1", cst(10), cst(11, 30))], "maintenance", cst(9, 30)),
        # windows over different scopes merge too: T1's covers everything under it
        (
            "touching, other scope",
            [("T1", cst(8), cst(10)), ("CPE-1", cst(10), cst(11, 30))],
            "maintenance",
            cst(9, 30),
        ),
        # one second apart they do not merge: the cover at 09:30 ends at 10:00, the incident outlasts it
        ("a 1 s gap", [("CPE-1", cst(8), cst(10)), ("CPE-1", cst(10, 0, 1), cst(11, 30))], None, cst(10)),
        # a window that begins after the incident's start does not make it planned
        ("starts after", [("CPE-1", cst(9, 31), cst(11, 30))], None, cst(9, 30)),
    ],
)
def test_covers_are_windows_merged_where_they_overlap_or_touch(
    name: str, windows: list[tuple[str, datetime, datetime]], excluded_by: str | None, clock_start: datetime
) -> None:
    ev = [*(maint(scope, a, b) for scope, a, b in windows), down("CPE-1", cst(9, 30)), up("CPE-1", cst(11, 15))]
    x = score_of(assess_month(CPE2, ev), iid("CPE-1", cst(9, 30)))
    assert (x.excluded_by, x.clock_start) == (excluded_by, clock_start), name


def test_planned_until_is_the_latest_end_of_the_covers_holding_the_start() -> None:
    # CPE-1.1 and CPE-1.2 share a node's cover; the merged cover 08:00-11:30 holds 09:30; a later window
    # 13:00-14:00 is another cover and plays no part
    ev = [
        maint("CPE-1", cst(8), cst(10)),
        maint("T1", cst(10), cst(11, 30)),
        maint("CPE-1", cst(13), cst(14)),
        down("CPE-1", cst(9, 30)),
        up("CPE-1", cst(15)),
    ]
    h = run(CPE2, ev)
    index = MaintenanceIndex(CPE2, h.maintenance)
    assert index.spans("CPE-1.1") == [(cst(8), cst(11, 30)), (cst(13), cst(14))]
    assert planned_until(CPE2, only(h), index) == cst(11, 30)
    v = verdict(CPE2, only(h), index, h.as_of)
    assert (v.clock_start, v.excluded_by) == (cst(11, 30), None)


# ---------------------------------------------------------------------------------------- (4) scored from 11:00
def test_cover_ending_at_the_claim_hour_scores_from_then_and_the_claim_rule_applies() -> None:
    inv = tree("T1/CPE-1:cam*6")  # 6 channels: level 3 (limits: response 8 h step 4 h, recovery 8 h step 6 h)
    # maintenance 08:00-11:00 over CPE-1; CPE-1 down 09:30 until 20:00, no ack: planned, outlasts the cover:
    # scored, clock_start 11:00; response = recovery = 20:00 - 11:00 = 9 h
    ev = [maint("CPE-1", cst(8), cst(11)), down("CPE-1", cst(9, 30)), up("CPE-1", cst(20))]
    a = assess_month(inv, ev)
    i = iid("CPE-1", cst(9, 30))
    x = score_of(a, i)
    assert x.incident.level == 3 and not x.excluded and x.clock_start == cst(11)
    assert (x.response_s, x.recovery_s) == (Fraction(9 * H), Fraction(9 * H))
    # response: 9 h - 8 h = 1 h over: 1 + floor(1 h / 4 h) = 1; recovery: 1 + floor(1 h / 6 h) = 1
    assert (x.response_lost, x.recovery_lost, x.unexplained_lost) == (1, 1, 0)
    # restore (2 h from the start, in county): 09:30-20:00 is 10.5 h: not met
    assert not x.restore_met
    # 11:00 is not inside [08:00, 11:00); each channel has been offline since 09:30 (1.5 h >= 1 h), the
    # incident is scored and unacknowledged: 6 breaches x 2 points
    assert len(a.claim_breaches) == 6 and {b.incident for b in a.claim_breaches} == {i}
    assert all(b.at == cst(11) for b in a.claim_breaches)
    assert lost(a, "4e") == 12
    # channel-seconds: 6 x 3 h of window excluded; 6 x 9 h (11:00-20:00) offline
    assert a.seconds == Seconds(online=s(6 * (OCT_S - 12 * H)), offline=s(6 * 9 * H), excluded=s(6 * 3 * H))

    # acknowledged at 10:59 (during the work): no breach; response = max(0, 10:59 - 11:00) = 0
    a = assess_month(inv, [*ev, ack("CPE-1", cst(10, 59))])
    x = score_of(a, i)
    assert a.claim_breaches == () and x.response_s == 0 and x.response_lost == 0 and x.recovery_lost == 1

    # the same work booked until 11:00:01: 11:00 is inside the window, no breach; the clock starts 11:00:01
    a = assess_month(inv, [maint("CPE-1", cst(8), cst(11, 0, 1)), *ev[1:]])
    assert a.claim_breaches == () and score_of(a, i).clock_start == cst(11, 0, 1)


# ---------------------------------------------------------------------------------------- (5) outside the windows
TWO_CPES = tree("T1/B1/CPE-1:cam", "T1/B1/CPE-2:cam")  # CPE-1.1 and CPE-2.1, both under branch B1
I_B1 = iid("B1", cst(9))


def test_offline_time_outside_a_channels_windows_inside_an_excluded_incident_is_excluded() -> None:
    # The only way an excluded-by-maintenance incident holds a channel offline outside that channel's windows:
    # its channels' covers end at different times, and the incident ends by the LATEST of them.
    # CPE-1 maintenance 08:00-12:00, CPE-2 maintenance 08:00-09:30; B1 down 09:00-11:30 (one incident, scope B1).
    # At 09:00 both channels are inside their covers: planned; the latest cover end is 12:00 and the incident
    # ends 11:30: excluded by maintenance.
    ev = [
        maint("CPE-1", cst(8), cst(12)),
        maint("CPE-2", cst(8), cst(9, 30)),
        down("B1", cst(9)),
        up("B1", cst(11, 30)),
    ]
    a = assess_month(TWO_CPES, ev)
    x = score_of(a, I_B1)
    assert x.excluded_by == "maintenance"
    # CPE-1.1: excluded 08:00-12:00 = 4 h (its window).
    # CPE-2.1: excluded 08:00-09:30 = 1.5 h (its window) + 09:30-11:30 = 2 h (offline in the excluded incident,
    #          outside its window) = 3.5 h. Nothing is offline.
    per = dict(a.circuits)
    assert per["CPE-1"] == Seconds(online=s(OCT_S - 4 * H), excluded=s(4 * H))
    assert per["CPE-2"] == Seconds(online=s(OCT_S - 3.5 * H), excluded=s(3.5 * H))
    assert a.seconds.offline == 0 and a.seconds.rate == 1
    # At 11:00 CPE-2.1 is offline since 09:00 (2 h), outside its window, unacknowledged; its incident is
    # excluded: no breach (CPE-1.1 is inside its window anyway).
    assert a.claim_breaches == () and lost(a, "4e") == 0


def test_the_same_incident_outlasting_the_latest_cover_counts_in_full() -> None:
    # As above but B1 up at 12:30: scored from 12:00.
    ev = [
        maint("CPE-1", cst(8), cst(12)),
        maint("CPE-2", cst(8), cst(9, 30)),
        down("B1", cst(9)),
        up("B1", cst(12, 30)),
    ]
    a = assess_month(TWO_CPES, ev)
    x = score_of(a, I_B1)
    assert not x.excluded and x.clock_start == cst(12) and x.recovery_s == 30 * MIN
    # CPE-1.1: excluded 4 h, offline 12:00-12:30 = 0.5 h; CPE-2.1: excluded 1.5 h, offline 09:30-12:30 = 3 h
    per = dict(a.circuits)
    assert per["CPE-1"] == Seconds(online=s(OCT_S - 4.5 * H), offline=s(0.5 * H), excluded=s(4 * H))
    assert per["CPE-2"] == Seconds(online=s(OCT_S - 4.5 * H), offline=s(3 * H), excluded=s(1.5 * H))
    # at 11:00 CPE-2.1 (offline since 09:00, outside its window) is one breach; CPE-1.1 is inside its window
    assert [(b.at, b.channel, b.incident) for b in a.claim_breaches] == [(cst(11), "CPE-2.1", I_B1)]


def test_a_channel_joining_after_its_own_cover_ended_is_excluded_with_its_incident() -> None:
    # CPE-1 maintenance 08:00-12:00; CPE-2 maintenance 08:00-09:02. CPE-1 down 09:00 opens the incident;
    # CPE-2 down 09:04 joins it (4 min <= 300 s window; common ancestor B1). At the start (09:00) CPE-2.1 was
    # inside its cover 08:00-09:02: planned, latest cover end 12:00; both up 11:30: excluded.
    ev = [
        maint("CPE-1", cst(8), cst(12)),
        maint("CPE-2", cst(8), cst(9, 2)),
        down("CPE-1", cst(9)),
        down("CPE-2", cst(9, 4)),
        up("CPE-1", cst(11, 30)),
        up("CPE-2", cst(11, 30)),
    ]
    a = assess_month(TWO_CPES, ev)
    x = only_score(a)
    assert x.incident.scope == "B1" and x.excluded_by == "maintenance"
    # CPE-2.1's whole offline stretch 09:04-11:30 (2 h 26 min) lies outside its window: excluded;
    # its window 08:00-09:02 (62 min) too: 3 h 28 min excluded in all
    per = dict(a.circuits)
    assert per["CPE-2"] == Seconds(online=s(OCT_S - 208 * MIN), excluded=s(208 * MIN))
    assert a.seconds.offline == 0 and a.claim_breaches == ()  # 11:00: offline since 09:04, but excluded

    # had CPE-2's window begun at 09:01 (after the start), CPE-2.1 was not covered at 09:00: not planned,
    # scored from 09:00; CPE-2.1 offline 09:04-11:30 (2 h 26 min = 146 min) counts offline
    ev[1] = maint("CPE-2", cst(9, 1), cst(9, 2))
    a = assess_month(TWO_CPES, ev)
    x = only_score(a)
    assert not x.excluded and x.clock_start == cst(9)
    assert dict(a.circuits)["CPE-2"].offline == s(146 * MIN)
    assert [b.channel for b in a.claim_breaches] == ["CPE-2.1"]


# ---------------------------------------------------------------------------------------- open, as_of, both kinds
def test_an_open_planned_incident_is_excluded_while_inside_its_cover() -> None:
    ev = [maint("CPE-1", cst(8), cst(12)), maint("CPE-2", cst(8), cst(9, 30)), down("B1", cst(9))]
    # as of 11:15 the incident is open, measured to 11:15 <= 12:00: excluded so far; CPE-2.1's 09:30-11:15
    # offline (1 h 45 min) is excluded and its 11:00 stretch makes no breach
    a = assess_month(TWO_CPES, ev, as_of=cst(11, 15))
    x = score_of(a, I_B1)
    assert x.incident.end is None and x.excluded_by == "maintenance"
    assert a.seconds.offline == 0 and a.claim_breaches == ()
    assert dict(a.circuits)["CPE-2"].excluded == s(1.5 * H + 1.75 * H)
    # as of 13:00 still open: it has outlasted 12:00: scored from 12:00, the 11:00 breach counts
    a = assess_month(TWO_CPES, ev, as_of=cst(13))
    x = score_of(a, I_B1)
    assert not x.excluded and x.clock_start == cst(12) and x.recovery_s == H
    assert [b.channel for b in a.claim_breaches] == ["CPE-2.1"]
    # CPE-1.1 offline 12:00-13:00, CPE-2.1 offline 09:30-13:00
    assert a.seconds.offline == s(H + 3.5 * H)


def test_an_approved_exclusion_is_the_reason_given_when_both_apply() -> None:
    ev = [maint("CPE-1", cst(10), cst(12)), down("CPE-1", cst(10, 30)), up("CPE-1", cst(11, 30))]
    a = assess_month(CPE2, [*ev, exclude(I_1030, cst(13))])
    assert score_of(a, I_1030).excluded_by == "exclusion"
    # outlasting its cover but approved: excluded all the same; the clock still starts at the cover's end
    ev[-1] = up("CPE-1", cst(12, 30))
    a = assess_month(CPE2, [*ev, exclude(I_1030, cst(13))])
    x = score_of(a, I_1030)
    assert x.excluded_by == "exclusion" and x.clock_start == cst(12)
    assert a.seconds == Seconds(online=s(2 * (OCT_S - 2.5 * H)), excluded=s(2 * 2.5 * H))


def test_both_kinds_give_one_set_of_excluded_incidents() -> None:
    # incident A (09:00 CPE-1, planned, ends by its cover) and B (15:00 CPE-1, approved exclusion) and C
    # (18:00 CPE-1, neither): the verdicts exclude A and B, for one reason each
    ev = [
        maint("CPE-1", cst(8), cst(10)),
        down("CPE-1", cst(9)),
        up("CPE-1", cst(9, 30)),
        down("CPE-1", cst(15)),
        up("CPE-1", cst(16)),
        exclude(iid("CPE-1", cst(15)), cst(17)),
        down("CPE-1", cst(18)),
        up("CPE-1", cst(19)),
    ]
    h = run(CPE2, ev)
    judged = verdicts(CPE2, h, MaintenanceIndex(CPE2, h.maintenance))
    assert {k: v.excluded_by for k, v in judged.items()} == {
        iid("CPE-1", cst(9)): "maintenance",
        iid("CPE-1", cst(15)): "exclusion",
        iid("CPE-1", cst(18)): None,
    }
    a = assess_month(CPE2, ev)
    # offline only C's 1 h per channel; excluded the window (2 h) and B's 1 h per channel
    assert a.seconds == Seconds(online=s(2 * (OCT_S - 4 * H)), offline=s(2 * H), excluded=s(2 * 3 * H))


# ---------------------------------------------------------------------------------------- declared at
def test_a_maintenance_event_without_at_is_declared_at_its_from() -> None:
    event = parse_event(
        {"type": "maintenance", "from": "2026-10-03T10:00:00+08:00", "to": "2026-10-03T12:00:00+08:00", "scope": "T1"}
    )
    assert isinstance(event, MaintenanceEvent)
    assert event.at == event.start == cst(10) and event.known == cst(10) and event.end == cst(12)
    declared = parse_event(
        {
            "type": "maintenance",
            "at": "2026-10-02T09:00:00+08:00",
            "from": "2026-10-03T10:00:00+08:00",
            "to": "2026-10-03T12:00:00+08:00",
            "scope": "T1",
        }
    )
    assert isinstance(declared, MaintenanceEvent)
    assert declared.at == cst(9, day=2) and declared.start == cst(10)
    # the two are the same window declared at different times: different events
    assert declared.id != event.id
