"""Correctness at scale (no timed assertions): the incremental scheduler plans what the plain rule plans.

``ReferenceScheduler`` is the scheduler as it was before it became incremental (every target looked at on
every plan, the rule of :mod:`collectors.scheduler` written out directly); the two are driven side by side
through random polling (failures, states going down/unknown/up, late plans, a node decommissioned on the way,
an inventory reloaded) and must give the same plan every time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from collectors.scheduler import ICMP, KINDS, SNMP, Plan, Scheduler, ScheduleSettings, phase
from monitor.assessment import Month
from monitor.events import Event, NodeState, StateEvent, parse_event
from monitor.inventory import Inventory
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage.database import Database

T0 = datetime(2026, 10, 3, tzinfo=UTC)


# fmt: off
class ReferenceScheduler:
    """Plans probes over time; remembers when each target was last probed and each node's last ICMP outcome.

    ``start`` is when the scheduler began (targets never probed wait for their first slot after it).
    """

    def __init__(self, settings: ScheduleSettings, *, start: datetime) -> None:
        self.settings = settings
        self.start = start
        self.last: dict[tuple[str, str], datetime] = {}  # (kind, node) -> last probe time
        self.outcome: dict[str, tuple[bool, datetime]] = {}  # node -> (last ICMP ok?, when)
        self._held: set[str] = set()
        self._burst = max(settings.rate_pps, float(max(settings.icmp_cost, settings.snmp_cost)))
        self._tokens = self._burst
        self._refilled = start

    # ------------------------------------------------------------------ feedback
    def record(self, kind: str, node: str, at: datetime, ok: bool | None = None) -> None:
        """A probe of ``node`` was made at ``at``; ``ok`` is the ICMP outcome (None: not to be believed,
        e.g. in a blind cycle: the time counts, the outcome does not)."""
        previous = self.last.get((kind, node))
        if previous is None or at >= previous:
            self.last[(kind, node)] = at
        if kind == ICMP and ok is not None:
            self.outcome[node] = (ok, at)

    def forget(self, node: str) -> None:
        """Drop what is known of a node (removed from the inventory)."""
        for kind in KINDS:
            self.last.pop((kind, node), None)
        self.outcome.pop(node, None)
        self._held.discard(node)

    # ------------------------------------------------------------------ pure queries
    @staticmethod
    def targets(inventory: Inventory, at: datetime | None = None) -> dict[str, list[str]]:
        """Node ids per kind, in inventory order: active nodes with an address (and SNMP settings)."""
        out: dict[str, list[str]] = {ICMP: [], SNMP: []}
        for node in inventory.nodes():
            if node.address is None or (at is not None and not node.active_at(at)):
                continue
            out[ICMP].append(node.id)
            if node.snmp is not None:
                out[SNMP].append(node.id)
        return out

    def fast(self, node: str, states: Mapping[str, NodeState]) -> bool:
        """Probed at the suspect interval: last ICMP probe failed, or confirmed state not up."""
        outcome = self.outcome.get(node)
        if outcome is not None and not outcome[0]:
            return True
        return states.get(node, NodeState.UP) is not NodeState.UP

    def interval(self, kind: str, node: str, states: Mapping[str, NodeState]) -> float:
        if kind == ICMP and self.fast(node, states):
            return min(self.settings.suspect_interval_s, self.settings.icmp_interval_s)
        return self.settings.interval(kind)

    def blocks(self, node: str, states: Mapping[str, NodeState]) -> bool:
        """Whether a polled node hides its subtree: last ICMP probe failed, or not probed and down."""
        outcome = self.outcome.get(node)
        if outcome is not None:
            return not outcome[0]
        return states.get(node, NodeState.UP) is NodeState.DOWN

    def blocking_ancestor(self, inventory: Inventory, node: str, states: Mapping[str, NodeState]) -> str | None:
        """The topmost polled strict ancestor of ``node`` that blocks, or None."""
        for ancestor in inventory.path(node)[:-1]:
            if inventory[ancestor].polled and self.blocks(ancestor, states):
                return ancestor
        return None

    def slot(self, kind: str, node: str, interval: float, now: datetime) -> float:
        """The latest slot of a target at or before ``now`` (Unix seconds)."""
        t = now.timestamp()
        return t - (t - phase(kind, node, interval)) % interval

    def _due_since(self, kind: str, node: str, interval: float, now: datetime) -> float | None:
        """The slot since which the target is due, or None when it is not due."""
        slot = self.slot(kind, node, interval, now)
        last = self.last.get((kind, node))
        if last is None:
            return slot if slot >= self.start.timestamp() else None
        t_last = last.timestamp()
        if t_last < slot and now.timestamp() - t_last >= interval / 2:
            return slot
        return None

    # ------------------------------------------------------------------ the plan
    def plan(self, now: datetime, inventory: Inventory, states: Mapping[str, NodeState]) -> Plan:
        """What to probe at ``now``. Takes tokens for what it returns; call :meth:`record` after probing."""
        targets = self.targets(inventory, now)
        held: dict[str, str] = {}
        for node in targets[ICMP]:
            blocker = self.blocking_ancestor(inventory, node, states)
            if blocker is not None:
                held[node] = blocker
        released = self._held - set(held)
        self._held = set(held)
        escalated: set[str] = set()
        for node, (ok, when) in self.outcome.items():
            if ok or node not in inventory or node in held:
                continue
            for ancestor in inventory.path(node)[:-1]:
                if not inventory[ancestor].polled or ancestor in held or self.blocks(ancestor, states):
                    continue
                last = self.last.get((ICMP, ancestor))
                if last is None or last < when:
                    escalated.add(ancestor)
        order = {node: i for i, node in enumerate(targets[ICMP])}
        candidates: list[tuple[int, float, int, str, str]] = []  # (priority, slot, order, kind, node)
        for kind in KINDS:
            for node in targets[kind]:
                if node in held:
                    continue
                if node in released:
                    candidates.append((0, 0.0, order[node], kind, node))
                    continue
                if kind == ICMP and node in escalated:
                    candidates.append((1, 0.0, order[node], kind, node))
                    continue
                since = self._due_since(kind, node, self.interval(kind, node, states), now)
                if since is not None:
                    candidates.append((2, since, order[node], kind, node))
        candidates.sort()
        elapsed = max(0.0, (now - self._refilled).total_seconds())
        self._refilled = max(now, self._refilled)
        cap = max(self._burst, self.settings.rate_pps * min(elapsed, self.settings.burst_s))  # burst_s: new
        self._tokens = min(cap, self._tokens + elapsed * self.settings.rate_pps)
        due: dict[str, list[str]] = {ICMP: [], SNMP: []}
        deferred: dict[str, list[str]] = {ICMP: [], SNMP: []}
        full = False
        for _prio, _slot, _order, kind, node in candidates:
            cost = self.settings.cost(kind)
            if not full and self._tokens >= cost:
                self._tokens -= cost
                due[kind].append(node)
            else:
                full = True
                deferred[kind].append(node)
        return Plan(
            at=now,
            due={k: tuple(v) for k, v in due.items()},
            held=held,
            deferred={k: tuple(v) for k, v in deferred.items() if v},
            released=tuple(n for n in targets[ICMP] if n in released),
        )

# fmt: on


def _plans_equal(a: Plan, b: Plan) -> None:
    assert dict(a.due) == dict(b.due)
    assert dict(a.held) == dict(b.held)
    assert dict(a.deferred) == dict(b.deferred)
    assert a.released == b.released


@pytest.mark.parametrize("seed", [1, 2, 4, 11])
def test_incremental_plans_equal_the_rule(seed: int) -> None:
    rng = random.Random(seed)
    full = sample_inventory()
    nodes = full.nodes()[:400]
    keep = {n.id for n in nodes}
    nodes = [n for n in nodes if n.parent is None or n.parent in keep]
    retire = [n.id for n in nodes if n.address is not None][5::37]
    gone_at = T0 + timedelta(seconds=200)
    inventory = Inventory(replace(n, decommissioned=gone_at) if n.id in retire else n for n in nodes)
    polled = [n.id for n in inventory.nodes() if n.address is not None]
    settings = ScheduleSettings(
        icmp_interval_s=60,
        snmp_interval_s=300,
        suspect_interval_s=15,
        rate_pps=rng.choice([30, 60, 400]),
        icmp_cost=3,
        burst_s=rng.choice([1.0, 3.0]),
    )
    new = Scheduler(settings, start=T0)
    ref = ReferenceScheduler(settings, start=T0)
    dead: set[str] = set(rng.sample(polled, 10))
    states: dict[str, NodeState] = {}
    now = T0
    for step in range(400):
        now += timedelta(seconds=rng.choice([0.5, 1.0, 1.0, 1.0, 2.5, 7.0]))
        if step == 150:  # reloaded: an equal inventory, another object
            inventory = Inventory(inventory.nodes())
        if rng.random() < 0.1:
            dead ^= set(rng.sample(polled, 3))
        if rng.random() < 0.2:
            for node in rng.sample(polled, 5):
                states[node] = rng.choice([NodeState.UP, NodeState.DOWN, NodeState.UNKNOWN])
        a = new.plan(now, inventory, states)
        b = ref.plan(now, inventory, states)
        _plans_equal(a, b)
        for kind in KINDS:
            for node in a.nodes(kind):
                ok = None if kind == SNMP else (node not in dead and rng.random() > 0.05)
                if kind == ICMP and rng.random() < 0.02:
                    ok = None  # a blind cycle: the time counts, not the outcome
                new.record(kind, node, now, ok)
                ref.record(kind, node, now, ok)
        if step % 97 == 0 and step:
            gone = rng.choice(polled)
            new.forget(gone)
            ref.forget(gone)
    assert new.last == ref.last and new.outcome == ref.outcome


def test_phase_is_the_same() -> None:
    assert phase(ICMP, "CPE-1", 60) == pytest.approx(48.92729777025331)


def test_targets_are_kept_until_a_boundary() -> None:
    inventory = sample_inventory()
    s = Scheduler(ScheduleSettings(), start=T0)
    first = s.current_targets(inventory, T0)
    assert first == Scheduler.targets(inventory, T0)
    assert s.current_targets(inventory, T0 + timedelta(seconds=5)) is first
    assert Scheduler.targets(inventory, T0)[ICMP] == first[ICMP]


def _unused(m: Mapping[str, NodeState]) -> None:  # keeps the reference's imports used
    del m


async def test_a_projection_built_beside_the_loop_equals_one_built_inline(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live start with a long history builds the incident projection in a worker thread while ingests go on
    (they store their events and leave them to it); once published, and after further ingests, it holds what
    a projection rebuilt inline from the same stored events holds (SQLite and PostgreSQL)."""
    import monitor.service

    monkeypatch.setattr(monitor.service, "_CHUNK", 97)  # many chunks, cut between instants only
    monkeypatch.setattr(monitor.service, "_PAUSE_S", 0.0)
    inventory = sample_inventory()
    month = Month.parse("2026-10", DEFAULT_POLICY)
    raw = month_events(inventory, month.start, days=month.length_days)
    events = [parse_event(e) for e in raw]
    third = len(events) // 3
    first = Service(db)
    await first.import_inventory(inventory)
    await first.ingest([(f"m:{i}", e) for i, e in enumerate(events[:third])], source="month")

    behind = Service(db)
    behind.rebuild_behind_after = 0
    chunks = [events[third + i : third + i + 200] for i in range(0, 2 * third - third, 200)]
    await behind.ingest([("c0", e) for e in chunks[0]], source="month")
    assert behind.projection_building()
    for k, chunk in enumerate(chunks[1:4], 1):  # stored while it is being built
        await behind.ingest([(f"c{k}", e) for e in chunk], source="month")
    await behind.wait_projection()
    assert not behind.projection_building() and behind.projection_engines() is not None
    for k, chunk in enumerate(chunks[4:], 4):  # incremental from here on
        await behind.ingest([(f"c{k}", e) for e in chunk], source="month")
    await behind.ingest([(f"t:{i}", e) for i, e in enumerate(events[2 * third :])], source="month")

    inline = Service(db)
    await inline.rebuild()
    built, rebuilt = behind.projection_engines(), inline.projection_engines()
    assert built is not None and rebuilt is not None
    assert behind.projection_events() == inline.projection_events()
    for (c1, e1), (c2, e2) in zip(built, rebuilt, strict=True):
        assert c1.id == c2.id
        views = [i.view(inventory, e1.policy.level_for(i.peak)) for i in e1.incidents]
        assert views == [i.view(inventory, e2.policy.level_for(i.peak)) for i in e2.incidents]
        assert await db.repository().load_incidents(c1.id) == await db.repository().load_incidents(c2.id)


async def stored_days(db: Database, monkeypatch: pytest.MonkeyPatch, month: Month, days: int) -> list[Event]:
    """The sample network and ``days`` of its month stored by another process's service; builds beside the
    loop made of many small chunks. Returns the events."""
    import monitor.service

    monkeypatch.setattr(monitor.service, "_CHUNK", 50)
    monkeypatch.setattr(monitor.service, "_PAUSE_S", 0.01)
    inventory = sample_inventory()
    events = [parse_event(e) for e in month_events(inventory, month.start, days=days)]
    writer = Service(db)
    await writer.import_inventory(inventory)
    await writer.ingest([(f"m:{i}", e) for i, e in enumerate(events)], source="month")
    return events


async def test_a_scrape_with_a_long_history_builds_the_projection_beside_the_loop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``slawatch serve`` over a long history: the first ``/metrics`` does not replay the month on the event
    loop (20 s at 100,000 channels, every request waiting); it starts the build in a worker thread and goes out
    without the month's figures, and a later scrape has them. Shutting down stops a build in progress."""
    from monitor.metrics import MetricsState, scrape

    month = Month.parse("2026-10", DEFAULT_POLICY)
    await stored_days(db, monkeypatch, month, 10)

    now = month.start + timedelta(days=10)
    serve = Service(db, clock=lambda: now)
    serve.rebuild_behind_after = 100
    state = MetricsState()
    first = (await scrape(None, serve, state=state)).decode()
    assert serve.projection_building() and serve.projection_engines() is None
    assert "slawatch_month_online_ratio" not in first and "slawatch_database_up 1.0" in first
    await serve.wait_projection()
    later = (await scrape(None, serve, state=state)).decode()
    assert 'slawatch_month_online_ratio{contract="default"}' in later
    assert serve.projection_events() == await serve.repo.count_events()

    stopped = Service(db, clock=lambda: now)
    assert stopped.build_projection_beside() and not stopped.build_projection_beside()  # one at a time
    await stopped.stop_projection_build()
    assert not stopped.projection_building() and stopped.projection_engines() is None  # nothing published


async def test_a_read_only_build_stores_what_this_process_ingested_meanwhile(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``slawatch serve`` starts a read-only projection build (the collector stores its own); an acknowledgement
    or a state posted to this API while it runs is this process's to store: the build stores it when done."""
    events = await stored_days(db, monkeypatch, Month.parse("2026-10", DEFAULT_POLICY), 5)
    serve = Service(db)
    serve.rebuild_behind_after = 100
    assert serve.build_projection_beside(store=False)
    late = max(e.known for e in events) + timedelta(hours=1)
    posted = StateEvent(at=late, node="CPE-0100", state=NodeState.DOWN, known_at=late)
    await serve.ingest([("api:1", posted)], source="api")
    assert serve.projection_building()
    await serve.wait_projection()
    stored = await db.repository().load_incidents("default")
    assert any(i["scope"] == "CPE-0100" and i["start"] == late for i in stored)
