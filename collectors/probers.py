"""One contract for every prober, and a registry from kind to prober (like blackbox_exporter's ``prober/``).

A :class:`Prober` probes a batch of inventory nodes and answers one :class:`ProbeResult` per node id::

    async with create_prober("icmp", ProbeOptions(icmp_count=1)) as prober:
        results = await prober.probe(nodes)

* ``icmp`` (:class:`IcmpProber`) wraps the bulk :class:`~collectors.icmp.Pinger`: ``ok`` when at least one
  echo came back, with the mean round-trip time and the loss. Up and down come from here.
* ``snmp`` (:class:`SnmpProber`) wraps the :class:`~collectors.snmp.SnmpPoller` and the pure
  :func:`~collectors.snmp.interpret` step: ``ok`` when the agent answered, with the sample and the
  :class:`~collectors.snmp.SnmpFacts` against the previous sample of the same node.

A node that may not be probed (no address, no SNMP settings, an address outside the allowed networks) is
not probed at all: its result is ``refused`` with the reason in ``error``; nothing is sent for it, and the
other nodes of the batch are probed as usual.

:func:`snmp_node_facts` is the pure step from an SNMP result (and the node's ICMP outcome) to the facts
recorded on the node's timeline: an uplink ``ifOperStatus`` change, a reboot, SNMP becoming unavailable
while ICMP still answers, SNMP available again. Facts never make a node down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from collectors.errors import AuthFailure, BadData, CollectorError, ProbeTimeout, Unreachable
from collectors.icmp import Pinger
from collectors.netrule import LOOPBACK, parse_networks, require_inside
from collectors.snmp import SnmpFacts, SnmpPoller, SnmpProfile, SnmpSample, interpret
from monitor.inventory import Node

__all__ = [
    "PROBERS",
    "FactKind",
    "IcmpProber",
    "NodeFact",
    "ProbeOptions",
    "ProbeResult",
    "Prober",
    "SnmpProber",
    "create_prober",
    "register",
    "snmp_node_facts",
]

OPER_STATUS_NAMES = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Everything a prober may need; each prober takes its own fields. Times in seconds."""

    icmp_count: int = 3
    icmp_spacing_s: float = 0.2
    icmp_timeout_s: float = 1.0
    rate_pps: float = 2000.0
    allowed_networks: tuple[str, ...] = LOOPBACK
    snmp_timeout_s: float = 2.0
    snmp_retries: int = 1
    snmp_max_in_flight: int = 100


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe of one node. ``error`` says why it is not ok (``timeout``, ``auth``, ``bad-data``,
    ``unreachable``, or the refusal); ``refused``: nothing was sent (the node may not be probed)."""

    node: str
    kind: str
    ok: bool
    rtt_ms: float | None = None
    loss: float | None = None
    error: str | None = None
    refused: bool = False
    sample: SnmpSample | None = None
    facts: SnmpFacts | None = None


@runtime_checkable
class Prober(Protocol):
    """Probes batches of nodes of one kind. ``open`` before the first batch, ``close`` after the last."""

    kind: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def probe(self, nodes: Sequence[Node]) -> dict[str, ProbeResult]: ...


ProberFactory = Callable[[ProbeOptions], Prober]
PROBERS: dict[str, ProberFactory] = {}


def register(kind: str) -> Callable[[ProberFactory], ProberFactory]:
    """Class decorator: make ``kind`` create this prober."""

    def add(factory: ProberFactory) -> ProberFactory:
        PROBERS[kind] = factory
        return factory

    return add


def create_prober(kind: str, options: ProbeOptions | None = None) -> Prober:
    try:
        factory = PROBERS[kind]
    except KeyError:
        raise ValueError(f"no prober for kind {kind!r} (known: {', '.join(sorted(PROBERS))})") from None
    return factory(options or ProbeOptions())


class _Lifecycle:
    async def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


@register("icmp")
class IcmpProber(_Lifecycle):
    """ICMP echo to every node's address, one :meth:`Pinger.ping_many` per batch."""

    kind = "icmp"

    def __init__(self, options: ProbeOptions, *, pinger: Pinger | None = None) -> None:
        self.options = options
        self.pinger = pinger or Pinger(rate=options.rate_pps, allowed_networks=options.allowed_networks)
        self._own = pinger is None

    async def open(self) -> None:
        if self._own:
            await self.pinger.open()

    async def close(self) -> None:
        if self._own:
            await self.pinger.close()

    def check(self, node: Node) -> str:
        """The address to ping; ``ValueError`` (a clear reason) when the node may not be pinged."""
        if node.address is None:
            raise ValueError(f"node {node.id!r} has no address")
        try:
            return self.pinger.check_allowed(node.address)
        except ValueError as exc:
            raise ValueError(f"node {node.id!r}: {exc}") from None

    async def probe(self, nodes: Sequence[Node]) -> dict[str, ProbeResult]:
        out: dict[str, ProbeResult] = {}
        by_address: dict[str, list[str]] = {}
        for node in nodes:
            try:
                address = self.check(node)
            except ValueError as exc:
                out[node.id] = ProbeResult(node.id, self.kind, False, error=str(exc), refused=True)
                continue
            by_address.setdefault(address, []).append(node.id)
        if by_address:
            o = self.options
            results = await self.pinger.ping_many(
                list(by_address), count=o.icmp_count, interval=o.icmp_spacing_s, timeout=o.icmp_timeout_s
            )
            for address, ids in by_address.items():
                r = results[address]
                for node_id in ids:
                    out[node_id] = ProbeResult(
                        node_id,
                        self.kind,
                        r.ok,
                        rtt_ms=r.avg_rtt_ms,
                        loss=r.loss,
                        error=None if r.ok else "timeout",
                    )
        return out


@register("snmp")
class SnmpProber(_Lifecycle):
    """One SNMP GET per node through one shared :class:`SnmpPoller`; keeps each node's previous sample."""

    kind = "snmp"

    def __init__(self, options: ProbeOptions, *, poller: SnmpPoller | None = None) -> None:
        self.options = options
        self.poller = poller or SnmpPoller(
            SnmpProfile(timeout_s=options.snmp_timeout_s, retries=options.snmp_retries),
            max_in_flight=options.snmp_max_in_flight,
            allowed_networks=options.allowed_networks,
        )
        self.allowed = parse_networks(options.allowed_networks)
        self.previous: dict[str, SnmpSample] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self.poller.close()

    def check(self, node: Node) -> None:
        if node.address is None or node.snmp is None:
            raise ValueError(f"node {node.id!r} has no address or no SNMP settings")
        require_inside(node.address, self.allowed, f"node {node.id!r}: refusing to poll")

    async def prepare(self, nodes: Sequence[Node]) -> int:
        """Register the targets up front (see :meth:`SnmpPoller.prepare`); refused nodes are skipped."""
        ok = []
        for node in nodes:
            try:
                self.check(node)
            except ValueError:
                continue
            ok.append(node)
        return await self.poller.prepare(ok)

    async def _one(self, node: Node) -> ProbeResult:
        try:
            self.check(node)
        except ValueError as exc:
            return ProbeResult(node.id, self.kind, False, error=str(exc), refused=True)
        try:
            sample = await self.poller.poll(node)
        except ProbeTimeout:
            return ProbeResult(node.id, self.kind, False, error="timeout")
        except AuthFailure:
            return ProbeResult(node.id, self.kind, False, error="auth")
        except BadData as exc:
            return ProbeResult(node.id, self.kind, False, error=f"bad-data: {exc}")
        except Unreachable:
            return ProbeResult(node.id, self.kind, False, error="unreachable")
        except CollectorError as exc:
            return ProbeResult(node.id, self.kind, False, error=type(exc).__name__)
        facts = interpret(self.previous.get(node.id), sample, node.bandwidth_mbps)
        self.previous[node.id] = sample
        return ProbeResult(node.id, self.kind, True, sample=sample, facts=facts)

    async def probe(self, nodes: Sequence[Node]) -> dict[str, ProbeResult]:
        results = await asyncio.gather(*(self._one(n) for n in nodes))
        return {r.node: r for r in results}


# ---------------------------------------------------------------------- pure: SNMP facts


class FactKind(StrEnum):
    OPER_STATUS = "oper_status"  # the uplink's ifOperStatus changed (or is not up at the first sample)
    REBOOT = "reboot"  # sysUpTime restarted
    SNMP_UNAVAILABLE = "snmp_unavailable"  # the agent stopped answering while ICMP answers
    SNMP_AVAILABLE = "snmp_available"  # the agent answers again


@dataclass(frozen=True, slots=True)
class NodeFact:
    """Something observed on a node that is not an outage. ``detail`` is for people (never a secret)."""

    at: datetime
    node: str
    kind: FactKind
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "node": self.node, "kind": self.kind.value, "detail": self.detail}


def _oper(status: int) -> str:
    return f"{OPER_STATUS_NAMES.get(status, '?')}({status})"


def snmp_node_facts(
    at: datetime, result: ProbeResult, available: bool | None, icmp_ok: bool | None
) -> tuple[list[NodeFact], bool | None]:
    """The facts one SNMP result adds, and the node's SNMP availability afterwards (None: not known).

    ``available`` is the availability before; ``icmp_ok`` the node's latest ICMP outcome. An agent that does
    not answer while ICMP answers is *SNMP unavailable* (once, until it answers again); when ICMP does not
    answer either, the silence says nothing more (the node's state comes from ICMP) and availability stays.
    """
    node = result.node
    facts: list[NodeFact] = []
    if result.refused:
        return facts, available
    if result.ok:
        if available is False:
            facts.append(NodeFact(at, node, FactKind.SNMP_AVAILABLE, "SNMP agent answers again"))
        f = result.facts
        if f is not None:
            if f.rebooted:
                facts.append(NodeFact(at, node, FactKind.REBOOT, "sysUpTime restarted: the device rebooted"))
            if f.oper_changed is not None:
                before, after = f.oper_changed
                facts.append(
                    NodeFact(at, node, FactKind.OPER_STATUS, f"uplink ifOperStatus {_oper(before)} -> {_oper(after)}")
                )
            elif available is None and f.oper_status != 1:
                facts.append(NodeFact(at, node, FactKind.OPER_STATUS, f"uplink ifOperStatus {_oper(f.oper_status)}"))
        return facts, True
    if icmp_ok is True:
        if available is not False:
            facts.append(
                NodeFact(at, node, FactKind.SNMP_UNAVAILABLE, f"no SNMP answer ({result.error}) while ICMP answers")
            )
        return facts, False
    return facts, available
