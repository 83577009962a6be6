"""Incidents through the API on SQLite and PostgreSQL: filters and cursor pagination, the detail, and the acts
(ack, onsite, explanation, exclusion request and decisions) with their roles, refusals and audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.api.conftest import CST, Client

D = datetime(2026, 3, 10, 8, 0, tzinfo=CST)
# CPE-0001 (2 cameras) down for an hour on three days; CPE-0003 (1 camera + 8-channel NVR) down on the 20th, still down.
DAYS = (10, 12, 14)
OPEN = "CPE-0003@2026-03-20T02:00:00Z"
FIRST = "CPE-0001@2026-03-10T00:00:00Z"


async def outages(c: Client) -> None:
    for day in DAYS:
        start = D.replace(day=day)
        await c.state(start, "CPE-0001", "down")
        await c.state(start + timedelta(hours=1), "CPE-0001", "up")
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    c.clock.now = datetime(2026, 3, 20, 10, 30, tzinfo=CST)


async def test_list_filters_and_pages(client: Client) -> None:
    c = client
    await outages(c)
    r = await c.get("viewer", "/api/v1/incidents")
    assert r.status_code == 200, r.text
    everything = r.json()
    ids = [i["id"] for i in everything["incidents"]]
    assert len(ids) == 4 and ids[0] == FIRST and ids[-1] == OPEN
    assert everything["next_cursor"] is None and everything["limit"] == 100
    assert "members" not in everything["incidents"][0] and everything["incidents"][0]["channels"] == 2

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        page = (await c.get("viewer", "/api/v1/contracts/default/incidents", **params)).json()
        seen += [i["id"] for i in page["incidents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids

    async def ids_for(**params: object) -> list[str]:
        r = await c.get("viewer", "/api/v1/incidents", **params)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["incidents"]]

    # newest first, paged the same way; a cursor of one order is refused by the other
    assert await ids_for(order="desc") == ids[::-1]
    newest: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 1, "order": "desc"} | ({} if cursor is None else {"cursor": cursor})
        page = (await c.get("viewer", "/api/v1/incidents", **params)).json()
        newest += [i["id"] for i in page["incidents"]]
        if (cursor := page["next_cursor"]) is None:
            break
        asc = await c.get("viewer", "/api/v1/incidents", limit=1, cursor=cursor)
        assert asc.status_code == 422 and asc.json()["field"] == "cursor"
    assert newest == ids[::-1]
    assert await ids_for(order="desc", level=0) == [i for i in ids[::-1] if i != OPEN]

    assert await ids_for(open="true") == [OPEN]
    assert await ids_for(state="ended") == ids[:3]
    assert await ids_for(level=3) == [OPEN]
    assert await ids_for(level=[0, 3]) == ids
    assert await ids_for(scope="T01-B2") == [OPEN]
    assert await ids_for(scope="T01") == ids
    assert await ids_for(month="2026-03") == ids
    assert await ids_for(month="2026-04") == []
    assert await ids_for(acked="true") == []
    assert await ids_for(exclusion="none") == ids

    for params, field in (
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"month": "2026-13"}, "month"),
        ({"month": "２０２６-03"}, "month"),
        ({"level": 4}, "level"),
        ({"scope": "NOPE"}, "scope"),
        ({"state": "open", "open": "false"}, "open"),
        ({"order": "newest"}, "order"),
    ):
        r = await c.get("viewer", "/api/v1/incidents", **params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["field"] == field, (params, r.json())


async def test_detail_has_timeline_members_clocks_and_limits(client: Client) -> None:
    c = client
    await outages(c)
    r = await c.get("viewer", f"/api/v1/incidents/{OPEN}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["contract"] == "default" and d["level"] == 3 and d["open"] is True
    assert [m["node"] for m in d["members"]] == ["CAM-0003-1"] + ["NVR-0003"] * 8
    assert d["timeline"][0]["kind"] == "opened"
    assert d["clocks"]["recovery_s"] == 1800 and d["clocks"]["recovery_running"] is True
    assert d["clocks"]["response_s"] == 1800 and d["clocks"]["onsite_s"] is None
    assert d["limits"]["restore_limit_s"] == 8 * 3600  # CPE-0003 is outside the county
    rule = c.service.default_policy.levels[3]
    assert d["limits"]["response_limit_s"] == rule.response_limit_s
    first = (await c.get("viewer", f"/api/v1/contracts/default/incidents/{FIRST}")).json()
    assert first["clocks"]["recovery_s"] == 3600 and first["clocks"]["recovery_running"] is False
    assert first["limits"]["restore_limit_s"] == 2 * 3600
    r = await c.get("viewer", "/api/v1/incidents/CPE-0009@2026-03-20T02:00:00Z")
    assert r.status_code == 404 and r.json()["field"] == "incident_id"
    assert (await c.get("viewer", f"/api/v1/contracts/nope/incidents/{OPEN}")).status_code == 404


async def test_ack_and_onsite_known_at_receipt(client: Client) -> None:
    c = client
    await outages(c)
    before = await c.events()
    assert (await c.post("viewer", f"/api/v1/incidents/{OPEN}/ack")).status_code == 403
    assert (await c.http.post(f"/api/v1/incidents/{OPEN}/ack")).status_code == 401
    assert (await c.post("collector", f"/api/v1/incidents/{OPEN}/ack")).status_code == 403
    assert await c.events() == before

    c.clock.now = datetime(2026, 3, 20, 10, 40, tzinfo=CST)
    r = await c.post("operator", f"/api/v1/incidents/{OPEN}/ack", {"by": "crew 7", "at": "2026-03-20T10:35:00"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["ack"] == "2026-03-20T10:35:00+08:00" and d["ack_by"] == "crew 7"
    assert d["clocks"]["response_s"] == 35 * 60 and d["clocks"]["response_running"] is False
    stored = (await c.service.repo.load_events())[-1]
    assert stored.type == "ack" and stored.known == c.clock.now  # known at its receipt (SPEC R8)
    audit = await c.service.repo.load_audit()
    assert (audit[-1].actor, audit[-1].action, audit[-1].subject) == ("operator-1", "ack", OPEN)

    r = await c.post("admin", f"/api/v1/incidents/{OPEN}/ack")
    assert r.status_code == 409 and "crew 7" in r.json()["error"]
    r = await c.post("operator", f"/api/v1/incidents/{FIRST}/ack")
    assert r.status_code == 409  # ended
    assert await c.events() == before + 1

    r = await c.post("operator-2", f"/api/v1/incidents/{OPEN}/onsite")
    assert r.status_code == 200, r.text
    assert r.json()["onsite_by"] == "operator-2" and r.json()["clocks"]["onsite_s"] == 40 * 60
    assert (await c.post("operator", f"/api/v1/incidents/{OPEN}/onsite")).status_code == 409


async def test_refusals_name_the_field_and_store_nothing(client: Client) -> None:
    c = client
    await outages(c)
    before, audit = await c.events(), await c.audit()
    url = f"/api/v1/incidents/{OPEN}"
    for path, body, field in (
        ("/explanation", {"text": "é" * 2049}, "text"),  # 4098 bytes of UTF-8
        ("/explanation", {"text": ""}, "text"),
        ("/explanation", {"text": "x", "extra": 1}, "extra"),
        ("/explanation", {"text": "x", "at": "1999-12-31T23:59:59Z"}, "at"),
        ("/explanation", {"text": "x", "at": "2026-03-20T09:00:00+08:00"}, "at"),  # before the start
        ("/explanation", {"text": "x", "at": "2026-03-21T00:00:00+08:00"}, "at"),  # after its receipt
        ("/ack", {"by": "x" * 65}, "by"),
        ("/exclusion", {"cause": "road works", "evidence": ["sha256:" + "0" * 64]}, "evidence.0"),
        ("/exclusion", {"cause": "road works", "evidence": ["photo.jpg"]}, "evidence.0"),
        ("/exclusion", {"cause": "c" * 4097}, "cause"),
    ):
        r = await c.post("operator", url + path, body)
        assert r.status_code == 422, (path, body, r.text)
        assert r.json()["field"] == field, (path, r.json())
    assert (await c.events(), await c.audit()) == (before, audit)


async def test_explanation_and_exclusion_with_evidence(client: Client) -> None:
    c = client
    await outages(c)
    r = await c.post("operator", f"/api/v1/incidents/{OPEN}/explanation", {"text": "凿断光缆 fibre cut by road works"})
    assert r.status_code == 200, r.text
    assert any(e["kind"] == "explanation" for e in r.json()["timeline"])

    upload = await c.http.post(
        "/api/v1/evidence", params={"filename": "cut.jpg"}, content=b"\xff\xd8 a photo", headers=c.auth("operator")
    )
    assert upload.status_code == 200, upload.text
    evidence = upload.json()["id"]
    url = f"/api/v1/incidents/{OPEN}/exclusion"
    assert (await c.post("assessor", url + "/approve")).status_code == 409  # nothing requested yet
    r = await c.post("operator", url, {"cause": "road works", "evidence": [evidence]})
    assert r.status_code == 200, r.text
    assert r.json()["excluded"] == "requested"
    stored = (await c.service.repo.load_events())[-1]
    assert stored.type == "exclusion" and getattr(stored, "evidence", None) == evidence
    assert getattr(stored, "by", None) == "operator-1"
    assert (await c.post("operator-2", url, {"cause": "again"})).status_code == 409  # one request pending

    r = await c.post("operator", url + "/approve")
    assert r.status_code == 403  # an operator decides nothing
    r = await c.post("assessor", url + "/reject", {"note": "no proof of a third party"})
    assert r.status_code == 200, r.text
    assert r.json()["excluded"] == "rejected"
    permit = await c.http.post(
        "/api/v1/evidence", params={"filename": "permit.pdf"}, content=b"%PDF a permit", headers=c.auth("operator")
    )
    both = [evidence, permit.json()["id"]]
    r = await c.post("operator", url, {"cause": "road works, permit attached", "evidence": both})
    assert r.status_code == 200, r.text
    assert getattr((await c.service.repo.load_events())[-1], "evidence", None) == " ".join(both)
    assert (await c.post("operator-2", url, {"cause": "a third time"})).status_code == 409  # pending again
    r = await c.post("assessor-2", url + "/approve")
    assert r.status_code == 200, r.text
    assert r.json()["excluded"] == "approved"
    assert (await c.post("operator", url, {"cause": "x"})).status_code == 409  # approved already
    actions = [(a.actor, a.action) for a in await c.service.repo.load_audit() if a.action == "exclusion"]
    assert actions == [
        ("operator-1", "exclusion"),
        ("assessor-1", "exclusion"),
        ("operator-1", "exclusion"),
        ("assessor-2", "exclusion"),
    ]


@pytest.mark.parametrize("route", ["approve", "reject"])
async def test_nobody_decides_their_own_exclusion_request(client: Client, route: str) -> None:
    c = client
    await outages(c)
    url = f"/api/v1/incidents/{OPEN}/exclusion"
    # An admin may do everything, but not decide what it asked for.
    assert (await c.post("admin", url, {"cause": "power cut by the grid"})).status_code == 200
    before = await c.events()
    r = await c.post("admin", f"{url}/{route}")
    assert r.status_code == 403 and "admin-1 requested" in r.json()["error"]
    assert await c.events() == before

    # The same person with a new role: an operator token "li" asks, is revoked, an assessor token "li" decides.
    c.tokens["li-op"] = await c.service.repo.create_token("li", "operator")
    assert (await c.post("assessor", f"{url}/reject")).status_code == 200
    assert (await c.post("li-op", url, {"cause": "grid again"})).status_code == 200
    assert await c.service.repo.revoke_token("li")
    c.tokens["li-as"] = await c.service.repo.create_token("li", "assessor")
    before = await c.events()
    r = await c.post("li-as", f"{url}/{route}")
    assert r.status_code == 403 and "li requested" in r.json()["error"]
    assert await c.events() == before
    assert (await c.post("assessor-2", f"{url}/approve")).status_code == 200
