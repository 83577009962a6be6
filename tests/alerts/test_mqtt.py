"""Alerts through real MQTT brokers with a real aiomqtt subscriber.

* The machine's Mosquitto (127.0.0.1:1883): open, level rise, repeat, escalation, acknowledgement by the
  one-tap link (the API's ack page), resolution; QoS 1, MQTT 5 message expiry, the retained state per open
  incident and its clearing. Each run dates its incident at a random minute, so its topics and ids are its own.
* A private mosquitto on a free port, stopped mid-incident and restarted: nothing is lost, order per incident
  holds.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from monitor.alerts.ackpage import link_maker
from monitor.alerts.delivery import Delivery
from monitor.alerts.outbox import messages
from monitor.alerts.rules import AlertRules, rules_from_mapping
from monitor.events import Event, format_time, parse_event
from monitor.settings import AlertSettings, Settings
from monitor.storage import Database
from tests.alerts.builders import Clock, alerting_service
from tests.alerts.mqtt_helpers import SHARED, PrivateBroker, require_shared_broker, subscribe

pytestmark = pytest.mark.mqtt

ACK_SECRET = "ack-secret-for-tests"


def rules(port: int) -> AlertRules:
    return rules_from_mapping(
        {
            "repeat_every_s": 1800,
            "escalation": {
                2: [{"role": "crew", "after_s": 0}, {"role": "supervisor", "after_s": 3600}],
                3: [{"role": "crew", "after_s": 0}, {"role": "supervisor", "after_s": 3600}],
            },
            "default_route": {"always": ["mqtt"]},
            "targets": {"mqtt": {"kind": "mqtt", "url": f"mqtt://127.0.0.1:{port}", "expiry_s": 600}},
        }
    )


def ev(kind: str, at: datetime, **kw: Any) -> tuple[str, Event]:
    return ("test", parse_event({"type": kind, "at": format_time(at), **kw}))


def random_start() -> datetime:
    """A start unique to this run (to the minute, within 2026-2029), so topics and ids are the run's own."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=secrets.randbelow(3 * 365 * 24 * 60))


async def test_incident_life_through_the_shared_mosquitto(sqlite_db: Database, tmp_path: Path) -> None:
    require_shared_broker()
    t0 = random_start()
    clock = Clock(t0)
    alert_rules = rules(SHARED[1])
    links = link_maker(ACK_SECRET, "http://slawatch.test", timedelta(hours=24))
    service, hook = await alerting_service(sqlite_db, alert_rules, clock, links)
    delivery = Delivery(sqlite_db, alert_rules, AlertSettings(backoff_s=1), hook=hook, clock=clock)
    incident = f"CPE-0003@{format_time(t0)}"
    state_topic = f"slawatch/v1/state/incidents/{incident}"
    app = create_app(Settings(data_dir=tmp_path), service=service)
    app.state.alert_settings = AlertSettings(secret=ACK_SECRET)

    async with subscribe(*SHARED, "slawatch/v1/incidents/+/+") as sub, app.router.lifespan_context(app):
        # Opened: 9 channels of CPE-0003, level 3.
        await service.ingest([ev("state", t0, node="CPE-0003", state="down")], source="test")
        await delivery.round()
        # +2 min: CPE-0002's 3 channels join (same township, inside the window): 12 channels, level 2.
        clock.now = t0 + timedelta(minutes=2)
        await service.ingest([ev("state", clock.now, node="CPE-0002", state="down")], source="test")
        await delivery.round()
        # +30 min: the first repeat; +60 min: the supervisor's step and the second repeat.
        clock.now = t0 + timedelta(minutes=30)
        await delivery.round()
        clock.now = t0 + timedelta(minutes=60)
        await delivery.round()
        got = await sub.wait_for(incident, 5)
        assert [m["kind"] for m in got] == ["opened", "level", "repeat", "escalation", "repeat"]
        assert [m["level"] for m in got] == [3, 2, 2, 2, 2]
        assert got[0]["channels_offline"] == 9 and got[1]["channels_offline"] == 12 and got[1]["scope"] == "T01"
        assert got[3]["role"] == "supervisor"
        events = [m for m in sub.messages if m.json.get("incident") == incident]
        assert [m.topic for m in events[:2]] == ["slawatch/v1/incidents/3/CPE-0003", "slawatch/v1/incidents/2/T01"]
        assert all(m.qos == 1 and not m.retain for m in events)
        assert all(m.expiry is not None and 0 < m.expiry <= 600 for m in events)

        # The retained state of the open incident, as a late subscriber sees it.
        async with subscribe(*SHARED, state_topic) as late:
            await asyncio.wait_for(late.event.wait(), 10)
            [state] = late.messages
            assert state.retain and state.json["incident"] == incident and state.json["open"] is True

        # +70 min: the crew taps the link of the last message.
        clock.now = t0 + timedelta(minutes=70)
        link = got[-1]["links"]["ack"]
        path = link.removeprefix("http://slawatch.test")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
            page = await client.get(path)
            assert page.status_code == 200 and incident in page.text and "Response left" in page.text
            assert "<script" not in page.text and "http://" not in page.text and "https://" not in page.text
            done = await client.post(path, data={"by": "Wang Wei"})
            assert done.status_code == 200 and "Acknowledged by Wang Wei" in done.text
            forged = await client.get(path[:-3] + "AAA")
            assert forged.status_code == 403 and forged.json()["field"] == "token"
        await delivery.round()
        # +90 min: both circuits back: resolved.
        clock.now = t0 + timedelta(minutes=90)
        await service.ingest(
            [ev("state", clock.now, node="CPE-0002", state="up"), ev("state", clock.now, node="CPE-0003", state="up")],
            source="test",
        )
        await delivery.round()
        got = await sub.wait_for(incident, 7)
        assert [m["kind"] for m in got] == ["opened", "level", "repeat", "escalation", "repeat", "ack", "resolved"]
        assert got[5]["ack_by"] == "Wang Wei" and got[5]["ack"] == format_time(t0 + timedelta(minutes=70))
        assert got[6]["open"] is False and got[6]["end"] == format_time(t0 + timedelta(minutes=90))
        assert len({m["alert_id"] for m in got}) == 7

    # Cleared: a new subscriber to the state topic receives no retained message (a retained one would come
    # with the subscription, before the ping published after it).
    ping = f"slawatch/v1/test/{secrets.token_hex(4)}"
    async with subscribe(*SHARED, state_topic, ping) as after:
        await _publish(ping)
        while not any(m.topic == ping for m in after.messages):
            after.event.clear()
            await asyncio.wait_for(after.event.wait(), 10)
        assert [m.topic for m in after.messages] == [ping]
    await delivery.close()


async def _publish(topic: str) -> None:
    import aiomqtt

    async with aiomqtt.Client(*SHARED, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(topic, b"x", qos=1)


async def test_a_broker_restarted_mid_incident_loses_nothing_and_keeps_order(
    sqlite_db: Database, tmp_path: Path
) -> None:
    broker = PrivateBroker(tmp_path)
    await broker.start()
    try:
        t0 = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
        clock = Clock(t0)
        alert_rules = rules(broker.port)
        service, hook = await alerting_service(sqlite_db, alert_rules, clock)
        delivery = Delivery(sqlite_db, alert_rules, AlertSettings(backoff_s=1, max_attempts=20, timeout_s=3), hook=hook,
                            clock=clock)
        incident = f"CPE-0003@{format_time(t0)}"
        received: list[dict[str, Any]] = []
        async with subscribe("127.0.0.1", broker.port, "slawatch/v1/incidents/+/+") as sub:
            await service.ingest([ev("state", t0, node="CPE-0003", state="down")], source="test")
            await delivery.round()
            received += await sub.wait_for(incident, 1)
            await broker.stop()
            # While the broker is down: the level rises, the crew acknowledges, one circuit returns.
            clock.now = t0 + timedelta(minutes=1)
            await service.ingest([ev("state", clock.now, node="CPE-0002", state="down")], source="test")
            clock.now = t0 + timedelta(minutes=3)
            await service.ingest([ev("ack", clock.now, incident=incident, by="Li")], source="test")
            failed = await delivery.round()
            assert failed.sent == 0 and failed.failed == 1
            clock.now = t0 + timedelta(minutes=4)
            assert (await delivery.round()).failed == 1
        await broker.start()
        async with subscribe("127.0.0.1", broker.port, "slawatch/v1/incidents/+/+") as sub:
            clock.now = t0 + timedelta(minutes=10)
            await service.ingest(
                [
                    ev("state", clock.now, node="CPE-0002", state="up"),
                    ev("state", clock.now, node="CPE-0003", state="up"),
                ],
                source="test",
            )
            for _ in range(5):
                clock.now += timedelta(minutes=1)
                await delivery.round()
            received += await sub.wait_for(incident, 3)
        kinds = [m["kind"] for m in received]
        assert kinds == ["opened", "level", "ack", "resolved"]
        stored = await messages(sqlite_db)
        assert [m.kind for m in stored] == kinds and all(m.status == "sent" for m in stored)
        assert stored[1].attempts >= 2  # it waited out the broker
        await delivery.close()
    finally:
        await broker.stop()
