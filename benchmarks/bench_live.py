# Measured 2026-12-05 on the project's 2-core machine (load average ~5 from other work running beside it),
# `sudo .venv/bin/python benchmarks/bench_live.py --duration 120` (sample network, 3,260 polled nodes, SQLite,
# a month of events stored), steady cycles; "before" is commit 0461eb0 run the same way from a worktree:
#
#   ICMP interval  code    cycle p50        p99              max              CPU share  RSS
#   5 s (demo)     before  1.336 s (26.7%)  2.084 s (41.7%)  2.630 s (52.6%)  36.0 %     128 MiB
#   5 s (demo)     after   0.334 s ( 6.7%)  0.550 s (11.0%)  1.151 s (23.0%)  15.0 %     122 MiB
#   60 s           before  1.163 s ( 1.9%)  1.872 s ( 3.1%)  2.197 s ( 3.7%)  27.8 %     129 MiB
#   60 s           after   0.489 s ( 0.8%)  0.680 s ( 1.1%)  0.768 s ( 1.3%)   6.7 %     125 MiB
#
# A cycle's floor is its ICMP batch: (icmp_count - 1) x icmp_spacing_s plus the replies (0.2 s at 5 s, 0.4 s at
# 60 s); the rest was storage (every state event ever stored read, every poll run upserted, per cycle), now only
# two one-row queries and the heartbeat. The first cycles after a start (every node unknown, then confirmed up:
# 3,260 state events) took up to 3.1 s after, 4.4 s before. Figures drift between runs: compare the ratios.
"""Benchmark: the live service's cycles against the lab for the sample network, with 5 s and 60 s polls.

    sudo .venv/bin/python benchmarks/bench_live.py [--duration 120] [--interval 5 --interval 60]
                                                   [--snmp-limit 10] [--database-url URL]

For each ICMP interval: a fresh database (SQLite in a temporary directory unless ``--database-url``) with the
sample network (``slawatch inventory sample``: 593 circuits, 3,260 polled addresses on 127.0.0.0/8) and, as
the demo has (``--no-history`` leaves it out), a month of its events replayed (about 5,000), and
``LiveService`` running its production cycle (plan, ICMP batch with the sentinel, confirmation in
``Service.ingest``, heartbeat) every ``tick_s`` for ``--duration`` seconds of wall time. 5 s is the demo's
profile (``LiveSettings.demo()``); any other interval is the default profile (``LiveSettings()``: 3 pings,
1 s timeout, 15 s while suspect) with that interval. The lab (``slawatch lab up``, its own state directory
and nft table, taken down at the end) answers every address; ``--snmp-limit`` SNMP agents run (the other
SNMP targets time out beside the cycles, as a silent agent does).

Printed per interval, over every cycle and over the steady cycles (after every polled node was up once):
cycle duration p50 / p99 / max, in seconds and as a fraction of the ICMP interval; the process's CPU share
(user + system CPU time / wall time: 1.0 is one core); RSS now and at peak. The figures are those of the code
checked out: to compare with an older commit, check it out in a worktree (``git worktree add /tmp/before
REV``) and run this file from there (``cd /tmp/before && python /path/to/bench_live.py``): it uses only
``LiveService(service, settings)``, ``start``/``cycle``/``stop`` and ``Service.import_inventory``.

Only loopback addresses are probed. Needs root (raw ICMP sockets, nftables, snmpd). No figure here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from monitor.assessment import Month
from monitor.events import NodeState, parse_event
from monitor.inventory_io import dump_inventory
from monitor.live import LiveService, LiveSettings
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage.database import Database


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process, MiB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return current, peak


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def profile(interval: float) -> LiveSettings:
    if interval == 5:
        return LiveSettings.demo()
    return replace(LiveSettings(), icmp_interval_s=interval, suspect_interval_s=min(15.0, interval))


async def measure(interval: float, duration: float, url: str, history: bool) -> None:
    inventory = sample_inventory()
    settings = profile(interval)
    db = Database(url)
    await db.connect()
    await db.upgrade()
    try:
        service = Service(db)
        await service.import_inventory(inventory)
        if history:
            month = Month.parse("2026-10", DEFAULT_POLICY)
            raw = month_events(inventory, month.start, days=month.length_days)
            await service.ingest([(f"sample:{i + 1}", parse_event(e)) for i, e in enumerate(raw)], source="bench")
        live = LiveService(service, settings)
        await live.start()
        loop = asyncio.get_running_loop()
        durations: list[tuple[float, float, bool]] = []  # (start, seconds, steady)
        polled = [n.id for n in inventory.nodes() if n.address is not None and n.active_at(live.clock())]
        steady = False
        cpu0, wall0 = time.process_time(), time.monotonic()
        try:
            while time.monotonic() - wall0 < duration:
                began = loop.time()
                await live.cycle()
                took = loop.time() - began
                durations.append((began, took, steady))
                if not steady:
                    states = live.states
                    steady = all(states.get(n, NodeState.UP) is NodeState.UP for n in polled)
                await asyncio.sleep(max(0.0, settings.tick_s - took))
        finally:
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            await live.stop()
        now_mib, peak_mib = rss_mib()
        print(
            f"ICMP every {interval:g} s ({'demo' if interval == 5 else 'default'} profile, tick {settings.tick_s:g} s,"
            f" {len(polled)} polled nodes, {db.dialect}, {'a month of events stored' if history else 'no events'}):"
            f" {len(durations)} cycles in {wall:.0f} s"
        )
        for label, sample in (
            ("all cycles   ", [d for _b, d, _s in durations]),
            ("steady cycles", [d for _b, d, s in durations if s]),
        ):
            if not sample:
                print(f"  {label}: none (not every node was up before the end: run longer)")
                continue
            p50, p99, worst = quantile(sample, 0.5), quantile(sample, 0.99), max(sample)
            print(
                f"  {label}: n={len(sample):4d}  p50 {p50:7.3f} s ({p50 / interval:6.1%})  "
                f"p99 {p99:7.3f} s ({p99 / interval:6.1%})  max {worst:7.3f} s ({worst / interval:6.1%}) "
                f"of the interval; mean {statistics.fmean(sample):.3f} s"
            )
        print(f"  CPU share {cpu / wall:.1%} of one core; RSS {now_mib:.0f} MiB (peak {peak_mib:.0f} MiB)")
    finally:
        await db.close()


def lab(cmd: str, *args: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "collectors.lab.cli", cmd, *args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"lab {cmd} failed: {proc.stdout}{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per interval (default 120)")
    parser.add_argument("--interval", type=float, action="append", help="ICMP interval, s (default: 5 and 60)")
    parser.add_argument("--snmp-limit", type=int, default=10, help="SNMP agents in the lab (default 10)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--no-history", action="store_true", help="no month of events stored before the run")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: raw ICMP sockets, nftables and snmpd for the lab")
    intervals = args.interval or [5.0, 60.0]
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        sample = Path(tmp) / "sample.csv"
        sample.write_text(dump_inventory(sample_inventory(), "csv", include_secrets=True), encoding="utf-8")
        env = {
            **os.environ,
            "SLAWATCH_LAB_DIR": str(Path(tmp) / "lab"),
            "SLAWATCH_LAB_TABLE": f"slawatch_bench_{secrets.token_hex(3)}",
        }
        lab("up", "--inventory", str(sample), "--snmp-limit", str(args.snmp_limit), env=env)
        try:
            for i, interval in enumerate(intervals):
                url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench{i}.db"
                asyncio.run(measure(interval, args.duration, url, not args.no_history))
        finally:
            lab("down", env=env)


if __name__ == "__main__":
    main()
