"""``Service.ingest`` confirms polls in memory (SQLite and PostgreSQL): what reaches the database, what is kept
in memory, and how a service notices what another process stored.

Times are written out: ``at(m, s)`` is 2026-10-03 08:mm:ss UTC; the deployment confirms down after 3 failed
polls and up after 2 good ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.confirmation import PollRun
from monitor.events import Event, NodeState, PollEvent, StateEvent
from monitor.inventory import Inventory, Node, NodeKind
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.storage import Database

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def at(m: int, s: int = 0) -> datetime:
    return datetime(2026, 10, 3, 8, m, s, tzinfo=UTC)


def polls(node: str, ok: bool, *minutes: int) -> list[tuple[str, Event]]:
    return [(f"{node}@{m}", PollEvent(at=at(m), node=node, ok=ok)) for m in minutes]


async def service_on(db: Database) -> Service:
    service = Service(db, clock=lambda: NOW)
    await service.import_inventory(load_inventory(SMALL))
    return service


async def test_only_confirmed_changes_reach_the_database(db: Database) -> None:
    service = await service_on(db)
    repo = db.repository()
    first = await service.ingest(polls("CPE-0001", False, 0, 1), "live", keep_runs=False)
    assert (first.received, first.stored, first.confirmed) == (2, 0, 0)
    assert await repo.count_events() == 0 and await repo.load_poll_runs() == {}  # nothing written
    third = await service.ingest(polls("CPE-0001", False, 2), "live", keep_runs=False)
    # the third failure confirms: down dated at the first poll of the run (08:00), known at the third (08:02)
    assert (third.stored, third.confirmed) == (1, 1)
    [stored] = await repo.load_events()
    assert stored == StateEvent(at=at(0), node="CPE-0001", state=NodeState.DOWN, known_at=at(2))
    assert (await service.node_states())["CPE-0001"] is NodeState.DOWN
    assert (await service.node_since())["CPE-0001"] == at(0)
    assert await repo.load_poll_runs() == {}  # the live collector's runs stay in memory


async def test_a_replay_keeps_the_runs_it_changed(db: Database) -> None:
    service = await service_on(db)
    await service.ingest(polls("CPE-0002", False, 0, 1), "replay:a.jsonl")
    assert await db.repository().load_poll_runs() == {"CPE-0002": PollRun(False, 2, at(0), at(1))}
    # a split replay equals one: a fresh service (another process) continues the run from the database
    other = Service(db, clock=lambda: NOW)
    result = await other.ingest(polls("CPE-0002", False, 2), "replay:b.jsonl")
    assert result.confirmed == 1
    assert (await other.node_states())["CPE-0002"] is NodeState.DOWN


async def test_stale_polls_are_reported_not_applied(db: Database) -> None:
    service = await service_on(db)
    await service.ingest(polls("CPE-0003", True, 10, 11), "replay:late.jsonl")
    result = await service.ingest(polls("CPE-0003", False, 5, 12), "replay:early.jsonl")
    assert result.not_applied == (
        (
            "CPE-0003@5",
            "poll dated 2026-10-03T08:05:00Z is not after the last applied poll of CPE-0003 (2026-10-03T08:11:00Z)",
        ),
    )
    assert result.to_json()["not_applied"] == [{"where": "CPE-0003@5", "reason": result.not_applied[0][1]}]
    assert result.confirmed == 0  # 08:12 alone is one failure, not three


async def test_states_stored_by_another_process_are_seen(db: Database) -> None:
    service = await service_on(db)
    states = await service.node_states()  # the live loop holds on to this mapping
    assert states.get("CPE-0003") is None
    other = Service(db, clock=lambda: NOW)
    await other.ingest([("api:1", StateEvent(at=at(20), node="CPE-0003", state=NodeState.DOWN))], "api:ops")
    await service.ingest(polls("CPE-0001", True, 21), "live", keep_runs=False)
    assert states["CPE-0003"] is NodeState.DOWN  # reloaded in place
    # a later-known event of this process and an older-known one of the other: processing order decides
    await service.ingest([("x", StateEvent(at=at(30), node="CPE-0003", state=NodeState.UP))], "api:ops")
    await other.ingest(
        [("y", StateEvent(at=at(25), node="CPE-0003", state=NodeState.UNKNOWN, known_at=at(26)))], "api:ops"
    )
    assert (await service.node_states())["CPE-0003"] is NodeState.UP  # known 08:30 stays the latest


async def test_an_inventory_imported_elsewhere_is_seen(db: Database) -> None:
    service = await service_on(db)
    assert "CAM-0002-4" not in await service.cached_inventory()
    old = load_inventory(SMALL)
    extra = Node("CAM-0002-4", NodeKind.CAMERA, parent="CPE-0002", address="127.20.0.9", channels=1)
    await Service(db, clock=lambda: NOW).import_inventory(Inventory([*old.nodes(), extra]))
    assert "CAM-0002-4" in await service.cached_inventory()
    result = await service.ingest(polls("CAM-0002-4", False, 0, 1, 2), "live", keep_runs=False)
    assert result.confirmed == 1
