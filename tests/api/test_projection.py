"""The month-to-date projection through the API (SQLite and PostgreSQL) equals the month's report as of now."""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import CST, Client


async def test_projection_equals_the_report_as_of_now(client: Client) -> None:
    c = client
    await c.state(datetime(2026, 3, 10, 8, 0, tzinfo=CST), "CPE-0001", "down")
    await c.state(datetime(2026, 3, 10, 20, 0, tzinfo=CST), "CPE-0001", "up")
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    c.clock.now = datetime(2026, 3, 22, 12, 0, tzinfo=CST)
    assert (await c.http.get("/api/v1/projection")).status_code == 401
    r = await c.get("viewer", "/api/v1/projection")
    assert r.status_code == 200, r.text
    p = r.json()
    report = (await c.get("viewer", "/api/v1/reports/monthly/2026-03", as_of=c.clock.now.isoformat())).json()
    assert p["month"] == "2026-03" and p["as_of"] == "2026-03-22T12:00:00+08:00"
    assert p["online_rate"] == report["online_rate"]
    assert p["claim_breaches"] == report["claim_breaches"] > 0
    assert (p["score"], p["share_paid"], p["amount"]) == (report["score"], report["share_paid"], report["amount"])
    assert p["lost"] == {i["key"]: i["lost"] for i in report["items"]}
    assert p["open_by_level"]["3"] == 1 and p["oldest_open"]["3"] == "2026-03-20T10:00:00+08:00"
    c.clock.now = datetime(2026, 3, 22, 13, 0, tzinfo=CST)  # the same tracker, an hour on
    again = (await c.get("viewer", "/api/v1/contracts/default/projection")).json()
    assert again["channel_seconds"]["offline"] == p["channel_seconds"]["offline"] + 9 * 3600
