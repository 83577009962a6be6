"""What the API must refuse (SPEC R8, R9, R10), over real HTTP (uvicorn on 127.0.0.1) against SQLite and
PostgreSQL: every refusal is a 4xx problem response naming the field, and nothing is stored.

Seen live (issue 7, item 8): ``"points": Infinity`` stored and every later report of the month failing, ``NaN``
a 500, times such as ``0001-01-01T00:00:00`` a plain-text 500, a 50 MiB maintenance reason stored, a 50 MiB
body read whole before being refused, full-width digits accepted as a month, a collector backdating a closed
month, an as-of before a post still seeing it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.settings import Settings
from monitor.storage.maintenance import list_requests
from tests.api.http_server import CST, HttpServer, serve_http

NDJSON = {"Content-Type": "application/x-ndjson"}
MIB = 1024 * 1024
NOW = datetime(2026, 3, 20, 10, 30, tzinfo=CST)
FINDING: dict[str, Any] = {"type": "finding", "at": "2026-03-20T10:00:00+08:00", "item": "4c", "points": 5}
DOWN: dict[str, Any] = {"type": "state", "at": "2026-03-20T10:00:00+08:00", "node": "CPE-0003", "state": "down"}
OPEN = "CPE-0003@2026-03-20T02:00:00Z"
WINDOW = {"scope": "T01-B2", "from": "2026-03-25T01:00:00+08:00", "to": "2026-03-25T03:00:00+08:00", "reason": "x"}


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[HttpServer]:
    with serve_http(database_url, Settings(data_dir=tmp_path)) as s:
        s.clock.now = NOW
        yield s


def post(server: HttpServer, role: str, body: str | bytes, path: str = "/api/v1/events", **kw: Any) -> httpx.Response:
    return server.client.post(path, content=body, headers={**NDJSON, **server.auth(role)}, **kw)


def raw_event(**fields: Any) -> str:
    """One event line; values that are ``RawJson`` go in as written (NaN, Infinity, 1e309 tokens)."""
    parts = [f"{json.dumps(k)}:{v.text if isinstance(v, RawJson) else json.dumps(v)}" for k, v in fields.items()]
    return "{" + ",".join(parts) + "}\n"


class RawJson:
    def __init__(self, text: str) -> None:
        self.text = text


def assert_refused(r: httpx.Response, status: int, field: str | None, where: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"] == body["error"]
    if field is not None:
        assert body.get("field") == field, body
    if where is not None:
        assert body.get("where") == where, body
    return body


def incidents(server: HttpServer) -> list[dict[str, Any]]:
    r = server.client.get("/api/v1/incidents", headers=server.auth("viewer"))
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["incidents"]
    return out


# ---------------------------------------------------------------------------------------- R10: points
@pytest.mark.parametrize(
    "points", ["Infinity", "-Infinity", "NaN", "1e309", "-0.5", "101", '"1e400"', '"Infinity"', '"sNaN"', "1" * 400]
)
def test_finding_points_must_be_finite_in_0_to_100(server: HttpServer, points: str) -> None:
    r = post(server, "assessor", raw_event(**{**FINDING, "points": RawJson(points)}))
    assert_refused(r, 422, "points", "request line 1")
    assert server.stored_events() == 0
    report = server.client.get("/api/v1/reports/monthly/2026-03", headers=server.auth("viewer"))
    assert report.status_code == 200, report.text  # the month still reports


def test_points_of_100_are_stored_and_reported(server: HttpServer) -> None:
    r = post(server, "assessor", raw_event(**{**FINDING, "points": RawJson("100")}))
    assert r.status_code == 200, r.text
    assert server.stored_events() == 1


# ---------------------------------------------------------------------------------------- R10: times
@pytest.mark.parametrize("at", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00", "1999-12-31T23:59:59Z"])
def test_event_times_out_of_range_are_422_naming_the_field(server: HttpServer, at: str) -> None:
    assert_refused(post(server, "admin", raw_event(**{**DOWN, "at": at})), 422, "at", "request line 1")
    window = {"type": "maintenance", "from": "2026-03-25T01:00:00+08:00", "to": at, "scope": "T01-B2"}
    assert_refused(post(server, "admin", raw_event(**window)), 422, "to")
    r = server.client.post("/api/v1/maintenance", json={**WINDOW, "from": at}, headers=server.auth("operator"))
    assert_refused(r, 422, "from", "body")
    assert server.stored_events() == 0
    assert server.run(list_requests(server.service.db, None)) == []


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00", "2100-01-01T00:00:00Z"])
def test_as_of_out_of_range_is_422_naming_the_query(server: HttpServer, as_of: str) -> None:
    r = server.client.get("/api/v1/reports/monthly/2026-03", params={"as_of": as_of}, headers=server.auth("viewer"))
    assert_refused(r, 422, "as_of", "query")


@pytest.mark.parametrize("month", ["２０２６-１０", "2026-１０", "0001-01", "9999-12"])
def test_month_keys_are_ascii_yyyy_mm(server: HttpServer, month: str) -> None:
    r = server.client.get(f"/api/v1/reports/monthly/{month}", headers=server.auth("viewer"))
    assert_refused(r, 422, "month", "path")


def test_an_unknown_node_id_of_5000_characters_is_named_not_echoed(server: HttpServer) -> None:
    """A refused node id is named in the problem, cut short: a 5,000-character one came back whole (10 KB)."""
    huge = "N" * 5000
    problem = assert_refused(post(server, "collector", raw_event(**{**DOWN, "node": huge})), 422, "node")
    assert "NNNN" in problem["detail"] and "..." in problem["detail"] and len(problem["detail"]) < 300
    r = server.client.post("/api/v1/events", json=[{**DOWN, "node": huge}], headers=server.auth("collector"))
    assert r.status_code == 422 and "..." in r.json()["detail"] and len(r.text) < 1000, r.text[:300]
    r = server.client.get(f"/api/v1/nodes/{huge}", headers=server.auth("viewer"))
    assert r.status_code == 404 and "..." in r.json()["detail"] and len(r.text) < 1000
    r = server.client.get("/api/v1/incidents", params={"scope": "N" * 64}, headers=server.auth("viewer"))
    assert_refused(r, 422, "scope", "query")
    assert server.stored_events() == 0


# ---------------------------------------------------------------------------------------- R10: free text
def test_free_text_over_4_kib_is_422_and_nothing_is_stored(server: HttpServer) -> None:
    assert post(server, "collector", raw_event(**DOWN)).status_code == 200
    before = incidents(server)
    text = "说" * 1366  # 4098 bytes of UTF-8, 1366 characters
    explanation = {"type": "explanation", "at": "2026-03-20T10:20:00+08:00", "incident": OPEN, "text": text}
    assert_refused(post(server, "operator", raw_event(**explanation)), 422, "text", "request line 1")
    ack = {"type": "ack", "at": "2026-03-20T10:20:00+08:00", "incident": OPEN, "by": "b" * 4097}
    assert_refused(post(server, "operator", raw_event(**ack)), 422, "by")
    r = server.client.post("/api/v1/maintenance", json={**WINDOW, "reason": text}, headers=server.auth("operator"))
    assert_refused(r, 422, "reason", "body")
    assert server.stored_events() == 1
    assert incidents(server) == before
    assert server.run(list_requests(server.service.db, None)) == []
    # A request with a short reason, then a decision whose note is too long: refused, the request stays open.
    r = server.client.post("/api/v1/maintenance", json=WINDOW, headers=server.auth("operator"))
    assert r.status_code == 200, r.text
    path = f"/api/v1/maintenance/{r.json()['id']}/consent"
    r = server.client.post(path, json={"note": "n" * 5000}, headers=server.auth("assessor"))
    assert_refused(r, 422, "note", "body")
    assert [m.status for m in server.run(list_requests(server.service.db, None))] == ["requested"]
    assert server.stored_events() == 1


# ---------------------------------------------------------------------------------------- R10: body size
def raw_http(server: HttpServer, head: str, parts: Iterable[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers) and ``parts`` on a socket as they are, then read the response
    until the server closes: (status, headers, body). The client sends no more than ``parts``."""
    url = httpx.URL(server.base_url)
    assert url.port is not None
    with socket.create_connection((url.host, url.port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in parts:
            sock.sendall(part)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _head(server: HttpServer, path: str, role: str, *extra: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {server.tokens[role]}", *extra]
    return "\n".join(lines) + "\n"


def test_a_50_mib_body_is_refused_before_it_is_read(server: HttpServer) -> None:
    """Declared by Content-Length: refused at once, before the client has sent a byte of it."""
    for path, ctype in (("/api/v1/events", "application/x-ndjson"), ("/api/v1/maintenance", "application/json")):
        head = _head(server, path, "admin", f"Content-Type: {ctype}", f"Content-Length: {50 * MIB}")
        status, headers, body = raw_http(server, head)
        assert status == 413, body
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == 413 and problem["where"] == "request body" and str(MIB) in problem["error"]
    assert server.stored_events() == 0
    assert server.run(list_requests(server.service.db, None)) == []


def test_a_chunked_body_is_counted_as_it_streams(server: HttpServer) -> None:
    """No Content-Length (chunked): refused once the bytes received pass the limit (1 MiB by default), while the
    client has sent only a little more than the limit and is still sending."""
    line = raw_event(**DOWN).encode()
    piece = line * (64 * 1024 // len(line))
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (MIB // len(piece) + 2)  # just over 1 MiB, unfinished
    chunked = ("Content-Type: application/x-ndjson", "Transfer-Encoding: chunked")
    status, headers, body = raw_http(server, _head(server, "/api/v1/events", "collector", *chunked), chunks)
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["where"] == "request body"
    assert server.stored_events() == 0
    r = post(server, "collector", iter([line]))  # type: ignore[arg-type]
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 200, r.text  # a small chunked body is fine
    assert server.stored_events() == 1


def test_an_oversized_json_body_is_413_over_httpx_too(server: HttpServer) -> None:
    r = server.client.post(
        "/api/v1/maintenance", json={**WINDOW, "reason": "x" * (MIB + 1)}, headers=server.auth("operator")
    )
    assert_refused(r, 413, None, "request body")
    assert server.run(list_requests(server.service.db, None)) == []


def test_the_body_limit_is_a_setting(database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_body_bytes=2048, max_evidence_bytes=4096)
    with serve_http(database_url, settings) as server:
        server.clock.now = NOW
        padded = raw_event(**DOWN).rstrip("\n") + " " * (2048 - len(raw_event(**DOWN))) + "\n"
        assert len(padded.encode()) == 2048
        assert post(server, "collector", padded).status_code == 200
        assert_refused(post(server, "collector", padded + " "), 413, None, "request body")
        upload = {**server.auth("operator"), "Content-Type": "image/png"}
        url = "/api/v1/evidence?filename=a.png"
        assert server.client.post(url, content=b"p" * 4096, headers=upload).status_code == 200
        assert_refused(server.client.post(url, content=b"q" * 4097, headers=upload), 413, None, "request body")
        r = server.client.post(url, content=iter([b"q" * 3000, b"q" * 3000]), headers=upload)
        assert_refused(r, 413, None, "request body")
        assert server.stored_events() == 1


def test_a_client_still_sending_its_body_reads_the_413_not_a_reset(server: HttpServer) -> None:
    """A body over the limit whose bytes arrive after the headers: the server drops them before it answers, so
    the client can finish writing and reads the whole 413 (closing with unread bytes would reset the
    connection instead: seen in CI as ``httpx.ReadError: Connection reset by peer``)."""
    body = raw_event(**DOWN).encode() * (2 * MIB // len(raw_event(**DOWN)))
    assert MIB < len(body) < 4 * MIB
    head = _head(server, "/api/v1/events", "collector", "Content-Type: application/x-ndjson",
                 f"Content-Length: {len(body)}")
    url = httpx.URL(server.base_url)
    assert url.port is not None
    for _ in range(3):
        with socket.create_connection((url.host, url.port), timeout=30) as sock:
            sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
            time.sleep(0.05)  # the server has the headers (and refuses) before the body comes
            sock.sendall(body)  # raises ConnectionResetError/BrokenPipeError if the server closed without reading
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 413 "), data[:200]
        assert json.loads(data.partition(b"\r\n\r\n")[2])["where"] == "request body"
    for size in (MIB + 1, 3 * MIB):  # and through httpx, as a collector posting a too-large batch meets it
        r = server.client.post("/api/v1/events", content=b"x" * size, headers=server.auth("collector"))
        assert_refused(r, 413, None, "request body")
    assert server.stored_events() == 0


# ---------------------------------------------------------------------------------------- R8: known at receipt
def test_an_event_is_known_when_the_api_receives_it(server: HttpServer) -> None:
    assert post(server, "collector", raw_event(**DOWN)).status_code == 200
    (event,) = server.run(server.service.repo.load_events())
    assert event.at == datetime(2026, 3, 20, 10, 0, tzinfo=CST) and event.known_at == NOW
    # As of a time before the receipt, the report does not see the event; as of the receipt, it does.
    def offline(as_of: datetime) -> Any:
        params = {"as_of": as_of.isoformat()}
        r = server.client.get("/api/v1/reports/monthly/2026-03", params=params, headers=server.auth("viewer"))
        assert r.status_code == 200, r.text
        return r.json()["online_channel_seconds"] < r.json()["expected_channel_seconds"]

    assert offline(NOW - timedelta(minutes=1)) is False
    assert offline(NOW + timedelta(minutes=1)) is True


def test_known_at_from_a_client_is_refused(server: HttpServer) -> None:
    event = {**DOWN, "known_at": "2026-03-20T10:00:00+08:00"}
    assert_refused(post(server, "admin", raw_event(**event)), 422, "known_at", "request line 1")
    assert_refused(post(server, "admin", raw_event(**{**event, "known_at": None})), 422, "known_at")
    assert server.stored_events() == 0


def test_an_event_dated_after_its_receipt_beyond_the_skew_is_refused(server: HttpServer) -> None:
    late = {**FINDING, "at": (NOW + timedelta(seconds=301)).isoformat()}
    assert_refused(post(server, "assessor", raw_event(**FINDING) + raw_event(**late)), 422, "at", "request line 2")
    assert server.stored_events() == 0
    soon = {**FINDING, "at": (NOW + timedelta(seconds=300)).isoformat()}
    assert post(server, "assessor", raw_event(**soon)).status_code == 200
    (event,) = server.run(server.service.repo.load_events())
    assert event.known_at == NOW + timedelta(seconds=300)  # known no earlier than it is dated


def test_a_planned_window_without_at_is_declared_at_receipt(server: HttpServer) -> None:
    window = {"type": "maintenance", "from": "2026-03-25T01:00:00+08:00", "to": "2026-03-25T03:00:00+08:00"}
    r = post(server, "assessor", raw_event(**window, scope="T01-B2"))
    assert r.status_code == 200, r.text
    (event,) = server.run(server.service.repo.load_events())
    assert event.at == NOW and event.known_at == NOW


def test_a_batch_is_in_dated_order(server: HttpServer) -> None:
    first = {**FINDING, "at": "2026-03-20T10:10:00+08:00"}
    assert_refused(post(server, "assessor", raw_event(**first) + raw_event(**FINDING)), 422, "at", "request line 2")
    assert server.stored_events() == 0


# ---------------------------------------------------------------------------------------- R9: collectors' backdating
def test_a_collector_cannot_backdate_state_or_poll_beyond_max_backdate(server: HttpServer) -> None:
    old = (NOW - timedelta(seconds=3601)).isoformat()
    state = {**DOWN, "at": old}
    poll = {"type": "poll", "at": old, "node": "CPE-0003", "ok": False}
    assert_refused(post(server, "collector", raw_event(**state)), 422, "at", "request line 1")
    assert_refused(post(server, "collector", raw_event(**DOWN) + raw_event(**poll)), 422, "at", "request line 2")
    assert server.stored_events() == 0
    within = {**DOWN, "at": (NOW - timedelta(seconds=3600)).isoformat()}
    assert post(server, "collector", raw_event(**within)).status_code == 200
    # Anyone else may record the past (an admin correcting history; an operator's late acknowledgement).
    r = post(server, "admin", raw_event(**{**state, "node": "CPE-0001"}))
    assert r.status_code == 200, r.text
    ack = {"type": "ack", "at": "2026-03-01T00:00:00+08:00", "node": "CPE-0001"}
    assert post(server, "operator", raw_event(**ack)).status_code == 200
    assert server.stored_events() == 3


# ---------------------------------------------------------------------------------------- never a plain-text 500
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type":"finding","points":' + b"9" * 5000 + b"}",
        b"\xff\xfe not utf-8",
        b'{"type": ["state"]}',
        b'{"type": {"a": 1}}',
        b"[1, 2, 3]",
        b"null",
        b'"text"',
    ],
)
def test_hostile_bodies_are_4xx_problems_everywhere(server: HttpServer, body: bytes) -> None:
    for path, role, ctype in (
        ("/api/v1/events", "admin", "application/json"),
        ("/api/v1/events", "admin", "application/x-ndjson"),
        ("/api/v1/maintenance", "admin", "application/json"),
        ("/api/v1/maintenance/MR-000000000000/consent", "admin", "application/json"),
    ):
        r = server.client.post(path, content=body, headers={**server.auth(role), "Content-Type": ctype})
        assert 400 <= r.status_code < 500, (path, ctype, r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/problem+json", (path, r.text[:200])
    assert server.stored_events() == 0
    assert server.run(list_requests(server.service.db, None)) == []


# ---------------------------------------------------------------------------------------- text a database cannot store
@pytest.mark.parametrize("text", ["a\\u0000b", "lone \\ud800 surrogate", "\\udfff"])
def test_text_with_nul_or_lone_surrogates_is_422(server: HttpServer, text: str) -> None:
    """PostgreSQL stores no NUL in text or JSON, and no encoding has a lone surrogate: refused, never a 5xx."""
    assert post(server, "collector", raw_event(**DOWN)).status_code == 200
    line = '{"type":"explanation","at":"2026-03-20T10:20:00+08:00","incident":"' + OPEN + '","text":"' + text + '"}'
    assert_refused(post(server, "operator", line), 422, "text", "request line 1")
    body = json.dumps(WINDOW)[:-1] + ', "reason": "' + text + '"}'
    body = body.replace('"reason": "x", ', "")
    r = server.client.post(
        "/api/v1/maintenance", content=body, headers={**server.auth("operator"), "Content-Type": "application/json"}
    )
    assert_refused(r, 422, "reason", "body")
    r = post(server, "admin", '{"type":"state","\\ud800":1}')
    assert_refused(r, 422, "\\ud800", "request line 1")  # the field named, escaped
    assert server.stored_events() == 1
    assert server.run(list_requests(server.service.db, None)) == []


def test_framework_errors_are_problems_too(server: HttpServer) -> None:
    assert_refused(server.client.get("/nope", headers=server.auth("viewer")), 404, None)
    assert_refused(server.client.delete("/api/v1/events", headers=server.auth("admin")), 405, None)
    r = server.client.get("/api/v1/incidents", params={"open": "perhaps"}, headers=server.auth("viewer"))
    assert_refused(r, 422, "open", "query")
    assert_refused(server.client.get("/api/v1/incidents"), 401, None)
