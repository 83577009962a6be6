"""SNMP poller for CPEs: one GET per device per poll, and a pure interpretation of two successive samples.

Design
------
* **One engine.** A :class:`SnmpPoller` owns ONE pysnmp 7 ``v3arch`` asyncio ``SnmpEngine`` (one UDP socket,
  one timer), created lazily inside the running event loop and reused for every request; responses are not
  resolved against MIBs (``lookupMib=False``): the poller works on numeric OIDs only. (A new engine per
  request costs ~100x the CPU, see ``MEASURED.md``.)
* **Explicit timeouts.** Every request uses the timeout and retries of an :class:`SnmpProfile` (the
  poller's default or one passed per call); library defaults are never relied on. A guard deadline around
  each request turns a request that pysnmp never completes into :class:`ProbeTimeout` as well.
* **Bounded concurrency.** At most one request sequence per device at a time (an ``asyncio.Lock`` per node
  id: a poll, including a first discovery, never overlaps another poll of the same device) and at most
  ``max_in_flight`` requests in flight overall (an ``asyncio.Semaphore``, default 100: 1,000 in flight on
  one socket overflowed the default receive buffer).
* **One GET per poll.** ``sysUpTime.0`` and, for the uplink ifIndex N, ``ifOperStatus.N``,
  ``ifHCInOctets.N``, ``ifHCOutOctets.N`` and ``ifInErrors.N`` in a single PDU.
* **Uplink.** ``SnmpSettings.uplink_if`` when set; otherwise discovered once per device and cached: a
  bounded GETBULK over ``ifName`` (max-repetitions from the profile, at most ``max_interfaces`` rows, never a
  full walk), matched against ``uplink_patterns``; only if no ifName matches, the same over ``ifDescr``.
  Patterns are regular expressions tried in order, case-insensitively, with ``re.search``; the first
  pattern that matches any interface wins (lowest ifIndex among ties), so an explicit ``uplink`` or ``wan``
  beats a generic first-port name. :data:`DEFAULT_UPLINK_PATTERNS`: ``uplink``; ``\\bwan`` (wan, wan0,
  "WAN port"); Juniper ``ge-/xe-/et-0/0/0``; Cisco ``Gi0/0``, ``GigabitEthernet0/0[/0]``; ``eth0``,
  ``ether1`` (Linux and MikroTik first port). A discovered uplink that later answers noSuchInstance is
  forgotten, so the next poll discovers again (interfaces renumbered after a firmware upgrade).
* **Versions.** v2c (community) and v3 USM: auth ``MD5``, ``SHA`` (SHA-1), ``SHA224``, ``SHA256``,
  ``SHA384``, ``SHA512``; priv ``DES``, ``3DES``, ``AES`` (= ``AES128``), ``AES192``, ``AES256`` (the
  Blumenthal key extension, net-snmp's ``AES-192``/``AES-256``) and ``AES192C``/``AES256C`` (Reeder key
  extension, "AES-256-Cisco"); names are case-insensitive and ``-``/``_`` are ignored. pysnmp keeps one USM
  user row per user name: when devices use the SAME v3 user name with DIFFERENT keys, requests for the
  other key set wait until those in flight finish (a gate per user name), so keys are never swapped under
  a request; identical credentials (the usual case) never wait.
* **Errors at the edge.** Library results become :mod:`collectors.errors`: no response (after retries) →
  :class:`ProbeTimeout`; USM refusal (unknown user name, wrong digest, decryption error, unsupported
  security level, not in time window...) or a PDU ``authorizationError``/``noAccess`` →
  :class:`AuthFailure`; a response with ``noSuchObject``/``noSuchInstance``/``endOfMibView``, unexpected
  OIDs or types, or a PDU error status → :class:`BadData`; socket and transport errors →
  :class:`Unreachable`. A v2c agent silently drops a wrong community, so a wrong community is a
  :class:`ProbeTimeout`, indistinguishable from an agent that is down; so is a wrong v3 PRIVACY key
  (net-snmp cannot decrypt the request and drops it; ``snmpget`` times out too), while a wrong v3 auth key
  or user name is an :class:`AuthFailure`. Likewise an agent that stops
  answering while the host still answers ICMP ("SNMP unavailable") just raises :class:`ProbeTimeout` here:
  the caller, which also holds the ICMP result, decides what that means. Note: Linux does not report ICMP
  port/host unreachable errors to an unconnected UDP socket, so dead hosts are timeouts too.
* **Secrets.** Communities and keys never appear in logs, reprs or exception messages: messages are built
  from the node id, address, port and OIDs only, library messages are scrubbed of the device's secrets, and
  library exceptions are not chained (``from None``).
* **Caveats.** pysnmp's v3arch slows down when many NEW targets are first contacted one by one (a table is
  rebuilt each time one is added): call :meth:`SnmpPoller.prepare` with all nodes at start-up to register
  every target at once (measured here, 1,000 loopback agents: first polling round 13 s without it; with
  it 2.2 s of ``prepare()`` and then 1.3 s; later rounds 1.1-1.3 s either way). ``sysUpTime`` is the
  agent's uptime: restarting the agent alone reads as a reboot.
  pysnmp caches each v3 agent's engine ID for 300 s: a CPE swapped for one with a new engine ID times out
  until then (a reboot keeps the engine ID and is handled at once).

Interpretation
--------------
:func:`interpret` is pure: from the previous and current :class:`SnmpSample` of a device, the contracted
bandwidth and the elapsed time, it derives :class:`SnmpFacts` (reboot, oper status change, rates,
utilisation, error delta). See its docstring for the wrap rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import ipaddress
import logging
import math
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysnmp.error import PySnmpError  # type: ignore[import-untyped, unused-ignore]
from pysnmp.hlapi.v3arch.asyncio import (  # type: ignore[import-untyped, unused-ignore]
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as _auth  # type: ignore[import-untyped, unused-ignore]
from pysnmp.hlapi.v3arch.asyncio.lcd import (  # type: ignore[import-untyped, unused-ignore]
    CommandGeneratorLcdConfigurator,
)
from pysnmp.proto import errind, rfc1902, rfc1905  # type: ignore[import-untyped, unused-ignore]

from collectors.errors import AuthFailure, BadData, ProbeTimeout, Unreachable
from collectors.netrule import parse_networks, require_inside
from monitor.inventory import Node, SnmpSettings

__all__ = [
    "DEFAULT_UPLINK_PATTERNS",
    "SnmpFacts",
    "SnmpPoller",
    "SnmpProfile",
    "SnmpSample",
    "counter_rate_bps",
    "interpret",
    "uptime_restarted",
]

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_DESCR: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_OPER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
IF_IN_ERRORS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
IF_NAME: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IF_HC_IN_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
IF_HC_OUT_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10)

DEFAULT_UPLINK_PATTERNS: tuple[str, ...] = (
    r"uplink",
    r"\bwan",
    r"^(ge|xe|et)-0/0/0$",
    r"^(gi|gigabitethernet)0/0(/0)?$",
    r"^(eth0|ether1)$",
)

UPTIME_MODULUS = 1 << 32  # sysUpTime is TimeTicks (centiseconds), wraps after ~497 days
HC_MODULUS = 1 << 64  # ifHCInOctets / ifHCOutOctets
C32_MODULUS = 1 << 32  # ifInErrors
UPTIME_SLACK_CS = 1000  # 10 s of tolerance between sysUpTime and our clock...
UPTIME_SLACK_FRACTION = 0.05  # ...or 5 % of the elapsed time, whichever is larger
MAX_PLAUSIBLE_BPS = 1e12  # a "rate" above 1 Tbit/s is a counter discontinuity, not traffic
# pysnmp ciphers (DES, AES) come from 'cryptography'; without it every authPriv request fails.
_HAVE_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None

_AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": _auth.USM_AUTH_HMAC96_MD5,
    "SHA": _auth.USM_AUTH_HMAC96_SHA,
    "SHA1": _auth.USM_AUTH_HMAC96_SHA,
    "SHA224": _auth.USM_AUTH_HMAC128_SHA224,
    "SHA256": _auth.USM_AUTH_HMAC192_SHA256,
    "SHA384": _auth.USM_AUTH_HMAC256_SHA384,
    "SHA512": _auth.USM_AUTH_HMAC384_SHA512,
}
_PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": _auth.USM_PRIV_CBC56_DES,
    "3DES": _auth.USM_PRIV_CBC168_3DES,
    "AES": _auth.USM_PRIV_CFB128_AES,
    "AES128": _auth.USM_PRIV_CFB128_AES,
    "AES192": _auth.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": _auth.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": _auth.USM_PRIV_CFB192_AES,
    "AES256C": _auth.USM_PRIV_CFB256_AES,
}

# errorIndication classes meaning "the agent (or our USM) refused the credentials".
_AUTH_INDICATIONS: tuple[type, ...] = (
    errind.UnknownUserName,
    errind.WrongDigest,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.NotInTimeWindow,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
    errind.NoAuthentication,
    errind.NoEncryption,
    errind.UnknownCommunityName,
)
# PDU error-status values: 6 noAccess, 16 authorizationError (RFC 3416).
_AUTH_ERROR_STATUS = frozenset({6, 16})
_ERROR_STATUS_NAMES = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    16: "authorizationError",
}


# --- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnmpProfile:
    """How patiently to talk to a kind of device: per-try timeout, retries after the first try, and the
    max-repetitions of GETBULK during uplink discovery."""

    timeout_s: float = 2.0
    retries: int = 1
    max_repetitions: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"timeout_s {self.timeout_s} is not in (0, 60]")
        if not 0 <= self.retries <= 10:
            raise ValueError(f"retries {self.retries} is not in [0, 10]")
        if not 1 <= self.max_repetitions <= 100:
            raise ValueError(f"max_repetitions {self.max_repetitions} is not in [1, 100]")

    @property
    def deadline_s(self) -> float:
        """Guard around one request: every try, doubled for v3 engine discovery, plus a second."""
        return 2 * self.timeout_s * (self.retries + 1) + 1.0


@dataclass(frozen=True, slots=True)
class SnmpSample:
    """One successful poll of one device. ``at_monotonic`` is ``time.monotonic()`` when the answer came."""

    node: str
    at_monotonic: float
    sys_uptime_cs: int
    if_index: int
    oper_status: int
    in_octets: int
    out_octets: int
    in_errors: int


@dataclass(frozen=True, slots=True)
class SnmpFacts:
    """What two successive samples of a device say. ``None`` means "cannot be known from these samples"."""

    node: str
    oper_status: int
    rebooted: bool
    oper_changed: tuple[int, int] | None  # (previous, current) when ifOperStatus changed
    in_bps: float | None
    out_bps: float | None
    in_utilisation: float | None  # fraction of the contracted bandwidth, may exceed 1
    out_utilisation: float | None
    errors_delta: int | None

    @property
    def uplink_up(self) -> bool:
        return self.oper_status == 1


# --- pure interpretation --------------------------------------------------------------------------


def uptime_restarted(prev_cs: int, cur_cs: int, elapsed_s: float) -> bool:
    """Whether sysUpTime shows a restart between two samples ``elapsed_s`` apart.

    Over ``elapsed_s`` the uptime should advance by ``elapsed_s * 100`` centiseconds, modulo 2^32 (it wraps
    after ~497 days). With ``advance = (cur - prev) mod 2^32`` and a slack of max(10 s, 5 % of elapsed):

    * ``cur >= prev``: a restart iff the uptime advanced clearly LESS than the time that passed (the device
      restarted and has been up for longer than it was before);
    * ``cur < prev``: a wrap (not a restart) iff the modular advance matches the elapsed time; any other
      decrease is a restart. So a decrease from just below 2^32 to a small value consistent with the
      elapsed time is a wrap; a decrease from anywhere else is a reboot.
    """
    expected = max(0.0, elapsed_s) * 100.0
    slack = max(UPTIME_SLACK_CS, UPTIME_SLACK_FRACTION * expected)
    advance = (cur_cs - prev_cs) % UPTIME_MODULUS
    if cur_cs >= prev_cs:
        return advance + slack < expected
    return abs(advance - expected) > slack


def counter_rate_bps(prev: int, cur: int, elapsed_s: float, modulus: int = HC_MODULUS) -> float | None:
    """Bits per second between two octet-counter readings, allowing one wrap at ``modulus``.

    ``None`` when ``elapsed_s <= 0`` or when the result exceeds :data:`MAX_PLAUSIBLE_BPS`: a 64-bit counter
    that "went backwards" by more than traffic could explain was reset (a discontinuity), not wrapped.
    """
    if elapsed_s <= 0:
        return None
    bps = ((cur - prev) % modulus) * 8 / elapsed_s
    return bps if bps <= MAX_PLAUSIBLE_BPS else None


def interpret(
    prev: SnmpSample | None,
    cur: SnmpSample,
    bandwidth_mbps: int | None,
    elapsed_s: float | None = None,
) -> SnmpFacts:
    """Interpret ``cur`` against the previous sample of the same device (pure; no I/O, no clock).

    ``elapsed_s`` defaults to ``cur.at_monotonic - prev.at_monotonic``. Rules:

    * ``rebooted``: :func:`uptime_restarted` (sysUpTime decrease that is not a 2^32 wrap, or an advance
      clearly shorter than the elapsed time).
    * ``oper_changed``: ``(prev.oper_status, cur.oper_status)`` when they differ, else ``None``.
    * ``in_bps``/``out_bps``: octet deltas modulo 2^64 x 8 / elapsed; ``None`` without a previous sample,
      after a reboot (counters restarted), when the uplink ifIndex changed, when ``elapsed_s <= 0`` or when
      the delta is implausible (counter reset, see :func:`counter_rate_bps`).
    * ``in_utilisation``/``out_utilisation``: rate / (``bandwidth_mbps`` x 10^6), ``None`` without both.
    * ``errors_delta``: ifInErrors delta modulo 2^32 under the same conditions; a delta above 2^31 is taken
      as a counter reset and gives ``None``.
    """
    if prev is None:
        return SnmpFacts(cur.node, cur.oper_status, False, None, None, None, None, None, None)
    if prev.node != cur.node:
        raise ValueError(f"samples of different nodes: {prev.node!r} and {cur.node!r}")
    elapsed = cur.at_monotonic - prev.at_monotonic if elapsed_s is None else elapsed_s
    rebooted = uptime_restarted(prev.sys_uptime_cs, cur.sys_uptime_cs, elapsed)
    oper_changed = (prev.oper_status, cur.oper_status) if prev.oper_status != cur.oper_status else None
    in_bps = out_bps = None
    errors_delta: int | None = None
    if not rebooted and elapsed > 0 and prev.if_index == cur.if_index:
        in_bps = counter_rate_bps(prev.in_octets, cur.in_octets, elapsed)
        out_bps = counter_rate_bps(prev.out_octets, cur.out_octets, elapsed)
        delta = (cur.in_errors - prev.in_errors) % C32_MODULUS
        errors_delta = delta if delta <= C32_MODULUS // 2 else None
    capacity = bandwidth_mbps * 1_000_000 if bandwidth_mbps else None
    return SnmpFacts(
        node=cur.node,
        oper_status=cur.oper_status,
        rebooted=rebooted,
        oper_changed=oper_changed,
        in_bps=in_bps,
        out_bps=out_bps,
        in_utilisation=in_bps / capacity if in_bps is not None and capacity else None,
        out_utilisation=out_bps / capacity if out_bps is not None and capacity else None,
        errors_delta=errors_delta,
    )


# --- the poller -----------------------------------------------------------------------------------


def _protocol(table: dict[str, Any], name: str | None, what: str) -> Any:
    key = (name or "").upper().replace("-", "").replace("_", "")
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"unknown SNMPv3 {what} protocol {name!r} (known: {', '.join(table)})") from None


def _oid_str(oid: Oid) -> str:
    return ".".join(map(str, oid))


class _UserGate:
    """Lets requests with one credential set of a v3 user name run together, and no other set meanwhile.

    Single-threaded asyncio: the checks and counters need no lock; the condition is used only when some
    request actually has to wait (two key sets for one user name), so the usual case costs two additions.
    """

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._current: bytes | None = None
        self._inflight = 0
        self._waiting: Counter[bytes] = Counter()

    def _may_enter(self, fp: bytes) -> bool:
        if self._inflight == 0:
            return True
        return fp == self._current and not any(k != fp for k in self._waiting)

    @contextlib.asynccontextmanager
    async def hold(self, fp: bytes) -> AsyncIterator[None]:
        if not self._may_enter(fp):
            async with self._cond:
                self._waiting[fp] += 1
                try:
                    await self._cond.wait_for(lambda: self._may_enter(fp))
                finally:
                    self._waiting[fp] -= 1
                    if not self._waiting[fp]:
                        del self._waiting[fp]
        self._current = fp
        self._inflight += 1
        try:
            yield
        finally:
            self._inflight -= 1
            if self._waiting and self._inflight == 0:
                async with self._cond:
                    self._cond.notify_all()


@dataclass
class _Device:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    uplink: int | None = None  # discovered (not configured) uplink ifIndex
    uplink_key: tuple[str, int] | None = None  # (address, port) the discovery was made on


class SnmpPoller:
    """Polls CPEs over SNMP with one shared engine. Use as ``async with SnmpPoller() as poller: ...``.

    ``profile`` is the default :class:`SnmpProfile` (a per-call one overrides it); ``max_in_flight`` caps
    requests in flight over all devices; ``uplink_patterns`` are the discovery regexes (see the module
    docstring); ``max_interfaces`` bounds discovery; ``allowed_networks`` (CIDR strings), when given,
    restricts the addresses this poller may send to: any other raises ``ValueError`` before a packet is sent.
    """

    def __init__(
        self,
        profile: SnmpProfile | None = None,
        *,
        max_in_flight: int = 100,
        uplink_patterns: Sequence[str] = DEFAULT_UPLINK_PATTERNS,
        max_interfaces: int = 256,
        allowed_networks: Iterable[str] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if max_interfaces < 1:
            raise ValueError("max_interfaces must be at least 1")
        self.profile = profile or SnmpProfile()
        self.max_in_flight = max_in_flight
        self.uplink_patterns = tuple(re.compile(p, re.IGNORECASE) for p in uplink_patterns)
        self.max_interfaces = max_interfaces
        self.allowed_networks = None if allowed_networks is None else parse_networks(allowed_networks)
        self._engine: Any = None
        self._context: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._devices: dict[str, _Device] = {}
        self._targets: dict[tuple[str, int, float, int], Any] = {}
        self._auth: dict[SnmpSettings, tuple[Any, bytes | None, str | None]] = {}
        self._community_index: dict[str, str] = {}
        self._gates: dict[str, _UserGate] = {}
        self._object_types: dict[Oid, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"SnmpPoller(profile={self.profile!r}, max_in_flight={self.max_in_flight}, "
            f"devices={len(self._devices)}, open={self._engine is not None})"
        )

    async def __aenter__(self) -> SnmpPoller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the engine's socket and timer. The poller cannot be used afterwards."""
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_dispatcher()

    # --- plumbing ------------------------------------------------------------------------------------------
    def _ensure_engine(self) -> Any:
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        if self._engine is None:
            self._engine = SnmpEngine()
            self._context = ContextData()
            self._semaphore = asyncio.Semaphore(self.max_in_flight)
        return self._engine

    def _check_node(self, node: Node) -> tuple[str, SnmpSettings]:
        if node.address is None or node.snmp is None:
            raise ValueError(f"node {node.id!r} has no address or no snmp settings")
        if self.allowed_networks is not None:
            require_inside(node.address, self.allowed_networks, f"node {node.id!r}")
        return node.address, node.snmp

    async def _target(self, address: str, port: int, profile: SnmpProfile) -> Any:
        key = (address, port, profile.timeout_s, profile.retries)
        target = self._targets.get(key)
        if target is None:
            cls = Udp6TransportTarget if ipaddress.ip_address(address).version == 6 else UdpTransportTarget
            try:
                target = await cls.create((address, port), timeout=profile.timeout_s, retries=profile.retries)
            except (PySnmpError, OSError) as exc:
                raise Unreachable(
                    f"{address}:{port}: cannot make a UDP target ({type(exc).__name__})", target=address
                ) from None
            self._targets[key] = target
        return target

    def _auth_for(self, s: SnmpSettings) -> tuple[Any, bytes | None, str | None]:
        """(pysnmp auth data, credential fingerprint for the v3 gate, v3 user name)."""
        cached = self._auth.get(s)
        if cached is not None:
            return cached
        if s.version == "2c":
            index = self._community_index.setdefault(s.community, f"c{len(self._community_index) + 1}")
            result: tuple[Any, bytes | None, str | None] = (
                CommunityData(index, s.community, mpModel=1),
                None,
                None,
            )
        else:
            user = s.user or ""
            kwargs: dict[str, Any] = {}
            if s.auth_key is not None:
                kwargs["authKey"] = s.auth_key
                kwargs["authProtocol"] = _protocol(_AUTH_PROTOCOLS, s.auth_protocol, "auth")
            elif s.auth_protocol is not None:
                raise ValueError(f"SNMPv3 user {user!r}: auth_protocol without auth_key")
            if s.priv_key is not None:
                if not _HAVE_CRYPTOGRAPHY:
                    raise RuntimeError(
                        "SNMPv3 privacy (DES/AES) needs the Python package 'cryptography' (pysnmp uses it)"
                    )
                if s.auth_key is None:
                    raise ValueError(f"SNMPv3 user {user!r}: privacy needs authentication")
                kwargs["privKey"] = s.priv_key
                kwargs["privProtocol"] = _protocol(_PRIV_PROTOCOLS, s.priv_protocol, "priv")
            elif s.priv_protocol is not None:
                raise ValueError(f"SNMPv3 user {user!r}: priv_protocol without priv_key")
            digest = hashlib.sha256(
                "\0".join(
                    [user, s.auth_protocol or "", s.auth_key or "", s.priv_protocol or "", s.priv_key or ""]
                ).encode()
            ).digest()
            result = (UsmUserData(user, **kwargs), digest, user)
        self._auth[s] = result
        return result

    def _object_type(self, oid: Oid) -> Any:
        ot = self._object_types.get(oid)
        if ot is None:
            ot = self._object_types[oid] = ObjectType(ObjectIdentity(_oid_str(oid)))
        return ot

    def _scrub(self, text: str, s: SnmpSettings) -> str:
        for secret in (s.community, s.auth_key, s.priv_key):
            if secret:
                text = text.replace(secret, "<secret>")
        return text

    async def _request(
        self,
        node: Node,
        profile: SnmpProfile,
        send: Callable[[Any, Any, Any, Any], Awaitable[Any]],
    ) -> list[tuple[Oid, Any]]:
        """Run one request through the gate, the semaphore and the guard; map errors; return varbinds."""
        address, s = self._check_node(node)
        engine = self._ensure_engine()
        target = await self._target(address, s.port, profile)
        auth, fingerprint, user = self._auth_for(s)
        where = f"{node.id} ({address}:{s.port})"
        assert self._semaphore is not None
        gate: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        if user is not None and fingerprint is not None:
            gate = self._gates.setdefault(user, _UserGate()).hold(fingerprint)
        try:
            async with gate, self._semaphore:
                # The guard covers the request only, not the wait for the gate or the semaphore.
                async with asyncio.timeout(profile.deadline_s):
                    result = await send(engine, auth, target, self._context)
        except TimeoutError:
            raise ProbeTimeout(f"{where}: no SNMP answer within the guard deadline", target=address) from None
        except (PySnmpError, OSError) as exc:
            detail = self._scrub(f"{type(exc).__name__}: {exc}", s)[:200]
            raise Unreachable(f"{where}: SNMP transport error ({detail})", target=address) from None
        error_indication, error_status, error_index, var_binds = result
        if error_indication:
            name = type(error_indication).__name__
            if isinstance(error_indication, errind.RequestTimedOut):
                raise ProbeTimeout(
                    f"{where}: no SNMP answer ({profile.timeout_s} s x {profile.retries + 1} tries)",
                    target=address,
                )
            if isinstance(error_indication, _AUTH_INDICATIONS):
                raise AuthFailure(f"{where}: SNMP credentials refused ({name})", target=address)
            detail = self._scrub(str(error_indication), s)[:200]
            raise BadData(f"{where}: SNMP error {name}: {detail}", target=address)
        status = int(error_status or 0)
        if status:
            label = _ERROR_STATUS_NAMES.get(status, str(status))
            if status in _AUTH_ERROR_STATUS:
                raise AuthFailure(f"{where}: SNMP access refused ({label})", target=address)
            raise BadData(
                f"{where}: SNMP error-status {label} at index {int(error_index or 0)}", target=address
            )
        out: list[tuple[Oid, Any]] = []
        for vb in var_binds:
            oid, value = vb[0], vb[1]
            out.append((tuple(int(x) for x in oid), value))
        return out

    def _device(self, node_id: str) -> _Device:
        dev = self._devices.get(node_id)
        if dev is None:
            dev = self._devices[node_id] = _Device()
        return dev

    # --- public API ----------------------------------------------------------------------------------------
    async def prepare(self, nodes: Iterable[Node], profile: SnmpProfile | None = None) -> int:
        """Register every SNMP node's target with the engine up front; returns how many were registered.

        Not required, but with hundreds of devices it avoids pysnmp rebuilding its target table once per
        new device during the first polling round. Nodes without address or SNMP settings are skipped.
        """
        profile = profile or self.profile
        engine = self._ensure_engine()
        lcd = CommandGeneratorLcdConfigurator()
        count = 0
        for node in nodes:
            if node.address is None or node.snmp is None:
                continue
            address, s = self._check_node(node)
            target = await self._target(address, s.port, profile)
            auth, _, _ = self._auth_for(s)
            try:
                lcd.configure(engine, auth, target, b"")
            except PySnmpError as exc:
                raise Unreachable(
                    f"{node.id}: cannot register SNMP target ({type(exc).__name__})", target=address
                ) from None
            count += 1
        return count

    def forget(self, node_id: str) -> None:
        """Drop what the poller cached about a device (its discovered uplink)."""
        self._devices.pop(node_id, None)

    def cached_uplink(self, node_id: str) -> int | None:
        dev = self._devices.get(node_id)
        return dev.uplink if dev is not None else None

    async def discover_uplink(self, node: Node, profile: SnmpProfile | None = None) -> int:
        """The uplink ifIndex: configured, cached, or discovered now (ifName, then ifDescr) and cached.

        Raises :class:`BadData` when no interface matches the patterns.
        """
        profile = profile or self.profile
        dev = self._device(node.id)
        async with dev.lock:
            return await self._uplink(node, dev, profile)

    async def _uplink(self, node: Node, dev: _Device, profile: SnmpProfile) -> int:
        address, s = self._check_node(node)
        if s.uplink_if is not None:
            return s.uplink_if
        if dev.uplink is not None and dev.uplink_key == (address, s.port):
            return dev.uplink
        for column, label in ((IF_NAME, "ifName"), (IF_DESCR, "ifDescr")):
            rows = await self._bulk_column(node, profile, column)
            index = self._match(rows)
            if index is not None:
                log.info("snmp %s: uplink is ifIndex %d (by %s)", node.id, index, label)
                dev.uplink, dev.uplink_key = index, (address, s.port)
                return index
        raise BadData(
            f"{node.id}: no ifName or ifDescr matches the uplink patterns; set snmp.uplink_if",
            target=address,
        )

    def _match(self, rows: Sequence[tuple[int, str]]) -> int | None:
        for pattern in self.uplink_patterns:
            for index, text in sorted(rows):
                if pattern.search(text):
                    return index
        return None

    async def _bulk_column(self, node: Node, profile: SnmpProfile, column: Oid) -> list[tuple[int, str]]:
        """GETBULK the rows of one string column, at most ``max_interfaces`` rows, never past the column."""
        rows: list[tuple[int, str]] = []
        cursor = column
        max_rounds = math.ceil(self.max_interfaces / profile.max_repetitions) + 1
        for _ in range(max_rounds):
            start = self._object_type(cursor)

            async def send(engine: Any, auth: Any, target: Any, context: Any, start: Any = start) -> Any:
                return await bulk_cmd(
                    engine, auth, target, context, 0, profile.max_repetitions, start, lookupMib=False
                )

            var_binds = await self._request(node, profile, send)
            if not var_binds:
                return rows
            for oid, value in var_binds:
                if isinstance(value, rfc1905.EndOfMibView) or oid[: len(column)] != column:
                    return rows
                if oid <= cursor:
                    raise BadData(f"{node.id}: GETBULK answer not increasing at {_oid_str(oid)}")
                cursor = oid
                if len(oid) != len(column) + 1 or not isinstance(value, rfc1902.OctetString):
                    continue  # not a row of this column, or not a string: skip, keep walking
                rows.append((oid[-1], bytes(value.asOctets()).decode("utf-8", "replace")))
                if len(rows) >= self.max_interfaces:
                    return rows
        return rows

    async def poll(self, node: Node, profile: SnmpProfile | None = None) -> SnmpSample:
        """One GET of sysUpTime and the uplink's status and counters (discovering the uplink first if needed).

        Raises :class:`ProbeTimeout`, :class:`AuthFailure`, :class:`BadData` or :class:`Unreachable`;
        ``ValueError`` for a node without address/SNMP settings or outside ``allowed_networks``.
        """
        profile = profile or self.profile
        dev = self._device(node.id)
        async with dev.lock:
            index = await self._uplink(node, dev, profile)
            oids = (
                SYS_UPTIME,
                (*IF_OPER_STATUS, index),
                (*IF_HC_IN_OCTETS, index),
                (*IF_HC_OUT_OCTETS, index),
                (*IF_IN_ERRORS, index),
            )
            request = [self._object_type(o) for o in oids]

            async def send(engine: Any, auth: Any, target: Any, context: Any) -> Any:
                return await get_cmd(engine, auth, target, context, *request, lookupMib=False)

            var_binds = await self._request(node, profile, send)
            at = time.monotonic()
            try:
                values = self._decode(node, oids, var_binds)
            except BadData:
                if node.snmp is not None and node.snmp.uplink_if is None:
                    dev.uplink = None  # rediscover next time: the interface may have been renumbered
                raise
        uptime, oper, hc_in, hc_out, errors = values
        return SnmpSample(node.id, at, uptime, index, oper, hc_in, hc_out, errors)

    @staticmethod
    def _decode(node: Node, oids: Sequence[Oid], var_binds: Sequence[tuple[Oid, Any]]) -> list[int]:
        expected_types: tuple[tuple[str, Any], ...] = (
            ("sysUpTime", rfc1902.TimeTicks),
            ("ifOperStatus", rfc1902.Integer32),
            ("ifHCInOctets", rfc1902.Counter64),
            ("ifHCOutOctets", rfc1902.Counter64),
            ("ifInErrors", rfc1902.Counter32),
        )
        if len(var_binds) != len(oids):
            raise BadData(f"{node.id}: {len(var_binds)} values for {len(oids)} OIDs", target=node.address)
        out: list[int] = []
        for (name, typ), oid, (got_oid, value) in zip(expected_types, oids, var_binds, strict=True):
            where = f"{node.id}: {name} ({_oid_str(oid)})"
            if got_oid != oid:
                raise BadData(f"{where}: answer is for {_oid_str(got_oid)}", target=node.address)
            if isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)):
                raise BadData(f"{where}: {type(value).__name__}", target=node.address)
            if not isinstance(value, typ):
                raise BadData(
                    f"{where}: {type(value).__name__}, expected {typ.__name__}", target=node.address
                )
            out.append(int(value))
        if not 1 <= out[1] <= 7:
            raise BadData(f"{node.id}: ifOperStatus {out[1]} is not 1..7", target=node.address)
        return out
