"""Replay a month of events for the sample network and produce its report, at one or several sizes.

    python benchmarks/bench_replay.py                      # the contract's sample (593 circuits, ~3,000 channels)
    python benchmarks/bench_replay.py --scale 1 10 33      # 1, 10 and 33 counties: ~3,000 / 30,000 / 100,000 channels
    python benchmarks/bench_replay.py --scale 33 --pure    # the pure engine and assessment only (no database)
    python benchmarks/bench_replay.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

At scale K the network is K counties side by side (``slawatch inventory sample --scale K``) and the month has K
times the faults (``slawatch sample-events --scale K``). Steps per size: build the month's events, parse and
validate them, replay them through the pure engine and assess the month (the numbers a report is made of);
unless ``--pure``, then store them through the service (import, ingest: store, confirm, project incidents) and
issue the report as JSON, CSV and HTML from the database. Each size prints its seconds, microseconds per event
and per channel, and the process's peak RSS, so the growth with size can be read across rows. Each size runs in
its own process (so the peak RSS is that size's), one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from monitor.assessment import Month, assess
from monitor.contracts import default_contract
from monitor.engine import Engine
from monitor.events import parse_event
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage.database import Database


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def one_size(scale: int, url: str | None, pure: bool) -> dict[str, Any]:
    inventory = sample_inventory(scale=scale)
    month = Month.parse("2026-10", DEFAULT_POLICY)
    raw = month_events(inventory, month.start, days=month.length_days, scale=scale)
    out: dict[str, Any] = {"scale": scale, "channels": len(inventory.channels), "events": len(raw)}
    t0 = time.perf_counter()
    located = [(f"bench:{i}", parse_event(e, DEFAULT_POLICY.zone, f"bench:{i}")) for i, e in enumerate(raw)]
    t1 = time.perf_counter()
    engine = Engine(inventory, DEFAULT_POLICY)
    engine.replay(sorted((e for _, e in located), key=lambda e: e.known))
    history = engine.snapshot(month.end)
    t2 = time.perf_counter()
    assessment = assess(inventory, default_contract(), history, month)
    t3 = time.perf_counter()
    out |= {
        "parse_s": t1 - t0,
        "engine_s": t2 - t1,
        "assess_s": t3 - t2,
        "incidents": len(history.incidents),
        "score": str(assessment.score),
        "amount": str(assessment.amount),
    }
    if not pure:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
            await db.connect()
            await db.upgrade()
            try:
                service = Service(db)
                t4 = time.perf_counter()
                await service.import_inventory(inventory)
                t5 = time.perf_counter()
                result = await service.ingest(located, source="bench")
                t6 = time.perf_counter()
                issued = await service.report("2026-10", as_of=month.end)
                for fmt in ("csv", "html"):
                    issued.render(fmt)
                t7 = time.perf_counter()
            finally:
                await db.close()
            if issued.assessment.amount != assessment.amount:
                raise SystemExit("the service and the pure engine disagree")
            out |= {
                "backend": db.dialect,
                "import_s": t5 - t4,
                "ingest_s": t6 - t5,
                "stored": result.stored,
                "report_s": t7 - t6,
            }
    out["rss_mb"] = peak_rss_mb()
    return out


def print_row(r: dict[str, Any]) -> None:
    pure = r["engine_s"] + r["assess_s"]
    print(
        f"scale {r['scale']:>3}: {r['channels']:>7,} channels, {r['events']:>7,} events, {r['incidents']:>6,} incidents"
        f" | parse {r['parse_s']:6.2f} s, engine {r['engine_s']:6.2f} s, assessment {r['assess_s']:6.2f} s"
        f" ({pure / r['events'] * 1e6:5.0f} µs/event, {pure / r['channels'] * 1e6:5.0f} µs/channel)"
        f" | score {r['score']}, amount {r['amount']}"
    )
    if "ingest_s" in r:
        whole = r["parse_s"] + r["import_s"] + r["ingest_s"] + r["report_s"]
        print(
            f"           {r['backend']}: import {r['import_s']:6.2f} s, ingest {r['stored']:,} events "
            f"{r['ingest_s']:6.2f} s, report json+csv+html {r['report_s']:6.2f} s; whole {whole:6.2f} s"
        )
    print(f"           peak RSS {r['rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, nargs="+", default=[1], help="counties (1..60), one run each")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy async URL (default: SQLite in a temp dir)")
    parser.add_argument("--pure", action="store_true", help="the pure engine and assessment only")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run: print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one_size(args.scale[0], args.database_url, args.pure))))
        return
    rows = []
    for scale in args.scale:
        cmd = [sys.executable, __file__, "--one", "--scale", str(scale)]
        if args.database_url:
            cmd += ["--database-url", args.database_url]
        if args.pure:
            cmd.append("--pure")
        print(f"scale {scale}: running ...", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"scale {scale} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print_row(rows[-1])
    if len(rows) > 1:
        base = rows[0]
        for r in rows[1:]:
            ratio = (r["engine_s"] + r["assess_s"]) / (base["engine_s"] + base["assess_s"])
            print(
                f"scale {r['scale']} / scale {base['scale']}: {r['events'] / base['events']:.1f}x events, "
                f"{r['channels'] / base['channels']:.1f}x channels, {ratio:.1f}x engine + assessment time"
            )


if __name__ == "__main__":
    main()
