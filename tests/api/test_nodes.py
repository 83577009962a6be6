"""``/api/v1/nodes``: the live state over the API, from a real LiveService on scripted probers (SQLite)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collectors.probers import ProbeResult
from monitor.events import NodeState
from tests.api.test_metrics import SECRETS, LiveApi, live_api, snmp_facts


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[LiveApi]:
    async with live_api(tmp_path) as api:
        yield api


async def test_401_without_or_with_a_bad_token(lab: LiveApi) -> None:
    for path in ("/api/v1/nodes", "/api/v1/nodes/CPE-1", "/api/v1/nodes/nope"):
        r = await lab.client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await lab.client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401, path


async def test_list_by_state(lab: LiveApi) -> None:
    r = await lab.client.get("/api/v1/nodes", headers=lab.auth())
    assert r.status_code == 200
    assert {n["state"] for n in r.json()["nodes"]} == {"unknown"}  # after a (first) start, before any poll
    lab.icmp.failing = {"CPE-1"}
    await lab.step()
    r = await lab.client.get("/api/v1/nodes", params={"state": "down"}, headers=lab.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "down" and body["total"] == 1 and not body["truncated"]
    (cpe,) = body["nodes"]
    assert cpe["id"] == "CPE-1" and cpe["kind"] == "cpe" and cpe["area"] == "T1" and cpe["ok"] is False
    assert cpe["since"] == lab.clock.now.isoformat()
    r = await lab.client.get("/api/v1/nodes", params={"state": "unknown"}, headers=lab.auth())
    assert r.json()["total"] == 0 and r.json()["nodes"] == []
    r = await lab.client.get("/api/v1/nodes", params={"state": "up", "limit": "3"}, headers=lab.auth())
    body = r.json()
    assert body["total"] == 11 and body["truncated"] and len(body["nodes"]) == 3
    cameras = [n for n in body["nodes"] if n["id"].startswith("CPE-1.")]
    assert cameras and all(n["behind"] == "CPE-1" for n in cameras)  # up, but behind the down CPE
    r = await lab.client.get("/api/v1/nodes", params={"state": "sideways"}, headers=lab.auth())
    assert r.status_code == 422 and r.json()["field"] == "state"


async def test_node_state_and_fact_timeline(lab: LiveApi) -> None:
    lab.snmp.script["CPE-3"] = [
        ProbeResult("CPE-3", "snmp", True, facts=snmp_facts("CPE-3", 1)),
        ProbeResult("CPE-3", "snmp", True, facts=snmp_facts("CPE-3", 2, changed=(1, 2))),
    ]
    await lab.step()
    r = await lab.client.get("/api/v1/nodes/CPE-3", headers=lab.auth())
    assert r.status_code == 200, r.text
    node = r.json()
    assert node["state"] == "up" and node["kind"] == "cpe" and node["area"] == "T2" and node["polled"]
    assert node["rtt_ms"] == 4.0 and node["loss"] == 0.0 and node["snmp_configured"] is True
    assert node["facts"] == []  # the first SNMP batch is taken by the next cycle
    await lab.step()  # takes the first sample (uplink up: no fact), starts the next batch
    await lab.step()  # takes the second: the uplink went down
    node = (await lab.client.get("/api/v1/nodes/CPE-3", headers=lab.auth())).json()
    assert node["snmp_available"] is True
    (fact,) = node["facts"]
    assert fact["kind"] == "oper_status" and fact["detail"] == "uplink ifOperStatus up(1) -> down(2)"
    assert fact["node"] == "CPE-3"
    assert node["state"] == "up"  # a fact is never an outage
    # a node that is not polled is still described
    area = (await lab.client.get("/api/v1/nodes/T1", headers=lab.auth())).json()
    assert area["polled"] is False and area["snmp_configured"] is False and area["area"] == "T1"


async def test_unknown_node_is_404(lab: LiveApi) -> None:
    r = await lab.client.get("/api/v1/nodes/CPE-9999", headers=lab.auth())
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no node 'CPE-9999' in the inventory",
        "error": "no node 'CPE-9999' in the inventory",
        "where": "path",
        "field": "node_id",
    }


async def test_no_credentials_in_any_response(lab: LiveApi) -> None:
    lab.snmp.script["CPE-2"] = [ProbeResult("CPE-2", "snmp", False, error="auth")]
    await lab.step()
    await lab.step()
    texts = [(await lab.client.get("/api/v1/nodes", headers=lab.auth())).text]
    for node_id in lab.inventory:
        r = await lab.client.get(f"/api/v1/nodes/{node_id}", headers=lab.auth("admin"))
        assert r.status_code == 200
        texts.append(r.text)
    texts.append((await lab.client.get("/metrics")).text)
    cpe2 = json.loads(texts[1 + list(lab.inventory).index("CPE-2")])
    assert [f["kind"] for f in cpe2["facts"]] == ["snmp_unavailable"]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
        assert '"snmp":' not in text and "community" not in text and "priv_key" not in text


async def test_without_a_live_service_the_stored_states_are_served(tmp_path: Path) -> None:
    """As ``slawatch serve`` beside ``slawatch run --no-api`` (the collector here cycles but is not this app's):
    the nodes routes answer from the stored confirmed states, the same states the collector holds, with
    ``source`` ``stored`` and the collector's state from its heartbeat."""
    async with live_api(tmp_path, with_live=False) as api:
        r = await api.client.get("/api/v1/nodes", headers=api.auth())
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "stored" and r.json()["collector"] == "running"  # started: its heartbeat
        api.icmp.failing = {"CPE-1"}
        await api.step()
        await api.step()
        api.service.clock = lambda: api.clock.now  # type: ignore[method-assign]  # the API's now: the collector's
        r = await api.client.get("/api/v1/nodes", params={"limit": "100"}, headers=api.auth())
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["source"] == "stored" and body["collector"] == "running"
        assert {n["id"]: n["state"] for n in body["nodes"]} == {
            n: api.live.states.get(n, NodeState.UP).value for n in api.live._polled()
        }
        down = [n for n in body["nodes"] if n["state"] == "down"]
        assert [n["id"] for n in down] == ["CPE-1"] and down[0]["last_poll"] is None  # polls live in the collector
        r = await api.client.get("/api/v1/nodes", params={"state": "down"}, headers=api.auth())
        assert r.json()["total"] == 1
        r = await api.client.get("/api/v1/nodes/CPE-1.1", headers=api.auth())
        assert r.status_code == 200, r.text
        camera = r.json()
        assert camera["behind"] == "CPE-1" and camera["source"] == "stored" and camera["facts"] == []
        assert camera["state"] == api.live.states.get("CPE-1.1", NodeState.UP).value
        r = await api.client.get("/api/v1/nodes/CPE-1", headers=api.auth())
        assert r.json()["state"] == "down" and r.json()["since"] is not None and r.json()["behind"] is None
        await api.live.stop()  # a clean stop: the heartbeat says so
        r = await api.client.get("/api/v1/nodes/CPE-1", headers=api.auth())
        assert r.json()["collector"] == "stopped"
        r = await api.client.get("/api/v1/nodes/NOPE", headers=api.auth())
        assert r.status_code == 404 and r.json()["field"] == "node_id"
        r = await api.client.get("/api/v1/nodes/CPE-1")
        assert r.status_code == 401  # the token is checked first
