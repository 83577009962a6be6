"""Arbitrary JSON posted to the API over real HTTP (hypothesis): never a 5xx, never a partial store.

Bodies are generated JSON values (objects, arrays, scalars, integers of hundreds of digits, ``NaN`` and
``Infinity`` as raw tokens, long strings), event-shaped objects with hostile field values, JSON Lines of them,
deep nesting and raw bytes. They go to ``POST /api/v1/events`` (as JSON and as JSON Lines), the maintenance
request and decision routes and the evidence upload, with an admin token (every role check passes, so only the
content decides). Every 4xx is a problem document, and after it the stored events and maintenance requests are
as they were.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor.settings import Settings
from monitor.storage.maintenance import list_requests
from tests.api.http_server import CST, HttpServer, serve_http

NOW = datetime(2026, 3, 20, 10, 30, tzinfo=CST)
TYPES = ["state", "poll", "ack", "onsite", "explanation", "exclusion", "maintenance", "finding", "bogus"]
KEYS = [
    "at", "known_at", "node", "state", "ok", "rtt_ms", "loss", "incident", "by", "text", "status", "cause",
    "evidence", "from", "to", "scope", "reason", "item", "points", "note",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\u202e", "２０２６-１０"]),  # NUL, lone surrogates
    st.builds(lambda c, n: c * n, st.characters(), st.integers(min_value=4000, max_value=20_000)),
)
keys = st.text(max_size=8) | st.sampled_from(["\ud800", "\x00", "known_at"])
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
offsets = st.builds(
    lambda m: timezone(timedelta(minutes=m)), st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
)
times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.none() | offsets).map(
        datetime.isoformat
    ),
    st.datetimes(
        min_value=datetime(2026, 3, 1), max_value=datetime(2026, 3, 21), timezones=st.just(CST) | st.none()
    ).map(datetime.isoformat),
    st.sampled_from(["0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00", "２０２６-03-20T10:00:00Z", "2026-03-20"]),
)
nodes = st.sampled_from(["CPE-0001", "CPE-0003", "T01-B2", "CAM-0003-1", "NOPE", "", "x" * 100])
field_values: dict[str, st.SearchStrategy[Any]] = {key: values for key in KEYS}
for key in ("at", "known_at", "from", "to"):
    field_values[key] = times | values
for key in ("node", "scope"):
    field_values[key] = nodes | values
field_values["points"] = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str), st.floats(), st.integers(-5, 200), values
)
field_values["state"] = st.sampled_from(["down", "up", "unknown"]) | values
field_values["status"] = st.sampled_from(["requested", "approved", "rejected"]) | values
field_values["item"] = st.sampled_from(["4a", "4c", "5", "9"]) | values
events = st.fixed_dictionaries({"type": st.sampled_from(TYPES) | values}, optional=field_values)
VALID: list[dict[str, Any]] = [
    {"type": "state", "at": "2026-03-20T10:00:00+08:00", "node": "CPE-0003", "state": "down"},
    {"type": "poll", "at": "2026-03-20T10:01:00+08:00", "node": "CPE-0001", "ok": False},
    {"type": "ack", "at": "2026-03-20T10:05:00+08:00", "node": "CPE-0003", "by": "crew 3"},
    {"type": "explanation", "at": "2026-03-20T10:06:00+08:00", "node": "CPE-0003", "text": "fibre cut"},
    {"type": "finding", "at": "2026-03-20T10:07:00+08:00", "item": "4c", "points": "5", "note": "complaint"},
    {"type": "maintenance", "from": "2026-03-25T01:00:00+08:00", "to": "2026-03-25T03:00:00+08:00", "scope": "T01"},
]
valid = st.sampled_from(VALID)
mutated = st.builds(
    lambda e, key, value: {**e, key: value},
    valid,
    st.sampled_from(KEYS),
    st.one_of(*field_values.values()),
)
# Batches of valid events with hostile ones among them: a refusal anywhere must store none of the batch.
batches = st.lists(valid | mutated, min_size=1, max_size=5).map(
    lambda es: sorted(es, key=lambda e: str(e.get("at") or e.get("from")))
)
documents = st.one_of(values, events, st.lists(events, max_size=4), batches)


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()  # NaN, Infinity, -Infinity as raw tokens


bodies = st.one_of(
    documents.map(_dump),
    st.lists(events, min_size=1, max_size=4).map(lambda lines: b"\n".join(_dump(e) for e in lines)),
    batches.map(lambda lines: b"\n".join(_dump(e) for e in lines)),
    st.integers(min_value=1, max_value=50_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.binary(max_size=200),
    st.just(b""),
)
ROUTES = [
    ("/api/v1/events", "application/json"),
    ("/api/v1/events", "application/x-ndjson"),
    ("/api/v1/maintenance", "application/json"),
    ("/api/v1/maintenance/{request}/consent", "application/json"),
    ("/api/v1/maintenance/{request}/refuse", "application/json"),
    ("/api/v1/evidence?filename=f.bin", "application/octet-stream"),
]


@dataclass
class Target:
    server: HttpServer
    request_id: str  # a maintenance request, open until a generated body consents to or refuses it


@pytest.fixture
def target(database_url: str, tmp_path: Path) -> Iterator[Target]:
    with serve_http(database_url, Settings(data_dir=tmp_path)) as s:
        s.clock.now = NOW
        window = {"scope": "T01-B2", "from": "2026-03-25T01:00:00+08:00", "to": "2026-03-25T03:00:00+08:00"}
        r = s.client.post("/api/v1/maintenance", json={**window, "reason": "open"}, headers=s.auth("operator"))
        assert r.status_code == 200, r.text
        yield Target(s, r.json()["id"])


def _stored(server: HttpServer) -> tuple[int, list[tuple[str, str]]]:
    requests = server.run(list_requests(server.service.db, None))
    return server.stored_events(), sorted((r.id, r.status) for r in requests)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, route=st.sampled_from(ROUTES))
def test_arbitrary_bodies_are_never_a_5xx_nor_a_partial_store(
    target: Target, body: bytes, route: tuple[str, str]
) -> None:
    server = target.server
    path, content_type = route
    path = path.format(request=target.request_id)
    before = _stored(server)
    r = server.client.post(path, content=body, headers={**server.auth("admin"), "Content-Type": content_type})
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    event(f"{route[0].split('?')[0]} {content_type}: {r.status_code}")
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json", r.text[:300]
        assert _stored(server) == before, (path, r.text[:300])
