"""The live service: the polling loop over collectors, engine and storage.

:class:`LiveService` runs the polling loop over a :class:`~monitor.service.Service`. Each cycle is
plan (pure) -> probe (I/O) -> verdicts (pure) -> ``service.ingest`` (I/O), so the live service and a replay
of ``poll`` events share one code path (confirmation with ``down_after``/``up_after`` and first-poll
backdating happens in ``Service.ingest``, in memory: only confirmed changes reach the database):

1. **Plan** (:class:`~collectors.scheduler.Scheduler`): the ICMP and SNMP targets due now; children of a
   blocking parent are held (not probed); the global rate limit defers the rest.
2. **Lag** (:class:`~collectors.blind.BlindClocks`): a node whose own probes went out ``blind_after`` times
   in a row without a verdict is unknown (dated when the limit passed). Time alone never does it (SPEC R2):
   a late cycle, a deferred node or one held behind a down parent sent nothing; a held node's clock starts
   again when it is next due.
3. **Probe**: one ICMP batch (due nodes plus the sentinels), awaited; SNMP batches run beside the cycles (a
   silent agent may take seconds) and their results are taken by the first cycle after they finish.
4. **Sentinels** (:func:`~collectors.blind.sentinels_blind`): when every sentinel failed, the ICMP batch is
   thrown away and every polled node is unknown from the cycle's time.
5. **Store**: one ``service.ingest`` per cycle: the ``unknown`` events first (the service interrupts those
   nodes' confirmation runs: they need fresh runs), then one ``poll`` event per probed node (``ok`` = ICMP
   answered, ``rtt_ms``, ``loss``); then the heartbeat (the cycle's time: everything before it was observed).
6. **SNMP facts** (:func:`~collectors.probers.snmp_node_facts`): uplink ifOperStatus changes, reboots, SNMP
   unavailable/available are kept on an in-memory per-node timeline (:meth:`LiveService.facts`) and logged;
   they never make a node down. Credentials are never logged.

At start every polled node is unknown from the last heartbeat (the time the service was not running is
blind, not an outage; on a first start, from now); at a clean stop every polled node is unknown from the
stop. What runs this loop and the API together (``slawatch run``) is :mod:`api.server`, above both: this
module never imports ``api``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from collectors.blind import BlindClocks, restart_events, sentinels_blind, unknown_events
from collectors.errors import CollectorError
from collectors.netrule import LOOPBACK, parse_networks, require_inside
from collectors.probers import (
    FactKind,
    NodeFact,
    ProbeOptions,
    Prober,
    ProbeResult,
    SnmpProber,
    create_prober,
    snmp_node_facts,
)
from collectors.scheduler import ICMP, KINDS, SNMP, Plan, Scheduler, ScheduleSettings
from monitor.errors import EventError, SlawatchError
from monitor.events import Event, NodeState, PollEvent, StateEvent
from monitor.heap import Heap
from monitor.inventory import Inventory, Node, NodeKind
from monitor.service import REBUILD_BEHIND_AFTER, Service
from monitor.settings import Settings
from monitor.storage.database import Database
from monitor.storage.heartbeats import read_heartbeat, write_heartbeat

__all__ = ["ACTOR", "SOURCE", "CycleReport", "LiveService", "LiveSettings"]

log = logging.getLogger("slawatch.live")

SOURCE = "live"
ACTOR = "collector"


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """Polling settings of the live service (one set per deployment). Times in seconds.

    ``sentinels``: addresses the collector pings with every ICMP batch to check its own view (its uplink
    gateway...): all failing makes the batch blind. ``blind_after``: intervals without a result before a
    node is unknown. ``tick_s``: how often the loop plans. ``allowed_networks``: nothing outside is probed.
    """

    icmp_interval_s: float = 60.0
    snmp_interval_s: float = 300.0
    suspect_interval_s: float = 15.0
    icmp_count: int = 3
    icmp_spacing_s: float = 0.2
    icmp_timeout_s: float = 1.0
    rate_pps: float = 2000.0
    sentinels: tuple[str, ...] = ("127.0.0.1",)
    blind_after: int = 3
    tick_s: float = 1.0
    snmp_timeout_s: float = 2.0
    snmp_retries: int = 1
    allowed_networks: tuple[str, ...] = LOOPBACK
    inventory_refresh_s: float = 30.0
    facts_per_node: int = 100
    heartbeat_name: str = "live"

    def __post_init__(self) -> None:
        for name in (
            "icmp_interval_s",
            "snmp_interval_s",
            "suspect_interval_s",
            "icmp_timeout_s",
            "rate_pps",
            "tick_s",
            "snmp_timeout_s",
            "inventory_refresh_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.icmp_count < 1 or self.blind_after < 1 or self.facts_per_node < 1:
            raise ValueError("icmp_count, blind_after and facts_per_node must be at least 1")
        if self.icmp_spacing_s < 0 or self.snmp_retries < 0:
            raise ValueError("icmp_spacing_s and snmp_retries must not be negative")
        networks = parse_networks(self.allowed_networks)
        for address in self.sentinels:
            require_inside(address, networks, "sentinel")

    @classmethod
    def demo(cls) -> LiveSettings:
        """Short intervals for a demonstration or the lab: ICMP every 5 s, SNMP every 15 s."""
        return cls(
            icmp_interval_s=5.0,
            snmp_interval_s=15.0,
            suspect_interval_s=2.0,
            icmp_count=2,
            rate_pps=10_000.0,  # the whole sample network (3,260 nodes) in its first 5 s interval
            icmp_timeout_s=0.5,
            tick_s=0.5,
            snmp_timeout_s=1.0,
            inventory_refresh_s=10.0,
        )

    @classmethod
    def from_settings(cls, settings: Settings, base: LiveSettings | None = None) -> LiveSettings:
        """``base`` (default: the defaults) overridden by the fields of the same name that ``settings`` was
        explicitly given (environment, .env), so a demo profile keeps its short intervals unless told."""
        base = base or cls()
        changes: dict[str, Any] = {}
        given = settings.model_fields_set
        for f in fields(cls):
            value = getattr(settings, f.name, None)
            if f.name in given and value is not None:
                changes[f.name] = tuple(value) if isinstance(value, list | tuple) else value
        return replace(base, **changes)

    def schedule(self) -> ScheduleSettings:
        return ScheduleSettings(
            icmp_interval_s=self.icmp_interval_s,
            snmp_interval_s=self.snmp_interval_s,
            suspect_interval_s=self.suspect_interval_s,
            rate_pps=self.rate_pps,
            icmp_cost=self.icmp_count,
            # a cycle (tick, the pings' spacing and timeout) may run past a second: its plan keeps that budget
            burst_s=max(1.0, self.tick_s + (self.icmp_count - 1) * self.icmp_spacing_s + self.icmp_timeout_s + 1.0),
        )

    def probe_options(self) -> ProbeOptions:
        return ProbeOptions(
            icmp_count=self.icmp_count,
            icmp_spacing_s=self.icmp_spacing_s,
            icmp_timeout_s=self.icmp_timeout_s,
            rate_pps=self.rate_pps,
            allowed_networks=self.allowed_networks,
            snmp_timeout_s=self.snmp_timeout_s,
            snmp_retries=self.snmp_retries,
        )


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle did. ``blind`` names why its ICMP batch was thrown away (``"sentinels"``)."""

    at: datetime
    finished: datetime
    probed: Mapping[str, int]
    held: int
    deferred: int
    blind: str | None
    unknown: int
    polls: int
    confirmed: int
    refused: int
    facts: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "duration_s": round((self.finished - self.at).total_seconds(), 3),
            "probed": dict(self.probed),
            "held": self.held,
            "deferred": self.deferred,
            "blind": self.blind,
            "unknown": self.unknown,
            "polls": self.polls,
            "confirmed": self.confirmed,
            "refused": self.refused,
            "facts": self.facts,
            "error": self.error,
        }


def _sentinel_nodes(addresses: Sequence[str]) -> list[Node]:
    return [Node(id=f"_sentinel.{i + 1}", kind=NodeKind.SWITCH, address=a) for i, a in enumerate(addresses)]


@dataclass
class _Tracked:
    """The loop's working knowledge (all in memory; the database holds what matters)."""

    states: Mapping[str, NodeState] = field(default_factory=dict)  # the service's, updated by every ingest
    since: Mapping[str, datetime] = field(default_factory=dict)
    last_result: dict[str, datetime] = field(default_factory=dict)
    blind: BlindClocks = field(default_factory=BlindClocks)
    icmp: dict[str, ProbeResult] = field(default_factory=dict)
    snmp_available: dict[str, bool] = field(default_factory=dict)
    refused: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, node) -> why
    answered: AnswerLog = field(default_factory=lambda: AnswerLog())


class AnswerLog:
    """The nodes that got an ICMP verdict, in the order they got it, for readers that want only what is new
    since they last looked (the RTT histogram of ``/metrics``: a scrape reads the answers of the last 15 s, not
    every node's). Bounded: past ``keep`` entries the older half is dropped; a reader that fell that far behind
    gets what is kept."""

    def __init__(self, keep: int = 1_000_000) -> None:
        self.keep = keep
        self._nodes: list[str] = []
        self._base = 0  # the mark of _nodes[0]

    def add(self, node: str) -> None:
        self._nodes.append(node)
        if len(self._nodes) > self.keep:
            drop = len(self._nodes) // 2
            del self._nodes[:drop]
            self._base += drop

    def since(self, mark: int) -> tuple[int, list[str]]:
        """The nodes answered after ``mark`` (0: everything kept), and the mark to pass next time."""
        start = max(0, mark - self._base)
        return self._base + len(self._nodes), self._nodes[start:]


class LiveService:
    """The polling loop over ``service``. ``probers`` (kind -> prober) default to the registry's ``icmp``
    and ``snmp`` probers built from ``live``; the live service opens and closes them. ``clock`` defaults to
    the service's."""

    def __init__(
        self,
        service: Service,
        live: LiveSettings | None = None,
        *,
        probers: Mapping[str, Prober] | None = None,
        clock: Callable[[], datetime] | None = None,
        heap: Heap | None = None,
    ) -> None:
        self.service = service
        # When the garbage collector runs (monitor.heap): what is alive is frozen at start and after every
        # cycle, a full collection hourly. None: Python's defaults (tests, embedding).
        self.heap = heap
        self.db: Database = service.db
        self.live = live or LiveSettings()
        # the service's ingest asks whether the stored inventory changed no more often than the loop reloads it
        service.inventory_check_s = max(service.inventory_check_s, self.live.inventory_refresh_s)
        # a start with a long history does not wait for the incident projection's full replay (SPEC-neutral:
        # the events are stored first; the projection catches up beside the cycles)
        if service.rebuild_behind_after is None:
            service.rebuild_behind_after = REBUILD_BEHIND_AFTER
        self.clock: Callable[[], datetime] = clock or service.clock
        options = self.live.probe_options()
        self.probers: dict[str, Prober] = (
            dict(probers) if probers is not None else {k: create_prober(k, options) for k in KINDS}
        )
        self.sentinels = _sentinel_nodes(self.live.sentinels)
        self.scheduler: Scheduler | None = None
        self.inventory: Inventory | None = None
        self._inventory_at: datetime | None = None
        self.tracked = _Tracked()
        self.timeline: dict[str, deque[NodeFact]] = {}
        self.probes: Counter[tuple[str, str]] = Counter()  # (kind, node) -> probes made
        self.probes_by_kind: Counter[str] = Counter()  # kind -> probes made (what /metrics exports)
        self.fact_counts: Counter[FactKind] = Counter()  # facts recorded since start, by kind (never dropped)
        self.started_at: datetime | None = None
        self.last_cycle: CycleReport | None = None
        self.cycles = 0
        self._open = False
        self._snmp: tuple[datetime, list[Node], asyncio.Task[dict[str, ProbeResult]]] | None = None
        self._due_list: list[str] | None = None  # the targets list whose nodes' blind clocks were started
        self._prepared: asyncio.Task[None] | None = None  # SNMP targets being registered (the first batch waits)

    # ------------------------------------------------------------------ queries (API, metrics, tests)
    @property
    def states(self) -> Mapping[str, NodeState]:
        """Each node's latest confirmed state (nodes without a state event are up)."""
        return self.tracked.states

    def facts(self, node: str | None = None) -> list[NodeFact]:
        """The SNMP fact timeline of ``node`` (oldest first), or of every node in time order."""
        if node is not None:
            return list(self.timeline.get(node, ()))
        return sorted((f for q in self.timeline.values() for f in q), key=lambda f: (f.at, f.node))

    def node_snapshot(self, node_id: str) -> dict[str, Any]:
        """One node's live view as JSON-ready data: state, last ICMP result, SNMP availability and facts."""
        t = self.tracked
        r = t.icmp.get(node_id)
        return {
            "state": t.states.get(node_id, NodeState.UP).value,
            "since": t.since[node_id].isoformat() if node_id in t.since else None,
            "last_poll": t.last_result[node_id].isoformat() if node_id in t.last_result else None,
            "ok": None if r is None else r.ok,
            "rtt_ms": None if r is None else r.rtt_ms,
            "loss": None if r is None else r.loss,
            "snmp_available": t.snmp_available.get(node_id),
            "facts": [f.to_json() for f in self.timeline.get(node_id, ())],
        }

    def snapshot(self) -> dict[str, Any]:
        """The live view as JSON-ready data: per polled node its state, last ICMP result and SNMP facts."""
        t = self.tracked
        nodes = {node_id: self.node_snapshot(node_id) for node_id in self._polled()}
        return {
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "cycles": self.cycles,
            "last_cycle": self.last_cycle.to_json() if self.last_cycle else None,
            "refused": {f"{kind}:{node}": why for (kind, node), why in t.refused.items()},
            "nodes": nodes,
        }

    def _polled(self, at: datetime | None = None) -> list[str]:
        if self.inventory is None:
            return []
        if self.scheduler is not None and at is not None:  # kept by the scheduler (do not change the list)
            return self.scheduler.current_targets(self.inventory, at)[ICMP]
        return Scheduler.targets(self.inventory, at)[ICMP]

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the probers, mark the time the service was not running as blind, write the heartbeat."""
        now = self.clock()
        for prober in self.probers.values():
            await prober.open()
        self._open = True
        try:
            inventory = await self._refresh_inventory(now, force=True)
            self.tracked.states = await self.service.node_states()
            self.tracked.since = await self.service.node_since()
            beat = await read_heartbeat(self.db, self.live.heartbeat_name)
            polled = self._polled(now)
            gap = restart_events(polled, self.tracked.states, beat.at if beat else None, now)
            await self._store_unknown(gap)
            await self.service.prepare_projection()  # none stored (a restart after a clean stop): built all the same
            # every run restarts after the gap, also those of nodes that were unknown already (no event)
            await self.service.forget_poll_runs(polled)
            self.scheduler = Scheduler(self.live.schedule(), start=now)
            self.started_at = now
            polled = self._polled(now)
            for node_id in polled:
                self.tracked.blind.due(node_id, now)
            self._due_list = polled
            self._warn_rate(len(polled))
            await write_heartbeat(self.db, at=now, started_at=now, running=True, name=self.live.heartbeat_name)
            snmp = self.probers.get(SNMP)
            if isinstance(snmp, SnmpProber):  # beside the cycles: registering 600 targets takes seconds
                targets = [inventory[n] for n in self.scheduler.current_targets(inventory, now)[SNMP]]
                self._prepared = asyncio.create_task(self._prepare_snmp(snmp, targets), name="slawatch-snmp-prepare")
        except BaseException:
            await self._close_probers()
            raise
        log.info(
            "live service started",
            extra={
                "polled_nodes": len(polled),
                "blind_since": (beat.at if beat else now).isoformat(),
                "unknown": len(gap),
                "sentinels": list(self.live.sentinels),
            },
        )

    async def stop(self) -> None:
        """Clean stop: every polled node unknown from now, heartbeat marked stopped, a snapshot of the incident
        projection stored, probers closed."""
        if not self._open:
            return
        now = self.clock()
        try:
            events = unknown_events(self._polled(now), self.tracked.states, at=now, known_at=now)
            await self._store_unknown(events)
            await write_heartbeat(
                self.db,
                at=now,
                started_at=self.started_at or now,
                running=False,
                name=self.live.heartbeat_name,
            )
            # the next start loads the projection as of now and replays only what is stored after (monitor.snapshot)
            await self.service.save_snapshot()
            log.info("live service stopped", extra={"unknown": len(events), "cycles": self.cycles})
        finally:
            await self._close_probers()

    async def _close_probers(self) -> None:
        self._open = False
        await self._cancel_snmp()
        for prober in self.probers.values():
            try:
                await prober.close()
            except Exception:  # pragma: no cover - closing must not hide the real error
                log.exception("closing a prober failed")

    async def run(self, stop: asyncio.Event) -> None:
        """Start, run cycles every ``tick_s`` until ``stop`` is set (or the task is cancelled), stop."""
        await self.start()
        loop = asyncio.get_running_loop()
        heap = self.heap
        if heap is not None:
            heap.freeze()
        try:
            while not stop.is_set():
                began = loop.time()
                try:
                    await self.cycle()
                except (SlawatchError, CollectorError) as exc:
                    log.error("live cycle failed", extra={"error": str(exc), "error_type": type(exc).__name__})
                if heap is not None:  # a projection built beside the loop is frozen with the rest here
                    heap.after_cycle()
                delay = max(0.0, self.live.tick_s - (loop.time() - began))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            if heap is not None:
                heap.release()
            await self.stop()

    # ------------------------------------------------------------------ one cycle
    async def cycle(self) -> CycleReport:
        """Plan, probe, judge, store. Returns what it did."""
        if self.scheduler is None:
            raise RuntimeError("LiveService.start() first")
        at = self.clock()
        inventory = await self._refresh_inventory(at)
        t = self.tracked
        states = t.states
        plan = self.scheduler.plan(at, inventory, states)
        polled = self._polled(at)
        fresh: list[str] = []
        if polled is not self._due_list:  # the targets changed (kept as one list until then)
            # a node new to the inventory starts unknown, as every node does at start (SPEC §2)
            fresh = [n for n in polled if n not in t.blind.clocks]
            for node_id in polled:
                t.blind.due(node_id, at)
            self._due_list = polled
        # held (or just released) nodes are not due: their blind clocks start again now (SPEC R2)
        for node_id in (*plan.held, *plan.released):
            t.blind.hold(node_id, at)
        # only nodes that missed blind_after probes in a row can lag (in inventory order)
        order = self.scheduler.order
        lagging = sorted(
            (n for n in t.blind.lagging(self.live.blind_after) if n in order and n not in plan.held),
            key=order.__getitem__,
        )
        intervals = {n: self.scheduler.interval(ICMP, n, states) for n in lagging}
        unknown: list[StateEvent] = unknown_events(fresh, states, at=at, known_at=at)
        unknown += t.blind.lag(at, intervals, self.live.blind_after, states=states)
        # SNMP runs beside the cycles (a silent agent may take seconds): take the finished batch, start the next
        n_facts, refused = self._snmp_done()
        snmp_nodes: list[Node] = []
        if self._snmp is None:
            snmp_nodes = [inventory[n] for n in plan.nodes(SNMP)]
            if snmp_nodes:
                for node in snmp_nodes:
                    self.scheduler.record(SNMP, node.id, at)
                self._snmp = (at, snmp_nodes, asyncio.create_task(self._probe(SNMP, snmp_nodes)))
        # probe (I/O)
        icmp_nodes = [inventory[n] for n in plan.nodes(ICMP)]
        icmp_batch = icmp_nodes + (self.sentinels if icmp_nodes else [])
        try:
            icmp_results = await self._probe(ICMP, icmp_batch)
        except BaseException:
            for node in icmp_nodes:  # sent, no verdict: the nodes' own missing results
                t.blind.missed(node.id, at)
                self.scheduler.record(ICMP, node.id, at, None)
            raise
        finished = self.clock()
        sentinel_ok = {s.id: icmp_results[s.id].ok for s in self.sentinels if s.id in icmp_results}
        blind = "sentinels" if sentinels_blind(sentinel_ok) else None
        # judge (pure)
        polls: list[PollEvent] = []
        if blind is not None:
            after_lag = dict(states) | {e.node: e.state for e in unknown}
            unknown += unknown_events(polled, after_lag, at=at, known_at=finished)
            for node in icmp_nodes:
                self.scheduler.record(ICMP, node.id, at, None)
        else:
            for node in icmp_nodes:
                r = icmp_results.get(node.id)
                if r is None:  # sent, no verdict
                    t.blind.missed(node.id, at)
                    self.scheduler.record(ICMP, node.id, at, None)
                    continue
                self.scheduler.record(ICMP, node.id, at, None if r.refused else r.ok)
                if r.refused:  # due, and not observed: the collector's own blindness for this node
                    refused += 1
                    self._refused(node, r)
                    t.blind.missed(node.id, at)
                    continue
                t.icmp[node.id] = r
                t.blind.verdict(node.id, at)
                t.last_result[node.id] = at
                t.answered.add(node.id)
                polls.append(PollEvent(at=at, node=node.id, ok=r.ok, rtt_ms=r.rtt_ms, loss=r.loss))
        # store (I/O): one batch, unknown first (the service interrupts their runs), then the polls
        confirmed = 0
        error: str | None = None
        batch: list[tuple[str, Event]] = [(f"{SOURCE}:blind", e) for e in unknown]
        batch += [(f"{SOURCE}:poll", e) for e in polls]
        try:
            if batch:
                result = await self.service.ingest(batch, SOURCE, ACTOR, keep_runs=False)
                confirmed = result.confirmed
                self._note_unknown(unknown)
                if result.stored:
                    t.since = await self.service.node_since()
            await write_heartbeat(
                self.db,
                at=at,
                started_at=self.started_at or at,
                running=True,
                name=self.live.heartbeat_name,
            )
        except EventError as exc:  # the inventory changed under us: reload it next cycle
            self._inventory_at = None
            error = str(exc)
            log.error("live ingest refused", extra={"error": error})
        report = CycleReport(
            at=at,
            finished=self.clock(),  # the store step included
            probed={ICMP: len(icmp_nodes), SNMP: len(snmp_nodes)},
            held=len(plan.held),
            deferred=sum(len(v) for v in plan.deferred.values()),
            blind=blind,
            unknown=len(unknown),
            polls=len(polls),
            confirmed=confirmed,
            refused=refused,
            facts=n_facts,
            error=error,
        )
        self.last_cycle = report
        self.cycles += 1
        self._log_cycle(report, plan)
        return report

    def _snmp_done(self) -> tuple[int, int]:
        """Facts from the SNMP batch if it finished (pure interpretation): (facts added, nodes refused)."""
        if self._snmp is None or not self._snmp[2].done():
            return 0, 0
        at, nodes, task = self._snmp
        self._snmp = None
        if task.cancelled():
            return 0, 0
        exc = task.exception()
        if exc is not None:
            log.error("snmp batch failed", extra={"error": str(exc), "error_type": type(exc).__name__})
            return 0, 0
        results = task.result()
        t = self.tracked
        n_facts = refused = 0
        for node in nodes:
            r = results.get(node.id)
            if r is None:
                continue
            if r.refused:
                refused += 1
                self._refused(node, r)
                continue
            outcome = self.scheduler.outcome.get(node.id) if self.scheduler else None
            new, available = snmp_node_facts(
                at, r, t.snmp_available.get(node.id), None if outcome is None else outcome[0]
            )
            if available is not None:
                t.snmp_available[node.id] = available
            for fact in new:
                self._add_fact(node, fact)
            n_facts += len(new)
        return n_facts, refused

    @staticmethod
    async def _prepare_snmp(prober: SnmpProber, nodes: Sequence[Node]) -> None:
        """Register the SNMP targets a few at a time, giving the loop a turn in between."""
        for i in range(0, len(nodes), 8):
            await prober.prepare(nodes[i : i + 8])
            await asyncio.sleep(0)

    async def _cancel_snmp(self) -> None:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and not prepared.done():
            prepared.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await prepared
        if self._snmp is not None:
            task = self._snmp[2]
            self._snmp = None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _probe(self, kind: str, nodes: Sequence[Node]) -> dict[str, ProbeResult]:
        if not nodes:
            return {}
        prober = self.probers.get(kind)
        if prober is None:
            return {}
        if kind == SNMP and self._prepared is not None:  # its targets registered first
            with contextlib.suppress(Exception):
                await asyncio.shield(self._prepared)
        results = await prober.probe(nodes)
        made = 0
        for node in nodes:
            r = results.get(node.id)
            if r is not None and not r.refused:
                self.probes[(kind, node.id)] += 1
                made += 1
        self.probes_by_kind[kind] += made
        return results

    def _refused(self, node: Node, result: ProbeResult) -> None:
        key = (result.kind, node.id)
        if self.tracked.refused.get(key) != result.error:
            self.tracked.refused[key] = result.error or "refused"
            log.error(
                "node not probed",
                extra={"node": node.id, "kind": result.kind, "address": node.address, "reason": result.error},
            )

    def _add_fact(self, node: Node, fact: NodeFact) -> None:
        queue = self.timeline.setdefault(node.id, deque(maxlen=self.live.facts_per_node))
        queue.append(fact)
        self.fact_counts[fact.kind] += 1
        log.info(
            "snmp fact",
            extra={
                "node": fact.node,
                "address": node.address,
                "fact": fact.kind.value,
                "detail": fact.detail,
                "at": fact.at.isoformat(),
            },
        )

    def _log_cycle(self, report: CycleReport, plan: Plan) -> None:
        level = logging.INFO if (report.blind or report.unknown or report.confirmed or report.error) else logging.DEBUG
        extra = report.to_json()
        if report.blind:
            extra["sentinels"] = list(self.live.sentinels)
        log.log(level, "live cycle", extra=extra)

    def _warn_rate(self, polled: int) -> None:
        """Say so when the rate limit cannot poll every node once per interval (they would fall behind)."""
        needed = polled * self.live.icmp_count / self.live.icmp_interval_s
        if needed > self.live.rate_pps:
            log.warning(
                "rate limit below what the inventory needs",
                extra={
                    "polled_nodes": polled,
                    "rate_pps": self.live.rate_pps,
                    "needed_pps": round(needed),
                    "nodes_per_interval": int(self.live.rate_pps * self.live.icmp_interval_s / self.live.icmp_count),
                },
            )

    # ------------------------------------------------------------------ storage helpers
    async def _store_unknown(self, events: Sequence[StateEvent]) -> None:
        """Ingest ``unknown`` events on their own (at start and stop)."""
        if events:
            await self.service.ingest([(f"{SOURCE}:blind", e) for e in events], SOURCE, ACTOR, keep_runs=False)
            self._note_unknown(events)
            self.tracked.since = await self.service.node_since()

    def _note_unknown(self, events: Sequence[StateEvent]) -> None:
        """Log the nodes gone unknown (the service keeps their states)."""
        if not events:
            return
        log.info(
            "nodes unknown",
            extra={
                "count": len(events),
                "nodes": [e.node for e in events[:20]],
                "at": min(e.at for e in events).isoformat(),
            },
        )

    async def _refresh_inventory(self, now: datetime, *, force: bool = False) -> Inventory:
        stale = (
            self.inventory is None
            or self._inventory_at is None
            or (now - self._inventory_at).total_seconds() >= self.live.inventory_refresh_s
        )
        if force or stale:
            inventory = await self.service.cached_inventory()
            if self.scheduler is not None and self.inventory is not None:
                for gone in set(self.inventory) - set(inventory):
                    self.scheduler.forget(gone)
                    self.tracked.blind.forget(gone)
            self.inventory = inventory
            self._inventory_at = now
        assert self.inventory is not None
        return self.inventory
