"""Bulk ICMP echo ("ping") collector: thousands of targets per poll from one socket.

Design
------
* **One socket per address family for all targets.** IPv4 uses one shared socket, opened by
  :meth:`Pinger.open`; IPv6 uses one more, opened lazily the first time an IPv6 target is given.
  Both are non-blocking and driven by the asyncio event loop (``loop.add_reader`` for replies; the sender
  also reads the replies of each burst right after sending it). Per-ping sockets (as in icmplib) are
  avoided: Linux copies every incoming ICMP packet to every open raw socket, so their cost per ping grows
  with concurrency.
* **System calls.** On Linux, runs of IPv4 requests go out with ``sendmmsg`` (up to 256 per call, through
  ``ctypes`` with preallocated vectors) and raw IPv4 replies come in with ``recvmmsg`` (up to 256 per call,
  each parsed with one ``struct`` unpack); elsewhere, and for IPv6, one ``sendto``/``recv*`` per packet. On
  loopback the kernel answers an echo inside the ``sendto`` call, ~10 µs of CPU per ping that no user-space
  code avoids: see ``benchmarks/README.md`` for the figures against fping and the single-socket limit.
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
* **Pacing.** One sender task sends due packets in order (a FIFO of targets due now; each call's later
  packets in that call's own FIFO, by due time) through a token bucket: ``rate`` packets/s overall, at most
  ``burst`` packets back to back (it sleeps for tokens in steps of >= 1 ms, what the event loop's selector
  can do). Each target's packets are spaced by at least ``interval`` seconds (measured from the actual send
  of the previous one).
* **Timeouts.** Every packet of a call has the same timeout and packets are sent in time order, so each
  call keeps its packets in flight in a FIFO, swept by one ``call_at`` timer callback for the whole pinger
  -- no asyncio timer per packet, no heap. A reply arriving after its packet's timeout counts as lost, as
  does a packet whose send fails (no route, ...).
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
import ctypes
import errno
import ipaddress
import logging
import os
import secrets
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
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
_ADDR4 = struct.Struct("!I")  # sin_addr in a struct sockaddr_in
_RECV_SIZE: Final = 4096  # bytes; larger than any reply we accept
_READS_PER_CALLBACK: Final = 4096  # datagrams drained per readiness callback before yielding to the loop
_RETRY_NS: Final = 1_000_000  # ns; a send that hit a full socket buffer is retried this much later
_MIN_SLEEP_NS: Final = 1_000_000  # ns; the event loop's selector sleeps in whole milliseconds
_SPIN_NS: Final = 50_000  # ns; a shorter wait for tokens just yields to the event loop once
_SEQ_MOD: Final = 65536
_MMSG_MAX: Final = 256  # IPv4 packets per sendmmsg call at most

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


# PingResult without its generated __init__ (frozen: one object.__setattr__ per field, ~1 µs): the slots'
# descriptors set the fields directly, at about half the cost -- 100,000s of results per call add up.
_new_result = object.__new__
_set_address, _set_sent, _set_received, _set_rtts = (
    PingResult.__dict__[name].__set__ for name in ("address", "sent", "received", "rtts_ms")
)


def _ping_result(address: str, sent: int, rtts: tuple[float, ...]) -> PingResult:
    result: PingResult = _new_result(PingResult)
    _set_address(result, address)
    _set_sent(result, sent)
    _set_received(result, len(rtts))
    _set_rtts(result, rtts)
    return result


class _Batch:
    """One ``ping_many`` call: its packets' outcomes, its timers, and the caller's future.

    ``later`` holds the batch's next packets as ``(due ns, target)`` and ``deadlines`` its packets in flight
    (see :data:`_Deadline`), both in time order: every packet of a batch has the same interval and timeout,
    and packets are sent in time order, so two FIFOs replace a heap (O(1) per packet). When the batch
    completes, both are dropped at once, so answered packets leave no timer behind.
    """

    __slots__ = ("cancelled", "deadlines", "future", "interval_ns", "later", "remaining", "timeout_ns")

    def __init__(
        self, future: asyncio.Future[None], remaining: int, interval_ns: int, timeout_ns: int
    ) -> None:
        self.future = future
        self.remaining = remaining  # packets whose outcome (reply, timeout, send error) is still unknown
        self.interval_ns = interval_ns
        self.timeout_ns = timeout_ns
        self.cancelled = False
        self.later: deque[tuple[int, _Target]] = deque()
        self.deadlines: deque[_Deadline] = deque()


class _Target:
    """Mutable per-target state during one call."""

    __slots__ = ("address", "base", "batch", "rtts", "sent", "to_send")

    def __init__(self, address: str, base: int | None, to_send: int, batch: _Batch) -> None:
        self.address = address  # canonical text form, as recvfrom() reports the reply's source
        # IPv4: the address as an integer shifted left by 16, so that ``base | seq`` is the pending key;
        # IPv6: None, and the key is ``(address, seq)``.
        self.base = base
        self.to_send = to_send
        self.sent = 0
        self.rtts: tuple[float, ...] = ()  # grown by concatenation: few replies each, and no copy at the end
        self.batch = batch


# A packet in flight is ``Pinger._pending[key] = (target, send time ns)``, and one entry in its batch's deadline
# FIFO: for IPv4 the int ``send_ns << 48 | key`` (ints are not tracked by the garbage collector, and 100,000s
# of tuples alive until the batch ends made it run full collections), for IPv6 the tuple ``(send_ns, key)``.
# A timeout applies only if the pending entry still has that send time (else it was answered).
_Key = int | tuple[str, int]
_Pending = tuple[_Target, int]
_Deadline = int | tuple[int, tuple[str, int]]
_KEY_BITS: Final = 48  # an IPv4 key: 32-bit address, 16-bit sequence
_KEY_MASK: Final = (1 << _KEY_BITS) - 1


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _libc_sendmmsg() -> Callable[..., int] | None:
    """glibc's ``sendmmsg(2)`` (Linux), or None where it is missing: then ``sendto`` is used."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sendmmsg
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    return fn


_SENDMMSG: Final = _libc_sendmmsg()


def _libc_recvmmsg() -> Callable[..., int] | None:
    """glibc's ``recvmmsg(2)`` (Linux), or None where it is missing: then ``recv_into`` is used."""
    if _SENDMMSG is None:
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    return fn


_RECVMMSG: Final = _libc_recvmmsg()
_MSG_DONTWAIT: Final = 0x40  # <bits/socket.h>


class _RecvMmsg:
    """Preallocated ``recvmmsg`` vectors: ``size`` datagrams of at most ``stride`` bytes each, no addresses
    (a raw IPv4 socket delivers the IP header, which holds the source)."""

    def __init__(self, size: int, stride: int) -> None:
        self.size = size
        self.stride = stride
        self.buf = ctypes.create_string_buffer(size * stride)
        self.iov = (_Iovec * size)()
        self.msgs = (_Mmsghdr * size)()
        self.msgs_at = ctypes.addressof(self.msgs)
        buf_at = ctypes.addressof(self.buf)
        for j in range(size):
            self.iov[j].base = buf_at + j * stride
            self.iov[j].len = stride
            self.msgs[j].hdr.iov = ctypes.addressof(self.iov[j])
            self.msgs[j].hdr.iovlen = 1


class _Mmsg:
    """Preallocated ``sendmmsg`` vectors for up to ``size`` IPv4 echo requests: per packet, only the
    8-byte ICMP header and the 4-byte destination are written; payloads, lengths and pointers are set once."""

    def __init__(self, size: int, payload: bytes) -> None:
        self.size = size
        self.packet_size = psize = 8 + len(payload)
        self.packets = ctypes.create_string_buffer(psize * size)
        self.addrs = ctypes.create_string_buffer(16 * size)
        self.iov = (_Iovec * size)()
        self.msgs = (_Mmsghdr * size)()
        self.msg_size = ctypes.sizeof(_Mmsghdr)
        self.msgs_at = ctypes.addressof(self.msgs)
        packets_at, addrs_at = ctypes.addressof(self.packets), ctypes.addressof(self.addrs)
        for j in range(size):
            ctypes.memmove(packets_at + j * psize + 8, payload, len(payload))
            struct.pack_into("=HH", self.addrs, 16 * j, socket.AF_INET, 0)  # sin_family, sin_port
            self.iov[j].base = packets_at + j * psize
            self.iov[j].len = psize
            hdr = self.msgs[j].hdr
            hdr.name = addrs_at + 16 * j
            hdr.namelen = 16
            hdr.iov = ctypes.addressof(self.iov[j])
            hdr.iovlen = 1


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
        self._v4_masks = [(net, mask) for fam, net, mask in self._allowed_masks if fam == socket.AF_INET]
        cookie = secrets.token_bytes(8)
        self._codec = EchoCodec(secrets.randbelow(_SEQ_MOD), cookie + bytes(payload_size - 8))
        self._seq = 0  # next sequence number to try, 0..65535

        plen = len(self._codec.payload)
        # a raw IPv4 reply: IPv4 header without options, ICMP header, payload -- one unpack per reply
        self._v4_reply = struct.Struct(f"!BxH5xB2xI4xBBHHH{plen}s")
        self._v4_reply_len = 28 + plen
        self._buf = bytearray(_RECV_SIZE)
        self._mmsg = _Mmsg(min(_MMSG_MAX, self._burst), self._codec.payload) if _SENDMMSG is not None else None
        self._rmmsg = _RecvMmsg(_MMSG_MAX, 128) if _RECVMMSG is not None and 28 + plen <= 128 else None

        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock4: socket.socket | None = None
        self._sock6: socket.socket | None = None
        self._kind: _IcmpSocketKind | None = None
        self._raw = False
        # pending key (``_Target.base | seq`` for IPv4, ``(address, seq)`` for IPv6) -> pending record
        self._pending: dict[_Key, _Pending] = {}
        self._ready: deque[_Target] = deque()  # targets whose next packet is due now, in order
        self._later_batches: list[_Batch] = []  # batches with packets due later (``_Batch.later``)
        self._sweeping: set[_Batch] = set()  # batches with packets in flight (``_Batch.deadlines``)
        self._sweep_at: int | None = None  # when the timeout callback is scheduled (monotonic ns)
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._wake_sender: asyncio.Future[None] | None = None  # set while the sender sleeps
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
        self._loop = loop
        self._sock4 = sock
        loop.add_reader(sock.fileno(), self._read4)
        self._tasks = [loop.create_task(self._send_loop(), name="icmp-sender")]

    async def close(self) -> None:
        """Stop the tasks, close the sockets; calls still waiting raise :class:`CollectorError`."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        self._sweep_handle = self._sweep_at = None
        for sock in (self._sock4, self._sock6):
            if sock is not None:
                loop.remove_reader(sock.fileno())
                sock.close()
        self._sock4 = self._sock6 = None
        for batch in self._batches:
            if not batch.future.done():
                batch.future.set_exception(CollectorError("pinger closed while pinging"))
            batch.later.clear()
            batch.deadlines.clear()
        self._batches.clear()
        self._pending.clear()
        self._ready.clear()
        self._later_batches.clear()
        self._sweeping.clear()

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
        self._loop.add_reader(sock.fileno(), self._read_generic, sock, True)
        return sock

    # -- public API ---------------------------------------------------------------------------------------

    def check_allowed(self, address: str) -> str:
        """Return the canonical text form of ``address`` if it is an IP address inside the allowed networks.

        Raises ``ValueError`` otherwise (not an IP address, or outside :attr:`allowed_networks`).
        IPv6 link-local addresses may carry a zone given by interface name (``fe80::1%eth0``).
        """
        return self._canonical(address)[0]

    def _canonical(self, address: str) -> tuple[str, int | None]:
        """(canonical text form, IPv4 pending-key base or None for IPv6); see :meth:`check_allowed`."""
        if ":" not in address:
            try:
                value = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
            except OSError:
                pass
            else:
                # glibc's inet_pton takes only 4 decimal parts without leading zeros: already canonical
                for net, mask in self._v4_masks:
                    if value & mask == net:
                        return address, value << 16
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
                return canonical, (value << 16 if family == socket.AF_INET else None)
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
        if not isinstance(addresses, (list, tuple)):
            addresses = list(addresses)
        batch = _Batch(loop.create_future(), 0, int(interval * 1e9), int(timeout * 1e9))
        # every address is checked before anything is sent; IPv4 inline (the common case, 100,000s of them)
        targets: dict[str, _Target] = {}
        aliases: dict[str, str] = {}  # input string -> canonical form, where they differ (IPv6)
        inet_pton, af_inet, from_bytes, v4_masks = socket.inet_pton, socket.AF_INET, int.from_bytes, self._v4_masks
        for address in addresses:
            if address in targets or address in aliases:
                continue
            if ":" not in address:
                try:
                    value = from_bytes(inet_pton(af_inet, address), "big")
                except OSError:
                    pass
                else:
                    for net, mask in v4_masks:
                        if value & mask == net:
                            targets[address] = _Target(address, value << 16, count, batch)
                            break
                    else:
                        self._canonical(address)  # raises the refusal
                    continue
            canonical, base = self._canonical(address)
            if canonical != address:
                aliases[address] = canonical
            if canonical not in targets:
                targets[canonical] = _Target(canonical, base, count, batch)
        if not targets:
            return {}
        if self._sock6 is None and any(t.base is None for t in targets.values()):
            self._open_v6()
        batch.remaining = count * len(targets)
        self._batches.add(batch)
        self._ready.extend(targets.values())
        if self._wake_sender is not None:
            _wake(self._wake_sender)
        try:
            await batch.future
        except asyncio.CancelledError:
            batch.cancelled = True  # the sender drops its remaining packets
            batch.later.clear()
            raise
        finally:
            self._batches.discard(batch)
        if not aliases:
            return {a: _ping_result(a, t.sent, t.rtts) for a, t in targets.items()}
        results: dict[str, PingResult] = {}
        for original in dict.fromkeys(addresses):
            t = targets[aliases.get(original, original)]
            results[original] = _ping_result(original, t.sent, t.rtts)
        return results

    # -- internals ----------------------------------------------------------------------------------------
    #
    # Hot paths. Per packet sent: one deque pop, one dict insert, one deque append, one ``sendto``; per reply
    # received: one ``recv_into`` into a preallocated buffer, one ``struct`` unpack, one dict pop. No heap,
    # no asyncio timer and no object other than the pending record per packet; the timers are per batch.

    def _pending_seqs(self, address: str) -> list[int]:
        """Sequence numbers pending for canonical ``address`` (for tests and debugging)."""
        base = self._canonical(address)[1]
        if base is None:
            return [k[1] for k in self._pending if isinstance(k, tuple) and k[0] == address]
        return [k & 0xFFFF for k in self._pending if isinstance(k, int) and k >> 16 == base >> 16]

    def _complete(self, batch: _Batch) -> None:
        """All packets of ``batch`` have an outcome: wake the caller and drop the batch's timers."""
        batch.deadlines.clear()
        batch.later.clear()
        self._sweeping.discard(batch)
        if not batch.future.done():
            batch.future.set_result(None)

    def _lost(self, target: _Target) -> None:
        batch = target.batch
        batch.remaining -= 1
        if batch.remaining <= 0:
            self._complete(batch)

    def _free_key(self, target: _Target) -> tuple[int, _Key]:
        """A sequence number (wrapping at 65536) not pending for ``target``, and its pending key."""
        pending, base = self._pending, target.base
        for _ in range(_SEQ_MOD):
            seq = self._seq
            self._seq = (seq + 1) & 0xFFFF
            key: _Key = base | seq if base is not None else (target.address, seq)
            if key not in pending:
                return seq, key
        raise CollectorError(f"65536 packets pending for {target.address}", target=target.address)

    def _arm_sweep(self, deadline_ns: int) -> None:
        if self._sweep_at is None or deadline_ns < self._sweep_at:
            assert self._loop is not None
            if self._sweep_handle is not None:
                self._sweep_handle.cancel()
            self._sweep_at = deadline_ns
            self._sweep_handle = self._loop.call_at(deadline_ns / 1e9, self._sweep)  # loop.time() = monotonic

    def _sweep(self) -> None:
        """Timer callback: packets past their batch's timeout count as lost; re-arm for the next deadline."""
        self._sweep_handle = self._sweep_at = None
        now = time.monotonic_ns()
        pending = self._pending
        next_at: int | None = None
        for batch in list(self._sweeping):
            fifo, timeout_ns = batch.deadlines, batch.timeout_ns
            while fifo:
                entry = fifo[0]
                key: _Key
                if isinstance(entry, int):
                    sent_ns, key = entry >> _KEY_BITS, entry & _KEY_MASK
                else:
                    sent_ns, key = entry
                deadline = sent_ns + timeout_ns
                if deadline > now:
                    if next_at is None or deadline < next_at:
                        next_at = deadline
                    break
                fifo.popleft()
                rec = pending.get(key)
                if rec is not None and rec[1] == sent_ns:  # else answered already
                    del pending[key]
                    self._lost(rec[0])
            if not fifo:
                self._sweeping.discard(batch)
        if next_at is not None:
            self._arm_sweep(next_at)

    def _promote(self, now: int) -> None:
        """Move packets whose due time has come from their batch's ``later`` FIFO to the ready queue."""
        ready = self._ready
        keep: list[_Batch] = []
        for batch in self._later_batches:
            later = batch.later
            while later and later[0][0] <= now:
                ready.append(later.popleft()[1])
            if later:
                keep.append(batch)
        self._later_batches = keep

    def _next_due(self) -> int | None:
        heads = [b.later[0][0] for b in self._later_batches if b.later]
        return min(heads) if heads else None

    def _send_burst(self, n: int) -> tuple[int, bool]:
        """Send up to ``n`` due packets; return (packets sent or failed for good, blocked by the socket).

        Runs of IPv4 targets go out with one ``sendmmsg`` per up to 256 packets where available (one system
        call instead of one per packet); IPv6 targets, and IPv4 without ``sendmmsg``, one ``sendto`` each.
        """
        ready = self._ready
        done = 0
        while done < n and ready:
            if self._mmsg is not None and ready[0].base is not None:
                sent, blocked = self._send_v4_batch(min(n - done, self._mmsg.size))
            else:
                sent, blocked = self._send_each(1)
            done += sent
            if blocked:
                return done, True
        return done, False

    def _record(self, target: _Target, sent_ns: int, key: _Key | None) -> None:
        """Bookkeeping after one packet of ``target`` was sent (``key``) or failed for good (None)."""
        batch = target.batch
        if key is not None:
            self._pending[key] = (target, sent_ns)
            fifo = batch.deadlines
            if not fifo:
                self._sweeping.add(batch)
                self._arm_sweep(sent_ns + batch.timeout_ns)
            fifo.append(sent_ns << _KEY_BITS | key if isinstance(key, int) else (sent_ns, key))
        target.sent += 1
        target.to_send -= 1
        if target.to_send > 0:
            self._again(target, sent_ns)
        if key is None:
            self._lost(target)

    def _again(self, target: _Target, sent_ns: int) -> None:
        """Queue ``target``'s next packet, ``interval`` after this one."""
        batch = target.batch
        if batch.interval_ns:
            if not batch.later:
                self._later_batches.append(batch)
            batch.later.append((sent_ns + batch.interval_ns, target))
        else:
            self._ready.append(target)

    def _send_v4_batch(self, k: int) -> tuple[int, bool]:
        """Send the next (up to ``k``) IPv4 packets of the ready queue with ``sendmmsg``."""
        mm, ready, pending = self._mmsg, self._ready, self._pending
        sock = self._sock4
        assert mm is not None and sock is not None and _SENDMMSG is not None
        codec = self._codec
        ident, request_base = codec.identifier, codec._request_base4
        packets, addrs, psize = mm.packets, mm.addrs, mm.packet_size
        pack_header, pack_addr = _HEADER.pack_into, _ADDR4.pack_into
        batch_targets: list[_Target] = []
        keys: list[int] = []
        j = 0
        while j < k and ready:
            target = ready[0]
            base = target.base
            if base is None:
                break
            ready.popleft()
            if target.batch.cancelled:
                continue
            seq = self._seq
            self._seq = (seq + 1) & 0xFFFF
            key = base | seq
            if key in pending:
                seq, free = self._free_key(target)
                assert isinstance(free, int)
                key = free
            total = request_base + seq
            total = (total & 0xFFFF) + (total >> 16)
            csum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
            pack_header(packets, j * psize, ICMP_ECHO_REQUEST, 0, csum, ident, seq)
            pack_addr(addrs, 16 * j + 4, base >> 16)
            batch_targets.append(target)
            keys.append(key)
            j += 1
        fd, at, msg_size = sock.fileno(), mm.msgs_at, mm.msg_size
        done = 0
        while done < j:
            sent_ns = time.monotonic_ns()
            r = _SENDMMSG(fd, at + done * msg_size, j - done, 0)
            if r > 0:
                deadline_entry = sent_ns << _KEY_BITS
                for i in range(done, done + r):  # _record(), inlined for the common case
                    target, key = batch_targets[i], keys[i]
                    pending[key] = (target, sent_ns)
                    batch = target.batch
                    fifo = batch.deadlines
                    if not fifo:
                        self._sweeping.add(batch)
                        self._arm_sweep(sent_ns + batch.timeout_ns)
                    fifo.append(deadline_entry | key)
                    target.sent += 1
                    target.to_send -= 1
                    if target.to_send > 0:
                        self._again(target, sent_ns)
                done += r
                continue
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EINTR):
                ready.extendleft(reversed(batch_targets[done:]))  # retried later, in the same order
                return done, True
            # no route, unreachable, refused by a firewall, ...: the packet counts as sent and lost
            log.debug("sendmmsg to %s failed: %s", batch_targets[done].address, os.strerror(err))
            self._record(batch_targets[done], sent_ns, None)
            done += 1
        return done, False

    def _send_each(self, n: int) -> tuple[int, bool]:
        """Send up to ``n`` due packets with one ``sendto`` each (see :meth:`_send_burst`)."""
        ready, pending, codec = self._ready, self._pending, self._codec
        done = 0
        while done < n and ready:
            target = ready.popleft()
            if target.batch.cancelled:
                continue
            base = target.base
            seq = self._seq
            self._seq = (seq + 1) & 0xFFFF
            key: _Key = base | seq if base is not None else (target.address, seq)
            if key in pending:
                seq, key = self._free_key(target)
            sock = self._sock4 if base is not None else self._sock6
            assert sock is not None
            packet = codec.request(seq, base is None)
            sent_ns = time.monotonic_ns()
            try:
                sock.sendto(packet, (target.address, 0))
            except (BlockingIOError, InterruptedError):
                ready.appendleft(target)
                return done, True
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    ready.appendleft(target)
                    return done, True
                # no route, unreachable, refused by a firewall, ...: the packet counts as sent and lost
                log.debug("sendto %s failed: %s", target.address, exc)
                self._record(target, sent_ns, None)
            else:
                self._record(target, sent_ns, key)
            done += 1
        return done, False

    async def _sleep(self, delay_ns: int | None) -> None:
        """Sleep ``delay_ns`` (None: until woken); :meth:`ping_many` wakes the sender early with new work."""
        loop = self._loop
        assert loop is not None
        future = loop.create_future()
        self._wake_sender = future
        handle = None if delay_ns is None else loop.call_later(delay_ns / 1e9, _wake, future)
        try:
            await future
        finally:
            self._wake_sender = None
            if handle is not None:
                handle.cancel()

    async def _send_loop(self) -> None:
        """The one sender: sends due packets through a token bucket (``rate``, ``burst``).

        After each burst it reads the replies that burst produced right away (the same reader the event
        loop calls), then yields to the loop. It sleeps only when it must wait for a due time or for tokens,
        and then for at least ~1 ms worth of tokens: the event loop's selector cannot sleep for less.
        """
        ready = self._ready
        per_ns = self._rate / 1e9  # tokens (packets) per ns
        burst = float(self._burst)
        chunk = max(1.0, min(burst, self._rate * _MIN_SLEEP_NS / 1e9))  # tokens worth waking up for
        tokens = burst
        last = time.monotonic_ns()
        while True:
            now = time.monotonic_ns()
            if self._later_batches:
                self._promote(now)
            tokens = min(burst, tokens + (now - last) * per_ns)
            last = now
            if not ready:
                due = self._next_due()
                await self._sleep(None if due is None else max(0, due - now))
                continue
            if tokens < 1.0:
                wait_ns = int((chunk - tokens) / per_ns)
                if wait_ns < _SPIN_NS:
                    await asyncio.sleep(0)
                else:
                    await self._sleep(wait_ns)
                continue
            done, blocked = self._send_burst(int(tokens))
            tokens -= done
            self._read_all()
            if blocked:
                await self._sleep(_RETRY_NS)
            else:
                await asyncio.sleep(0)  # let other tasks and callbacks run between bursts

    def _read_all(self) -> None:
        if self._sock4 is not None:
            if self._raw:
                self._read4()
            else:
                self._read_generic(self._sock4, False)
        if self._sock6 is not None:
            self._read_generic(self._sock6, True)

    def _read4(self) -> None:
        """Reader of the IPv4 socket; raw sockets take the fast path (no allocation but the payload).

        With ``recvmmsg`` (Linux) up to 256 replies are read per system call, and they share one receive
        timestamp taken right after it; else one ``recv_into`` per reply into a preallocated buffer.
        """
        sock = self._sock4
        if sock is None:
            return
        if not self._raw:
            self._read_generic(sock, False)
            return
        unpack, size = self._v4_reply.unpack_from, self._v4_reply_len
        codec = self._codec
        ident, payload, reply_base = codec.identifier, codec.payload, codec._reply_base4
        pending, monotonic_ns = self._pending, time.monotonic_ns
        rm = self._rmmsg
        buf: ctypes.Array[ctypes.c_char] | bytearray
        if rm is not None:
            assert _RECVMMSG is not None
            recvmmsg, fd, msgs_at, vlen = _RECVMMSG, sock.fileno(), rm.msgs_at, rm.size
            buf, stride = rm.buf, rm.stride
        else:
            recv_into, buf, stride = sock.recv_into, self._buf, _RECV_SIZE
        reads = 0
        while reads < _READS_PER_CALLBACK:
            if rm is not None:
                count = recvmmsg(fd, msgs_at, vlen, _MSG_DONTWAIT, None)
                if count <= 0:
                    err = ctypes.get_errno()
                    if err == errno.EINTR:
                        continue
                    if err not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        log.debug("recvmmsg failed: %s", os.strerror(err))
                    return
            else:
                try:
                    recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    log.debug("recv failed: %s", exc)
                    reads += 1
                    continue
                count = 1
            reads += count
            now = monotonic_ns()
            for off in range(0, count * stride, stride):
                # the IP total length says how long the datagram was (also when it was truncated here)
                vihl, length, proto, source, rtype, code, csum, rid, seq, data = unpack(buf, off)
                if length != size or vihl != 0x45:
                    if vihl >> 4 != 4 or vihl & 0x0F <= 5 or length > stride:
                        continue
                    parsed = codec.parse_reply(bytes(memoryview(buf)[off : off + length]), False, True)  # options
                    if parsed is None or parsed[0] != ident:
                        continue
                    seq = parsed[1]
                elif proto != 1 or rtype or code or rid != ident or data != payload:
                    continue
                else:
                    total = reply_base + csum + rid + seq
                    total = (total & 0xFFFF) + (total >> 16)
                    if (total & 0xFFFF) + (total >> 16) != 0xFFFF:
                        continue
                rec = pending.pop(source << 16 | seq, None)
                if rec is None:  # a duplicate, a late reply (already timed out), or not ours
                    continue
                target = rec[0]
                target.rtts += ((now - rec[1]) / 1e6,)
                batch = target.batch
                batch.remaining -= 1
                if batch.remaining <= 0:
                    self._complete(batch)
            if rm is not None and count < vlen:
                return

    def _read_generic(self, sock: socket.socket, v6: bool) -> None:
        """Reader of datagram sockets (IPv4) and of the IPv6 socket: ``recvfrom`` and the codec."""
        recvfrom = sock.recvfrom
        parse = self._codec.parse_reply
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
            parsed = parse(data, v6, False)
            if parsed is None or (check_ident and parsed[0] != ident):
                continue
            seq = parsed[1]
            key: _Key = (source[0], seq) if v6 else int.from_bytes(socket.inet_aton(source[0]), "big") << 16 | seq
            rec = pending.pop(key, None)
            if rec is None:
                continue
            target = rec[0]
            target.rtts += ((now - rec[1]) / 1e6,)
            batch = target.batch
            batch.remaining -= 1
            if batch.remaining <= 0:
                self._complete(batch)
