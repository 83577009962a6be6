"""Report versions over real HTTP (uvicorn on 127.0.0.1) against SQLite and PostgreSQL (SPEC R8, R9; issue 7
items 7 and 9).

Seen live: every GET of a report stored a new version (a 20-connection load test made 23 versions), anyone could
rewrite a closed month, an as-of before a post still saw it, and a report computation held the event loop for
1.5 s (``/healthz`` waited 2.5 s). Here: computing stores nothing; an assessor issues, lists, fetches (byte for
byte) and signs versions; a closed month shows the signed version beside a recomputation; a report as of T
ignores what was received after T; ``/healthz`` answers while a report is being computed; a client that leaves
stops the computation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from monitor.events import parse_event
from monitor.inventory_io import load_inventory
from monitor.report import csv_from_json
from monitor.report_cache import ReportCache
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.settings import Settings
from monitor.storage import Database
from monitor.storage.tables import ReportRow
from tests.api.http_server import CST, HttpServer, serve_http

NDJSON = {"Content-Type": "application/x-ndjson"}
MARCH = "/api/v1/reports/monthly/2026-03"
VERSIONS = f"{MARCH}/versions"
AFTER_MARCH = datetime(2026, 4, 5, 9, 0, tzinfo=CST)
AS_OF = "2026-04-01T00:00:00+08:00"
# CPE-0001 (2 cameras) down for an hour on March 10, each change posted as it happened.
OUTAGE = [
    {"type": "state", "at": "2026-03-10T08:00:00+08:00", "node": "CPE-0001", "state": "down"},
    {"type": "state", "at": "2026-03-10T09:00:00+08:00", "node": "CPE-0001", "state": "up"},
]
# Dated in March, received in April (an admin's backdated record, a minute apart): CPE-0003 (1 camera and an
# 8-channel NVR) down for 12 hours, a level-3 incident with 9 claim breaches.
LATE = [
    {"type": "state", "at": "2026-03-25T08:00:00+08:00", "node": "CPE-0003", "state": "down"},
    {"type": "state", "at": "2026-03-25T20:00:00+08:00", "node": "CPE-0003", "state": "up"},
]
HEADLINE = ("score", "share_paid", "amount", "online_rate")


def jsonl(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[HttpServer]:
    with serve_http(database_url, Settings(data_dir=tmp_path)) as s:
        for hour, event in zip((8, 9), OUTAGE, strict=True):
            s.clock.now = datetime(2026, 3, 10, hour, 0, tzinfo=CST)
            post_events(s, event, role="collector")
        s.clock.now = AFTER_MARCH
        yield s


def post_events(server: HttpServer, *events: dict[str, Any], role: str = "admin") -> None:
    r = server.client.post("/api/v1/events", content=jsonl(*events), headers={**NDJSON, **server.auth(role)})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(events)


def post_late(server: HttpServer, received: datetime) -> None:
    """Post :data:`LATE`, received at ``received`` and a minute later; the clock stays at the second."""
    for minutes, event in enumerate(LATE):
        server.clock.now = received + timedelta(minutes=minutes)
        post_events(server, event)


def get(server: HttpServer, path: str, role: str = "viewer", **params: str) -> httpx.Response:
    return server.client.get(path, params=params, headers=server.auth(role))


def post(server: HttpServer, path: str, role: str = "assessor", body: Any = None) -> httpx.Response:
    return server.client.post(path, json=body, headers=server.auth(role))


def stored_versions(server: HttpServer) -> int:
    async def count() -> int:
        async with server.service.db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(ReportRow.__table__))).scalar_one())

    return server.run(count())


def refused(r: httpx.Response, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    if field is not None:
        assert r.json()["field"] == field, r.text


def without_generated_at(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "generated_at"}


# ---------------------------------------------------------------------- computing stores nothing
def test_twenty_gets_store_nothing(server: HttpServer) -> None:
    paths = [MARCH, "/api/v1/contracts/default/reports/monthly/2026-03"] * 10
    with ThreadPoolExecutor(max_workers=5) as pool:  # concurrent, as the load test that made 23 versions
        answers = pool.map(lambda p: httpx.get(server.base_url + p, headers=server.auth("viewer")), paths)
        codes = [r.status_code for r in answers]
    assert codes == [200] * 20
    r = get(server, MARCH, format="csv")
    assert r.status_code == 200
    assert stored_versions(server) == 0
    body = get(server, MARCH).json()
    assert body["version"] is None and "closed" not in body  # an open month: today's body, not issued
    assert get(server, VERSIONS).json() == {
        "contract": "default",
        "month": "2026-03",
        "closed": False,
        "signed_version": None,
        "versions": [],
    }


# ---------------------------------------------------------------------- issue, list, fetch, sign
def test_only_assessor_or_admin_issue_and_sign(server: HttpServer) -> None:
    for role in ("viewer", "operator", "collector"):
        refused(post(server, VERSIONS, role), 403)
        refused(post(server, "/api/v1/contracts/default/reports/monthly/2026-03/versions", role), 403)
    assert stored_versions(server) == 0
    assert post(server, VERSIONS, "admin").status_code == 201
    for role in ("viewer", "operator", "collector"):
        refused(post(server, f"{VERSIONS}/1/sign", role), 403)
        assert get(server, f"{VERSIONS}/1", role).status_code == 200  # any token may fetch and list
        assert len(get(server, VERSIONS, role).json()["versions"]) == 1
    assert not get(server, VERSIONS).json()["closed"]


def test_issue_list_fetch_byte_for_byte_and_sign(server: HttpServer) -> None:
    issued = post(server, VERSIONS, body={"as_of": AS_OF})
    assert issued.status_code == 201, issued.text
    assert issued.headers["location"] == f"{VERSIONS}/1"
    body = issued.json()
    assert body["version"] == 1 and body["as_of"] == AS_OF and body["month"] == "2026-03"
    assert body["generated_at"] == AFTER_MARCH.isoformat()
    # The version carries what a computation as of the same time gives.
    computed = get(server, MARCH, as_of=AS_OF).json()
    assert without_generated_at({**computed, "version": 1}) == without_generated_at(body)

    listing = get(server, VERSIONS).json()
    assert listing["closed"] is False and listing["signed_version"] is None
    assert listing["versions"] == [
        {
            "version": 1,
            "as_of": AS_OF,
            "issued_at": AFTER_MARCH.isoformat(),
            "issued_by": "assessor-1",
            "policy_hash": body["policy"]["hash"],
            "last_event_seq": 2,  # the two events of the outage
            "reason": None,
            "signed": False,
            "signed_by": None,
            "signed_at": None,
            "superseded_by": None,
        }
    ]
    fetched = get(server, f"{VERSIONS}/1")
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "application/json"
    assert fetched.content == issued.content
    twin = get(server, "/api/v1/contracts/default/reports/monthly/2026-03/versions/1")
    assert twin.content == issued.content
    csv_text = get(server, f"{VERSIONS}/1", format="csv").text
    assert csv_text == csv_from_json(body)
    html = get(server, f"{VERSIONS}/1", format="html").text
    assert f'<data value="{json.dumps(body["amount"])}">' in html and "Report version" in html
    refused(get(server, f"{VERSIONS}/7"), 404, "version")

    # Issued versions are kept apart: events and time change a computation, never a version.
    post_late(server, datetime(2026, 4, 6, 9, 0, tzinfo=CST))
    assert get(server, MARCH, as_of=AS_OF).json()["score"] == body["score"]
    assert get(server, MARCH).json()["score"] < body["score"]
    assert get(server, f"{VERSIONS}/1").content == issued.content

    signing = datetime(2026, 4, 6, 10, 0, tzinfo=CST)
    server.clock.now = signing
    r = post(server, f"{VERSIONS}/1/sign")
    assert r.status_code == 200, r.text
    assert r.json()["signed"] is True and r.json()["signed_by"] == "assessor-1"
    assert r.json()["signed_at"] == signing.isoformat()
    refused(post(server, f"{VERSIONS}/1/sign"), 409)  # already signed
    refused(post(server, f"{VERSIONS}/2/sign"), 404, "version")
    listing = get(server, VERSIONS).json()
    assert listing["closed"] is True and listing["signed_version"] == 1
    assert get(server, f"{VERSIONS}/1").content == issued.content  # signing does not touch the body


def test_issue_refuses_a_future_as_of_and_bad_input(server: HttpServer) -> None:
    refused(post(server, VERSIONS, body={"as_of": "2026-04-05T09:00:01+08:00"}), 422, "as_of")
    refused(post(server, VERSIONS, body={"as_of": "yesterday"}), 422, "as_of")
    refused(post(server, VERSIONS, body={"reason": "x" * 5000}), 422)
    refused(post(server, VERSIONS, body={"reasons": "typo"}), 422)
    refused(post(server, "/api/v1/reports/monthly/2026-13/versions"), 422, "month")
    refused(post(server, "/api/v1/contracts/nope/reports/monthly/2026-03/versions"), 404)
    assert stored_versions(server) == 0
    # No body at all: as of now.
    r = post(server, VERSIONS)
    assert r.status_code == 201 and r.json()["as_of"] == AFTER_MARCH.isoformat()


# ---------------------------------------------------------------------- a closed month
def test_a_closed_month_keeps_its_signed_figures_and_shows_what_changed(server: HttpServer) -> None:
    issued = post(server, VERSIONS, body={"as_of": AS_OF})
    assert issued.status_code == 201
    assert post(server, f"{VERSIONS}/1/sign").status_code == 200
    signed = issued.json()
    closed = get(server, MARCH).json()
    assert closed["closed"] is True and closed["signed"] == signed
    assert closed["signed_version"]["version"] == 1 and closed["signed_version"]["signed"] is True
    assert closed["changes_since_signature"]["events_received"] == 0
    assert closed["changes_since_signature"]["differences"] == {}

    # Reality does not stop: events dated in the closed month are accepted ...
    received = datetime(2026, 4, 7, 15, 30, tzinfo=CST)
    later = received + timedelta(minutes=1)
    post_late(server, received)
    r = get(server, MARCH)
    assert r.status_code == 200
    closed = r.json()
    # ... but the signed figures do not move; the recomputation and the changes stand beside them.
    assert closed["signed"] == signed
    assert get(server, f"{VERSIONS}/1").content == issued.content
    recomputed = closed["recomputed"]
    assert recomputed["version"] is None and recomputed["score"] < signed["score"]
    changes = closed["changes_since_signature"]
    assert changes["signed_version"] == 1
    assert changes["events_received"] == 2 and changes["events_dated_outside_month"] == 0
    assert [(e["type"], e["at"], e["known"], e["source"], e["node"]) for e in changes["events"]] == [
        ("state", "2026-03-25T08:00:00+08:00", received.isoformat(), "api:admin-1", "CPE-0003"),
        ("state", "2026-03-25T20:00:00+08:00", later.isoformat(), "api:admin-1", "CPE-0003"),
    ]
    assert all(e["received_at"] for e in changes["events"])
    assert set(changes["differences"]) == {"score", "share_paid", "amount", "online_rate"} - {
        k for k in HEADLINE if signed[k] == recomputed[k]
    }
    assert changes["differences"]["score"] == {"signed": signed["score"], "recomputed": recomputed["score"]}
    # CSV and HTML of a closed month are the signed version (what is paid).
    assert get(server, MARCH, format="csv").text == csv_from_json(signed)

    # A new version of a closed month needs a stated reason; the month stays closed on version 1 until it is signed.
    refused(post(server, VERSIONS), 409, "reason")
    refused(post(server, VERSIONS, body={"reason": "   "}), 409, "reason")
    assert stored_versions(server) == 1
    second = post(server, VERSIONS, body={"reason": "CPE-0003 outage reported late by the county"})
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2 and second.json()["score"] == recomputed["score"]
    assert get(server, MARCH).json()["signed"] == signed
    listing = get(server, VERSIONS).json()
    assert listing["signed_version"] == 1
    assert listing["versions"][1]["reason"] == "CPE-0003 outage reported late by the county"
    assert listing["versions"][1]["last_event_seq"] == 4

    # Signing version 2 moves the signature; version 1 cannot be signed again.
    assert post(server, f"{VERSIONS}/2/sign", "admin").status_code == 200
    refused(post(server, f"{VERSIONS}/1/sign"), 409, "version")
    listing = get(server, VERSIONS).json()
    assert listing["signed_version"] == 2
    assert [(v["version"], v["signed"], v["superseded_by"]) for v in listing["versions"]] == [
        (1, False, 2),
        (2, True, None),
    ]
    assert listing["versions"][0]["signed_by"] == "assessor-1"  # the old signature is kept, superseded
    closed = get(server, MARCH).json()
    assert closed["signed"] == second.json()
    assert closed["changes_since_signature"]["events_received"] == 0
    assert closed["changes_since_signature"]["differences"] == {}
    assert get(server, f"{VERSIONS}/1").content == issued.content


def test_a_version_issued_before_the_signature_cannot_be_signed_after_it(server: HttpServer) -> None:
    assert post(server, VERSIONS, body={"as_of": AS_OF}).status_code == 201
    assert post(server, VERSIONS).status_code == 201
    assert post(server, f"{VERSIONS}/2/sign").status_code == 200
    refused(post(server, f"{VERSIONS}/1/sign"), 409, "version")  # predates the signed one
    assert post(server, VERSIONS, body={"reason": "recount"}).status_code == 201
    assert post(server, f"{VERSIONS}/3/sign").status_code == 200
    assert get(server, VERSIONS).json()["signed_version"] == 3


# ---------------------------------------------------------------------- R8: as of T, what was known by T
def test_as_of_uses_only_events_received_by_then(server: HttpServer) -> None:
    t = "2026-04-05T08:00:00+08:00"  # before the clock's 09:00
    before = get(server, MARCH, as_of=t).json()
    post_late(server, datetime(2026, 4, 6, 9, 0, tzinfo=CST))  # dated in March, received on April 6
    after = get(server, MARCH, as_of=t).json()
    assert without_generated_at(after) == without_generated_at(before)
    now = get(server, MARCH).json()
    assert now["score"] < before["score"]  # the events do count from their receipt on


def test_a_report_asked_again_is_served_from_memory_until_an_event_arrives(server: HttpServer) -> None:
    """Issue 9: a month's report is not recomputed on every GET. Asked again with nothing stored since, it is the
    same computation, byte for byte, with an ``Age``; the next stored event makes a new computation."""
    server.service.report_cache = ReportCache(entries=4, max_age_s=600)
    first = get(server, MARCH)
    assert first.status_code == 200 and "age" not in first.headers
    server.clock.now += timedelta(minutes=2)
    again = get(server, MARCH)
    assert again.status_code == 200 and int(again.headers["age"]) >= 0
    assert again.content == first.content  # its as_of and generated_at are those of the first computation
    assert "age" in get(server, MARCH, format="csv").headers  # every format renders the kept computation
    post_late(server, datetime(2026, 4, 6, 9, 0, tzinfo=CST))
    fresh = get(server, MARCH)
    assert "age" not in fresh.headers and fresh.json()["score"] < first.json()["score"]
    assert stored_versions(server) == 0  # kept in memory, never stored


# ---------------------------------------------------------------------- issue item 9: off the event loop
def test_healthz_answers_while_a_report_is_computed(server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    inventory = sample_inventory()
    month = "2026-03"
    raw = month_events(inventory, datetime(2026, 3, 1, tzinfo=CST), days=31)
    located = [(f"sample:{i + 1}", parse_event(e)) for i, e in enumerate(raw)]

    async def load() -> None:
        await server.service.import_inventory(inventory)
        await server.service.ingest(located, source="sample")

    server.run(load())
    caplog.set_level(logging.DEBUG, logger="slawatch")
    order: list[str] = []
    answers: dict[str, httpx.Response] = {}

    def report() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            answers["report"] = client.get(f"/api/v1/reports/monthly/{month}", headers=server.auth("viewer"))
        order.append("report")

    def messages() -> list[str]:
        return [r.getMessage() for r in list(caplog.records)]

    worker = threading.Thread(target=report)
    worker.start()
    while "report computing" not in messages() and worker.is_alive():
        time.sleep(0.001)  # until the server has handed the replay to a worker thread
    assert "report computing" in messages()
    answers["healthz"] = httpx.get(f"{server.base_url}/healthz", timeout=120)
    order.append("healthz")
    computed_before_healthz = "report computed" in messages()
    worker.join()
    assert answers["healthz"].status_code == 200 and answers["report"].status_code == 200
    # /healthz was answered while the computation was still running, and before the report's response.
    assert not computed_before_healthz
    assert order == ["healthz", "report"]
    assert "report computed" in messages()
    assert answers["report"].json()["month"] == month


async def test_a_client_that_left_stops_the_computation(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service(db, clock=lambda: AFTER_MARCH)
    await service.import_inventory(load_inventory(Path(__file__).parents[1] / "data" / "inventory" / "small.csv"))
    token = await service.repo.create_token("viewer-1", "viewer")
    app = create_app(Settings(data_dir=tmp_path), service=service)
    caplog.set_level(logging.DEBUG, logger="slawatch")
    sent: list[dict[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.disconnect"}  # the client has gone

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": MARCH,
        "raw_path": MARCH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"slawatch.test"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("slawatch.test", 80),
        "state": {},
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    messages = [r.getMessage() for r in caplog.records]
    assert "report cancelled: the caller has gone" in messages
    assert "report computing" not in messages and "report computed" not in messages
