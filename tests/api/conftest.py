"""The ``client`` fixture: the real app over a real database of each kind (SQLite and PostgreSQL, from the
``database_url`` fixture), driven through ASGI with real tokens, one per role (and a second operator and
assessor), the service on a settable clock and the small inventory imported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.settings import Settings
from monitor.storage import Database

SMALL = Path(__file__).parents[1] / "data" / "inventory" / "small.csv"
CST = timezone(timedelta(hours=8))
ROLES = ("viewer", "collector", "operator", "assessor", "admin")


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, tzinfo=CST))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Client:
    http: httpx.AsyncClient
    service: Service
    tokens: dict[str, str]
    clock: Clock

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.auth(who))

    async def post(self, who: str, path: str, body: Any = None) -> httpx.Response:
        if body is None:
            return await self.http.post(path, headers=self.auth(who))
        return await self.http.post(path, json=body, headers=self.auth(who))

    async def state(self, at: datetime, node: str, state: str) -> None:
        """A collector's state event, received a second after it happened (SPEC R8)."""
        self.clock.now = at + timedelta(seconds=1)
        event = {"type": "state", "at": at.isoformat(), "node": node, "state": state}
        r = await self.http.post(
            "/api/v1/events",
            content=json.dumps(event),
            headers={**self.auth("collector"), "Content-Type": "application/x-ndjson"},
        )
        assert r.status_code == 200, r.text

    async def events(self) -> int:
        return await self.service.repo.count_events()

    async def audit(self) -> int:
        return len(await self.service.repo.load_audit())


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    db = Database(database_url)
    await db.connect()
    try:
        await db.upgrade()
        clock = Clock()
        service = Service(db, clock=clock)
        await service.import_inventory(load_inventory(SMALL))
        tokens = {role: await service.repo.create_token(f"{role}-1", role) for role in ROLES}
        tokens["operator-2"] = await service.repo.create_token("operator-2", "operator")
        tokens["assessor-2"] = await service.repo.create_token("assessor-2", "assessor")
        app = create_app(Settings(data_dir=tmp_path, max_backdate_s=1e10), service=service)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as http:
                yield Client(http, service, tokens, clock)
    finally:
        await db.close()
