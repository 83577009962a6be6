"""The service's alert hook and the durable outbox on a real database (SQLite and PostgreSQL), delivered to a
real webhook receiver on 127.0.0.1: at least once, in order per incident, ids for duplicates, HMAC signatures,
retries with backoff, parking after too many failures, and nothing at all without rules."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.alerts.ackpage import link_maker
from monitor.alerts.delivery import Delivery
from monitor.alerts.hook import AlertHook
from monitor.alerts.outbox import deliverable, messages, outbox_counts, outbox_status, requeue, write_plans
from monitor.alerts.rules import AlertRules, IncidentFacts, plan_change, rules_from_mapping
from monitor.events import Event, parse_event
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.settings import AlertSettings
from monitor.storage import Database
from tests.alerts.receivers import Receiver, receiver

SMALL = Path(__file__).parent.parent / "data" / "inventory" / "small.csv"
SECRET = "webhook-secret"
CPE3 = "CPE-0003@2026-10-09T18:00:00Z"  # 02:00 local on Oct 10


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def located(raw: list[dict[str, Any]]) -> list[tuple[str, Event]]:
    return [(f"test:{i + 1}", parse_event(e)) for i, e in enumerate(raw)]


def rules_for(url: str, **extra: Any) -> AlertRules:
    return rules_from_mapping(
        {
            "repeat_every_s": 1800,
            "default_route": {"roles": {"crew": ["hook"]}},
            "escalation": {3: [{"role": "crew", "after_s": 0}]},
            "targets": {"hook": {"kind": "webhook", "url": f"{url}/hook", "secret": SECRET}},
            **extra,
        }
    )


SETTINGS = AlertSettings(backoff_s=60, backoff_max_s=600, max_attempts=3, timeout_s=5)


async def make_service(db: Database, clock: Clock, rules: AlertRules | None) -> Service:
    hook = None
    if rules is not None:
        links = link_maker("ack-secret", "http://127.0.0.1:8080", timedelta(hours=24))
        hook = AlertHook(db, rules, links=links)
    service = Service(db, clock=clock, alerts=hook)
    await service.import_inventory(load_inventory(SMALL))
    return service


def check_signature(rec: Receiver) -> None:
    for r in rec.requests:
        expected = hmac.new(SECRET.encode(), r.headers["x-slawatch-timestamp"].encode() + b"." + r.raw,
                            hashlib.sha256).hexdigest()
        assert r.headers["x-slawatch-signature"] == f"sha256={expected}"
        assert r.headers["x-slawatch-alert-id"] == r.json["alert_id"]


async def test_incident_to_webhook_in_order_signed_and_once(db: Database) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 0, tzinfo=UTC))
    with receiver() as rec:
        rules = rules_for(rec.url)
        service = await make_service(db, clock, rules)
        down = [{"type": "state", "at": "2026-10-10T02:00:00+08:00", "node": "CPE-0003", "state": "down"}]
        await service.ingest(located(down), source="test")
        await service.ingest(located(down), source="test")  # the same event again: nothing new
        stored = await messages(db)
        assert [(m.kind, m.target, m.incident_id) for m in stored] == [("opened", "hook", CPE3)]
        assert stored[0].payload["channels_offline"] == 9 and stored[0].payload["level"] == 3
        assert stored[0].payload["links"]["ack"].startswith("http://127.0.0.1:8080/ack/")

        delivery = Delivery(db, rules, SETTINGS, hook=service.alerts, clock=clock)
        # 18:10: the opened message goes; 18:30: the first repeat is planned and goes.
        clock.now = datetime(2026, 10, 9, 18, 10, tzinfo=UTC)
        assert (await delivery.round()).sent == 1
        clock.now = datetime(2026, 10, 9, 18, 30, tzinfo=UTC)
        result = await delivery.round()
        assert (result.planned, result.sent) == (1, 1)
        # The crew acknowledges, then CPE-0003 comes back.
        clock.now = datetime(2026, 10, 9, 18, 40, tzinfo=UTC)
        await service.ingest(
            located([{"type": "ack", "at": "2026-10-10T02:40:00+08:00", "incident": CPE3, "by": "Wang"}]),
            source="test",
        )
        clock.now = datetime(2026, 10, 9, 19, 0, tzinfo=UTC)
        await service.ingest(
            located([{"type": "state", "at": "2026-10-10T03:00:00+08:00", "node": "CPE-0003", "state": "up"}]),
            source="test",
        )
        clock.now = datetime(2026, 10, 9, 21, 0, tzinfo=UTC)
        await delivery.round()
        await delivery.close()
        kinds = [b["kind"] for b in rec.bodies("/hook")]
        assert kinds == ["opened", "repeat", "ack", "resolved"]  # no repeat after the ack
        bodies = rec.bodies("/hook")
        assert bodies[2]["ack_by"] == "Wang" and bodies[3]["end"] == "2026-10-09T19:00:00Z"
        assert len({b["alert_id"] for b in bodies}) == 4
        check_signature(rec)

        # A restart rebuilds the projection: the hook compares with what it planned, so nothing is planned twice.
        again = Service(db, clock=clock, alerts=AlertHook(db, rules))
        await again.rebuild()
        assert len(await messages(db)) == 4
        assert await outbox_counts(db) == {("hook", "sent"): 4}


async def test_a_dead_target_is_retried_with_backoff_then_parked_and_order_holds(db: Database) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 0, tzinfo=UTC))
    with receiver() as rec:
        rules = rules_for(rec.url, repeat_every_s=0)
        service = await make_service(db, clock, rules)
        delivery = Delivery(db, rules, SETTINGS, hook=service.alerts, clock=clock)
        await service.ingest(
            located(
                [
                    {"type": "state", "at": "2026-10-10T02:00:00+08:00", "node": "CPE-0003", "state": "down"},
                    {"type": "ack", "at": "2026-10-10T02:00:30+08:00", "node": "CPE-0003", "by": "Li"},
                ]
            ),
            source="test",
        )
        rec.fail_next = 2
        result = await delivery.round()
        assert (result.sent, result.failed) == (0, 1)
        # Held back: the ack must not overtake the opened message, before or after the retry time.
        clock.now += timedelta(seconds=59)
        assert (await delivery.round()).sent == 0
        clock.now += timedelta(seconds=1)  # 60 s: the first retry, which fails too; the next is 120 s later
        assert (await delivery.round()).failed == 1
        [first, _ack] = await messages(db)
        assert first.attempts == 2 and first.next_attempt == clock.now + timedelta(seconds=120)
        assert "HTTP 500" in (first.last_error or "")
        clock.now += timedelta(seconds=120)
        assert (await delivery.round()).sent == 2
        assert [b["kind"] for b in rec.bodies("/hook")] == ["opened", "ack"]

        # A target that stays down: 3 failures park the message, reported by status and the metric function.
        await service.ingest(
            located([{"type": "state", "at": "2026-10-10T03:00:00+08:00", "node": "CPE-0003", "state": "up"}]),
            source="test",
        )
        rec.fail_next = 100
        for _ in range(3):
            clock.now += timedelta(seconds=600)
            await delivery.round()
        counts = await outbox_counts(db)
        assert counts == {("hook", "sent"): 2, ("hook", "parked"): 1}
        status = await outbox_status(db)
        assert [m.kind for m in status.parked] == ["resolved"] and status.parked[0].attempts == 3
        # Put back by hand (slawatch alerts retry), delivered once the target is up again.
        rec.fail_next = 0
        assert await requeue(db, clock.now) == 1
        assert (await delivery.round()).sent == 1
        assert [b["kind"] for b in rec.bodies("/hook")] == ["opened", "ack", "resolved"]
        await delivery.close()


async def test_a_service_without_rules_writes_no_alerts(db: Database) -> None:
    clock = Clock(datetime(2026, 10, 9, 18, 0, tzinfo=UTC))
    service = await make_service(db, clock, None)
    await service.ingest(
        located([{"type": "state", "at": "2026-10-10T02:00:00+08:00", "node": "CPE-0003", "state": "down"}]),
        source="test",
    )
    assert len(await service.repo.load_incidents("default")) == 1
    assert await messages(db) == [] and await outbox_counts(db) == {}
    assert (await outbox_status(db)).open_incidents == 0


async def test_a_dead_targets_backlog_does_not_hide_the_others(db: Database) -> None:
    rules = rules_from_mapping(
        {
            "default_route": {"always": ["dead", "alive"]},
            "targets": {
                "dead": {"kind": "webhook", "url": "http://127.0.0.1:9/dead"},
                "alive": {"kind": "webhook", "url": "http://127.0.0.1:9/alive"},
            },
        }
    )
    t0 = datetime(2026, 10, 3, 2, 0, tzinfo=UTC)
    for n in range(3):
        facts = IncidentFacts("default", f"CPE-000{n + 1}@2026-10-03T02:00:00Z", f"CPE-000{n + 1}", ("T01",), 3,
                              9, 9, t0)
        planned, state = plan_change(rules, None, facts, t0)
        assert state is not None
        await write_plans(db, [state], [p for p in planned if p.target == "dead"], t0)
    facts = IncidentFacts("default", "T02@2026-10-03T02:00:00Z", "T02", ("T02",), 3, 9, 9, t0)
    planned, state = plan_change(rules, None, facts, t0)
    assert state is not None
    await write_plans(db, [state], planned, t0)
    groups = await deliverable(db, t0, per_target=2)
    assert sorted((g[0].target, g[0].incident_id) for g in groups) == [
        ("alive", "T02@2026-10-03T02:00:00Z"),
        ("dead", "CPE-0001@2026-10-03T02:00:00Z"),
        ("dead", "CPE-0002@2026-10-03T02:00:00Z"),
    ]


async def test_timers_and_changes_planned_side_by_side_do_not_undo_each_other(db: Database) -> None:
    from monitor.alerts.outbox import load_states

    clock = Clock(datetime(2026, 10, 9, 18, 0, tzinfo=UTC))
    rules = rules_for("http://127.0.0.1:9")
    service = await make_service(db, clock, rules)
    assert service.alerts is not None
    await service.ingest(
        located([{"type": "state", "at": "2026-10-10T02:00:00+08:00", "node": "CPE-0003", "state": "down"}]),
        source="test",
    )
    clock.now = datetime(2026, 10, 9, 18, 30, tzinfo=UTC)  # the first repeat is due, and the crew acks now
    ack = located([{"type": "ack", "at": "2026-10-10T02:30:00+08:00", "incident": CPE3, "by": "Wang"}])
    await asyncio.gather(service.alerts.tick(clock.now), service.ingest(ack, source="test"))
    [state] = (await load_states(db, "default", [CPE3])).values()
    assert state.facts.ack_by == "Wang" and state.next_due is None
    clock.now = datetime(2026, 10, 9, 20, 0, tzinfo=UTC)
    assert await service.alerts.tick(clock.now) == 0
    kinds = [m.kind for m in await messages(db)]
    assert kinds in (["opened", "repeat", "ack"], ["opened", "ack"])
