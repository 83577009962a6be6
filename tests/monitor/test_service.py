"""The service end to end on a real database (SQLite and PostgreSQL): import, replay, report.

These are the issue's acceptance properties at the storage level: identical events are one event, a replay
split in two files equals one (even in the middle of a poll confirmation run), bad events store nothing,
computing a report stores nothing, and several contracts are assessed apart.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import monitor.service
from monitor.assessment import Month
from monitor.contracts import Contract
from monitor.errors import ContractError, EventError
from monitor.events import Event, parse_event
from monitor.inventory_io import load_inventory
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage import Database

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
OCT = Month.parse("2026-10", DEFAULT_POLICY)
FIXED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def located(raw: list[dict[str, Any]]) -> list[tuple[str, Event]]:
    return [(f"test:{i + 1}", parse_event(e)) for i, e in enumerate(raw)]


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A report without the fields that differ between issues (version, generated_at)."""
    return {k: v for k, v in body.items() if k not in ("version", "generated_at")}


@pytest.fixture
async def service(db: Database) -> Service:
    svc = Service(db, clock=lambda: FIXED_NOW)
    await svc.import_inventory(load_inventory(SMALL))
    return svc


SMALL_MONTH: list[dict[str, Any]] = [
    # CPE-0002 (3 cameras) by polls: fails at 08:00, 08:01, 08:02 -> down dated 08:00, known 08:02.
    {"type": "poll", "at": "2026-10-03T08:00:00+08:00", "node": "CPE-0002", "ok": False},
    {"type": "poll", "at": "2026-10-03T08:01:00+08:00", "node": "CPE-0002", "ok": False},
    {"type": "poll", "at": "2026-10-03T08:02:00+08:00", "node": "CPE-0002", "ok": False},
    {"type": "ack", "at": "2026-10-03T08:30:00+08:00", "node": "CPE-0002", "by": "crew-1"},
    {"type": "poll", "at": "2026-10-03T10:00:00+08:00", "node": "CPE-0002", "ok": True},
    {"type": "poll", "at": "2026-10-03T10:01:00+08:00", "node": "CPE-0002", "ok": True},
    # The NVR's 8 channels plus the camera of CPE-0003: CPE-0003 down -> 9 channels, a level-3 incident.
    {"type": "state", "at": "2026-10-10T02:00:00+08:00", "node": "CPE-0003", "state": "down"},
    {"type": "state", "at": "2026-10-10T13:00:00+08:00", "node": "CPE-0003", "state": "up"},
    {"type": "ack", "at": "2026-10-10T14:00:00+08:00", "node": "CPE-0003", "by": "late"},
    {"type": "finding", "at": "2026-10-20T10:00:00+08:00", "item": "4c", "points": 5, "note": "complaint"},
]


async def test_replay_report_and_idempotence(service: Service) -> None:
    first = await service.ingest(located(SMALL_MONTH), source="test")
    # 5 polls -> 2 confirmed state changes; plus 2 states, 2 acks, 1 finding (the late ack matches no open
    # incident, but is stored: it is what the crew said).
    assert (first.received, first.confirmed, first.stored) == (10, 2, 7)
    # The ack at 14:00 on Oct 10 came after CPE-0003's incident ended: stored, applied to nothing, and said so.
    assert first.unmatched == (("test:9", "ack", "no incident to apply it to"),)
    again = await service.ingest(located(SMALL_MONTH), source="test")
    assert again.stored == 0
    issued = await service.report("2026-10", as_of=OCT.end)
    body = issued.body
    assert issued.version is None and body["version"] is None  # computed: nothing stored (R9)
    ids = [i["id"] for i in body["incidents"]]
    assert ids == ["CPE-0002@2026-10-03T00:00:00Z", "CPE-0003@2026-10-09T18:00:00Z"]
    cpe2, cpe3 = body["incidents"]
    assert cpe2["level"] == 0 and cpe2["peak_channels"] == 3
    # Dated at the first poll of each run: 08:00 -> 10:00 local, two hours.
    assert cpe2["recovery_s"] == 2 * 3600 and cpe2["response_s"] == 30 * 60
    # 9 channels >= 6: level 3; recovery 11 h over the 8 h limit: d = 3 h, step 6 h -> 1 + floor(3/6) = 1.
    # The ack came after the end, so response = min(ack, end) - start = 11 h: d = 3 h, step 4 h -> 1.
    assert cpe3["level"] == 3 and cpe3["recovery_s"] == 11 * 3600 and cpe3["response_s"] == 11 * 3600
    assert cpe3["deductions"] == {"response": 1, "recovery": 1, "unexplained": 0}
    # Expected: 14 channels x 31 days; offline: 3 ch x 2 h + 9 ch x 11 h = 105 channel-hours.
    assert body["expected_channel_seconds"] == 14 * 31 * 86400
    assert body["online_channel_seconds"] == 14 * 31 * 86400 - 105 * 3600
    lost = {i["key"]: i["lost"] for i in body["items"]}
    assert lost["response"] == 1 and lost["recovery"] == 1 and lost["4c"] == 5
    # 11:00 on Oct 10: CPE-0003's 9 channels offline since 02:00 (>= 1 h), not acknowledged: 9 breaches.
    assert body["claim_breaches"] == 9 and lost["4e"] == 18
    assert body["score"] == 100 - 1 - 1 - 5 - 18
    second = await service.report("2026-10", as_of=OCT.end)
    assert second.version is None and await service.report_versions("2026-10") == []
    assert comparable(second.body) == comparable(body)


async def test_split_replay_equals_one(db: Database, tmp_path: Path) -> None:
    one = Service(db, clock=lambda: FIXED_NOW)
    await one.import_inventory(load_inventory(SMALL))
    await one.ingest(located(SMALL_MONTH), source="one")
    whole = await one.report("2026-10", as_of=OCT.end)

    other = Database(f"sqlite+aiosqlite:///{tmp_path}/split.db")
    await other.connect()
    await other.upgrade()
    try:
        split = Service(other, clock=lambda: FIXED_NOW)
        await split.import_inventory(load_inventory(SMALL))
        # Split between the second and third failed poll: the confirmation run must survive the split.
        await split.ingest(located(SMALL_MONTH)[:2], source="part1")
        await split.ingest(located(SMALL_MONTH)[2:], source="part2")
        parts = await split.report("2026-10", as_of=OCT.end)
    finally:
        await other.close()
    assert comparable(parts.body) == comparable(whole.body)


async def test_bad_event_stores_nothing(service: Service, db: Database) -> None:
    before = await db.repository().count_events()
    batch = [*located(SMALL_MONTH[:3]), ("file.jsonl:4", parse_event({**SMALL_MONTH[3], "node": "NOPE"}))]
    with pytest.raises(EventError) as info:
        await service.ingest(batch, source="test")
    assert str(info.value) == "file.jsonl:4: field 'node': node 'NOPE' is not in the inventory"
    assert await db.repository().count_events() == before


async def test_as_of_sees_only_what_was_known(service: Service) -> None:
    await service.ingest(located(SMALL_MONTH), source="test")
    # At 12:00 local on Oct 10 CPE-0003's incident is open: measured to as_of, end null.
    as_of = datetime(2026, 10, 10, 4, 0, tzinfo=UTC)
    body = (await service.report("2026-10", as_of=as_of)).body
    open_one = body["incidents"][-1]
    assert open_one["open"] is True and open_one["end"] is None
    assert open_one["recovery_s"] == 10 * 3600  # 02:00 -> 12:00 local
    assert body["projection"] is True


async def test_contracts_are_assessed_apart(service: Service) -> None:
    await service.save_contracts(
        [
            Contract(id="b1", customer="A", scopes=("T01-B1",)),
            Contract(id="b2", customer="B", scopes=("T01-B2",)),
        ]
    )
    await service.ingest(located(SMALL_MONTH), source="test")
    with pytest.raises(ContractError):
        await service.report("2026-10", as_of=OCT.end)
    b1 = (await service.report("2026-10", as_of=OCT.end, contract_id="b1")).body
    b2 = (await service.report("2026-10", as_of=OCT.end, contract_id="b2")).body
    assert [i["id"] for i in b1["incidents"]] == ["CPE-0002@2026-10-03T00:00:00Z"]
    assert [i["id"] for i in b2["incidents"]] == ["CPE-0003@2026-10-09T18:00:00Z"]
    assert b1["channels"] + b2["channels"] == 14


async def test_sample_month_replays(db: Database) -> None:
    svc = Service(db, clock=lambda: FIXED_NOW)
    inventory = sample_inventory()
    await svc.import_inventory(inventory)
    raw = month_events(inventory, OCT.start)
    result = await svc.ingest(located(raw), source="sample")
    assert result.stored > 4000
    body = (await svc.report("2026-10", as_of=OCT.end)).body
    levels = {i["level"] for i in body["incidents"]}
    assert levels == {0, 1, 2, 3}
    assert body["base"] == 61875.0
    total = (
        body["online_channel_seconds"]
        + (body["expected_channel_seconds"] - body["online_channel_seconds"])
        + body["excluded_channel_seconds"]
        + body["blind_channel_seconds"]
    )
    assert body["blind_channel_seconds"] > 0 and body["excluded_channel_seconds"] > 0
    assert total <= len(inventory.channels) * 31 * 86400


async def test_unknown_needs_fresh_polls_across_ingests(service: Service) -> None:
    """After `unknown`, a node needs `up_after` (2) new good polls, even when the run before it was good."""
    before = [
        {"type": "poll", "at": "2026-10-05T08:00:00+08:00", "node": "CPE-0001", "ok": True},
        {"type": "state", "at": "2026-10-05T08:01:00+08:00", "node": "CPE-0001", "state": "unknown"},
    ]
    after = [
        {"type": "poll", "at": "2026-10-05T08:30:00+08:00", "node": "CPE-0001", "ok": True},
        {"type": "poll", "at": "2026-10-05T08:31:00+08:00", "node": "CPE-0001", "ok": True},
    ]
    await service.ingest(located(before), source="a")
    first = await service.ingest(located(after[:1]), source="b")
    assert first.confirmed == 0  # one good poll is not a run of two
    second = await service.ingest(located(after[1:]), source="c")
    assert second.confirmed == 1
    body = (await service.report("2026-10", as_of=OCT.end)).body
    # Up dated at the first poll of the fresh run (08:30): blind 08:01 -> 08:30 for CPE-0001's 2 cameras.
    assert body["blind_channel_seconds"] == 2 * 29 * 60


async def test_incremental_projection_equals_a_rebuild(service: Service, db: Database) -> None:
    """Events applied to the in-memory engines give the same stored incidents as a replay of everything."""
    events = located(SMALL_MONTH)
    for i in range(0, len(events), 3):  # in batches, as the live loop ingests once per cycle
        await service.ingest(events[i : i + 3], source=f"batch{i}")
    incremental = await db.repository().load_incidents("default")
    await service.rebuild()
    assert await db.repository().load_incidents("default") == incremental
    assert [i["id"] for i in incremental] == ["CPE-0002@2026-10-03T00:00:00Z", "CPE-0003@2026-10-09T18:00:00Z"]


async def test_another_writer_forces_a_rebuild(service: Service, db: Database) -> None:
    """A second service on the same database (another process) stores events: the first one's next ingest
    sees the count differ and rebuilds from everything, so no event is missing from its projection."""
    other = Service(db, clock=lambda: FIXED_NOW)
    await other.ingest(located(SMALL_MONTH[6:8]), source="other")  # CPE-0003 down and up
    await service.ingest(located(SMALL_MONTH[:6]), source="this")  # CPE-0002 by polls
    ids = [i["id"] for i in await db.repository().load_incidents("default")]
    assert ids == ["CPE-0002@2026-10-03T00:00:00Z", "CPE-0003@2026-10-09T18:00:00Z"]


async def test_an_inventory_imported_elsewhere_forces_a_rebuild(service: Service, db: Database) -> None:
    """Another process re-imports the inventory (a camera more under CPE-0002): this service's next ingest
    must not apply events to engines built on the old tree, where channel positions differ."""
    from monitor.inventory import Inventory, Node, NodeKind

    await service.ingest(located(SMALL_MONTH[:3]), source="first")  # CPE-0002 down (3 cameras)
    old = load_inventory(SMALL)
    extra = Node("CAM-0002-4", NodeKind.CAMERA, parent="CPE-0002", channels=1)
    nodes = old.nodes()
    at = [n.id for n in nodes].index("CAM-0002-3") + 1
    grown = Inventory([*nodes[:at], extra, *nodes[at:]])
    await Service(db, clock=lambda: FIXED_NOW).import_inventory(grown)
    await service.ingest(located(SMALL_MONTH[3:6]), source="second")  # ack, then CPE-0002 back up
    incidents = await db.repository().load_incidents("default")
    assert [m["channel"] for m in incidents[0]["members"]] == ["CAM-0002-1", "CAM-0002-2", "CAM-0002-3", "CAM-0002-4"]


async def test_contracts_are_kept_for_contracts_check_s(service: Service, db: Database, monkeypatch: Any) -> None:
    """With ``contracts_check_s`` (the API sets it), the stored contracts are read at most that often: this
    service's own saves replace them at once, another process's are seen once that time is over."""
    ticks = [1000.0]
    monkeypatch.setattr("monitor.service.monotonic", lambda: ticks[0])
    service.contracts_check_s = 5.0
    default = [c.id for c in await service.contracts()]
    await service.save_contracts([Contract(id="b1", customer="A", scopes=("T01-B1",))])
    assert [c.id for c in await service.contracts()] == ["b1"]
    other = Service(db, clock=lambda: FIXED_NOW)  # another process
    await other.save_contracts([Contract(id="b2", customer="B", scopes=("T01-B2",))])
    ticks[0] += 4.0
    assert [c.id for c in await service.contracts()] == ["b1"]
    ticks[0] += 1.0
    assert [c.id for c in await service.contracts()] == ["b2"]
    service.contracts_check_s = 0.0  # the default: read every time
    await other.save_contracts([Contract(id="b3", customer="C", scopes=("T01-B1",))])
    assert [c.id for c in await service.contracts()] == ["b3"] != default


async def test_one_inventory_check_at_a_time(service: Service, monkeypatch: Any) -> None:
    """With ``inventory_check_s`` (the API's), callers arriving while another's check of the stored inventory is
    under way get the inventory checked last instead of each summing every node row again."""
    reads = 0
    first_read = asyncio.Event()  # the first check waits on it; any other read answers at once
    real = monitor.service.inventory_fingerprint

    async def fingerprint(db: Database) -> tuple[Any, ...]:
        nonlocal reads
        reads += 1
        if reads == 1:
            await first_read.wait()
        return await real(db)

    service.inventory_check_s = 5.0
    loaded = await service.inventory()
    monkeypatch.setattr(monitor.service, "inventory_fingerprint", fingerprint)
    ticks = [monitor.service.monotonic() + 10.0]  # the check is due
    monkeypatch.setattr(monitor.service, "monotonic", lambda: ticks[0])
    first = asyncio.create_task(service.inventory())
    await asyncio.sleep(0)
    others = await asyncio.gather(*(service.inventory() for _ in range(3)))
    assert reads == 1 and all(inv is loaded for inv in others)
    first_read.set()
    assert await first is loaded
    ticks[0] += 10.0
    service.inventory_check_s = 0.0  # the default: every caller checks
    assert all(inv is loaded for inv in await asyncio.gather(*(service.inventory() for _ in range(3))))
    assert reads == 4
