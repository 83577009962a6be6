"""Prometheus metrics built at scrape time from a real LiveService (SQLite) fed deterministic probe results.

The live service runs its production cycle (plan, probe, ingest, SNMP facts) over scripted ICMP and SNMP
probers injected with ``probers=`` and a hand-driven clock: no packets, no root. ``live_api`` (shared with
``test_nodes.py``) builds the real app over it, as ``slawatch run`` does (``app.state.live``).
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from collectors.probers import ProbeResult
from collectors.snmp import SnmpFacts
from monitor.contracts import DEFAULT_CONTRACT_ID
from monitor.events import NodeState, StateEvent
from monitor.inventory import Inventory, Node, NodeKind, SnmpSettings
from monitor.live import LiveService, LiveSettings
from monitor.metrics import (
    BUILD_VERSION,
    OutboxStats,
    StoredView,
    build_registry,
    channel_states_by_area,
    load_stored,
)
from monitor.projection import month_at
from monitor.service import Service
from monitor.settings import Settings
from monitor.status import channel_states

COMMUNITY = "mx-Secret-c0mmunity"
AUTH_KEY = "auth-Secret-k3y-1234"
PRIV_KEY = "priv-Secret-k3y-5678"
SECRETS = (COMMUNITY, AUTH_KEY, PRIV_KEY)
SENTINEL = "_sentinel.1"
STEP_S = 10.0
LIVE = LiveSettings(
    icmp_interval_s=STEP_S,
    snmp_interval_s=STEP_S,
    suspect_interval_s=STEP_S / 2,
    icmp_count=1,
    rate_pps=1_000_000.0,
    blind_after=3,
)
RTT_MS = {"T1": 2.0, "T2": 4.0}


def network() -> Inventory:
    """T1 / B1 / CPE-1 (6 cameras: level 3 when cut), CPE-2 (2 cameras, SNMPv3); T2 / CPE-3 (SNMPv2c) / NVR (8)."""
    v3 = SnmpSettings(
        version="3", user="mon", auth_protocol="SHA", auth_key=AUTH_KEY, priv_protocol="AES", priv_key=PRIV_KEY
    )
    nodes = [
        Node("T1", NodeKind.AREA),
        Node("B1", NodeKind.BRANCH, parent="T1"),
        Node("CPE-1", NodeKind.CPE, parent="B1", address="127.61.1.1"),
        *(
            Node(f"CPE-1.{c}", NodeKind.CAMERA, parent="CPE-1", address=f"127.61.1.{10 + c}", channels=1)
            for c in range(1, 7)
        ),
        Node("CPE-2", NodeKind.CPE, parent="B1", address="127.61.2.1", snmp=v3),
        *(
            Node(f"CPE-2.{c}", NodeKind.CAMERA, parent="CPE-2", address=f"127.61.2.{10 + c}", channels=1)
            for c in range(1, 3)
        ),
        Node("T2", NodeKind.AREA),
        Node("CPE-3", NodeKind.CPE, parent="T2", address="127.61.3.1", snmp=SnmpSettings(community=COMMUNITY)),
        Node("CPE-3.nvr", NodeKind.NVR, parent="CPE-3", address="127.61.3.10", channels=8),
    ]
    return Inventory(nodes)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class ScriptedIcmp:
    """Every node answers (RTT by area) except those in ``failing`` (the sentinel may fail too)."""

    kind = "icmp"

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.failing: set[str] = set()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def probe(self, nodes: Sequence[Node]) -> dict[str, ProbeResult]:
        out: dict[str, ProbeResult] = {}
        for node in nodes:
            if node.id in self.failing:
                out[node.id] = ProbeResult(node.id, self.kind, False, loss=1.0, error="timeout")
            else:
                area = self.inventory.area_of(node.id) if node.id in self.inventory else ""
                out[node.id] = ProbeResult(node.id, self.kind, True, rtt_ms=RTT_MS.get(area, 0.5), loss=0.0)
        return out


def snmp_facts(node: str, oper: int, changed: tuple[int, int] | None = None) -> SnmpFacts:
    return SnmpFacts(node, oper, False, changed, None, None, None, None, None)


class ScriptedSnmp:
    """Answers ``script[node]`` (one result per probe, the last one repeated); an agent answering "up" else."""

    kind = "snmp"

    def __init__(self) -> None:
        self.script: dict[str, list[ProbeResult]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def probe(self, nodes: Sequence[Node]) -> dict[str, ProbeResult]:
        out: dict[str, ProbeResult] = {}
        for node in nodes:
            queue = self.script.get(node.id)
            if queue:
                out[node.id] = queue.pop(0) if len(queue) > 1 else queue[0]
            else:
                out[node.id] = ProbeResult(node.id, self.kind, True, facts=snmp_facts(node.id, 1))
        return out


@dataclass
class LiveApi:
    client: httpx.AsyncClient
    service: Service
    live: LiveService
    inventory: Inventory
    clock: Clock
    icmp: ScriptedIcmp
    snmp: ScriptedSnmp
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str = "viewer") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def step(self, seconds: float = STEP_S) -> None:
        """Advance the clock one interval and run one live cycle (SNMP batches finish before the next)."""
        self.clock.now += timedelta(seconds=seconds)
        await self.live.cycle()
        for _ in range(3):
            await asyncio.sleep(0)

    async def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        r = await self.client.get("/metrics")
        assert r.status_code == 200, r.text
        return samples(r.text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


@asynccontextmanager
async def live_api(tmp_path: Path, *, with_live: bool = True) -> AsyncIterator[LiveApi]:
    """The real app on SQLite over ``network()``; a started LiveService on scripted probers (not cycled yet)."""
    app = create_app(Settings(data_dir=tmp_path, down_after=1, up_after=1))
    inventory = network()
    async with app.router.lifespan_context(app):
        service: Service = app.state.service
        await service.import_inventory(inventory)
        tokens = {role: await service.repo.create_token(f"{role}-1", role) for role in ("viewer", "admin")}
        clock = Clock(datetime.now(UTC).replace(microsecond=0))
        icmp, snmp = ScriptedIcmp(inventory), ScriptedSnmp()
        live = LiveService(service, LIVE, probers={"icmp": icmp, "snmp": snmp}, clock=clock)
        await live.start()
        if with_live:
            app.state.live = live
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
                yield LiveApi(client, service, live, inventory, clock, icmp, snmp, tokens)
        finally:
            await live.stop()


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[LiveApi]:
    async with live_api(tmp_path) as api:
        yield api


# ---------------------------------------------------------------------- tests


async def test_one_cpe_down_after_one_cycle(lab: LiveApi) -> None:
    lab.icmp.failing = {"CPE-1"}  # the CPE alone: its cameras answer but are behind it
    await lab.step()
    m = await lab.scrape()
    assert m[key("slawatch_nodes", kind="cpe", state="down")] == 1
    assert m[key("slawatch_nodes", kind="cpe", state="up")] == 2
    assert m[key("slawatch_nodes", kind="camera", state="up")] == 8
    assert m[key("slawatch_nodes", kind="nvr", state="up")] == 1
    assert m[key("slawatch_nodes", kind="camera", state="unknown")] == 0
    assert ("slawatch_nodes", (("kind", "area"), ("state", "up"))) not in m  # areas are not polled
    assert m[key("slawatch_channels", area="T1", state="offline")] == 6
    assert m[key("slawatch_channels", area="T1", state="online")] == 2
    assert m[key("slawatch_channels", area="T2", state="online")] == 8
    assert m[key("slawatch_channels", area="T2", state="offline")] == 0
    # open incidents from the stored projection: CPE-1's 6 channels are a level 3
    incidents = await lab.service.repo.load_incidents(DEFAULT_CONTRACT_ID)
    assert [(i["scope"], i["level"], i["open"]) for i in incidents] == [("CPE-1", 3, True)]
    assert m[key("slawatch_open_incidents", contract="default", level="3")] == 1
    for level in ("0", "1", "2"):
        assert m[key("slawatch_open_incidents", contract="default", level=level)] == 0
    # collector health
    assert m[key("slawatch_collector_up")] == 1
    assert m[key("slawatch_collector_blind")] == 0
    assert m[key("slawatch_collector_last_cycle_timestamp_seconds")] == lab.clock.now.timestamp()
    assert m[key("slawatch_collector_cycle_duration_seconds")] == 0  # the scripted probers take no clock time
    assert m[key("slawatch_collector_cycles_total")] == 1
    assert m[key("slawatch_database_up")] == 1
    # 12 polled nodes and the sentinel; the SNMP batch (CPE-2, CPE-3) ran beside the cycle
    assert m[key("slawatch_probes_total", kind="icmp")] == 13
    assert m[key("slawatch_probes_total", kind="snmp")] == 2
    # RTT by area: a histogram of the answers (CPE-1 failed), never an average
    assert m[key("slawatch_icmp_rtt_seconds_count", area="T1")] == 9
    assert m[key("slawatch_icmp_rtt_seconds_sum", area="T1")] == pytest.approx(9 * 0.002)
    assert m[key("slawatch_icmp_rtt_seconds_bucket", area="T1", le="0.001")] == 0
    assert m[key("slawatch_icmp_rtt_seconds_bucket", area="T1", le="0.002")] == 9
    assert m[key("slawatch_icmp_rtt_seconds_bucket", area="T2", le="0.002")] == 0
    assert m[key("slawatch_icmp_rtt_seconds_bucket", area="T2", le="0.005")] == 2
    assert m[key("slawatch_icmp_rtt_seconds_bucket", area="T2", le="+Inf")] == 2
    assert not any(name.startswith("slawatch_icmp_rtt_avg") for name, _ in m)
    # the same answers are not observed twice; the next cycle's are
    m = await lab.scrape()
    assert m[key("slawatch_icmp_rtt_seconds_count", area="T1")] == 9
    await lab.step()
    m = await lab.scrape()  # CPE-1's cameras are held behind it: CPE-2 and its two cameras answer
    assert m[key("slawatch_icmp_rtt_seconds_count", area="T1")] == 12
    # bounded labels: no node or channel ids anywhere
    labels = {v for _, ls in m for _, v in ls}
    assert not any(v.startswith("CPE-") for v in labels), labels


async def test_counters_grow_and_facts_are_counted(lab: LiveApi) -> None:
    lab.snmp.script["CPE-3"] = [ProbeResult("CPE-3", "snmp", True, facts=snmp_facts("CPE-3", 2))]
    lab.snmp.script["CPE-2"] = [ProbeResult("CPE-2", "snmp", False, error="timeout")]
    await lab.step()
    first = await lab.scrape()
    assert first[key("slawatch_snmp_facts_total", fact="oper_status")] == 0  # taken by the next cycle
    await lab.step()
    m = await lab.scrape()
    assert m[key("slawatch_snmp_facts_total", fact="oper_status")] == 1  # CPE-3's uplink is down(2)
    assert m[key("slawatch_snmp_facts_total", fact="snmp_unavailable")] == 1  # CPE-2 silent, ICMP answers
    assert m[key("slawatch_snmp_facts_total", fact="reboot")] == 0
    assert m[key("slawatch_probes_total", kind="icmp")] == 26
    assert m[key("slawatch_collector_cycles_total")] == 2
    await lab.step()  # facts are not repeated while nothing changes
    m = await lab.scrape()
    assert m[key("slawatch_snmp_facts_total", fact="oper_status")] == 1
    assert m[key("slawatch_snmp_facts_total", fact="snmp_unavailable")] == 1
    assert lab.live.states.get("CPE-2") is NodeState.UP and lab.live.states.get("CPE-3") is NodeState.UP


async def test_blind_cycle_and_stale_collector(lab: LiveApi) -> None:
    await lab.step()
    lab.icmp.failing = {SENTINEL}  # our own uplink: every answer of the batch is thrown away
    await lab.step()
    m = await lab.scrape()
    assert m[key("slawatch_collector_blind")] == 1
    assert m[key("slawatch_nodes", kind="cpe", state="unknown")] == 3
    assert m[key("slawatch_nodes", kind="cpe", state="down")] == 0
    assert m[key("slawatch_channels", area="T1", state="unknown")] == 8
    assert m[key("slawatch_channels", area="T1", state="offline")] == 0
    assert m[key("slawatch_open_incidents", contract="default", level="3")] == 0  # blind is never an outage
    lab.clock.now += timedelta(seconds=31)  # no cycle for longer than stale_after_s
    m = await lab.scrape()
    assert m[key("slawatch_collector_up")] == 0


async def test_registry_is_new_and_channels_agree_with_status(lab: LiveApi) -> None:
    lab.icmp.failing = {"CPE-3"}
    await lab.step()
    stored = await load_stored(lab.service)
    registry = build_registry(lab.live, stored)
    assert registry is not build_registry(lab.live, stored)
    m = samples(generate_latest(registry).decode())
    assert m[key("slawatch_channels", area="T2", state="offline")] == 8
    assert m[key("slawatch_open_incidents", contract="default", level="0")] == 0
    assert m[key("slawatch_open_incidents", contract="default", level="3")] == 1  # 8 NVR channels: level 3
    # nothing ever lands on the global registry
    assert not any(f.name.startswith("slawatch") for f in REGISTRY.collect())
    # by area, the same counts as `slawatch status`
    now = lab.clock.now
    by_area = channel_states_by_area(lab.inventory, lab.live.states, now)
    totals: dict[str, int] = {}
    for (_area, state), n in by_area.items():
        totals[state] = totals.get(state, 0) + n
    assert totals == dict(channel_states(lab.inventory, dict(lab.live.states), now))
    # the stored part alone, as when the database is unreachable
    m = samples(generate_latest(build_registry(None, StoredView(at=now, error="down"))).decode())
    assert m[key("slawatch_database_up")] == 0
    assert key("slawatch_collector_up") not in m  # nothing known of a collector: not reported as down
    assert not any(name == "slawatch_open_incidents" for name, _ in m)


async def test_metrics_endpoint_format_and_no_secrets(lab: LiveApi) -> None:
    await lab.step()
    r = await lab.client.get("/metrics")  # no token
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE slawatch_probes_total counter" in r.text
    assert "# TYPE slawatch_nodes gauge" in r.text
    for secret in (*SECRETS, "127.61."):
        assert secret not in r.text


async def test_metrics_without_a_live_service_use_the_heartbeat(tmp_path: Path) -> None:
    async with live_api(tmp_path, with_live=False) as api:
        await api.step()  # a collector runs, but not in the API's process: its heartbeat is stored
        r = await api.client.get("/metrics")
        assert r.status_code == 200
        m = samples(r.text)
        assert not any(name == "slawatch_nodes" for name, _ in m)  # polled nodes: the live loop's own view
        # channels by area from the incident projection (what the stored events say): all seen online
        assert m[key("slawatch_channels", area="T1", state="online")] == 8
        assert m[key("slawatch_channels", area="T2", state="online")] == 8
        assert m[key("slawatch_channels", area="T1", state="unknown")] == 0
        assert m[key("slawatch_collector_last_cycle_timestamp_seconds")] == api.clock.now.timestamp()
        assert key("slawatch_collector_blind") not in m
        assert m[key("slawatch_open_incidents", contract="default", level="3")] == 0
        assert m[key("slawatch_database_up")] == 1
        assert m[key("slawatch_collector_up")] == 1  # a running heartbeat, fresh by the service's clock
        assert m[key("slawatch_collector_running")] == 1
        # the collector stops cleanly: none runs any more, which is not a collector down
        await api.live.stop()
        m = samples((await api.client.get("/metrics")).text)
        assert m[key("slawatch_collector_running")] == 0
        assert key("slawatch_collector_up") not in m


async def test_month_to_date_figures_equal_the_report(lab: LiveApi) -> None:
    """The month so far, read from the live projection, equals the report computed as of the same time."""
    await lab.step()
    lab.icmp.failing = {"CPE-3"}  # 8 NVR channels: level 3
    for _ in range(4):
        await lab.step()
    lab.icmp.failing = set()
    await lab.step()
    lab.icmp.failing = {"CPE-1.1"}  # one camera: a fault, still open
    await lab.step()
    await lab.step(400)
    m = await lab.scrape()
    contract = await lab.service.contract(None)
    month = month_at(lab.clock.now, contract)
    report = (await lab.service.report(month.key, as_of=lab.clock.now)).assessment
    c = DEFAULT_CONTRACT_ID
    assert m[key("slawatch_month_online_ratio", contract=c)] == pytest.approx(float(report.seconds.rate), abs=1e-12)
    assert report.seconds.offline > 0 and float(report.seconds.rate) < 1
    assert m[key("slawatch_month_channel_seconds", contract=c, category="offline")] == report.seconds.offline / 1e6
    assert m[key("slawatch_month_channel_seconds", contract=c, category="online")] == report.seconds.online / 1e6
    assert m[key("slawatch_month_channel_seconds", contract=c, category="blind")] == report.seconds.blind / 1e6
    for item in report.items:
        assert m[key("slawatch_month_points_lost", contract=c, item=item.key)] == float(item.lost), item.key
    assert m[key("slawatch_month_score", contract=c)] == float(report.score)
    assert m[key("slawatch_month_projected_share", contract=c)] == float(report.share_paid)
    assert m[key("slawatch_month_projected_amount", contract=c)] == float(report.amount)
    assert m[key("slawatch_claim_breaches", contract=c)] == len(report.claim_breaches)
    # open incidents by level, with the oldest one's age: the camera fault (level 0) only
    assert m[key("slawatch_open_incidents", contract=c, level="0")] == 1
    assert m[key("slawatch_open_incidents", contract=c, level="3")] == 0
    assert m[key("slawatch_open_incident_oldest_age_seconds", contract=c, level="0")] == pytest.approx(400.0)
    assert key("slawatch_open_incident_oldest_age_seconds", contract=c, level="3") not in m
    assert m[key("slawatch_claim_next_timestamp_seconds", contract=c)] > lab.clock.now.timestamp()
    assert m[key("slawatch_claim_points_at_risk", contract=c)] in (0, 2)  # 2 when the fault is 1 h old by 11:00


async def test_serve_alone_reports_no_collector(tmp_path: Path) -> None:
    """`slawatch serve` with no live loop anywhere: no collector runs, and none is reported down."""
    app = create_app(Settings(data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        service: Service = app.state.service
        await service.import_inventory(network())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
            r = await client.get("/metrics")
            assert r.status_code == 200
            m = samples(r.text)
            assert m[key("slawatch_collector_running")] == 0
            assert key("slawatch_collector_up") not in m
            assert key("slawatch_collector_blind") not in m
            assert m[key("slawatch_database_up")] == 1
            assert m[key("slawatch_build_info", version=BUILD_VERSION, python=platform.python_version())] == 1
            assert m[key("slawatch_month_online_ratio", contract=DEFAULT_CONTRACT_ID)] == 1
            assert m[key("slawatch_month_projected_share", contract=DEFAULT_CONTRACT_ID)] == 1
            assert m[key("slawatch_channels", area="T2", state="online")] == 8
            # the alert outbox: no alerts module wired, both gauges 0
            assert m[key("slawatch_alert_outbox_wired")] == 0
            assert m[key("slawatch_alert_outbox_depth")] == 0
            assert m[key("slawatch_alert_outbox_parked")] == 0


async def test_events_stored_by_another_process_reach_the_figures(tmp_path: Path) -> None:
    """The API alone, while another process stores events: the next scrape applies the new rows to its
    projection (no rebuild), and stores nothing (the other process stored its incidents); an event known
    before what the projection applied cannot be applied in place: the projection is rebuilt, not stored."""
    async with live_api(tmp_path, with_live=False) as api:
        api.icmp.failing = {"CPE-3"}
        await api.step()
        m = samples((await api.client.get("/metrics")).text)
        assert m[key("slawatch_open_incidents", contract=DEFAULT_CONTRACT_ID, level="3")] == 1
        other = Service(api.service.db, confirmation=api.service.confirmation)  # another process's service
        later = api.clock.now + timedelta(seconds=1)  # known after the projection's last instant
        down = StateEvent(at=later, node="CPE-1", state=NodeState.DOWN, known_at=later)
        await other.ingest([("other:1", down)], "api")
        engines = api.service.projection_engines()
        before = api.service.projection_events()
        m = samples((await api.client.get("/metrics")).text)
        assert api.service.projection_events() == before + 1
        assert api.service.projection_engines() == engines  # the same engines, caught up: no rebuild
        assert m[key("slawatch_channels", area="T1", state="offline")] == 6
        assert m[key("slawatch_open_incidents", contract=DEFAULT_CONTRACT_ID, level="3")] == 2
        assert m[key("slawatch_channels", area="T2", state="offline")] == 8
        # known before what the engines applied (an import of an older log): rebuilt from the stored events
        stored = await api.service.repo.load_incidents(DEFAULT_CONTRACT_ID)
        early = api.clock.now - timedelta(hours=1)
        await other.ingest([("other:2", StateEvent(at=early, node="CPE-2", state=NodeState.DOWN, known_at=early))], "x")
        assert await api.service.repo.load_incidents(DEFAULT_CONTRACT_ID) != stored  # the other process stored it
        stored = await api.service.repo.load_incidents(DEFAULT_CONTRACT_ID)
        m = samples((await api.client.get("/metrics")).text)
        assert api.service.projection_events() == before + 2
        assert api.service.projection_engines() != engines  # rebuilt
        rebuilt = api.service.projection_engines()
        assert rebuilt is not None and any(i.scope == "CPE-2" for _c, e in rebuilt for i in e.incidents)
        assert m[key("slawatch_channels", area="T1", state="offline")] == 6  # CPE-2 polled up since
        assert await api.service.repo.load_incidents(DEFAULT_CONTRACT_ID) == stored  # the API stored nothing


async def test_alert_outbox_probe_and_http_metrics(lab: LiveApi) -> None:
    async def outbox() -> OutboxStats:
        return OutboxStats(depth=5, parked=2, by_target={("wecom", "pending"): 3, ("webhook", "parked"): 2})

    app = lab.client._transport.app  # type: ignore[attr-defined]
    app.state.alert_outbox = outbox
    assert (await lab.client.get("/healthz")).status_code == 200
    m = await lab.scrape()
    assert m[key("slawatch_alert_outbox_wired")] == 1
    assert m[key("slawatch_alert_outbox_depth")] == 5
    assert m[key("slawatch_alert_outbox_parked")] == 2
    assert m[key("slawatch_alert_outbox_messages", target="wecom", status="pending")] == 3
    assert m[key("slawatch_alert_outbox_messages", target="webhook", status="parked")] == 2

    async def broken() -> OutboxStats:
        raise RuntimeError("outbox table missing")

    app.state.alert_outbox = broken
    m = await lab.scrape()
    assert m[key("slawatch_alert_outbox_wired")] == 1
    assert key("slawatch_alert_outbox_depth") not in m  # unreadable: no made-up figure
    # HTTP request metrics by handler template (the instrumentator), not /metrics itself; process metrics
    assert m[key("http_requests_total", handler="/healthz", method="GET", status="2xx")] == 1
    assert not any(dict(ls).get("handler") == "/metrics" for _, ls in m)
    assert m[key("process_resident_memory_bytes")] > 0
    assert any(name == "python_info" for name, _ in m)
    assert not any(f.name.startswith(("slawatch", "http_")) for f in REGISTRY.collect())
