"""The live service end to end on real sockets: loopback targets, faults injected on the wire.

Every node of the test network answers on a 127.60.x.y loopback address. Faults are made with nftables drop
rules in a table each test creates and deletes (a named set of dropped addresses on the input hook), and
probes are counted on the wire with per-address nftables counters. Polling runs with short intervals (ICMP
1 s, 0.5 s while suspect, one echo per probe) and ``down_after=2``/``up_after=1``; the database is SQLite in a
temporary directory; the live loop is the production one (``LiveService``, ``run_live``).

Tests that need root (raw ICMP sockets, nftables) are skipped when not root, unless ``CI=true``, where they
fail instead. Run them as root::

    sudo .venv/bin/pytest tests/test_live.py
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import select

from api.server import run_live
from collectors.probers import FactKind, NodeFact, ProbeResult, snmp_node_facts
from collectors.snmp import SnmpFacts
from monitor.confirmation import ConfirmationSettings
from monitor.contracts import DEFAULT_CONTRACT_ID
from monitor.engine import ChannelState
from monitor.events import NodeState
from monitor.inventory import Inventory, Node, NodeKind, SnmpSettings
from monitor.live import LiveService, LiveSettings
from monitor.service import Service
from monitor.settings import Settings
from monitor.status import load_status, status_text
from monitor.storage import Database, default_database_url
from monitor.storage.heartbeats import latest_states, read_heartbeat
from monitor.storage.tables import ProjectionSnapshotRow

IN_CI = os.environ.get("CI") == "true"
HOW_TO_RUN = "run as root: sudo .venv/bin/pytest tests/test_live.py"
SENTINEL = "127.60.0.1"
COMMUNITY = "live-Secret-c0mmunity"
INTERVAL = 1.0
FAST = LiveSettings(
    icmp_interval_s=INTERVAL,
    snmp_interval_s=1.0,
    suspect_interval_s=0.5,
    icmp_count=1,
    icmp_spacing_s=0.0,
    icmp_timeout_s=0.25,
    rate_pps=5000,
    sentinels=(SENTINEL,),
    blind_after=3,
    tick_s=0.1,
    snmp_timeout_s=0.3,
    snmp_retries=0,
    inventory_refresh_s=5.0,
)
CONFIRM = ConfirmationSettings(down_after=2, up_after=1)


# ---------------------------------------------------------------------- helpers


def unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(f"{reason}; {HOW_TO_RUN}")


def need_root() -> str:
    if os.geteuid() != 0:
        unavailable("needs root (raw ICMP sockets, nftables)")
    nft = shutil.which("nft")
    if nft is None:
        unavailable("needs the `nft` command (Debian package nftables)")
    return nft


def now() -> datetime:
    return datetime.now(UTC)


def network(extra: list[Node] | None = None) -> Inventory:
    """T1 / B1 / CPE-1, CPE-2 (6 cameras each) and T1 / B2 / CPE-3 (3 cameras), all on 127.60.x.y."""
    nodes = [
        Node("T1", NodeKind.AREA),
        Node("B1", NodeKind.BRANCH, parent="T1"),
        Node("B2", NodeKind.BRANCH, parent="T1"),
    ]
    for n, branch, cams in ((1, "B1", 6), (2, "B1", 6), (3, "B2", 3)):
        nodes.append(Node(f"CPE-{n}", NodeKind.CPE, parent=branch, address=f"127.60.{n}.1"))
        for c in range(1, cams + 1):
            nodes.append(
                Node(
                    f"CPE-{n}.{c}",
                    NodeKind.CAMERA,
                    parent=f"CPE-{n}",
                    address=f"127.60.{n}.{10 + c}",
                    channels=1,
                )
            )
    return Inventory(nodes + (extra or []))


def addresses_under(inv: Inventory, scope: str) -> list[str]:
    return [n.address for n in inv.nodes() if n.address and inv.is_at_or_under(n.id, scope)]


class Wire:
    """An nftables table of our own: a set of dropped addresses, per-address echo-request counters on input,
    and a counter of everything sent to 192.0.2.0/24 (TEST-NET-1, never routed) on output."""

    def __init__(self, nft: str, counted: list[str]) -> None:
        self.nft = nft
        self.table = f"slawatch_live_{secrets.token_hex(4)}"
        counters = "\n".join(f"    ip daddr {a} icmp type echo-request counter" for a in counted)
        ruleset = f"""
table inet {self.table} {{
  set dropped {{ type ipv4_addr; }}
  chain input {{
    type filter hook input priority 0; policy accept;
{counters}
    ip daddr @dropped icmp type echo-request drop
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    ip daddr 192.0.2.0/24 counter
  }}
}}
"""
        proc = subprocess.run([nft, "-f", "-"], input=ruleset, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            unavailable(f"nft cannot create a table: {proc.stderr.strip()}")

    def _nft(self, *args: str) -> str:
        proc = subprocess.run([self.nft, *args], capture_output=True, text=True, check=True, timeout=30)
        return proc.stdout

    def drop(self, addresses: list[str]) -> datetime:
        """Drop echo requests to ``addresses`` from now on; returns when the rule took effect."""
        self._nft("add", "element", "inet", self.table, "dropped", "{ " + ", ".join(addresses) + " }")
        return now()

    def heal(self, addresses: list[str]) -> datetime:
        self._nft("delete", "element", "inet", self.table, "dropped", "{ " + ", ".join(addresses) + " }")
        return now()

    def counters(self) -> dict[str, int]:
        """Packets counted per destination address (input) and for ``192.0.2.0/24`` (output)."""
        data = json.loads(self._nft("-j", "list", "table", "inet", self.table))
        out: dict[str, int] = {}
        for item in data["nftables"]:
            rule = item.get("rule")
            if rule is None:
                continue
            packets = next((e["counter"]["packets"] for e in rule["expr"] if "counter" in e), None)
            if packets is None:
                continue
            for e in rule["expr"]:
                match = e.get("match")
                if match and match["left"].get("payload", {}).get("field") == "daddr":
                    right = match["right"]
                    key = right if isinstance(right, str) else f"{right['prefix']['addr']}/{right['prefix']['len']}"
                    out[key] = packets
        return out

    def close(self) -> None:
        subprocess.run([self.nft, "delete", "table", "inet", self.table], capture_output=True, check=False)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Lab:
    """One database, service and (running) live loop over ``inventory``."""

    db: Database
    service: Service
    inventory: Inventory
    wire: Wire
    live: LiveService | None = None
    stop: asyncio.Event | None = None
    task: asyncio.Task[None] | None = None

    async def start(self, settings: LiveSettings = FAST) -> LiveService:
        self.live = LiveService(self.service, settings)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.live.run(self.stop))
        return self.live

    async def halt(self) -> None:
        if self.stop is not None and self.task is not None:
            self.stop.set()
            await self.task
            self.task = None

    async def incidents(self) -> list[dict[str, Any]]:
        return await self.service.repo.load_incidents(DEFAULT_CONTRACT_ID)

    async def all_up(self) -> bool:
        assert self.live is not None
        states = self.live.states
        polled = [n.id for n in self.inventory.nodes() if n.address and n.address.startswith("127.")]
        return all(states.get(n) is NodeState.UP for n in polled)

    async def channel_transitions(self, node: str) -> list[tuple[datetime, ChannelState]]:
        contract = await self.service.contract(None)
        history = await self.service.history(contract, now(), self.inventory)
        position = next(c.position for c in self.inventory.channels if c.node == node)
        return list(history.transitions[position])


@pytest.fixture
async def lab_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Lab]]]:
    nft = need_root()
    labs: list[Lab] = []

    async def make(
        inventory: Inventory | None = None,
        counted: list[str] | None = None,
        confirmation: ConfirmationSettings = CONFIRM,
    ) -> Lab:
        inv = inventory or network()
        wire = Wire(nft, counted or [])
        db = Database(default_database_url(tmp_path / f"data{len(labs)}"))
        await db.connect()
        await db.upgrade()
        service = Service(db, confirmation=confirmation)
        await service.import_inventory(inv)
        lab = Lab(db, service, inv, wire)
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in labs:
            try:
                await lab.halt()
            finally:
                lab.wire.close()
                await lab.db.close()


# ---------------------------------------------------------------------- failures, merges, healing


@pytest.mark.net
@pytest.mark.root
async def test_failed_cpe_opens_one_incident_then_heals(lab_factory: Callable[..., Awaitable[Lab]]) -> None:
    inv = network()
    cams = addresses_under(inv, "CPE-1")[1:]
    lab = await lab_factory(inv, counted=addresses_under(inv, "CPE-1"))
    live = await lab.start()
    await wait_for(lab.all_up, 10, "every node up after start")

    drop_at = lab.wire.drop(["127.60.1.1"])  # the CPE alone: its cameras answer, but are behind it

    async def incident_open() -> bool:
        return any(i["open"] for i in await lab.incidents())

    await wait_for(incident_open, 10, "an incident")
    await wait_for(lambda: _true(live.states.get("CPE-1") is NodeState.DOWN), 5, "CPE-1 down")
    # children of a down CPE are not probed: count echo requests on the wire for a few intervals
    await asyncio.sleep(0.3)
    before = lab.wire.counters()
    await asyncio.sleep(3 * INTERVAL)
    counted = {a: n - before[a] for a, n in lab.wire.counters().items()}
    assert counted["127.60.1.1"] >= 4  # the CPE itself, at the suspect interval (0.5 s)
    assert all(counted[a] == 0 for a in cams), counted
    assert live.last_cycle is not None and live.last_cycle.held == 6

    # the status, read by another service over the same database (as `slawatch status` does)
    status = status_text(await load_status(Service(lab.db, confirmation=CONFIRM)))
    assert "collector: running" in status
    assert "open incidents [default]: 1 (level 1 0, level 2 0, level 3 1, fault 0)" in status
    assert "CPE-1@" in status and "nodes down: 1" in status

    held = lab.wire.counters()  # the cameras are held: nothing reaches them until the CPE answers
    heal_at = lab.wire.heal(["127.60.1.1"])

    async def incident_closed() -> bool:
        return all(not i["open"] for i in await lab.incidents())

    await wait_for(incident_closed, 10, "the incident to close")
    incidents = await lab.incidents()
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["scope"] == "CPE-1"
    assert incident["level"] == 3 and incident["peak"] == 6  # 6 channels: level 3
    assert [m["node"] for m in incident["members"]] == [f"CPE-1.{c}" for c in range(1, 7)]
    real = (heal_at - drop_at).total_seconds()
    recovery = (incident["end"] - incident["start"]).total_seconds()
    assert abs(recovery - real) <= INTERVAL + 0.3, (recovery, real)
    assert drop_at <= incident["start"] <= drop_at + timedelta(seconds=INTERVAL + 0.3)
    # the cameras are probed again as soon as the CPE answers (the next plan, one tick later; it may have run
    # already: count from before the heal, when they were held)

    async def cameras_probed() -> bool:
        after = lab.wire.counters()
        return all(after[a] > held[a] for a in cams)

    await wait_for(cameras_probed, 0.5, "the cameras probed at once")


async def _true(value: bool) -> bool:
    return value


def seconds_by_state(
    transitions: list[tuple[datetime, ChannelState]], start: datetime, end: datetime
) -> dict[ChannelState, float]:
    """Seconds a channel spent in each state over ``[start, end)``, from its dated transitions."""
    out: dict[ChannelState, float] = {}
    state: ChannelState | None = None
    cursor = start
    for at, new in [*transitions, (end, None)]:
        if at > cursor and state is not None:
            stop = min(at, end)
            if stop > cursor:
                out[state] = out.get(state, 0.0) + (stop - cursor).total_seconds()
        if at >= end:
            break
        cursor = max(cursor, at)
        if new is not None:
            state = new
    return out


@pytest.mark.net
@pytest.mark.root
async def test_cpe_outage_is_offline_for_its_length_with_the_demo_polling(
    lab_factory: Callable[..., Awaitable[Lab]],
) -> None:
    """SPEC R2 with the demo's polling (ICMP every 5 s, 2 s while suspect; down after 3 failures, up after 2):
    a CPE silent on the wire for 25 s makes each of its cameras' channels offline for those 25 s (within one
    poll interval), and not one second of blind time: the cameras held back behind the CPE are not due, so
    they are never made unknown, neither while held nor when the CPE answers again."""
    inv = network()
    lab = await lab_factory(inv, confirmation=ConfirmationSettings())  # the deployment's 3 / 2, as the demo
    demo = LiveSettings.demo()
    live = await lab.start(demo)
    await wait_for(lab.all_up, 30, "every node up after start")
    watched_from = now()
    await asyncio.sleep(demo.icmp_interval_s)
    fault_s = 25.0
    drop_at = lab.wire.drop(["127.60.1.1"])
    await asyncio.sleep(fault_s)
    heal_at = lab.wire.heal(["127.60.1.1"])

    async def recovered() -> bool:
        return await lab.all_up() and all(not i["open"] for i in await lab.incidents())

    await wait_for(recovered, 30, "CPE-1 up again and its incident closed")
    # a few intervals more: anything the release of the cameras would write (the old bug: `unknown` backdated
    # into the outage) is written by then
    await asyncio.sleep(2 * demo.icmp_interval_s)
    watched_to = now()
    assert live.last_cycle is not None and live.last_cycle.error is None
    contract = await lab.service.contract(None)
    history = await lab.service.history(contract, watched_to, inv)
    real = (heal_at - drop_at).total_seconds()
    assert real >= fault_s
    for channel in inv.channels:
        booked = seconds_by_state(list(history.transitions[channel.position]), watched_from, watched_to)
        blind = booked.get(ChannelState.UNKNOWN, 0.0)
        offline = booked.get(ChannelState.OFFLINE, 0.0)
        assert blind == 0.0, (channel.node, booked)
        if inv.is_at_or_under(channel.node, "CPE-1"):
            # offline from the CPE's first failed poll (within 5 s of the drop, dated back) to its first good
            # poll (within 2 s of the heal)
            assert abs(offline - real) <= demo.icmp_interval_s, (channel.node, offline, real)
        else:
            assert offline == 0.0, (channel.node, booked)
    incidents = await lab.incidents()
    assert len(incidents) == 1 and incidents[0]["scope"] == "CPE-1" and incidents[0]["peak"] == 6


@pytest.mark.net
@pytest.mark.root
async def test_late_cycles_never_make_a_down_node_unknown(lab_factory: Callable[..., Awaitable[Lab]]) -> None:
    """SPEC R2: cycles that run late (here every one: the loop plans every 2 s, while a suspect node is due
    every 0.5 s and `blind_after` x 0.5 s = 1.5 s) do not make a down CPE unknown mid-outage; its channels are
    offline for the fault's length (within one cycle and one interval), never blind."""
    inv = network()
    lab = await lab_factory(inv)
    late = replace(FAST, tick_s=2.0)
    live = await lab.start(late)
    await wait_for(lab.all_up, 20, "every node up after start")
    watched_from = now()
    drop_at = lab.wire.drop(["127.60.3.1"])
    await wait_for(lambda: _true(live.states.get("CPE-3") is NodeState.DOWN), 15, "CPE-3 down")
    await asyncio.sleep(4 * late.tick_s)  # four late cycles with the CPE down
    assert live.states.get("CPE-3") is NodeState.DOWN
    heal_at = lab.wire.heal(["127.60.3.1"])
    await wait_for(lab.all_up, 15, "CPE-3 up again")
    watched_to = now()
    history = await lab.service.history(await lab.service.contract(None), watched_to, inv)
    real = (heal_at - drop_at).total_seconds()
    for channel in inv.channels:
        booked = seconds_by_state(list(history.transitions[channel.position]), watched_from, watched_to)
        assert booked.get(ChannelState.UNKNOWN, 0.0) == 0.0, (channel.node, booked)
        if inv.is_at_or_under(channel.node, "CPE-3"):
            offline = booked.get(ChannelState.OFFLINE, 0.0)
            assert abs(offline - real) <= late.tick_s + INTERVAL, (channel.node, offline, real)

    async def stored_closed() -> bool:  # the stored projection follows the in-memory states by one write
        return all(not i["open"] for i in await lab.incidents())

    await wait_for(stored_closed, 10, "the stored incident to close")
    incidents = await lab.incidents()
    assert [(i["scope"], i["open"]) for i in incidents] == [("CPE-3", False)]


@pytest.mark.net
@pytest.mark.root
async def test_branch_cut_merges_into_one_incident(lab_factory: Callable[..., Awaitable[Lab]]) -> None:
    inv = network()
    lab = await lab_factory(inv)
    await lab.start()
    await wait_for(lab.all_up, 10, "every node up after start")
    under = addresses_under(inv, "B1")
    assert len(under) == 14
    drop_at = lab.wire.drop(under)

    async def peaked() -> bool:
        return any(i["open"] and i["peak"] == 12 for i in await lab.incidents())

    await wait_for(peaked, 10, "one incident holding both circuits' cameras")
    await asyncio.sleep(1.0)  # nothing else opens
    heal_at = lab.wire.heal(under)

    async def closed() -> bool:
        return all(not i["open"] for i in await lab.incidents())

    await wait_for(closed, 10, "the incident to close")
    incidents = await lab.incidents()
    assert len(incidents) == 1, incidents
    incident = incidents[0]
    assert incident["scope"] == "B1"
    assert incident["level"] == 2 and incident["peak"] == 12  # 12 channels: level 2
    assert {m["node"] for m in incident["members"]} == {f"CPE-{n}.{c}" for n in (1, 2) for c in range(1, 7)}
    recovery = (incident["end"] - incident["start"]).total_seconds()
    assert abs(recovery - (heal_at - drop_at).total_seconds()) <= INTERVAL + 0.3


@pytest.mark.net
@pytest.mark.root
async def test_sentinel_down_is_unknown_time_not_offline(lab_factory: Callable[..., Awaitable[Lab]]) -> None:
    inv = network()
    lab = await lab_factory(inv)
    live = await lab.start()
    await wait_for(lab.all_up, 10, "every node up after start")
    everything = [SENTINEL, *addresses_under(inv, "T1")]  # our own uplink is down: nothing answers
    drop_at = lab.wire.drop(everything)
    await asyncio.sleep(4 * INTERVAL)  # plenty of failed probes: down_after is 2
    assert live.last_cycle is not None and live.last_cycle.blind == "sentinels"
    assert all(live.states.get(n) is NodeState.UNKNOWN for n in ("CPE-1", "CPE-1.1", "CPE-3"))
    heal_at = lab.wire.heal(everything)
    await wait_for(lab.all_up, 10, "every node up after the uplink returns")
    assert await lab.incidents() == []  # blind time is never an outage
    transitions = await lab.channel_transitions("CPE-1.1")
    blind = [(at, st) for at, st in transitions if at >= drop_at]
    assert [st for _, st in blind] == [ChannelState.UNKNOWN, ChannelState.ONLINE]
    assert blind[0][0] <= drop_at + timedelta(seconds=INTERVAL + 0.5)
    assert heal_at <= blind[1][0] <= heal_at + timedelta(seconds=INTERVAL + 0.5)


@pytest.mark.net
@pytest.mark.root
async def test_restart_leaves_a_blind_gap_not_an_outage(
    lab_factory: Callable[..., Awaitable[Lab]], tmp_path: Path
) -> None:
    inv = network()
    lab = await lab_factory(inv)
    await lab.db.close()  # run_live opens its own, as `slawatch run` does
    url = default_database_url(tmp_path / "data0")
    settings = Settings(data_dir=tmp_path / "data0", database_url=url, down_after=2, up_after=1)
    observer = Database(url)
    await observer.connect()
    watcher = Service(observer, confirmation=CONFIRM)
    lab.db, lab.service = observer, watcher

    async def all_up() -> bool:
        status = await load_status(watcher)
        return status.nodes["up"] == 18 and status.collector == "running"

    stop = asyncio.Event()
    first = asyncio.create_task(run_live(settings, FAST, serve_api=False, stop=stop))
    await wait_for(all_up, 10, "every node up in the first run")
    first_up_at = now()
    assert gc.get_freeze_count() > 0  # `slawatch run` freezes what survives its cycles (monitor.heap)...
    stop.set()
    await first
    assert gc.get_freeze_count() == 0  # ...and gives the defaults back when it stops
    stopped_at = now()
    beat = await read_heartbeat(observer)
    assert beat is not None and not beat.running
    status = await load_status(watcher)
    assert status.collector == "stopped" and status.nodes["unknown"] == 18
    assert "blind (unknown), not an outage" in status_text(status)
    # the clean stop stored the incident projection as of its last event: the next start replays only what follows
    async with observer.engine.connect() as conn:
        snapshots = (await conn.execute(select(ProjectionSnapshotRow.events))).scalars().all()
    assert snapshots == [await watcher.repo.count_events()]

    down_at = lab.wire.drop(["127.60.3.1"])  # CPE-3 fails while nobody watches
    await asyncio.sleep(2 * INTERVAL)
    restart_at = now()
    stop = asyncio.Event()
    second = asyncio.create_task(run_live(settings, FAST, serve_api=False, stop=stop))
    try:

        async def cpe3_incident() -> bool:
            return any(i["open"] for i in await lab.incidents())

        await wait_for(cpe3_incident, 10, "CPE-3 down after the restart")
        others = [n.id for n in inv.nodes() if n.address and not inv.is_at_or_under(n.id, "CPE-3")]

        async def others_up() -> bool:
            states = await latest_states(observer)
            return all(states[n][0] is NodeState.UP for n in others)

        await wait_for(others_up, 10, "every other node up in the second run")
    finally:
        stop.set()
        await second
    incidents = await lab.incidents()
    assert len(incidents) == 1 and incidents[0]["scope"] == "CPE-3"
    # the outage starts at the first failed probe after the restart: the gap itself is blind
    assert incidents[0]["start"] >= restart_at > down_at
    transitions = await lab.channel_transitions("CPE-1.1")
    gap = [(at, st) for at, st in transitions if at > first_up_at]
    # unknown from the first run's clean stop until the first good probe after the restart, then online
    # until the second run's clean stop
    assert [st for _, st in gap] == [ChannelState.UNKNOWN, ChannelState.ONLINE, ChannelState.UNKNOWN]
    assert gap[0][0] <= stopped_at
    assert gap[1][0] >= restart_at
    for _, st in transitions:
        assert st is not ChannelState.OFFLINE


@pytest.mark.net
@pytest.mark.root
async def test_nothing_outside_loopback_is_probed(
    lab_factory: Callable[..., Awaitable[Lab]], caplog: pytest.LogCaptureFixture
) -> None:
    outside = [
        Node("T9", NodeKind.AREA),
        Node("CPE-9", NodeKind.CPE, parent="T9", address="192.0.2.9", snmp=SnmpSettings(community=COMMUNITY)),
        Node("CPE-9.1", NodeKind.CAMERA, parent="CPE-9", address="192.0.2.10", channels=1),
    ]
    lab = await lab_factory(network(outside))
    caplog.set_level(logging.INFO, logger="slawatch.live")
    live = await lab.start()
    await wait_for(lab.all_up, 10, "every loopback node up")
    await asyncio.sleep(2 * INTERVAL)
    refused = live.tracked.refused
    for kind in ("icmp", "snmp"):
        assert "192.0.2.9" in refused[(kind, "CPE-9")]
        assert "not inside the allowed networks" in refused[(kind, "CPE-9")]
    assert "192.0.2.10: not inside the allowed networks" in refused[("icmp", "CPE-9.1")]
    assert live.probes[("icmp", "CPE-9")] == 0 and live.probes[("snmp", "CPE-9")] == 0
    assert live.probes[("icmp", "CPE-1")] > 0
    assert lab.wire.counters()["192.0.2.0/24"] == 0  # not one packet left for TEST-NET-1
    refusals = [r for r in caplog.records if r.getMessage() == "node not probed"]
    assert {getattr(r, "node", None) for r in refusals} >= {"CPE-9", "CPE-9.1"}
    assert len([r for r in refusals if getattr(r, "node", None) == "CPE-9.1"]) == 1  # logged once
    assert live.snapshot()["refused"]["icmp:CPE-9"] == refused[("icmp", "CPE-9")]
    assert live.states.get("CPE-9") is NodeState.UNKNOWN  # never observed: unknown, never down
    assert await lab.incidents() == []
    assert COMMUNITY not in caplog.text


# ---------------------------------------------------------------------- SNMP facts on the timeline


@pytest.fixture
def snmp_agent(tmp_path: Path) -> Iterator[Any]:
    from collectors.lab.agents import SnmpdAgent, snmpd_path

    path = snmpd_path()
    if path is None:
        unavailable("needs snmpd (Debian package snmpd)")
    agent = SnmpdAgent("127.60.4.1", port=16161, community=COMMUNITY, state_dir=tmp_path, snmpd=path)
    agent.start()
    try:
        yield agent
    finally:
        agent.close()


@pytest.mark.net
@pytest.mark.root
async def test_snmp_facts_are_recorded_not_outages(
    lab_factory: Callable[..., Awaitable[Lab]], snmp_agent: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cpe = [
        Node("T4", NodeKind.AREA),
        Node(
            "CPE-4",
            NodeKind.CPE,
            parent="T4",
            address="127.60.4.1",
            bandwidth_mbps=20,
            snmp=SnmpSettings(community=COMMUNITY, port=16161),
        ),
        Node("CPE-4.1", NodeKind.CAMERA, parent="CPE-4", address="127.60.4.11", channels=1),
    ]
    lab = await lab_factory(Inventory(cpe))
    caplog.set_level(logging.DEBUG)
    live = await lab.start(replace(FAST, snmp_interval_s=0.5))

    def kinds() -> list[FactKind]:
        return [f.kind for f in live.facts("CPE-4")]

    await wait_for(lab.all_up, 10, "CPE-4 up")
    await wait_for(lambda: _true(live.tracked.snmp_available.get("CPE-4") is True), 10, "a first SNMP sample")
    snmp_agent.ifdown()
    await wait_for(lambda: _true(FactKind.OPER_STATUS in kinds()), 10, "the uplink going down")
    assert "up(1) -> down(2)" in live.facts("CPE-4")[-1].detail
    snmp_agent.stop()  # the agent is silent, the CPE still answers ICMP
    await wait_for(lambda: _true(FactKind.SNMP_UNAVAILABLE in kinds()), 10, "SNMP unavailable")
    await asyncio.sleep(1.0)
    assert live.states.get("CPE-4") is NodeState.UP  # not down
    assert kinds().count(FactKind.SNMP_UNAVAILABLE) == 1  # once, not per probe
    snmp_agent.start()  # a restarted agent: sysUpTime back near 0, a reboot
    await wait_for(lambda: _true(FactKind.SNMP_AVAILABLE in kinds()), 10, "SNMP available again")
    await wait_for(lambda: _true(FactKind.REBOOT in kinds()), 10, "the reboot")
    assert await lab.incidents() == []
    assert live.snapshot()["nodes"]["CPE-4"]["facts"][0]["kind"] == "oper_status"
    logged = [r for r in caplog.records if r.getMessage() == "snmp fact"]
    assert {getattr(r, "fact", None) for r in logged} >= {"oper_status", "snmp_unavailable", "reboot"}
    assert COMMUNITY not in caplog.text  # credentials are never logged


# ---------------------------------------------------------------------- pure: SNMP facts


def _facts(oper: int, rebooted: bool = False, changed: tuple[int, int] | None = None) -> SnmpFacts:
    return SnmpFacts("CPE-1", oper, rebooted, changed, None, None, None, None, None)


T = datetime(2026, 10, 3, 8, tzinfo=UTC)


def test_snmp_silence_while_icmp_answers_is_unavailable_once() -> None:
    silent = ProbeResult("CPE-1", "snmp", False, error="timeout")
    facts, available = snmp_node_facts(T, silent, True, icmp_ok=True)
    assert facts == [NodeFact(T, "CPE-1", FactKind.SNMP_UNAVAILABLE, "no SNMP answer (timeout) while ICMP answers")]
    assert available is False
    assert snmp_node_facts(T, silent, False, icmp_ok=True) == ([], False)  # already unavailable
    assert snmp_node_facts(T, silent, True, icmp_ok=False) == ([], True)  # the node is unreachable anyway
    assert snmp_node_facts(T, silent, None, icmp_ok=None) == ([], None)


def test_snmp_answer_after_silence_reboot_and_oper_change() -> None:
    answer = ProbeResult("CPE-1", "snmp", True, facts=_facts(2, rebooted=True, changed=(1, 2)))
    facts, available = snmp_node_facts(T, answer, False, icmp_ok=True)
    assert [f.kind for f in facts] == [FactKind.SNMP_AVAILABLE, FactKind.REBOOT, FactKind.OPER_STATUS]
    assert facts[2].detail == "uplink ifOperStatus up(1) -> down(2)"
    assert available is True


def test_first_snmp_sample_records_an_uplink_that_is_not_up() -> None:
    first_down = ProbeResult("CPE-1", "snmp", True, facts=_facts(7))
    facts, _ = snmp_node_facts(T, first_down, None, icmp_ok=True)
    assert [(f.kind, f.detail) for f in facts] == [(FactKind.OPER_STATUS, "uplink ifOperStatus lowerLayerDown(7)")]
    assert snmp_node_facts(T, ProbeResult("CPE-1", "snmp", True, facts=_facts(1)), None, True) == ([], True)


def test_refused_snmp_result_adds_nothing() -> None:
    refused = ProbeResult("CPE-1", "snmp", False, error="outside", refused=True)
    assert snmp_node_facts(T, refused, True, icmp_ok=True) == ([], True)


def test_live_settings() -> None:
    assert LiveSettings().icmp_interval_s == 60 and LiveSettings().snmp_interval_s == 300
    demo = LiveSettings.demo()
    assert demo.icmp_interval_s == 5 and demo.suspect_interval_s < demo.icmp_interval_s
    with pytest.raises(ValueError, match="sentinel"):
        LiveSettings(sentinels=("192.0.2.1",))
    with pytest.raises(ValueError, match="tick_s"):
        LiveSettings(tick_s=0)
    # Only settings given explicitly override the profile: the demo keeps its 5 s unless told otherwise.
    assert LiveSettings.from_settings(Settings(), FAST) == FAST
    told = LiveSettings.from_settings(Settings(icmp_interval_s=7.5, sentinels=["127.0.0.9"]), FAST)
    assert told.icmp_interval_s == 7.5 and told.sentinels == ("127.0.0.9",)
    assert told.suspect_interval_s == FAST.suspect_interval_s


# ---------------------------------------------------------------------- wiring and restarts (no root)


def test_the_live_loop_does_not_import_the_api() -> None:
    """No import cycle: monitor.live is imported without api (api.server sits above both and imports them)."""
    code = (
        "import sys\n"
        "import monitor.live\n"
        "loaded = sorted(m for m in sys.modules if m == 'api' or m.startswith('api.'))\n"
        "assert not loaded, loaded\n"
        "import api.server\n"
        "assert 'api.app' not in sys.modules  # the API is built only when served\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    # not even lazily, inside a function: the module names no `api` import anywhere
    import ast

    import monitor.live

    tree = ast.parse(Path(monitor.live.__file__).read_text(encoding="utf-8"))
    named = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    named += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in named if m == "api" or m.startswith("api.")], named


async def test_a_restarted_demo_reuses_its_admin_token(tmp_path: Path) -> None:
    """`make run` again after a crash: the demo's admin token is the same one, not a new one each start."""
    from monitor.cli import DEMO_TOKEN, demo_token

    db = Database(default_database_url(tmp_path / "data"))
    await db.connect()
    await db.upgrade()
    try:
        service = Service(db)
        path = tmp_path / "data" / "demo-admin.token"
        secret, note = await demo_token(service, path)
        assert secret and note.startswith("created")
        assert path.read_text().strip() == secret and path.stat().st_mode & 0o777 == 0o600
        assert await service.repo.role_for_token(secret) == (DEMO_TOKEN, "admin")
        again, note = await demo_token(service, path)
        assert again == secret and note.startswith("reused")
        # the secret file is lost: no second token is minted, the note says what to run
        path.unlink()
        lost, note = await demo_token(service, path)
        assert lost is None and f"slawatch token revoke {DEMO_TOKEN}" in note
        assert [(t.name, t.role, t.revoked_at) for t in await service.repo.list_tokens()] == [
            (DEMO_TOKEN, "admin", None)
        ]
    finally:
        await db.close()
