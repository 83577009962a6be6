"""Replay a month of events for the sample network and produce its report; print the time of each step.

    python benchmarks/bench_replay.py [--scale 1.0] [--database-url URL]

The sample network is the contract's 593 circuits (~3,000 channels); the month is the generated one used by
the demo (about 5,000 events at scale 1). Steps: read and validate the JSON Lines file, ingest it through the
service (store, confirm polls, rebuild incidents), then issue the monthly report (JSON, CSV and HTML). The pure
engine + assessment time is printed beside the whole pipeline, so the share spent in storage is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from monitor.assessment import Month, assess
from monitor.contracts import default_contract
from monitor.engine import Engine
from monitor.events import read_jsonl
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage.database import Database


async def run(scale: float, url: str | None) -> None:
    inventory = sample_inventory()
    month = Month.parse("2026-10", DEFAULT_POLICY)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "october.jsonl"
        events = month_events(inventory, month.start, scale=scale)
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        print(
            f"network: {sum(1 for n in inventory.nodes() if n.kind == 'cpe')} circuits, "
            f"{len(inventory.channels)} channels; month 2026-10: {len(events)} events"
        )

        t0 = time.perf_counter()
        located = read_jsonl(path, DEFAULT_POLICY.zone)
        t1 = time.perf_counter()
        engine = Engine(inventory, DEFAULT_POLICY)
        engine.replay([e for _, e in located])
        history = engine.snapshot(month.end)
        assessment = assess(inventory, default_contract(), history, month)
        t2 = time.perf_counter()
        print(f"read+validate file      {t1 - t0:8.3f} s")
        print(
            f"pure engine + assessment {t2 - t1:8.3f} s  ({len(history.incidents)} incidents, "
            f"score {assessment.score}, amount {assessment.amount})"
        )

        db = Database(url or f"sqlite+aiosqlite:///{tmp}/bench.db")
        await db.connect()
        await db.upgrade()
        try:
            service = Service(db)
            t3 = time.perf_counter()
            await service.import_inventory(inventory)
            t4 = time.perf_counter()
            result = await service.ingest(located, source="bench")
            t5 = time.perf_counter()
            issued = await service.report("2026-10", as_of=month.end)
            for fmt in ("json", "csv", "html"):
                issued.render(fmt)
            t6 = time.perf_counter()
        finally:
            await db.close()
        print(f"import inventory ({db.dialect})  {t4 - t3:8.3f} s")
        print(f"ingest {result.stored} events     {t5 - t4:8.3f} s")
        print(f"report json+csv+html     {t6 - t5:8.3f} s")
        print(
            f"whole replay + report    {t6 - t3 + (t1 - t0):8.3f} s "
            f"({len(events) / (t6 - t3 + t1 - t0):,.0f} events/s)"
        )
        assert issued.assessment.amount == assessment.amount, "service and pure engine disagree"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of faults (default 1)")
    parser.add_argument(
        "--database-url", default=None, help="SQLAlchemy async URL (default: SQLite in a temp dir)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.scale, args.database_url))


if __name__ == "__main__":
    main()
