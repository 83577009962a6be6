"""Prometheus metrics, built at scrape time (a custom collector, as in client_python's "custom collectors").

Nothing is registered at import time and the global default registry is never used: :func:`build_registry`
makes a NEW :class:`~prometheus_client.CollectorRegistry` holding one :class:`SlawatchCollector`, whose
:meth:`~SlawatchCollector.collect` reads state kept up to date as events arrive. :func:`scrape` is what
``GET /metrics`` calls: it reads the few stored counts (async, one cheap query each), then builds and renders
the registry in the event loop's thread, so no live cycle or ingest interleaves with the read. What must
survive between scrapes (the month-to-date trackers, the RTT histogram) lives in a :class:`MetricsState`
that the caller keeps (the API keeps one per application).

Labels are bounded by area, kind, state, contract, level, item, category and fact: never one series per
channel, node or incident.

Build and collector:

* ``slawatch_build_info{version,python}`` (gauge, 1).
* ``slawatch_collector_running`` (gauge): 1 when a live loop runs in this process, or another process's
  heartbeat says it runs; 0 when none does (``slawatch serve`` alone): then ``slawatch_collector_up`` is not
  exported at all, so an API without a collector is never reported as a collector down.
* ``slawatch_collector_up`` (gauge, only while a collector runs): 1 when it cycled within ``stale_after_s``
  (30 s), 0 when it is running but silent (stuck, or killed without a clean stop).
* ``slawatch_collector_last_cycle_timestamp_seconds``, ``slawatch_collector_cycle_duration_seconds``,
  ``slawatch_collector_blind`` (1 when the last cycle's ICMP batch was thrown away: every sentinel failed),
  ``slawatch_collector_cycles_total``.
* ``slawatch_probes_total{kind}``, ``slawatch_snmp_facts_total{fact}`` (counters since the process started).
* ``slawatch_icmp_rtt_seconds{area}`` (histogram): ICMP round-trip times of the answers, observed at each
  scrape for every node whose answer is newer than the previous scrape's (a node polled twice between two
  scrapes adds its latest answer only).

Network (live state):

* ``slawatch_nodes{kind,state}`` (gauge, live loop in this process only): polled active nodes by kind and
  confirmed state.
* ``slawatch_channels{area,state}`` (gauge): channels by area and state (online, offline, unknown, inactive):
  from the live loop's node states by SPEC §2 as ``slawatch status``; without a live loop, from the incident
  projection's channel states (what the stored events say).

Per contract (from the service's in-memory incident projection, :mod:`monitor.projection`):

* ``slawatch_open_incidents{contract,level}`` and ``slawatch_open_incident_oldest_age_seconds{contract,level}``
  (the age only for levels with an open incident). Without a projection, the count comes from the stored one.
* ``slawatch_month_online_ratio{contract}``: month-to-date online rate (1 when nothing was expected).
* ``slawatch_month_channel_seconds{contract,category}`` (online, offline, excluded, blind).
* ``slawatch_month_points_lost{contract,item}``: points lost so far by item (capped), items as in the report.
* ``slawatch_month_score{contract}``, ``slawatch_month_projected_share{contract}`` (a fraction: 1 = 100%),
  ``slawatch_month_projected_amount{contract}``: if nothing else happens this month.
* ``slawatch_claim_breaches{contract}``: the month's breaches of the 11:00 rule so far.
* ``slawatch_claim_channels_at_risk{contract,area}`` and ``slawatch_claim_points_at_risk{contract}``:
  channels offline now that breach at the next claim instant unless claimed (acknowledged) or back by then,
  and the points they would cost; ``slawatch_claim_next_timestamp_seconds{contract}``.

Alerts and storage:

* ``slawatch_alert_outbox_depth`` and ``slawatch_alert_outbox_parked`` (gauges): read through an
  :data:`OutboxProbe` (an async callable returning :class:`OutboxStats`) when one is wired, 0 otherwise;
  ``slawatch_alert_outbox_wired`` says which; ``slawatch_alert_outbox_messages{target,status}`` when the probe
  gives the counts by target.
* ``slawatch_database_up`` (gauge): 1 when the stored counts could be read.

Process metrics (``process_*``, ``python_*``) and HTTP request metrics (``http_*``, by
prometheus-fastapi-instrumentator) come from the application's own registry, appended by the router.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select

from collectors.probers import FactKind
from collectors.scheduler import ICMP, KINDS, Scheduler
from monitor.channels import ChannelState, channel_state
from monitor.contracts import Contract
from monitor.engine import Engine
from monitor.errors import StorageError
from monitor.events import NodeState
from monitor.inventory import Inventory
from monitor.live import LiveService
from monitor.projection import ITEMS, ContractFigures, MonthToDate, month_at
from monitor.service import Service
from monitor.storage.database import translate_errors
from monitor.storage.heartbeats import Heartbeat, read_heartbeat
from monitor.storage.tables import IncidentRow

__all__ = [
    "CONTENT_TYPE",
    "MetricsState",
    "OutboxProbe",
    "OutboxStats",
    "RttHistogram",
    "SlawatchCollector",
    "StoredView",
    "build_registry",
    "load_stored",
    "scrape",
]

log = logging.getLogger("slawatch.metrics")

# The classic text format (what every Prometheus scrapes); prometheus_client >= 0.22 names 1.0.0 "latest".
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

NODE_STATES = tuple(s.value for s in NodeState)
CHANNEL_STATES = tuple(s.value for s in ChannelState)
LEVELS = (1, 2, 3, 0)
STALE_AFTER_S = 30.0  # as `slawatch status`
WARM_CHANNELS = 2000  # channels a new tracker counts per turn of the event loop (~50-100 ms at 25-49 µs each)
REBUILD_AFTER_S = 60.0  # a projection that missed events stored elsewhere is rebuilt at most this often
RTT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

_incidents = cast(Table, IncidentRow.__table__)


def _build_version() -> str:
    try:
        return version("slawatch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


BUILD_VERSION = _build_version()


# ---------------------------------------------------------------------- the alert outbox
@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The alert outbox: messages waiting for delivery (``depth``, parked ones included) and ``parked`` (given
    up on after their retries, waiting for an operator)."""

    depth: int = 0
    parked: int = 0
    # messages by (target, status: pending, sent, parked), when the probe gives them (targets are configured:
    # a bounded label)
    by_target: Mapping[tuple[str, str], int] = field(default_factory=dict)


OutboxProbe = Callable[[], Awaitable[OutboxStats]]
"""What the alerts module gives the metrics: an async callable reading its outbox (one cheap query). The API
reads it from ``app.state.alert_outbox``; none wired: both gauges are 0."""


# ---------------------------------------------------------------------- state kept between scrapes
class RttHistogram:
    """ICMP round-trip times by area, cumulative since the process started (a Prometheus histogram)."""

    def __init__(self, buckets: Sequence[float] = RTT_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts: dict[str, list[int]] = {}  # area -> count per bucket (not cumulative), +Inf last
        self.sums: dict[str, float] = {}
        self._seen: dict[str, datetime] = {}  # node -> time of the answer observed last
        self._mark = 0  # how far the live service's answer log has been read

    def observe(self, area: str, seconds: float) -> None:
        counts = self.counts.setdefault(area, [0] * (len(self.buckets) + 1))
        i = next((k for k, le in enumerate(self.buckets) if seconds <= le), len(self.buckets))
        counts[i] += 1
        self.sums[area] = self.sums.get(area, 0.0) + seconds

    def observe_live(self, live: LiveService, inventory: Inventory, nodes: Iterable[str]) -> None:
        """Observe each of ``nodes`` whose answer is newer than the one observed last: only those answered since
        the previous scrape are looked at (the live service's answer log), not every node."""
        t = live.tracked
        polled = nodes if isinstance(nodes, set | frozenset) else set(nodes)
        self._mark, answered = t.answered.since(self._mark)
        for node_id in dict.fromkeys(answered):
            if node_id not in polled:
                continue
            at = t.last_result.get(node_id)
            if at is None or self._seen.get(node_id) == at:
                continue
            self._seen[node_id] = at
            r = t.icmp.get(node_id)
            if r is not None and r.ok and r.rtt_ms is not None:
                self.observe(inventory.area_of(node_id), r.rtt_ms / 1000.0)

    def family(self) -> HistogramMetricFamily:
        h = HistogramMetricFamily(
            "slawatch_icmp_rtt_seconds", "ICMP round-trip time of the answers, by area", labels=["area"]
        )
        for area in sorted(self.counts):
            running = 0
            buckets: list[tuple[str, float]] = []
            for le, n in zip((*map(repr, self.buckets), "+Inf"), self.counts[area], strict=True):
                running += n
                buckets.append((le, running))
            h.add_metric([area], buckets, self.sums[area])
        return h


@dataclass(slots=True)
class Baselines:
    """The polled targets' count by kind and the channels' :class:`AreaBaseline`, kept between scrapes for one
    inventory object and one targets list (the live scheduler keeps that list until the inventory changes or a
    commissioning time passes), so that a scrape counts only what is not up."""

    inventory: Inventory | None = None
    targets: Sequence[str] | None = None
    kinds: Counter[str] = field(default_factory=Counter)
    members: frozenset[str] = frozenset()
    area: AreaBaseline | None = None
    areas: tuple[Inventory, tuple[str, ...]] | None = None  # an inventory and its channels' areas, by position

    def channel_areas(self, inventory: Inventory) -> tuple[str, ...]:
        """The area of each channel (by position), kept for one inventory object (``serve`` counts channels by
        area from the engines at every scrape: asking the inventory 100,000 times took 0.15 s)."""
        if self.areas is None or self.areas[0] is not inventory:
            self.areas = (inventory, tuple(inventory.area_of(c.node) for c in inventory.channels))
        return self.areas[1]

    def get(
        self, inventory: Inventory, targets: Sequence[str], now: datetime
    ) -> tuple[Counter[str], frozenset[str], AreaBaseline]:
        if self.area is None or inventory is not self.inventory or targets is not self.targets:
            self.inventory, self.targets = inventory, targets
            self.kinds = Counter(str(inventory[n].kind) for n in targets)
            self.members = frozenset(targets)
            self.area = area_baseline(inventory, now)
        return self.kinds, self.members, self.area


@dataclass(slots=True)
class MetricsState:
    """What the metrics keep between scrapes: the month-to-date tracker of each contract (valid while the
    service keeps the same engine and the month lasts) and the RTT histogram. ``rebuild_after_s``: how often at
    most a projection that missed events stored by another process is rebuilt (see :func:`_engines`)."""

    rtt: RttHistogram = field(default_factory=RttHistogram)
    baselines: Baselines = field(default_factory=Baselines)
    trackers: dict[str, MonthToDate] = field(default_factory=dict)
    rebuild_after_s: float = REBUILD_AFTER_S
    last_rebuild: float | None = None  # time.monotonic() of the last rebuild asked by a scrape

    def _tracker(self, contract: Contract, engine: Engine, now: datetime) -> MonthToDate:
        tracker = self.trackers.get(contract.id)
        if tracker is None or not tracker.fits(contract, engine, now):
            tracker = self.trackers[contract.id] = MonthToDate(contract, engine, month_at(now, contract))
        return tracker

    async def warm(self, engines: Sequence[tuple[Contract, Engine]], now: datetime) -> None:
        """Give new trackers (a new process, projection or month) their first count of every channel
        :data:`WARM_CHANNELS` at a time, with the event loop's other work between the parts: done in one go it
        held the loop 2.5-4.9 s at 100,000 channels (a live cycle late by as much)."""
        for contract, engine in engines:
            tracker = self._tracker(contract, engine, now)
            while not tracker.warm(now, WARM_CHANNELS):
                await asyncio.sleep(0)
                if self.trackers.get(contract.id) is not tracker:  # replaced meanwhile (another scrape)
                    break

    def figures(self, engines: Sequence[tuple[Contract, Engine]], now: datetime) -> list[ContractFigures]:
        out: list[ContractFigures] = []
        for contract, engine in engines:
            out.append(self._tracker(contract, engine, now).figures(now))
        for gone in self.trackers.keys() - {c.id for c, _ in engines}:
            del self.trackers[gone]
        return out


# ---------------------------------------------------------------------- stored counts
@dataclass(frozen=True, slots=True)
class StoredView:
    """The stored counts a scrape reads before collecting (cheap aggregates only). ``error``: they could not
    be read (the database is down): the stored families are left out and ``slawatch_database_up`` is 0."""

    at: datetime
    contracts: tuple[str, ...] = ()
    open_incidents: Mapping[tuple[str, int], int] = field(default_factory=dict)  # (contract, level) -> count
    heartbeat: Heartbeat | None = None
    error: str | None = None


async def load_stored(service: Service, *, heartbeat_name: str = "live") -> StoredView:
    """Open incidents by contract and level (one grouped count), the contract ids and the heartbeat."""
    db = service.db
    stmt = (
        select(_incidents.c.contract_id, _incidents.c.level, func.count())
        .where(_incidents.c.end.is_(None))
        .group_by(_incidents.c.contract_id, _incidents.c.level)
    )
    with translate_errors("count the open incidents", db.url):
        async with db.engine.connect() as conn, conn.begin():
            rows = (await conn.execute(stmt)).all()
    contracts = tuple(c.id for c in await service.contracts())
    heartbeat = await read_heartbeat(db, heartbeat_name)
    counts = {(str(contract), int(level)): int(n) for contract, level, n in rows}
    return StoredView(at=service.clock(), contracts=contracts, open_incidents=counts, heartbeat=heartbeat)


# ---------------------------------------------------------------------- the collector
class SlawatchCollector(Collector):
    """Builds every family from ``live`` (may be None: no live loop in this process), ``stored`` (may be None:
    not read), the contracts' month-to-date ``figures``, the ``engines`` behind them (channel states when there
    is no live loop), the ``outbox`` (None: no alerts module wired) and the ``rtt`` histogram, each time it is
    collected. ``stale_after_s``: a running collector whose last cycle (or start) is older is not up."""

    def __init__(
        self,
        live: LiveService | None,
        stored: StoredView | None = None,
        *,
        stale_after_s: float = STALE_AFTER_S,
        figures: Sequence[ContractFigures] | None = None,
        engines: Sequence[tuple[Contract, Engine]] = (),
        outbox: OutboxStats | None = None,
        outbox_wired: bool = False,
        rtt: RttHistogram | None = None,
        baselines: Baselines | None = None,
    ) -> None:
        self.live = live
        self.stored = stored
        self.stale_after_s = stale_after_s
        self.figures = figures
        self.engines = engines
        self.outbox = outbox
        self.outbox_wired = outbox_wired or outbox is not None
        self.rtt = rtt
        self.baselines = baselines if baselines is not None else Baselines()

    def describe(self) -> Iterable[Metric]:
        return []  # names are checked at collection; nothing is collected at registration

    def collect(self) -> Iterator[Metric]:
        live = self.live
        info = GaugeMetricFamily("slawatch_build_info", "slawatch's version (value 1)", labels=["version", "python"])
        info.add_metric([BUILD_VERSION, platform.python_version()], 1)
        yield info
        yield from self._health()
        if live is not None:
            now = live.clock()
            if live.inventory is not None:
                yield from self._nodes_and_channels(live, live.inventory, now)
            sent = live.probes_by_kind
            probes_family = CounterMetricFamily("slawatch_probes", "Probes sent since start, by kind", labels=["kind"])
            for kind in sorted({*KINDS, *sent}):
                probes_family.add_metric([kind], sent[kind])
            yield probes_family
            facts = CounterMetricFamily(
                "slawatch_snmp_facts", "SNMP facts recorded on node timelines since start, by fact", labels=["fact"]
            )
            for kind in FactKind:
                facts.add_metric([kind.value], live.fact_counts[kind])
            yield facts
            yield CounterMetricFamily("slawatch_collector_cycles", "Live cycles run since start", value=live.cycles)
        elif self.engines:
            yield self._channels_family(_engine_channels_by_area(self.engines, self.baselines))
        if self.rtt is not None and (live is not None or self.rtt.counts):
            yield self.rtt.family()
        yield from self._incidents()
        if self.figures is not None:
            yield from self._month(self.figures)
        yield from self._outbox()
        yield from self._database()

    # ------------------------------------------------------------------ families
    def _health(self) -> Iterator[Metric]:
        live, stored = self.live, self.stored
        running: int | None = None
        up: int | None = None
        last_at: datetime | None = None
        if live is not None:
            now = live.clock()
            cycle = live.last_cycle
            last_at = cycle.at if cycle is not None else None
            seen = last_at or live.started_at
            running = 1
            up = 1 if seen is not None and (now - seen).total_seconds() <= self.stale_after_s else 0
        elif stored is not None and stored.error is None:
            beat = stored.heartbeat
            last_at = beat.at if beat is not None else None
            running = 1 if beat is not None and beat.running else 0
            if running:
                assert beat is not None
                up = 1 if (stored.at - beat.at).total_seconds() <= self.stale_after_s else 0
        if running is not None:
            yield GaugeMetricFamily(
                "slawatch_collector_running",
                "1 when a live collector runs (in this process, or by its stored heartbeat); 0 when none does "
                "(the API alone): slawatch_collector_up is then not exported",
                value=running,
            )
        if up is not None:
            yield GaugeMetricFamily(
                "slawatch_collector_up",
                f"1 when the running collector completed a cycle in the last {self.stale_after_s:g} s "
                "(in this process, else from its stored heartbeat); 0 when it runs but is silent",
                value=up,
            )
        if last_at is not None:
            yield GaugeMetricFamily(
                "slawatch_collector_last_cycle_timestamp_seconds",
                "Time of the last live cycle (Unix seconds)",
                value=last_at.timestamp(),
            )
        cycle = live.last_cycle if live is not None else None
        if cycle is not None:
            yield GaugeMetricFamily(
                "slawatch_collector_cycle_duration_seconds",
                "Plan and probe time of the last live cycle (storing excluded)",
                value=max(0.0, (cycle.finished - cycle.at).total_seconds()),
            )
            yield GaugeMetricFamily(
                "slawatch_collector_blind",
                "1 when the last cycle's ICMP batch was thrown away (every sentinel failed)",
                value=1 if cycle.blind else 0,
            )

    def _nodes_and_channels(self, live: LiveService, inventory: Inventory, now: datetime) -> Iterator[Metric]:
        states = live.states
        scheduler = live.scheduler
        polled = (
            scheduler.current_targets(inventory, now) if scheduler is not None else Scheduler.targets(inventory, now)
        )[ICMP]
        kinds, members, area = self.baselines.get(inventory, polled, now)
        failing = not_up(states)
        up = NodeState.UP
        by_kind: Counter[tuple[str, str]] = Counter({(kind, up.value): n for kind, n in kinds.items()})
        for node_id in failing:  # from the baseline (every polled node up), only what is not up moves
            if node_id in members:
                kind = str(inventory[node_id].kind)
                by_kind[(kind, up.value)] -= 1
                by_kind[(kind, states[node_id].value)] += 1
        nodes = GaugeMetricFamily(
            "slawatch_nodes", "Polled active nodes by kind and confirmed state", labels=["kind", "state"]
        )
        for kind in sorted(kinds):
            for state in NODE_STATES:
                nodes.add_metric([kind, state], by_kind[(kind, state)])
        yield nodes
        yield self._channels_family(channel_states_by_area(inventory, states, now, area, failing))
        if self.rtt is not None:
            self.rtt.observe_live(live, inventory, members)

    @staticmethod
    def _channels_family(by_area: Counter[tuple[str, str]]) -> Metric:
        channels = GaugeMetricFamily(
            "slawatch_channels",
            "Channels by area and state (the topmost node on the path that is not up decides; SPEC §2)",
            labels=["area", "state"],
        )
        for area in sorted({a for a, _ in by_area}):
            for state in CHANNEL_STATES:
                channels.add_metric([area, state], by_area[(area, state)])
        return channels

    def _incidents(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "slawatch_open_incidents",
            "Open incidents by contract and level (0: a fault below level 3)",
            labels=["contract", "level"],
        )
        if self.figures is not None:
            ages = GaugeMetricFamily(
                "slawatch_open_incident_oldest_age_seconds",
                "Age of the oldest open incident by contract and level (levels with an open incident only)",
                labels=["contract", "level"],
            )
            for f in self.figures:
                for level in LEVELS:
                    counts.add_metric([f.contract, str(level)], f.open_by_level.get(level, 0))
                    start = f.oldest_open.get(level)
                    if start is not None:
                        ages.add_metric([f.contract, str(level)], max(0.0, (f.as_of - start).total_seconds()))
            yield counts
            yield ages
            return
        stored = self.stored
        if stored is None or stored.error is not None:
            return
        for contract in stored.contracts:
            for level in LEVELS:
                counts.add_metric([contract, str(level)], stored.open_incidents.get((contract, level), 0))
        yield counts

    @staticmethod
    def _month(figures: Sequence[ContractFigures]) -> Iterator[Metric]:
        def gauge(name: str, doc: str, labels: Sequence[str] = ("contract",)) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        ratio = gauge("slawatch_month_online_ratio", "Month-to-date online rate (1 when nothing was expected)")
        secs = gauge(
            "slawatch_month_channel_seconds",
            "Month-to-date channel-seconds by category (online + offline are expected)",
            ("contract", "category"),
        )
        lost = gauge(
            "slawatch_month_points_lost", "Points lost so far this month, by item (capped)", ("contract", "item")
        )
        score = gauge("slawatch_month_score", "Month-to-date score (100 less the points lost so far)")
        share = gauge("slawatch_month_projected_share", "Share of the base paid for the score so far (1 = 100%)")
        amount = gauge("slawatch_month_projected_amount", "Amount paid for the score so far (base x share)")
        breaches = gauge("slawatch_claim_breaches", "Breaches of the 11:00 claim rule so far this month")
        at_risk = gauge(
            "slawatch_claim_channels_at_risk",
            "Channels offline now that breach the claim rule at the next claim instant unless claimed",
            ("contract", "area"),
        )
        points = gauge("slawatch_claim_points_at_risk", "Points the channels at risk would cost at the next claim")
        next_claim = gauge("slawatch_claim_next_timestamp_seconds", "The next claim instant (Unix seconds)")
        for f in figures:
            c = f.contract
            ratio.add_metric([c], float(f.online_rate))
            s = f.seconds
            for category, us in (("online", s.online), ("offline", s.offline), ("excluded", s.excluded)):
                secs.add_metric([c, category], us / 1_000_000)
            secs.add_metric([c, "blind"], s.blind / 1_000_000)
            for item in ITEMS:
                lost.add_metric([c, item], float(f.lost[item]))
            score.add_metric([c], float(f.score))
            share.add_metric([c], float(f.share))
            amount.add_metric([c], float(f.amount))
            breaches.add_metric([c], f.claim_breaches)
            for area in sorted(f.at_risk):
                at_risk.add_metric([c, area], f.at_risk[area])
            points.add_metric([c], float(f.at_risk_points))
            next_claim.add_metric([c], f.next_claim.timestamp())
        yield from (ratio, secs, lost, score, share, amount, breaches, at_risk, points, next_claim)

    def _outbox(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "slawatch_alert_outbox_wired",
            "1 when an alerts outbox is wired into the metrics (0: the outbox gauges are 0)",
            value=1 if self.outbox_wired else 0,
        )
        stats = self.outbox if self.outbox is not None else None if self.outbox_wired else OutboxStats()
        if stats is None:
            return  # wired but unreadable this time: no made-up figure
        yield GaugeMetricFamily(
            "slawatch_alert_outbox_depth", "Alert messages waiting for delivery (parked included)", value=stats.depth
        )
        yield GaugeMetricFamily(
            "slawatch_alert_outbox_parked", "Alert messages parked after their retries", value=stats.parked
        )
        if stats.by_target:
            messages = GaugeMetricFamily(
                "slawatch_alert_outbox_messages",
                "Alert messages in the outbox by target and status",
                labels=["target", "status"],
            )
            for (target, status), n in sorted(stats.by_target.items()):
                messages.add_metric([target, status], n)
            yield messages

    def _database(self) -> Iterator[Metric]:
        stored = self.stored
        if stored is not None:
            yield GaugeMetricFamily(
                "slawatch_database_up", "1 when the stored counts could be read", value=0 if stored.error else 1
            )


@dataclass(frozen=True, slots=True)
class AreaBaseline:
    """Channels by (area, online|inactive) as if every node were up, and each channel node's (area, channels,
    active) at a time: what a scrape would otherwise count over every channel (100,000 at a province). Valid
    while the inventory is the same object and no commissioning or decommissioning time passes."""

    counts: Counter[tuple[str, str]]
    nodes: Mapping[str, tuple[str, int, bool]]


def area_baseline(inventory: Inventory, now: datetime) -> AreaBaseline:
    online, inactive = ChannelState.ONLINE.value, ChannelState.INACTIVE.value
    counts: Counter[tuple[str, str]] = Counter()
    nodes: dict[str, tuple[str, int, bool]] = {}
    for node in inventory.nodes():
        if not node.channels:
            continue
        area, active = inventory.area_of(node.id), node.active_at(now)
        nodes[node.id] = (area, node.channels, active)
        counts[(area, online if active else inactive)] += node.channels
    return AreaBaseline(counts, nodes)


def not_up(states: Mapping[str, NodeState]) -> list[str]:
    """The nodes whose confirmed state is not up (few, in a network mostly up)."""
    up = NodeState.UP
    return [n for n, state in states.items() if state is not up]


def channel_states_by_area(
    inventory: Inventory,
    states: Mapping[str, NodeState],
    now: datetime,
    baseline: AreaBaseline | None = None,
    failing: Sequence[str] | None = None,
) -> Counter[tuple[str, str]]:
    """Channels by (area, state) at ``now`` by SPEC §2's rule (:func:`monitor.channels.channel_state`).

    Starts from the ``baseline`` (every node up: each channel online when its node is active, else inactive;
    made here when not given) and decides again only the channels under a node that is not up (``failing``:
    those nodes, when the caller has them), so a scrape costs what is broken, not the size of the network."""
    base = baseline or area_baseline(inventory, now)
    out = Counter(base.counts)
    online, inactive = ChannelState.ONLINE.value, ChannelState.INACTIVE.value
    affected: set[str] = set()
    channels = inventory.channels
    for node_id in not_up(states) if failing is None else failing:
        if node_id in inventory:
            affected.update(channels[pos].node for pos in inventory.channels_under[node_id])
    for node_id in affected:
        area, n, active = base.nodes[node_id]
        decided = channel_state(inventory, node_id, states, now)[0].value
        out[(area, online if active else inactive)] -= n
        out[(area, decided)] += n
    return +out


def _engine_channels_by_area(
    engines: Sequence[tuple[Contract, Engine]], baselines: Baselines | None = None
) -> Counter[tuple[str, str]]:
    """Channels by (area, state) as the projection's engines hold them (each channel once, from the first
    contract that covers it); ``baselines`` keeps the channels' areas between scrapes."""
    out: Counter[tuple[str, str]] = Counter()
    seen: set[int] = set()
    kept = baselines or Baselines()
    for _contract, engine in engines:
        areas = kept.channel_areas(engine.inventory)
        positions = [p for p in engine.channels if p not in seen] if seen else list(engine.channels)
        seen.update(positions)
        # counted in C (zip, map, Counter), then the few (area, state) pairs named: 100,000 channels in ~15 ms
        pairs = Counter(zip(map(areas.__getitem__, positions), map(engine.state.__getitem__, positions), strict=True))
        for (area, state), n in pairs.items():
            out[(area, state.value)] += n
    return out


def build_registry(
    live: LiveService | None,
    stored: StoredView | None = None,
    *,
    stale_after_s: float = STALE_AFTER_S,
    figures: Sequence[ContractFigures] | None = None,
    engines: Sequence[tuple[Contract, Engine]] = (),
    outbox: OutboxStats | None = None,
    outbox_wired: bool = False,
    rtt: RttHistogram | None = None,
    baselines: Baselines | None = None,
) -> CollectorRegistry:
    """A NEW registry (never the global one) holding a :class:`SlawatchCollector` over what it is given."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        SlawatchCollector(
            live,
            stored,
            stale_after_s=stale_after_s,
            figures=figures,
            engines=engines,
            outbox=outbox,
            outbox_wired=outbox_wired,
            rtt=rtt,
            baselines=baselines,
        )
    )
    return registry


async def _engines(
    service: Service, state: MetricsState, *, in_process: bool
) -> tuple[tuple[Contract, Engine], ...] | None:
    """The projection's engines, built when there is none. With a live loop in this process (``in_process``)
    every event goes through this service, which keeps them up to date (an ingest that meets events stored
    elsewhere rebuilds them itself). Without one (``slawatch serve`` beside a collector in another process),
    the events stored elsewhere since the previous scrape are applied to them (a few rows, nothing stored:
    the collector stored their incidents); when that cannot be done incrementally they are rebuilt, at most
    every ``rebuild_after_s``. Above the service's ``rebuild_behind_after`` stored events a build runs beside
    the loop (a worker thread) and this scrape uses what there is (None at first). A projection built here for
    reading is never stored: it could be older than what the collector stored. None when none can be built."""
    engines = service.projection_engines()
    if engines is None and service.projection_building():  # being built beside the loop
        return None
    try:
        if engines is not None:
            if in_process or await service.catch_up_projection():
                return service.projection_engines() or engines
            if service.projection_building():
                return engines
            last = state.last_rebuild
            if last is not None and time.monotonic() - last < state.rebuild_after_s:
                return engines  # behind: rebuilt by a later scrape
        state.last_rebuild = time.monotonic()
        threshold = service.rebuild_behind_after
        if threshold is not None and await service.repo.count_events() > threshold:
            service.build_projection_beside(store=False)  # a long history: the loop stays free
            return engines
        await service.rebuild(store=False)
    except StorageError as exc:
        log.warning("metrics: incident projection unavailable", extra={"error": str(exc)})
    return service.projection_engines() or engines


async def scrape(
    live: LiveService | None,
    service: Service,
    *,
    state: MetricsState | None = None,
    outbox: OutboxProbe | None = None,
    extra: Sequence[CollectorRegistry] = (),
) -> bytes:
    """The exposition (text format 0.0.4): the stored counts, the outbox and the projection read first, then
    the registry rendered at once; ``extra`` registries (process and HTTP metrics) appended."""
    state = state or MetricsState()
    name = live.live.heartbeat_name if live is not None else "live"
    try:
        stored = await load_stored(service, heartbeat_name=name)
    except StorageError as exc:
        log.warning("metrics: stored counts unavailable", extra={"error": str(exc)})
        stored = StoredView(at=service.clock(), error=str(exc))
    outbox_stats: OutboxStats | None = None
    if outbox is not None:
        try:
            outbox_stats = await outbox()
        except Exception as exc:  # the alerts module's failure must not take the metrics down
            log.warning("metrics: alert outbox unreadable", extra={"error": str(exc)})
    if stored.error is None:
        engines = await _engines(service, state, in_process=live is not None)
    else:
        engines = service.projection_engines()
    figures: list[ContractFigures] | None = None
    if engines:
        while True:  # warming yields to the loop: a rebuilt projection may replace the engines meanwhile
            await state.warm(engines, live.clock() if live is not None else service.clock())
            current = service.projection_engines()
            if current is None or current == engines:
                break
            engines = current
        figures = state.figures(engines, live.clock() if live is not None else service.clock())
    registry = build_registry(
        live,
        stored,
        figures=figures,
        engines=engines or (),
        outbox=outbox_stats,
        outbox_wired=outbox is not None,
        rtt=state.rtt,
        baselines=state.baselines,
    )
    return generate_latest(registry) + b"".join(generate_latest(r) for r in extra)
