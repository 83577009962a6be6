"""The inventory through the API (SQLite and PostgreSQL): paginated list and one node with its stored state
(no live service in the process), and an import validated whole as the CLI's (422 naming line and field,
nothing stored; 413 over the body limit)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests.api.conftest import CST, SMALL, Client
from tests.api.test_metrics import live_api

CSV = {"Content-Type": "text/csv"}


async def test_list_and_get_with_stored_state(client: Client) -> None:
    c = client
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    assert (await c.http.get("/api/v1/inventory")).status_code == 401
    r = await c.get("viewer", "/api/v1/inventory")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state_source"] == "stored" and body["next_cursor"] is None
    assert [n["id"] for n in body["nodes"]][:3] == ["T01", "T01-B1", "T01-B2"] and len(body["nodes"]) == 13
    assert not any("community" in str(n) for n in body["nodes"])

    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = (await c.get("viewer", "/api/v1/inventory", limit=5, **({"cursor": cursor} if cursor else {}))).json()
        seen += [n["id"] for n in page["nodes"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [n["id"] for n in body["nodes"]]

    cams = (await c.get("viewer", "/api/v1/inventory", kind="camera", under="CPE-0003")).json()["nodes"]
    assert [n["id"] for n in cams] == ["CAM-0003-1"]
    assert cams[0]["state"] == "up" and cams[0]["behind"] == "CPE-0003"

    r = await c.get("viewer", "/api/v1/inventory/CPE-0003")
    assert r.status_code == 200
    node = r.json()
    assert (node["state"], node["since"], node["area"]) == ("down", "2026-03-20T02:00:00+00:00", "T01")
    assert node["children"] == ["CAM-0003-1", "NVR-0003"] and node["snmp_configured"] is False
    assert (await c.get("viewer", "/api/v1/inventory/CPE-0001")).json()["snmp_configured"] is True
    assert (await c.get("viewer", "/api/v1/inventory/NOPE")).status_code == 404
    for params in ({"cursor": "x"}, {"under": "NOPE"}, {"kind": "router"}, {"limit": 1001}):
        assert (await c.get("viewer", "/api/v1/inventory", **params)).status_code == 422, params


async def test_import_validated_whole(client: Client) -> None:
    c = client
    text = SMALL.read_text(encoding="utf-8")
    url = "/api/v1/inventory?format=csv"
    for who in ("viewer", "operator", "assessor"):
        assert (await c.http.post(url, content=text, headers={**CSV, **c.auth(who)})).status_code == 403

    bad = text.replace("CAM-0002-3,camera,CPE-0002", "CAM-0002-3,camera,CPE-0099")
    bad = bad.replace("127.20.0.6", "127.20.0.999")
    before = await c.service.inventory()
    r = await c.http.post(url, content=bad, headers={**CSV, **c.auth("admin")})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert (problem["where"], problem["field"]) == ("request body (csv):11", "parent")
    assert "request body (csv):13" in problem["detail"] and "(2 errors)" in problem["detail"]  # every problem
    assert await c.service.inventory() == before

    grown = text + "CAM-0003-2,camera,CPE-0003,Nanpo camera 2,127.20.0.7,1,,,,2026-01-01T00:00:00+08:00,,,,,\n"
    r = await c.http.post(url, content=grown, headers={**CSV, **c.auth("admin")})
    assert r.status_code == 200, r.text
    assert (r.json()["added"], r.json()["ids"]["added"]) == (1, ["CAM-0003-2"])
    assert "CAM-0003-2" in await c.service.inventory()
    assert (await c.get("viewer", "/api/v1/inventory/CAM-0003-2")).status_code == 200
    audit = await c.service.repo.load_audit()
    assert (audit[-1].actor, audit[-1].action) == ("admin-1", "inventory import")

    policy_file = '{"nodes": [{"id": "T09", "kind": "area"}], "contracts": [{"id": "x", "policy": "/etc/passwd"}]}'
    r = await c.http.post(
        "/api/v1/inventory?format=json",
        content=policy_file,
        headers={"Content-Type": "application/json", **c.auth("admin")},
    )
    assert (r.status_code, r.json()["field"]) == (422, "policy")
    huge = text + "#" * (2 * 1024 * 1024)
    r = await c.http.post(url, content=huge, headers={**CSV, **c.auth("admin")})
    assert r.status_code == 413
    r = await c.http.post("/api/v1/inventory?format=xml", content=text, headers={**CSV, **c.auth("admin")})
    assert (r.status_code, r.json()["field"]) == (422, "format")


async def test_inventory_state_from_the_live_service(tmp_path: Path) -> None:
    """With a live service in the process its states are served (a fresh start: every polled node unknown)."""
    async with live_api(tmp_path) as lab:
        r = await lab.client.get("/api/v1/inventory/CPE-1", headers=lab.auth())
        assert r.status_code == 200, r.text
        assert (r.json()["state_source"], r.json()["state"]) == ("live", "unknown")
        lab.icmp.failing = {"CPE-1"}
        await lab.step()
        node = (await lab.client.get("/api/v1/inventory/CPE-1", headers=lab.auth())).json()
        assert (node["state"], node["since"]) == ("down", lab.clock.now.isoformat())
        cams = (await lab.client.get("/api/v1/inventory", params={"under": "CPE-1"}, headers=lab.auth())).json()
        assert all(n["behind"] == "CPE-1" for n in cams["nodes"])
    async with live_api(tmp_path / "stored", with_live=False) as lab:  # started elsewhere: its stored states
        r = await lab.client.get("/api/v1/inventory/CPE-1", headers=lab.auth())
        assert (r.json()["state_source"], r.json()["state"]) == ("stored", "unknown")
