"""SPEC §4–§5: channel-seconds, exclusions, the items, the 11:00 claim rule, score, share and amount.

October 2026 in Asia/Shanghai is [2026-09-30T16:00Z, 2026-10-31T16:00Z): 31 days = 2,678,400 s.
11:00 Asia/Shanghai is 03:00 UTC, i.e. ``t(3)``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from monitor.assessment import US, Assessment, Month, Seconds, assess, monthly_base
from monitor.contracts import Contract, default_contract
from monitor.engine import Engine
from monitor.events import BaseEvent
from monitor.policy import DEFAULT_POLICY
from tests.monitor.builders import (
    NOV,
    OCT,
    H,
    ack,
    assess_month,
    down,
    exclude,
    explain,
    finding,
    lost,
    maint,
    run,
    score_of,
    secs,
    t,
    tree,
    unknown,
    up,
    with_policy,
)

OCT_S = 31 * 86_400  # 2,678,400
ONE = tree("T1/CPE-1:cam")
I1 = "CPE-1@2026-10-03T10:00:00Z"


def s(seconds: float) -> int:
    """Seconds to the assessment's microseconds."""
    return int(seconds * US)


# ---------------------------------------------------------------------------------------- months
def test_month_boundaries_are_in_the_contract_time_zone() -> None:
    assert OCT.start == t(16, day=30, month=9) and OCT.end == t(16, day=31)
    assert (OCT.end - OCT.start).total_seconds() == OCT_S
    assert Month.parse("2026-12", DEFAULT_POLICY).end == t(16, day=31, month=12)  # year rolls over
    utc = Month.parse("2026-10", with_policy(timezone="UTC"))
    assert utc.start == t(0, day=1)
    for bad in ("2026-13", "2026-1", "26-10", "2026/10", "x"):
        with pytest.raises(ValueError):
            Month.parse(bad, DEFAULT_POLICY)
    days = OCT.claim_instants(DEFAULT_POLICY)
    assert len(days) == 31 and days[0] == t(3, day=1) and days[-1] == t(3, day=31)


def test_an_incident_at_1630z_on_the_31st_belongs_to_november() -> None:
    # 2026-10-31T16:30Z is 2026-11-01 00:30 in Shanghai
    ev = [down("CPE-1", t(16, 30, day=31)), up("CPE-1", t(17, 30, day=31))]
    oct_, nov = assess_month(ONE, ev), assess_month(ONE, ev, key="2026-11")
    assert oct_.incidents == () and [x.incident.id for x in nov.incidents] == ["CPE-1@2026-10-31T16:30:00Z"]


def test_offline_time_is_split_at_the_month_boundary() -> None:
    # 15:00Z-17:00Z on the 31st: one hour in October, one in November; the incident is October's
    ev = [down("CPE-1", t(15, day=31)), up("CPE-1", t(17, day=31))]
    oct_, nov = assess_month(ONE, ev), assess_month(ONE, ev, key="2026-11")
    assert oct_.seconds.offline == s(H) == nov.seconds.offline
    assert len(oct_.incidents) == 1 and nov.incidents == ()
    assert nov.seconds.active == s(30 * 86_400)


# ---------------------------------------------------------------------------------------- channel-seconds
def test_online_and_offline_seconds() -> None:
    a = assess_month(ONE, [down("CPE-1", t(10)), up("CPE-1", t(11))])
    assert a.seconds == Seconds(online=s(OCT_S - H), offline=s(H))
    assert a.seconds.rate == Fraction(OCT_S - H, OCT_S)
    assert a.channels == 1


def test_as_of_cuts_the_month() -> None:
    # as_of 2026-10-03T12:00Z: 2 days 20 h since the month's start = 244,800 s; offline 10:00-now = 2 h
    a = assess_month(ONE, [down("CPE-1", t(10))], as_of=t(12))
    assert a.seconds == Seconds(online=s(244_800 - 2 * H), offline=s(2 * H))
    assert a.projection
    assert a.incidents[0].incident.open and a.incidents[0].recovery_s == 2 * H


def test_blind_time_counts_on_neither_side() -> None:
    a = assess_month(ONE, [unknown("CPE-1", t(10)), up("CPE-1", t(12))])
    assert a.seconds == Seconds(online=s(OCT_S - 2 * H), blind=s(2 * H))
    assert a.seconds.rate == 1


def test_maintenance_excludes_every_channel_second_under_it_whatever_the_state() -> None:
    inv = tree("T1/CPE-1:cam*2", "T1/CPE-2:cam")
    # maintenance over CPE-1 05:00-07:00; CPE-1.1 offline 06:00-08:00; CPE-2 is not under it
    ev = [maint("CPE-1", t(5), t(7)), down("CPE-1.1", t(6)), up("CPE-1.1", t(8))]
    a = assess_month(inv, ev)
    per = {c: x for c, x in a.circuits}
    assert per["CPE-1"] == Seconds(
        online=s(2 * OCT_S - 2 * H - 2 * H - H),  # two channels, less 2 x 2 h maintenance, less 1 h offline
        offline=s(H),  # 07:00-08:00
        excluded=s(2 * 2 * H),
    )
    assert per["CPE-2"] == Seconds(online=s(OCT_S))


def test_maintenance_beats_blind_and_inactive_beats_maintenance() -> None:
    inv = tree("T1/CPE-1:cam*2", attrs={"CPE-1.2": {"decommissioned": t(6)}})
    # CPE-1 unknown 04:00-08:00, maintenance 05:00-07:00; CPE-1.2 inactive from 06:00
    ev = [maint("CPE-1", t(5), t(7)), unknown("CPE-1", t(4)), up("CPE-1", t(8))]
    a = assess_month(inv, ev)
    start_to_6 = (t(6) - OCT.start).total_seconds()
    c1 = Seconds(online=s(OCT_S - 4 * H), excluded=s(2 * H), blind=s(2 * H))
    c2 = Seconds(online=s(start_to_6 - 2 * H), excluded=s(H), blind=s(H))  # 04-05 blind, 05-06 excluded
    assert a.seconds == c1 + c2


def test_approved_exclusion_takes_the_incidents_offline_time_off_both_sides() -> None:
    ev = [down("CPE-1", t(10)), up("CPE-1", t(15)), exclude("CPE-1", t(16))]
    a = assess_month(ONE, ev)
    assert a.seconds == Seconds(online=s(OCT_S - 5 * H), excluded=s(5 * H))
    assert a.seconds.rate == 1 and score_of(a, I1).excluded_by == "exclusion"
    rejected = assess_month(ONE, [*ev, exclude(I1, t(17), "rejected")])
    assert rejected.seconds.offline == s(5 * H) and not score_of(rejected, I1).excluded
    requested = assess_month(ONE, [*ev[:2], exclude(I1, t(17), "requested")])
    assert requested.seconds.offline == s(5 * H)


def test_channel_commissioned_mid_month_counts_from_then() -> None:
    inv = tree("T1/CPE-1:cam", attrs={"CPE-1.1": {"commissioned": t(0, day=16)}})
    a = assess_month(inv, [])
    assert a.seconds.active == s((OCT.end - t(0, day=16)).total_seconds())


# ---------------------------------------------------------------------------------------- online rate item
@pytest.mark.parametrize(
    ("offline_s", "rate", "points_lost"),
    [
        (2_000, Fraction(98, 100), 0),  # exactly the target
        (2_001, Fraction(97_999, 100_000), 1),  # ceil(0.001) = 1
        (3_000, Fraction(97, 100), 1),  # 97.00%: ceil(1) = 1
        (3_001, Fraction(96_999, 100_000), 2),
        (3_500, Fraction(965, 1000), 2),  # 96.50%: ceil(1.5) = 2
        (4_000, Fraction(96, 100), 2),  # exactly the floor: not below it, ceil(2) = 2
        (4_001, Fraction(95_999, 100_000), 10),  # below 96%: all 10
    ],
)
def test_online_rate_item(offline_s: int, rate: Fraction, points_lost: int) -> None:
    """One channel, as of 100,000 s into the month: the rate is (100,000 - offline) / 100,000."""
    as_of = OCT.start + secs(100_000)
    start = t(5, day=1)
    a = assess_month(ONE, [down("CPE-1", start), up("CPE-1", start + secs(offline_s))], as_of=as_of)
    assert a.seconds.rate == rate
    assert lost(a, "online") == points_lost


def test_online_rate_over_a_whole_month_exactly_97_percent() -> None:
    # 3% of 2,678,400 s = 80,352 s = 22 h 19 min 12 s
    ev = [down("CPE-1", t(5)), up("CPE-1", t(5) + secs(80_352))]
    a = assess_month(ONE, ev)
    assert a.seconds.rate == Fraction(97, 100) and lost(a, "online") == 1


def test_online_rate_by_area() -> None:
    inv = tree("T1/CPE-1:cam", "T2/CPE-2:cam")
    a = assess_month(inv, [down("CPE-2", t(10)), up("CPE-2", t(11))])
    areas = dict(a.areas)
    assert areas["T1"].rate == 1 and areas["T2"].rate == Fraction(OCT_S - H, OCT_S)
    assert a.seconds.rate == Fraction(2 * OCT_S - H, 2 * OCT_S)


# ---------------------------------------------------------------------------------------- response / recovery
LEVELS = tree("T1/CPE-1:cam*20", "T2/CPE-2:cam*10", "T3/CPE-3:cam*6", "T4/CPE-4:cam*5")
L1, L2, L3, F = (f"CPE-{i}@2026-10-03T05:00:00Z" for i in (1, 2, 3, 4))


def levels_month(*extra: BaseEvent, as_of_day: int | None = None) -> Assessment:
    ev = [
        # level 1 (20 channels): ack after 5.5 h, end after 9 h
        down("CPE-1", t(5)),
        ack("CPE-1", t(10, 30)),
        up("CPE-1", t(14)),
        # level 2 (10 channels): ack after 6 h + 1 s, end after 18 h
        down("CPE-2", t(5)),
        ack("CPE-2", t(11, 0, 1)),
        up("CPE-2", t(23)),
        # level 3 (6 channels): ack after 1 h, end after 29 h
        down("CPE-3", t(5)),
        ack("CPE-3", t(6)),
        up("CPE-3", t(10, day=4)),
        # a fault (5 channels): 40 h, never acknowledged -> tracked, not scored (and its 11:00 breaches)
        down("CPE-4", t(5)),
        up("CPE-4", t(21, day=4)),
        *extra,
    ]
    return assess_month(LEVELS, ev, as_of=None if as_of_day is None else t(0, day=as_of_day))


def test_response_and_recovery_deductions_per_level() -> None:
    a = levels_month()
    l1, l2, l3, f = (score_of(a, i) for i in (L1, L2, L3, F))
    assert [x.incident.level for x in (l1, l2, l3, f)] == [1, 2, 3, 0]
    # L1: response 5.5 h over 4 h, step 1 h: 1 + floor(1.5) = 2; recovery 9 h over 4 h, step 2 h: 1 + floor(2.5)
    # = 3; unexplained: 9 h over 8 h, step 4 h: 1 + floor(0.25) = 1
    assert (l1.response_lost, l1.recovery_lost, l1.unexplained_lost) == (2, 3, 1)
    # L2: response 6 h + 1 s over 6 h: 1 + 0 = 1; recovery 18 h over 6 h, step 6 h: 1 + 2 = 3;
    # unexplained 18 h over 12 h, step 4 h: 1 + floor(1.5) = 2
    assert (l2.response_lost, l2.recovery_lost, l2.unexplained_lost) == (1, 3, 2)
    # L3: response 1 h: 0; recovery 29 h over 8 h, step 6 h: 1 + floor(3.5) = 4; unexplained 29 h over 24 h,
    # step 4 h: 1 + floor(1.25) = 2
    assert (l3.response_lost, l3.recovery_lost, l3.unexplained_lost) == (0, 4, 2)
    assert (f.response_lost, f.recovery_lost, f.unexplained_lost) == (0, 0, 0)
    assert lost(a, "response") == 2 + 1 + 0
    assert lost(a, "recovery") == (3 + 1) + (3 + 2) + (4 + 2)
    # the fault was offline at 11:00 on the 4th (since 05:00Z on the 3rd), unacknowledged: 5 channels x 2
    assert lost(a, "4e") == 5 * 2


def test_exact_limit_is_no_overrun() -> None:
    inv = tree("T1/CPE-1:cam*20")
    # response exactly 4 h, recovery exactly 4 h: d = 0, no points
    a = assess_month(inv, [down("CPE-1", t(5)), ack("CPE-1", t(9)), up("CPE-1", t(9))])
    x = a.incidents[0]
    assert (x.response_lost, x.recovery_lost) == (0, 0)
    # overrun exactly one step: 1 + floor(1) = 2 (response step 1 h), recovery 6 h: 1 + floor(2/2) = 2
    a = assess_month(inv, [down("CPE-1", t(5)), ack("CPE-1", t(10)), up("CPE-1", t(11))])
    x = a.incidents[0]
    assert (x.response_lost, x.recovery_lost) == (2, 2)


def test_explanation_filed_by_as_of_prevents_the_unexplained_deduction() -> None:
    """Filed on the 5th at 01:00Z: an issue as of the 5th 00:00Z still deducts; one as of the 6th does not."""
    early = levels_month(explain(L3, t(1, day=5)), explain(L2, t(1, day=5)), as_of_day=5)
    assert score_of(early, L3).unexplained_lost == 2
    at_as_of = levels_month(explain(L3, t(0, day=5)), as_of_day=5)  # filed at the as-of time: counts
    assert score_of(at_as_of, L3).unexplained_lost == 0
    later = levels_month(explain(L3, t(1, day=5)), as_of_day=6)
    assert score_of(later, L3).unexplained_lost == 0
    assert score_of(later, L3).recovery_lost == 4  # the recovery item still counts
    assert score_of(later, L2).unexplained_lost == 2


def test_items_are_capped_per_incident_figures_are_not() -> None:
    inv = tree("T1/CPE-1:cam*20", "T2/CPE-2:cam*20")
    # L1, no ack, 54 h: response over 4 h by 50 h, step 1 h: 51; recovery by 50 h, step 2 h: 26;
    # unexplained over 8 h by 46 h, step 4 h: 1 + 11 = 12
    ev = [down("CPE-1", t(5)), up("CPE-1", t(11, day=5)), down("CPE-2", t(5)), up("CPE-2", t(6))]
    a = assess_month(inv, ev)
    x = score_of(a, L1)
    assert (x.response_lost, x.recovery_lost, x.unexplained_lost) == (51, 26, 12)
    assert lost(a, "response") == 10 and lost(a, "recovery") == 20
    item = next(i for i in a.items if i.key == "response")
    assert "51 points before cap" in item.details


def test_maintenance_incident_inside_is_not_scored_outlasting_is_scored_from_its_end() -> None:
    inv = tree("T1/CPE-1:cam*20")
    i = "CPE-1@2026-10-03T05:00:00Z"
    # inside: maintenance 05:00-15:00, outage 05:00-14:00 (9 h, would cost points): not scored
    a = assess_month(inv, [maint("CPE-1", t(5), t(15)), down("CPE-1", t(5)), up("CPE-1", t(14))])
    x = score_of(a, i)
    assert x.excluded and x.excluded_by == "maintenance"
    assert (x.response_lost, x.recovery_lost, x.unexplained_lost) == (0, 0, 0)
    assert a.seconds.offline == 0 and a.seconds.excluded == s(20 * 10 * H)
    # outlasting: maintenance 05:00-07:00, outage to 12:00, no ack: clock_start 07:00, 5 h;
    # response 5 h over 4 h: 1 + floor(1/1) = 2; recovery 5 h over 4 h, step 2 h: 1 + 0 = 1
    a = assess_month(inv, [maint("CPE-1", t(5), t(7)), down("CPE-1", t(5)), up("CPE-1", t(12))])
    x = score_of(a, i)
    assert not x.excluded and x.clock_start == t(7)
    assert (x.response_s, x.recovery_s) == (Fraction(5 * H), Fraction(5 * H))
    assert (x.response_lost, x.recovery_lost) == (2, 1)
    assert a.seconds.offline == s(20 * 5 * H) and a.seconds.excluded == s(20 * 2 * H)


def test_back_to_back_maintenance_windows_chain() -> None:
    inv = tree("T1/CPE-1:cam")
    ev = [maint("CPE-1", t(5), t(7)), maint("T1", t(7), t(9)), down("CPE-1", t(6)), up("CPE-1", t(10))]
    x = assess_month(inv, ev).incidents[0]
    assert x.clock_start == t(9) and x.recovery_s == H


def test_maintenance_not_covering_every_channel_does_not_move_the_clock() -> None:
    inv = tree("T1/CPE-1:cam", "T1/CPE-2:cam")
    ev = [maint("CPE-1", t(5), t(7)), down("CPE-1", t(6)), down("CPE-2", t(6)), up("CPE-1", t(8)), up("CPE-2", t(8))]
    x = assess_month(inv, ev).incidents[0]
    assert x.clock_start == t(6) and not x.excluded


def test_approved_exclusion_is_not_scored() -> None:
    a = levels_month(exclude(L1, t(0, day=4)))
    x = score_of(a, L1)
    assert x.excluded and x.excluded_by == "exclusion" and x.response_lost == x.recovery_lost == 0
    assert lost(a, "response") == 1  # only L2's


# ---------------------------------------------------------------------------------------- 11:00 claim rule
@pytest.mark.parametrize(
    ("name", "events", "breaches"),
    [
        ("offline since 09:30 local", [down("CPE-1", t(1, 30)), up("CPE-1", t(4))], 1),
        ("exactly 1 h before", [down("CPE-1", t(2)), up("CPE-1", t(4))], 1),
        ("1 h minus 1 s before", [down("CPE-1", t(2, 0, 1)), up("CPE-1", t(4))], 0),
        ("back before 11:00", [down("CPE-1", t(1)), up("CPE-1", t(3))], 0),
        (
            "a blind gap ends the stretch",
            [down("CPE-1", t(1)), unknown("CPE-1", t(2, 30)), down("CPE-1", t(2, 31)), up("CPE-1", t(4))],
            0,
        ),
        ("acknowledged at 11:00", [down("CPE-1", t(1)), ack("CPE-1", t(3)), up("CPE-1", t(4))], 0),
        ("acknowledged at 11:00:01", [down("CPE-1", t(1)), ack("CPE-1", t(3, 0, 1)), up("CPE-1", t(4))], 1),
        (
            "inside maintenance",
            [maint("T1", t(2, 50), t(3, 10)), down("CPE-1", t(1)), up("CPE-1", t(4))],
            0,
        ),
        ("excluded", [down("CPE-1", t(1)), up("CPE-1", t(4)), exclude("CPE-1", t(5))], 0),
        ("exclusion rejected", [down("CPE-1", t(1)), up("CPE-1", t(4)), exclude("CPE-1", t(5), "rejected")], 1),
        ("over two 11:00s", [down("CPE-1", t(1)), up("CPE-1", t(4, day=4))], 2),
    ],
)
def test_claim_rule(name: str, events: list[BaseEvent], breaches: int) -> None:
    a = assess_month(ONE, events)
    assert len(a.claim_breaches) == breaches, name
    assert lost(a, "4e") == 2 * breaches
    if breaches:
        assert a.claim_breaches[0].at == t(3) and a.claim_breaches[0].channel == "CPE-1.1"


def test_claim_rule_counts_channels_and_is_capped_at_30() -> None:
    # one channel offline 3rd 00:00Z to 19th 00:00Z: 11:00 local on the 3rd..18th = 16 breaches = 32 points
    a = assess_month(ONE, [down("CPE-1", t(0)), up("CPE-1", t(0, day=19)), finding("4e", t(5), "0.5")])
    assert len(a.claim_breaches) == 16 and lost(a, "4e") == 30
    # three channels offline at one 11:00: 3 breaches
    inv = tree("T1/CPE-1:cam*3")
    a = assess_month(inv, [down("CPE-1", t(1)), up("CPE-1", t(4))])
    assert [b.channel for b in a.claim_breaches] == ["CPE-1.1", "CPE-1.2", "CPE-1.3"]


def test_claim_rule_only_before_as_of_and_inside_the_month() -> None:
    ev = [down("CPE-1", t(0, day=31)), up("CPE-1", t(5, day=1, month=11))]
    # Oct 31 11:00 local = 03:00Z on the 31st; Nov 1 11:00 local = 03:00Z Nov 1: November's
    assert len(assess_month(ONE, ev).claim_breaches) == 1
    assert len(assess_month(ONE, ev, key="2026-11").claim_breaches) == 1
    assert len(assess_month(ONE, ev, as_of=t(3, day=31)).claim_breaches) == 0  # not yet 11:00 at as_of


# ---------------------------------------------------------------------------------------- findings, score, money
def test_findings_count_in_the_month_of_their_time_in_the_contract_zone() -> None:
    ev = [
        finding("4a", t(16, day=30, month=9), 1),  # 2026-10-01 00:00 Shanghai: October
        finding("4b", t(15, 59, 59, day=31), 2),  # 23:59:59 on Oct 31: October
        finding("5", t(16, 30, day=31), 3),  # Nov 1 00:30: November
        finding("4a", t(15, 59, day=30, month=9), 4),  # Sep 30 23:59: September
    ]
    a = assess_month(ONE, ev)
    assert [f.points for f in a.findings] == [1, 2]
    assert [lost(a, "4a"), lost(a, "4b"), lost(a, "5")] == [Decimal(1), Decimal(2), Decimal(0)]
    assert [f.points for f in assess_month(ONE, ev, key="2026-11").findings] == [3]


def test_findings_after_as_of_do_not_count() -> None:
    a = assess_month(ONE, [finding("4c", t(10), 5)], as_of=t(9))
    assert a.findings == () and a.score == 100


def test_finding_items_are_capped_complaints_and_staffing_are_not() -> None:
    ev = [finding("4a", t(10), 7), finding("4a", t(11), 7), finding("4c", t(10), 5), finding("4c", t(11), 5)]
    ev += [finding("4d", t(12), 30), finding("4d", t(13), 2)]
    a = assess_month(ONE, ev)
    assert lost(a, "4a") == 10 and lost(a, "4c") == 10 and lost(a, "4d") == 32
    assert a.score == 100 - 10 - 10 - 32


def test_score_never_falls_below_zero() -> None:
    a = assess_month(ONE, [finding("4c", t(10, i), 5) for i in range(25)])  # 125 points
    assert a.score == 0 and a.share_paid == Decimal("0.60")


@pytest.mark.parametrize(
    ("lost_points", "share"),
    [
        ("0", "1.00"),
        ("10", "1.00"),  # 90 -> 100%
        ("10.5", "0.90"),  # 89.5 -> 90%
        ("20", "0.90"),  # 80
        ("20.5", "0.80"),
        ("30", "0.80"),  # 70
        ("39.99", "0.70"),  # 60.01
        ("40", "0.70"),  # 60
        ("40.01", "0.60"),  # 59.99
    ],
)
def test_share_bands(lost_points: str, share: str) -> None:
    a = assess_month(ONE, [finding("4c", t(10), lost_points)], policy=with_policy(base=Decimal(1000)))
    assert a.score == 100 - Decimal(lost_points)
    assert a.share_paid == Decimal(share)
    assert a.amount == Decimal(1000) * Decimal(share)


def test_amount_is_rounded_half_up_to_the_cent() -> None:
    # 100.05 x 0.90 = 90.045 -> 90.05 (half up; half-even would give 90.04)
    a = assess_month(ONE, [finding("4c", t(10), 15)], policy=with_policy(base=Decimal("100.05")))
    assert a.share_paid == Decimal("0.90") and a.amount == Decimal("90.05")
    # the contract total / 12 as a fixed base: 990,000 / 12 = 82,500
    a = assess_month(ONE, [], policy=with_policy(base=Decimal(990_000) / 12))
    assert a.base == Decimal(82_500) and a.amount == Decimal("82500.00")


def test_tariff_base_sums_the_circuits_active_at_some_time_in_the_month() -> None:
    inv = tree(
        "T1/CPE-1:cam",
        "T1/CPE-2:cam",
        "T1/CPE-3:cam",
        "T1/CPE-4:cam",
        "T1/CPE-5:cam",
        "T1/CPE-6",
        attrs={
            "CPE-1": {"monthly_fee": Decimal(113)},
            "CPE-2": {"monthly_fee": Decimal(90), "commissioned": t(0, day=15)},  # mid-month: counts
            "CPE-3": {"monthly_fee": Decimal(120), "decommissioned": OCT.start},  # gone at the start: not
            "CPE-4": {"monthly_fee": Decimal(1999), "commissioned": OCT.end},  # starts after: not
            "CPE-5": {"monthly_fee": Decimal(102), "decommissioned": OCT.start + secs(1)},  # one second: counts
            "CPE-6": {"monthly_fee": None},
        },
    )
    contract = default_contract()
    assert monthly_base(inv, contract, OCT) == 113 + 90 + 102
    a = assess_month(inv, [finding("4c", t(10), 15)])
    assert a.base == 305 and a.amount == Decimal("274.50")
    # a contract covering only some circuits sums only theirs
    assert monthly_base(inv, Contract(id="c", scopes=("CPE-2",)), OCT) == 90


def test_report_a_month_with_an_empty_history() -> None:
    h = run(ONE, [], as_of=OCT.start)
    a = assess(ONE, default_contract(), h, OCT)
    assert a.seconds == Seconds() and a.seconds.rate == 1 and a.score == 100
    assert a.incidents == () and a.claim_breaches == ()


def test_nov_month_constant() -> None:
    assert NOV.start == OCT.end and NOV.end - NOV.start == timedelta(days=30)


def test_exclusion_of_an_incident_started_last_month_takes_this_months_offline_time_off() -> None:
    # down 2026-09-30T12:00Z (September in Shanghai), up 2026-10-01T12:00Z: 20 h in October (16:00Z on)
    ev = [down("CPE-1", t(12, day=30, month=9)), up("CPE-1", t(12, day=1)), exclude("CPE-1", t(13, day=1))]
    a = assess_month(ONE, ev)
    assert a.incidents == () and a.seconds.offline == 0 and a.seconds.excluded == s(20 * H)
    a = assess_month(ONE, ev[:2])
    assert a.seconds.offline == s(20 * H)


def test_a_contract_over_part_of_the_network() -> None:
    inv = tree("T1/CPE-1:cam*2", "T2/CPE-2:cam", attrs={"CPE-1": {"monthly_fee": Decimal(113)}})
    contract = Contract(id="c2", scopes=("T2",))
    eng = Engine(inv, contract.policy, contract.channels(inv))
    eng.replay([down("CPE-1", t(10)), down("CPE-2", t(10)), up("CPE-2", t(11)), up("CPE-1", t(11))])
    a = assess(inv, contract, eng.snapshot(OCT.end), OCT)
    assert [x.incident.id for x in a.incidents] == ["CPE-2@2026-10-03T10:00:00Z"]
    assert a.seconds == Seconds(online=s(OCT_S - H), offline=s(H))
    assert a.base == 100 and a.channels == 1
