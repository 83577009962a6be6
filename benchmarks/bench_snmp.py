"""Benchmark: slawatch's SNMP poller beside net-snmp ``snmpget``, pysnmp's hlapi, puresnmp and ezsnmp, against
real net-snmp ``snmpd`` agents on loopback, v2c and v3 authPriv, interleaved and repeated, with the spread.

Run::

    .venv/bin/python benchmarks/bench_snmp.py                       # v2c and v3, 20 agents, 5 repeats
    .venv/bin/python benchmarks/bench_snmp.py --versions 2c --oids system --requests 20000

What is measured, for each SNMP version (``--versions``), ``--repeat`` times, every client one after the
other in each repeat (so load from other work on the machine hits them alike), all against the same
``--agents`` agents (``collectors.lab.agents.AgentFleet``: one real ``snmpd`` per simulated CPE on
127.20.0.1, 127.20.0.2, ..., v2c and v3 USM SHA/AES enabled together):

* **slawatch**: ``SnmpPoller.poll(node)`` -- ONE GET of sysUpTime.0, ifOperStatus.N, ifHCInOctets.N,
  ifHCOutOctets.N, ifInErrors.N, decoded and checked -- ``--requests`` times round robin over the agents,
  all launched at once; the poller bounds them (one in flight per device, ``--max-in-flight`` overall).
  v2c runs on the poller's own UDP transport and BER codec; v3 on pysnmp's v3arch engine with the targets
  registered up front (``prepare()``). With ``--oids system``, ``SnmpPoller.get(node, oids)`` of five
  scalars that snmpd answers itself (see below), same transport and codec.
* **pysnmp**: pysnmp 7 hlapi as documented -- one shared ``SnmpEngine``, ``await get_cmd(...)`` per request
  with ``UdpTransportTarget.create`` targets made once, ``lookupMib=False`` -- ``--max-in-flight`` at a time.
* **puresnmp**: puresnmp 2 ``Client.multiget`` (one ``Client`` per agent), ``--max-in-flight`` at a time;
  v3 through ``puresnmp-crypto``. Skipped if not installed.
* **ezsnmp**: ezsnmp 2.5 (net-snmp's C library through SWIG, synchronous) -- one ``Session`` per agent,
  ``session.get(oids)`` in a loop in this thread. Skipped if not installed.
* **snmpget**: net-snmp ``snmpget -On``, one process per request (process start included: that is how it
  is used from scripts), ``--snmpget-parallel`` at a time, ``--snmpget-requests`` requests.

GETs per repeat: ``--requests`` for slawatch, ``--reference-requests`` for pysnmp, puresnmp and ezsnmp (they
are slower), ``--snmpget-requests`` for snmpget. Every client sends the same OIDs and every answer is
checked (five values, no error); failures are counted.
Figures: GETs/s = requests / wall time; client CPU µs per GET (``time.process_time()`` of this process, or
``getrusage(RUSAGE_CHILDREN)`` for snmpget; the agents are other processes and are not in it); agent CPU µs
per GET (every ``snmpd`` and its helper processes, from ``/proc``). Each is printed as median (min-max).

The agents serve the interface tables through a small Python ``pass_persist`` helper (so tests can set
counters and link state), which costs the agent ~0.3-0.5 ms of CPU per poll: on 2 cores that, not the client,
caps GETs/s. ``--oids system`` GETs sysUpTime.0, sysServices.0, snmpInPkts.0, snmpInGetRequests.0 and
snmpEngineBoots.0 instead -- values snmpd answers itself in ~30 µs -- to measure the clients at their own
limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.spread import spread
from collectors.lab.agents import AgentFleet, SnmpdAgent
from collectors.snmp import SnmpPoller, SnmpProfile
from monitor.inventory import Node, NodeKind, SnmpSettings

COMMUNITY = "bench-community"
V3_USER = "bench"
AUTH_KEY = "bench-auth-key"
PRIV_KEY = "bench-priv-key"
UPLINK = 3
POLL_OIDS = (
    "1.3.6.1.2.1.1.3.0",
    f"1.3.6.1.2.1.2.2.1.8.{UPLINK}",
    f"1.3.6.1.2.1.31.1.1.1.6.{UPLINK}",
    f"1.3.6.1.2.1.31.1.1.1.10.{UPLINK}",
    f"1.3.6.1.2.1.2.2.1.14.{UPLINK}",
)
SYSTEM_OIDS = (
    "1.3.6.1.2.1.1.3.0",  # sysUpTime
    "1.3.6.1.2.1.1.7.0",  # sysServices
    "1.3.6.1.2.1.11.1.0",  # snmpInPkts
    "1.3.6.1.2.1.11.15.0",  # snmpInGetRequests
    "1.3.6.1.6.3.10.2.1.2.0",  # snmpEngineBoots
)
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIENTS = ("slawatch", "pysnmp", "puresnmp", "ezsnmp", "snmpget")


@dataclass(frozen=True)
class Run:
    client: str
    requests: int
    failures: int
    wall_s: float
    cpu_s: float
    agent_cpu_s: float

    @property
    def per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.requests * 1e6

    @property
    def agent_cpu_us(self) -> float:
        return self.agent_cpu_s / self.requests * 1e6


def agents_cpu_s(fleet: AgentFleet) -> float:
    """CPU seconds (user + system) used so far by every snmpd and its direct children (helpers)."""
    pids = {a.pid for a in fleet if a.pid is not None}
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid in pids or ppid in pids:
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / CLK_TCK


def node_for(agent: SnmpdAgent, n: int, version: str) -> Node:
    if version == "3":
        snmp = SnmpSettings(
            version="3",
            user=V3_USER,
            auth_protocol="SHA",
            auth_key=AUTH_KEY,
            priv_protocol="AES",
            priv_key=PRIV_KEY,
            port=agent.port,
            uplink_if=UPLINK,
        )
    else:
        snmp = SnmpSettings(version="2c", community=COMMUNITY, port=agent.port, uplink_if=UPLINK)
    return Node(f"CPE-{n:04d}", NodeKind.CPE, address=agent.address, bandwidth_mbps=20, snmp=snmp)


class Timer:
    """Wall, process CPU and agent CPU between ``start()`` and ``stop()``."""

    def __init__(self, fleet: AgentFleet) -> None:
        self.fleet = fleet

    def start(self) -> None:
        self.agent0 = agents_cpu_s(self.fleet)
        self.cpu0, self.t0 = time.process_time(), time.perf_counter()

    def stop(self, client: str, requests: int, failures: int) -> Run:
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.cpu0
        return Run(client, requests, failures, wall, cpu, agents_cpu_s(self.fleet) - self.agent0)


async def bench_slawatch(fleet: AgentFleet, args: argparse.Namespace, version: str) -> Run:
    nodes = [node_for(a, n, version) for n, a in enumerate(fleet, 1)]
    profile = SnmpProfile(timeout_s=args.timeout, retries=1)
    timer = Timer(fleet)
    async with SnmpPoller(profile, max_in_flight=args.max_in_flight) as poller:
        await poller.prepare(nodes)
        batch = [nodes[i % len(nodes)] for i in range(args.requests)]
        if args.oids == "poll":
            for node in nodes:  # warm-up: v3 engine discovery
                await poller.poll(node)
            timer.start()
            polled = await asyncio.gather(*(poller.poll(n) for n in batch), return_exceptions=True)
            failures = sum(isinstance(r, BaseException) for r in polled)
        else:
            oids = [tuple(int(x) for x in o.split(".")) for o in SYSTEM_OIDS]

            async def one(node: Node) -> bool:
                vbs = await poller.get(node, oids)
                return len(vbs) == len(oids) and all(isinstance(value, int) for _, _, value in vbs)

            await asyncio.gather(*(one(n) for n in nodes))
            timer.start()
            got = await asyncio.gather(*(one(n) for n in batch), return_exceptions=True)
            failures = sum(r is not True for r in got)
        return timer.stop("slawatch", args.requests, failures)


async def bench_pysnmp(fleet: AgentFleet, args: argparse.Namespace, version: str) -> Run:
    n = args.reference_requests
    from pysnmp.hlapi.v3arch.asyncio import (  # type: ignore[import-untyped, unused-ignore]
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        UsmUserData,
        get_cmd,
    )
    from pysnmp.hlapi.v3arch.asyncio import auth as usm  # type: ignore[import-untyped, unused-ignore]

    engine, context = SnmpEngine(), ContextData()
    if version == "3":
        creds = UsmUserData(
            V3_USER, AUTH_KEY, PRIV_KEY, authProtocol=usm.USM_AUTH_HMAC96_SHA, privProtocol=usm.USM_PRIV_CFB128_AES
        )
    else:
        creds = CommunityData(COMMUNITY)
    targets = [
        await UdpTransportTarget.create((a.address, a.port), timeout=args.timeout, retries=1) for a in fleet
    ]
    request = [ObjectType(ObjectIdentity(o)) for o in args.oid_list]
    for target in targets:
        await get_cmd(engine, creds, target, context, *request, lookupMib=False)
    bound = asyncio.Semaphore(min(len(targets), args.max_in_flight))
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with bound:
            err, status, _, vbs = await get_cmd(
                engine, creds, targets[i % len(targets)], context, *request, lookupMib=False
            )
        failures += bool(err or status or len(vbs) != len(request))

    timer = Timer(fleet)
    timer.start()
    await asyncio.gather(*(one(i) for i in range(n)))
    run = timer.stop("pysnmp", n, failures)
    engine.close_dispatcher()
    return run


async def bench_puresnmp(fleet: AgentFleet, args: argparse.Namespace, version: str) -> Run:
    n = args.reference_requests
    from puresnmp import V2C, V3, Auth, Client, ObjectIdentifier, Priv  # type: ignore[import-untyped, unused-ignore]

    creds: Any
    if version == "3":
        creds = V3(V3_USER, auth=Auth(AUTH_KEY.encode(), "sha1"), priv=Priv(PRIV_KEY.encode(), "aes"))
    else:
        creds = V2C(COMMUNITY)
    clients = [Client(a.address, creds, port=a.port) for a in fleet]
    oids = [ObjectIdentifier(o) for o in args.oid_list]
    for client in clients:
        await client.multiget(oids)
    bound = asyncio.Semaphore(min(len(clients), args.max_in_flight))
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        try:
            async with bound:
                values = await clients[i % len(clients)].multiget(oids)
            failures += len(values) != len(oids)
        except Exception:
            failures += 1

    timer = Timer(fleet)
    timer.start()
    await asyncio.gather(*(one(i) for i in range(n)))
    return timer.stop("puresnmp", n, failures)


def bench_ezsnmp(fleet: AgentFleet, args: argparse.Namespace, version: str) -> Run:
    n = args.reference_requests
    from ezsnmp import Session  # type: ignore[import-untyped, unused-ignore]

    common: dict[str, Any] = {"timeout": str(args.timeout), "retries": 1, "print_oids_numerically": True}
    if version == "3":
        common.update(
            version=3,
            security_level="authPriv",
            security_username=V3_USER,
            auth_protocol="SHA",
            auth_passphrase=AUTH_KEY,
            privacy_protocol="AES",
            privacy_passphrase=PRIV_KEY,
        )
    else:
        common.update(version=2, community=COMMUNITY)
    sessions = [Session(hostname=a.address, port_number=a.port, **common) for a in fleet]
    oids = list(args.oid_list)
    for session in sessions:
        session.get(oids)
    failures = 0
    timer = Timer(fleet)
    timer.start()
    for i in range(n):
        try:
            failures += len(sessions[i % len(sessions)].get(oids)) != len(oids)
        except Exception:
            failures += 1
    return timer.stop("ezsnmp", n, failures)


def bench_snmpget(fleet: AgentFleet, args: argparse.Namespace, version: str, home: Path) -> Run:
    if version == "3":
        auth = ["-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA", "-A", AUTH_KEY, "-x", "AES", "-X", PRIV_KEY]
    else:
        auth = ["-v2c", "-c", COMMUNITY]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MIBS": "", "SNMP_PERSISTENT_DIR": str(home)}
    cmds = [
        [args.snmpget, *auth, "-t", str(args.timeout), "-r", "1", "-On", f"{a.address}:{a.port}", *args.oid_list]
        for a in (fleet[i % len(fleet)] for i in range(args.snmpget_requests))
    ]
    subprocess.run(cmds[0], env=env, capture_output=True, check=False)  # warm-up (page cache, v3 files)
    failures = 0
    running: list[subprocess.Popen[bytes]] = []

    def reap(proc: subprocess.Popen[bytes]) -> None:
        nonlocal failures
        out, _ = proc.communicate()
        if proc.returncode != 0 or out.count(b"\n") != len(args.oid_list) or b"No Such" in out:
            failures += 1

    agent0 = agents_cpu_s(fleet)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for cmd in cmds:
        if len(running) >= args.snmpget_parallel:
            reap(running.pop(0))
        running.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        )
    for proc in running:
        reap(proc)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return Run("snmpget", len(cmds), failures, wall, cpu, agents_cpu_s(fleet) - agent0)


def installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def machine() -> str:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def versions_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for dist in ("pysnmp", "pyasn1", "puresnmp", "ezsnmp"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} -")
    snmpd = subprocess.run(["snmpd", "-v"], capture_output=True, text=True, check=False).stdout
    net_snmp = next((line.split(":", 1)[1].strip() for line in snmpd.splitlines() if "version" in line), "?")
    return ", ".join(parts) + f", net-snmp {net_snmp}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare slawatch's SNMP poller with snmpget, pysnmp, puresnmp and ezsnmp on local snmpd "
        "agents (loopback only), interleaved and repeated: GETs/s, client and agent CPU µs per GET.",
    )
    parser.add_argument("--agents", type=int, default=20, help="number of snmpd agents (default 20)")
    parser.add_argument("--requests", type=int, default=5000, help="GETs by slawatch per repeat (5000)")
    parser.add_argument(
        "--reference-requests", type=int, default=1000, help="GETs by pysnmp, puresnmp, ezsnmp per repeat (1000)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repeats, clients interleaved (5)")
    parser.add_argument("--versions", default="2c,3", help="SNMP versions to run, comma-separated (2c,3)")
    parser.add_argument("--oids", choices=("poll", "system"), default="poll", help="OID set (see docstring)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help=f"clients to run ({','.join(CLIENTS)})")
    parser.add_argument("--snmpget-requests", type=int, default=300, help="GETs with snmpget per repeat (300)")
    parser.add_argument("--snmpget-parallel", type=int, default=4, help="snmpget processes at a time (4)")
    parser.add_argument("--max-in-flight", type=int, default=100, help="in-flight bound, async clients (100)")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-try timeout, all clients (2)")
    parser.add_argument("--port", type=int, default=16100, help="agents' UDP port (default 16100)")
    parser.add_argument("--first-address", default="127.20.0.1", help="first agent address (loopback)")
    parser.add_argument("--snmpget", default="snmpget", help="path of net-snmp's snmpget")
    args = parser.parse_args(argv)
    # puresnmp-crypto's AES uses cryptography's deprecated CFB import: a warning per request, not our concern
    warnings.filterwarnings("ignore", message="CFB has been moved")
    args.oid_list = POLL_OIDS if args.oids == "poll" else SYSTEM_OIDS
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    clients = [c for c in args.clients.split(",") if c]
    skipped = [c for c in ("puresnmp", "ezsnmp") if c in clients and not installed(c)]
    clients = [c for c in clients if c not in skipped]

    agent_kwargs = {"community": COMMUNITY, "v3_user": V3_USER, "v3_auth_key": AUTH_KEY, "v3_priv_key": PRIV_KEY}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    runs: dict[tuple[str, str], list[Run]] = {}
    with (
        AgentFleet(args.agents, args.first_address, args.port, agent_kwargs) as fleet,
        tempfile.TemporaryDirectory(prefix="bench-snmpget-") as home,
    ):
        benches: dict[str, Callable[[str], Run]] = {
            "slawatch": lambda v: asyncio.run(bench_slawatch(fleet, args, v)),
            "pysnmp": lambda v: asyncio.run(bench_pysnmp(fleet, args, v)),
            "puresnmp": lambda v: asyncio.run(bench_puresnmp(fleet, args, v)),
            "ezsnmp": lambda v: bench_ezsnmp(fleet, args, v),
            "snmpget": lambda v: bench_snmpget(fleet, args, v, Path(home)),
        }
        for _ in range(args.repeat):
            for version in versions:
                for client in clients:
                    runs.setdefault((version, client), []).append(benches[client](version))
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(f"# {started}; {machine()}; python {sys.version.split()[0]}; {versions_line()}")
    print(
        f"# {args.agents} snmpd agents (127.20.0.x:{args.port}), OIDs: {args.oids}; {args.repeat} repeats, "
        f"clients interleaved; GETs per repeat: slawatch {args.requests}, pysnmp/puresnmp/ezsnmp "
        f"{args.reference_requests}, snmpget {args.snmpget_requests}; "
        f"load average before {load_before}, after {load_after}; median (min-max)"
        + (f"; not installed: {', '.join(skipped)}" if skipped else "")
    )
    head = f"{'version':<8}{'client':<10}{'GETs/s':>22}{'client CPU µs/GET':>24}{'agent CPU µs/GET':>22}{'fail':>6}"
    print(head)
    print("-" * len(head))
    failed = False
    for version in versions:
        for client in clients:
            rs = runs[version, client]
            fails = sum(r.failures for r in rs)
            failed |= fails > 0
            print(
                f"{'v' + version:<8}{client:<10}{spread([r.per_s for r in rs], ',.0f'):>22}"
                f"{spread([r.cpu_us for r in rs], ',.0f'):>24}{spread([r.agent_cpu_us for r in rs], ',.0f'):>22}"
                f"{fails:>6}"
            )
        if "slawatch" in clients:
            ours = runs[version, "slawatch"]
            ratios = []
            for client in clients:
                if client == "slawatch":
                    continue
                theirs = runs[version, client]
                speed = statistics.median(r.per_s for r in ours) / statistics.median(r.per_s for r in theirs)
                cpu = statistics.median(r.cpu_us for r in theirs) / statistics.median(r.cpu_us for r in ours)
                ratios.append(f"{client} {speed:.1f}x GETs/s, {cpu:.1f}x less CPU/GET")
            print(f"{'v' + version:<8}slawatch vs: " + "; ".join(ratios))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
