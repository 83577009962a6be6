"""Bulk ICMP echo ("ping") collector: thousands of targets per poll from one socket.

Design
------
* **One socket per address family for all targets.** IPv4 uses one shared socket, opened by
  :meth:`Pinger.open`; IPv6 uses one more, opened lazily the first time an IPv6 target is given.
  Both are non-blocking and driven by the asyncio event loop (``loop.add_reader`` for replies, plain
  non-blocking ``sendto`` for requests). Per-ping sockets (as in icmplib) are avoided: Linux copies every
  incoming ICMP packet to every open raw socket, so their cost per ping grows with concurrency.
* **Socket kind.** ``privileged=None`` (default) auto-detects: a raw socket (``SOCK_RAW``, needs root or
  ``CAP_NET_RAW``) if permitted, else an ICMP datagram socket (``SOCK_DGRAM, IPPROTO_ICMP``, allowed when the
  process's group is inside ``net.ipv4.ping_group_range``), else :class:`~collectors.errors.PermissionDenied`
  whose message names the exact remedy. On the raw IPv4 socket the ``ICMP_FILTER`` option (``ICMP6_FILTER``
  for IPv6) is set so the kernel delivers only echo replies (not our own echo requests seen on loopback, nor
  errors). ``SO_RCVBUF`` is raised (default 4 MiB) so reply bursts are not dropped.
* **Matching.** Each pinger has its own 16-bit identifier and an 8-byte random cookie at the start of the
  payload. A reply counts when its type/code/length/checksum are valid, its payload equals ours, and
  (source address, sequence) is pending -- plus, on raw sockets, its identifier is ours. On datagram
  sockets the kernel rewrites the identifier and demultiplexes replies per socket, so only (address,
  sequence) is matched. Sequence numbers come from one per-pinger counter that wraps at 65536; a
  sequence is never reused for an address while a packet with it is still pending.
* **Pacing.** One sender task drains a send queue ordered by due time (a heap) through a token bucket:
  ``rate`` packets/s overall, at most ``burst`` packets back to back. Each target's packets are spaced by
  at least ``interval`` seconds (measured from the actual send of the previous one).
* **Timeouts.** One deadline heap swept by one task -- no asyncio timer per packet. A reply arriving after
  its packet's timeout counts as lost, as does a packet whose ``sendto`` fails (no route, ...).
* **Network rule.** Only destinations inside ``allowed_networks`` are accepted; the default is loopback only
  (127.0.0.0/8 and ::1). Every destination of a call is checked *before* any packet is sent; a destination
  outside the allowed networks raises ``ValueError``.

Units
-----
Rates are in packets/s, intervals and timeouts in seconds (float), round-trip times in milliseconds (float),
measured with the monotonic clock (``time.monotonic_ns``) from just before ``sendto`` to just after the
reply is read from the socket -- so under heavy bursts an RTT includes up to one burst of queueing in
this process (tens to hundreds of µs).

Example::

    async with Pinger(rate=20_000) as pinger:
        results = await pinger.ping_many(["127.0.0.1", "::1"], count=3, interval=0.2, timeout=1.0)
        for address, result in results.items():
            print(address, result.ok, result.loss, result.avg_rtt_ms)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import ipaddress
import itertools
import logging
import os
import secrets
import socket
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

from .errors import CollectorError, PermissionDenied, Unreachable

__all__ = [
    "DEFAULT_ALLOWED_NETWORKS",
    "EchoCodec",
    "PingResult",
    "Pinger",
    "internet_checksum",
]

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Destinations accepted when the caller passes no ``allowed_networks``: loopback only.
DEFAULT_ALLOWED_NETWORKS: Final[frozenset[IPNetwork]] = frozenset(
    {ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128")}
)

ICMP_ECHO_REPLY: Final = 0
ICMP_ECHO_REQUEST: Final = 8
ICMPV6_ECHO_REQUEST: Final = 128
ICMPV6_ECHO_REPLY: Final = 129

# <linux/icmp.h>: setsockopt(fd, SOL_RAW, ICMP_FILTER, u32 mask); a set bit *blocks* that ICMP type.
_SOL_RAW: Final = 255
_ICMP_FILTER: Final = 1
# <linux/icmpv6.h>: setsockopt(fd, IPPROTO_ICMPV6, ICMPV6_FILTER, u32[8]); a set bit blocks that type.
_ICMPV6_FILTER: Final = 1
_SO_RCVBUFFORCE: Final = 33  # <asm-generic/socket.h>; not exported by the socket module

_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_RECV_SIZE: Final = 4096  # bytes; larger than any reply we accept
_READS_PER_CALLBACK: Final = 4096  # datagrams drained per readiness callback before yielding to the loop
_RETRY_NS: Final = 1_000_000  # ns; a send that hit a full socket buffer is retried this much later
_SEQ_MOD: Final = 65536

_IcmpSocketKind = Literal["raw", "dgram"]


def _fold(total: int) -> int:
    """Fold a sum of 16-bit words into 16 bits with end-around carry (RFC 1071)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    """Unfolded sum of ``data`` as big-endian 16-bit words (zero-padded to an even length)."""
    if len(data) % 2:
        data += b"\x00"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def internet_checksum(data: bytes) -> int:
    """RFC 1071 internet checksum of ``data`` (16-bit ones' complement of the ones' complement sum)."""
    return ~_fold(_sum16(data)) & 0xFFFF


class EchoCodec:
    """Builds echo requests and validates echo replies for one identifier and one payload.

    The payload is constant per pinger, so its contribution to the checksum is computed once and each
    request or reply costs one ``struct`` call plus a few integer operations.
    """

    __slots__ = ("_reply_base4", "_request_base4", "identifier", "payload")

    def __init__(self, identifier: int, payload: bytes) -> None:
        if not 0 <= identifier < 65536:
            raise ValueError(f"identifier must be in 0..65535, got {identifier}")
        self.identifier = identifier
        self.payload = payload
        psum = _sum16(payload)
        self._request_base4 = (ICMP_ECHO_REQUEST << 8) + identifier + psum
        self._reply_base4 = psum  # type 0, code 0: the header adds only identifier and sequence

    def request(self, seq: int, v6: bool = False) -> bytes:
        """Echo request with sequence ``seq`` (0..65535). For IPv6 the kernel fills in the checksum."""
        if v6:
            return _HEADER.pack(ICMPV6_ECHO_REQUEST, 0, 0, self.identifier, seq) + self.payload
        csum = ~_fold(self._request_base4 + seq) & 0xFFFF
        return _HEADER.pack(ICMP_ECHO_REQUEST, 0, csum, self.identifier, seq) + self.payload

    def parse_reply(self, data: bytes, v6: bool = False, ip_header: bool = False) -> tuple[int, int] | None:
        """Return ``(identifier, sequence)`` if ``data`` is a valid echo reply with our payload, else None.

        ``ip_header``: ``data`` starts with an IPv4 header (raw IPv4 sockets deliver it; datagram and IPv6
        sockets do not). Checks: IP version/header length/protocol, ICMP type and code, exact length, payload
        and (IPv4) checksum; the kernel has already verified IPv6 checksums. Never raises on garbage.
        """
        off = 0
        if ip_header:
            if len(data) < 20 or data[0] >> 4 != 4 or data[9] != socket.IPPROTO_ICMP:
                return None
            off = (data[0] & 0x0F) << 2
            if off < 20:
                return None
        if len(data) - off != 8 + len(self.payload):
            return None
        rtype, code, csum, ident, seq = _HEADER.unpack_from(data, off)
        if code != 0 or rtype != (ICMPV6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY):
            return None
        if data[off + 8 :] != self.payload:
            return None
        if not v6 and _fold(self._reply_base4 + csum + ident + seq) != 0xFFFF:
            return None
        return ident, seq


@dataclass(frozen=True, slots=True)
class PingResult:
    """Outcome of one poll of one target: ``sent`` echo requests, ``received`` valid replies in time.

    ``rtts_ms`` holds one round-trip time in milliseconds per received reply, in arrival order, so
    ``received == len(rtts_ms) <= sent``.
    """

    address: str
    sent: int
    received: int
    rtts_ms: tuple[float, ...]

    @property
    def loss(self) -> float:
        """Fraction of packets lost, 0.0..1.0 (1.0 when nothing could be sent)."""
        return 1.0 - self.received / self.sent if self.sent else 1.0

    @property
    def ok(self) -> bool:
        """True if at least one reply came back: a poll fails only when ALL its packets are lost."""
        return self.received > 0

    @property
    def min_rtt_ms(self) -> float | None:
        """Smallest round-trip time in ms, None if nothing was received."""
        return min(self.rtts_ms) if self.rtts_ms else None

    @property
    def avg_rtt_ms(self) -> float | None:
        """Mean round-trip time in ms, None if nothing was received."""
        return sum(self.rtts_ms) / len(self.rtts_ms) if self.rtts_ms else None

    @property
    def max_rtt_ms(self) -> float | None:
        """Largest round-trip time in ms, None if nothing was received."""
        return max(self.rtts_ms) if self.rtts_ms else None


class _Batch:
    """One ``ping_many`` call: counts outstanding packet outcomes and wakes the caller at zero."""

    __slots__ = ("cancelled", "future", "interval_ns", "remaining", "timeout_ns")

    def __init__(
        self, future: asyncio.Future[None], remaining: int, interval_ns: int, timeout_ns: int
    ) -> None:
        self.future = future
        self.remaining = remaining  # packets whose outcome (reply, timeout, send error) is still unknown
        self.interval_ns = interval_ns
        self.timeout_ns = timeout_ns
        self.cancelled = False


class _Target:
    """Mutable per-target state during one call."""

    __slots__ = ("address", "batch", "dest", "rtts", "sent", "to_send", "v6")

    def __init__(self, address: str, v6: bool, to_send: int, batch: _Batch) -> None:
        self.address = address  # canonical text form, as recvfrom() reports the reply's source
        self.dest = (address, 0)
        self.v6 = v6
        self.to_send = to_send
        self.sent = 0
        self.rtts: list[float] = []
        self.batch = batch


def _permission_message(kind: str) -> str:
    python = os.path.realpath(sys.executable)
    try:
        with open("/proc/sys/net/ipv4/ping_group_range") as f:
            group_range = " ".join(f.read().split())
    except OSError:
        group_range = "unknown"
    gid = os.getegid()
    grant_raw = (
        f"grant raw sockets to the interpreter: `setcap cap_net_raw+ep {python}` (or run as root, or give "
        "the service AmbientCapabilities=CAP_NET_RAW)"
    )
    grant_dgram = (
        'allow ICMP datagram sockets: `sysctl -w net.ipv4.ping_group_range="0 2147483647"` (persist it in '
        "/etc/sysctl.d/)"
    )
    facts = f"net.ipv4.ping_group_range is {group_range!r}, this process has gid {gid}"
    if kind == "raw":
        return f"cannot open a raw ICMP socket: no CAP_NET_RAW; {grant_raw}"
    if kind == "dgram":
        return f"cannot open an ICMP datagram socket ({facts}); {grant_dgram}"
    return (
        f"cannot open an ICMP socket: no CAP_NET_RAW for a raw socket, and unprivileged ICMP datagram "
        f"sockets are not allowed ({facts}). Either {grant_raw}; or {grant_dgram}"
    )


def _open_icmp_socket(family: socket.AddressFamily, privileged: bool | None) -> tuple[socket.socket, str]:
    """Open a non-blocking ICMP socket of ``family``: raw if permitted (and wanted), else datagram."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    kinds: list[tuple[str, socket.SocketKind]] = []
    if privileged is not False:
        kinds.append(("raw", socket.SOCK_RAW))
    if privileged is not True:
        kinds.append(("dgram", socket.SOCK_DGRAM))
    for kind, socktype in kinds:
        try:
            sock = socket.socket(family, socktype, proto)
        except PermissionError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                if family == socket.AF_INET6:
                    raise Unreachable(f"IPv6 ICMP socket unavailable: {exc}") from exc
                continue
            raise
        sock.setblocking(False)
        return sock, kind
    wanted = {None: "any", True: "raw", False: "dgram"}[privileged]
    raise PermissionDenied(_permission_message(wanted))


class Pinger:
    """Pings many addresses over one shared socket per address family.

    Use as an async context manager (or call :meth:`open` / :meth:`close`)::

        async with Pinger() as pinger:
            result = await pinger.ping("127.0.0.1")

    Parameters
    ----------
    rate:
        Global send rate in packets/s, shared by all concurrent calls (default 20,000).
    burst:
        Largest number of packets sent back to back (token-bucket depth, default 64).
    privileged:
        True: raw socket only; False: ICMP datagram socket only; None: raw if permitted, else datagram.
    allowed_networks:
        Destinations allowed (CIDR strings or network objects). None means loopback only
        (:data:`DEFAULT_ALLOWED_NETWORKS`). An explicit set *replaces* the default.
    rcvbuf:
        Receive buffer size requested for each socket, bytes (default 4 MiB).
    payload_size:
        ICMP payload size in bytes, at least 8 (an 8-byte random cookie, then zeros). Default 16.
    """

    def __init__(
        self,
        *,
        rate: float = 20_000.0,
        burst: int = 64,
        privileged: bool | None = None,
        allowed_networks: Iterable[str | IPNetwork] | None = None,
        rcvbuf: int = 4 * 1024 * 1024,
        payload_size: int = 16,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 packets/s, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1 packet, got {burst}")
        if payload_size < 8:
            raise ValueError(f"payload_size must be >= 8 bytes, got {payload_size}")
        self._rate = float(rate)
        self._burst = int(burst)
        self._privileged = privileged
        self._rcvbuf = rcvbuf
        if allowed_networks is None:
            self._allowed: frozenset[IPNetwork] = DEFAULT_ALLOWED_NETWORKS
        else:
            self._allowed = frozenset(ipaddress.ip_network(n) for n in allowed_networks)
        # (family, network address as int, netmask as int): a cheap membership test for 100,000s of addresses
        self._allowed_masks = [
            (socket.AF_INET if n.version == 4 else socket.AF_INET6, int(n.network_address), int(n.netmask))
            for n in self._allowed
        ]
        cookie = secrets.token_bytes(8)
        self._codec = EchoCodec(secrets.randbelow(_SEQ_MOD), cookie + bytes(payload_size - 8))
        self._seq = 0  # next sequence number to try, 0..65535

        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock4: socket.socket | None = None
        self._sock6: socket.socket | None = None
        self._kind: _IcmpSocketKind | None = None
        self._raw = False
        # (address, sequence) -> (target, send time ns)
        self._pending: dict[tuple[str, int], tuple[_Target, int]] = {}
        # send queue: (due time ns, tie-breaker, target)
        self._send_heap: list[tuple[int, int, _Target]] = []
        self._order = itertools.count()
        self._send_wake = asyncio.Event()
        # deadlines: (deadline ns, send time ns, address, sequence); stale entries are skipped lazily
        self._deadlines: list[tuple[int, int, str, int]] = []
        self._sweep_wake = asyncio.Event()
        self._sweep_at: int | None = None  # deadline the sweeper sleeps until, None if idle
        self._batches: set[_Batch] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # -- properties ---------------------------------------------------------------------------------------

    @property
    def kind(self) -> _IcmpSocketKind | None:
        """``"raw"`` or ``"dgram"`` once open, else None."""
        return self._kind

    @property
    def identifier(self) -> int:
        """ICMP identifier of this pinger (on datagram sockets the kernel replaces it on the wire)."""
        return self._codec.identifier

    @property
    def allowed_networks(self) -> frozenset[IPNetwork]:
        """Networks destinations must belong to."""
        return self._allowed

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the IPv4 socket and start the sender and timeout tasks.

        Raises :class:`~collectors.errors.PermissionDenied` if no ICMP socket may be opened.
        """
        if self._loop is not None:
            raise RuntimeError("Pinger is already open")
        loop = asyncio.get_running_loop()
        sock, kind = _open_icmp_socket(socket.AF_INET, self._privileged)
        try:
            if kind == "raw":
                # deliver only echo replies (type 0) to this socket
                mask = ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF
                sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", mask))
            self._tune(sock)
        except BaseException:
            sock.close()
            raise
        self._kind = "raw" if kind == "raw" else "dgram"
        self._raw = kind == "raw"
        self._send_wake = asyncio.Event()  # created here: bound to the loop that runs this pinger
        self._sweep_wake = asyncio.Event()
        self._sweep_at = None
        self._loop = loop
        self._sock4 = sock
        loop.add_reader(sock.fileno(), self._on_readable, sock, False)
        self._tasks = [
            loop.create_task(self._send_loop(), name="icmp-sender"),
            loop.create_task(self._sweep_loop(), name="icmp-timeouts"),
        ]

    async def close(self) -> None:
        """Stop the tasks, close the sockets; calls still waiting raise :class:`CollectorError`."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for sock in (self._sock4, self._sock6):
            if sock is not None:
                loop.remove_reader(sock.fileno())
                sock.close()
        self._sock4 = self._sock6 = None
        for batch in self._batches:
            if not batch.future.done():
                batch.future.set_exception(CollectorError("pinger closed while pinging"))
        self._batches.clear()
        self._pending.clear()
        self._send_heap.clear()
        self._deadlines.clear()

    async def __aenter__(self) -> Pinger:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _tune(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self._rcvbuf)  # root: ignores rmem_max
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)  # capped by rmem_max

    def _open_v6(self) -> socket.socket:
        assert self._loop is not None
        sock, _kind = _open_icmp_socket(socket.AF_INET6, self._raw)
        try:
            if self._raw:
                # deliver only echo replies (type 129) to this socket
                blocked = [0xFFFFFFFF] * 8
                blocked[ICMPV6_ECHO_REPLY >> 5] &= ~(1 << (ICMPV6_ECHO_REPLY & 31)) & 0xFFFFFFFF
                sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMPV6_FILTER, struct.pack("=8I", *blocked))
            self._tune(sock)
        except BaseException:
            sock.close()
            raise
        self._sock6 = sock
        self._loop.add_reader(sock.fileno(), self._on_readable, sock, True)
        return sock

    # -- public API ---------------------------------------------------------------------------------------

    def check_allowed(self, address: str) -> str:
        """Return the canonical text form of ``address`` if it is an IP address inside the allowed networks.

        Raises ``ValueError`` otherwise (not an IP address, or outside :attr:`allowed_networks`).
        IPv6 link-local addresses may carry a zone given by interface name (``fe80::1%eth0``).
        """
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            packed = socket.inet_pton(family, address)
        except (OSError, ValueError):
            ip = ipaddress.ip_address(address)  # zone-scoped IPv6 address, else raises ValueError
            scoped = isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None
            if not scoped:
                raise ValueError(f"{address!r} is not a valid IP address") from None
            packed, canonical = ip.packed, str(ip)
        else:
            canonical = socket.inet_ntop(family, packed)  # the form recvfrom() reports
        value = int.from_bytes(packed, "big")
        for fam, net, mask in self._allowed_masks:
            if fam == family and value & mask == net:
                return canonical
        allowed = ", ".join(sorted(str(n) for n in self._allowed))
        raise ValueError(f"refusing to ping {address}: not inside the allowed networks ({allowed})")

    async def ping(
        self, address: str, *, count: int = 3, interval: float = 0.2, timeout: float = 1.0
    ) -> PingResult:
        """Ping one address; see :meth:`ping_many` for the parameters."""
        return (await self.ping_many([address], count=count, interval=interval, timeout=timeout))[address]

    async def ping_many(
        self, addresses: Iterable[str], *, count: int = 3, interval: float = 0.2, timeout: float = 1.0
    ) -> dict[str, PingResult]:
        """Send ``count`` echo requests to each address and collect the replies.

        ``interval``: minimum spacing in seconds between two packets to the same address; ``timeout``:
        seconds each packet waits for its reply. Returns one :class:`PingResult` per distinct input string,
        keyed by it. Every address is validated before anything is sent: ``ValueError`` if one is not an
        IP address or lies outside :attr:`allowed_networks`. Returns after the last packet was answered or
        timed out, i.e. after about ``(count - 1) * interval + timeout`` seconds at most (plus pacing).
        """
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if interval < 0 or not timeout > 0:
            raise ValueError(f"need interval >= 0 s and timeout > 0 s, got {interval}, {timeout}")
        loop = self._loop
        if loop is None:
            raise RuntimeError("Pinger is not open: use `async with Pinger() as p:` or `await p.open()`")
        originals = list(dict.fromkeys(addresses))
        canonical = {a: self.check_allowed(a) for a in originals}  # raises before anything is sent
        if not originals:
            return {}
        distinct = list(dict.fromkeys(canonical.values()))
        if self._sock6 is None and any(":" in a for a in distinct):
            self._open_v6()
        batch = _Batch(loop.create_future(), count * len(distinct), int(interval * 1e9), int(timeout * 1e9))
        targets = {a: _Target(a, ":" in a, count, batch) for a in distinct}
        self._batches.add(batch)
        now = time.monotonic_ns()
        heap, order = self._send_heap, self._order
        heap.extend([(now, next(order), target) for target in targets.values()])
        heapq.heapify(heap)
        self._send_wake.set()
        try:
            await batch.future
        except asyncio.CancelledError:
            batch.cancelled = True  # the sender drops its remaining packets
            raise
        finally:
            self._batches.discard(batch)
        results: dict[str, PingResult] = {}
        for original, address in canonical.items():
            t = targets[address]
            results[original] = PingResult(original, t.sent, len(t.rtts), tuple(t.rtts))
        return results

    # -- internals ----------------------------------------------------------------------------------------

    def _outcome(self, target: _Target, rtt_ns: int | None) -> None:
        """Record the outcome of one packet of ``target``: an RTT in ns, or None when lost."""
        if rtt_ns is not None:
            target.rtts.append(rtt_ns / 1e6)
        batch = target.batch
        batch.remaining -= 1
        if batch.remaining <= 0 and not batch.future.done():
            batch.future.set_result(None)

    def _next_seq(self, address: str) -> int:
        """Next sequence number (wrapping at 65536) not pending for ``address``."""
        pending = self._pending
        for _ in range(_SEQ_MOD):
            seq = self._seq
            self._seq = (seq + 1) % _SEQ_MOD
            if (address, seq) not in pending:
                return seq
        raise CollectorError(f"65536 packets pending for {address}", target=address)

    def _send_one(self, target: _Target) -> int | None:
        """Send the next packet of ``target``. Return None if sent (or failed for good), else a retry time."""
        batch = target.batch
        address = target.address
        v6 = target.v6
        seq = self._next_seq(address)
        packet = self._codec.request(seq, v6)
        sock = self._sock6 if v6 else self._sock4
        assert sock is not None
        sent_ns = time.monotonic_ns()
        try:
            sock.sendto(packet, target.dest)
        except (BlockingIOError, InterruptedError):
            return sent_ns + _RETRY_NS
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                return sent_ns + _RETRY_NS
            # no route, unreachable, refused by a firewall, ...: the packet counts as sent and lost
            log.debug("sendto %s failed: %s", address, exc)
            target.sent += 1
            target.to_send -= 1
            self._outcome(target, None)
            return None
        target.sent += 1
        target.to_send -= 1
        self._pending[address, seq] = (target, sent_ns)
        deadline = sent_ns + batch.timeout_ns
        heapq.heappush(self._deadlines, (deadline, sent_ns, address, seq))
        sweep_at = self._sweep_at
        if sweep_at is None or deadline < sweep_at:
            self._sweep_at = deadline
            self._sweep_wake.set()
        return None

    async def _send_loop(self) -> None:
        """The one sender: pops due packets from the send heap through a token bucket (rate, burst)."""
        heap = self._send_heap
        wake = self._send_wake
        per_ns = self._rate / 1e9  # tokens (packets) per ns
        burst = float(self._burst)
        tokens = burst
        last = time.monotonic_ns()
        while True:
            if not heap:
                wake.clear()
                await wake.wait()
                continue
            now = time.monotonic_ns()
            tokens = min(burst, tokens + (now - last) * per_ns)
            last = now
            while heap and tokens >= 1.0 and heap[0][0] <= now:
                _, _, target = heapq.heappop(heap)
                if target.batch.cancelled:
                    continue
                retry_at = self._send_one(target)
                if retry_at is not None:
                    heapq.heappush(heap, (retry_at, next(self._order), target))
                    continue
                tokens -= 1.0
                if target.to_send > 0:
                    due = time.monotonic_ns() + target.batch.interval_ns
                    heapq.heappush(heap, (due, next(self._order), target))
            if not heap:
                continue
            now = time.monotonic_ns()
            wait_ns = heap[0][0] - now
            if tokens < 1.0:
                wait_ns = max(wait_ns, int((1.0 - tokens) / per_ns))
            if wait_ns <= 0:
                await asyncio.sleep(0)  # let the reader drain replies between bursts
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_ns / 1e9):
                    await wake.wait()

    async def _sweep_loop(self) -> None:
        """The one timeout task: expires pending packets whose deadline passed (deadline-ordered heap)."""
        heap = self._deadlines
        pending = self._pending
        wake = self._sweep_wake
        while True:
            now = time.monotonic_ns()
            while heap and heap[0][0] <= now:
                _, sent_ns, address, seq = heapq.heappop(heap)
                entry = pending.get((address, seq))
                if entry is not None and entry[1] == sent_ns:  # else answered already (stale entry)
                    del pending[address, seq]
                    self._outcome(entry[0], None)
            wake.clear()
            if not heap:
                self._sweep_at = None
                await wake.wait()
                continue
            self._sweep_at = heap[0][0]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout((heap[0][0] - now) / 1e9):
                    await wake.wait()

    def _on_readable(self, sock: socket.socket, v6: bool) -> None:
        """Reader callback: drain replies from ``sock`` and match them to pending packets."""
        recvfrom = sock.recvfrom
        parse = self._codec.parse_reply
        ip_header = self._raw and not v6
        check_ident = self._raw
        ident = self._codec.identifier
        pending = self._pending
        for _ in range(_READS_PER_CALLBACK):
            try:
                data, source = recvfrom(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. a queued ICMP error on a datagram socket: not a reply
                log.debug("recvfrom failed: %s", exc)
                continue
            now = time.monotonic_ns()
            parsed = parse(data, v6, ip_header)
            if parsed is None or (check_ident and parsed[0] != ident):
                continue
            entry = pending.pop((source[0], parsed[1]), None)
            if entry is None:  # a duplicate, a late reply (already timed out), or not ours
                continue
            target = entry[0]
            target.rtts.append((now - entry[1]) / 1e6)
            batch = target.batch
            batch.remaining -= 1
            if batch.remaining <= 0 and not batch.future.done():
                batch.future.set_result(None)
