"""Benchmark: slawatch's bulk pinger against fping and against the single-socket limit, on N live loopback
targets, interleaved in one run and repeated, with the spread.

Run (root: raw sockets, ``fping -i0``)::

    .venv/bin/python benchmarks/bench_icmp.py                      # 10,000 and 100,000 targets, 5 repeats
    .venv/bin/python benchmarks/bench_icmp.py --targets 10000 --repeat 9

What is measured, for each N (``--targets``, repeatable), ``--repeat`` times, the three tools one after the
other in each repeat (slawatch, fping, limit, slawatch, fping, limit, ...), so that load from other work on
the machine hits all three alike:

* **slawatch**: ``Pinger.ping_many(targets, count=1)`` in this process, unpaced (``--rate`` 1e9/s, i.e. only
  the ``--burst`` between two looks at the socket), the pinger opened before timing. Wall time of the call;
  pings/s = packets / wall time; CPU µs per ping = ``time.process_time()`` delta / packets (user + system:
  on loopback this includes the kernel's work of generating the echo replies in softirq context).
* **fping**: ``fping -c1 -q -i0 -t<timeout ms> -f FILE`` as a child process: ``-i0`` removes fping's
  default 10 ms gap between packets, ``-c1`` sends one packet per target, ``-q`` prints one summary line per
  target (parsed to count replies). CPU from ``getrusage(RUSAGE_CHILDREN)``. Its figures include its process
  start and reading the file (a few ms). fping 5.1 cannot take more than ~65,000 targets in one run (see
  ``FPING_CHUNK``): bigger lists are pinged in chunks of 60,000 by successive processes, times added up.
* **limit**: the single-socket limit -- the least Python that can ping N targets over one raw socket:
  ``sendto`` of a prebuilt-template packet per target, a non-blocking ``recv_into`` loop after every 64
  sends and a ``poll`` at the end, replies counted by identifier with no matching, no timers, no results
  (MEASURED.md's ~110,000/s). It is what per-packet system calls cost from Python on this kernel; slawatch
  can only approach it.

Printed per N and tool: median and min-max of pings/s and of CPU µs per ping, and the fewest replies seen
in a repeat; then slawatch's ratios to fping and to the limit: the ratio of the medians and the min-max of
the per-repeat ratios (each slawatch run against the fping or limit run next to it). The header names the
machine (``nproc``, CPU model) and the load average before and after.

Targets are 127.x.y.z (x from 1, z in 1..254), generated deterministically; only loopback is ever pinged.
A raw socket sees every ICMP echo reply on the host, so other work pinging loopback at the same time may
show up as extra replies in the limit column (it counts by identifier only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.spread import spread
from collectors.icmp import Pinger, internet_checksum

TOOLS = ("slawatch", "fping", "limit")


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
    return Run("slawatch", len(targets), wall, cpu, replies)


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
    return Run("fping", n, wall, cpu, replies)


def run_limit(targets: list[str], timeout: float) -> Run:
    """The single-socket limit: one raw socket, sendto per packet, recv_into, nothing else (see docstring)."""
    ident = os.getpid() & 0xFFFF
    payload = os.urandom(8) + bytes(8)  # the same 16-byte payload size as the pinger's default
    header = struct.Struct("!BBHHH")
    partial = internet_checksum(header.pack(8, 0, 0, ident, 0) + payload) ^ 0xFFFF  # sum without the seq
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setsockopt(255, 1, struct.pack("=I", ~1 & 0xFFFFFFFF))  # ICMP_FILTER: echo replies only
        sock.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE 4 MiB, as the pinger
        sock.setblocking(False)
        dests = [(a, 0) for a in targets]
        buf = bytearray(4096)
        recv_into, sendto, pack = sock.recv_into, sock.sendto, header.pack
        got = 0

        def drain() -> int:
            n = 0
            while True:
                try:
                    recv_into(buf)
                except BlockingIOError:
                    return n
                if buf[24] << 8 | buf[25] == ident:
                    n += 1

        cpu0, t0 = time.process_time(), time.perf_counter()
        for i, dest in enumerate(dests):
            seq = i & 0xFFFF
            total = partial + seq
            total = (total & 0xFFFF) + (total >> 16)
            sendto(pack(8, 0, ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF, ident, seq) + payload, dest)
            if i & 63 == 63:
                got += drain()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        deadline = time.perf_counter() + timeout
        while got < len(targets) and time.perf_counter() < deadline:
            if poller.poll(max(1, int((deadline - time.perf_counter()) * 1000))):
                got += drain()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        sock.close()
    return Run("limit", len(targets), wall, cpu, got)


def machine() -> str:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare slawatch's bulk pinger with fping and with the single-socket limit on N live "
        "loopback targets (127.x.y.z), interleaved and repeated; prints median and min-max. Needs root.",
    )
    parser.add_argument(
        "--targets",
        type=int,
        action="append",
        metavar="N",
        help="number of loopback targets; repeat the option for several sizes (default: 10000 and 100000)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="repeats per size, tools interleaved (5)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1e9,
        help="slawatch send rate, packets/s (default 1e9: unpaced, CPU-bound like fping -i0)",
    )
    parser.add_argument("--burst", type=int, default=256, help="slawatch packets sent between reads (256)")
    parser.add_argument("--timeout", type=float, default=1.0, help="per-packet timeout, s (1.0), all tools")
    parser.add_argument("--fping", default=shutil.which("fping"), help="fping binary (default: from PATH)")
    args = parser.parse_args(argv)
    sizes = args.targets or [10_000, 100_000]
    if os.geteuid() != 0:
        print("warning: not root; raw sockets and fping -i0 may be refused", file=sys.stderr)
    if not args.fping:
        parser.error("fping not found: apt-get install fping, or pass --fping PATH")

    fping_version = subprocess.run([args.fping, "-v"], capture_output=True, text=True).stdout.strip()
    load_before = loadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    runs: dict[tuple[int, str], list[Run]] = {}
    for n in sizes:
        targets = loopback_targets(n)
        target_files: list[str] = []
        for start in range(0, n, FPING_CHUNK):
            with tempfile.NamedTemporaryFile("w", prefix="bench_icmp_", suffix=".txt", delete=False) as f:
                f.write("\n".join(targets[start : start + FPING_CHUNK]) + "\n")
                target_files.append(f.name)
        try:
            for _ in range(args.repeat):
                runs.setdefault((n, "slawatch"), []).append(
                    asyncio.run(run_slawatch(targets, args.rate, args.burst, args.timeout))
                )
                runs.setdefault((n, "fping"), []).append(run_fping(args.fping, target_files, n, args.timeout))
                runs.setdefault((n, "limit"), []).append(run_limit(targets, args.timeout))
        finally:
            for name in target_files:
                os.unlink(name)

    print(f"# {started}; {machine()}; python {sys.version.split()[0]}; {fping_version}")
    print(
        f"# load average before {load_before}, after {loadavg()}; {args.repeat} repeats interleaved; "
        f"slawatch rate={args.rate:g}/s burst={args.burst}; median (min-max)"
    )
    header = f"{'targets':>8}  {'tool':<22} {'pings/s':>24} {'CPU µs/ping':>20} {'replies':>8}"
    print(header)
    print("-" * len(header))
    for n in sizes:
        fping_label = "fping -c1 -q -i0" + (f" x{-(-n // FPING_CHUNK)}" if n > FPING_CHUNK else "")
        labels = {"slawatch": "slawatch Pinger (raw)", "fping": fping_label, "limit": "limit (1 raw socket)"}
        for tool in TOOLS:
            rs = runs[n, tool]
            print(
                f"{n:>8}  {labels[tool]:<22} {spread([r.pings_per_s for r in rs], ',.0f'):>24} "
                f"{spread([r.cpu_us_per_ping for r in rs], '.1f'):>20} {min(r.replies for r in rs):>8}"
            )
        ours = runs[n, "slawatch"]
        for ref in ("fping", "limit"):
            theirs = runs[n, ref]
            speed = [a.pings_per_s / b.pings_per_s for a, b in zip(ours, theirs, strict=True)]
            cpu = [a.cpu_us_per_ping / b.cpu_us_per_ping for a, b in zip(ours, theirs, strict=True)]
            med_speed = statistics.median(r.pings_per_s for r in ours) / statistics.median(
                r.pings_per_s for r in theirs
            )
            med_cpu = statistics.median(r.cpu_us_per_ping for r in ours) / statistics.median(
                r.cpu_us_per_ping for r in theirs
            )
            print(
                f"{n:>8}  {'slawatch / ' + ref:<22} {f'{med_speed:.2f}x ({min(speed):.2f}-{max(speed):.2f})':>24} "
                f"{f'{med_cpu:.2f}x ({min(cpu):.2f}-{max(cpu):.2f})':>20}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
