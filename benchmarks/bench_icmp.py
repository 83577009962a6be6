# Measured 2026-11-25 on the project's 2-core Debian 12 machine (loopback, root, load average ~1 from other
# work), `python benchmarks/bench_icmp.py --targets 10000`:
#
#   # python 3.11.7, /usr/bin/fping: Version 5.1, 2 CPUs, median of 3, rate=1e+06/s burst=500
#    targets  tool                  wall s   pings/s CPU µs/ping  replies
#   ---------------------------------------------------------------------
#      10000  slawatch (raw)         0.142    70,263        14.2    10000
#      10000  fping -c1 -q -i0       0.153    65,180        14.7    10000
#      10000  ratio slawatch/fping             1.08x       0.97x
#
# A run a minute earlier with --targets 100000 (fping in 2 chunks of 60,000): slawatch 1.64 s, 60,900 pings/s,
# 16.4 µs per ping; fping 1.45 s, 69,200 pings/s, 13.9 µs per ping: ratios 0.88x speed, 1.18x CPU. Figures
# drift by ~15 % between runs; compare the ratios measured side by side.
"""Benchmark: slawatch's bulk pinger against fping, on N live loopback targets.

What is measured, for each N given with ``--targets`` (one ``--targets`` per N):

* slawatch: ``Pinger.ping_many(targets, count=1)`` in this process -- wall time of the call, pings/s
  (= packets sent / wall time), CPU µs per ping (``time.process_time()`` delta of this process: user +
  system, which on loopback includes the kernel's work of generating the echo replies in softirq context).
  Sockets are opened before timing starts.
* fping: ``fping -c1 -q -i0 -t<timeout ms> -f FILE`` on the same list, as a child process -- wall time,
  pings/s, CPU µs per ping from ``resource.getrusage(RUSAGE_CHILDREN)``. Its figures include its process
  start, reading the file, and printing one summary line per target (on stderr), which we parse to count
  replies. fping 5.1 cannot take more than ~65,000 targets in one run (see ``FPING_CHUNK``): bigger lists
  are split into chunks of 60,000 pinged by successive fping processes, times added up. ``-i0`` removes
  fping's default 10 ms gap between packets (root only); ``-c1`` sends one packet per target (count mode,
  no retries); ``-q`` suppresses per-packet lines; ``-t`` is the same per-packet timeout as ours.

Each measurement is repeated ``--repeat`` times, alternating the tools, and the median is shown.
Targets are 127.x.y.z (x from 1, z in 1..254: no .0 or .255 host parts), generated deterministically; only
loopback is ever pinged. Needs root (raw sockets; fping -i0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.icmp import Pinger


@dataclass(frozen=True)
class Run:
    tool: str
    targets: int
    wall_s: float
    cpu_s: float
    replies: int

    @property
    def pings_per_s(self) -> float:
        return self.targets / self.wall_s

    @property
    def cpu_us_per_ping(self) -> float:
        return self.cpu_s / self.targets * 1e6


def loopback_targets(n: int) -> list[str]:
    """The first ``n`` addresses 127.x.y.z with x >= 1 and z in 1..254, in a fixed order."""
    if n > 254 * 256 * 254:
        raise ValueError("too many targets for 127.0.0.0/8")
    out: list[str] = []
    for i in range(n):
        z = i % 254 + 1
        y = i // 254 % 256
        x = i // (254 * 256) + 1
        out.append(f"127.{x}.{y}.{z}")
    return out


async def run_slawatch(targets: list[str], rate: float, burst: int, timeout: float) -> Run:
    async with Pinger(rate=rate, burst=burst, privileged=None) as pinger:
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = await pinger.ping_many(targets, count=1, timeout=timeout)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    replies = sum(r.received for r in results.values())
    return Run(f"slawatch ({pinger.kind})", len(targets), wall, cpu, replies)


#: fping 5.1 keeps a sequence number reserved for 10 s after use and has 65,535 of them: on more targets
#: in one run it aborts with "not enough sequence numbers available". Larger lists are split into chunks
#: of this many targets, pinged by successive fping processes (their times are added up).
FPING_CHUNK = 60_000

_FPING_LINE = re.compile(r"xmt/rcv/%loss = (\d+)/(\d+)/")


def run_fping(fping: str, target_files: list[str], n: int, timeout: float) -> Run:
    """Run fping once per file, one after the other (see FPING_CHUNK); totals wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    replies = 0
    for target_file in target_files:
        cmd = [fping, "-c1", "-q", "-i0", f"-t{int(timeout * 1000)}", "-f", target_file]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode not in (0, 1):  # 1: some targets unreachable
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-500:]}")
        replies += sum(int(m.group(2)) for m in _FPING_LINE.finditer(proc.stderr))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tool = "fping -c1 -q -i0" + (f" x{len(target_files)}" if len(target_files) > 1 else "")
    return Run(tool, n, wall, cpu, replies)


def median_run(runs: list[Run]) -> Run:
    walls = sorted(runs, key=lambda r: r.wall_s)
    mid = walls[len(walls) // 2]
    return Run(
        mid.tool,
        mid.targets,
        statistics.median(r.wall_s for r in runs),
        statistics.median(r.cpu_s for r in runs),
        min(r.replies for r in runs),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare slawatch's bulk pinger with fping on N live loopback targets (127.x.y.z). "
        "Prints wall time, pings/s, CPU µs per ping and replies for each tool, and their ratios. "
        "Needs root.",
    )
    parser.add_argument(
        "--targets",
        type=int,
        action="append",
        metavar="N",
        help="number of loopback targets; repeat the option for several sizes (default: 10000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and size; median shown (3)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1_000_000.0,
        help="slawatch send rate, packets/s (default 1e6: unpaced, CPU-bound like fping -i0)",
    )
    parser.add_argument(
        "--burst", type=int, default=500, help="slawatch packets sent back to back before reading (500)"
    )
    parser.add_argument("--timeout", type=float, default=1.0, help="per-packet timeout, s (1.0), both tools")
    parser.add_argument("--fping", default=shutil.which("fping"), help="fping binary (default: from PATH)")
    args = parser.parse_args(argv)
    sizes = args.targets or [10_000]
    if os.geteuid() != 0:
        print("warning: not root; raw sockets and fping -i0 may be refused", file=sys.stderr)
    if not args.fping:
        parser.error("fping not found: apt-get install fping, or pass --fping PATH")

    rows: list[tuple[Run, Run]] = []
    for n in sizes:
        targets = loopback_targets(n)
        target_files: list[str] = []
        for start in range(0, n, FPING_CHUNK):
            with tempfile.NamedTemporaryFile("w", prefix="bench_icmp_", suffix=".txt", delete=False) as f:
                f.write("\n".join(targets[start : start + FPING_CHUNK]) + "\n")
                target_files.append(f.name)
        try:
            ours: list[Run] = []
            theirs: list[Run] = []
            for _ in range(args.repeat):
                ours.append(asyncio.run(run_slawatch(targets, args.rate, args.burst, args.timeout)))
                theirs.append(run_fping(args.fping, target_files, n, args.timeout))
        finally:
            for name in target_files:
                os.unlink(name)
        rows.append((median_run(ours), median_run(theirs)))

    fping_version = subprocess.run([args.fping, "-v"], capture_output=True, text=True).stdout.strip()
    print(
        f"# python {sys.version.split()[0]}, {fping_version}, {os.cpu_count()} CPUs, "
        f"median of {args.repeat}, rate={args.rate:g}/s burst={args.burst}"
    )
    header = f"{'targets':>8}  {'tool':<20} {'wall s':>7} {'pings/s':>9} {'CPU µs/ping':>11} {'replies':>8}"
    print(header)
    print("-" * len(header))
    for ours_run, fping_run in rows:
        for r in (ours_run, fping_run):
            print(
                f"{r.targets:>8}  {r.tool:<20} {r.wall_s:>7.3f} {r.pings_per_s:>9,.0f} "
                f"{r.cpu_us_per_ping:>11.1f} {r.replies:>8}"
            )
        speed = ours_run.pings_per_s / fping_run.pings_per_s
        cpu = ours_run.cpu_us_per_ping / fping_run.cpu_us_per_ping
        print(f"{ours_run.targets:>8}  {'ratio slawatch/fping':<20} {'':>7} {speed:>8.2f}x {cpu:>10.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
