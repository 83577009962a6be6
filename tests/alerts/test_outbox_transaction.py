"""The alert outbox is written in the same transaction as the incident change that causes it (issue 8,
Delivery), on SQLite and PostgreSQL: a fault in the database itself (a trigger refusing inserts into the
outbox, or into the incidents) stores neither the change nor its alerts, on an ingest and on a whole rebuild;
the events are kept, and the next ingest stores both."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.hook import AlertHook
from monitor.alerts.outbox import load_states, messages
from monitor.alerts.rules import rules_from_mapping
from monitor.errors import StorageError
from monitor.events import Event, parse_event
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.storage import Database
from tests.faults import refuse_inserts

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
CPE3 = "CPE-0003@2026-10-09T18:00:00Z"

RULES = rules_from_mapping(
    {
        "default_route": {"roles": {"crew": ["hook"]}},
        "escalation": {3: [{"role": "crew", "after_s": 0}]},
        # never delivered here: the port is only named, nothing is sent in these tests
        "targets": {"hook": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"}},
    }
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def state(at: str, node: str, st: str) -> list[tuple[str, Event]]:
    return [("test:1", parse_event({"type": "state", "at": at, "node": node, "state": st}))]


async def _stored(service: Service, db: Database) -> dict[str, Any]:
    incidents = {i["id"]: i for i in await service.repo.load_incidents("default")}
    states = await load_states(db, "default", [CPE3])
    return {
        "end": incidents[CPE3]["end"] if CPE3 in incidents else "missing",
        "state_end": states[CPE3].facts.end if CPE3 in states else "missing",
        "kinds": [m.kind for m in await messages(db, CPE3)],
        "incidents": sorted(incidents),
    }


@pytest.mark.parametrize("table", ["alert_outbox", "incidents"])
async def test_an_incident_change_and_its_alerts_are_stored_together_or_not_at_all(
    db: Database, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 0, tzinfo=UTC))
    service = Service(db, clock=clock, alerts=AlertHook(db, RULES))
    await service.import_inventory(load_inventory(SMALL))
    await service.ingest(state("2026-10-10T02:00:00+08:00", "CPE-0003", "down"), "test")
    before = await _stored(service, db)
    assert before == {"end": None, "state_end": None, "kinds": ["opened"], "incidents": [CPE3]}

    await refuse_inserts(db, table, on=True)
    clock.now = datetime(2026, 10, 9, 19, 0, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="slawatch.service"):
        result = await service.ingest(state("2026-10-10T03:00:00+08:00", "CPE-0003", "up"), "test")
    assert result.stored == 1  # the event is kept...
    assert any("rebuilt" in r.getMessage() for r in caplog.records)
    # ...but neither the resolution nor its alert (nor the alert state) is stored without the other
    assert await _stored(service, db) == before
    # a whole rebuild meets the same fault: it fails whole too
    with pytest.raises(StorageError, match="injected fault"):
        await service.rebuild()
    assert await _stored(service, db) == before

    await refuse_inserts(db, table, on=False)
    clock.now = datetime(2026, 10, 9, 19, 10, tzinfo=UTC)
    result = await service.ingest(state("2026-10-10T03:10:00+08:00", "CPE-0001", "down"), "test")
    assert result.stored == 1
    after = await _stored(service, db)
    resolved = datetime(2026, 10, 9, 19, 0, tzinfo=UTC)
    assert (after["end"], after["state_end"], after["kinds"]) == (resolved, resolved, ["opened", "resolved"])
    assert after["incidents"] == ["CPE-0001@2026-10-09T19:10:00Z", CPE3]
    # planned once: a later rebuild compares with the stored states and plans nothing new
    await service.rebuild()
    assert [m.kind for m in await messages(db, CPE3)] == ["opened", "resolved"]


async def test_the_outbox_write_joins_the_transaction_of_an_incremental_projection(db: Database) -> None:
    """No rebuild in between: an ack applied incrementally is stored with its alert in one write."""
    clock = Clock(datetime(2026, 10, 9, 18, 0, tzinfo=UTC))
    service = Service(db, clock=clock, alerts=AlertHook(db, RULES))
    await service.import_inventory(load_inventory(SMALL))
    await service.ingest(state("2026-10-10T02:00:00+08:00", "CPE-0003", "down"), "test")
    events = service.projection_events()
    clock.now = datetime(2026, 10, 9, 18, 5, tzinfo=UTC)
    ack = [("test:1", parse_event({"type": "ack", "at": "2026-10-10T02:05:00+08:00", "incident": CPE3, "by": "Li"}))]
    await service.ingest(ack, "test")
    assert service.projection_events() == (events or 0) + 1  # applied in place, not rebuilt
    [stored] = [i for i in await service.repo.load_incidents("default") if i["id"] == CPE3]
    assert stored["ack_by"] == "Li"
    assert [m.kind for m in await messages(db, CPE3)] == ["opened", "ack"]
