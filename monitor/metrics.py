"""Prometheus metrics, built at scrape time (a custom collector, as in client_python's "custom collectors").

Nothing is registered at import time and the global default registry is never used: :func:`build_registry`
makes a NEW :class:`~prometheus_client.CollectorRegistry` holding one :class:`SlawatchCollector`, whose
:meth:`~SlawatchCollector.collect` reads the live service's in-memory state when Prometheus scrapes.
:func:`scrape` is what ``GET /metrics`` calls: it reads the few stored counts (async, one cheap query each),
then builds and renders the registry in the event loop's thread, so no live cycle interleaves with the read.

Labels are bounded by area, kind, state, contract and level: never one series per channel or per node.

* ``slawatch_nodes{kind,state}`` (gauge): polled active nodes by kind and confirmed state.
* ``slawatch_channels{area,state}`` (gauge): channels by area and state (online, offline, unknown, inactive),
  by SPEC §2 as ``slawatch status``.
* ``slawatch_icmp_rtt_avg_seconds{area}`` and ``slawatch_icmp_rtt_nodes{area}`` (gauges): the mean round-trip
  time of the area's fresh ICMP answers (the last ``blind_after`` intervals) and how many nodes it is over.
* ``slawatch_probes_total{kind}`` (counter): probes sent (``icmp``, ``snmp``) since the process started.
* ``slawatch_snmp_facts_total{fact}`` (counter): SNMP facts recorded since the process started.
* ``slawatch_collector_up`` (gauge): 1 when the collector cycled within ``stale_after_s`` (30 s).
* ``slawatch_collector_last_cycle_timestamp_seconds`` (gauge): the last cycle's time (Unix seconds).
* ``slawatch_collector_cycle_duration_seconds`` (gauge): plan + probe time of the last cycle (not the store).
* ``slawatch_collector_blind`` (gauge): 1 when the last cycle's ICMP batch was blind (every sentinel failed).
* ``slawatch_collector_cycles_total`` (counter): cycles run since the process started.
* ``slawatch_open_incidents{contract,level}`` (gauge): open incidents of the stored projection (level 0: a
  fault, below level 3), every level of every contract present (0 when none).
* ``slawatch_database_up`` (gauge): 1 when the stored counts could be read.

Without a live service in this process (``slawatch serve``) only the stored families are exported, and the
collector's health comes from its stored heartbeat (``up``, last cycle time; no duration, no blind flag). The
month's availability or deductions are not exported: they need a full assessment (a replay of the month's
events), too dear for every scrape; the monthly report gives them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select

from collectors.probers import FactKind
from collectors.scheduler import ICMP, KINDS, Scheduler
from monitor.channels import ChannelState, channel_state
from monitor.errors import StorageError
from monitor.events import NodeState
from monitor.inventory import Inventory
from monitor.live import LiveService
from monitor.service import Service
from monitor.storage.database import translate_errors
from monitor.storage.heartbeats import Heartbeat, read_heartbeat
from monitor.storage.tables import IncidentRow

__all__ = [
    "CONTENT_TYPE",
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

_incidents = cast(Table, IncidentRow.__table__)


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


class SlawatchCollector(Collector):
    """Builds every family from ``live`` (may be None: no live service in this process) and ``stored`` (may
    be None: not read) each time it is collected. ``stale_after_s``: a collector whose last cycle (or start)
    is older is not up."""

    def __init__(
        self, live: LiveService | None, stored: StoredView | None = None, *, stale_after_s: float = STALE_AFTER_S
    ) -> None:
        self.live = live
        self.stored = stored
        self.stale_after_s = stale_after_s

    def describe(self) -> Iterable[Metric]:
        return []  # names are checked at collection; nothing is collected at registration

    def collect(self) -> Iterator[Metric]:
        live = self.live
        yield from self._health()
        if live is not None:
            now = live.clock()
            if live.inventory is not None:
                yield from self._nodes_and_channels(live, live.inventory, now)
            sent: Counter[str] = Counter()
            for (kind, _node), n in live.probes.items():
                sent[kind] += n
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
        yield from self._stored()

    # ------------------------------------------------------------------ families
    def _health(self) -> Iterator[Metric]:
        live, stored = self.live, self.stored
        up = GaugeMetricFamily(
            "slawatch_collector_up",
            f"1 when the live collector completed a cycle in the last {self.stale_after_s:g} s "
            "(in this process, else from its stored heartbeat)",
        )
        last_at: datetime | None = None
        if live is not None:
            now = live.clock()
            cycle = live.last_cycle
            last_at = cycle.at if cycle is not None else None
            seen = last_at or live.started_at
            up.add_metric([], 1 if seen is not None and (now - seen).total_seconds() <= self.stale_after_s else 0)
        elif stored is not None and stored.error is None:
            beat = stored.heartbeat
            last_at = beat.at if beat is not None else None
            fresh = beat is not None and beat.running and (stored.at - beat.at).total_seconds() <= self.stale_after_s
            up.add_metric([], 1 if fresh else 0)
        else:
            up.add_metric([], 0)
        yield up
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
        polled = Scheduler.targets(inventory, now)[ICMP]
        by_kind: Counter[tuple[str, str]] = Counter()
        kinds: set[str] = set()
        for node_id in polled:
            kind = inventory[node_id].kind.value
            kinds.add(kind)
            by_kind[(kind, states.get(node_id, NodeState.UP).value)] += 1
        nodes = GaugeMetricFamily(
            "slawatch_nodes", "Polled active nodes by kind and confirmed state", labels=["kind", "state"]
        )
        for kind in sorted(kinds):
            for state in NODE_STATES:
                nodes.add_metric([kind, state], by_kind[(kind, state)])
        yield nodes

        channels = GaugeMetricFamily(
            "slawatch_channels",
            "Channels by area and state (the topmost node on the path that is not up decides; SPEC §2)",
            labels=["area", "state"],
        )
        by_area = channel_states_by_area(inventory, states, now)
        for area in sorted({a for a, _ in by_area}):
            for state in CHANNEL_STATES:
                channels.add_metric([area, state], by_area[(area, state)])
        yield channels

        # RTT: answers from the last `blind_after` ICMP intervals (older ones are what makes a node unknown)
        t = live.tracked
        window = live.live.blind_after * live.live.icmp_interval_s
        rtt_sum: dict[str, float] = {}
        rtt_n: Counter[str] = Counter()
        for node_id in polled:
            r = t.icmp.get(node_id)
            at = t.last_result.get(node_id)
            if r is None or not r.ok or r.rtt_ms is None or at is None or (now - at).total_seconds() > window:
                continue
            area = inventory.area_of(node_id)
            rtt_sum[area] = rtt_sum.get(area, 0.0) + r.rtt_ms / 1000.0
            rtt_n[area] += 1
        avg = GaugeMetricFamily(
            "slawatch_icmp_rtt_avg_seconds", "Mean ICMP round-trip time of the area's fresh answers", labels=["area"]
        )
        count = GaugeMetricFamily(
            "slawatch_icmp_rtt_nodes", "Nodes in the area's mean ICMP round-trip time", labels=["area"]
        )
        for area in sorted(rtt_n):
            avg.add_metric([area], rtt_sum[area] / rtt_n[area])
            count.add_metric([area], rtt_n[area])
        yield avg
        yield count

    def _stored(self) -> Iterator[Metric]:
        stored = self.stored
        if stored is None:
            return
        yield GaugeMetricFamily(
            "slawatch_database_up", "1 when the stored counts could be read", value=0 if stored.error else 1
        )
        if stored.error is not None:
            return
        incidents = GaugeMetricFamily(
            "slawatch_open_incidents",
            "Open incidents of the stored projection by contract and level (0: a fault below level 3)",
            labels=["contract", "level"],
        )
        for contract in stored.contracts:
            for level in LEVELS:
                incidents.add_metric([contract, str(level)], stored.open_incidents.get((contract, level), 0))
        yield incidents


def channel_states_by_area(
    inventory: Inventory, states: Mapping[str, NodeState], now: datetime
) -> Counter[tuple[str, str]]:
    """Channels by (area, state) at ``now`` by SPEC §2's rule (:func:`monitor.channels.channel_state`)."""
    out: Counter[tuple[str, str]] = Counter()
    decided: dict[str, str] = {}  # channel node -> its channels' state (an NVR's channels share it)
    for channel in inventory.channels:
        node_id = channel.node
        state = decided.get(node_id)
        if state is None:
            state = decided[node_id] = channel_state(inventory, node_id, states, now)[0].value
        out[(inventory.area_of(node_id), state)] += 1
    return out


def build_registry(
    live: LiveService | None, stored: StoredView | None = None, *, stale_after_s: float = STALE_AFTER_S
) -> CollectorRegistry:
    """A NEW registry (never the global one) holding a :class:`SlawatchCollector` over ``live``/``stored``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SlawatchCollector(live, stored, stale_after_s=stale_after_s))
    return registry


async def scrape(live: LiveService | None, service: Service) -> bytes:
    """The exposition (text format 0.0.4): the stored counts read first, then the registry rendered at once."""
    name = live.live.heartbeat_name if live is not None else "live"
    try:
        stored = await load_stored(service, heartbeat_name=name)
    except StorageError as exc:
        log.warning("metrics: stored counts unavailable", extra={"error": str(exc)})
        stored = StoredView(at=service.clock(), error=str(exc))
    return generate_latest(build_registry(live, stored))
