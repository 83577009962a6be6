"""The incident projection from a stored snapshot (issue 9: a start replays what was stored since the last
snapshot, not the whole history), on SQLite and PostgreSQL: the same projection as a full replay, and every
snapshot that does not fit (another inventory, corrupt bytes, a log that moved under it, events known before it
stored after it) left unused with a log line, never an error."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from monitor.assessment import Month
from monitor.engine import History
from monitor.events import Event, NodeState, StateEvent, parse_event
from monitor.inventory import Inventory
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage import Database
from monitor.storage.heartbeats import event_position
from monitor.storage.snapshots import delete_snapshots, read_snapshot, write_snapshot

MONTH = Month.parse("2026-10", DEFAULT_POLICY)
NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return sample_inventory()


@pytest.fixture(scope="module")
def month(inventory: Inventory) -> list[tuple[str, Event]]:
    raw = month_events(inventory, MONTH.start, days=MONTH.length_days)
    return [(f"sample:{i}", parse_event(e, DEFAULT_POLICY.zone)) for i, e in enumerate(raw, start=1)]


def split(located: list[tuple[str, Event]]) -> tuple[list[tuple[str, Event]], list[tuple[str, Event]]]:
    """The month cut in two, the first part all known before the second."""
    ordered = sorted(located, key=lambda w: w[1].known)
    cut = len(ordered) // 2
    while ordered[cut][1].known == ordered[cut - 1][1].known:
        cut += 1
    return ordered[:cut], ordered[cut:]


def fresh(db: Database, *, snapshots: bool = True) -> Service:
    """A service as a new process opens it (nothing in memory), storing a snapshot after any replay."""
    service = Service(db, clock=lambda: NOW)
    service.snapshot_after = 1 if snapshots else None
    return service


def histories(service: Service) -> dict[str, History]:
    engines = service.projection_engines()
    assert engines is not None
    return {contract.id: engine.snapshot(NOW) for contract, engine in engines}


async def full_replay(db: Database) -> dict[str, History]:
    service = fresh(db, snapshots=False)
    await service.rebuild(store=False)
    return histories(service)


def said(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


async def stored(
    db: Database,
    inventory: Inventory,
    before: list[tuple[str, Event]],
    after: list[tuple[str, Event]] | None = None,
    *,
    newer_snapshots: bool = True,
) -> Service:
    """A writer that stored ``before`` and a snapshot of its projection, then ``after`` (``newer_snapshots``
    False: without storing a newer snapshot for it)."""
    writer = fresh(db)
    await writer.import_inventory(inventory)
    await writer.ingest(before, "test")
    await writer.rebuild()
    if not newer_snapshots:
        writer.snapshot_after = None
    if after:
        await writer.ingest(after, "test")
    return writer


async def test_a_start_loads_the_snapshot_and_replays_only_what_came_after(
    db: Database, inventory: Inventory, month: list[tuple[str, Event]], caplog: pytest.LogCaptureFixture
) -> None:
    first, second = split(month)
    writer = await stored(db, inventory, first)  # its rebuild, a long replay, stored a snapshot
    assert await writer.save_snapshot() is False  # nothing new since
    await writer.ingest(second, "test")
    count = await writer.repo.count_events()
    caplog.set_level(logging.INFO, logger="slawatch.service")
    reader = fresh(db)
    await reader.rebuild(store=False)
    [loaded] = said(caplog, "projection from its snapshot")
    after = loaded.events_after
    assert 0 < after < count and loaded.snapshot_events + after == count
    assert reader.projection_events() == count
    assert histories(reader) == await full_replay(db)
    # the reader replayed more than snapshot_after events: it stored the newer snapshot, which the next uses
    caplog.clear()
    again = fresh(db)
    await again.rebuild(store=False)
    [loaded] = said(caplog, "projection from its snapshot")
    assert (loaded.snapshot_events, loaded.events_after) == (count, 0)
    assert histories(again) == histories(reader)


async def test_a_build_beside_the_loop_starts_from_the_snapshot_too(
    db: Database, inventory: Inventory, month: list[tuple[str, Event]], caplog: pytest.LogCaptureFixture
) -> None:
    writer = await stored(db, inventory, *split(month))
    caplog.set_level(logging.INFO, logger="slawatch.service")
    reader = fresh(db)
    assert reader.build_projection_beside(store=False)
    await reader.wait_projection()
    assert said(caplog, "projection from its snapshot") and said(caplog, "projection built beside the loop")
    assert reader.projection_events() == await writer.repo.count_events()
    assert histories(reader) == await full_replay(db)


async def test_a_clean_stop_leaves_a_snapshot_of_everything_stored(
    db: Database, inventory: Inventory, month: list[tuple[str, Event]]
) -> None:
    writer = fresh(db)
    writer.snapshot_after = 10**9  # no snapshot while building: only the explicit one
    await writer.import_inventory(inventory)
    await writer.ingest(month, "test")
    assert await writer.save_snapshot() is True
    reader = fresh(db)
    key = await reader._key_for(inventory, await reader.contracts())
    snap = await read_snapshot(db, key)
    assert snap is not None and snap.events == await writer.repo.count_events()
    assert repr(snap).startswith("StoredSnapshot(key=") and len(repr(snap)) < 200  # no megabytes in logs


async def test_a_snapshot_of_another_inventory_is_not_used(
    db: Database, inventory: Inventory, month: list[tuple[str, Event]], caplog: pytest.LogCaptureFixture
) -> None:
    writer = await stored(db, inventory, month)
    nodes = inventory.nodes()
    renamed = Inventory([*nodes[:-1], replace(nodes[-1], name="renamed on site")])
    await fresh(db, snapshots=False).import_inventory(renamed)  # another process, which stores no snapshot
    caplog.set_level(logging.INFO, logger="slawatch.service")
    reader = fresh(db)
    await reader.rebuild(store=False)
    assert not said(caplog, "projection from its snapshot")
    assert reader.projection_events() == await writer.repo.count_events()
    assert histories(reader) == await full_replay(db)


@pytest.mark.parametrize("damage", ["corrupt bytes", "another event at its position", "fewer events under it"])
async def test_a_snapshot_that_does_not_fit_the_log_is_replayed_over(
    db: Database,
    inventory: Inventory,
    month: list[tuple[str, Event]],
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    writer = await stored(db, inventory, month)
    key = await writer._key_for(await writer.inventory(), await writer.contracts())
    snap = await read_snapshot(db, key)
    assert snap is not None
    if damage == "corrupt bytes":
        await write_snapshot(db, replace(snap, data=snap.data[: len(snap.data) // 2]))
    elif damage == "another event at its position":
        await write_snapshot(db, replace(snap, last_event="not-the-event-stored-there"))
    else:
        await write_snapshot(db, replace(snap, events=snap.events + 1))
    caplog.set_level(logging.INFO, logger="slawatch.service")
    reader = fresh(db)
    reader.snapshot_after = 10**9  # this reader stores none: the damaged one stays for the next assertion
    await reader.rebuild(store=False)
    assert not said(caplog, "projection from its snapshot")
    if damage == "corrupt bytes":
        assert said(caplog, "projection snapshot not used; the stored events are replayed")
    elif damage == "fewer events under it":
        assert said(caplog, "projection snapshot not used: the stored events do not add up to it")
    assert histories(reader) == await full_replay(db)


async def test_events_known_before_the_snapshot_stored_after_it_are_replayed_in_their_place(
    db: Database, inventory: Inventory, month: list[tuple[str, Event]], caplog: pytest.LogCaptureFixture
) -> None:
    first, second = split(month)
    # the first half known earlier than everything in the snapshot (a late import)
    await stored(db, inventory, second, first, newer_snapshots=False)
    caplog.set_level(logging.INFO, logger="slawatch.service")
    reader = fresh(db)
    await reader.rebuild(store=False)
    assert said(caplog, "projection snapshot not used: events known before it were stored after it")
    assert histories(reader) == await full_replay(db)
    assert await delete_snapshots(db) == 1


async def test_a_projection_whose_position_lags_its_engines_is_not_stored(db: Database, inventory: Inventory) -> None:
    """Engines that applied more than their position says (the position is read after the replay) would be
    given those events again on load: the count of events up to the position disagrees, nothing is stored."""
    writer = fresh(db)
    writer.snapshot_after = 10**9
    await writer.import_inventory(inventory)
    cam = next(n.id for n in inventory.nodes() if n.channels)
    await writer.ingest([("t:1", StateEvent(at=MONTH.start, node=cam, state=NodeState.DOWN))], "test")
    projection = writer._projection
    assert projection is not None
    projection.position -= 1  # as if its position had not been read yet
    assert await writer.save_snapshot() is False


async def test_a_report_of_now_starts_from_the_snapshot_and_says_the_same(
    db: Database, inventory: Inventory, month: list[tuple[str, Event]], caplog: pytest.LogCaptureFixture
) -> None:
    first, _second = split(month)
    await stored(db, inventory, *split(month), newer_snapshots=False)
    caplog.set_level(logging.INFO, logger="slawatch.service")
    from_snapshot = await fresh(db).report(MONTH.key)
    assert said(caplog, "projection from its snapshot")
    replayed = await fresh(db, snapshots=False).report(MONTH.key)
    assert from_snapshot.assessment == replayed.assessment
    assert from_snapshot.position == replayed.position == await event_position(db)
    assert from_snapshot.assessment.incidents  # a month with incidents, not two empty ones
    # as of a time before what the snapshot holds: the whole log up to then, as before
    caplog.clear()
    mid_month = first[len(first) // 2][1].known
    earlier = await fresh(db).report(MONTH.key, as_of=mid_month)
    assert not said(caplog, "projection from its snapshot")
    assert earlier.assessment == (await fresh(db, snapshots=False).report(MONTH.key, as_of=mid_month)).assessment
    assert earlier.assessment != from_snapshot.assessment
