"""The REST API over a real SQLite database: auth and roles, event batches, reports, incidents."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from monitor.contracts import Contract
from monitor.errors import InputError
from monitor.events import parse_time
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.settings import Settings

SMALL = Path(__file__).parents[1] / "data" / "inventory" / "small.csv"
NDJSON = {"Content-Type": "application/x-ndjson"}
AS_OF = "2026-04-05T00:00:00+08:00"
CST = timezone(timedelta(hours=8))

# CPE-0001 (2 cameras) down for an hour and back; CPE-0003 (1 camera + an 8-channel NVR) down and still down.
OUTAGES = [
    {"type": "state", "at": "2026-03-10T08:00:00+08:00", "node": "CPE-0001", "state": "down"},
    {"type": "state", "at": "2026-03-10T09:00:00+08:00", "node": "CPE-0001", "state": "up"},
    {"type": "state", "at": "2026-03-20T10:00:00+08:00", "node": "CPE-0003", "state": "down"},
]
ENDED = "CPE-0001@2026-03-10T00:00:00Z"
OPEN = "CPE-0003@2026-03-20T02:00:00Z"


def jsonl(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def latest_time(body: str) -> datetime | None:
    """The latest dated time (``at``, ``from``) of the events in a JSON Lines body that parse; None if none do."""
    found = []
    for line in body.splitlines():
        with contextlib.suppress(ValueError, InputError, AttributeError, TypeError):
            obj = json.loads(line)
            found.append(parse_time(obj.get("at") or obj.get("from"), CST, "at"))
    return max(found, default=None)


@dataclass
class Clock:
    now: datetime = datetime(2026, 4, 1, tzinfo=CST)  # after every event below, before AS_OF

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Api:
    client: httpx.AsyncClient
    service: Service
    tokens: dict[str, str]
    clock: Clock

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def post(self, role: str, body: str, path: str = "/api/v1/events", **kw: Any) -> httpx.Response:
        """Posted as a live client would: received a second after the latest event it carries (SPEC R8)."""
        latest = latest_time(body)
        if latest is not None:
            self.clock.now = latest + timedelta(seconds=1)
        return await self.client.post(path, content=body, headers={**NDJSON, **self.auth(role)}, **kw)

    async def get(self, role: str, path: str, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.auth(role))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    # These tests post past months as a collector: R9's backdating limit is lifted here (tests/api/test_hostile.py).
    app = create_app(Settings(data_dir=tmp_path, max_backdate_s=1e10))
    async with app.router.lifespan_context(app):
        service: Service = app.state.service
        clock = Clock()
        service.clock = clock  # the service's injected clock, set as each post is received (Api.post)
        await service.import_inventory(load_inventory(SMALL))
        tokens = {
            role: await service.repo.create_token(f"{role}-1", role)
            for role in ("viewer", "collector", "operator", "assessor", "admin")
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slawatch.test") as client:
            yield Api(client, service, tokens, clock)


async def stored_events(api: Api) -> int:
    return len(await api.service.repo.load_events())


async def post_outages(api: Api) -> None:
    """OUTAGES as a collector sends them live: each event a second after it happens."""
    for event in OUTAGES:
        r = await api.post("collector", jsonl(event))
        assert r.status_code == 200, r.text


# ---------------------------------------------------------------------- health, auth, roles
async def test_healthz_needs_no_token(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


async def test_401_without_or_with_a_bad_token(api: Api) -> None:
    r = await api.client.get("/api/v1/incidents")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "error" in r.json()
    r = await api.client.post("/api/v1/events", content=jsonl(OUTAGES[0]), headers=NDJSON)
    assert r.status_code == 401
    r = await api.client.get("/api/v1/incidents", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert await stored_events(api) == 0


async def test_403_operator_posting_state_names_line_and_type(api: Api) -> None:
    ack = {"type": "ack", "at": "2026-03-10T08:10:00+08:00", "node": "CPE-0001"}
    r = await api.post("operator", jsonl(ack, OUTAGES[0]))
    assert r.status_code == 403
    body = r.json()
    assert body["where"] == "request line 2"
    assert body["field"] == "type"
    assert "state" in body["error"]
    assert await stored_events(api) == 0


async def test_403_viewer_may_not_post_and_collector_may_not_ack(api: Api) -> None:
    r = await api.post("viewer", jsonl(OUTAGES[0]))
    assert r.status_code == 403
    ack = {"type": "ack", "at": "2026-03-10T08:10:00+08:00", "node": "CPE-0001"}
    r = await api.post("collector", jsonl(ack))
    assert r.status_code == 403
    assert r.json()["where"] == "request line 1"
    assert await stored_events(api) == 0


# ---------------------------------------------------------------------- events
async def test_collector_posts_jsonl_then_the_same_again_stores_nothing(api: Api) -> None:
    r = await api.post("collector", jsonl(*OUTAGES))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "received": 3, "stored": 3, "duplicates": 0, "confirmed": 0, "unmatched": [], "not_applied": []
    }
    assert await stored_events(api) == 3
    r = await api.post("collector", jsonl(*OUTAGES))
    assert r.status_code == 200
    assert r.json()["stored"] == 0
    assert r.json()["duplicates"] == 3
    assert await stored_events(api) == 3


async def test_json_array_and_single_object_bodies(api: Api) -> None:
    headers = api.auth("collector")
    r = await api.client.post("/api/v1/events", json=OUTAGES[:2], headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 2
    r = await api.client.post("/api/v1/events", json=OUTAGES[2], headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    bad = {**OUTAGES[0], "state": "sideways"}
    r = await api.client.post("/api/v1/events", json=[OUTAGES[0], bad], headers=headers)
    assert r.status_code == 422
    assert r.json()["where"] == "request item 2"


async def test_bad_line_is_422_with_line_and_field_and_nothing_stored(api: Api) -> None:
    bad = {"type": "state", "at": "2026-03-10T08:30:00+08:00", "node": "CPE-0001", "state": "sideways"}
    r = await api.post("collector", jsonl(OUTAGES[0], bad, OUTAGES[1]))
    assert r.status_code == 422
    assert r.json()["where"] == "request line 2"
    assert r.json()["field"] == "state"
    assert await stored_events(api) == 0

    r = await api.post("collector", jsonl(OUTAGES[0]) + "{not json\n")
    assert r.status_code == 422
    assert r.json()["where"] == "request line 2"

    unknown_node = {**OUTAGES[1], "node": "CPE-9999"}
    r = await api.post("collector", jsonl(OUTAGES[0], unknown_node))
    assert r.status_code == 422
    assert (r.json()["where"], r.json()["field"]) == ("request line 2", "node")

    r = await api.post("collector", jsonl(OUTAGES[1], OUTAGES[0]))
    assert r.status_code == 422
    assert (r.json()["where"], r.json()["field"]) == ("request line 2", "at")

    r = await api.post("collector", "\n")
    assert r.status_code == 422
    assert await stored_events(api) == 0


async def test_contract_route_reads_local_times_in_the_contract_zone(api: Api) -> None:
    local = {"type": "state", "at": "2026-03-10T08:00:00", "node": "CPE-0001", "state": "down"}
    r = await api.post("collector", jsonl(local), path="/api/v1/contracts/default/events")
    assert r.status_code == 200, r.text
    (event,) = await api.service.repo.load_events()
    assert event.at.isoformat() == "2026-03-10T00:00:00+00:00"
    r = await api.post("collector", jsonl(local), path="/api/v1/contracts/nope/events")
    assert r.status_code == 404


async def test_operator_acks_by_node(api: Api) -> None:
    assert (await api.post("collector", jsonl(OUTAGES[0]))).status_code == 200
    ack = {"type": "ack", "at": "2026-03-10T08:10:00+08:00", "node": "CPE-0001", "by": "crew 3"}
    r = await api.post("operator", jsonl(ack))  # received during the outage (SPEC R8)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    for event in OUTAGES[1:]:
        assert (await api.post("collector", jsonl(event))).status_code == 200
    incidents = {i["id"]: i for i in (await api.get("viewer", "/api/v1/incidents")).json()["incidents"]}
    assert incidents[ENDED]["ack"] == "2026-03-10T08:10:00+08:00"
    assert incidents[ENDED]["ack_by"] == "crew 3"
    assert incidents[OPEN]["ack"] is None
    audit = await api.service.repo.load_audit()
    assert [(a.actor, a.action) for a in audit] == [("operator-1", "ack")]


async def test_operator_requests_and_assessor_approves_an_exclusion(api: Api) -> None:
    await post_outages(api)
    request = {
        "type": "exclusion",
        "at": "2026-03-21T09:00:00+08:00",
        "incident": OPEN,
        "status": "requested",
        "cause": "road works cut the fibre",
    }
    decision = {**request, "at": "2026-03-22T09:00:00+08:00", "status": "approved", "by": "customer"}
    r = await api.post("operator", jsonl(decision))
    assert r.status_code == 403
    assert "exclusion approved" in r.json()["error"]
    r = await api.post("assessor", jsonl(request))
    assert r.status_code == 403
    assert (await api.post("operator", jsonl(request))).status_code == 200
    r = await api.post("assessor", jsonl(decision))
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    incidents = {i["id"]: i for i in (await api.get("viewer", "/api/v1/incidents")).json()["incidents"]}
    assert incidents[OPEN]["excluded"] == "approved"
    report = (await api.get("viewer", "/api/v1/reports/monthly/2026-03", as_of=AS_OF)).json()
    scored = {i["id"]: i for i in report["incidents"]}
    assert scored[OPEN]["excluded"] is True
    assert scored[ENDED]["excluded"] is False


async def test_admin_may_send_every_type(api: Api) -> None:
    finding = {"type": "finding", "at": "2026-03-15T10:00:00+08:00", "item": "4c", "points": 5, "note": "x"}
    maintenance = {
        "type": "maintenance",
        "from": "2026-03-25T01:00:00+08:00",
        "to": "2026-03-25T03:00:00+08:00",
        "scope": "T01-B2",
    }
    r = await api.post("admin", jsonl(OUTAGES[0], finding, maintenance))
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 3


# ---------------------------------------------------------------------- reports
SECTION_6 = {
    "month", "policy", "version", "as_of", "generated_at", "channels", "expected_channel_seconds",
    "online_channel_seconds", "excluded_channel_seconds", "blind_channel_seconds", "online_rate",
    "claim_breaches", "incidents", "items", "areas", "score", "share_paid", "base", "amount",
}  # fmt: skip
INCIDENT_6 = {
    "id", "level", "scope", "start", "clock_start", "ack", "onsite_s", "end", "open", "peak_channels",
    "response_s", "recovery_s", "restore_limit_s", "restore_met", "excluded", "deductions",
}  # fmt: skip


def csv_summary(text: str) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(text)))
    start = rows.index(["field", "value"])
    out: dict[str, str] = {}
    for row in rows[start + 1 :]:
        if not row:
            break
        out[row[0]] = row[1]
    return out


async def test_report_json_csv_html_agree(api: Api) -> None:
    await post_outages(api)
    r = await api.get("viewer", "/api/v1/reports/monthly/2026-03", as_of=AS_OF)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert set(data) >= SECTION_6
    assert set(data["policy"]) >= {"name", "hash"}
    assert data["month"] == "2026-03"
    assert data["version"] is None  # computed, not issued: nothing stored (R9)
    assert {i["id"] for i in data["incidents"]} == {ENDED, OPEN}
    for inc in data["incidents"]:
        assert set(inc) >= INCIDENT_6
        assert set(inc["deductions"]) == {"response", "recovery", "unexplained"}
    assert {i["key"] for i in data["items"]} >= {"response", "recovery", "online"}
    assert 0 < data["online_rate"] < 1
    assert data["score"] < 100

    r = await api.get("viewer", "/api/v1/reports/monthly/2026-03", as_of=AS_OF, format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    summary = csv_summary(r.text)
    assert json.loads(summary["score"]) == data["score"]
    assert json.loads(summary["amount"]) == data["amount"]

    r = await api.get(
        "viewer", "/api/v1/contracts/default/reports/monthly/2026-03", as_of=AS_OF, format="html"
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<data value="{json.dumps(data["score"])}">' in r.text
    assert f'<data value="{json.dumps(data["amount"])}">' in r.text


async def test_report_input_errors(api: Api) -> None:
    r = await api.get("viewer", "/api/v1/reports/monthly/2026-13")
    assert r.status_code == 422
    assert r.json()["field"] == "month"
    r = await api.get("viewer", "/api/v1/reports/monthly/2026-03", as_of="yesterday")
    assert (r.status_code, r.json()["field"]) == (422, "as_of")
    r = await api.get("viewer", "/api/v1/reports/monthly/2026-03", format="docx")
    assert r.status_code == 422
    r = await api.get("viewer", "/api/v1/contracts/nope/reports/monthly/2026-03")
    assert r.status_code == 404


async def test_several_contracts_need_the_contract_route(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Declared in memory: the service reads them through contracts() (storing them is the service's test).
    contracts = [Contract(id="north", scopes=("T01-B1",)), Contract(id="south", scopes=("T01-B2",))]

    async def declared() -> list[Contract]:
        return contracts

    monkeypatch.setattr(api.service, "contracts", declared)
    r = await api.get("viewer", "/api/v1/reports/monthly/2026-03", as_of=AS_OF)
    assert r.status_code == 422
    assert "/api/v1/contracts/{id}/reports/monthly/2026-03" in r.json()["error"]
    r = await api.get("viewer", "/api/v1/contracts/south/reports/monthly/2026-03", as_of=AS_OF)
    assert r.status_code == 200
    assert (await api.get("viewer", "/api/v1/incidents")).status_code == 422


# ---------------------------------------------------------------------- incidents
async def test_incidents_list_and_open_filter(api: Api) -> None:
    await post_outages(api)
    r = await api.get("viewer", "/api/v1/incidents")
    assert r.status_code == 200
    body = r.json()
    assert body["contract"] == "default"
    assert [i["id"] for i in body["incidents"]] == [ENDED, OPEN]
    ended, still_open = body["incidents"]
    assert ended["open"] is False
    assert ended["start"] == "2026-03-10T08:00:00+08:00"
    assert ended["end"] == "2026-03-10T09:00:00+08:00"
    assert ended["channels"] == 2
    detail = (await api.get("viewer", f"/api/v1/incidents/{ENDED}")).json()
    assert [m["node"] for m in detail["members"]] == ["CAM-0001-1", "CAM-0001-2"]
    assert still_open["level"] == 3
    r = await api.get("viewer", "/api/v1/incidents", open="true")
    assert [i["id"] for i in r.json()["incidents"]] == [OPEN]
    r = await api.get("viewer", "/api/v1/contracts/default/incidents", open="false")
    assert [i["id"] for i in r.json()["incidents"]] == [ENDED]
    r = await api.get("viewer", "/api/v1/incidents", open="maybe")
    assert r.status_code == 422


async def test_openapi_docs_are_on(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/contracts/{contract_id}/reports/monthly/{month}" in paths
