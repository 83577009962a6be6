"""Benchmark: slawatch's SNMP poller against net-snmp's ``snmpget``, on N real ``snmpd`` agents on loopback.

FIGURES, 2026-11-25, this machine (2 cores, Debian 12, CPython 3.11.7, pysnmp 7.1.30, net-snmp 5.9.3; other
work was running on the machine: figures drift by +-20 % between runs, read them as ratios):

  $ python benchmarks/bench_snmp.py --agents 20 --requests 2000
  20 snmpd agents on udp:127.20.0.1:16100 .. udp:127.20.0.20:16100, SNMP v2c, started in 0.18 s
  client                                                 GETs  fail  wall s   GETs/s  CPU µs/GET  agent µs/GET
  ------------------------------------------------------------------------------------------------------------
  slawatch SnmpPoller (pysnmp 7 v3arch)                  2000     0    2.61      766        1033           500
  net-snmp snmpget (1 process/GET, 4 at a time)           500     0    1.78      281        3641           540
  (reference: bare pysnmp get_cmd, same bound)           2000     0    2.00     1002         890           460
  ratio slawatch / snmpget: 2.7x the GETs/s, 3.5x less client CPU per GET

  $ python benchmarks/bench_snmp.py --agents 20 --requests 2000 --version 3 --snmpget-requests 300
  20 snmpd agents on udp:127.20.0.1:16100 .. udp:127.20.0.20:16100, SNMP v3, started in 0.19 s
  client                                                 GETs  fail  wall s   GETs/s  CPU µs/GET  agent µs/GET
  ------------------------------------------------------------------------------------------------------------
  slawatch SnmpPoller (pysnmp 7 v3arch)                  2000     0    3.45      580        1581           585
  net-snmp snmpget (1 process/GET, 4 at a time)           300     0    1.51      199        8065           800
  (reference: bare pysnmp get_cmd, same bound)           2000     0    2.83      706        1399           480
  ratio slawatch / snmpget: 2.9x the GETs/s, 5.1x less client CPU per GET

Reading: one poll is one 5-varbind GET; its client cost is pyasn1 encoding/decoding inside pysnmp (the
poller adds ~5-20 % over bare ``get_cmd``: lock, semaphore, guard deadline, validation). MEASURED.md's
545 µs was a 3-varbind GET on an idle machine; here 5 varbinds (two Counter64) with 20 agents and their
``pass_persist`` helpers competing for the same 2 cores. At ~1,000 µs per GET, 593 CPEs polled once a
minute cost ~0.6 s of one core per minute.

What is measured, in one run, against the same agents (``collectors.lab.agents.AgentFleet``: one net-snmp
``snmpd`` per simulated CPE on 127.20.0.1, 127.20.0.2, ..., the uplink served by a ``pass_persist`` helper):

* slawatch: ``SnmpPoller.poll(node)`` -- ONE GET of sysUpTime.0, ifOperStatus.N, ifHCInOctets.N,
  ifHCOutOctets.N, ifInErrors.N -- ``--requests`` times, round robin over the agents, all launched at once:
  the poller itself bounds them (one in flight per device, ``--max-in-flight`` overall), so at most
  min(agents, max-in-flight) are in flight. Before timing: ``prepare()`` and one poll per device (uplink
  discovery, v3 engine discovery). GETs/s = requests / wall time; client CPU µs per GET =
  ``time.process_time()`` delta of this process / requests.
* net-snmp: ``snmpget -On`` with the same five OIDs, one process per request, ``--snmpget-parallel``
  processes at a time, ``--snmpget-requests`` requests (fewer: it is slow). CPU per GET =
  ``resource.getrusage(RUSAGE_CHILDREN)`` delta (user + system) / requests: process start included, which is
  the point of the comparison. ``MIBS`` is empty (no MIB parsing), as the poller does not resolve MIBs either.
* reference: bare pysnmp ``get_cmd`` with the same engine pattern, OIDs and in-flight bound, to show what the
  poller adds (locks, semaphore, guard deadline, validation) on top of the library.
* agents: CPU of every ``snmpd`` and its helper processes (``/proc``), per GET, in each phase: the same for
  both clients, shown so that the client figures can be read against it. On a 2-core machine the agents
  compete with the client for CPU, so GETs/s is lower than against a remote fleet; CPU per GET is not.

Every answer is checked (five values, no error); a failed request counts and is reported.
Use ``--version 3`` to run both clients with SNMPv3 authPriv (SHA/AES) instead of v2c.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.lab.agents import AgentFleet, SnmpdAgent
from collectors.snmp import SnmpPoller, SnmpProfile
from monitor.inventory import Node, NodeKind, SnmpSettings

COMMUNITY = "bench-community"
V3_USER = "bench"
AUTH_KEY = "bench-auth-key"
PRIV_KEY = "bench-priv-key"
UPLINK = 3
OIDS = (
    "1.3.6.1.2.1.1.3.0",
    f"1.3.6.1.2.1.2.2.1.8.{UPLINK}",
    f"1.3.6.1.2.1.31.1.1.1.6.{UPLINK}",
    f"1.3.6.1.2.1.31.1.1.1.10.{UPLINK}",
    f"1.3.6.1.2.1.2.2.1.14.{UPLINK}",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    tool: str
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
        )
    else:
        snmp = SnmpSettings(version="2c", community=COMMUNITY, port=agent.port)
    return Node(f"CPE-{n:04d}", NodeKind.CPE, address=agent.address, bandwidth_mbps=20, snmp=snmp)


async def bench_poller(fleet: AgentFleet, args: argparse.Namespace) -> Run:
    nodes = [node_for(a, n, args.version) for n, a in enumerate(fleet, 1)]
    profile = SnmpProfile(timeout_s=args.timeout, retries=1)
    async with SnmpPoller(profile, max_in_flight=args.max_in_flight) as poller:
        await poller.prepare(nodes)
        for node in nodes:  # warm-up: uplink discovery, v3 engine discovery, target registration
            await poller.poll(node)
        batch = [nodes[i % len(nodes)] for i in range(args.requests)]
        agent0 = agents_cpu_s(fleet)
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(poller.poll(n) for n in batch), return_exceptions=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        agent_cpu = agents_cpu_s(fleet) - agent0
    failures = sum(isinstance(r, BaseException) for r in results)
    return Run("slawatch SnmpPoller (pysnmp 7 v3arch)", args.requests, failures, wall, cpu, agent_cpu)


async def bench_bare_pysnmp(fleet: AgentFleet, args: argparse.Namespace) -> Run:
    """Reference: bare pysnmp ``get_cmd`` (one engine, same OIDs, same in-flight bound), no poller."""
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
    if args.version == "3":
        creds = UsmUserData(
            V3_USER,
            AUTH_KEY,
            PRIV_KEY,
            authProtocol=usm.USM_AUTH_HMAC96_SHA,
            privProtocol=usm.USM_PRIV_CFB128_AES,
        )
    else:
        creds = CommunityData(COMMUNITY)
    targets = [
        await UdpTransportTarget.create((a.address, a.port), timeout=args.timeout, retries=1) for a in fleet
    ]
    request = [ObjectType(ObjectIdentity(o)) for o in OIDS]
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
        failures += bool(err or status or len(vbs) != len(OIDS))

    agent0 = agents_cpu_s(fleet)
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(args.requests)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    agent_cpu = agents_cpu_s(fleet) - agent0
    engine.close_dispatcher()
    return Run("(reference: bare pysnmp get_cmd, same bound)", args.requests, failures, wall, cpu, agent_cpu)


def snmpget_cmd(agent: SnmpdAgent, args: argparse.Namespace) -> list[str]:
    if args.version == "3":
        auth = [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            V3_USER,
            "-a",
            "SHA",
            "-A",
            AUTH_KEY,
            "-x",
            "AES",
            "-X",
            PRIV_KEY,
        ]
    else:
        auth = ["-v2c", "-c", COMMUNITY]
    timeout = ["-t", str(args.timeout), "-r", "1"]
    return [args.snmpget, *auth, *timeout, "-On", f"{agent.address}:{agent.port}", *OIDS]


def bench_snmpget(fleet: AgentFleet, args: argparse.Namespace, home: Path) -> Run:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MIBS": "", "SNMP_PERSISTENT_DIR": str(home)}
    cmds = [snmpget_cmd(fleet[i % len(fleet)], args) for i in range(args.snmpget_requests)]
    subprocess.run(cmds[0], env=env, capture_output=True, check=False)  # warm-up (page cache, v3 files)
    failures = 0
    running: list[subprocess.Popen[bytes]] = []

    def reap(proc: subprocess.Popen[bytes]) -> None:
        nonlocal failures
        out, _ = proc.communicate()
        if proc.returncode != 0 or out.count(b"\n") != len(OIDS) or b"No Such" in out:
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
    agent_cpu = agents_cpu_s(fleet) - agent0
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    label = f"net-snmp snmpget (1 process/GET, {args.snmpget_parallel} at a time)"
    return Run(label, len(cmds), failures, wall, cpu, agent_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Compare slawatch's SNMP poller with net-snmp's snmpget on N local snmpd agents "
        "(loopback only): GETs/s and client CPU µs per GET, measured in the same run.",
    )
    parser.add_argument("--agents", type=int, default=20, help="number of snmpd agents (default 20)")
    parser.add_argument("--requests", type=int, default=2000, help="GETs made by the poller (default 2000)")
    parser.add_argument(
        "--snmpget-requests",
        type=int,
        default=None,
        help="GETs made with snmpget (default: min(requests, 500))",
    )
    parser.add_argument(
        "--snmpget-parallel", type=int, default=4, help="snmpget processes at a time (default 4)"
    )
    parser.add_argument("--max-in-flight", type=int, default=100, help="poller's global cap (default 100)")
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="per-try timeout, both clients (default 2)"
    )
    parser.add_argument("--version", choices=("2c", "3"), default="2c", help="SNMP version (default 2c)")
    parser.add_argument("--port", type=int, default=16100, help="agents' UDP port (default 16100)")
    parser.add_argument("--first-address", default="127.20.0.1", help="first agent address (loopback)")
    parser.add_argument("--snmpget", default="snmpget", help="path of net-snmp's snmpget")
    args = parser.parse_args()
    if args.snmpget_requests is None:
        args.snmpget_requests = min(args.requests, 500)

    agent_kwargs = {"community": COMMUNITY}
    if args.version == "3":
        agent_kwargs.update(v3_user=V3_USER, v3_auth_key=AUTH_KEY, v3_priv_key=PRIV_KEY)
    t0 = time.perf_counter()
    with AgentFleet(args.agents, args.first_address, args.port, agent_kwargs) as fleet:
        print(
            f"{len(fleet)} snmpd agents on {fleet[0].endpoint} .. {fleet[-1].endpoint}, "
            f"SNMP v{args.version}, started in {time.perf_counter() - t0:.2f} s"
        )
        poller_run = asyncio.run(bench_poller(fleet, args))
        with tempfile.TemporaryDirectory(prefix="bench-snmpget-") as home:
            snmpget_run = bench_snmpget(fleet, args, Path(home))
        bare_run = asyncio.run(bench_bare_pysnmp(fleet, args))
    runs = [poller_run, snmpget_run, bare_run]
    head = (
        f"{'client':<52} {'GETs':>6} {'fail':>5} {'wall s':>7} {'GETs/s':>8} {'CPU µs/GET':>11} "
        f"{'agent µs/GET':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        print(
            f"{r.tool:<52} {r.requests:>6} {r.failures:>5} {r.wall_s:>7.2f} {r.per_s:>8.0f} "
            f"{r.cpu_us:>11.0f} {r.agent_cpu_us:>13.0f}"
        )
    print(
        f"ratio slawatch / snmpget: {poller_run.per_s / snmpget_run.per_s:.1f}x the GETs/s, "
        f"{snmpget_run.cpu_us / poller_run.cpu_us:.1f}x less client CPU per GET"
    )
    return 1 if any(r.failures for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
