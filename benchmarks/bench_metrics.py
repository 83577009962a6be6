"""Time a Prometheus scrape at the sample size; print the figures (no assertion on time).

    python benchmarks/bench_metrics.py [--days 24] [--scrapes 20] [--database-url URL] [--scale K]

The sample network (593 circuits, ~3,000 channels; ``--scale 33``: 100,000) on SQLite in a temp dir, the
generated month 2026-10 replayed through the service up to ``--days`` (so the incident projection holds those
days), then:

1. ``slawatch serve``'s scrape (no live loop): the first one builds the month-to-date trackers (and, in a
   freshly started process, the incident projection: a replay of every stored event), the next ones only
   extend them; then the same after each small batch of new events (what a live cycle adds);
2. ``slawatch run``'s scrape: a live loop over scripted probers (every node answers; nothing is sent on the
   network) after one cycle, so node and channel states, the RTT histogram and the probes are included.

Each figure is the median (and worst) of ``--scrapes`` scrapes of ``monitor.metrics.scrape``, which is what
``GET /metrics`` runs (the HTTP layer adds little), and the exposition's size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from collectors.probers import ProbeResult
from monitor.assessment import Month
from monitor.events import Event, NodeState, StateEvent, parse_event
from monitor.inventory import Node
from monitor.live import LiveService, LiveSettings
from monitor.metrics import MetricsState, scrape
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage.database import Database


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Answering:
    """An ICMP prober where every node answers in 1 ms (nothing sent)."""

    kind = "icmp"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def probe(self, nodes: Sequence[Node]) -> dict[str, ProbeResult]:
        return {n.id: ProbeResult(n.id, self.kind, True, rtt_ms=1.0, loss=0.0) for n in nodes}


async def timed(label: str, n: int, once: object) -> None:
    assert callable(once)
    times: list[float] = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        body = await once()
        times.append(time.perf_counter() - t0)
        size = len(body)
    print(
        f"{label:<52} median {statistics.median(times) * 1000:7.1f} ms  "
        f"worst {max(times) * 1000:7.1f} ms  ({size:,} bytes)"
    )


async def run(days: int, scrapes: int, url: str | None, scale: int = 1) -> None:
    inventory = sample_inventory(scale=scale)
    month = Month.parse("2026-10", DEFAULT_POLICY)
    cut = month.start + timedelta(days=days)
    events = [parse_event(e) for e in month_events(inventory, month.start, scale=scale)]
    located = [(f"sample:{i}", e) for i, e in enumerate(events) if e.known < cut]
    clock = Clock(cut)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite+aiosqlite:///{tmp}/bench.db")
        await db.connect()
        await db.upgrade()
        try:
            service = Service(db, clock=clock)
            await service.import_inventory(inventory)
            t0 = time.perf_counter()
            await service.ingest(located, source="bench")
            print(
                f"sample network: {len(inventory.channels)} channels; {len(located)} events of 2026-10 up to "
                f"day {days} ingested in {time.perf_counter() - t0:.1f} s"
            )
            state = MetricsState()
            t0 = time.perf_counter()
            first = await scrape(None, service, state=state)
            print(f"{'serve: first scrape (builds the trackers)':<52} {1000 * (time.perf_counter() - t0):7.1f} ms")
            assert b"slawatch_month_online_ratio" in first
            await timed("serve: scrape, nothing new", scrapes, lambda: scrape(None, service, state=state))

            cold = Service(db, clock=clock)  # a freshly started `slawatch serve`: no projection yet
            t0 = time.perf_counter()
            await scrape(None, cold, state=MetricsState())
            print(
                f"{'serve: first scrape after start (+ projection)':<52} {1000 * (time.perf_counter() - t0):7.1f} ms"
            )

            cameras = [n.id for n in inventory.nodes() if n.kind == "camera"]
            step = iter(range(10**6))

            async def after_events() -> bytes:
                k = next(step)
                clock.now += timedelta(seconds=30)
                state_ = NodeState.DOWN if k % 2 == 0 else NodeState.UP
                batch: list[tuple[str, Event]] = [
                    (
                        f"bench:{k}:{j}",
                        StateEvent(at=clock.now, node=cameras[(7 * j + k // 2) % len(cameras)], state=state_),
                    )
                    for j in range(20)
                ]
                await service.ingest(batch, source="bench")
                t = time.perf_counter()
                body = await scrape(None, service, state=state)
                after_events.elapsed = time.perf_counter() - t  # type: ignore[attr-defined]
                return body

            times: list[float] = []
            for _ in range(scrapes):
                await after_events()
                times.append(after_events.elapsed)  # type: ignore[attr-defined]
            print(
                f"{'serve: scrape after 20 new state changes':<52} median {statistics.median(times) * 1000:7.1f} ms  "
                f"worst {max(times) * 1000:7.1f} ms"
            )

            live = LiveService(
                service,
                LiveSettings(icmp_interval_s=10.0, suspect_interval_s=5.0, rate_pps=1e9, icmp_count=1),
                probers={"icmp": Answering()},  # type: ignore[dict-item]
                clock=clock,
            )
            await live.start()
            try:
                cycles = probed = 0
                while cycles < 200 and (cycles < 2 or any(s is not NodeState.UP for s in live.states.values())):
                    clock.now += timedelta(seconds=1)
                    probed += (await live.cycle()).probed.get("icmp", 0)
                    cycles += 1
                unknown = sum(1 for s in live.states.values() if s is NodeState.UNKNOWN)
                print(f"live: {cycles} cycles, {probed} probes; {unknown} nodes unknown")
                live_state = MetricsState()
                t0 = time.perf_counter()
                await scrape(live, service, state=live_state)
                print(f"{'run: first scrape':<52} {1000 * (time.perf_counter() - t0):7.1f} ms")
                await timed(
                    "run: scrape (live states, RTT, month to date)",
                    scrapes,
                    lambda: scrape(live, service, state=live_state),
                )
            finally:
                await live.stop()
        finally:
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=24, help="days of the sample month replayed (default 24)")
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes per figure (default 20)")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy async URL (default: SQLite in a temp dir)")
    parser.add_argument("--scale", type=int, default=1, help="the sample network times K (default 1)")
    args = parser.parse_args()
    asyncio.run(run(args.days, args.scrapes, args.database_url, args.scale))


if __name__ == "__main__":
    main()
