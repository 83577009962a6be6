"""The daily 11:00 list through the API (SQLite and PostgreSQL): every channel offline at the claim hour, its
stretch, its incident and claim, and breaches equal to the monthly report's for that day."""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import CST, Client

BEHIND = "CPE-0003@2026-03-20T02:00:00Z"  # down since the 20th, 10:00: a breach on the 21st unless claimed
ACKED = "CPE-0002@2026-03-21T01:00:00Z"


async def test_daily_list_judges_as_the_report_does(client: Client) -> None:
    c = client
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    await c.state(datetime(2026, 3, 21, 9, 0, tzinfo=CST), "CPE-0002", "down")
    c.clock.now = datetime(2026, 3, 21, 9, 30, tzinfo=CST)
    assert (await c.post("operator", f"/api/v1/incidents/{ACKED}/ack", {"by": "crew 2"})).status_code == 200
    await c.state(datetime(2026, 3, 21, 10, 30, tzinfo=CST), "CPE-0001", "down")  # 30 min by 11:00: in grace
    c.clock.now = datetime(2026, 3, 21, 12, 0, tzinfo=CST)

    assert (await c.http.get("/api/v1/daily/2026-03-21")).status_code == 401
    r = await c.get("viewer", "/api/v1/daily/2026-03-21")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["at"] == "2026-03-21T11:00:00+08:00" and d["contract"] == "default"
    rows = {x["channel"]: x for x in d["channels"]}
    assert len(rows) == 9 + 3 + 2
    behind = [x for x in d["channels"] if x["incident"] == BEHIND]
    assert len(behind) == 9 and all(x["breach"] and x["stretch_start"] == "2026-03-20T10:00:00+08:00" for x in behind)
    acked = [x for x in d["channels"] if x["incident"] == ACKED]
    assert len(acked) == 3 and all(not x["breach"] and x["ack_by"] == "crew 2" for x in acked)
    assert acked[0]["ack"] == "2026-03-21T09:30:00+08:00"
    fresh = [x for x in d["channels"] if x["node"].startswith("CAM-0001")]
    assert len(fresh) == 2 and not any(x["breach"] for x in fresh)
    assert d["breaches"] == 9

    report = (await c.get("viewer", "/api/v1/reports/monthly/2026-03")).json()
    that_day = [b for b in report["claim_breach_list"] if b["at"] == d["at"]]
    assert sorted((b["channel"], b["incident"]) for b in that_day) == sorted(
        (x["channel"], x["incident"]) for x in d["channels"] if x["breach"]
    )

    same = (await c.get("viewer", "/api/v1/contracts/default/daily/2026-03-21")).json()
    assert same["channels"] == d["channels"]
    assert (await c.get("viewer", "/api/v1/daily/2026-03-22")).json()["channels"] == []  # 11:00 still ahead
    for bad in ("2026-3-21", "2026-02-30", "1999-12-31", "２０２６-03-21"):
        r = await c.get("viewer", f"/api/v1/daily/{bad}")
        assert r.status_code == 422 and r.json()["field"] == "date", bad
