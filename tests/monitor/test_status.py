"""``slawatch status`` (issue 8): what it reads and what it says, on SQLite and PostgreSQL.

It now reads one state row per node (the database picks the latest in processing order), the node rows and the
open incidents only; here its answer equals the one the full reads give (every state event, a validated
inventory, every incident), and it says when the collector is blind. Its speed is measured, not asserted
(the figures are in the commit and the issue).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.events import Event, NodeState, parse_event
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.status import channel_states, latest_node_states, load_status, open_incidents, status_text
from monitor.storage import Database
from monitor.storage.heartbeats import latest_states, write_heartbeat

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
NOW = datetime(2026, 10, 7, 4, 0, tzinfo=UTC)


def located(raw: list[dict[str, Any]]) -> list[tuple[str, Event]]:
    return [(f"test:{i + 1}", parse_event(e)) for i, e in enumerate(raw)]


@pytest.fixture
async def service(db: Database) -> Service:
    svc = Service(db, clock=lambda: NOW)
    await svc.import_inventory(load_inventory(SMALL))
    return svc


HISTORY: list[dict[str, Any]] = [
    # CPE-0002 down (3 cameras offline): an open incident
    {"type": "state", "at": "2026-10-03T08:00:00+08:00", "node": "CPE-0002", "state": "down"},
    # CPE-0001 down and back: a closed incident; CPE-0001 is up
    {"type": "state", "at": "2026-10-05T09:00:00+08:00", "node": "CPE-0001", "state": "down"},
    {"type": "state", "at": "2026-10-05T10:00:00+08:00", "node": "CPE-0001", "state": "up"},
    # the NVR not observed (8 channels unknown)
    {"type": "state", "at": "2026-10-06T09:00:00+08:00", "node": "NVR-0003", "state": "unknown"},
]


async def reference(service: Service) -> dict[str, Any]:
    """What the status showed before it was made fast: every state event, a validated inventory, every incident."""
    inventory = await service.inventory()
    latest = await latest_states(service.db)
    states = {n: s for n, (s, _) in latest.items() if n in inventory}
    polled = [n for n in inventory.nodes() if n.polled and n.active_at(NOW)]
    rows = await service.repo.load_incidents("default")
    return {
        "latest": latest,
        "nodes": {s.value: sum(1 for n in polled if states.get(n.id, NodeState.UP) is s) for s in NodeState},
        "channels": dict(channel_states(inventory, states, NOW)),
        "open": [(r["id"], r["level"], r["scope"], r["peak"], r["start"], r["ack"]) for r in rows if r["open"]],
    }


async def test_status_equals_the_full_reads(service: Service) -> None:
    await service.ingest(located(HISTORY), source="test")
    # a record dated (and known) before the latest stored one, stored after it: processing order decides
    late = {"type": "state", "at": "2026-10-05T09:30:00+08:00", "node": "CPE-0001", "state": "down"}
    await service.ingest(located([late]), source="test")
    want = await reference(service)
    assert await latest_node_states(service.db) == want["latest"]
    assert want["latest"]["CPE-0001"][0] is NodeState.UP  # the latest known, not the latest stored

    status = await load_status(service, now=NOW)
    assert status.nodes == want["nodes"]
    assert status.channels == want["channels"] == {"online": 3, "offline": 3, "unknown": 8}
    opened = status.incidents["default"]
    assert [(i["id"], i["level"], i["scope"], i["peak"], i["start"], i["ack"]) for i in opened] == want["open"]
    assert [i["scope"] for i in opened] == ["CPE-0002"]
    assert await open_incidents(service.db) == {"default": opened}
    assert [n for n, _ in status.down] == ["CPE-0002"]
    assert [n for n, _ in status.unknown] == ["NVR-0003"]

    text = status_text(status)
    assert "channels: 14: online 3, offline 3, unknown (blind) 8, inactive 0" in text
    assert "open incidents [default]: 1 (level 1 0, level 2 0, level 3 0, fault 1)" in text
    assert "CPE-0002@2026-10-03T00:00:00Z" in text
    assert f"partly blind: 1 of {status.polled} polled nodes unknown" in text
    assert "BLIND" not in text


async def test_status_says_when_the_collector_is_blind(service: Service) -> None:
    await write_heartbeat(service.db, at=NOW - timedelta(seconds=5), started_at=NOW - timedelta(hours=1))
    inventory = await service.inventory()
    polled = [n.id for n in inventory.nodes() if n.polled]
    went_blind = NOW - timedelta(minutes=3)
    unknown = [
        {"type": "state", "at": went_blind.isoformat(), "node": node, "state": "unknown"} for node in polled
    ]
    await service.ingest(located(unknown), source="live:blind")

    status = await load_status(service, now=NOW)
    assert status.collector == "running"
    assert status.blind and status.blind_since == went_blind
    assert status.nodes["unknown"] == status.polled == len(polled)
    text = status_text(status)
    assert (
        f"BLIND since 2026-10-07T03:57:00Z (3 min ago): every polled node ({len(polled)}) is unknown; "
        "the collector observes nothing" in text
    )
    assert "this time counts as blind, not as an outage" in text
    assert "channels: 14: online 0, offline 0, unknown (blind) 14" in text

    # seen again: not blind any more
    up = [{"type": "state", "at": (NOW - timedelta(seconds=30)).isoformat(), "node": n, "state": "up"} for n in polled]
    await service.ingest(located(up), source="live")
    status = await load_status(service, now=NOW)
    assert not status.blind and status.nodes["up"] == len(polled)
    assert "BLIND" not in status_text(status) and "partly blind" not in status_text(status)


async def test_a_stopped_collector_is_not_called_blind_by_its_nodes(service: Service) -> None:
    await write_heartbeat(service.db, at=NOW - timedelta(hours=2), started_at=NOW - timedelta(hours=3), running=False)
    status = await load_status(service, now=NOW)
    assert status.collector == "stopped" and not status.blind
    assert "the time since the last cycle will be blind (unknown), not an outage" in status_text(status)


async def test_inactive_channels_and_an_empty_store(db: Database) -> None:
    svc = Service(db, clock=lambda: NOW)
    status = await load_status(svc, now=NOW)
    assert status.polled == 0 and status.channels == {} and not status.blind
    assert status.incidents == {"default": []}  # the implicit contract
    await svc.import_inventory(load_inventory(SMALL))
    before = await load_status(svc, now=datetime(2025, 1, 1, tzinfo=UTC))  # before anything was commissioned
    assert before.channels == {"inactive": 14} and before.polled == 0


async def test_unknown_nodes_under_a_down_node_are_held_not_blind(service: Service) -> None:
    """After a restart while a CPE is down its cameras are unknown (never probed while it is down): their
    channels count offline with it, so the status must not call them blind (the lab trial of issue 9)."""
    held = [
        {"type": "state", "at": "2026-10-06T10:00:00+08:00", "node": "CAM-0002-1", "state": "unknown"},
        {"type": "state", "at": "2026-10-06T10:00:00+08:00", "node": "CAM-0002-2", "state": "unknown"},
    ]
    await service.ingest(located(HISTORY + held), source="test")
    status = await load_status(service, now=NOW)
    assert status.held == {"CAM-0002-1", "CAM-0002-2"}
    assert status.channels["offline"] == 3  # the report's rule: the down CPE decides for its cameras
    text = status_text(status)
    assert f"partly blind: 1 of {status.polled} polled nodes unknown" in text  # NVR-0003 only
    assert "held: 2 unknown polled nodes are under a down node" in text
