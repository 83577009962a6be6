"""Tokens (admin: list, create with expiry, revoke; expired and revoked tokens get 401), the audit log (admin and
assessor, filtered and paginated) and the assessor's queue, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app as cli
from tests.api.conftest import CST, Client

OPEN = "CPE-0003@2026-03-20T02:00:00Z"


async def test_tokens_list_create_expire_revoke(client: Client) -> None:
    c = client
    for who in ("viewer", "operator", "assessor"):
        assert (await c.get(who, "/api/v1/tokens")).status_code == 403
    r = await c.get("admin", "/api/v1/tokens")
    assert r.status_code == 200
    names = [t["name"] for t in r.json()["tokens"]]
    assert "viewer-1" in names and all("secret" not in t and "hash" not in t for t in r.json()["tokens"])

    r = await c.post("admin", "/api/v1/tokens", {"name": "王工 (crew 3)", "role": "operator", "expires": "30d"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["active"] is True and made["role"] == "operator"
    assert datetime.fromisoformat(made["expires_at"]) == c.clock.now + timedelta(days=30)
    c.tokens["wang"] = made["secret"]
    assert (await c.get("wang", "/api/v1/incidents")).status_code == 200
    r = await c.post("admin", "/api/v1/tokens", {"name": "王工 (crew 3)", "role": "viewer"})
    assert r.status_code == 409 and r.json()["field"] == "name"

    c.clock.now += timedelta(days=30)  # expired now
    r = await c.get("wang", "/api/v1/incidents")
    assert r.status_code == 401 and "expired" in r.json()["error"]
    listed = {t["name"]: t for t in (await c.get("admin", "/api/v1/tokens")).json()["tokens"]}
    assert listed["王工 (crew 3)"]["active"] is False

    for body, field in (
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "", "role": "viewer"}, "name"),
        ({"name": "a\nb", "role": "viewer"}, "name"),
        ({"name": "y", "role": "viewer", "expires": "0d"}, "expires"),
        ({"name": "y", "role": "viewer", "expires": "9999w"}, "expires"),
        ({"name": "y", "role": "viewer", "expires": "2020-01-01T00:00:00Z"}, "expires"),
        ({"name": "y", "role": "viewer", "expires": "soon"}, "expires"),
    ):
        r = await c.post("admin", "/api/v1/tokens", body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())

    assert (await c.get("operator-2", "/api/v1/incidents")).status_code == 200
    r = await c.http.delete("/api/v1/tokens/operator-2", headers=c.auth("admin"))
    assert r.status_code == 200 and r.json()["tokens"][0]["revoked_at"] is not None
    assert (await c.get("operator-2", "/api/v1/incidents")).status_code == 401
    r = await c.http.delete("/api/v1/tokens/operator-2", headers=c.auth("admin"))
    assert r.status_code == 404
    audit = [(a.actor, a.action, a.subject) for a in await c.service.repo.load_audit()]
    assert ("admin-1", "token create", "王工 (crew 3)") in audit
    assert ("admin-1", "token revoke", "operator-2") in audit


async def test_audit_log_filtered_and_paged(client: Client) -> None:
    c = client
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    c.clock.now = datetime(2026, 3, 20, 10, 30, tzinfo=CST)
    assert (await c.post("operator", f"/api/v1/incidents/{OPEN}/ack")).status_code == 200
    c.clock.now += timedelta(minutes=5)
    body = {"text": "fibre cut"}
    assert (await c.post("operator-2", f"/api/v1/incidents/{OPEN}/explanation", body)).status_code == 200
    for who in ("viewer", "operator", "collector"):
        assert (await c.get(who, "/api/v1/audit")).status_code == 403
    r = await c.get("assessor", "/api/v1/audit")
    assert r.status_code == 200, r.text
    assert [(e["actor"], e["action"]) for e in r.json()["entries"]] == [
        ("operator-1", "ack"),
        ("operator-2", "explanation"),
    ]
    r = await c.get("admin", "/api/v1/audit", actor="operator-2")
    assert [e["action"] for e in r.json()["entries"]] == ["explanation"]
    r = await c.get("admin", "/api/v1/audit", action="ack", subject=OPEN)
    assert len(r.json()["entries"]) == 1
    first = await c.get("admin", "/api/v1/audit", limit=1)
    assert first.json()["entries"][0]["action"] == "ack"
    second = await c.get("admin", "/api/v1/audit", limit=1, cursor=first.json()["next_cursor"])
    assert second.json()["entries"][0]["action"] == "explanation" and second.json()["next_cursor"] is None
    assert (await c.get("admin", "/api/v1/audit", cursor="zzz")).json()["field"] == "cursor"
    r = await c.get("admin", "/api/v1/audit", **{"from": "soon"})
    assert (r.status_code, r.json()["field"]) == (422, "from")


async def test_queue_lists_what_awaits_a_decision(client: Client) -> None:
    c = client
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    c.clock.now = datetime(2026, 3, 20, 10, 30, tzinfo=CST)
    assert (await c.get("viewer", "/api/v1/queue")).json() == {"exclusions": [], "maintenance": []}
    r = await c.post("operator", f"/api/v1/incidents/{OPEN}/exclusion", {"cause": "grid power cut"})
    assert r.status_code == 200, r.text
    window = {"scope": "CPE-0001", "from": "2026-03-21T01:00:00+08:00", "to": "2026-03-21T03:00:00+08:00"}
    r = await c.post("operator", "/api/v1/maintenance", {**window, "reason": "swap the switch"})
    assert r.status_code == 200, r.text
    queue = (await c.get("assessor", "/api/v1/queue")).json()
    assert [(e["incident"], e["requested_by"]) for e in queue["exclusions"]] == [(OPEN, ["operator-1"])]
    assert [m["scope"] for m in queue["maintenance"]] == ["CPE-0001"]
    assert (await c.post("assessor", f"/api/v1/incidents/{OPEN}/exclusion/approve")).status_code == 200
    assert (await c.post("assessor", f"/api/v1/maintenance/{queue['maintenance'][0]['id']}/consent")).status_code == 200
    assert (await c.get("assessor", "/api/v1/queue")).json() == {"exclusions": [], "maintenance": []}


def test_cli_token_create_with_expiry_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    r = runner.invoke(cli, ["token", "create", "--role", "viewer", "--name", "zhang", "--expires", "12h"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["token", "create", "--role", "viewer", "--name", "li", "--expires", "later"])
    assert r.exit_code == 2 and "--expires" in r.output
    r = runner.invoke(cli, ["token", "list"])
    assert r.exit_code == 0 and "zhang\tviewer\tactive" in r.output and "li\t" not in r.output
    assert runner.invoke(cli, ["token", "revoke", "zhang"]).exit_code == 0
    assert "zhang\tviewer\trevoked" in runner.invoke(cli, ["token", "list"]).output
