"""Maintenance windows over the API (SPEC §4): the operator requests, the assessor consents or refuses; only a
consent emits the maintenance event that a report counts. A real app over SQLite, with a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.storage import Database, default_database_url

SMALL = Path(__file__).parents[1] / "data" / "inventory" / "small.csv"
CST = timezone(timedelta(hours=8))
AS_OF = "2026-04-05T00:00:00+08:00"
ROLES = ("viewer", "collector", "operator", "assessor", "admin")

# T01-B2 covers CPE-0003 (no channels of its own), CAM-0003-1 (1 channel) and NVR-0003 (8 channels).
SCOPE = "T01-B2"
SCOPE_CHANNELS = 1 + 8
WINDOW = {"scope": SCOPE, "from": "2026-03-25T01:00:00+08:00", "to": "2026-03-25T03:00:00+08:00", "reason": "splice"}
WINDOW_S = 2 * 3600


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 20, 9, 0, tzinfo=CST))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ClockedApi:
    client: httpx.AsyncClient
    service: Service
    tokens: dict[str, str]
    clock: Clock

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def post(self, role: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.auth(role), **kw)

    async def get(self, role: str, path: str, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.auth(role))

    async def excluded(self, month: str = "2026-03") -> Any:
        r = await self.get("viewer", f"/api/v1/reports/monthly/{month}", as_of=AS_OF)
        assert r.status_code == 200, r.text
        return r.json()["excluded_channel_seconds"]


@asynccontextmanager
async def clocked_api(tmp_path: Path) -> AsyncIterator[ClockedApi]:
    """The real app over a SQLite database in ``tmp_path``, its service on a settable clock, a token per role."""
    db = Database(default_database_url(tmp_path / "data"))
    await db.connect()
    try:
        await db.upgrade()
        clock = Clock()
        service = Service(db, clock=clock)
        await service.import_inventory(load_inventory(SMALL))
        tokens = {role: await service.repo.create_token(f"{role}-1", role) for role in ROLES}
        app = create_app(service=service)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
                yield ClockedApi(client, service, tokens, clock)
    finally:
        await db.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ClockedApi]:
    async with clocked_api(tmp_path) as api:
        yield api


async def request(api: ClockedApi, body: dict[str, Any] = WINDOW, role: str = "operator") -> dict[str, Any]:
    r = await api.post(role, "/api/v1/maintenance", body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_requested_is_listed_and_not_counted_until_consented(api: ClockedApi) -> None:
    record = await request(api)
    assert record["id"].startswith("MR-") and len(record["id"]) == 3 + 12
    assert record["status"] == "requested" and record["late"] is False
    assert record["from"] == "2026-03-24T17:00:00Z" and record["to"] == "2026-03-24T19:00:00Z"
    assert record["requested_by"] == "operator-1" and record["requested_at"] == "2026-03-20T01:00:00Z"
    listed = (await api.get("viewer", "/api/v1/maintenance", status="requested")).json()["requests"]
    assert [r["id"] for r in listed] == [record["id"]]
    assert (await api.get("viewer", "/api/v1/maintenance", status="consented")).json()["requests"] == []
    assert await api.excluded() == 0
    assert await api.service.repo.load_events() == []

    api.clock.now = datetime(2026, 3, 21, 10, 0, tzinfo=CST)
    r = await api.post("assessor", f"/api/v1/maintenance/{record['id']}/consent", {"note": "ok, tell the site"})
    assert r.status_code == 200, r.text
    decided = r.json()
    assert decided["status"] == "consented" and decided["decided_by"] == "assessor-1"
    assert decided["decided_at"] == "2026-03-21T02:00:00Z" and decided["note"] == "ok, tell the site"
    # Every channel under the scope is excluded for the whole window: 9 channels × 7200 s = 64800.
    assert await api.excluded() == SCOPE_CHANNELS * WINDOW_S == 64800
    (event,) = await api.service.repo.load_events()
    assert event.id == decided["event"] and event.type == "maintenance"
    assert event.to_json() == {
        "type": "maintenance",
        "at": "2026-03-21T02:00:00Z",
        "from": "2026-03-24T17:00:00Z",
        "to": "2026-03-24T19:00:00Z",
        "scope": SCOPE,
        "reason": "splice",
    }
    audit = [(a.actor, a.action, a.subject) for a in await api.service.repo.load_audit()]
    assert audit == [
        ("operator-1", "maintenance requested", record["id"]),
        ("assessor-1", "maintenance", SCOPE),  # the event, as any ingested one
        ("assessor-1", "maintenance consented", record["id"]),
    ]
    one = await api.get("collector", f"/api/v1/maintenance/{record['id']}")
    assert one.status_code == 200 and one.json() == decided


async def test_refused_excludes_nothing(api: ClockedApi) -> None:
    record = await request(api)
    r = await api.client.post(f"/api/v1/maintenance/{record['id']}/refuse", headers=api.auth("assessor"))
    assert r.status_code == 200, r.text  # the note is optional: no body at all
    assert r.json()["status"] == "refused" and r.json()["note"] is None and "event" not in r.json()
    assert await api.excluded() == 0
    assert await api.service.repo.load_events() == []
    assert [a.action for a in await api.service.repo.load_audit()] == ["maintenance requested", "maintenance refused"]


async def test_roles(api: ClockedApi) -> None:
    for role in ("assessor", "viewer", "collector"):
        r = await api.post(role, "/api/v1/maintenance", WINDOW)
        assert r.status_code == 403, role
        assert "error" in r.json()
    record = await request(api)
    for role in ("operator", "viewer", "collector"):
        for verb in ("consent", "refuse"):
            r = await api.post(role, f"/api/v1/maintenance/{record['id']}/{verb}")
            assert r.status_code == 403, (role, verb)
    assert (await api.client.get("/api/v1/maintenance")).status_code == 401
    assert (await api.get("admin", "/api/v1/maintenance", status="requested")).json()["requests"][0]["id"] == record[
        "id"
    ]
    assert (await api.post("admin", f"/api/v1/maintenance/{record['id']}/consent")).status_code == 200
    assert await api.excluded() == SCOPE_CHANNELS * WINDOW_S


async def test_deciding_twice_is_409_and_unknown_is_404(api: ClockedApi) -> None:
    record = await request(api)
    assert (await api.post("assessor", f"/api/v1/maintenance/{record['id']}/consent")).status_code == 200
    for verb in ("consent", "refuse"):
        r = await api.post("assessor", f"/api/v1/maintenance/{record['id']}/{verb}")
        assert r.status_code == 409, verb
        assert "consented already" in r.json()["error"]
    assert len(await api.service.repo.load_events()) == 1
    assert await api.excluded() == SCOPE_CHANNELS * WINDOW_S
    r = await api.post("assessor", "/api/v1/maintenance/MR-000000000000/consent")
    assert r.status_code == 404 and r.json()["field"] == "request_id"
    assert (await api.get("viewer", "/api/v1/maintenance/MR-000000000000")).status_code == 404


async def test_late_request_is_flagged_and_still_needs_consent(api: ClockedApi) -> None:
    api.clock.now = datetime(2026, 3, 25, 2, 0, tzinfo=CST)  # an hour into the window
    record = await request(api)
    assert record["late"] is True and record["status"] == "requested"
    assert await api.excluded() == 0
    api.clock.now = datetime(2026, 3, 25, 9, 0, tzinfo=CST)
    r = await api.post("assessor", f"/api/v1/maintenance/{record['id']}/consent")
    assert r.status_code == 200 and r.json()["late"] is True
    assert await api.excluded() == SCOPE_CHANNELS * WINDOW_S  # declared after the window, it covers all of it
    (requested,) = [a for a in await api.service.repo.load_audit() if a.action == "maintenance requested"]
    assert requested.detail is not None and requested.detail["late"] is True


async def test_same_request_twice_is_one_record(api: ClockedApi) -> None:
    first = await request(api)
    api.clock.now += timedelta(hours=1)
    local = {**WINDOW, "from": "2026-03-25T01:00:00", "to": "2026-03-25T03:00:00"}  # no offset: contract zone
    again = await request(api, local)
    assert again == first
    assert len((await api.get("viewer", "/api/v1/maintenance")).json()["requests"]) == 1
    assert [a.action for a in await api.service.repo.load_audit()] == ["maintenance requested"]
    other = await request(api, {**WINDOW, "reason": "another splice"})
    assert other["id"] != first["id"]
    assert len((await api.get("viewer", "/api/v1/maintenance")).json()["requests"]) == 2


async def test_bad_requests_are_422_naming_the_field(api: ClockedApi) -> None:
    cases = [
        ({**WINDOW, "scope": "NOPE"}, "scope"),
        ({**WINDOW, "to": WINDOW["from"]}, "to"),
        ({**WINDOW, "from": "yesterday"}, "from"),
        ({k: v for k, v in WINDOW.items() if k != "reason"}, "reason"),
        ({**WINDOW, "extra": 1}, "extra"),
    ]
    for body, fname in cases:
        r = await api.post("operator", "/api/v1/maintenance", body)
        assert r.status_code == 422, body
        assert r.json()["field"] == fname, r.json()
        assert r.json()["where"] == "body"
    assert (await api.get("viewer", "/api/v1/maintenance")).json()["requests"] == []
    r = await api.get("viewer", "/api/v1/maintenance", status="sideways")
    assert r.status_code == 422 and r.json()["field"] == "status"


async def test_a_failed_consent_leaves_the_request_open(api: ClockedApi, monkeypatch: pytest.MonkeyPatch) -> None:
    record = await request(api)

    async def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("ingest failed")

    monkeypatch.setattr(api.service, "ingest", broken)
    with pytest.raises(RuntimeError):
        await api.post("assessor", f"/api/v1/maintenance/{record['id']}/consent")
    monkeypatch.undo()
    stored = (await api.get("viewer", f"/api/v1/maintenance/{record['id']}")).json()
    assert stored["status"] == "requested" and stored["decided_by"] is None
    assert (await api.post("assessor", f"/api/v1/maintenance/{record['id']}/consent")).status_code == 200
