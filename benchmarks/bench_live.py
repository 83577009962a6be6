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
"""Benchmark: the live service against the lab: start-up and restarts, then cycles, CPU, RSS, scrapes.

    sudo .venv/bin/python benchmarks/bench_live.py [--scale 1] [--minutes 2] [--interval 5 --interval 60]
                                                   [--snmp-limit 10] [--database-url URL] [--no-history]
                                                   [--restarts 2] [--startup-only]

``--scale K`` takes the sample network times K (``slawatch inventory sample --scale K``; 33 is a province:
~107,000 polled nodes, 652 SNMP CPEs) and its month (``sample-events --scale K``). Per database (SQLite in a
temporary directory unless ``--database-url``, e.g. a PostgreSQL database of your own that is emptied):

1. **Start-up**: ``LiveService.start()`` timed on the inventory alone (no history), then after a month of events
   replayed (``--no-history`` leaves it out), then ``--restarts`` more times, each after every node was
   confirmed up again (as a run between restarts leaves it), alternately after a crash (the run's events
   stored but not in the projection's last snapshot; the start stores an ``unknown`` event per node) and after
   a clean stop (the run's events and the stop's ``unknown`` events projected, a snapshot stored): start-up
   and the projection's readiness must not grow with the stored history.
2. **Cycles**: for each ICMP interval, ``LiveService.run`` (the production loop: plan, ICMP batch with the
   sentinel, SNMP beside, confirmation in ``Service.ingest``, heartbeat) for ``--minutes`` of wall time (at
   most 15), with the API (uvicorn on a free 127.0.0.1 port, the same app as ``slawatch run``) scraped at
   ``/metrics`` every 15 s. 5 s is the demo's profile (``LiveSettings.demo()``); any other interval is the
   default profile (3 pings, 1 s timeout, 15 s while suspect) with that interval, and a rate limit that
   covers the inventory (``--headroom`` x ``polled x 3 / interval`` packets/s, default 3x, at least the default
   2,000: the pinger paces its packets at that rate, so at 1.5x the sending alone fills 2/3 of every cycle).

Printed every minute and at the end: cycles (count, duration p50 / p99 / max, also as a share of the
interval), how late the event loop ran (a 0.25 s sleeper's worst overshoot: what a blocking step costs the
API), the scrapes' durations, the process's CPU share (user + system / wall: 1.0 is one core) and RSS. The lab
(``slawatch lab up``, its own state directory and nft table, taken down at the end) answers every address;
``--snmp-limit`` SNMP agents run (the other SNMP targets time out beside the cycles, as a silent agent does).

Only loopback addresses are probed. Needs root (raw ICMP sockets, nftables, snmpd). No figure here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from monitor.assessment import Month
from monitor.events import NodeState, StateEvent, parse_event
from monitor.heap import Heap
from monitor.inventory import Inventory
from monitor.inventory_io import dump_inventory
from monitor.live import LiveService, LiveSettings
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.settings import Settings
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


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


HEADROOM = [3.0]  # --headroom


def profile(interval: float, polled: int) -> LiveSettings:
    if interval == 5:
        return LiveSettings.demo()
    rate = max(2000.0, round(HEADROOM[0] * polled * 3 / interval, -2))
    return replace(LiveSettings(), icmp_interval_s=interval, suspect_interval_s=min(15.0, interval), rate_pps=rate)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def count_events(db: Database) -> int:
    from sqlalchemy import text

    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())


async def empty(db: Database) -> None:
    """Drop every table (a database given by URL is the benchmark's own) and upgrade again."""
    from sqlalchemy import MetaData, text

    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":  # its triggers' functions too
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        else:
            meta = MetaData()
            await conn.run_sync(meta.reflect)
            await conn.run_sync(meta.drop_all)
    await db.upgrade()


async def timed_start(service: Service, settings: LiveSettings, label: str) -> None:
    live = LiveService(service, settings)
    began = time.monotonic()
    await live.start()
    took = time.monotonic() - began
    building = service.projection_building()
    await service.wait_projection()  # a long history: the incident projection is built beside the cycles
    ready = time.monotonic() - began
    began = time.monotonic()
    await live.stop()
    stopped = time.monotonic() - began
    print(
        f"  start-up {label}: {took:6.1f} s to the first cycle"
        + (f", incident projection ready after {ready:6.1f} s (built beside the cycles)" if building else "")
        + f"; clean stop {stopped:4.1f} s; {await count_events(service.db):,} events stored; load {load()}",
        flush=True,
    )


async def startup(url: str, inventory: Inventory, scale: int, history: bool, restarts: int) -> None:
    """Start-up on the inventory alone, after a month of history, and after restarts (fresh Service each)."""
    polled = [n.id for n in inventory.nodes() if n.address is not None]
    settings = profile(60, len(polled))
    db = Database(url)
    await db.connect()
    try:
        await db.upgrade()
        await empty(db)
        began = time.monotonic()
        await Service(db).import_inventory(inventory)
        print(f"  inventory imported: {len(inventory):,} nodes in {time.monotonic() - began:.1f} s", flush=True)
        await timed_start(Service(db), settings, "inventory only (no history)")
        if history:
            month = Month.parse("2026-10", DEFAULT_POLICY)
            began = time.monotonic()
            raw = month_events(inventory, month.start, days=month.length_days, scale=scale)
            await Service(db).ingest([(f"sample:{i + 1}", parse_event(e)) for i, e in enumerate(raw)], source="bench")
            print(f"  a month replayed: {len(raw):,} events in {time.monotonic() - began:.1f} s", flush=True)
        for i in range(restarts + 1):
            how = ""
            if i:  # what a run between restarts leaves: every node confirmed up again (a state event each)
                service = Service(db)
                now = service.clock()
                ups = [StateEvent(at=now, node=n, state=NodeState.UP) for n in polled]
                if i % 2:  # killed (-9): the run's events stored, its projection's last snapshot older than them
                    await service.repo.append_events(ups, "bench")
                    how = " after a crash"
                else:  # a clean stop: the run projected its events, stored the stop's unknowns and a snapshot
                    await service.ingest([(f"bench:up:{n}", e) for n, e in zip(polled, ups, strict=True)], "bench")
                    later = service.clock()
                    gone = [StateEvent(at=later, node=n, state=NodeState.UNKNOWN) for n in polled]
                    await service.ingest([(f"bench:stop:{n}", e) for n, e in zip(polled, gone, strict=True)], "bench")
                    await service.save_snapshot()
                    how = " after a clean stop"
            label = f"{'after a month' if history else 'again'}, start {i + 1}{how}"
            await timed_start(Service(db), settings, label)
    finally:
        await db.close()


async def prepare_db(url: str, inventory: Inventory, history: bool, scale: int) -> None:
    db = Database(url)
    await db.connect()
    try:
        await db.upgrade()
        service = Service(db)
        await service.import_inventory(inventory)
        if history:
            month = Month.parse("2026-10", DEFAULT_POLICY)
            raw = month_events(inventory, month.start, days=month.length_days, scale=scale)
            await service.ingest([(f"sample:{i + 1}", parse_event(e)) for i, e in enumerate(raw)], source="bench")
    finally:
        await db.close()


class Watch:
    """What the run saw: cycle durations, the loop's lateness, scrapes; printed per minute."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.cycles: list[tuple[float, float]] = []  # (monotonic start, seconds)
        self.lags: list[tuple[float, float]] = []
        self.scrapes: list[tuple[float, float, int]] = []  # (at, seconds, bytes)
        self.samples: list[tuple[float, float, float]] = []  # (wall, cpu, rss)

    def wrap(self, live: LiveService) -> None:
        cycle = live.cycle

        async def timed() -> Any:
            began = time.monotonic()
            try:
                return await cycle()
            finally:
                self.cycles.append((began, time.monotonic() - began))

        live.cycle = timed  # type: ignore[method-assign]

    async def sleeper(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            began = time.monotonic()
            await asyncio.sleep(0.25)
            self.lags.append((began, time.monotonic() - began - 0.25))

    async def scraper(self, port: int, stop: asyncio.Event) -> None:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 15)
                if stop.is_set():
                    break
                began = time.monotonic()
                try:
                    r = await client.get("/metrics")
                    size = len(r.content)
                except httpx.HTTPError:
                    size = -1
                self.scrapes.append((began, time.monotonic() - began, size))

    def line(self, since: float, until: float) -> str:
        cyc = [d for b, d in self.cycles if since <= b < until]
        lag = [d for b, d in self.lags if since <= b < until]
        scr = [d for b, d, _n in self.scrapes if since <= b < until]
        i = self.interval
        text = (
            f"cycles {len(cyc):3d} p50 {quantile(cyc, 0.5):6.3f} s p99 {quantile(cyc, 0.99):6.3f} s "
            f"({quantile(cyc, 0.99) / i:5.1%}) max {max(cyc, default=float('nan')):6.3f} s; "
            f"loop late max {max(lag, default=0.0):5.3f} s; "
        )
        text += f"scrapes {len(scr)} max {max(scr, default=float('nan')):5.2f} s" if scr else "no scrape"
        return text


async def measure(interval: float, minutes: float, url: str, inventory: Inventory, history: bool, scale: int) -> None:
    import uvicorn

    from api.app import create_app

    polled = sum(1 for n in inventory.nodes() if n.address is not None)
    settings = profile(interval, polled)
    db = Database(url)
    await db.connect()
    try:
        await db.upgrade()
        if await count_events(db) == 0:  # prepared in a process of its own: this one starts as `slawatch run` does
            cmd = [sys.executable, __file__, "--scale", str(scale), "--prepare-db", url]
            subprocess.run([*cmd, *([] if history else ["--no-history"])], check=True)
        service = Service(db)
        live = LiveService(service, settings, heap=Heap())  # as `slawatch run` (api.server.run_live) builds it
        watch = Watch(interval)
        watch.wrap(live)
        port = free_port()
        app = create_app(Settings(), service=service)
        app.state.live = live
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
        stop = asyncio.Event()
        wall0, cpu0 = time.monotonic(), time.process_time()
        tasks = [
            asyncio.create_task(live.run(stop)),
            asyncio.create_task(server.serve()),
            asyncio.create_task(watch.sleeper(stop)),
            asyncio.create_task(watch.scraper(port, stop)),
        ]
        print(
            f"ICMP every {interval:g} s ({'demo' if interval == 5 else 'default'} profile, tick {settings.tick_s:g} s, "
            f"rate {settings.rate_pps:g} pps, {polled:,} polled nodes, {db.dialect}, "
            f"{'a month of events stored' if history else 'no history'}); load {load()}",
            flush=True,
        )
        end = wall0 + minutes * 60
        mark = wall0
        try:
            while time.monotonic() < end:
                await asyncio.sleep(min(60.0, end - time.monotonic()))
                now = time.monotonic()
                rss, _peak = rss_mib()
                cpu = time.process_time() - cpu0
                watch.samples.append((now - wall0, cpu, rss))
                print(
                    f"  {now - wall0:5.0f} s: {watch.line(mark, now)}; CPU {cpu / (now - wall0):5.1%} (since start) "
                    f"RSS {rss:.0f} MiB; states {_states(live)}; projection "
                    f"{'building' if service.projection_building() else 'ready'}; load {load()}",
                    flush=True,
                )
                mark = now
        finally:
            stop.set()
            server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        now_mib, peak_mib = rss_mib()
        steady_from = wall0 + min(wall / 2, 180.0)  # after start-up: every node confirmed up once
        steady = [d for b, d in watch.cycles if b >= steady_from]
        cpu_steady = _cpu_between(watch.samples, steady_from - wall0)
        allc = [d for _b, d in watch.cycles]
        scr = [d for _b, d, _n in watch.scrapes]
        for label, sample in (("all cycles   ", allc), ("steady cycles", steady)):
            if not sample:
                continue
            p50, p99, worst = quantile(sample, 0.5), quantile(sample, 0.99), max(sample)
            print(
                f"  {label}: n={len(sample):4d}  p50 {p50:7.3f} s ({p50 / interval:6.1%})  "
                f"p99 {p99:7.3f} s ({p99 / interval:6.1%})  max {worst:7.3f} s ({worst / interval:6.1%}) "
                f"of the interval; mean {statistics.fmean(sample):.3f} s"
            )
        print(
            f"  CPU share {cpu / wall:.1%} of one core over the run, {cpu_steady} in the second half; "
            f"RSS {now_mib:.0f} MiB (peak {peak_mib:.0f} MiB); /metrics scrapes: {len(scr)}, "
            f"p50 {quantile(scr, 0.5):.2f} s, max {max(scr, default=float('nan')):.2f} s, "
            f"{watch.scrapes[-1][2] if watch.scrapes else 0:,} bytes; loop late max "
            f"{max((d for _b, d in watch.lags), default=0.0):.3f} s; load {load()}",
            flush=True,
        )
    finally:
        await db.close()


def _states(live: LiveService) -> str:
    from collections import Counter

    counts = Counter(s.value for s in live.states.values())
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _cpu_between(samples: list[tuple[float, float, float]], since: float) -> str:
    inside = [(w, c) for w, c, _r in samples if w >= since]
    before = [(w, c) for w, c, _r in samples if w < since]
    if len(inside) < 1 or not before:
        return "n/a"
    (w0, c0), (w1, c1) = before[-1], inside[-1]
    return f"{(c1 - c0) / (w1 - w0):.1%}" if w1 > w0 else "n/a"


def lab(cmd: str, *args: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "collectors.lab.cli", cmd, *args], env=env, capture_output=True, text=True, check=False
    )
    print(f"  lab {cmd}: {proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ''}", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"lab {cmd} failed: {proc.stdout}{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="sample network times K (33: ~107,000 nodes)")
    parser.add_argument("--minutes", type=float, default=None, help="minutes per interval (default 2, at most 15)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per interval (older spelling)")
    parser.add_argument("--interval", type=float, action="append", help="ICMP interval, s (default: 5 and 60)")
    parser.add_argument("--snmp-limit", type=int, default=10, help="SNMP agents in the lab (default 10)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory (a URL's tables are dropped)")
    parser.add_argument("--no-history", action="store_true", help="no month of events stored before the run")
    parser.add_argument("--restarts", type=int, default=2, help="restarts timed after the month (default 2)")
    parser.add_argument("--startup-only", action="store_true", help="time the start-ups only (no lab, no cycles)")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up figures")
    parser.add_argument("--prepare-db", metavar="URL", help=argparse.SUPPRESS)  # the inventory and month only
    parser.add_argument("--headroom", type=float, default=3.0, help="rate limit / packets needed (default 3)")
    args = parser.parse_args()
    HEADROOM[0] = args.headroom
    if args.prepare_db:
        asyncio.run(prepare_db(args.prepare_db, sample_inventory(scale=args.scale), not args.no_history, args.scale))
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root: raw ICMP sockets, nftables and snmpd for the lab")
    minutes = min(15.0, args.minutes if args.minutes is not None else (args.duration or 120.0) / 60)
    intervals = args.interval or [5.0, 60.0]
    inventory = sample_inventory(scale=args.scale)
    print(
        f"bench_live {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load {load()}; "
        f"scale {args.scale}: {len(inventory):,} nodes",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        if not args.no_startup:
            url = args.database_url or f"sqlite+aiosqlite:///{tmp}/startup.db"
            print(f"start-up ({url.split(':', 1)[0]}):", flush=True)
            asyncio.run(startup(url, inventory, args.scale, not args.no_history, args.restarts))
        if args.startup_only:
            return
        sample = Path(tmp) / "sample.csv"
        sample.write_text(dump_inventory(inventory, "csv", include_secrets=True), encoding="utf-8")
        env = {
            **os.environ,
            "SLAWATCH_LAB_DIR": str(Path(tmp) / "lab"),
            "SLAWATCH_LAB_TABLE": f"slawatch_bench_{secrets.token_hex(3)}",
        }
        lab("up", "--inventory", str(sample), "--snmp-limit", str(args.snmp_limit), env=env)
        try:
            for i, interval in enumerate(intervals):
                if args.database_url:
                    url = args.database_url
                    if i == 0 and args.no_startup:
                        asyncio.run(_empty_url(url))
                else:
                    url = f"sqlite+aiosqlite:///{tmp}/bench{i}.db"
                    if i == 0 and not args.no_startup:
                        os.replace(f"{tmp}/startup.db", f"{tmp}/bench0.db")  # its month is already in
                asyncio.run(measure(interval, minutes, url, inventory, not args.no_history, args.scale))
        finally:
            lab("down", env=env)


async def _empty_url(url: str) -> None:
    db = Database(url)
    await db.connect()
    try:
        await empty(db)
    finally:
        await db.close()


if __name__ == "__main__":
    main()
