"""Computed month reports kept in memory (``monitor.report_cache``): the pure cache with an injected clock, then
the service on SQLite and PostgreSQL: asked again, a report comes from memory exactly as computed; any stored
event, another inventory or another contract makes the next one a new computation that sees it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.contracts import Contract
from monitor.events import Event, NodeState, StateEvent
from monitor.inventory import Inventory
from monitor.inventory_io import load_inventory
from monitor.report_cache import ReportCache, ReportKey
from monitor.service import Service
from monitor.storage import Database

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
T0 = datetime(2026, 10, 3, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock moved by hand (s)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def key(position: int = 7, month: str = "2026-10", terms: str = "{}") -> ReportKey:
    return ReportKey("default", terms, month, (3, 1), position)


# ------------------------------------------------------------------------------------------------ pure cache
def test_as_of_now_is_served_while_young_enough_and_says_how_old() -> None:
    ticks = Ticks()
    cache: ReportCache[str] = ReportCache(entries=4, max_age_s=60, clock=ticks)
    assert cache.get(key(), None) is None
    cache.put(key(), NOW, "report@7", for_now=True)
    ticks.t += 59.5
    assert cache.get(key(), None) == ("report@7", 59.5)
    ticks.t += 1
    assert cache.get(key(), None) is None  # 60.5 s old: computed again
    assert (cache.hits, cache.misses) == (1, 2)


def test_an_explicit_as_of_is_served_only_for_that_time_and_never_expires() -> None:
    ticks = Ticks()
    cache: ReportCache[str] = ReportCache(entries=4, max_age_s=60, clock=ticks)
    cache.put(key(), NOW, "as of NOW", for_now=False)
    assert cache.get(key(), NOW + timedelta(seconds=1)) is None
    assert cache.get(key(), None) is None  # asked for a time, not for "now"
    ticks.t += 86400
    assert cache.get(key(), NOW) == ("as of NOW", 86400)
    cache.put(key(), NOW + timedelta(hours=1), "now, later", for_now=True)
    assert cache.get(key(), NOW + timedelta(hours=1)) == ("now, later", 0)  # a "now" result is one as of its time


def test_another_position_month_terms_or_inventory_is_another_report() -> None:
    cache: ReportCache[str] = ReportCache(entries=8, max_age_s=60, clock=Ticks())
    cache.put(key(), NOW, "r", for_now=True)
    assert cache.get(key(position=8), None) is None
    assert cache.get(key(month="2026-11"), None) is None
    assert cache.get(key(terms='{"scopes":["A"]}'), None) is None
    assert cache.get(ReportKey("default", "{}", "2026-10", (3, 2), 7), None) is None
    assert cache.get(key(), None) == ("r", 0)


def test_a_newer_position_drops_the_older_ones_and_the_least_recently_used_goes_first() -> None:
    cache: ReportCache[str] = ReportCache(entries=2, max_age_s=60, clock=Ticks())
    cache.put(key(position=1), NOW, "old", for_now=True)
    cache.put(key(position=1, month="2026-09"), NOW, "september", for_now=True)
    cache.put(key(position=2), NOW, "new", for_now=True)  # the October report at position 1 is unreachable now
    assert len(cache) == 2 and cache.get(key(position=1), None) is None
    assert cache.get(key(position=1, month="2026-09"), None) == ("september", 0)  # used: kept over...
    cache.put(key(position=2, month="2026-08"), NOW, "august", for_now=True)
    assert cache.get(key(position=2), None) is None  # ...the least recently used one
    assert cache.get(key(position=2, month="2026-08"), None) == ("august", 0)


def test_no_entries_keeps_nothing_and_bad_bounds_are_refused() -> None:
    cache: ReportCache[str] = ReportCache(entries=0, max_age_s=60)
    cache.put(key(), NOW, "r", for_now=True)
    assert cache.get(key(), None) is None and len(cache) == 0
    with pytest.raises(ValueError, match="entries is >= 0, not -1"):
        ReportCache(entries=-1)
    with pytest.raises(ValueError, match="max_age_s is >= 0, not -1"):
        ReportCache(max_age_s=-1)
    with pytest.raises(ValueError, match="position is >= 0, not -1"):
        key(position=-1)


# ------------------------------------------------------------------------------------------ through the service
class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def down(seconds: float, node: str, state: str = "down") -> list[tuple[str, Event]]:
    return [("test:1", StateEvent(at=T0 + timedelta(seconds=seconds), node=node, state=NodeState(state)))]


@pytest.fixture
async def service(db: Database) -> Service:
    svc = Service(db, clock=Clock(), report_cache=ReportCache(entries=4, max_age_s=3600))
    await svc.import_inventory(load_inventory(SMALL))
    await svc.ingest(down(0, "CPE-0001"), "test")
    return svc


async def test_a_report_asked_again_comes_from_memory_unchanged(service: Service) -> None:
    first = await service.report("2026-10")
    assert first.age_s is None
    service.clock.now += timedelta(minutes=5)  # type: ignore[attr-defined]
    again = await service.report("2026-10")
    assert again.age_s is not None and again.text == first.text and again.generated_at == first.generated_at
    assert again.assessment.as_of == NOW  # as of its computation, and it says so
    uncached = Service(service.db, clock=lambda: NOW)  # the same inputs computed afresh give the same text
    assert (await uncached.report("2026-10")).text == again.text
    assert json.loads(again.text) == first.body


async def test_a_stored_event_makes_the_next_report_a_new_computation(service: Service) -> None:
    before = await service.report("2026-10")
    await service.ingest(down(3600, "CPE-0001", "up"), "test")
    after = await service.report("2026-10")
    assert after.age_s is None and after.position > before.position
    assert after.body["online_channel_seconds"] > before.body["online_channel_seconds"]  # the outage ended
    assert (await service.report("2026-10")).age_s is not None


async def test_another_contract_or_inventory_makes_a_new_computation(service: Service) -> None:
    whole = await service.report("2026-10")
    await service.save_contracts([Contract("default", scopes=("CPE-0002",))])
    part = await service.report("2026-10")
    assert part.age_s is None and part.body["expected_channel_seconds"] < whole.body["expected_channel_seconds"]
    assert (await service.report("2026-10")).age_s is not None
    inventory = load_inventory(SMALL)
    camera = next(n for n in inventory.nodes() if n.channels and n.parent == "CPE-0002")
    await service.import_inventory(Inventory(n for n in inventory.nodes() if n.id != camera.id))
    fewer = await service.report("2026-10")
    assert fewer.age_s is None and fewer.body["expected_channel_seconds"] < part.body["expected_channel_seconds"]


async def test_an_explicit_as_of_is_kept_apart_from_now(service: Service) -> None:
    earlier = T0 + timedelta(days=1)
    first = await service.report("2026-10", as_of=earlier)
    assert first.age_s is None and first.assessment.as_of == earlier
    assert (await service.report("2026-10", as_of=earlier)).age_s is not None
    now = await service.report("2026-10")
    assert now.age_s is None and now.assessment.as_of == NOW
