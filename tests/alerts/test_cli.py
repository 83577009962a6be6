"""``slawatch alerts status`` and ``slawatch alerts retry`` over a real SQLite database with a parked message."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from monitor.alerts.outbox import mark_failed, messages, write_plans
from monitor.alerts.rules import IncidentFacts, plan_change, rules_from_mapping
from monitor.cli import app
from monitor.storage import Database, default_database_url

T0 = datetime(2026, 10, 3, 2, 0, tzinfo=UTC)


async def park_one(data: Path) -> None:
    db = Database(default_database_url(data))
    await db.connect()
    await db.upgrade()
    try:
        rules = rules_from_mapping(
            {
                "default_route": {"always": ["hook", "mqtt"]},
                "targets": {
                    "hook": {"kind": "webhook", "url": "http://127.0.0.1:9/hook"},
                    "mqtt": {"kind": "mqtt", "url": "mqtt://127.0.0.1:9"},
                },
            }
        )
        facts = IncidentFacts("default", "CPE-0003@2026-10-03T02:00:00Z", "CPE-0003", ("T01", "CPE-0003"), 3, 9, 9, T0)
        planned, state = plan_change(rules, None, facts, T0)
        assert state is not None
        await write_plans(db, [state], planned, T0)
        [hook, _mqtt] = await messages(db)
        assert await mark_failed(db, hook, "DeliveryError: connection refused", T0, max_attempts=1, backoff_s=1,
                                 backoff_max_s=1)
    finally:
        await db.close()


def test_status_shows_parked_messages_and_retry_puts_them_back(env: Path) -> None:
    asyncio.run(park_one(env / "data"))
    runner = CliRunner()
    text = runner.invoke(app, ["alerts", "status"])
    assert text.exit_code == 0
    assert "alert outbox: 2 targets, 1 incidents being alerted" in text.stdout
    assert "connection refused" in text.stdout and "CPE-0003@2026-10-03T02:00:00Z" in text.stdout
    checked = runner.invoke(app, ["alerts", "status", "--check", "--json"])
    assert checked.exit_code == 1
    data = json.loads(checked.stdout)
    assert data["targets"]["hook"] == {"pending": 0, "sent": 0, "parked": 1}
    assert data["targets"]["mqtt"]["pending"] == 1 and data["targets"]["mqtt"]["oldest_pending"]
    assert [(p["target"], p["kind"], p["attempts"]) for p in data["parked"]] == [("hook", "opened", 1)]
    retried = runner.invoke(app, ["alerts", "retry", "--target", "hook"])
    assert retried.exit_code == 0 and "requeued 1 parked messages" in retried.stdout
    after = json.loads(runner.invoke(app, ["alerts", "status", "--json", "--check"]).stdout)
    assert after["parked"] == [] and after["targets"]["hook"]["pending"] == 1
