"""Month-to-date figures (monitor.projection) against the full assessment over the same events.

One engine is fed the events in chunks, as the service's projection is, and read by one MonthToDate between
chunks; the reference is a fresh engine replaying everything known so far and ``assess`` as of the same time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from monitor.assessment import Assessment, Month, assess
from monitor.contracts import Contract, default_contract
from monitor.engine import Engine
from monitor.events import (
    AckEvent,
    Event,
    ExclusionEvent,
    ExclusionStatus,
    ExplanationEvent,
    FindingEvent,
    MaintenanceEvent,
    NodeState,
    StateEvent,
)
from monitor.events import parse_event as parse
from monitor.inventory import Inventory, Node, NodeKind
from monitor.policy import DEFAULT_POLICY
from monitor.projection import ITEMS, MonthToDate, month_at, next_claim_instant
from monitor.sample import sample_inventory
from monitor.sample_events import month_events

SHANGHAI = DEFAULT_POLICY.zone


def reference(inventory: Inventory, contract: Contract, events: list[Event], now: datetime, month: Month) -> Assessment:
    engine = Engine(inventory, contract.policy)
    engine.replay(events)
    return assess(inventory, contract, engine.snapshot(now), month)


def check_equal(
    tracker: MonthToDate, inventory: Inventory, contract: Contract, events: list[Event], now: datetime
) -> None:
    got = tracker.figures(now)
    want = reference(inventory, contract, events, now, tracker.month)
    assert got.seconds == want.seconds
    assert got.online_rate == want.seconds.rate
    assert dict(got.lost) == {i.key: i.lost for i in want.items}
    assert got.claim_breaches == len(want.claim_breaches)
    assert (got.score, got.share, got.base, got.amount) == (want.score, want.share_paid, want.base, want.amount)


def test_sample_month_in_chunks_equals_the_assessment() -> None:
    """Faults, cuts, acks, an excluded township cut, maintenance, a blind collector, findings, 11:00 breaches."""
    inventory = sample_inventory()
    contract = default_contract()
    month = Month.parse("2026-10", contract.policy)
    events = sorted((parse(e) for e in month_events(inventory, month.start, days=12)), key=lambda e: e.known)
    assert {e.type for e in events} >= {"state", "ack", "exclusion", "maintenance", "finding", "explanation"}
    engine = Engine(inventory, contract.policy)
    tracker = MonthToDate(contract, engine, month)
    cuts = [len(events) * k // 5 for k in range(1, 6)]
    done = 0
    seen_breaches = seen_lost = False
    for cut in cuts:
        engine.replay(events[done:cut])
        done = cut
        now = events[cut - 1].known + timedelta(minutes=37)
        assert tracker.fits(contract, engine, now)
        check_equal(tracker, inventory, contract, events[:cut], now)
        f = tracker.figures(now)
        seen_breaches |= f.claim_breaches > 0
        seen_lost |= f.lost["response"] + f.lost["recovery"] > 0
        # a later call with nothing new gives the same figures again (nothing counted twice)
        assert tracker.figures(now) == f
    assert seen_breaches and seen_lost
    assert tracker.figures(now).seconds.excluded > 0 and tracker.figures(now).seconds.blind > 0


def small() -> Inventory:
    nodes = [
        Node("T1", NodeKind.AREA),
        Node("CPE-1", NodeKind.CPE, parent="T1", address="127.61.1.1"),
        *(
            Node(f"CAM-{c}", NodeKind.CAMERA, parent="CPE-1", address=f"127.61.1.{10 + c}", channels=1)
            for c in range(6)
        ),
        Node("T2", NodeKind.AREA),
        Node("CPE-2", NodeKind.CPE, parent="T2", address="127.61.2.1"),
        Node("NVR-2", NodeKind.NVR, parent="CPE-2", address="127.61.2.10", channels=4),
    ]
    return Inventory(nodes)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_points_at_risk_breaches_ack_and_maintenance() -> None:
    inventory = small()
    contract = default_contract()
    engine = Engine(inventory, contract.policy)
    month = month_at(local(3, 9), contract)
    assert month.key == "2026-10"
    tracker = MonthToDate(contract, engine, month)
    events: list[Event] = []

    def feed(*new: Event) -> None:
        events.extend(new)
        engine.replay(new)

    feed(StateEvent(at=local(3, 9, 30), node="CPE-1", state=NodeState.DOWN))
    now = local(3, 10)
    f = tracker.figures(now)
    assert f.next_claim == local(3, 11) == next_claim_instant(now, contract)
    assert dict(f.at_risk) == {"T1": 6} and f.at_risk_points == Decimal(12)  # offline 1.5 h by 11:00
    assert f.open_by_level == {1: 0, 2: 0, 3: 1, 0: 0} and f.oldest_open == {3: local(3, 9, 30)}
    assert f.claim_breaches == 0
    # a stretch that starts 10:30 is not an hour old at 11:00: not at risk
    feed(StateEvent(at=local(3, 10, 30), node="CPE-2", state=NodeState.DOWN))
    f = tracker.figures(local(3, 10, 31))
    assert dict(f.at_risk) == {"T1": 6}
    check_equal(tracker, inventory, contract, events, local(3, 10, 31))
    # 11:00 passes unclaimed: 6 breaches (12 points under 4e); tomorrow's 11:00 is next, both outages at risk
    now = local(3, 11, 30)
    f = tracker.figures(now)
    assert f.claim_breaches == 6 and f.lost["4e"] == Decimal(12)
    assert f.next_claim == local(4, 11) and dict(f.at_risk) == {"T1": 6, "T2": 4}
    assert f.at_risk_points == Decimal(20)
    check_equal(tracker, inventory, contract, events, now)
    # an acknowledgement dated before 11:00 but known after it takes the breaches back; CPE-1 is claimed
    feed(AckEvent(at=local(3, 10, 45), known_at=local(3, 11, 40), node="CPE-1", by="crew"))
    now = local(3, 11, 45)
    f = tracker.figures(now)
    assert f.claim_breaches == 0 and f.lost["4e"] == 0 and dict(f.at_risk) == {"T2": 4}
    check_equal(tracker, inventory, contract, events, now)
    # maintenance over T2 covering tomorrow's 11:00: nothing at risk; its time is excluded from the rate
    feed(MaintenanceEvent(at=local(3, 12), start=local(3, 12), end=local(4, 12), scope="T2", known_at=local(3, 12)))
    now = local(3, 13)
    f = tracker.figures(now)
    assert dict(f.at_risk) == {} and f.seconds.excluded == 4 * 3600 * 1_000_000
    check_equal(tracker, inventory, contract, events, now)
    # the CPE-1 incident's exclusion approved: its offline time leaves both sides of the rate
    incident = engine.open_incidents()[0].id
    feed(ExclusionEvent(at=local(3, 14), incident=incident, status=ExclusionStatus.APPROVED, cause="power"))
    now = local(3, 15)
    check_equal(tracker, inventory, contract, events, now)
    assert tracker.figures(now).lost["response"] == 0
    # back up; days later the figures still agree and nothing is at risk
    feed(StateEvent(at=local(3, 16), node="CPE-1", state=NodeState.UP))
    feed(StateEvent(at=local(3, 16, 5), node="CPE-2", state=NodeState.UP))
    now = local(9, 8)
    f = tracker.figures(now)
    assert f.at_risk == {} and f.open_by_level == {1: 0, 2: 0, 3: 0, 0: 0} and f.oldest_open == {}
    check_equal(tracker, inventory, contract, events, now)
    assert set(f.lost) == set(ITEMS)
    # the month ends: the tracker no longer fits, a new one starts the new month
    assert not tracker.fits(contract, engine, local(31, 23) + timedelta(hours=2))


def random_stream(seed: int) -> list[Event]:
    """Random states (backdated, conflicting, blind), acks, explanations, exclusion steps, maintenance and
    findings over three days around the 11:00 instants of the small network, in known order."""
    rng = random.Random(seed)
    nodes = ["T1", "CPE-1", *(f"CAM-{c}" for c in range(6)), "T2", "CPE-2", "NVR-2"]
    start = local(2, 6)
    out: list[Event] = []
    for _ in range(70):
        at = start + timedelta(seconds=rng.randrange(3 * 86_400))
        known = at + timedelta(seconds=rng.choice((0, 0, 0, 30, 600, 7_200)))
        node = rng.choice(nodes)
        kind = rng.random()
        event: Event
        if kind < 0.55:
            state = rng.choices((NodeState.DOWN, NodeState.UP, NodeState.UNKNOWN), (5, 5, 1))[0]
            event = StateEvent(at=at, known_at=known, node=node, state=state)
        elif kind < 0.7:
            event = AckEvent(at=at, known_at=known, node=node, by="crew")
        elif kind < 0.77:
            event = ExplanationEvent(at=at, known_at=known, node=node, text="why")
        elif kind < 0.87:
            status = rng.choice(list(ExclusionStatus))
            event = ExclusionEvent(at=at, known_at=known, node=node, status=status, cause="third party")
        elif kind < 0.94:
            begin = at + timedelta(seconds=rng.randrange(-7_200, 7_200))
            event = MaintenanceEvent(
                at=at,
                known_at=known,
                start=begin,
                end=begin + timedelta(seconds=rng.randrange(600, 20_000)),
                scope=node,
            )
        else:
            item = rng.choice(("4a", "4b", "4c", "4d", "4e", "5"))
            event = FindingEvent(at=at, known_at=known, item=item, points=Decimal(rng.choice((1, 5))))
        out.append(event)
    return sorted(out, key=lambda e: e.known)


@pytest.mark.parametrize("seed", range(40))
def test_random_streams_in_chunks_equal_the_assessment(seed: int) -> None:
    inventory = small()
    contract = default_contract()
    month = Month.parse("2026-10", contract.policy)
    events = random_stream(seed)
    engine = Engine(inventory, contract.policy)
    tracker = MonthToDate(contract, engine, month)
    rng = random.Random(seed + 1000)
    done = 0
    now = events[0].known
    while done < len(events):
        cut = min(len(events), done + rng.randrange(1, 12))
        engine.replay(events[done:cut])
        done = cut
        now = max(now, events[cut - 1].known) + timedelta(seconds=rng.choice((0, 1, 59, 3_600, 20_000)))
        check_equal(tracker, inventory, contract, events[:cut], now)
        # the channels at risk are the breaches the next claim instant makes if nothing else happens
        f = tracker.figures(now)
        if f.next_claim < month.end:
            then = reference(inventory, contract, events[:cut], f.next_claim + timedelta(seconds=1), month)
            at_next = [b for b in then.claim_breaches if b.at == f.next_claim]
            assert sum(f.at_risk.values()) == len(at_next)
            assert f.at_risk_points == contract.policy.claim_points * len(at_next)


@pytest.mark.parametrize("seed", range(12))
def test_a_tracker_warmed_a_few_channels_at_a_time_while_events_arrive_gives_the_same_figures(seed: int) -> None:
    """What a scrape does at 100,000 channels (monitor.metrics): the first count of every channel split into
    small parts, the engine taking events between them; then the figures are the assessment's."""
    inventory = small()
    contract = default_contract()
    month = Month.parse("2026-10", contract.policy)
    events = random_stream(seed)
    engine = Engine(inventory, contract.policy)
    rng = random.Random(seed + 2000)
    cut = len(events) // 2
    engine.replay(events[:cut])
    tracker = MonthToDate(contract, engine, month)
    now = events[cut - 1].known
    steps = 0
    while True:
        now += timedelta(seconds=rng.choice((0, 1, 600)))
        done = tracker.warm(now, budget=rng.randrange(1, 4))
        steps += 1
        if done:
            break
        more = min(len(events), cut + rng.randrange(0, 3))
        engine.replay(events[cut:more])
        cut = more
        now = max(now, events[cut - 1].known)
    assert steps > 1 and len(tracker._channels) == len(engine.channels)
    check_equal(tracker, inventory, contract, events[:cut], now)
    engine.replay(events[cut:])
    check_equal(tracker, inventory, contract, events, max(now, events[-1].known))
