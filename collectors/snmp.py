"""SNMP poller for CPEs: one GET per device per poll, and a pure interpretation of two successive samples.

Design
------
* **Native path, one socket.** v2c, and v3 USM with HMAC authentication (MD5, SHA-1, SHA-2) and AES-128
  privacy or none -- the usual CPE settings -- run on the poller's own transport: one non-blocking UDP socket
  per address family (``SO_RCVBUF`` raised to 4 MiB), requests matched by request-id/msgID and by the
  answering address and port, and a minimal BER codec for the few message shapes a poller needs (GET,
  GETBULK, Response, Report). SNMPv3 there: engine discovery once per agent (RFC 3414), keys localized once
  per engine and cached, HMAC over the whole message, AES-128-CFB (RFC 3826) with a per-message salt; a
  ``notInTimeWindow`` Report (agent rebooted) or ``unknownEngineID`` Report (device swapped) resynchronises
  and retries at once. Measured here (``benchmarks/README.md``): ~90-110 µs of client CPU per v2c poll and
  ~170-210 µs per v3 authPriv poll, against ~1,500 and ~2,400 µs through pysnmp, whose cost is pyasn1's
  object trees and its message-processing layers, not the network.
* **pysnmp for the rest.** DES, 3DES, AES-192/256 privacy and users without authentication go through ONE
  pysnmp 7 ``v3arch`` asyncio ``SnmpEngine`` (one UDP socket, one timer), created lazily inside the running
  event loop and reused for every request; responses are not resolved against MIBs (``lookupMib=False``).
  (A new engine per request costs ~100x the CPU, see ``MEASURED.md``.) Both paths report values with the
  same type names (pysnmp's: ``TimeTicks``, ``Counter64``, ``NoSuchInstance``...).
* **Explicit timeouts.** Every request uses the timeout and retries of an :class:`SnmpProfile` (the
  poller's default or one passed per call); library defaults are never relied on. On the native path each
  try has its own timer; on pysnmp's, a guard deadline around each request turns a request that pysnmp
  never completes into :class:`ProbeTimeout` as well.
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
  extension, "AES-256-Cisco"); names are case-insensitive and ``-``/``_`` are ignored. The native path
  carries each request's keys with it. pysnmp keeps one USM user row per user name: when devices on the
  pysnmp path use the SAME v3 user name with DIFFERENT keys, requests for the other key set wait until those
  in flight finish (a gate per user name), so keys are never swapped under a request; identical credentials
  (the usual case) never wait.
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
  every pysnmp-path target at once (measured here, 1,000 loopback agents: first polling round 13 s without
  it; with it 2.2 s of ``prepare()`` and then 1.3 s); native-path devices need no registration.
  ``sysUpTime`` is the agent's uptime: restarting the agent alone reads as a reboot. On the pysnmp path, a
  v3 agent's engine ID is cached for 300 s: a CPE swapped for one with a new engine ID times out until then
  (the native path takes the new engine ID from the agent's Report at once).

Interpretation
--------------
:func:`interpret` is pure: from the previous and current :class:`SnmpSample` of a device, the contracted
bandwidth and the elapsed time, it derives :class:`SnmpFacts` (reboot, oper status change, rates,
utilisation, error delta). See its docstring for the wrap rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import importlib.util
import ipaddress
import logging
import math
import re
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
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
_SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; not exported by the socket module
MAX_PLAUSIBLE_BPS = 1e12  # a "rate" above 1 Tbit/s is a counter discontinuity, not traffic
# pysnmp ciphers (DES, AES) come from 'cryptography'; without it every authPriv request fails.
_HAVE_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None
try:  # cryptography >= 43 keeps CFB among the "decrepit" modes; the old import warns, then goes away
    from cryptography.hazmat.decrepit.ciphers.modes import CFB as _CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB as _CFB

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



# --- SNMPv2c without pysnmp: a minimal BER codec and one UDP socket ---------------------------------
#
# pysnmp spends ~500-1,000 µs of CPU per GET, nearly all of it in pyasn1 (building and walking ASN.1 object
# trees) and in its message-processing layers; the v2c messages a poller needs are tiny and fixed in shape:
# Message ::= SEQUENCE { version INTEGER (1), community OCTET STRING, PDU }, with a GetRequest [0] or
# GetBulkRequest [5] going out and a Response [2] coming back (RFC 3416). Encoding is a few byte joins
# (the varbind list of a poll is built once); decoding walks the TLVs of one datagram. SNMPv3 (USM) stays on
# pysnmp.


class _BerError(ValueError):
    """A datagram that is not a well-formed SNMPv2c message."""


# BER tags of the values an agent may send (RFC 2578 application types, RFC 3416 exceptions) -> the names
# pysnmp gives them, so that both paths report the same type names.
_TAG_NAMES: dict[int, str] = {
    0x02: "Integer32",
    0x04: "OctetString",
    0x05: "Null",
    0x06: "ObjectIdentifier",
    0x40: "IpAddress",
    0x41: "Counter32",
    0x42: "Gauge32",
    0x43: "TimeTicks",
    0x44: "Opaque",
    0x46: "Counter64",
    0x80: "NoSuchObject",
    0x81: "NoSuchInstance",
    0x82: "EndOfMibView",
}
_UNSIGNED_TAGS = frozenset({0x41, 0x42, 0x43, 0x46})
_PDU_GET, _PDU_RESPONSE, _PDU_GETBULK, _PDU_REPORT = 0xA0, 0xA2, 0xA5, 0xA8


@dataclass(frozen=True, slots=True)
class _Value:
    """A decoded varbind value: ``type`` as pysnmp names it, ``value`` an int, bytes, an OID or None."""

    type: str
    value: Any


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def _ber(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _ber_length(len(content)) + content


def _ber_int(value: int) -> bytes:
    size = (value if value >= 0 else ~value).bit_length() // 8 + 1  # minimal two's complement (X.690 8.3.2)
    return _ber(0x02, value.to_bytes(size, "big", signed=True))


def _ber_oid(oid: Oid) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40) or min(oid) < 0:
        raise ValueError(f"not an encodable OID: {_oid_str(oid)}")
    out = bytearray()
    for sub in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [sub & 0x7F]
        sub >>= 7
        while sub:
            chunk.append(0x80 | (sub & 0x7F))
            sub >>= 7
        out += bytes(reversed(chunk))
    return _ber(0x06, bytes(out))


def _decode_oid(content: bytes) -> Oid:
    if not content or content[-1] & 0x80:
        raise _BerError("bad OID")
    subs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            subs.append(value)
            value = 0
    first = subs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *subs[1:])


def _ber_varbinds(oids: Sequence[Oid]) -> bytes:
    """The variable-bindings of a request: each OID with a NULL value."""
    return _ber(0x30, b"".join(_ber(0x30, _ber_oid(o) + b"\x05\x00") for o in oids))


def _v2c_message(community: bytes, pdu: bytes) -> bytes:
    return _ber(0x30, b"\x02\x01\x01" + _ber(0x04, community) + pdu)


def _tl(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``; never reads past ``end``."""
    if pos + 2 > end:
        raise _BerError("truncated")
    tag, n = data[pos], data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4 or pos + k > end:
            raise _BerError("bad length")
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    if pos + n > end:
        raise _BerError("truncated")
    return tag, pos, pos + n


@dataclass(frozen=True, slots=True)
class _Response:
    """A decoded Response or Report PDU. ``engine``: (engine ID, boots, time) from a v3 message's
    security parameters; ``authenticated``: the v3 message carried a valid HMAC."""

    report: bool
    request_id: int
    error_status: int
    error_index: int
    var_binds: list[tuple[Oid, _Value]]
    engine: tuple[bytes, int, int] | None = None
    authenticated: bool = False


def _int_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of the INTEGER at ``pos``."""
    tag, start, stop = _tl(data, pos, end)
    if tag != 0x02 or not start < stop <= start + 9:
        raise _BerError("bad INTEGER")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def _octets_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(content start, content end) of the OCTET STRING at ``pos``."""
    tag, start, stop = _tl(data, pos, end)
    if tag != 0x04:
        raise _BerError("bad OCTET STRING")
    return start, stop


def _parse_pdu(data: bytes, pos: int, end: int, oid_cache: dict[bytes, Oid]) -> _Response:
    """The Response [2] or Report [8] PDU at ``pos``, which must end at ``end``."""
    pdu_tag, pos, pdu_end = _tl(data, pos, end)
    if pdu_tag not in (_PDU_RESPONSE, _PDU_REPORT) or pdu_end != end:
        raise _BerError("not a Response or Report PDU")
    request_id, pos = _int_at(data, pos, end)
    error_status, pos = _int_at(data, pos, end)
    error_index, pos = _int_at(data, pos, end)
    tag, pos, list_end = _tl(data, pos, end)
    if tag != 0x30 or list_end != end:
        raise _BerError("bad varbind list")
    var_binds: list[tuple[Oid, _Value]] = []
    while pos < end:
        tag, vpos, vend = _tl(data, pos, end)
        if tag != 0x30:
            raise _BerError("bad varbind")
        tag, start, stop = _tl(data, vpos, vend)
        if tag != 0x06:
            raise _BerError("bad varbind name")
        raw_oid = data[start:stop]
        oid = oid_cache.get(raw_oid)
        if oid is None:
            oid = _decode_oid(raw_oid)
            if len(oid_cache) < 10_000:
                oid_cache[raw_oid] = oid
        tag, start, stop = _tl(data, stop, vend)
        if stop != vend:
            raise _BerError("bad varbind value")
        content = data[start:stop]
        name = _TAG_NAMES.get(tag)
        if name is None:
            raise _BerError(f"unknown value tag 0x{tag:02x}")
        value: Any
        if tag == 0x02:
            value = int.from_bytes(content, "big", signed=True)
        elif tag in _UNSIGNED_TAGS:
            value = int.from_bytes(content, "big")
        elif tag == 0x06:
            value = _decode_oid(content)
        elif tag >= 0x80 or tag == 0x05:
            value = None
        else:
            value = content
        var_binds.append((oid, _Value(name, value)))
        pos = vend
    return _Response(pdu_tag == _PDU_REPORT, request_id, error_status, error_index, var_binds)


def _message_id(data: bytes) -> int:
    """The id a response is matched by: the request-id (v2c) or the msgID (v3)."""
    size = len(data)
    tag, pos, end = _tl(data, 0, size)
    if tag != 0x30 or end != size:
        raise _BerError("not a SEQUENCE")
    version, pos = _int_at(data, pos, end)
    if version == 1:
        _, pos = _octets_at(data, pos, end)
        _, pos, _ = _tl(data, pos, end)  # into the PDU
        return _int_at(data, pos, end)[0]
    if version == 3:
        tag, pos, _ = _tl(data, pos, end)  # into msgGlobalData
        if tag != 0x30:
            raise _BerError("bad msgGlobalData")
        return _int_at(data, pos, end)[0]
    raise _BerError(f"SNMP version {version}")


def _parse_v2c(data: bytes, community: bytes, oid_cache: dict[bytes, Oid]) -> _Response:
    size = len(data)
    _, pos, end = _tl(data, 0, size)
    _, pos = _int_at(data, pos, end)
    start, pos = _octets_at(data, pos, end)
    if data[start:pos] != community:
        raise _BerError("another community")
    return _parse_pdu(data, pos, end, oid_cache)


# --- SNMPv3 USM (RFC 3414) with HMAC-MD5/SHA-1 (RFC 3414), HMAC-SHA-2 (RFC 7860) and AES-128-CFB (RFC 3826)
# on the same transport and codec. Other privacy protocols (DES, 3DES, AES-192/256) stay on pysnmp.

_USM_AUTH: dict[str, tuple[str, int]] = {  # protocol -> (hashlib name, MAC length)
    "MD5": ("md5", 12),
    "SHA": ("sha1", 12),
    "SHA1": ("sha1", 12),
    "SHA224": ("sha224", 16),
    "SHA256": ("sha256", 24),
    "SHA384": ("sha384", 32),
    "SHA512": ("sha512", 48),
}
_USM_FAST_PRIV = frozenset({"AES", "AES128"})
_FLAG_AUTH, _FLAG_PRIV, _FLAG_REPORTABLE = 0x01, 0x02, 0x04
_MAX_MESSAGE = 65507
_USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)  # usmStats...: 1 unsupportedSecLevels, 2 notInTimeWindows,
# 3 unknownUserNames, 4 unknownEngineIDs, 5 wrongDigests, 6 decryptionErrors
_NOT_IN_TIME_WINDOW, _UNKNOWN_ENGINE_ID = 2, 4
_USM_REPORT_NAMES = {
    1: "UnsupportedSecurityLevel",
    2: "NotInTimeWindow",
    3: "UnknownUserName",
    4: "UnknownEngineID",
    5: "WrongDigest",
    6: "DecryptionError",
}


@functools.lru_cache(maxsize=256)
def _password_key(hash_name: str, password: bytes) -> bytes:
    """RFC 3414 A.2.1 (RFC 7860 for SHA-2): the hash of the password repeated to 1 MiB (~2 ms; once per
    password, however many engines share it)."""
    if not password:
        raise ValueError("empty SNMPv3 key")
    n = 1 << 20
    return hashlib.new(hash_name, (password * (n // len(password) + 1))[:n]).digest()


@functools.lru_cache(maxsize=16384)
def _localized_key(hash_name: str, password: bytes, engine_id: bytes) -> bytes:
    """RFC 3414 A.2.2: the password's key localized to one engine (two short hashes)."""
    ku = _password_key(hash_name, password)
    return hashlib.new(hash_name, ku + engine_id + ku).digest()


@dataclass(frozen=True, slots=True)
class _Usm:
    """One v3 user's credentials for the native path (secrets: never in reprs)."""

    user: bytes
    hash_name: str = field(repr=False)
    mac_len: int = field(repr=False)
    auth_password: bytes = field(repr=False)
    priv_password: bytes | None = field(repr=False)

    def keys(self, engine_id: bytes) -> tuple[bytes, bytes | None]:
        auth = _localized_key(self.hash_name, self.auth_password, engine_id)
        if self.priv_password is None:
            return auth, None
        return auth, _localized_key(self.hash_name, self.priv_password, engine_id)[:16]


@dataclass(slots=True)
class _Engine:
    """What we know of an agent's SNMP engine: ID, boots and time (as of ``learned_at``, monotonic s)."""

    engine_id: bytes
    boots: int
    time: int
    learned_at: float

    def now(self) -> int:
        return self.time + int(time.monotonic() - self.learned_at)

    def update(self, boots: int, engine_time: int) -> None:
        if boots > self.boots or (boots == self.boots and engine_time > self.now()):
            self.boots, self.time, self.learned_at = boots, engine_time, time.monotonic()


def _aes_cfb(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), _CFB(iv))
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def _v3_message(
    msg_id: int, usm: _Usm | None, engine: _Engine | None, salt: int, scoped_pdu: bytes
) -> bytes:
    """A v3 message: ``usm`` None is the discovery probe (noAuthNoPriv, empty engine ID and user)."""
    if usm is None or engine is None:
        flags, engine_id, boots, etime, user, mac_len, priv = _FLAG_REPORTABLE, b"", 0, 0, b"", 0, b""
        data = scoped_pdu
    else:
        engine_id, boots, etime, user, mac_len = engine.engine_id, engine.boots, engine.now(), usm.user, usm.mac_len
        auth_key, priv_key = usm.keys(engine_id)
        flags = _FLAG_REPORTABLE | _FLAG_AUTH
        priv = b""
        data = scoped_pdu
        if priv_key is not None:
            flags |= _FLAG_PRIV
            priv = salt.to_bytes(8, "big")
            iv = boots.to_bytes(4, "big") + etime.to_bytes(4, "big") + priv
            data = _ber(0x04, _aes_cfb(priv_key, iv, scoped_pdu, True))
    header = _ber(0x30, _ber_int(msg_id) + _ber_int(_MAX_MESSAGE) + _ber(0x04, bytes((flags,))) + _ber_int(3))
    priv_tlv = _ber(0x04, priv)
    params = _ber(
        0x30,
        _ber(0x04, engine_id) + _ber_int(boots) + _ber_int(etime) + _ber(0x04, user)
        + _ber(0x04, bytes(mac_len)) + priv_tlv,
    )
    message = _ber(0x30, b"\x02\x01\x03" + header + _ber(0x04, params) + data)
    if usm is None or engine is None:
        return message
    mac_end = len(message) - len(data) - len(priv_tlv)
    mac = hmac.new(auth_key, message, usm.hash_name).digest()[:mac_len]
    return message[: mac_end - mac_len] + mac + message[mac_end:]


def _scoped_pdu(engine_id: bytes, pdu: bytes) -> bytes:
    return _ber(0x30, _ber(0x04, engine_id) + b"\x04\x00" + pdu)


def _pdu(pdu_tag: int, request_id: int, a: int, b: int, varbinds: bytes) -> bytes:
    return _ber(pdu_tag, _ber_int(request_id) + _ber_int(a) + _ber_int(b) + varbinds)


def _parse_v3(data: bytes, usm: _Usm | None, oid_cache: dict[bytes, Oid]) -> _Response:
    """Decode a v3 message; authenticated messages are verified (and decrypted) with ``usm``'s keys.

    Unauthenticated messages are accepted only as Report PDUs (discovery, refusals)."""
    size = len(data)
    _, pos, end = _tl(data, 0, size)
    _, pos = _int_at(data, pos, end)
    tag, hpos, pos = _tl(data, pos, end)
    if tag != 0x30:
        raise _BerError("bad msgGlobalData")
    _, hpos = _int_at(data, hpos, pos)  # msgID
    _, hpos = _int_at(data, hpos, pos)  # msgMaxSize
    fstart, hpos = _octets_at(data, hpos, pos)
    model, _ = _int_at(data, hpos, pos)
    if model != 3 or hpos - fstart != 1:
        raise _BerError("not USM")
    flags = data[fstart]
    pstart, pos = _octets_at(data, pos, end)
    tag, ppos, pend = _tl(data, pstart, pos)
    if tag != 0x30 or pend != pos:
        raise _BerError("bad security parameters")
    estart, ppos = _octets_at(data, ppos, pend)
    engine_id = data[estart:ppos]
    boots, ppos = _int_at(data, ppos, pend)
    etime, ppos = _int_at(data, ppos, pend)
    ustart, uend = _octets_at(data, ppos, pend)
    mstart, mend = _octets_at(data, uend, pend)
    sstart, send = _octets_at(data, mend, pend)
    authenticated = False
    priv_key: bytes | None = None
    if flags & _FLAG_AUTH:
        if usm is None or data[ustart:uend] != usm.user or mend - mstart != usm.mac_len:
            raise _BerError("authenticated message for another user")
        auth_key, priv_key = usm.keys(engine_id)
        zeroed = data[:mstart] + bytes(usm.mac_len) + data[mend:]
        digest = hmac.new(auth_key, zeroed, usm.hash_name).digest()[: usm.mac_len]
        if not hmac.compare_digest(digest, data[mstart:mend]):
            raise _BerError("wrong digest")
        authenticated = True
    if flags & _FLAG_PRIV:
        if not authenticated or priv_key is None or send - sstart != 8:
            raise _BerError("encrypted message without privacy credentials")
        cstart, cend = _octets_at(data, pos, end)
        iv = boots.to_bytes(4, "big") + etime.to_bytes(4, "big") + data[sstart:send]
        scoped = _aes_cfb(priv_key, iv, data[cstart:cend], False)
        tag, spos, inner_end = _tl(scoped, 0, len(scoped))
    else:
        scoped = data
        tag, spos, inner_end = _tl(scoped, pos, end)
    if tag != 0x30:
        raise _BerError("bad scopedPDU")  # also what a wrong privacy key decrypts to
    _, spos = _octets_at(scoped, spos, inner_end)  # contextEngineID
    _, spos = _octets_at(scoped, spos, inner_end)  # contextName
    response = _parse_pdu(scoped, spos, inner_end, oid_cache)
    if not authenticated and not response.report:
        raise _BerError("unauthenticated response")
    return _Response(
        response.report, response.request_id, response.error_status, response.error_index,
        response.var_binds, (engine_id, boots, etime), authenticated,
    )


def _expire(future: asyncio.Future[_Response | None]) -> None:
    if not future.done():
        future.set_result(None)


_Decoder = Callable[[bytes], _Response]


class _UdpTransport:
    """One non-blocking UDP socket per address family for every native (v2c and v3) request of a poller.

    Requests are matched by id (the v2c request-id or the v3 msgID, one 31-bit counter), and a datagram
    counts only if it comes from the address and port the request went to and decodes with that request's
    credentials (community; v3 keys). Each try has its own timer (one ``call_later``); a retry resends the
    same message (same id, so a late answer to the first try is accepted). ``SO_RCVBUF`` is raised so bursts
    of answers are not dropped.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, rcvbuf: int = 4 * 1024 * 1024) -> None:
        self._loop = loop
        self._rcvbuf = rcvbuf
        self._socks: dict[int, socket.socket] = {}
        self._pending: dict[int, tuple[asyncio.Future[_Response | None], tuple[str, int], _Decoder]] = {}
        self._next_id = secrets.randbelow(1 << 30) + 1
        self.oid_cache: dict[bytes, Oid] = {}

    def _socket(self, family: int) -> socket.socket:
        sock = self._socks.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self._rcvbuf)  # root: past rmem_max
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
                self._loop.add_reader(sock.fileno(), self._on_readable, sock)
            except BaseException:
                sock.close()
                raise
            self._socks[family] = sock
        return sock

    def next_id(self) -> int:
        rid = self._next_id
        self._next_id = rid + 1 if rid < 0x7FFFFFFF else 1
        return rid

    async def request(
        self,
        dest: tuple[str, int],
        family: int,
        message_id: int,
        message: bytes,
        decode: _Decoder,
        timeout_s: float,
        tries: int,
    ) -> _Response | None:
        """Send ``message`` up to ``tries`` times, ``timeout_s`` apart; the response, or None on timeout.

        Raises ``OSError`` when the socket refuses to send (no route, ...)."""
        sock = self._socket(family)
        loop, pending = self._loop, self._pending
        try:
            for _ in range(tries):
                future: asyncio.Future[_Response | None] = loop.create_future()
                pending[message_id] = (future, dest, decode)
                with contextlib.suppress(BlockingIOError, InterruptedError):  # buffer full: the timer retries
                    sock.sendto(message, dest)
                handle = loop.call_later(timeout_s, _expire, future)
                try:
                    response = await future
                finally:
                    handle.cancel()
                if response is not None:
                    return response
            return None
        finally:
            pending.pop(message_id, None)

    def _on_readable(self, sock: socket.socket) -> None:
        pending = self._pending
        for _ in range(1024):
            try:
                data, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ECONNREFUSED queued on the socket: not an answer
                log.debug("snmp recvfrom failed: %s", exc)
                continue
            try:
                entry = pending.get(_message_id(data))
                if entry is None:
                    continue  # late (after the last try), duplicate, or not ours
                future, dest, decode = entry
                if (source[0], source[1]) != dest:
                    log.debug("snmp: ignoring an answer from %s for a request to %s", source[0], dest[0])
                    continue
                response = decode(data)
            except (_BerError, IndexError, ValueError) as exc:
                log.debug("snmp: ignoring a datagram from %s: %s", source[0], exc)
                continue
            if not future.done():
                future.set_result(response)

    def close(self) -> None:
        for sock in self._socks.values():
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()
        for future, _, _ in self._pending.values():
            if not future.done():
                future.set_result(None)
        self._pending.clear()


# --- the poller -----------------------------------------------------------------------------------


# pysnmp value classes -> type names, most specific first (IpAddress and Opaque are OctetStrings; Integer is
# an Integer32; the counters, gauges and TimeTicks are siblings).
_PYSNMP_TYPES: tuple[tuple[Any, str], ...] = (
    (rfc1905.NoSuchObject, "NoSuchObject"),
    (rfc1905.NoSuchInstance, "NoSuchInstance"),
    (rfc1905.EndOfMibView, "EndOfMibView"),
    (rfc1902.TimeTicks, "TimeTicks"),
    (rfc1902.Counter64, "Counter64"),
    (rfc1902.Counter32, "Counter32"),
    (rfc1902.Gauge32, "Gauge32"),
    (rfc1902.Integer32, "Integer32"),
    (rfc1902.IpAddress, "IpAddress"),
    (rfc1902.Opaque, "Opaque"),
    (rfc1902.OctetString, "OctetString"),
)
_INT_TYPES = frozenset({"TimeTicks", "Counter64", "Counter32", "Gauge32", "Integer32"})


def _typed(value: Any) -> tuple[str, Any]:
    """(type name, Python value) of a varbind value from either path: a :class:`_Value` or a pysnmp object."""
    if isinstance(value, _Value):
        return value.type, value.value
    for cls, name in _PYSNMP_TYPES:
        if isinstance(value, cls):
            if name in _INT_TYPES:
                return name, int(value)
            if name.endswith(("String", "Address", "Opaque")):
                return name, bytes(value.asOctets())
            return name, None
    return type(value).__name__, None


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
        self._wire: _UdpTransport | None = None  # the native transport (v2c, and v3 with HMAC and AES-128)
        self._engines: dict[tuple[str, int], _Engine] = {}  # v3 agents' engines, by (address, port)
        self._usm: dict[SnmpSettings, _Usm | None] = {}
        self._salt = secrets.randbits(64)
        self._dests: dict[tuple[str, int], tuple[tuple[str, int], int]] = {}  # -> (sendto address, family)
        self._varbinds: dict[tuple[Oid, ...], bytes] = {}
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"SnmpPoller(profile={self.profile!r}, max_in_flight={self.max_in_flight}, "
            f"devices={len(self._devices)}, open={self._engine is not None or self._wire is not None})"
        )

    async def __aenter__(self) -> SnmpPoller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets (v2c transport, pysnmp engine) and timers. The poller cannot be used afterwards."""
        self._closed = True
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_dispatcher()
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()

    # --- plumbing ------------------------------------------------------------------------------------------
    def _ensure_engine(self) -> Any:
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        if self._engine is None:
            self._engine = SnmpEngine()
            self._context = ContextData()
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_in_flight)
        return self._engine

    def _ensure_wire(self) -> _UdpTransport:
        if self._closed:
            raise RuntimeError("SnmpPoller is closed")
        if self._wire is None:
            self._wire = _UdpTransport(asyncio.get_running_loop())
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_in_flight)
        return self._wire

    def _dest(self, address: str, port: int) -> tuple[tuple[str, int], int]:
        dest = self._dests.get((address, port))
        if dest is None:
            ip = ipaddress.ip_address(address)
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            dest = self._dests[address, port] = ((str(ip), port), family)
        return dest

    def _native_usm(self, s: SnmpSettings) -> _Usm | None:
        """The native path's credentials for a v3 device, or None when pysnmp must serve it (no auth key,
        or privacy other than AES-128). Raises ``ValueError`` for unknown protocols, as pysnmp's path does."""
        if s in self._usm:
            return self._usm[s]
        self._auth_for(s)  # validates protocols and key combinations (ValueError)
        usm: _Usm | None = None
        auth = (s.auth_protocol or "").upper().replace("-", "").replace("_", "")
        priv = (s.priv_protocol or "").upper().replace("-", "").replace("_", "") if s.priv_key else None
        if s.auth_key and auth in _USM_AUTH and (priv is None or priv in _USM_FAST_PRIV):
            hash_name, mac_len = _USM_AUTH[auth]
            usm = _Usm(
                (s.user or "").encode(),
                hash_name,
                mac_len,
                s.auth_key.encode(),
                s.priv_key.encode() if priv is not None and s.priv_key else None,
            )
        self._usm[s] = usm
        return usm

    def _native(self, s: SnmpSettings) -> bool:
        return s.version == "2c" or self._native_usm(s) is not None

    async def _request_native(
        self, node: Node, profile: SnmpProfile, pdu_tag: int, a: int, b: int, oids: Sequence[Oid]
    ) -> list[tuple[Oid, Any]]:
        """One request on our own transport (see :class:`_UdpTransport`); errors mapped as in :meth:`_request`."""
        address, s = self._check_node(node)
        transport = self._ensure_wire()
        dest, family = self._dest(address, s.port)
        varbinds = self._varbinds.get(tuple(oids)) if pdu_tag == _PDU_GET else None
        if varbinds is None:
            varbinds = _ber_varbinds(oids)
            if pdu_tag == _PDU_GET and len(self._varbinds) < 1000:
                self._varbinds[tuple(oids)] = varbinds
        where = f"{node.id} ({address}:{s.port})"
        tries = profile.retries + 1
        cache = transport.oid_cache
        assert self._semaphore is not None
        try:
            async with self._semaphore:
                if s.version == "2c":
                    community = s.community.encode()
                    rid = transport.next_id()
                    message = _v2c_message(community, _pdu(pdu_tag, rid, a, b, varbinds))

                    def decode(data: bytes) -> _Response:
                        return _parse_v2c(data, community, cache)

                    response = await transport.request(
                        dest, family, rid, message, decode, profile.timeout_s, tries
                    )
                else:
                    usm = self._native_usm(s)
                    assert usm is not None
                    response = await self._request_v3(
                        transport, dest, family, usm, (pdu_tag, a, b, varbinds), profile, where, address
                    )
        except OSError as exc:
            detail = self._scrub(f"{type(exc).__name__}: {exc}", s)[:200]
            raise Unreachable(f"{where}: SNMP transport error ({detail})", target=address) from None
        if response is None:
            raise ProbeTimeout(f"{where}: no SNMP answer ({profile.timeout_s} s x {tries} tries)", target=address)
        self._check_status(where, address, response.error_status, response.error_index)
        return list(response.var_binds)

    async def _discover_engine(
        self, transport: _UdpTransport, dest: tuple[str, int], family: int, profile: SnmpProfile
    ) -> _Engine | None:
        """RFC 3414 discovery: an empty noAuthNoPriv request; the agent's Report names its engine."""
        msg_id, rid = transport.next_id(), transport.next_id()
        message = _v3_message(msg_id, None, None, 0, _scoped_pdu(b"", _pdu(_PDU_GET, rid, 0, 0, b"\x30\x00")))
        cache = transport.oid_cache

        def decode(data: bytes) -> _Response:
            return _parse_v3(data, None, cache)

        response = await transport.request(
            dest, family, msg_id, message, decode, profile.timeout_s, profile.retries + 1
        )
        if response is None or response.engine is None or not response.engine[0]:
            return None
        engine_id, boots, engine_time = response.engine
        engine = self._engines[dest] = _Engine(engine_id, boots, engine_time, time.monotonic())
        return engine

    async def _request_v3(
        self,
        transport: _UdpTransport,
        dest: tuple[str, int],
        family: int,
        usm: _Usm,
        pdu: tuple[int, int, int, bytes],
        profile: SnmpProfile,
        where: str,
        address: str,
    ) -> _Response | None:
        """A v3 request: engine discovery once per agent, then authPriv (or authNoPriv) messages; a Report
        of notInTimeWindow (after an agent reboot) or unknownEngineID (a swapped device) resynchronises
        and retries; other USM Reports are :class:`AuthFailure`."""
        pdu_tag, a, b, varbinds = pdu
        cache = transport.oid_cache

        def decode(data: bytes) -> _Response:
            return _parse_v3(data, usm, cache)

        engine = self._engines.get(dest)
        name = "NotInTimeWindow"
        for _ in range(3):
            if engine is None:
                engine = await self._discover_engine(transport, dest, family, profile)
                if engine is None:
                    return None
            msg_id, rid = transport.next_id(), transport.next_id()
            self._salt = (self._salt + 1) & 0xFFFFFFFFFFFFFFFF
            scoped = _scoped_pdu(engine.engine_id, _pdu(pdu_tag, rid, a, b, varbinds))
            message = _v3_message(msg_id, usm, engine, self._salt, scoped)
            response = await transport.request(
                dest, family, msg_id, message, decode, profile.timeout_s, profile.retries + 1
            )
            if response is None:
                return None
            if response.authenticated and response.engine is not None and response.engine[0] == engine.engine_id:
                engine.update(response.engine[1], response.engine[2])
            if not response.report:
                return response
            oid = response.var_binds[0][0] if response.var_binds else ()
            code = oid[len(_USM_STATS)] if oid[: len(_USM_STATS)] == _USM_STATS and len(oid) > len(_USM_STATS) else 0
            name = _USM_REPORT_NAMES.get(code, "Report")
            if code == _NOT_IN_TIME_WINDOW and response.authenticated:
                continue  # the engine's boots/time were just updated from this authenticated report
            if code == _UNKNOWN_ENGINE_ID and response.engine is not None and response.engine[0]:
                engine_id, boots, engine_time = response.engine
                engine = self._engines[dest] = _Engine(engine_id, boots, engine_time, time.monotonic())
                continue
            break
        raise AuthFailure(f"{where}: SNMP credentials refused ({name})", target=address)

    @staticmethod
    def _check_status(where: str, address: str, status: int, index: int) -> None:
        if status:
            label = _ERROR_STATUS_NAMES.get(status, str(status))
            if status in _AUTH_ERROR_STATUS:
                raise AuthFailure(f"{where}: SNMP access refused ({label})", target=address)
            raise BadData(f"{where}: SNMP error-status {label} at index {index}", target=address)

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
        self._check_status(where, address, int(error_status or 0), int(error_index or 0))
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
        lcd = CommandGeneratorLcdConfigurator()
        count = 0
        for node in nodes:
            if node.address is None or node.snmp is None:
                continue
            address, s = self._check_node(node)
            if self._native(s):  # served by our own transport: nothing to register with pysnmp
                self._dest(address, s.port)
                count += 1
                continue
            target = await self._target(address, s.port, profile)
            auth, _, _ = self._auth_for(s)
            try:
                lcd.configure(self._ensure_engine(), auth, target, b"")
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
            if node.snmp is not None and self._native(node.snmp):
                var_binds = await self._request_native(
                    node, profile, _PDU_GETBULK, 0, profile.max_repetitions, (cursor,)
                )
            else:
                start = self._object_type(cursor)

                async def send(engine: Any, auth: Any, target: Any, context: Any, start: Any = start) -> Any:
                    return await bulk_cmd(
                        engine, auth, target, context, 0, profile.max_repetitions, start, lookupMib=False
                    )

                var_binds = await self._request(node, profile, send)
            if not var_binds:
                return rows
            for oid, raw in var_binds:
                kind, value = _typed(raw)
                if kind == "EndOfMibView" or oid[: len(column)] != column:
                    return rows
                if oid <= cursor:
                    raise BadData(f"{node.id}: GETBULK answer not increasing at {_oid_str(oid)}")
                cursor = oid
                if len(oid) != len(column) + 1 or kind != "OctetString":
                    continue  # not a row of this column, or not a string: skip, keep walking
                rows.append((oid[-1], bytes(value).decode("utf-8", "replace")))
                if len(rows) >= self.max_interfaces:
                    return rows
        return rows

    async def get(
        self, node: Node, oids: Sequence[Oid], profile: SnmpProfile | None = None
    ) -> list[tuple[Oid, str, Any]]:
        """One GET of ``oids`` (numeric tuples): ``(oid, type name, value)`` per varbind, in answer order.

        Type names are pysnmp's (``Integer32``, ``Counter64``, ``OctetString``, ``NoSuchInstance``...); values
        are ints, bytes, OID tuples or None. Same errors as :meth:`poll`; not serialised per device.
        """
        profile = profile or self.profile
        _, s = self._check_node(node)
        if self._native(s):
            var_binds = await self._request_native(node, profile, _PDU_GET, 0, 0, oids)
        else:
            request = [self._object_type(o) for o in oids]

            async def send(engine: Any, auth: Any, target: Any, context: Any) -> Any:
                return await get_cmd(engine, auth, target, context, *request, lookupMib=False)

            var_binds = await self._request(node, profile, send)
        return [(oid, *_typed(value)) for oid, value in var_binds]

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
            if node.snmp is not None and self._native(node.snmp):
                var_binds = await self._request_native(node, profile, _PDU_GET, 0, 0, oids)
            else:
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
        expected_types: tuple[tuple[str, str], ...] = (
            ("sysUpTime", "TimeTicks"),
            ("ifOperStatus", "Integer32"),
            ("ifHCInOctets", "Counter64"),
            ("ifHCOutOctets", "Counter64"),
            ("ifInErrors", "Counter32"),
        )
        if len(var_binds) != len(oids):
            raise BadData(f"{node.id}: {len(var_binds)} values for {len(oids)} OIDs", target=node.address)
        out: list[int] = []
        for (name, typ), oid, (got_oid, raw) in zip(expected_types, oids, var_binds, strict=True):
            where = f"{node.id}: {name} ({_oid_str(oid)})"
            if got_oid != oid:
                raise BadData(f"{where}: answer is for {_oid_str(got_oid)}", target=node.address)
            kind, value = _typed(raw)
            if kind in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
                raise BadData(f"{where}: {kind}", target=node.address)
            if kind != typ:
                raise BadData(f"{where}: {kind}, expected {typ}", target=node.address)
            out.append(int(value))
        if not 1 <= out[1] <= 7:
            raise BadData(f"{node.id}: ifOperStatus {out[1]} is not 1..7", target=node.address)
        return out
