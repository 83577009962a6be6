"""Tests of collectors.icmp on real sockets: loopback, nftables drop rules, network namespaces.

No socket is mocked. Packets go only to loopback (127.0.0.0/8, ::1) or to 198.18.0.0/15 addresses that
exist only on a veth pair and inside a network namespace the test creates (and deletes). Silent hosts are
made with an nftables drop rule in a table the test creates, or with ``net.ipv4.icmp_echo_ignore_all=1``
inside the namespace.

Tests that need root (raw sockets, nftables, namespaces) are skipped when not root, unless ``CI=true``,
where they fail instead. Run them all as root::

    sudo .venv/bin/pytest tests/collectors/test_icmp.py
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.errors import CollectorError, PermissionDenied
from collectors.icmp import DEFAULT_ALLOWED_NETWORKS, EchoCodec, Pinger, PingResult, internet_checksum

pytestmark = pytest.mark.net

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
HOW_TO_RUN = "run as root: sudo .venv/bin/pytest tests/collectors/test_icmp.py"
TEST_NET = "198.18.0.0/15"  # RFC 2544 benchmarking range: never routed


# -- helpers ------------------------------------------------------------------------------------------------


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true (where everything must run)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)")
    pytest.skip(f"{reason}; {HOW_TO_RUN}")


def need_root() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (raw sockets, nftables, network namespaces)")


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"needs the `{name}` command")
    return path


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def has_ipv6_loopback() -> bool:
    try:
        return socket.has_ipv6 and "0" * 31 + "1" in Path("/proc/net/if_inet6").read_text()
    except OSError:
        return False


def echo_reply(ident: int, seq: int, payload: bytes, *, rtype: int = 0, code: int = 0) -> bytes:
    """A well-formed ICMPv4 echo reply (no IP header)."""
    head = struct.pack("!BBHHH", rtype, code, 0, ident, seq)
    csum = internet_checksum(head + payload)
    return struct.pack("!BBHHH", rtype, code, csum, ident, seq) + payload


def ipv4_header(payload_len: int, *, version: int = 4, ihl: int = 5, proto: int = 1) -> bytes:
    src, dst = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")
    options = bytes(max(0, ihl - 5) * 4)
    total = ihl * 4 + payload_len
    return struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, total, 0, 0, 64, proto, 0, src, dst) + options


async def open_pinger(**kwargs: object) -> Pinger:
    pinger = Pinger(**kwargs)  # type: ignore[arg-type]
    try:
        await pinger.open()
    except PermissionDenied as exc:
        unavailable(f"cannot open an ICMP socket: {exc}")
    return pinger


async def wait_pending(pinger: Pinger, address: str, n: int = 1) -> list[int]:
    """Sequence numbers pending for ``address`` once there are ``n`` of them (white box)."""
    for _ in range(200):
        seqs = pinger._pending_seqs(address)
        if len(seqs) >= n:
            return seqs
        await asyncio.sleep(0.005)
    raise AssertionError(f"no packet pending for {address}")


# -- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture
async def pinger() -> AsyncIterator[Pinger]:
    p = await open_pinger()
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def nft_drops() -> Iterator[dict[str, str]]:
    """An nftables table dropping ICMP echo requests on input (so a silent drop also on loopback).

    ``silent``: every echo request to that /24 is dropped. ``lossy``: every other one (``numgen``).
    """
    need_root()
    nft = need_tool("nft")
    octet = secrets.randbelow(254) + 1
    nets = {"silent": f"127.77.{octet}", "lossy": f"127.78.{octet}"}
    table = f"slawatch_test_{secrets.token_hex(4)}"
    ruleset = f"""
table inet {table} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {nets["silent"]}.0/24 icmp type echo-request drop
    ip daddr {nets["lossy"]}.0/24 icmp type echo-request numgen inc mod 2 0 drop
  }}
}}
"""
    proc = subprocess.run([nft, "-f", "-"], input=ruleset, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        unavailable(f"nft cannot create a table: {proc.stderr.strip()}")
    try:
        yield nets
    finally:
        sh(nft, "delete", "table", "inet", table, check=False)


@contextmanager
def network_namespace(sysctls: dict[str, str] | None = None) -> Iterator[str]:
    """A fresh network namespace with its loopback up; deleted on exit."""
    need_root()
    ip = need_tool("ip")
    name = f"slw-t-{secrets.token_hex(4)}"
    proc = sh(ip, "netns", "add", name, check=False)
    if proc.returncode != 0:
        unavailable(f"cannot create a network namespace: {proc.stderr.strip()}")
    try:
        sh(ip, "-n", name, "link", "set", "lo", "up")
        for key, value in (sysctls or {}).items():
            sh(ip, "netns", "exec", name, "sysctl", "-qw", f"{key}={value}")
        yield name
    finally:
        sh(ip, "netns", "del", name, check=False)


@pytest.fixture
def far_host() -> Iterator[tuple[str, str, str]]:
    """A "remote" host: namespace behind a veth pair, 198.18.N.1 on our side, 198.18.N.2 inside.

    Yields (namespace, address inside it, an address on the link nobody has).
    """
    with network_namespace() as ns:
        ip = need_tool("ip")
        tag = secrets.token_hex(3)
        ours, theirs = f"slwh{tag}", f"slwn{tag}"
        net = f"198.18.{secrets.randbelow(256)}"
        try:
            sh(ip, "link", "add", ours, "type", "veth", "peer", "name", theirs, "netns", ns)
            sh(ip, "addr", "add", f"{net}.1/24", "dev", ours)
            sh(ip, "link", "set", ours, "up")
            sh(ip, "-n", ns, "addr", "add", f"{net}.2/24", "dev", theirs)
            sh(ip, "-n", ns, "link", "set", theirs, "up")
            yield ns, f"{net}.2", f"{net}.99"
        finally:
            sh(ip, "link", "del", ours, check=False)


def run_in_namespace(ns: str, script: str, *, as_nobody: bool) -> dict[str, object]:
    """Run a Python snippet inside namespace ``ns``, return the JSON it prints.

    ``as_nobody``: the snippet's ``drop()`` switches to uid/gid 65534 (no capabilities, so no CAP_NET_RAW);
    it is called after the imports, since the interpreter's files may not be readable by nobody.
    """
    prelude = "import asyncio, json, os, sys\n"
    if as_nobody:
        prelude += "def drop():\n    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
    else:
        prelude += "def drop():\n    pass\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", prelude + script],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


# -- pure: packet encoding and decoding, results, argument checks (no privileges needed) --------------------


def test_internet_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (with end-around carry)
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF
    assert internet_checksum(b"\x01") == ~0x0100 & 0xFFFF  # odd length: zero-padded


@pytest.mark.parametrize("seq", [0, 1, 255, 256, 32767, 65534, 65535])
def test_request_is_well_formed(seq: int) -> None:
    codec = EchoCodec(0xBEEF, b"cookie!!" + bytes(8))
    packet = codec.request(seq)
    assert internet_checksum(packet) == 0  # a correct checksum makes the whole message sum to zero
    assert struct.unpack("!BBHHH", packet[:8])[0:2] == (8, 0)
    assert struct.unpack("!HH", packet[4:8]) == (0xBEEF, seq)
    assert packet[8:] == codec.payload
    v6 = codec.request(seq, v6=True)
    assert v6[0] == 128 and v6[8:] == codec.payload


def test_parse_accepts_valid_replies() -> None:
    codec = EchoCodec(4321, b"ABCDEFGH" + bytes(7))  # odd payload length on purpose
    icmp = echo_reply(4321, 65535, codec.payload)
    assert codec.parse_reply(icmp) == (4321, 65535)
    assert codec.parse_reply(ipv4_header(len(icmp)) + icmp, ip_header=True) == (4321, 65535)
    assert codec.parse_reply(ipv4_header(len(icmp), ihl=6) + icmp, ip_header=True) == (4321, 65535)
    v6 = struct.pack("!BBHHH", 129, 0, 0, 7, 9) + codec.payload  # the kernel checks ICMPv6 checksums
    assert codec.parse_reply(v6, v6=True) == (7, 9)


def test_parse_rejects_garbage() -> None:
    codec = EchoCodec(4321, b"ABCDEFGH" + bytes(8))
    good = echo_reply(4321, 17, codec.payload)
    bad_checksum = good[:2] + bytes([good[2] ^ 0xFF]) + good[3:]
    garbage = {
        "empty": b"",
        "header only": good[:8],
        "truncated payload": good[:-1],
        "trailing byte": good + b"\x00",
        "echo request (type 8)": codec.request(17),
        "destination unreachable (type 3)": echo_reply(4321, 17, codec.payload, rtype=3),
        "code 1": echo_reply(4321, 17, codec.payload, code=1),
        "other payload": echo_reply(4321, 17, b"XBCDEFGH" + bytes(8)),
        "bad checksum": bad_checksum,
        "ICMPv6 reply type on v4": echo_reply(4321, 17, codec.payload, rtype=129),
    }
    for name, data in garbage.items():
        assert codec.parse_reply(data) is None, name
    with_ip = {
        "IP version 6": ipv4_header(len(good), version=6) + good,
        "IHL 4": ipv4_header(len(good), ihl=4) + good,
        "protocol UDP": ipv4_header(len(good), proto=17) + good,
        "no IP header": good,
        "IP header only": ipv4_header(0),
    }
    for name, data in with_ip.items():
        assert codec.parse_reply(data, ip_header=True) is None, name
    assert codec.parse_reply(echo_reply(4321, 17, codec.payload), v6=True) is None  # type 0 is not v6


@given(st.binary(max_size=120), st.booleans(), st.booleans())
def test_parse_never_raises(data: bytes, v6: bool, ip_header: bool) -> None:
    codec = EchoCodec(1, b"12345678")
    parsed = codec.parse_reply(data, v6, ip_header)
    assert parsed is None or (0 <= parsed[0] < 65536 and 0 <= parsed[1] < 65536)


def test_ping_result_properties() -> None:
    r = PingResult("127.0.0.1", sent=4, received=3, rtts_ms=(2.0, 1.0, 3.0))
    assert r.ok and r.loss == pytest.approx(0.25)
    assert (r.min_rtt_ms, r.avg_rtt_ms, r.max_rtt_ms) == (1.0, 2.0, 3.0)
    dead = PingResult("127.0.0.1", sent=3, received=0, rtts_ms=())
    assert not dead.ok and dead.loss == 1.0
    assert dead.min_rtt_ms is None and dead.avg_rtt_ms is None and dead.max_rtt_ms is None
    assert PingResult("127.0.0.1", 0, 0, ()).loss == 1.0
    with pytest.raises(FrozenInstanceError):
        r.sent = 5  # type: ignore[misc]


def test_allowed_networks_default_is_loopback_only() -> None:
    p = Pinger()
    assert p.allowed_networks == DEFAULT_ALLOWED_NETWORKS
    assert p.check_allowed("127.0.0.1") == "127.0.0.1"
    assert p.check_allowed("127.255.255.254") == "127.255.255.254"
    assert p.check_allowed("0:0::1") == "::1"  # canonical form, as recvfrom() reports it
    for refused in ["192.0.2.1", "203.0.113.7", "198.18.0.1", "::2", "::ffff:127.0.0.1", "2001:db8::1"]:
        with pytest.raises(ValueError, match="not inside the allowed networks"):
            p.check_allowed(refused)
    for invalid in ["localhost", "127.1", "127.000.0.1", "", "1.2.3.4 ", "fe80::1%lo"]:
        with pytest.raises(ValueError):
            p.check_allowed(invalid)


def test_explicit_allowed_networks_replace_the_default() -> None:
    p = Pinger(allowed_networks={TEST_NET})
    assert p.check_allowed("198.19.255.254") == "198.19.255.254"
    with pytest.raises(ValueError):
        p.check_allowed("127.0.0.1")
    with pytest.raises(ValueError):
        p.check_allowed("198.20.0.1")


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Pinger(rate=0)
    with pytest.raises(ValueError):
        Pinger(burst=0)
    with pytest.raises(ValueError):
        Pinger(payload_size=7)
    with pytest.raises(ValueError):
        Pinger(allowed_networks={"not a network"})


async def test_not_open_raises() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await Pinger().ping("127.0.0.1")


# -- loopback: live targets ---------------------------------------------------------------------------------


async def test_loopback_targets_answer(pinger: Pinger) -> None:
    targets = ["127.0.0.1", "127.0.0.2", "127.45.3.9"]
    if has_ipv6_loopback():
        targets.append("::1")
    results = await pinger.ping_many(targets, count=3, interval=0.02, timeout=1.0)
    assert list(results) == targets
    for address, r in results.items():
        assert r.address == address
        assert (r.sent, r.received, r.loss, r.ok) == (3, 3, 0.0, True), r
        assert all(rtt > 0 for rtt in r.rtts_ms)
        assert r.min_rtt_ms is not None and r.max_rtt_ms is not None and r.avg_rtt_ms is not None
        assert 0 < r.min_rtt_ms <= r.avg_rtt_ms <= r.max_rtt_ms < 1000
    assert not pinger._pending


async def test_ipv6_loopback_socket_is_opened_lazily(pinger: Pinger) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no ::1 on this kernel")
    await pinger.ping("127.0.0.1", count=1)
    assert pinger._sock6 is None
    r = await pinger.ping("::1", count=2, interval=0.01)
    assert pinger._sock6 is not None and r.received == 2


async def test_ping_one_and_duplicates(pinger: Pinger) -> None:
    r = await pinger.ping("127.0.0.1", count=2, interval=0.01)
    assert (r.address, r.sent, r.received) == ("127.0.0.1", 2, 2)
    results = await pinger.ping_many(["127.0.0.3", "127.0.0.3"], count=2, interval=0.01)
    assert list(results) == ["127.0.0.3"] and results["127.0.0.3"].sent == 2
    assert await pinger.ping_many([]) == {}


async def test_two_thousand_loopback_targets(pinger: Pinger) -> None:
    targets = [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    started = time.monotonic()
    results = await pinger.ping_many(targets, count=2, interval=0.05, timeout=1.0)
    elapsed = time.monotonic() - started
    assert len(results) == 2000
    lost = {a: r for a, r in results.items() if r.received != 2}
    assert not lost, f"{len(lost)} targets lost packets, e.g. {next(iter(lost.values()))}"
    assert elapsed < 2.0  # 4,000 packets at 20,000/s (~0.2 s): nothing waits for a timeout


async def test_without_sendmmsg_and_recvmmsg(pinger: Pinger) -> None:
    """The portable paths (one sendto / recv_into per packet) give the same results."""
    pinger._mmsg = None
    pinger._rmmsg = None
    targets = [f"127.2.{i // 250}.{i % 250 + 1}" for i in range(500)]
    results = await pinger.ping_many(targets, count=2, interval=0.01, timeout=1.0)
    assert all(r.received == 2 for r in results.values())
    assert not pinger._pending


async def test_generator_input_and_aliases_keep_the_input_order(pinger: Pinger) -> None:
    targets = ["127.0.6.1", "127.0.6.2", "127.0.6.1"]
    if has_ipv6_loopback():
        targets[1:1] = ["0:0::1", "::1"]
    results = await pinger.ping_many((a for a in targets), count=1)
    assert list(results) == list(dict.fromkeys(targets))
    assert all(r.received == 1 and r.address == a for a, r in results.items())


async def test_sequence_numbers_wrap(pinger: Pinger) -> None:
    pinger._seq = 65530
    results = await pinger.ping_many([f"127.0.1.{i}" for i in range(1, 11)], count=1)
    assert all(r.received == 1 for r in results.values())
    assert pinger._seq == (65530 + 10) % 65536


async def test_concurrent_calls_share_the_socket(pinger: Pinger) -> None:
    a, b = await asyncio.gather(
        pinger.ping_many([f"127.0.2.{i}" for i in range(1, 101)], count=2, interval=0.01),
        pinger.ping_many([f"127.0.3.{i}" for i in range(1, 101)], count=3, interval=0.01),
    )
    assert all(r.received == 2 for r in a.values())
    assert all(r.received == 3 for r in b.values())


async def test_global_rate_is_enforced() -> None:
    p = await open_pinger(rate=1000, burst=10)
    try:
        started = time.monotonic()
        results = await p.ping_many([f"127.0.4.{i}" for i in range(1, 201)], count=1)
        elapsed = time.monotonic() - started
    finally:
        await p.close()
    assert all(r.ok for r in results.values())
    assert 0.17 <= elapsed < 1.0  # (200 - 10 burst) packets at 1,000 packets/s: ~0.19 s


async def test_interval_spaces_a_targets_packets(pinger: Pinger) -> None:
    started = time.monotonic()
    r = await pinger.ping("127.0.0.1", count=3, interval=0.1)
    assert r.received == 3
    assert 0.2 <= time.monotonic() - started < 0.6


async def test_refusal_happens_before_anything_is_sent(pinger: Pinger) -> None:
    with pytest.raises(ValueError, match=r"192\.0\.2\.1"):
        await pinger.ping_many(["127.0.0.1", "192.0.2.1"], count=1)
    with pytest.raises(ValueError):
        await pinger.ping("192.0.2.1")
    assert pinger._seq == 0 and not pinger._pending and not pinger._ready  # nothing was sent


async def test_cancelled_call_stops_sending(pinger: Pinger) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await pinger.ping("127.0.0.1", count=5, interval=0.3)
    await asyncio.sleep(0.4)
    # the 2nd packet was due at 0.3 s: never sent
    assert pinger._seq == 1 and not pinger._ready and not pinger._later_batches


async def test_close_fails_waiting_calls() -> None:
    p = await open_pinger()
    task = asyncio.create_task(p.ping("127.0.0.1", count=3, interval=0.5))
    await asyncio.sleep(0.05)
    await p.close()
    with pytest.raises(CollectorError, match="closed"):
        await task


# -- silent hosts: nftables drops on loopback ---------------------------------------------------------------


async def test_silent_host(pinger: Pinger, nft_drops: dict[str, str]) -> None:
    silent = f"{nft_drops['silent']}.5"
    started = time.monotonic()
    r = await pinger.ping(silent, count=2, interval=0.1, timeout=0.3)
    elapsed = time.monotonic() - started
    assert (r.sent, r.received, r.rtts_ms, r.ok, r.loss) == (2, 0, (), False, 1.0)
    assert r.avg_rtt_ms is None
    assert 0.35 <= elapsed < 1.0  # 2nd packet at 0.1 s, timed out at 0.4 s
    assert not pinger._pending


async def test_mix_of_live_and_silent_hosts(pinger: Pinger, nft_drops: dict[str, str]) -> None:
    silent = [f"{nft_drops['silent']}.{i}" for i in range(1, 51)]
    live = [f"127.0.5.{i}" for i in range(1, 51)]
    targets = [a for pair in zip(live, silent, strict=True) for a in pair]
    results = await pinger.ping_many(targets, count=2, interval=0.05, timeout=0.3)
    assert list(results) == targets
    assert all(results[a].received == 2 and results[a].loss == 0.0 for a in live)
    assert all(results[a].received == 0 and not results[a].ok for a in silent)


async def test_partly_lossy_host_is_still_ok(pinger: Pinger, nft_drops: dict[str, str]) -> None:
    r = await pinger.ping(f"{nft_drops['lossy']}.5", count=4, interval=0.02, timeout=0.3)
    assert (r.sent, r.received, r.loss, r.ok) == (4, 2, 0.5, True)  # a poll fails only if ALL are lost


async def test_forged_and_malformed_replies_are_ignored(pinger: Pinger, nft_drops: dict[str, str]) -> None:
    """Garbage on the wire: echo replies crafted from a raw socket while the pinger waits."""
    if pinger.kind != "raw":
        pytest.skip("forged replies are only visible to a raw socket")
    victim, control, other, optioned = (f"{nft_drops['silent']}.{i}" for i in (7, 8, 9, 10))
    task = asyncio.create_task(pinger.ping_many([victim, control, optioned], count=1, timeout=0.5))
    (seq,) = await wait_pending(pinger, victim)
    (control_seq,) = await wait_pending(pinger, control)
    (optioned_seq,) = await wait_pending(pinger, optioned)
    ident, payload = pinger.identifier, pinger._codec.payload
    good = echo_reply(ident, seq, payload)
    forged = [
        echo_reply(ident, seq, b"X" + payload[1:]),  # not our cookie
        echo_reply(ident ^ 1, seq, payload),  # not our identifier
        echo_reply(ident, seq ^ 1, payload),  # not a pending sequence
        echo_reply(ident, seq, payload, code=3),
        good[:2] + bytes([good[2] ^ 1]) + good[3:],  # bad checksum
        good[:-2],  # truncated
        good + b"\x00\x00",  # too long
        good[:8],  # header only
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.bind((victim, 0))
        for packet in forged:
            raw.sendto(packet, ("127.0.0.1", 0))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.bind((other, 0))  # a perfect reply, but from the wrong address
        raw.sendto(good, ("127.0.0.1", 0))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.bind((control, 0))  # positive control: a perfect forgery from the right address counts
        raw.sendto(echo_reply(ident, control_seq, payload), ("127.0.0.1", 0))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.bind((optioned, 0))  # a perfect reply in a datagram with IP options (header of 24 bytes)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x01\x01\x01\x00")  # NOP NOP NOP EOL
        raw.sendto(echo_reply(ident, optioned_seq, payload), ("127.0.0.1", 0))
    results = await task
    assert results[victim].received == 0 and results[victim].loss == 1.0
    assert results[control].received == 1
    assert results[optioned].received == 1


# -- a silent host on a wire: veth pair into a network namespace --------------------------------------------


async def test_namespace_host_answers_then_goes_silent(far_host: tuple[str, str, str]) -> None:
    ns, host, nobody_there = far_host
    p = await open_pinger(allowed_networks={TEST_NET})
    try:
        alive = await p.ping(host, count=2, interval=0.05, timeout=1.0)
        assert (alive.received, alive.ok) == (2, True)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1")
        results = await p.ping_many([host, nobody_there], count=2, interval=0.05, timeout=0.3)
    finally:
        await p.close()
    for r in results.values():
        assert (r.sent, r.received, r.ok, r.loss) == (2, 0, False, 1.0), r


async def test_loopback_is_refused_when_only_the_test_net_is_allowed(far_host: tuple[str, str, str]) -> None:
    p = await open_pinger(allowed_networks={TEST_NET})
    try:
        with pytest.raises(ValueError):
            await p.ping_many([far_host[1], "127.0.0.1"])
    finally:
        await p.close()


# -- socket kinds and privileges ----------------------------------------------------------------------------

PING_SCRIPT = """
from collectors.icmp import Pinger
from collectors.errors import PermissionDenied
async def main():
    try:
        async with Pinger(privileged={privileged}) as p:
            r = await p.ping("127.0.0.1", count=2, interval=0.01)
            return {{"kind": p.kind, "received": r.received}}
    except PermissionDenied as exc:
        return {{"denied": str(exc)}}
drop()
print(json.dumps(asyncio.run(main())))
"""


def test_datagram_socket_when_ping_group_range_allows() -> None:
    with network_namespace({"net.ipv4.ping_group_range": "0 2147483647"}) as ns:
        as_root = run_in_namespace(ns, PING_SCRIPT.format(privileged=False), as_nobody=False)
        auto_nobody = run_in_namespace(ns, PING_SCRIPT.format(privileged=None), as_nobody=True)
    assert as_root == {"kind": "dgram", "received": 2}
    assert auto_nobody == {"kind": "dgram", "received": 2}  # no CAP_NET_RAW: auto-detected datagram


def test_permission_denied_names_the_remedy() -> None:
    with network_namespace({"net.ipv4.ping_group_range": "1 0"}) as ns:
        auto = run_in_namespace(ns, PING_SCRIPT.format(privileged=None), as_nobody=True)
        raw = run_in_namespace(ns, PING_SCRIPT.format(privileged=True), as_nobody=True)
    message = str(auto["denied"])
    assert "setcap cap_net_raw+ep /" in message
    assert 'sysctl -w net.ipv4.ping_group_range="0 2147483647"' in message
    assert "'1 0'" in message and "gid 65534" in message
    assert "setcap cap_net_raw+ep" in str(raw["denied"]) and "ping_group_range" not in str(raw["denied"])
