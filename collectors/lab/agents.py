"""Real net-snmp ``snmpd`` agents standing in for CPEs, for tests, the lab and benchmarks.

One :class:`SnmpdAgent` is one ``snmpd`` process bound to one loopback address (``udp:127.20.0.5:16100``),
with its own configuration, log, pid file, persistent directory and interface state, all inside one state
directory that :meth:`SnmpdAgent.close` removes. :class:`AgentFleet` runs many of them on consecutive
loopback addresses. The hard network rule: agents bind only to loopback addresses (``127.0.0.0/8`` or
``::1``); anything else is refused with ``ValueError``.

Why ``pass_persist`` for the interfaces
    net-snmp serves the host's real kernel interfaces, whose state and counters a test cannot control. The
    agent is therefore started with its own interface modules switched off (``-I -ifTable,ifXTable,
    interfaces``) and the ``interfaces`` group (``ifNumber``, ``ifTable``) and ``ifXTable`` are served by a
    small ``pass_persist`` script (stdlib only, embedded below) that reads a per-agent JSON state file:
    interface names, descriptions, oper status, counter bases and rates. Changing the state file changes what
    the agent answers at once (the script re-reads it when its inode or mtime changes), without a restart,
    so ``ifdown()`` is seen by the very next poll and counters advance continuously at a set rate.
    ``override`` directives were rejected: they are static and need a restart per change, and a restart is
    exactly what a "reboot" must look like (``sysUpTime`` back near 0), so it could not double as "set".
    Everything else (``system`` group, ``sysUpTime`` = agent uptime, USM, VACM) is real net-snmp.

Why ``SNMPCONFPATH`` and not ``-C``
    ``snmpd`` reads only our ``-c`` file and its own persistent directory (``SNMPCONFPATH`` points there),
    never ``/etc/snmp``. Keeping the persistent file (engine ID, ``engineBoots``) is what makes
    :meth:`SnmpdAgent.reboot` look like a real reboot to SNMPv3 managers: same engine ID, engineBoots + 1,
    engineTime from 0. With ``-C`` every restart got a new engine ID and pysnmp timed out for 300 s (its
    engine-ID cache lifetime).

Each simulated CPE has three interfaces by default: ``1 lo``, ``2 eth1`` ("LAN to site switch") and the
uplink ``3 wan0`` ("Uplink to operator POP"); the uplink's index, ifName and ifDescr are parameters, so tests
can make discovery find it by ifName or only by ifDescr. Counters are 64-bit (``ifHCInOctets``/
``ifHCOutOctets``; ``ifInOctets``/``ifOutOctets`` are the same values modulo 2^32); ``ifInErrors`` is 32-bit.

Operations: :meth:`~SnmpdAgent.start`, :meth:`~SnmpdAgent.stop` (the agent stops answering: polls time out),
:meth:`~SnmpdAgent.ifdown` / :meth:`~SnmpdAgent.ifup`, :meth:`~SnmpdAgent.reboot` (restart ``snmpd``, so
``sysUpTime`` restarts near 0; counters reset by default, like a real device),
:meth:`~SnmpdAgent.add_traffic`, :meth:`~SnmpdAgent.set_rate`, :meth:`~SnmpdAgent.set_counters`.
v2c (``rocommunity``, accepted from loopback sources only) and v3 USM (``createUser`` + ``rouser ... priv``,
SHA/AES by default) can be enabled together. The configuration file holds the secrets and is mode 0600 in
a 0700 directory; secrets never appear in ``repr()``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from collectors.netrule import require_loopback

__all__ = [
    "DEFAULT_PORT",
    "AgentFleet",
    "FakeInterface",
    "SnmpdAgent",
    "loopback_addresses",
    "snmpd_path",
]

DEFAULT_PORT = 16100
_READY_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0
_SECRET_RE = re.compile(r"^[\x21-\x7e]{8,64}$")  # printable, no spaces or quotes issues; net-snmp wants >= 8
_QUOTE_FREE = re.compile(r"^[^\"'\\\s]+$")

_INTERFACES_ROOT = ".1.3.6.1.2.1.2"  # ifNumber + ifTable
_IFX_ROOT = ".1.3.6.1.2.1.31.1.1"  # ifXTable


def snmpd_path() -> str | None:
    """Absolute path of ``snmpd`` (PATH, then ``/usr/sbin``), or None when net-snmp is not installed."""
    found = shutil.which("snmpd")
    if found:
        return found
    for candidate in ("/usr/sbin/snmpd", "/usr/local/sbin/snmpd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _require_loopback(address: str) -> str:
    return require_loopback(address, "agent address")


def loopback_addresses(count: int, first: str = "127.20.0.1") -> list[str]:
    """``count`` consecutive loopback addresses from ``first``, skipping .0 and .255 host parts."""
    out: list[str] = []
    ip = ipaddress.ip_address(_require_loopback(first))
    while len(out) < count:
        _require_loopback(str(ip))
        if ip.version == 6 or int(ip) & 0xFF not in (0, 255):
            out.append(str(ip))
        if ip.version == 6 and count > 1:
            raise ValueError("only one IPv6 loopback address (::1) exists")
        ip = ip + 1
    return out


@dataclass(frozen=True, slots=True)
class FakeInterface:
    """One interface as the agent serves it. Counter fields are the base values at ``since`` (Unix time)."""

    index: int
    name: str
    descr: str
    if_type: int = 6  # ethernetCsmacd; 24 softwareLoopback
    speed_mbps: int = 100
    oper: int = 1  # 1 up, 2 down
    admin: int = 1
    in_octets: int = 0
    out_octets: int = 0
    in_errors: int = 0
    in_bps: int = 0
    out_bps: int = 0
    since: float = 0.0


def _default_interfaces(
    uplink_index: int, uplink_name: str, uplink_descr: str, speed: int
) -> list[FakeInterface]:
    ifs = [
        FakeInterface(1, "lo", "Loopback", if_type=24, speed_mbps=10),
        FakeInterface(2, "eth1", "LAN to site switch", speed_mbps=100),
        FakeInterface(uplink_index, uplink_name, uplink_descr, speed_mbps=speed),
    ]
    indices = [i.index for i in ifs]
    if len(set(indices)) != len(indices):
        raise ValueError(
            f"uplink_index {uplink_index} collides with the built-in interfaces 1 (lo) and 2 (eth1)"
        )
    return sorted(ifs, key=lambda i: i.index)


# The pass_persist helper. Standalone, stdlib only, run as ``python -I -S helper.py STATE ROOT``.
_HELPER = r"""
import json, os, sys, time
STATE, ROOT = sys.argv[1], sys.argv[2]
ROOT_T = tuple(int(x) for x in ROOT.strip(".").split("."))
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
M64, M32 = 1 << 64, 1 << 32
_cache = {"key": None, "ifs": [], "oids": []}

def load():
    try:
        st = os.stat(STATE)
    except OSError:
        return
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    if key == _cache["key"]:
        return
    with open(STATE) as f:
        ifs = json.load(f)["interfaces"]
    oids = []
    if ROOT_T == IF_NUMBER[:len(ROOT_T)]:
        oids.append((IF_NUMBER, None, None))
    for col in (1, 2, 3, 4, 5, 7, 8, 9, 10, 13, 14, 16, 19, 20):
        for i in ifs:
            oids.append((IF_ENTRY + (col, i["index"]), "if", col))
    for col in (1, 6, 10, 15, 18):
        for i in ifs:
            oids.append((IFX_ENTRY + (col, i["index"]), "ifx", col))
    oids = sorted(o for o in oids if o[0][:len(ROOT_T)] == ROOT_T)
    _cache.update(key=key, ifs={i["index"]: i for i in ifs}, oids=oids, n=len(ifs))

def counter(i, name, rate, now):
    return i[name] + int(max(0.0, now - i["since"]) * i[rate] / 8) if rate else i[name]

def value(entry):
    oid, table, col = entry
    if table is None:
        return "integer", str(_cache["n"])
    i = _cache["ifs"][oid[-1]]
    now = time.time()
    hc_in = counter(i, "in_octets", "in_bps", now) % M64
    hc_out = counter(i, "out_octets", "out_bps", now) % M64
    if table == "if":
        return {
            1: ("integer", str(i["index"])),
            2: ("string", i["descr"]),
            3: ("integer", str(i["if_type"])),
            4: ("integer", "1500"),
            5: ("gauge", str(min(i["speed_mbps"] * 1000000, M32 - 1))),
            7: ("integer", str(i["admin"])),
            8: ("integer", str(i["oper"])),
            9: ("timeticks", "0"),
            10: ("counter", str(hc_in % M32)),
            13: ("counter", "0"),
            14: ("counter", str(i["in_errors"] % M32)),
            16: ("counter", str(hc_out % M32)),
            19: ("counter", "0"),
            20: ("counter", "0"),
        }[col]
    return {
        1: ("string", i["name"]),
        6: ("counter64", str(hc_in)),
        10: ("counter64", str(hc_out)),
        15: ("gauge", str(i["speed_mbps"])),
        18: ("string", i["descr"]),
    }[col]

def parse(text):
    try:
        return tuple(int(x) for x in text.strip().strip(".").split("."))
    except ValueError:
        return None

def reply(entry):
    typ, val = value(entry)
    sys.stdout.write("." + ".".join(map(str, entry[0])) + "\n" + typ + "\n" + val + "\n")

def main():
    out = sys.stdout
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        cmd = line.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = parse(sys.stdin.readline())
            load()
            found = None
            if oid is not None:
                for entry in _cache["oids"]:
                    if (cmd == "get" and entry[0] == oid) or (cmd == "getnext" and entry[0] > oid):
                        found = entry
                        break
            if found is None:
                out.write("NONE\n")
            else:
                reply(found)
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        else:
            out.write("NONE\n")
        out.flush()

main()
"""


def _proc_net_key(address: str, port: int) -> tuple[str, str]:
    ip = ipaddress.ip_address(address)
    packed = ip.packed
    words = [packed[i : i + 4][::-1].hex().upper() for i in range(0, len(packed), 4)]
    return ("/proc/net/udp" if ip.version == 4 else "/proc/net/udp6"), f"{''.join(words)}:{port:04X}"


def _udp_bound(address: str, port: int) -> bool:
    """Whether some socket is bound to (address, port), read from /proc/net/udp{,6} (no probing)."""
    path, key = _proc_net_key(address, port)
    try:
        with open(path) as f:
            return any(line.split()[1] == key for line in f.readlines()[1:])
    except OSError:
        return False


class SnmpdAgent:
    """One net-snmp ``snmpd`` impersonating one CPE on ``address:port`` (loopback only).

    ``community`` enables v2c (``None`` disables it); ``v3_user`` with ``v3_auth_key``/``v3_priv_key``
    enables v3 authPriv (``v3_auth_protocol`` one of MD5, SHA, SHA-224/256/384/512; ``v3_priv_protocol``
    DES or AES). ``state_dir`` is the parent of the agent's own directory (a new temporary one by default).
    """

    def __init__(
        self,
        address: str,
        *,
        port: int = DEFAULT_PORT,
        name: str | None = None,
        community: str | None = "public",
        v3_user: str | None = None,
        v3_auth_key: str | None = None,
        v3_priv_key: str | None = None,
        v3_auth_protocol: str = "SHA",
        v3_priv_protocol: str = "AES",
        uplink_index: int = 3,
        uplink_name: str = "wan0",
        uplink_descr: str = "Uplink to operator POP",
        uplink_speed_mbps: int = 20,
        interfaces: Sequence[FakeInterface] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        snmpd: str | None = None,
    ) -> None:
        self.address = _require_loopback(address)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not a UDP port")
        self.port = port
        self.name = name or f"cpe-{self.address.replace(':', '_')}"
        if not re.match(r"^[A-Za-z0-9._-]{1,64}$", self.name):
            raise ValueError(f"agent name {self.name!r} is not 1-64 letters, digits, '.', '_' or '-'")
        if community is not None and not _QUOTE_FREE.match(community):
            raise ValueError("community must be non-empty, without spaces, quotes or backslashes")
        if v3_user is not None:
            if not re.match(r"^[A-Za-z0-9._-]{1,32}$", v3_user):
                raise ValueError("v3_user must be 1-32 letters, digits, '.', '_' or '-'")
            for what, key in (("v3_auth_key", v3_auth_key), ("v3_priv_key", v3_priv_key)):
                if key is None or not _SECRET_RE.match(key) or not _QUOTE_FREE.match(key):
                    raise ValueError(f"{what} must be 8-64 printable characters without spaces or quotes")
            if v3_auth_protocol not in ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"):
                raise ValueError(f"v3_auth_protocol {v3_auth_protocol!r} is not one net-snmp knows")
            if v3_priv_protocol not in ("DES", "AES"):
                raise ValueError(f"v3_priv_protocol {v3_priv_protocol!r} is not DES or AES")
        if community is None and v3_user is None:
            raise ValueError("enable at least one of community (v2c) and v3_user")
        self._community = community
        self.v3_user = v3_user
        self._v3_auth_key = v3_auth_key
        self._v3_priv_key = v3_priv_key
        self.v3_auth_protocol = v3_auth_protocol
        self.v3_priv_protocol = v3_priv_protocol
        self.uplink_index = uplink_index
        ifs = (
            list(interfaces)
            if interfaces is not None
            else _default_interfaces(uplink_index, uplink_name, uplink_descr, uplink_speed_mbps)
        )
        if uplink_index not in {i.index for i in ifs}:
            raise ValueError(f"uplink_index {uplink_index} is not among the interfaces")
        self._snmpd = snmpd or snmpd_path()
        if self._snmpd is None:
            raise FileNotFoundError("snmpd not found: install net-snmp (Debian package 'snmpd')")
        parent = os.fspath(state_dir) if state_dir is not None else None
        self.dir = Path(tempfile.mkdtemp(prefix=f"snmpd-{self.name}-", dir=parent))
        self.conf_path = self.dir / "snmpd.conf"
        self.state_path = self.dir / "interfaces.json"
        self.helper_path = self.dir / "ifmib_helper.py"
        self.log_path = self.dir / "snmpd.log"
        self.pid_path = self.dir / "snmpd.pid"
        self.persist_dir = self.dir / "persist"
        self.persist_dir.mkdir(mode=0o700)
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        now = time.time()
        self._write_state([replace(i, since=now) for i in ifs])
        self.helper_path.write_text(_HELPER)
        self._write_conf()

    def __repr__(self) -> str:
        mode = "+".join(x for x in ("v2c" if self._community else "", "v3" if self.v3_user else "") if x)
        return (
            f"SnmpdAgent({self.name!r}, {self.endpoint}, {mode}, "
            f"{'running' if self.running else 'stopped'}, dir={str(self.dir)!r})"
        )

    @property
    def endpoint(self) -> str:
        """The net-snmp transport specifier the agent listens on, e.g. ``udp:127.20.0.5:16100``."""
        if ":" in self.address:
            return f"udp6:[{self.address}]:{self.port}"
        return f"udp:{self.address}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    # --- files -------------------------------------------------------------------------------------------
    def _write_conf(self) -> None:
        python = sys.executable
        lines = [
            "# generated by slawatch collectors.lab.agents: one simulated CPE",
            f"agentAddress {self.endpoint}",
            f"sysName {self.name}",
            f"sysDescr slawatch lab CPE {self.name} (net-snmp)",
            "sysLocation slawatch lab",
            "sysContact noc@example.invalid",
            "sysServices 72",
            "dontLogTCPWrappersConnects yes",
        ]
        if self._community is not None:
            if ":" in self.address:
                lines.append(f"rocommunity6 {self._community} ::1/128")
            else:
                lines.append(f"rocommunity {self._community} 127.0.0.0/8")
        if self.v3_user is not None:
            lines.append(
                f'createUser {self.v3_user} {self.v3_auth_protocol} "{self._v3_auth_key}" '
                f'{self.v3_priv_protocol} "{self._v3_priv_key}"'
            )
            lines.append(f"rouser {self.v3_user} priv")
        for root in (_INTERFACES_ROOT, _IFX_ROOT):
            lines.append(f"pass_persist {root} {python} -I -S {self.helper_path} {self.state_path} {root}")
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(x for x in lines if x) + "\n")

    def _read_state(self) -> list[FakeInterface]:
        data: dict[str, Any] = json.loads(self.state_path.read_text())
        return [FakeInterface(**i) for i in data["interfaces"]]

    def _write_state(self, ifs: Sequence[FakeInterface]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"interfaces": [asdict(i) for i in ifs]}, indent=1))
        os.replace(tmp, self.state_path)

    def _update(self, index: int | None, **changes: Any) -> FakeInterface:
        index = self.uplink_index if index is None else index
        ifs = self._read_state()
        for n, i in enumerate(ifs):
            if i.index == index:
                ifs[n] = replace(i, **changes)
                self._write_state(ifs)
                return ifs[n]
        raise KeyError(f"no interface with ifIndex {index}")

    def _fold(self, i: FakeInterface, now: float) -> dict[str, Any]:
        """Counter fields with the traffic accumulated at the current rate folded into the base."""
        dt = max(0.0, now - i.since)
        return {
            "in_octets": (i.in_octets + int(dt * i.in_bps / 8)) % (1 << 64),
            "out_octets": (i.out_octets + int(dt * i.out_bps / 8)) % (1 << 64),
            "since": now,
        }

    def interface(self, index: int | None = None) -> FakeInterface:
        """The interface's state now (uplink by default), counters folded to the present."""
        index = self.uplink_index if index is None else index
        for i in self._read_state():
            if i.index == index:
                return replace(i, **self._fold(i, time.time()))
        raise KeyError(f"no interface with ifIndex {index}")

    # --- process -----------------------------------------------------------------------------------------
    def _spawn(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name}: agent is closed")
        if self.running:
            return
        if _udp_bound(self.address, self.port):
            raise RuntimeError(f"{self.name}: {self.endpoint} is already in use by another process")
        # SNMPCONFPATH = the persistent directory only: no system-wide /etc/snmp files are read, but the
        # persistent file is (engineID, engineBoots, USM users), so a restart looks like a real reboot to
        # SNMPv3 managers: same engine ID, engineBoots + 1, engineTime from 0. (``-C`` would skip it too.)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SNMP_PERSISTENT_DIR": str(self.persist_dir),
            "SNMPCONFPATH": str(self.persist_dir),
            "MIBS": "",
            "MIBDIRS": "",
        }
        cmd = [
            str(self._snmpd),
            "-f",  # stay in the foreground: we own the process
            "-Lf",
            str(self.log_path),
            "-c",
            str(self.conf_path),
            "-p",
            str(self.pid_path),
            "-I",
            "-ifTable,ifXTable,interfaces",
        ]
        with open(self.dir / "snmpd.stderr", "ab") as err:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env, start_new_session=True
            )

    def _wait_ready(self, timeout_s: float = _READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            proc = self._proc
            if proc is None:
                raise RuntimeError(f"{self.name}: not started")
            if proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"{self.name}: snmpd exited with {proc.returncode}: {self._log_tail()}")
            if _udp_bound(self.address, self.port):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name}: snmpd did not bind {self.endpoint} in {timeout_s} s")
            time.sleep(0.01)

    def _log_tail(self) -> str:
        out = []
        for p in (self.log_path, self.dir / "snmpd.stderr"):
            with contextlib.suppress(OSError):
                out.append(p.read_text(errors="replace")[-800:])
        return " | ".join(x.strip() for x in out if x.strip())

    def start(self) -> None:
        """Start ``snmpd`` and wait until it has bound its address. Idempotent."""
        self._spawn()
        self._wait_ready()

    def stop(self) -> None:
        """Stop ``snmpd`` (SIGTERM, then SIGKILL): the agent no longer answers. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            # The whole session: snmpd and its pass_persist helpers.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def reboot(self, *, reset_counters: bool = True) -> None:
        """Restart ``snmpd`` so that ``sysUpTime`` restarts near 0; a real reboot also zeroes counters."""
        self.stop()
        if reset_counters:
            now = time.time()
            self._write_state(
                [replace(i, in_octets=0, out_octets=0, in_errors=0, since=now) for i in self._read_state()]
            )
        self.start()

    def close(self) -> None:
        """Stop the agent and remove its state directory. Idempotent."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SnmpdAgent:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- interface state -----------------------------------------------------------------------------------
    def ifdown(self, index: int | None = None) -> None:
        """Set ifOperStatus of the uplink (or ``index``) to down(2)."""
        self._update(index, oper=2)

    def ifup(self, index: int | None = None) -> None:
        """Set ifOperStatus of the uplink (or ``index``) to up(1)."""
        self._update(index, oper=1)

    def add_traffic(
        self, in_octets: int = 0, out_octets: int = 0, *, in_errors: int = 0, index: int | None = None
    ) -> None:
        """Advance the counters by these amounts at once (64-bit octets, 32-bit errors, wrapping)."""
        i = self.interface(index)
        self._update(
            i.index,
            in_octets=(i.in_octets + in_octets) % (1 << 64),
            out_octets=(i.out_octets + out_octets) % (1 << 64),
            in_errors=(i.in_errors + in_errors) % (1 << 32),
            since=i.since,
        )

    def set_rate(self, in_bps: int, out_bps: int = 0, *, index: int | None = None) -> None:
        """Make the octet counters advance steadily at these rates (bits per second) from now on."""
        if in_bps < 0 or out_bps < 0:
            raise ValueError("rates are not negative")
        i = self.interface(index)
        self._update(
            i.index,
            in_octets=i.in_octets,
            out_octets=i.out_octets,
            since=i.since,
            in_bps=in_bps,
            out_bps=out_bps,
        )

    def set_counters(
        self,
        in_octets: int | None = None,
        out_octets: int | None = None,
        in_errors: int | None = None,
        *,
        index: int | None = None,
    ) -> None:
        """Set counters to exact values now (e.g. just below 2^64 to make them wrap)."""
        i = self.interface(index)
        self._update(
            i.index,
            in_octets=i.in_octets if in_octets is None else in_octets % (1 << 64),
            out_octets=i.out_octets if out_octets is None else out_octets % (1 << 64),
            in_errors=i.in_errors if in_errors is None else in_errors % (1 << 32),
            since=i.since,
        )


@dataclass
class AgentFleet:
    """``count`` agents on consecutive loopback addresses from ``first_address``, all on ``port``.

    Extra keyword arguments go to every :class:`SnmpdAgent`. Agents live under one state directory that
    :meth:`close` removes. Agents are named ``cpe-0001``, ``cpe-0002``, ...
    """

    count: int
    first_address: str = "127.20.0.1"
    port: int = DEFAULT_PORT
    agent_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    agents: list[SnmpdAgent] = field(default_factory=list, init=False, repr=False)
    dir: Path = field(init=False)

    def __post_init__(self) -> None:
        addresses = loopback_addresses(self.count, self.first_address)
        self.dir = Path(tempfile.mkdtemp(prefix="slawatch-snmp-lab-"))
        try:
            for n, address in enumerate(addresses, 1):
                self.agents.append(
                    SnmpdAgent(
                        address, port=self.port, name=f"cpe-{n:04d}", state_dir=self.dir, **self.agent_kwargs
                    )
                )
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        """Start every agent (spawned together, then waited for)."""
        for agent in self.agents:
            agent._spawn()
        for agent in self.agents:
            agent._wait_ready()

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> AgentFleet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[SnmpdAgent]:
        return iter(self.agents)

    def __len__(self) -> int:
        return len(self.agents)

    def __getitem__(self, n: int) -> SnmpdAgent:
        return self.agents[n]
