"""The SNMP poller against real net-snmp agents on loopback, and its pure interpretation step.

Agent tests start real ``snmpd`` processes (``collectors.lab.agents``) bound to 127.20.x.y addresses and
poll them over real UDP sockets. Without ``snmpd`` they are skipped, except under CI=true, where they fail.
The ``interpret()`` tests are pure and always run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.errors import AuthFailure, BadData, CollectorError, ProbeTimeout
from collectors.lab.agents import AgentFleet, SnmpdAgent, loopback_addresses, snmpd_path
from collectors.snmp import (
    HC_MODULUS,
    SnmpPoller,
    SnmpProfile,
    SnmpSample,
    counter_rate_bps,
    interpret,
    uptime_restarted,
)
from monitor.inventory import Node, NodeKind, SnmpSettings

PORT = 16100
COMMUNITY = "c0mmunity-Secret-7"
V3_USER = "slawatch"
AUTH_KEY = "auth-Key-Secret-42"
PRIV_KEY = "priv-Key-Secret-42"
FAST = SnmpProfile(timeout_s=0.3, retries=1, max_repetitions=10)
NORMAL = SnmpProfile(timeout_s=1.0, retries=1, max_repetitions=10)

_addresses = (f"127.20.{n // 250 + 1}.{n % 250 + 1}" for n in itertools.count())


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def snmpd() -> str:
    path = snmpd_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("snmpd (Debian package 'snmpd') is required under CI=true and is not installed")
        pytest.skip("snmpd not installed (Debian package 'snmpd'); agent tests skipped outside CI")
    return path


@pytest.fixture
def make_agent(snmpd: str, tmp_path: Path) -> Iterator[Callable[..., SnmpdAgent]]:
    """Start agents on fresh loopback addresses; every one is stopped and removed at teardown."""
    agents: list[SnmpdAgent] = []

    def make(**kwargs: Any) -> SnmpdAgent:
        kwargs.setdefault("community", COMMUNITY)
        agent = SnmpdAgent(next(_addresses), port=PORT, state_dir=tmp_path, snmpd=snmpd, **kwargs)
        agents.append(agent)
        agent.start()
        return agent

    yield make
    for agent in agents:
        agent.close()
        assert not agent.dir.exists()


@pytest.fixture
async def poller() -> AsyncIterator[SnmpPoller]:
    p = SnmpPoller(NORMAL, allowed_networks=["127.0.0.0/8", "::1/128"])
    yield p
    p.close()


def v2c_node(agent: SnmpdAgent, node_id: str = "CPE-1", **snmp: Any) -> Node:
    snmp.setdefault("community", COMMUNITY)
    return Node(
        node_id,
        NodeKind.CPE,
        address=agent.address,
        bandwidth_mbps=20,
        snmp=SnmpSettings(version="2c", port=agent.port, **snmp),
    )


def v3_node(agent: SnmpdAgent, node_id: str = "CPE-3", **snmp: Any) -> Node:
    settings: dict[str, Any] = {
        "user": V3_USER,
        "auth_protocol": "SHA",
        "auth_key": AUTH_KEY,
        "priv_protocol": "AES",
        "priv_key": PRIV_KEY,
    }
    settings.update(snmp)
    return Node(
        node_id,
        NodeKind.CPE,
        address=agent.address,
        snmp=SnmpSettings(version="3", port=agent.port, **settings),
    )


def v3_agent(make_agent: Callable[..., SnmpdAgent], auth_key: str = AUTH_KEY) -> SnmpdAgent:
    return make_agent(community=None, v3_user=V3_USER, v3_auth_key=auth_key, v3_priv_key=PRIV_KEY)


# --- GET against real agents ----------------------------------------------------------------------

net = pytest.mark.net


@net
async def test_v2c_get_returns_all_five_values(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    agent.set_counters(in_octets=123_456_789_012, out_octets=987_654_321, in_errors=17)
    sample = await poller.poll(v2c_node(agent))
    assert sample.node == "CPE-1"
    assert sample.if_index == 3  # discovered: ifName 'wan0'
    assert sample.oper_status == 1
    assert (sample.in_octets, sample.out_octets, sample.in_errors) == (123_456_789_012, 987_654_321, 17)
    assert 0 <= sample.sys_uptime_cs < 60 * 100  # the agent has just started
    assert sample.at_monotonic <= time.monotonic()


@net
async def test_v3_authpriv_get(make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller) -> None:
    agent = v3_agent(make_agent)
    agent.add_traffic(5_000, 7_000, in_errors=1)
    sample = await poller.poll(v3_node(agent, uplink_if=3))
    assert (sample.if_index, sample.oper_status) == (3, 1)
    assert (sample.in_octets, sample.out_octets, sample.in_errors) == (5_000, 7_000, 1)


@net
async def test_wrong_community_is_a_timeout(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    with pytest.raises(ProbeTimeout) as info:
        await poller.poll(v2c_node(agent, community="not-the-community"), FAST)
    assert info.value.target == agent.address
    assert "not-the-community" not in str(info.value) + repr(info.value)


@net
async def test_wrong_v3_key_or_user_is_auth_failure(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = v3_agent(make_agent)
    wrong_key = v3_node(agent, "CPE-bad-key", auth_key="Wrong-Auth-Key-99", uplink_if=3)
    with pytest.raises(AuthFailure) as info:
        await poller.poll(wrong_key, FAST)
    text = str(info.value) + repr(info.value)
    assert "WrongDigest" in text and "Wrong-Auth-Key-99" not in text and PRIV_KEY not in text
    with pytest.raises(AuthFailure, match="UnknownUserName"):
        await poller.poll(v3_node(agent, "CPE-bad-user", user="nobody", uplink_if=3), FAST)
    # The right key still works on the same engine afterwards (pysnmp's user row is replaced, not stale).
    sample = await poller.poll(v3_node(agent, uplink_if=3), FAST)
    assert sample.oper_status == 1


@net
async def test_same_v3_user_with_different_keys_on_two_devices(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    a = v3_agent(make_agent, auth_key="first-Auth-Key-1")
    b = v3_agent(make_agent, auth_key="second-Auth-Key-2")
    na = v3_node(a, "CPE-A", auth_key="first-Auth-Key-1", uplink_if=3)
    nb = v3_node(b, "CPE-B", auth_key="second-Auth-Key-2", uplink_if=3)
    samples = await asyncio.gather(*(poller.poll(n) for n in [na, nb] * 10))
    assert [s.node for s in samples] == ["CPE-A", "CPE-B"] * 10


# --- uplink discovery -----------------------------------------------------------------------------


@net
async def test_uplink_discovered_by_ifname_once(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent(uplink_index=7, uplink_name="ge-0/0/0", uplink_descr="Juniper port")
    node = v2c_node(agent)
    calls: list[tuple[int, ...]] = []
    original = poller._bulk_column

    async def counting(node: Node, profile: SnmpProfile, column: tuple[int, ...]) -> list[tuple[int, str]]:
        calls.append(column)
        return await original(node, profile, column)

    poller._bulk_column = counting  # type: ignore[method-assign]
    # Five concurrent polls of one device: one discovery (the per-device lock), then cached.
    samples = await asyncio.gather(*(poller.poll(node, SnmpProfile(max_repetitions=2)) for _ in range(5)))
    assert {s.if_index for s in samples} == {7}
    assert calls == [(1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)]  # ifName only: it matched
    assert poller.cached_uplink("CPE-1") == 7
    await poller.poll(node)
    assert len(calls) == 1


@net
async def test_uplink_discovered_by_ifdescr_when_no_ifname_matches(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent(uplink_index=4, uplink_name="port4", uplink_descr="WAN to county POP")
    assert await poller.discover_uplink(v2c_node(agent)) == 4


@net
async def test_no_matching_uplink_is_bad_data_unless_configured(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent(uplink_name="port3", uplink_descr="port 3")
    with pytest.raises(BadData, match="uplink_if"):
        await poller.poll(v2c_node(agent))
    sample = await poller.poll(v2c_node(agent, "CPE-2", uplink_if=3))
    assert sample.if_index == 3


@net
async def test_custom_uplink_patterns(make_agent: Callable[..., SnmpdAgent]) -> None:
    agent = make_agent(uplink_name="port3", uplink_descr="port 3")
    async with SnmpPoller(NORMAL, uplink_patterns=[r"^port3$"]) as p:
        assert await p.discover_uplink(v2c_node(agent)) == 3


@net
async def test_missing_uplink_instance_is_bad_data(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    with pytest.raises(BadData, match="NoSuchInstance"):
        await poller.poll(v2c_node(agent, uplink_if=42))


# --- state changes seen by polls ------------------------------------------------------------------


@net
async def test_ifdown_and_ifup_seen(make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller) -> None:
    agent = make_agent()
    node = v2c_node(agent)
    first = await poller.poll(node)
    agent.ifdown()
    down = await poller.poll(node)
    assert down.oper_status == 2
    facts = interpret(first, down, node.bandwidth_mbps)
    assert facts.oper_changed == (1, 2) and not facts.uplink_up and not facts.rebooted
    agent.ifup()
    up = await poller.poll(node)
    assert interpret(down, up, node.bandwidth_mbps).oper_changed == (2, 1)


@net
async def test_reboot_seen(make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller) -> None:
    agent = make_agent()
    node = v2c_node(agent)
    await asyncio.sleep(1.2)  # let sysUpTime grow past the restart's
    agent.add_traffic(10_000_000)
    before = await poller.poll(node)
    agent.reboot()
    after = await poller.poll(node)
    assert after.sys_uptime_cs < before.sys_uptime_cs
    assert after.in_octets == 0  # a reboot zeroes the counters
    facts = interpret(before, after, node.bandwidth_mbps)
    assert facts.rebooted
    assert facts.in_bps is None and facts.errors_delta is None


@net
async def test_v3_survives_agent_reboot(make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller) -> None:
    # Same engine ID, engineBoots + 1, engineTime from 0: pysnmp must resynchronise.
    agent = v3_agent(make_agent)
    node = v3_node(agent, uplink_if=3)
    await poller.poll(node)
    agent.reboot()
    assert (await poller.poll(node, FAST)).sys_uptime_cs < 500


@net
async def test_stopped_agent_times_out_quickly_and_recovers(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    node = v2c_node(agent)
    await poller.poll(node, FAST)
    agent.stop()
    started = time.monotonic()
    with pytest.raises(ProbeTimeout):
        await poller.poll(node, FAST)
    assert time.monotonic() - started < 1.5  # 0.3 s x 2 tries, plus the timer's resolution
    agent.start()
    assert (await poller.poll(node, FAST)).oper_status == 1


@net
async def test_counters_advance_and_rates_are_computed(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    node = v2c_node(agent)
    first = await poller.poll(node)
    agent.add_traffic(2_500_000, 1_250_000, in_errors=3)
    await asyncio.sleep(0.5)
    second = await poller.poll(node)
    elapsed = second.at_monotonic - first.at_monotonic
    facts = interpret(first, second, node.bandwidth_mbps)
    assert facts.in_bps == pytest.approx(2_500_000 * 8 / elapsed)
    assert facts.out_bps == pytest.approx(1_250_000 * 8 / elapsed)
    assert facts.in_bps is not None
    assert facts.in_utilisation == pytest.approx(facts.in_bps / 20e6)
    assert facts.errors_delta == 3
    # A steady rate: 8 Mbit/s in, 2 Mbit/s out, measured over ~1 s.
    agent.set_rate(8_000_000, 2_000_000)
    third = await poller.poll(node)
    await asyncio.sleep(1.0)
    fourth = await poller.poll(node)
    facts = interpret(third, fourth, node.bandwidth_mbps)
    assert facts.in_bps == pytest.approx(8_000_000, rel=0.05)
    assert facts.out_bps == pytest.approx(2_000_000, rel=0.05)
    assert facts.in_utilisation == pytest.approx(0.4, rel=0.05)


@net
async def test_hc_counter_wrap_on_a_live_agent(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    node = v2c_node(agent)
    agent.set_counters(in_octets=HC_MODULUS - 1_000)
    first = await poller.poll(node)
    assert first.in_octets == HC_MODULUS - 1_000
    agent.add_traffic(5_000)
    second = await poller.poll(node)
    assert second.in_octets == 4_000
    elapsed = second.at_monotonic - first.at_monotonic
    assert interpret(first, second, 20).in_bps == pytest.approx(5_000 * 8 / elapsed)


@net
async def test_many_devices_under_a_small_concurrency_cap(snmpd: str) -> None:
    with AgentFleet(
        5, first_address="127.20.200.1", port=PORT, agent_kwargs={"community": COMMUNITY}
    ) as fleet:
        nodes = [v2c_node(agent, f"CPE-{n}") for n, agent in enumerate(fleet)]
        async with SnmpPoller(NORMAL, max_in_flight=2) as p:
            assert await p.prepare(nodes) == 5
            samples = await asyncio.gather(*(p.poll(n) for n in nodes * 4))
        assert sorted({s.node for s in samples}) == sorted(n.id for n in nodes)
        lab_dir = fleet.dir
    assert not lab_dir.exists()


@net
async def test_ipv6_loopback_agent(snmpd: str, tmp_path: Path) -> None:
    with SnmpdAgent("::1", port=PORT + 1, community=COMMUNITY, state_dir=tmp_path, snmpd=snmpd) as agent:
        assert agent.endpoint == f"udp6:[::1]:{PORT + 1}"
        async with SnmpPoller(FAST, allowed_networks=["::1/128"]) as p:
            assert (await p.poll(v2c_node(agent))).if_index == 3


# --- secrets, network rule, argument errors -------------------------------------------------------


@net
async def test_secrets_absent_from_reprs_errors_and_logs(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    v2 = make_agent()
    v3 = v3_agent(make_agent)
    rendered: list[str] = [repr(v2), repr(v3), repr(poller)]
    sample = await poller.poll(v2c_node(v2))
    rendered += [repr(sample), repr(interpret(None, sample, 20)), repr(v2c_node(v2)), repr(v3_node(v3))]
    for node in (
        v2c_node(v2, "CPE-x", community=COMMUNITY + "-wrong"),
        v3_node(v3, "CPE-y", auth_key=AUTH_KEY + "-wrong", uplink_if=3),
        v3_node(v3, "CPE-z", priv_key=PRIV_KEY + "-wrong", uplink_if=3),
    ):
        with pytest.raises(CollectorError) as info:
            await poller.poll(node, FAST)
        rendered += [str(info.value), repr(info.value), repr(info.value.args)]
    text = "\n".join([*rendered, caplog.text])
    for secret in (COMMUNITY, AUTH_KEY, PRIV_KEY):
        assert secret not in text
    # The agent's configuration holds the secrets, readable by its owner only.
    assert (v3.conf_path.stat().st_mode & 0o077) == 0


async def test_addresses_outside_allowed_networks_are_refused(poller: SnmpPoller) -> None:
    node = Node("CPE-9", NodeKind.CPE, address="192.0.2.1", snmp=SnmpSettings(uplink_if=1))
    with pytest.raises(ValueError, match=r"192\.0\.2\.1 is not inside the allowed networks"):
        await poller.poll(node)
    with pytest.raises(ValueError, match="no address"):
        await poller.poll(Node("CPE-8", NodeKind.CPE, snmp=SnmpSettings()))


async def test_unknown_v3_protocol_is_a_value_error(poller: SnmpPoller) -> None:
    node = Node(
        "CPE-7",
        NodeKind.CPE,
        address="127.20.250.250",
        snmp=SnmpSettings(version="3", user="u", auth_protocol="ROT13", auth_key="12345678", uplink_if=1),
    )
    with pytest.raises(ValueError, match="ROT13"):
        await poller.poll(node)


def test_agents_bind_to_loopback_only() -> None:
    for address in ("192.0.2.10", "0.0.0.0", "203.0.113.7", "::"):
        with pytest.raises(ValueError, match="loopback"):
            SnmpdAgent(address)
    assert loopback_addresses(3, "127.20.0.254") == ["127.20.0.254", "127.20.1.1", "127.20.1.2"]


@net
def test_agent_port_in_use_is_reported(make_agent: Callable[..., SnmpdAgent], tmp_path: Path) -> None:
    agent = make_agent()
    twin = SnmpdAgent(agent.address, port=agent.port, state_dir=tmp_path)
    try:
        with pytest.raises(RuntimeError, match="in use"):
            twin.start()
    finally:
        twin.close()


def test_wrong_types_and_missing_values_are_bad_data() -> None:
    from pysnmp.proto import rfc1902, rfc1905  # type: ignore[import-untyped, unused-ignore]

    node = Node("CPE-1", NodeKind.CPE, address="127.0.0.1", snmp=SnmpSettings(uplink_if=3))
    oids = [
        (1, 3, 6, 1, 2, 1, 1, 3, 0),
        (1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 3),
        (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 3),
        (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, 3),
        (1, 3, 6, 1, 2, 1, 2, 2, 1, 14, 3),
    ]
    good = [
        rfc1902.TimeTicks(100),
        rfc1902.Integer(1),
        rfc1902.Counter64(5),
        rfc1902.Counter64(6),
        rfc1902.Counter32(7),
    ]
    assert SnmpPoller._decode(node, oids, list(zip(oids, good, strict=True))) == [100, 1, 5, 6, 7]
    for position, bad in [
        (1, rfc1902.OctetString(b"up")),  # a string where an INTEGER belongs
        (2, rfc1902.Counter32(5)),  # a 32-bit counter where ifHCInOctets (Counter64) belongs
        (0, rfc1902.Integer(100)),  # not TimeTicks
        (3, rfc1905.NoSuchInstance()),
        (4, rfc1905.NoSuchObject()),
        (1, rfc1902.Integer(9)),  # ifOperStatus out of 1..7
    ]:
        values = list(good)
        values[position] = bad
        with pytest.raises(BadData):
            SnmpPoller._decode(node, oids, list(zip(oids, values, strict=True)))
    with pytest.raises(BadData, match="answer is for"):
        SnmpPoller._decode(node, oids, list(zip([oids[0], *oids[:4]], good, strict=True)))
    with pytest.raises(BadData, match="4 values"):
        SnmpPoller._decode(node, oids, list(zip(oids[:4], good, strict=False)))


async def test_v3_key_gate_never_mixes_key_sets() -> None:
    from collectors.snmp import _UserGate

    gate = _UserGate()
    inside: list[bytes] = []
    overlaps: list[set[bytes]] = []

    async def use(fp: bytes, hold_s: float) -> None:
        async with gate.hold(fp):
            inside.append(fp)
            overlaps.append(set(inside))
            await asyncio.sleep(hold_s)
            inside.remove(fp)

    await asyncio.gather(*(use(b"A" if i % 3 else b"B", 0.001 * (i % 4)) for i in range(60)))
    assert all(len(s) == 1 for s in overlaps)  # never two key sets in flight at once
    assert max(len(o) for o in overlaps) == 1 and not inside
    # identical key sets do run together
    together: list[int] = []

    async def same() -> None:
        async with gate.hold(b"A"):
            together.append(gate._inflight)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(same() for _ in range(5)))
    assert max(together) == 5


# --- interpret(): pure, hand-computed -------------------------------------------------------------


def sample(
    t: float, uptime: int, oper: int = 1, i: int = 0, o: int = 0, err: int = 0, idx: int = 3
) -> SnmpSample:
    return SnmpSample("CPE-1", t, uptime, idx, oper, i, o, err)


def test_interpret_first_sample_has_no_rates() -> None:
    facts = interpret(None, sample(100.0, 5_000), 20)
    assert (facts.rebooted, facts.oper_changed, facts.in_bps, facts.errors_delta) == (False, None, None, None)
    assert facts.uplink_up


def test_interpret_rates_utilisation_and_errors() -> None:
    # 60 s apart: 150,000,000 octets in = 20,000,000 bit/s = 100 % of 20 Mbit/s;
    # 37,500,000 octets out = 5,000,000 bit/s = 25 %; 12 more input errors.
    prev = sample(100.0, 100_000, i=1_000, o=2_000, err=5)
    cur = sample(160.0, 106_000, i=150_001_000, o=37_502_000, err=17)
    facts = interpret(prev, cur, 20)
    assert facts.in_bps == 20_000_000.0
    assert facts.out_bps == 5_000_000.0
    assert facts.in_utilisation == 1.0
    assert facts.out_utilisation == 0.25
    assert facts.errors_delta == 12
    assert not facts.rebooted and facts.oper_changed is None
    # explicit elapsed overrides the monotonic stamps: 120 s (and sysUpTime +120 s) -> half the rate
    later = dataclasses.replace(cur, sys_uptime_cs=112_000)
    assert interpret(prev, later, 20, elapsed_s=120.0).in_bps == 10_000_000.0
    # ...but 120 s of wall time with only 60 s more uptime means the device restarted meanwhile
    assert interpret(prev, cur, 20, elapsed_s=120.0).rebooted
    # no contracted bandwidth: no utilisation
    assert interpret(prev, cur, None).in_utilisation is None


def test_interpret_hc_counter_wrap() -> None:
    # in: 2^64 - 1,000 -> 4,000 is 5,000 octets; over 10 s = 4,000 bit/s
    prev = sample(0.0, 1_000, i=HC_MODULUS - 1_000, o=HC_MODULUS - 1)
    cur = sample(10.0, 2_000, i=4_000, o=9)
    facts = interpret(prev, cur, 20)
    assert facts.in_bps == 4_000.0
    assert facts.out_bps == 8.0  # 10 octets in 10 s
    assert facts.in_utilisation == 4_000 / 20e6


def test_interpret_counter_reset_without_reboot_gives_no_rate() -> None:
    # 10^9 -> 10 is not a wrap: (10 - 10^9) mod 2^64 over 10 s would be ~1.5e19 bit/s
    prev = sample(0.0, 1_000, i=1_000_000_000, err=100)
    cur = sample(10.0, 2_000, i=10, err=0)
    facts = interpret(prev, cur, 20)
    assert facts.in_bps is None
    assert facts.errors_delta is None  # 32-bit delta 2^32 - 100 > 2^31: a reset
    assert counter_rate_bps(1_000_000_000, 10, 10.0) is None


def test_interpret_ifinerrors_wrap_at_2_32() -> None:
    prev = sample(0.0, 1_000, err=(1 << 32) - 2)
    cur = sample(10.0, 2_000, err=3)
    assert interpret(prev, cur, None).errors_delta == 5


def test_interpret_reboot_by_decrease() -> None:
    # 5,000 s of uptime, then 3 s: restarted; no rates although counters "grew"
    prev = sample(0.0, 500_000, i=100)
    cur = sample(60.0, 300, i=200)
    facts = interpret(prev, cur, 20)
    assert facts.rebooted
    assert facts.in_bps is None and facts.out_bps is None and facts.errors_delta is None


def test_interpret_sysuptime_wrap_is_not_a_reboot() -> None:
    # 2^32 - 1,000 cs, 60 s later: (5,000 - (2^32 - 1,000)) mod 2^32 = 6,000 cs = the 60 s that passed
    prev = sample(0.0, (1 << 32) - 1_000, i=0)
    cur = sample(60.0, 5_000, i=750_000)
    facts = interpret(prev, cur, 20)
    assert not facts.rebooted
    assert facts.in_bps == 100_000.0  # 750,000 octets x 8 / 60 s


def test_uptime_restart_rules() -> None:
    assert not uptime_restarted(1_000, 7_000, 60.0)  # advanced exactly 60 s
    assert not uptime_restarted(0, 358_000, 3_600.0)  # device clock 0.55 % slow: within 5 %
    assert uptime_restarted(500_000, 300, 60.0)  # decrease far from a wrap
    assert not uptime_restarted((1 << 32) - 1_000, 5_000, 60.0)  # wrap consistent with 60 s
    assert uptime_restarted((1 << 32) - 100, 50, 600.0)  # near 2^32 but only 1.5 s advanced in 600 s
    # restarted and already up longer than before: 30 s of uptime, 300 s later only 120 s
    assert uptime_restarted(3_000, 12_000, 300.0)
    assert not uptime_restarted(3_000, 3_000, 0.0)  # no time, no change


def test_interpret_oper_change_and_index_change() -> None:
    prev = sample(0.0, 1_000, oper=1, i=10)
    cur = sample(10.0, 2_000, oper=2, i=20)
    facts = interpret(prev, cur, 20)
    assert facts.oper_changed == (1, 2) and not facts.uplink_up
    moved = sample(10.0, 2_000, oper=1, i=20, idx=4)
    assert interpret(prev, moved, 20).in_bps is None  # another interface: no rate
    with pytest.raises(ValueError):
        interpret(SnmpSample("CPE-2", 0.0, 1, 3, 1, 0, 0, 0), cur, 20)


def test_profile_validation() -> None:
    with pytest.raises(ValueError):
        SnmpProfile(timeout_s=0)
    with pytest.raises(ValueError):
        SnmpProfile(retries=-1)
    with pytest.raises(ValueError):
        SnmpProfile(max_repetitions=0)
    assert SnmpProfile().deadline_s == 2 * 2.0 * 2 + 1.0


# --- the native transport and codec (v2c and v3 without pysnmp per request) ------------------------


@net
@pytest.mark.parametrize(
    ("auth", "priv", "native"),
    [("SHA", "AES", True), ("SHA-256", "AES", True), ("SHA-512", "AES", True), ("MD5", "DES", False)],
)
async def test_v3_protocols_native_or_pysnmp(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller, auth: str, priv: str, native: bool
) -> None:
    """AES-128 (or no privacy) with any HMAC runs on the native path; DES falls back to pysnmp. Both work."""
    agent = make_agent(
        community=None,
        v3_user=V3_USER,
        v3_auth_key=AUTH_KEY,
        v3_priv_key=PRIV_KEY,
        v3_auth_protocol=auth,
        v3_priv_protocol=priv,
    )
    node = v3_node(agent, auth_protocol=auth, priv_protocol=priv)
    assert node.snmp is not None
    assert (poller._native_usm(node.snmp) is not None) is native
    sample = await poller.poll(node)
    assert (sample.if_index, sample.oper_status) == (3, 1)
    values = await poller.get(node, [(1, 3, 6, 1, 2, 1, 1, 3, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)])
    assert [(oid, kind) for oid, kind, _ in values] == [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), "TimeTicks"),
        ((1, 3, 6, 1, 2, 1, 1, 5, 0), "OctetString"),
    ]
    assert values[1][2] == agent.name.encode()


@net
async def test_get_reports_types_and_missing_values(
    make_agent: Callable[..., SnmpdAgent], poller: SnmpPoller
) -> None:
    agent = make_agent()
    node = v2c_node(agent, uplink_if=3)
    values = await poller.get(node, [(1, 3, 6, 1, 2, 1, 1, 3, 0), (1, 3, 6, 1, 2, 1, 1, 99, 0), (1, 3, 6, 1, 9, 9)])
    assert [kind for _, kind, _ in values] == ["TimeTicks", "NoSuchObject", "NoSuchObject"]
    assert isinstance(values[0][2], int)


@net
async def test_v3_device_swapped_for_one_with_a_new_engine_id(
    make_agent: Callable[..., SnmpdAgent], snmpd: str, tmp_path: Path, poller: SnmpPoller
) -> None:
    """A new engine ID at the same address and port: the Report names it and the next poll succeeds at once
    (pysnmp would time out until its engine-ID cache expired, 300 s)."""
    old = v3_agent(make_agent)
    node = v3_node(old, uplink_if=3)
    await poller.poll(node)
    address = old.address
    old.close()
    with SnmpdAgent(
        address, port=PORT, community=None, v3_user=V3_USER, v3_auth_key=AUTH_KEY, v3_priv_key=PRIV_KEY,
        state_dir=tmp_path, snmpd=snmpd,
    ):
        assert (await poller.poll(node, FAST)).sys_uptime_cs < 500


class _FakeAgent(asyncio.DatagramProtocol):
    """Answers each v2c GET of the five poll OIDs with garbage, forgeries, then the real answer."""

    def __init__(self, spoofer: socket.socket) -> None:
        self.spoofer = spoofer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        from collectors.snmp import _ber, _ber_int, _ber_oid, _message_id

        rid = _message_id(data)
        oids = [
            (1, 3, 6, 1, 2, 1, 1, 3, 0),
            (1, 3, 6, 1, 2, 1, 2, 2, 1, 8, 3),
            (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 3),
            (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10, 3),
            (1, 3, 6, 1, 2, 1, 2, 2, 1, 14, 3),
        ]
        values = [_ber(0x43, b"\x10"), _ber_int(1), _ber(0x46, b"\x00\xff" * 4), _ber(0x46, b"\x07")]
        values.append(_ber(0x41, b"\x02"))
        varbinds = _ber(0x30, b"".join(_ber(0x30, _ber_oid(o) + v) for o, v in zip(oids, values, strict=True)))

        def message(community: bytes, request_id: int = rid) -> bytes:
            pdu = _ber(0xA2, _ber_int(request_id) + _ber_int(0) + _ber_int(0) + varbinds)
            return _ber(0x30, _ber_int(1) + _ber(0x04, community) + pdu)

        assert self.transport is not None
        good = message(COMMUNITY.encode())
        for bad in (b"", b"\x30", b"\x30\x82\xff\xff", good[:-3], good[:10], message(b"other-community")):
            self.transport.sendto(bad, addr)
        self.spoofer.sendto(good, addr)  # the right answer from the wrong address
        self.transport.sendto(message(COMMUNITY.encode(), rid + 1), addr)  # another request's id
        self.transport.sendto(good, addr)


@net
async def test_forged_and_malformed_v2c_answers_are_ignored(poller: SnmpPoller) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofer:
        spoofer.bind(("127.20.251.2", 0))
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _FakeAgent(spoofer), local_addr=("127.20.251.1", PORT)
        )
        try:
            node = Node(
                "CPE-F", NodeKind.CPE, address="127.20.251.1",
                snmp=SnmpSettings(version="2c", community=COMMUNITY, port=PORT, uplink_if=3),
            )
            sample = await poller.poll(node, FAST)
        finally:
            transport.close()
    assert (sample.sys_uptime_cs, sample.oper_status, sample.in_errors) == (16, 1, 2)
    assert (sample.in_octets, sample.out_octets) == (int.from_bytes(b"\x00\xff" * 4, "big"), 7)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20), st.integers(0, 2), st.integers(0, 39))
def test_ber_oid_round_trip(tail: list[int], first: int, second: int) -> None:
    from collectors.snmp import _ber_oid, _decode_oid, _tl

    oid = (first, second, *tail)
    encoded = _ber_oid(oid)
    tag, start, end = _tl(encoded, 0, len(encoded))
    assert (tag, end) == (0x06, len(encoded))
    assert _decode_oid(encoded[start:end]) == oid


@given(st.integers(-(2**63), 2**63 - 1))
def test_ber_int_is_minimal_and_round_trips(value: int) -> None:
    from collectors.snmp import _ber_int, _int_at

    encoded = _ber_int(value)
    assert _int_at(encoded, 0, len(encoded)) == (value, len(encoded))
    content = encoded[2:]
    assert len(content) == 1 or not (
        (content[0] == 0 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    )


@given(st.binary(max_size=200))
def test_garbage_datagrams_raise_only_decoding_errors(data: bytes) -> None:
    from collectors.snmp import _BerError, _message_id, _parse_v2c, _parse_v3, _Usm

    usm = _Usm(b"u", "sha1", 12, b"authpassword", b"privpassword")
    for parse in (_message_id, lambda d: _parse_v2c(d, b"public", {}), lambda d: _parse_v3(d, usm, {})):
        with contextlib.suppress(_BerError, IndexError, ValueError):
            parse(data)


def test_usm_key_localization_matches_rfc_3414_vectors() -> None:
    from collectors.snmp import _localized_key

    engine = bytes.fromhex("000000000000000000000002")  # RFC 3414 A.3: password "maplesyrup"
    assert _localized_key("md5", b"maplesyrup", engine).hex() == "526f5eed9fcce26f8964c2930787d82b"
    assert _localized_key("sha1", b"maplesyrup", engine).hex() == "6695febc9288e36282235fc7151f128497b38f3f"
