"""The sample month's report is the one the code gave before the rulings and the speed-ups of this release,
field by field (issue "a province on one machine": the engine's results are identical before and after).

``tests/data/sample-2026-10-report.json`` was written by the code at commit 0461eb0 (before the engine changed):
every scalar of the report as it was, and for each list or object its length and the SHA-256 of its canonical
JSON. A change that alters the sample month's numbers must say why, and rewrite the file from the old and new
code side by side; a new report field is added to the file the same way.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.assessment import Month, assess
from monitor.contracts import default_contract
from monitor.engine import Engine
from monitor.events import parse_event
from monitor.policy import DEFAULT_POLICY
from monitor.report import report_json
from monitor.sample import sample_inventory
from monitor.sample_events import month_events

EXPECTED = Path(__file__).parent.parent / "data" / "sample-2026-10-report.json"


def digest(value: Any) -> dict[str, Any]:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return {"sha256": hashlib.sha256(blob.encode()).hexdigest(), "length": len(value)}


def test_the_sample_month_reports_what_it_reported_before() -> None:
    inventory = sample_inventory()
    month = Month.parse("2026-10", DEFAULT_POLICY)
    raw = month_events(inventory, month.start, days=month.length_days)
    events = sorted((parse_event(e, DEFAULT_POLICY.zone) for e in raw), key=lambda e: e.known)
    engine = Engine(inventory, DEFAULT_POLICY)
    engine.replay(events)
    assessment = assess(inventory, default_contract(), engine.snapshot(month.end), month)
    body = report_json(assessment, version=0, generated_at=datetime(2026, 11, 1, tzinfo=UTC))
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    got = {
        k: digest(v) if isinstance(v, dict | list) else v
        for k, v in body.items()
        if k not in ("generated_at", "version")
    }
    for key in sorted(expected.keys() | got.keys()):
        assert got.get(key) == expected.get(key), key
