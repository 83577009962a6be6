"""The stored incident projection on SQLite and PostgreSQL: ids that would collide (R6), and recovery from a
projection that could not be stored (issue item 5: an ingest never leaves the database in a state where the
next one fails)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event, NodeState, StateEvent
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.storage import Database
from tests.faults import refuse_inserts

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
T0 = datetime(2026, 10, 3, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def states(*changes: tuple[float, str, str]) -> list[tuple[str, Event]]:
    return [
        (f"test:{i}", StateEvent(at=at(s), node=node, state=NodeState(st)))
        for i, (s, node, st) in enumerate(changes, start=1)
    ]


@pytest.fixture
async def service(db: Database) -> Service:
    svc = Service(db, clock=lambda: NOW)
    await svc.import_inventory(load_inventory(SMALL))
    return svc


async def test_two_incidents_named_alike_are_stored_and_later_ingests_work(service: Service) -> None:
    """A camera down at 10:00:00.2, up at 10:00:00.5, down at 10:00:00.8 (each its own ingest, as the live
    loop does): two incidents named ``CAM-0001-1@2026-10-03T02:00:00Z``; the second is ``~2`` (R6)."""
    for change in [(0.2, "CAM-0001-1", "down"), (0.5, "CAM-0001-1", "up"), (0.8, "CAM-0001-1", "down")]:
        await service.ingest(states(change), "test")
    result = await service.ingest(states((60, "CAM-0001-1", "up")), "test")
    assert result.stored == 1
    stored = await service.repo.load_incidents("default")
    assert [i["id"] for i in stored] == ["CAM-0001-1@2026-10-03T02:00:00Z", "CAM-0001-1@2026-10-03T02:00:00Z~2"]
    assert [i["end"] for i in stored] == [at(0.5), at(60)]
    # a fresh process (a rebuild from the stored events) names them the same
    await service.rebuild()
    assert [i["id"] for i in await service.repo.load_incidents("default")] == [i["id"] for i in stored]


async def test_a_projection_that_cannot_be_stored_is_rebuilt_by_the_next_ingest(
    service: Service, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await service.ingest(states((0, "CPE-0001", "down")), "test")
    await refuse_inserts(db, "incidents", on=True)
    with caplog.at_level(logging.ERROR, logger="slawatch.service"):
        result = await service.ingest(states((10, "CPE-0002", "down")), "test")
    assert result.stored == 1  # the events are kept...
    assert any("rebuilt" in r.getMessage() for r in caplog.records)
    # ...and the stored projection is the old one, whole (one transaction)
    assert [i["id"] for i in await service.repo.load_incidents("default")] == ["CPE-0001@2026-10-03T02:00:00Z"]
    await refuse_inserts(db, "incidents", on=False)
    result = await service.ingest(states((20, "CPE-0001", "up")), "test")
    assert result.stored == 1
    stored = {i["id"]: i for i in await service.repo.load_incidents("default")}
    assert sorted(stored) == ["CPE-0001@2026-10-03T02:00:00Z"]  # CPE-0002 joined it: same branch, within 300 s
    assert [m["node"] for m in stored["CPE-0001@2026-10-03T02:00:00Z"]["members"]] == [
        "CAM-0001-1",
        "CAM-0001-2",
        "CAM-0002-1",
        "CAM-0002-2",
        "CAM-0002-3",
    ]


async def test_a_reader_catches_up_on_a_few_events_and_leaves_many_to_a_rebuild(
    service: Service, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``slawatch serve`` beside a collector: what the collector stored since is applied to the reader's
    projection when it is a few rows; above CATCH_UP_MAX_EVENTS (a collector's start stores one per node) the
    reader is told to rebuild beside its loop instead of parsing them on it."""
    import monitor.service

    await service.ingest(states((0, "CPE-0001", "down")), "test")
    other = Service(db, clock=lambda: NOW)  # the collector's process
    await other.ingest(states((60, "CPE-0001", "up"), (120, "CPE-0002", "down")), "test")
    monkeypatch.setattr(monitor.service, "CATCH_UP_MAX_EVENTS", 1)
    assert await service.catch_up_projection() is False
    monkeypatch.setattr(monitor.service, "CATCH_UP_MAX_EVENTS", 5000)
    assert await service.catch_up_projection() is True
    assert service.projection_events() == await service.repo.count_events() == 3
    engines = service.projection_engines()
    assert engines is not None
    (_contract, engine), = engines
    assert [(i.scope, i.end is None) for i in engine.incidents] == [("CPE-0001", False), ("CPE-0002", True)]
