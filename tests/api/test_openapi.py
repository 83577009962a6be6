"""The OpenAPI document (``/openapi.json``) promises a shape for every success (issue 8): each operation's
200/201 is a JSON schema with members (a ``$ref`` or ``properties``), or a declared non-JSON media type (the
``/metrics`` text, the HTML page, evidence bytes); every ``/api/v1`` route documents 401 and its errors as the
problem document; and what the report and alert routes return validates against the models they declare, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from api.models import AlertStatus, ClosedMonthReport, ReportBody, SignedVersionInfo, VersionList
from tests.api.conftest import CST, Client

PROBLEM = {"$ref": "#/components/schemas/Problem"}
METHODS = {"get", "post", "put", "patch", "delete"}


async def _operations(c: Client) -> list[tuple[str, str, dict[str, Any]]]:
    paths: dict[str, dict[str, Any]] = (await c.http.get("/openapi.json")).json()["paths"]
    return [(m, p, op) for p, ops in paths.items() for m, op in ops.items() if m in METHODS]


def _has_members(schema: dict[str, Any]) -> bool:
    """A ``$ref``, ``properties``, or a union of such (never an empty or free-form object)."""
    if "$ref" in schema or schema.get("properties"):
        return True
    union = schema.get("anyOf") or schema.get("oneOf") or []
    return bool(union) and all(_has_members(s) for s in union)


async def test_every_success_has_a_schema_or_a_media_type(client: Client) -> None:
    operations = await _operations(client)
    assert len(operations) >= 40
    for method, path, op in operations:
        codes = [code for code in ("200", "201") if code in op["responses"]]
        assert codes, f"{method} {path}: no 200/201 documented"
        for code in codes:
            content: dict[str, Any] = op["responses"][code].get("content", {})
            assert content, f"{method} {path} {code}: no content documented"
            if "application/json" in content:
                schema = content["application/json"].get("schema", {})
                assert _has_members(schema), f"{method} {path} {code}: free-form JSON {schema}"
            else:
                assert all("/" in media for media in content), f"{method} {path} {code}: {content}"


async def test_every_api_route_documents_401_and_problem_errors(client: Client) -> None:
    for method, path, op in await _operations(client):
        responses: dict[str, Any] = op["responses"]
        if path.startswith("/api/v1/"):
            assert "401" in responses, f"{method} {path}: 401 not documented"
        if "{month}" in path:
            assert "422" in responses
            month = next(p for p in op["parameters"] if p["name"] == "month")
            assert month["schema"]["pattern"] == "^[0-9]{4}-[0-9]{2}$", path
        for code, response in responses.items():
            if code.startswith(("4", "5")) and path != "/healthz":  # its 503 is the Health body, by design
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (method, path, code)


def _valid(model: type[BaseModel], body: Any) -> None:
    model.model_validate(body, strict=False)


async def test_report_and_alert_bodies_match_their_models(client: Client) -> None:
    c = client
    await c.state(datetime(2026, 3, 10, 8, tzinfo=CST), "CPE-0001", "down")
    await c.state(datetime(2026, 3, 10, 9, tzinfo=CST), "CPE-0001", "up")
    c.clock.now = datetime(2026, 3, 20, 10, tzinfo=CST)
    base = "/api/v1/reports/monthly/2026-03"

    computed = await c.get("viewer", base)
    assert computed.status_code == 200, computed.text
    _valid(ReportBody, computed.json())
    assert computed.json()["incidents"] and computed.json()["items"] and computed.json()["areas"]

    issued = await c.post("assessor", base + "/versions", {"as_of": "2026-03-20T09:00:00"})
    assert issued.status_code == 201, issued.text
    _valid(ReportBody, issued.json())
    fetched = await c.get("viewer", base + "/versions/1")
    assert fetched.content == issued.content  # byte for byte as issued
    listed = await c.get("viewer", base + "/versions")
    _valid(VersionList, listed.json())

    signed = await c.post("assessor", base + "/versions/1/sign")
    assert signed.status_code == 200, signed.text
    _valid(SignedVersionInfo, signed.json())
    assert list(signed.json())[:3] == ["contract", "month", "version"]

    closed = await c.get("viewer", base)
    assert closed.json()["closed"] is True
    _valid(ClosedMonthReport, closed.json())
    _valid(VersionList, (await c.get("viewer", "/api/v1/contracts/default/reports/monthly/2026-03/versions")).json())

    status = await c.get("viewer", "/api/v1/alerts/status")
    assert status.status_code == 200, status.text
    _valid(AlertStatus, status.json())


@pytest.mark.parametrize("month", ["２０２６-０３", "2026-０３", "2026-3", "2026-13"])
async def test_a_bad_month_is_the_problem_naming_month(client: Client, month: str) -> None:
    for path in (f"/api/v1/reports/monthly/{month}", f"/api/v1/contracts/default/reports/monthly/{month}/versions"):
        r = await client.get("viewer", path)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert (body["status"], body["where"], body["field"]) == (422, "path", "month"), body
