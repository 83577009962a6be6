"""The one-tap acknowledgement page and the API's alert wiring, through the real app (httpx over ASGI).

Tokens: a forged one is refused (403), an expired one too (410), an ended incident cannot be acknowledged
(409), a name is required (422); the ack is recorded through ``Service.ingest`` (the stored event, the audit
log and the projection show it) and only the first counts. With a rules file in the settings, the app wires
the hook and the delivery loop itself, and the status route and the metrics' probe report the outbox.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from monitor.alerts.ackpage import make_token, read_token
from monitor.events import format_time, parse_event
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.settings import AlertSettings, Settings
from monitor.storage import Database
from tests.alerts.builders import SMALL, Clock
from tests.alerts.receivers import receiver

SECRET = "ack-page-secret"
T0 = datetime(2026, 10, 9, 18, 0, tzinfo=UTC)
INCIDENT = "CPE-0003@2026-10-09T18:00:00Z"


async def opened(db: Database, clock: Clock) -> Service:
    service = Service(db, clock=clock)
    await service.import_inventory(load_inventory(SMALL))
    down = parse_event({"type": "state", "at": format_time(T0), "node": "CPE-0003", "state": "down"})
    await service.ingest([("test", down)], source="test")
    return service


def test_tokens_are_signed_expiring_and_single_incident() -> None:
    token = make_token(SECRET, "default", INCIDENT, T0 + timedelta(hours=1))
    found = read_token(SECRET, token, T0)
    assert (found.contract_id, found.incident_id, found.expires) == ("default", INCIDENT, T0 + timedelta(hours=1))
    body, sig = token.split(".")
    other = make_token(SECRET, "default", "CPE-0002@2026-10-09T18:00:00Z", T0 + timedelta(hours=1))
    for bad in (f"{other.split('.')[0]}.{sig}", f"{body}.{sig[:-2]}xx", "nonsense", "", f"{body}."):
        with pytest.raises(Exception, match="not valid") as info:
            read_token(SECRET, bad, T0)
        assert getattr(info.value, "status", None) == 403
    with pytest.raises(Exception, match="expired") as info:
        read_token(SECRET, token, T0 + timedelta(hours=1))
    assert getattr(info.value, "status", None) == 410
    with pytest.raises(Exception, match="bad signature"):
        read_token("another-secret", token, T0)


async def test_the_page_records_the_ack_through_ingest(sqlite_db: Database, tmp_path: Path) -> None:
    clock = Clock(T0 + timedelta(minutes=20))
    service = await opened(sqlite_db, clock)
    app = create_app(Settings(data_dir=tmp_path), service=service)
    app.state.alert_settings = AlertSettings(secret=SECRET)
    token = make_token(SECRET, "default", INCIDENT, T0 + timedelta(hours=24))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
            page = await client.get(f"/ack/{token}")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            text = page.text
            assert INCIDENT in text and 'name="viewport"' in text and '<form method="post">' in text
            # 9 channels, level 3: response limit 8 h from 02:00 local, 20 min gone.
            assert "响应剩余 Response left</th><td>7 h 40 min" in text
            assert "<script" not in text and "<link" not in text and "src=" not in text

            nameless = await client.post(f"/ack/{token}", data={"by": "  "})
            assert nameless.status_code == 422 and nameless.json()["field"] == "by"
            expired = make_token(SECRET, "default", INCIDENT, T0)
            gone = await client.post(f"/ack/{expired}", data={"by": "Wang"})
            assert gone.status_code == 410 and gone.headers["content-type"] == "application/problem+json"
            forged = make_token("not-the-server-secret", "default", INCIDENT, T0 + timedelta(hours=24))
            assert (await client.post(f"/ack/{forged}", data={"by": "Wang"})).status_code == 403
            unknown = make_token(SECRET, "default", "CPE-0001@2026-10-09T18:00:00Z", T0 + timedelta(hours=24))
            assert (await client.get(f"/ack/{unknown}")).status_code == 404

            done = await client.post(f"/ack/{token}", data={"by": "Wang Wei 王伟"})
            assert done.status_code == 200 and "Acknowledged by Wang Wei 王伟" in done.text
            assert "<form" not in done.text
            clock.now += timedelta(minutes=5)
            again = await client.post(f"/ack/{token}", data={"by": "Li"})
            assert "Already acknowledged by Wang Wei 王伟" in again.text

    [incident] = await service.repo.load_incidents("default")
    assert incident["ack"] == T0 + timedelta(minutes=20) and incident["ack_by"] == "Wang Wei 王伟"
    events = [e for e in await service.repo.load_events() if e.type == "ack"]
    assert len(events) == 1 and events[0].known == T0 + timedelta(minutes=20)
    audit = await service.repo.load_audit(INCIDENT)
    assert [(a.actor, a.action) for a in audit] == [("Wang Wei 王伟", "ack")]

    # Once the incident has ended, the link refuses.
    up = parse_event({"type": "state", "at": format_time(T0 + timedelta(hours=1)), "node": "CPE-0003", "state": "up"})
    clock.now = T0 + timedelta(hours=1)
    await service.ingest([("test", up)], source="test")
    other = Service(sqlite_db, clock=clock)
    app2 = create_app(Settings(data_dir=tmp_path), service=other)
    app2.state.alert_settings = AlertSettings(secret=SECRET)
    async with app2.router.lifespan_context(app2):
        transport = httpx.ASGITransport(app=app2)
        async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
            ended = await client.post(f"/ack/{token}", data={"by": "Li"})
            assert ended.status_code == 409


async def test_without_a_secret_the_page_is_off(sqlite_db: Database, tmp_path: Path) -> None:
    service = await opened(sqlite_db, Clock(T0))
    app = create_app(Settings(data_dir=tmp_path), service=service)
    app.state.alert_settings = AlertSettings(secret=None)
    token = make_token(SECRET, "default", INCIDENT, T0 + timedelta(hours=24))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
            response = await client.get(f"/ack/{token}")
            assert response.status_code == 404 and "SLAWATCH_ALERT_SECRET" in response.json()["error"]
    assert service.alerts is None  # no rules: nothing wired


async def test_the_app_wires_alerts_from_a_rules_file(sqlite_db: Database, tmp_path: Path) -> None:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    service = Service(sqlite_db, clock=clock)
    await service.import_inventory(load_inventory(SMALL))
    token = await service.repo.create_token("viewer-1", "viewer")
    with receiver() as rec:
        rules_file = tmp_path / "alerts.yaml"
        rules_file.write_text(
            f"default_route: {{always: [hook]}}\ntargets: {{hook: {{kind: webhook, url: '{rec.url}/hook'}}}}\n",
            encoding="utf-8",
        )
        app = create_app(Settings(data_dir=tmp_path), service=service)
        app.state.alert_settings = AlertSettings(rules_file=rules_file, secret=SECRET, poll_s=0.05)
        async with app.router.lifespan_context(app):
            assert service.alerts is not None
            down = parse_event({"type": "state", "at": format_time(clock.now), "node": "CPE-0003", "state": "down"})
            await service.ingest([("test", down)], source="test")
            # Planned in the ingest, delivered by the loop that runs beside the API.
            for _ in range(250):
                stats = await app.state.alert_outbox()
                if stats.depth == 0:
                    break
                await asyncio.sleep(0.02)
            assert (stats.depth, stats.parked) == (0, 0)
            [body] = rec.bodies("/hook")
            assert body["kind"] == "opened" and body["links"]["ack"].startswith("http://127.0.0.1:8080/ack/")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
                assert (await client.get("/api/v1/alerts/status")).status_code == 401
                status = await client.get("/api/v1/alerts/status", headers={"Authorization": f"Bearer {token}"})
                assert status.status_code == 200
                data = status.json()
                assert data["wired"] is True and data["open_incidents"] == 1
                assert data["targets"] == {"hook": {"pending": 0, "sent": 1, "parked": 0}}
        assert service.alerts is None  # unwired on shutdown
