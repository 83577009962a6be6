"""The lab daemon: owns the nft table, the SNMP agents and the timed faults of one running lab.

State directory (``$SLAWATCH_LAB_DIR``, default ``/run/slawatch-lab``; mode 0700, root only)::

    config.json    what ``lab up`` asked for: inventory path, nft table, sentinels, --snmp-limit
    daemon.pid     the daemon's pid (written first thing)
    ctl.sock       the control socket (UNIX stream, mode 0600)
    state.json     pids of the daemon and of every agent, rewritten on each change (for ``down``'s cleanup
                   when the daemon is gone)
    daemon.log     the daemon's log
    agents/        one directory per ``snmpd`` (see :mod:`collectors.lab.agents`)

IPC: the CLI connects to ``ctl.sock``, writes one JSON object and a newline (``{"cmd": "fail", "node":
"CPE-0001", "for_s": 600}``) and reads one JSON line back (``{"ok": true, "message": "..."}`` or ``{"ok":
false, "error": "...", "code": 2}``). The daemon is single-threaded and handles one request at a time between
its timers (flap toggles, ``--for`` expiries), so there are no locks: every change recomputes the union of
silenced addresses and, if it changed, replaces the nft set elements in one transaction.

Start: ``lab up`` runs ``python -m collectors.lab.daemon DIR``, which forks once more and exits, so the daemon
is re-parented to init (no zombie, no child of the CLI). ``down`` (or SIGTERM) stops the agents, deletes the
nft table and removes the state directory; :func:`force_cleanup` does the same from outside when the daemon
is gone or stuck (it kills only processes whose command line names this state directory).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from collectors.lab.faults import NftError, NftFaults
from collectors.lab.network import (
    DEFAULT_TABLE,
    SCENARIOS,
    LabInputError,
    addresses_behind,
    check_loopback,
    check_scenario_node,
    pick_node,
    require_loopback,
)
from monitor.inventory import Inventory, Node, NodeKind

__all__ = [
    "LabConfig",
    "LabDaemon",
    "LabNotRunning",
    "force_cleanup",
    "lab_dir",
    "ours_only",
    "pid_alive",
    "read_pid",
    "remove_state_dir",
    "request",
]

log = logging.getLogger("slawatch.lab")

CONFIG = "config.json"
PID = "daemon.pid"
SOCK = "ctl.sock"
STATE = "state.json"
LOG = "daemon.log"
AGENTS = "agents"
BLIND = "@blind"  # fault key of `blind` (never a node id: ids cannot contain '@')
_OUR_FILES = frozenset({CONFIG, PID, SOCK, STATE, STATE + ".tmp", LOG, AGENTS})
_MAX_REQUEST = 1 << 16
_AUTH = {"MD5": "MD5", "SHA": "SHA", "SHA224": "SHA-224", "SHA256": "SHA-256", "SHA384": "SHA-384",
         "SHA512": "SHA-512"}  # fmt: skip
_PRIV = {"DES": "DES", "AES": "AES", "AES128": "AES"}


def lab_dir() -> Path:
    """The lab's state directory: ``$SLAWATCH_LAB_DIR`` or ``/run/slawatch-lab``."""
    return Path(os.environ.get("SLAWATCH_LAB_DIR") or "/run/slawatch-lab").absolute()


@dataclass
class LabConfig:
    inventory: str
    table: str = DEFAULT_TABLE
    sentinels: list[str] = field(default_factory=list)
    snmp_limit: int | None = None

    def write(self, directory: Path) -> None:
        (directory / CONFIG).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, directory: Path) -> LabConfig:
        return cls(**json.loads((directory / CONFIG).read_text()))


class LabNotRunning(RuntimeError):
    """No daemon answers on the control socket."""


# ------------------------------------------------------------------------------------------- client


def request(directory: Path, payload: dict[str, Any], timeout_s: float = 120.0) -> dict[str, Any]:
    """Send one request to the daemon of ``directory`` and return its answer."""
    path = directory / SOCK
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise LabNotRunning(f"no lab daemon answers on {path}") from exc
        s.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise LabNotRunning(f"the lab daemon closed {path} without an answer")
    answer: dict[str, Any] = json.loads(data)
    return answer


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill_group(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM the process group led by ``pid`` (snmpd and its helpers; the daemon), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.02)


def force_cleanup(directory: Path, table: str = DEFAULT_TABLE) -> list[str]:
    """Remove what a lab left behind without its daemon's help; returns what was done (for the user).

    Kills the daemon and agents recorded in ``state.json``/``daemon.pid`` (only if their command line names
    ``directory``), deletes the nft table named in ``config.json`` (else ``table``) and removes ``directory``
    if it holds only lab files.
    """
    done: list[str] = []
    marker = str(directory)
    pids: list[int] = []
    try:
        state = json.loads((directory / STATE).read_text())
        pids.append(int(state.get("pid", 0)))
        pids.extend(int(a["pid"]) for a in state.get("agents", {}).values() if a.get("pid"))
    except (OSError, ValueError, TypeError, KeyError):
        pass
    pid = read_pid(directory / PID)
    if pid:
        pids.append(pid)
    for p in dict.fromkeys(p for p in pids if p > 1):
        if pid_alive(p) and marker in _cmdline(p):
            _kill_group(p)
            done.append(f"killed pid {p}")
    with contextlib.suppress(OSError, ValueError, TypeError):
        table = LabConfig.read(directory).table
    try:
        if NftFaults(table).delete():
            done.append(f"deleted nft table inet {table}")
    except NftError as exc:
        done.append(f"could not delete nft table inet {table}: {exc}")
    if remove_state_dir(directory):
        done.append(f"removed {directory}")
    return done


def ours_only(directory: Path) -> bool:
    """Whether ``directory`` holds nothing but lab files (so removing it removes nobody else's files)."""
    try:
        return all(p.name in _OUR_FILES for p in directory.iterdir())
    except FileNotFoundError:
        return True


def remove_state_dir(directory: Path) -> bool:
    """Remove the state directory if it exists and holds only lab files; True if it was removed."""
    if not directory.is_dir() or not ours_only(directory):
        return False
    shutil.rmtree(directory, ignore_errors=True)
    return not directory.exists()


# ------------------------------------------------------------------------------------------- daemon


@dataclass
class Fault:
    """One active fault. Times are ``time.monotonic()``; ``down`` is whether its addresses are silenced now."""

    key: str  # node id, or BLIND
    kind: str  # fail | flap | power | blind
    addresses: list[str]
    until: float | None = None
    period: float | None = None
    next_toggle: float | None = None
    down: bool = True
    scenario: str | None = None

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "node": "blind" if self.key == BLIND else self.key,
            "kind": self.kind,
            "scenario": self.scenario,
            "addresses": len(self.addresses),
            "down": self.down,
            "period_s": self.period,
            "heals_in_s": None if self.until is None else max(0.0, self.until - now),
        }


def _agent_interfaces(uplink: int, speed_mbps: int) -> list[Any]:
    from collectors.lab.agents import FakeInterface

    free = [i for i in range(1, 4) if i != uplink][:2]
    return sorted(
        [
            FakeInterface(free[0], "lo", "Loopback", if_type=24, speed_mbps=10),
            FakeInterface(free[1], "eth1", "LAN to site switch", speed_mbps=100),
            FakeInterface(uplink, "wan0", "Uplink to operator POP", speed_mbps=speed_mbps),
        ],
        key=lambda i: i.index,
    )


def make_agent(node: Node, state_dir: Path) -> Any:
    """An (unstarted) :class:`~collectors.lab.agents.SnmpdAgent` answering as ``node`` with its SNMP settings."""
    from collectors.lab.agents import SnmpdAgent

    s = node.snmp
    assert s is not None and node.address is not None
    kwargs: dict[str, Any] = {}
    if s.version == "2c":
        kwargs["community"] = s.community
    else:
        if not (s.auth_protocol and s.priv_protocol):
            raise LabInputError("lab agents serve SNMPv3 authPriv only (auth and priv protocols both set)")
        if s.auth_protocol not in _AUTH or s.priv_protocol not in _PRIV:
            raise LabInputError(
                f"lab agents support auth {'/'.join(_AUTH)} and priv DES/AES(128), "
                f"not {s.auth_protocol}/{s.priv_protocol}"
            )
        kwargs.update(
            community=None,
            v3_user=s.user,
            v3_auth_key=s.auth_key,
            v3_priv_key=s.priv_key,
            v3_auth_protocol=_AUTH[s.auth_protocol],
            v3_priv_protocol=_PRIV[s.priv_protocol],
        )
    uplink = s.uplink_if or 3
    return SnmpdAgent(
        node.address,
        port=s.port,
        name=node.id,
        uplink_index=uplink,
        interfaces=_agent_interfaces(uplink, node.bandwidth_mbps or 20) if uplink <= 3 else None,
        state_dir=state_dir,
        **kwargs,
    )


class LabDaemon:
    """The lab of one state directory. :meth:`run` sets up, serves requests and timers, tears down."""

    def __init__(self, directory: Path) -> None:
        from monitor.inventory_io import load_inventory

        self.dir = directory
        self.config = LabConfig.read(directory)
        path = Path(self.config.inventory)
        began = time.monotonic()
        self.inv: Inventory = load_inventory(path)
        log.info("progress: inventory loaded: %d nodes in %.1f s", len(self.inv), time.monotonic() - began)
        problems = check_loopback(self.inv, path)
        if problems:
            raise LabInputError("\n".join(problems))
        self.sentinels = [require_loopback(a, "sentinel") for a in self.config.sentinels]
        self.nft = NftFaults(self.config.table)
        self.agents: dict[str, Any] = {}
        self.agent_errors: dict[str, str] = {}
        self.faults: dict[str, Fault] = {}
        self.applied: set[str] = set()  # in nft set failed
        self.blinded: set[str] = set()  # in nft set blind
        self.stopping = False
        self.started = time.time()

    # --- lifecycle -----------------------------------------------------------------------------------------
    def setup(self) -> None:
        self.nft.create()
        snmp_nodes = [n for n in self.inv.nodes() if n.snmp is not None and n.address is not None]
        if self.config.snmp_limit is not None:
            snmp_nodes = snmp_nodes[: self.config.snmp_limit]
        agent_dir = self.dir / AGENTS
        if snmp_nodes:
            agent_dir.mkdir(mode=0o700, exist_ok=True)
        began = time.monotonic()
        for i, node in enumerate(snmp_nodes, 1):
            if i % 20 == 0 or i == len(snmp_nodes):
                log.info("progress: SNMP agents %d/%d (%.0f s)", i, len(snmp_nodes), time.monotonic() - began)
            try:
                agent = make_agent(node, agent_dir)
            except (ValueError, FileNotFoundError) as exc:
                self.agent_errors[node.id] = str(exc)
                log.warning("agent %s not created: %s", node.id, exc)
                continue
            self.agents[node.id] = agent
            try:
                agent.start()
            except RuntimeError as exc:
                self.agent_errors[node.id] = str(exc)
                log.warning("agent %s did not start: %s", node.id, exc)
            self._write_state()
        self._write_state()
        log.info("lab up: %d agents, %d agent errors", len(self.agents), len(self.agent_errors))

    def teardown(self, keep_log: bool = False) -> None:
        for agent in self.agents.values():
            with contextlib.suppress(Exception):
                agent.close()
        self.agents.clear()
        try:
            self.nft.delete()
        except NftError as exc:
            log.error("%s", exc)
        if keep_log:  # for `lab up` to show; it removes the directory
            for name in (SOCK, STATE, CONFIG):
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / name).unlink()
            shutil.rmtree(self.dir / AGENTS, ignore_errors=True)
        else:
            remove_state_dir(self.dir)

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "agents": {nid: {"pid": a.pid, "dir": str(a.dir)} for nid, a in self.agents.items()},
        }
        tmp = self.dir / (STATE + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.dir / STATE)

    def serve(self) -> None:
        path = self.dir / SOCK
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if len(str(path).encode()) > 107:
            raise LabInputError(f"state directory path too long for a UNIX socket: {path}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
            srv.bind(str(path))
            os.chmod(path, 0o600)
            srv.listen(16)
            log.info("serving on %s", path)
            while not self.stopping:
                self._tick()
                srv.settimeout(min(1.0, max(0.01, self._next_due() - time.monotonic())))
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    raise
                with conn:
                    self._handle(conn)

    # --- requests ------------------------------------------------------------------------------------------
    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)
        data = b""
        try:
            while not data.endswith(b"\n") and len(data) < _MAX_REQUEST:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            req = json.loads(data)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
        except (OSError, ValueError) as exc:
            answer: dict[str, Any] = {"ok": False, "error": f"bad request: {exc}", "code": 2}
        else:
            answer = self.dispatch(req)
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer).encode() + b"\n")

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = str(req.get("cmd"))
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(self, f"cmd_{cmd}", None)
        if handler is None:
            return {"ok": False, "error": f"unknown command {cmd!r}", "code": 2}
        try:
            answer = handler(req)
        except LabInputError as exc:
            return {"ok": False, "error": str(exc), "code": 2}
        except Exception as exc:
            log.error("%s failed:\n%s", cmd, traceback.format_exc())
            return {"ok": False, "error": f"{cmd} failed: {exc}", "code": 1}
        log.info("%s: %s", cmd, answer.get("message", "ok"))
        return {"ok": True, **answer}

    def _node(self, req: dict[str, Any]) -> str:
        node = str(req.get("node") or "")
        if node not in self.inv:
            raise LabInputError(f"node {node!r} is not in the lab inventory ({self.config.inventory})")
        return node

    def _for(self, req: dict[str, Any]) -> float | None:
        value = req.get("for_s")
        return None if value is None else time.monotonic() + float(value)

    def _agent(self, req: dict[str, Any]) -> tuple[str, Any]:
        node = self._node(req)
        agent = self.agents.get(node)
        if agent is None:
            why = self.agent_errors.get(node)
            if why:
                raise LabInputError(f"{node} has no SNMP agent: {why}")
            if self.inv[node].kind is not NodeKind.CPE or self.inv[node].snmp is None:
                raise LabInputError(f"{node} has no SNMP agent: only CPEs with SNMP settings get one")
            raise LabInputError(f"{node} has no SNMP agent: beyond --snmp-limit {self.config.snmp_limit}")
        return node, agent

    def _add(self, fault: Fault) -> None:
        old = self.faults.pop(fault.key, None)
        if old is not None and old.kind == "power" and fault.kind != "power":
            self._power_on(old.key)
        self.faults[fault.key] = fault
        if fault.kind == "power" and fault.key in self.agents:
            self.agents[fault.key].stop()
            self._write_state()
        self._apply()

    def _silence(self, node: str, kind: str, req: dict[str, Any], **extra: Any) -> dict[str, Any]:
        addresses = addresses_behind(self.inv, node)
        if not addresses:
            raise LabInputError(f"{node} has no address at or under it: nothing to silence")
        until = self._for(req)
        self._add(Fault(node, kind, addresses, until=until, **extra))
        when = "" if until is None else f" for {req['for_s']:g}s"
        count = f"{len(addresses)} address{'es' if len(addresses) != 1 else ''}"
        return {"message": f"{node}: {count} silent{when} ({kind})"}

    def cmd_status(self, req: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        agents = []
        for nid, agent in self.agents.items():
            oper: int | None = None
            with contextlib.suppress(Exception):
                oper = agent.interface().oper
            agents.append(
                {
                    "node": nid,
                    "endpoint": agent.endpoint,
                    "running": agent.running,
                    "pid": agent.pid,
                    "uplink_if": agent.uplink_index,
                    "uplink_oper": oper,
                }
            )
        return {
            "pid": os.getpid(),
            "up_since": self.started,
            "inventory": self.config.inventory,
            "nodes": len(self.inv),
            "addresses": sum(1 for n in self.inv.nodes() if n.address is not None),
            "table": self.config.table,
            "sentinels": self.sentinels,
            "agents": agents,
            "agent_errors": self.agent_errors,
            "faults": [f.describe(now) for f in self.faults.values()],
            "silenced": sorted(self.applied),
            "blinded": sorted(self.blinded),
        }

    def cmd_fail(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._silence(self._node(req), "fail", req)

    def cmd_flap(self, req: dict[str, Any]) -> dict[str, Any]:
        period = float(req["period_s"])
        return self._silence(
            self._node(req), "flap", req, period=period, next_toggle=time.monotonic() + period
        )

    def cmd_scenario(self, req: dict[str, Any]) -> dict[str, Any]:
        name = str(req.get("name"))
        scenario = SCENARIOS.get(name)
        if scenario is None:
            raise LabInputError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
        if req.get("node"):
            node = check_scenario_node(self.inv, scenario, str(req["node"]))
        else:
            node = pick_node(self.inv, scenario, [n for n, a in self.agents.items() if a.running])
        kind = "power" if scenario.power else "fail"
        answer = self._silence(node, kind, req, scenario=name)
        answer["node"] = node
        answer["message"] = f"{name}: {answer['message']}"
        return answer

    def cmd_heal(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("all"):
            keys = list(self.faults)
            for key in keys:
                self._heal(key)
            return {"message": f"healed {len(keys)} faults" if keys else "nothing was failed"}
        node = self._node(req)
        if node not in self.faults:
            return {"message": f"{node} was not failed (a fault above it may still silence it)"}
        self._heal(node)
        return {"message": f"{node} healed"}

    def _heal(self, key: str) -> None:
        fault = self.faults.pop(key)
        if fault.kind == "power":
            self._power_on(key)
        self._apply()

    def _power_on(self, node: str) -> None:
        agent = self.agents.get(node)
        if agent is not None:
            try:
                agent.reboot()
            except RuntimeError as exc:
                log.error("%s: agent did not come back: %s", node, exc)
            self._write_state()

    def cmd_blind(self, req: dict[str, Any]) -> dict[str, Any]:
        if not self.sentinels:
            raise LabInputError("the lab has no sentinel address (lab up --sentinel ADDR)")
        until = self._for(req)
        self._add(Fault(BLIND, "blind", list(self.sentinels), until=until))
        when = "" if until is None else f" for {req['for_s']:g}s"
        return {"message": f"collector blind{when}: sentinel {', '.join(self.sentinels)} does not answer pings"}

    def cmd_unblind(self, req: dict[str, Any]) -> dict[str, Any]:
        if BLIND not in self.faults:
            return {"message": "collector was not blind"}
        self._heal(BLIND)
        return {"message": f"sentinel {', '.join(self.sentinels)} answers again"}

    def cmd_ifdown(self, req: dict[str, Any]) -> dict[str, Any]:
        node, agent = self._agent(req)
        agent.ifdown()
        return {"message": f"{node}: uplink ifIndex {agent.uplink_index} oper down"}

    def cmd_ifup(self, req: dict[str, Any]) -> dict[str, Any]:
        node, agent = self._agent(req)
        agent.ifup()
        return {"message": f"{node}: uplink ifIndex {agent.uplink_index} oper up"}

    def cmd_reboot(self, req: dict[str, Any]) -> dict[str, Any]:
        node, agent = self._agent(req)
        fault = self.faults.get(node)
        if fault is not None and fault.kind == "power":
            raise LabInputError(f"{node} has no power (cpe-power); `heal {node}` brings it back rebooted")
        agent.reboot()
        self._write_state()
        return {"message": f"{node}: agent restarted (sysUpTime from 0, counters reset)"}

    def cmd_down(self, req: dict[str, Any]) -> dict[str, Any]:
        self.stopping = True
        return {"message": "lab going down"}

    # --- timers --------------------------------------------------------------------------------------------
    def _next_due(self) -> float:
        dues = [f.until for f in self.faults.values() if f.until is not None]
        dues += [f.next_toggle for f in self.faults.values() if f.next_toggle is not None]
        return min(dues, default=time.monotonic() + 1.0)

    def _tick(self) -> None:
        now = time.monotonic()
        for key, fault in list(self.faults.items()):
            if fault.until is not None and fault.until <= now:
                log.info("%s: %s ends (--for expired)", key, fault.kind)
                self._heal(key)
            elif fault.next_toggle is not None and fault.period and fault.next_toggle <= now:
                fault.down = not fault.down
                fault.next_toggle = max(fault.next_toggle + fault.period, now)
                self._apply()

    def _apply(self) -> None:
        failed = {a for f in self.faults.values() if f.down and f.key != BLIND for a in f.addresses}
        blind = set(self.faults[BLIND].addresses) if BLIND in self.faults else set()
        if (failed, blind) != (self.applied, self.blinded):
            self.nft.apply(failed, blind)
            self.applied, self.blinded = failed, blind

    def run(self) -> int:
        def stop(signum: int, frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            self.setup()
        except BaseException:
            log.error("lab setup failed:\n%s", traceback.format_exc())
            self.teardown(keep_log=True)
            return 1
        try:
            self.serve()
        except BaseException:
            log.error("lab daemon failed:\n%s", traceback.format_exc())
            self.teardown(keep_log=True)
            return 1
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.teardown()
        return 0


def main(argv: list[str]) -> int:
    """``python -m collectors.lab.daemon DIR``: fork, detach, run the lab of DIR (see the module doc)."""
    if len(argv) != 1:
        print("usage: python -m collectors.lab.daemon STATE_DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0]).absolute()
    child = os.fork()
    if child > 0:  # the CLI waits for this process: once it is gone, daemon.pid names the daemon
        (directory / PID).write_text(f"{child}\n")
        os._exit(0)
    # the daemon: re-parented to init when the process above exits
    log_fd = os.open(directory / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)
    os.chdir("/")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    try:
        daemon = LabDaemon(directory)
    except Exception:
        log.error("lab cannot start:\n%s", traceback.format_exc())
        return 1
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
