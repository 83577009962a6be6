"""The polling plan, pure and hand-computed: slots, spread, suspect re-polling, held children, rate limit.

Times are seconds after ``T0`` = 2026-10-03T00:00:00Z, a whole multiple of 15, 60 and 300 s on the Unix
epoch, so a target's slots are simply ``T0 + phase + k * interval``. The phases (blake2b of ``kind:node``)
are literal below: they must never change between versions, or every restart would reshuffle the spread.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from collectors.scheduler import ICMP, SNMP, Scheduler, ScheduleSettings, phase
from monitor.events import NodeState
from monitor.inventory import Inventory, SnmpSettings
from tests.monitor.builders import tree

T0 = datetime(2026, 10, 3, tzinfo=UTC)
SETTINGS = ScheduleSettings(icmp_interval_s=60, snmp_interval_s=300, suspect_interval_s=15, rate_pps=1000, icmp_cost=3)
UP: dict[str, NodeState] = {}

# phase(kind, node, interval), seconds
P_CPE1 = 48.92729777025331  # icmp CPE-1 / 60 s
P_CPE1_FAST = 12.231824442563328  # icmp CPE-1 / 15 s
P_CAM11 = 3.997633850517615  # icmp CPE-1.1 / 60 s
P_CPE1_SNMP = 9.61548416969349  # snmp CPE-1 / 300 s
# others at 60 s: CPE-1.2 33.79, CPE-2 28.31 (7.08 at 15 s), CPE-2.1 45.63


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def network(switch: bool = False) -> Inventory:
    """T1/B1 (no addresses) over CPE-1 (2 cameras, SNMP) and CPE-2 (1 camera); optionally a polled SW-1."""
    top = "T1/B1/SW-1" if switch else "T1/B1"
    addresses = {
        "SW-1": "127.60.0.254",
        "CPE-1": "127.60.0.1",
        "CPE-1.1": "127.60.1.1",
        "CPE-1.2": "127.60.1.2",
        "CPE-2": "127.60.0.2",
        "CPE-2.1": "127.60.2.1",
    }
    attrs: dict[str, dict[str, object]] = {n: {"address": a} for n, a in addresses.items()}
    attrs["CPE-1"]["snmp"] = SnmpSettings()
    return tree(f"{top}/CPE-1:cam*2", f"{top}/CPE-2:cam", attrs=attrs)


def test_phases_are_stable_and_inside_the_interval() -> None:
    assert phase(ICMP, "CPE-1", 60) == pytest.approx(P_CPE1)
    assert phase(ICMP, "CPE-1", 15) == pytest.approx(P_CPE1_FAST)
    assert phase(ICMP, "CPE-1.1", 60) == pytest.approx(P_CAM11)
    assert phase(SNMP, "CPE-1", 300) == pytest.approx(P_CPE1_SNMP)
    assert phase(ICMP, "CPE-1", 60) == pytest.approx(4 * phase(ICMP, "CPE-1", 15))  # same fraction


def test_start_times_are_spread_over_the_interval() -> None:
    buckets = Counter(int(phase(ICMP, f"CAM-{i:04d}", 60) // 10) for i in range(600))
    assert set(buckets) == set(range(6))
    assert all(70 <= n <= 130 for n in buckets.values()), buckets  # 100 expected per 10 s


def test_targets_by_kind() -> None:
    inv = network()
    targets = Scheduler.targets(inv)
    assert targets[ICMP] == ["CPE-1", "CPE-1.1", "CPE-1.2", "CPE-2", "CPE-2.1"]  # B1, T1: no address
    assert targets[SNMP] == ["CPE-1"]
    retired = tree("T1/CPE-9:cam", attrs={"CPE-9": {"address": "127.60.9.1", "decommissioned": at(-1)}})
    assert Scheduler.targets(retired, at(0))[ICMP] == []


def test_first_probe_at_the_first_slot_after_start_then_every_interval() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    assert s.plan(at(3.9), inv, UP).nodes(ICMP) == ()
    assert s.plan(at(4.0), inv, UP).nodes(ICMP) == ("CPE-1.1",)  # phase 4.00
    s.record(ICMP, "CPE-1.1", at(4.0), ok=True)
    assert s.plan(at(28.2), inv, UP).nodes(ICMP) == ()
    assert s.plan(at(28.4), inv, UP).nodes(ICMP) == ("CPE-2",)  # phase 28.31
    s.record(ICMP, "CPE-2", at(28.4), ok=True)
    plan = s.plan(at(50.0), inv, UP)
    assert plan.nodes(ICMP) == ("CPE-1.2", "CPE-2.1", "CPE-1")  # oldest slot first: 33.79, 45.63, 48.93
    for node in plan.nodes(ICMP):
        s.record(ICMP, node, at(50.0), ok=True)
    assert s.plan(at(63.9), inv, UP).nodes(ICMP) == ()
    assert s.plan(at(64.0), inv, UP).nodes(ICMP) == ("CPE-1.1",)  # 4.00 + 60
    assert "CPE-1" not in s.plan(at(108.8), inv, UP).nodes(ICMP)
    assert "CPE-1" in s.plan(at(109.0), inv, UP).nodes(ICMP)  # 48.93 + 60


def test_snmp_has_its_own_interval_and_phase() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    assert s.plan(at(9.5), inv, UP).nodes(SNMP) == ()
    assert s.plan(at(9.7), inv, UP).nodes(SNMP) == ("CPE-1",)  # phase 9.62 of 300 s
    s.record(SNMP, "CPE-1", at(9.7))
    assert s.plan(at(300.0), inv, UP).nodes(SNMP) == ()
    assert s.plan(at(309.7), inv, UP).nodes(SNMP) == ("CPE-1",)


def test_suspect_and_not_up_nodes_are_probed_at_the_suspect_interval() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    s.record(ICMP, "CPE-1", at(49.0), ok=False)
    assert s.interval(ICMP, "CPE-1", UP) == 15
    assert "CPE-1" not in s.plan(at(57.0), inv, UP).nodes(ICMP)  # latest 15-s slot 42.23 < 49.0
    assert "CPE-1" in s.plan(at(57.3), inv, UP).nodes(ICMP)  # slot 57.23, 8.3 s >= 7.5 s since
    # a confirmed down or unknown node is fast too, until it is up again
    assert s.interval(ICMP, "CPE-2", {"CPE-2": NodeState.DOWN}) == 15
    assert s.interval(ICMP, "CPE-2", {"CPE-2": NodeState.UNKNOWN}) == 15
    assert s.interval(ICMP, "CPE-2", UP) == 60


def test_switching_back_to_the_long_interval_never_probes_twice_in_a_row() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    s.record(ICMP, "CPE-1", at(102.3), ok=True)  # a fast probe at the 15-s slot 102.23, and it answered
    assert "CPE-1" not in s.plan(at(109.0), inv, UP).nodes(ICMP)  # 60-s slot 108.93 but only 6.7 s since
    assert "CPE-1" in s.plan(at(169.0), inv, UP).nodes(ICMP)


def test_children_of_a_failing_or_down_parent_are_held() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    s.record(ICMP, "CPE-1", at(49.0), ok=False)
    plan = s.plan(at(61.0), inv, {"CPE-2": NodeState.DOWN})  # CPE-2 down and not probed yet
    assert plan.held == {"CPE-1.1": "CPE-1", "CPE-1.2": "CPE-1", "CPE-2.1": "CPE-2"}
    assert plan.nodes(ICMP) == ("CPE-2", "CPE-1")  # both fast: 15-s slots 52.08 and 57.23
    # a down node whose last probe answered (waiting for up_after) no longer hides its children
    s.record(ICMP, "CPE-2", at(61.0), ok=True)
    assert "CPE-2.1" not in s.plan(at(61.1), inv, {"CPE-2": NodeState.DOWN}).held


def test_the_topmost_blocking_ancestor_is_named() -> None:
    inv = network(switch=True)
    s = Scheduler(SETTINGS, start=T0)
    s.record(ICMP, "SW-1", at(31.0), ok=False)
    s.record(ICMP, "CPE-1", at(31.0), ok=False)
    plan = s.plan(at(32.0), inv, UP)
    assert plan.held == {n: "SW-1" for n in ("CPE-1", "CPE-1.1", "CPE-1.2", "CPE-2", "CPE-2.1")}
    assert plan.nodes(SNMP) == ()  # held for every kind (CPE-1's SNMP slot 9.62 has passed)


def test_children_are_probed_at_once_when_the_parent_answers_again() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    s.record(ICMP, "CPE-1", at(1.0), ok=False)
    assert s.plan(at(2.0), inv, UP).held.keys() == {"CPE-1.1", "CPE-1.2"}
    s.record(ICMP, "CPE-1", at(12.3), ok=True)
    plan = s.plan(at(12.4), inv, UP)
    assert plan.held == {}
    assert plan.nodes(ICMP) == ("CPE-1.1", "CPE-1.2")  # released: at once, slots or not (64.0, 33.79)
    assert plan.released == ("CPE-1.1", "CPE-1.2")  # due again from 12.4 s: their blind clocks restart (R2)
    assert s.plan(at(12.5), inv, UP).released == ()  # once


def test_held_and_deferred_nodes_are_named_so_lateness_is_never_blindness() -> None:
    """A late plan (here 11 s after the last, with a 2-packet budget) defers what does not fit and holds what
    is behind a failing parent; neither is probed, so neither can miss a probe (SPEC R2)."""
    inv = network()
    s = Scheduler(ScheduleSettings(rate_pps=2, icmp_cost=1, snmp_cost=1), start=T0)
    s.record(ICMP, "CPE-1", at(49.0), ok=False)
    plan = s.plan(at(60.0), inv, UP)
    assert plan.held == {"CPE-1.1": "CPE-1", "CPE-1.2": "CPE-1"}
    # due, oldest slot first: snmp CPE-1 (9.62), icmp CPE-2 (28.31), CPE-2.1 (45.63), CPE-1 at 15 s (57.23);
    # a budget of 2 packets takes the first two
    assert plan.nodes(SNMP) == ("CPE-1",) and plan.nodes(ICMP) == ("CPE-2",)
    assert plan.deferred == {ICMP: ("CPE-2.1", "CPE-1")}


def test_a_failing_child_escalates_to_its_parents() -> None:
    inv = network()
    s = Scheduler(SETTINGS, start=T0)
    s.record(ICMP, "CPE-1.1", at(4.0), ok=False)
    assert s.plan(at(4.1), inv, UP).nodes(ICMP) == ("CPE-1",)  # not its slot (48.93): probed at once
    s.record(ICMP, "CPE-1", at(4.2), ok=True)
    assert s.plan(at(5.0), inv, UP).nodes(ICMP) == ()  # probed since the child's failure


def test_global_rate_limit_defers_the_least_overdue() -> None:
    inv = network()
    s = Scheduler(ScheduleSettings(rate_pps=6, icmp_cost=3), start=T0)  # burst: 6 packets
    plan = s.plan(at(59.9), inv, UP)
    # oldest slot first over both kinds: icmp CPE-1.1 (4.00, 3 packets), snmp CPE-1 (9.62, 1 packet);
    # icmp CPE-2 (28.31) needs 3 of the 2 left: it and everything after it wait
    assert plan.nodes(ICMP) == ("CPE-1.1",)
    assert plan.nodes(SNMP) == ("CPE-1",)
    assert plan.deferred == {ICMP: ("CPE-2", "CPE-1.2", "CPE-2.1", "CPE-1")}  # 28.31, 33.79, 45.63, 48.93
    s.record(ICMP, "CPE-1.1", at(59.9), ok=True)
    s.record(SNMP, "CPE-1", at(59.9))
    assert s.plan(at(60.0), inv, UP).nodes(ICMP) == ()  # 2 + 0.6 packets
    plan = s.plan(at(60.9), inv, UP)  # 2.6 + 5.4 = 8, capped at the burst: 6
    assert plan.nodes(ICMP) == ("CPE-2", "CPE-1.2")
    assert plan.deferred == {ICMP: ("CPE-2.1", "CPE-1")}


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="suspect_interval_s"):
        ScheduleSettings(suspect_interval_s=0)
    with pytest.raises(ValueError, match="costs"):
        ScheduleSettings(icmp_cost=0)
