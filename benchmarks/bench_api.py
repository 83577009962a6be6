"""Benchmark: the API under ``wrk`` (Debian's package) on loopback with a province's database; prints a table.

    .venv/bin/python benchmarks/bench_api.py [--scale 33] [--database-url URL] [--seconds 20]
                                             [--connections 1 --connections 4]

The database: ``--database-url`` as it is when it already holds events (e.g. a copy prepared earlier),
otherwise (SQLite in a temporary directory by default) the sample network times ``--scale`` imported and its
month 2026-10 (``sample-events --scale``) replayed through the service. Then ``slawatch serve`` (uvicorn, the
production app) on a free 127.0.0.1 port, a viewer token, and per route:

* one request timed alone first (``cold``: the first computation of a report, a projection built),
* ``wrk --latency -t1 -c N -d S`` for each ``--connections`` N: requests/s and the latency percentiles
  (p50 / p90 / p99 / max). Plain wrk is closed-loop (no ``-R`` rate as in wrk2): N connections each send
  their next request when the previous one is answered, so requests/s is the throughput at N in flight;
  200 requests/s with p99 under 100 ms is the target for node status and the incident list.

Routes (``--route`` picks some): one node's status (``/api/v1/nodes/{id}``), the incident list
(``/api/v1/incidents``, as the API serves it today), the month's report (``/api/v1/reports/monthly/2026-10``),
``/metrics``. The server runs in its own
process; only 127.0.0.1 is used. No figure here is a test.

Node status under ``slawatch serve`` comes from the stored states. ``--live`` (root) runs ``slawatch run``
instead (live loop and API in one process, as deployed) against the lab (``slawatch lab up`` on the same
network, its own state directory and nft table, taken down at the end), ICMP every 60 s with a rate that
covers the inventory, and waits ``--warmup`` seconds before measuring, so every route is measured while the
loop polls 100,000 nodes beside it. ``--live --split`` runs the collector (``slawatch run --no-api``) and the API
(``slawatch serve``) as two processes on the same database, the layout for a province.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from monitor.assessment import Month
from monitor.events import parse_event
from monitor.policy import DEFAULT_POLICY
from monitor.sample import sample_inventory
from monitor.sample_events import month_events
from monitor.service import Service
from monitor.storage.database import Database

MONTH = "2026-10"
ROUTES = ("node", "incidents", "report", "metrics")  # --route keys, in the order they are measured


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def prepare(url: str, scale: int) -> tuple[str, str]:
    """The database ready (imported and replayed unless it holds events); a viewer token and a node id."""
    from sqlalchemy import text

    db = Database(url)
    await db.connect()
    try:
        await db.upgrade()
        async with db.engine.connect() as conn:
            events = int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())
        service = Service(db)
        if events == 0:
            inventory = sample_inventory(scale=scale)
            began = time.monotonic()
            await service.import_inventory(inventory)
            month = Month.parse(MONTH, DEFAULT_POLICY)
            raw = month_events(inventory, month.start, days=month.length_days, scale=scale)
            await service.ingest([(f"sample:{i + 1}", parse_event(e)) for i, e in enumerate(raw)], source="bench")
            print(f"prepared: {len(inventory):,} nodes, {len(raw):,} events in {time.monotonic() - began:.0f} s")
        else:
            print(f"database as given: {events:,} events")
        inventory = await service.inventory()
        node = next(n.id for n in reversed(inventory.nodes()) if n.address is not None)
        token = await service.repo.create_token(f"bench-api-{os.getpid()}-{time.time_ns()}", "viewer")
        return token, node
    finally:
        await db.close()


def get(url: str, token: str, timeout: float = 600.0) -> tuple[float, int, int]:
    """(seconds, status, bytes) of one GET."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    began = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return time.monotonic() - began, r.status, len(body)
    except urllib.error.HTTPError as exc:
        return time.monotonic() - began, exc.code, 0


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(url: str, token: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "60s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    fig: dict[str, float] = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        fig[f"p{pct}"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    fig["max"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    fig["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    fig["n"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    fig["errors"] = float(m.group(1)) if m else 0.0
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=33, help="sample network times K (default 33: a province)")
    parser.add_argument("--database-url", help="used as it is when it holds events (default: SQLite, prepared)")
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration per route and connection count")
    parser.add_argument("--connections", type=int, action="append", help="wrk connections (default 1 and 4)")
    parser.add_argument(
        "--route", action="append", choices=ROUTES, help=f"only these routes (repeat; default all: {', '.join(ROUTES)})"
    )
    parser.add_argument("--live", action="store_true", help="slawatch run (live loop + API) on the lab; root")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds after start before measuring (60 with --live, else 0)"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="with --live: the collector (slawatch run --no-api) and the API (slawatch serve) in two processes",
    )
    parser.add_argument("--snmp-limit", type=int, default=20, help="SNMP agents in the lab with --live")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install Debian's package (scripts/setup-system does)")
    connections = args.connections or [1, 4]
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/api.db"
        token, node = asyncio.run(prepare(url, args.scale))
        port = free_port()
        env = {
            **os.environ,
            "SLAWATCH_DATABASE_URL": url,
            "SLAWATCH_API_HOST": "127.0.0.1",
            "SLAWATCH_API_PORT": str(port),
            "SLAWATCH_DATA_DIR": tmp,
            "SLAWATCH_LOG_LEVEL": "WARNING",
        }
        command = "serve"
        lab_env: dict[str, str] | None = None
        if args.live:
            polled = sum(1 for n in sample_inventory(scale=args.scale).nodes() if n.address is not None)
            env["SLAWATCH_RATE_PPS"] = str(max(2000, round(1.5 * polled * 3 / 60, -2)))
            lab_env = lab_up(tmp, args.scale, args.snmp_limit)
            command = "serve" if args.split else "run"
        collector: subprocess.Popen[bytes] | None = None
        if args.live and args.split:
            with open(Path(tmp) / "collector.log", "wb") as log:
                collector = subprocess.Popen(
                    [sys.executable, "-m", "monitor.cli", "run", "--no-api"],
                    env=env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            command = "serve + run --no-api"
        with open(Path(tmp) / "serve.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "serve" if collector else command.split()[0]],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"{base}/metrics", timeout=120).read()
                    break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit((Path(tmp) / "serve.log").read_text()[-3000:]) from None
                    time.sleep(0.5)
            time.sleep(args.warmup if args.warmup is not None else 60.0 if args.live else 0.0)
            paths = {
                "node": ("node status", f"/api/v1/nodes/{node}"),
                "incidents": ("incident list", "/api/v1/incidents"),
                "report": ("month report", f"/api/v1/reports/monthly/{MONTH}"),
                "metrics": ("/metrics", "/metrics"),
            }
            routes = [paths[r] for r in ROUTES if r in (args.route or ROUTES)]
            print(
                f"bench_api {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
                f"{url.split(':', 1)[0]}, slawatch {command}, wrk {args.seconds} s per row; load {load()}"
            )
            print(
                f"{'route':14} {'cold':>8} {'bytes':>10} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
                f"{'p99 ms':>8} {'max ms':>8} {'non-2xx':>7}"
            )
            for label, path in routes:
                took, status, size = get(base + path, token)
                for c in connections:
                    f = run_wrk(base + path, token, c, args.seconds)
                    print(
                        f"{label:14} {took:7.3f}s {size:>10,} {c:>5} {f['rps']:8.1f} {f['p50']:8.1f} {f['p90']:8.1f} "
                        f"{f['p99']:8.1f} {f['max']:8.1f} {int(f['errors']):>7}"
                        + ("" if status == 200 else f" HTTP {status}"),
                        flush=True,
                    )
            print(f"load {load()}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(120)
            if collector is not None:
                os.killpg(collector.pid, signal.SIGTERM)
                collector.wait(120)
            if lab_env is not None:
                subprocess.run([sys.executable, "-m", "collectors.lab.cli", "down"], env=lab_env, check=False)


def lab_up(tmp: str, scale: int, snmp_limit: int) -> dict[str, str]:
    """The lab on the sample network at ``scale`` (its own state directory and nft table); its environment."""
    import secrets

    from monitor.inventory_io import dump_inventory

    if os.geteuid() != 0:
        raise SystemExit("--live needs root: raw ICMP sockets, nftables and snmpd for the lab")
    sample = Path(tmp) / "sample.csv"
    sample.write_text(dump_inventory(sample_inventory(scale=scale), "csv", include_secrets=True), encoding="utf-8")
    env = {
        **os.environ,
        "SLAWATCH_LAB_DIR": str(Path(tmp) / "lab"),
        "SLAWATCH_LAB_TABLE": f"slawatch_bench_{secrets.token_hex(3)}",
    }
    cmd = [
        sys.executable,
        "-m",
        "collectors.lab.cli",
        "up",
        "--inventory",
        str(sample),
        "--snmp-limit",
        str(snmp_limit),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"lab up failed: {proc.stdout}{proc.stderr}")
    return env


if __name__ == "__main__":
    main()
