"""The network tree (SPEC §1): nodes, their kinds, channels and active intervals.

A :class:`Node` is a frozen value that validates itself; an :class:`Inventory` is an ordered, validated
collection of nodes with the topology queries the engine needs (path to the root, lowest common ancestor,
channels at or under a node). The root is implicit and never a node: a node whose ``parent`` is ``None``
is a child of the root.

Inventory order (the order nodes were given in) is significant: channels that go offline in one instant
are taken in that order (SPEC §3).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property

from monitor.errors import InventoryError, shown

NODE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class NodeKind(StrEnum):
    AREA = "area"
    BRANCH = "branch"
    POWER = "power"
    SWITCH = "switch"
    SITE = "site"
    CPE = "cpe"
    CAMERA = "camera"
    NVR = "nvr"


def validate_node_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid node id (1–64 of letters, digits, ``.``, ``_``, ``-``)."""
    if not NODE_ID_RE.match(value):
        raise ValueError(f"{what} {shown(value)} is not a node id (1-64 letters, digits, '.', '_' or '-')")
    return value


def _check_loopback_or_namespace(address: str) -> str:
    """Addresses are IPv4/IPv6 literals; any address is storable, the network rule is enforced by pollers."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"address {address!r} is not an IPv4 or IPv6 address") from None
    return address


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    """How to reach a CPE's SNMP agent. Secrets are never logged or returned by the API (``__repr__`` hides them).

    ``version`` is ``"2c"`` or ``"3"``; for v3, ``user`` is required and ``auth_protocol``/``priv_protocol``
    are pysnmp protocol names (``"SHA"``, ``"MD5"``, ``"AES"``, ``"DES"``...). ``port`` is the UDP port
    (161 by default). ``uplink_if`` is the ifIndex of the uplink, or ``None`` to find it by ifName/ifDescr.
    """

    version: str = "2c"
    community: str = field(default="public", repr=False)
    user: str | None = None
    auth_protocol: str | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: str | None = None
    priv_key: str | None = field(default=None, repr=False)
    port: int = 161
    uplink_if: int | None = None

    def __post_init__(self) -> None:
        if self.version not in ("2c", "3"):
            raise ValueError(f"snmp version {self.version!r} is not '2c' or '3'")
        if self.version == "3" and not self.user:
            raise ValueError("snmp version 3 needs a user")
        if not 0 < self.port < 65536:
            raise ValueError(f"snmp port {self.port} is not a UDP port")


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the network tree.

    ``channels`` is the number of video channels (路) this node itself carries: 1 for a camera unless it says
    otherwise, stated for an NVR, 0 for everything else. ``monthly_fee`` (CNY, tax included) and
    ``bandwidth_mbps`` are a circuit's tariff line and belong on ``cpe`` nodes. ``in_county`` decides the
    2 h / 8 h on-site-and-restore limit (``None``: not stated, taken as inside). ``commissioned`` and
    ``decommissioned`` bound the node's own active interval ``[commissioned, decommissioned)``; ``None``
    is an open end.
    """

    id: str
    kind: NodeKind
    parent: str | None = None
    name: str = ""
    address: str | None = None
    channels: int = 0
    bandwidth_mbps: int | None = None
    monthly_fee: Decimal | None = None
    in_county: bool | None = None
    commissioned: datetime | None = None
    decommissioned: datetime | None = None
    snmp: SnmpSettings | None = None

    def __post_init__(self) -> None:
        validate_node_id(self.id)
        if not isinstance(self.kind, NodeKind):
            raise ValueError(f"kind {self.kind!r} is not a node kind")
        if self.parent is not None:
            validate_node_id(self.parent, "parent")
            if self.parent == self.id:
                raise ValueError(f"node {self.id!r} is its own parent")
        if self.address is not None:
            _check_loopback_or_namespace(self.address)
        if self.channels < 0:
            raise ValueError(f"channels {self.channels} is negative")
        if self.kind not in (NodeKind.CAMERA, NodeKind.NVR) and self.channels:
            raise ValueError(f"a {self.kind} node carries no channels (got {self.channels})")
        if self.monthly_fee is not None and self.monthly_fee < 0:
            raise ValueError(f"monthly_fee {self.monthly_fee} is negative")
        if self.bandwidth_mbps is not None and self.bandwidth_mbps <= 0:
            raise ValueError(f"bandwidth_mbps {self.bandwidth_mbps} is not positive")
        for name in ("commissioned", "decommissioned"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} {value.isoformat()} has no time zone")
        if (
            self.commissioned is not None
            and self.decommissioned is not None
            and self.decommissioned < self.commissioned
        ):
            raise ValueError("decommissioned is before commissioned")
        if self.snmp is not None and self.kind is not NodeKind.CPE:
            raise ValueError(f"snmp settings belong on a cpe, not a {self.kind}")

    @property
    def polled(self) -> bool:
        """A node is polled when it has an address."""
        return self.address is not None

    def active_at(self, t: datetime) -> bool:
        return (self.commissioned is None or self.commissioned <= t) and (
            self.decommissioned is None or t < self.decommissioned
        )


@dataclass(frozen=True, slots=True)
class Channel:
    """One video channel (路): the ``index``-th (0-based) channel of ``node``. ``label`` names it in reports."""

    node: str
    index: int
    position: int  # inventory order across all channels

    @property
    def label(self) -> str:
        return self.node if self.index == 0 else f"{self.node}#{self.index + 1}"


class Inventory(Mapping[str, Node]):
    """A validated, ordered network tree. Raises :class:`InventoryError` on duplicates, missing parents, cycles."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        ordered: dict[str, Node] = {}
        for node in nodes:
            if node.id in ordered:
                raise InventoryError(f"duplicate id {node.id!r}")
            ordered[node.id] = node
        for node in ordered.values():
            if node.parent is not None and node.parent not in ordered:
                raise InventoryError(f"node {node.id!r}: parent {node.parent!r} does not exist")
        self._nodes = ordered
        self._paths: dict[str, tuple[str, ...]] = {}
        for node_id in ordered:
            self._path_of(node_id)

    def _path_of(self, node_id: str) -> tuple[str, ...]:
        if node_id in self._paths:
            return self._paths[node_id]
        chain: list[str] = []
        seen: set[str] = set()
        current: str | None = node_id
        while current is not None:
            if current in self._paths:
                base = self._paths[current]
                break
            if current in seen:
                raise InventoryError(f"node {node_id!r}: cycle through {current!r}")
            seen.add(current)
            chain.append(current)
            current = self._nodes[current].parent
        else:
            base = ()
        path = base
        for nid in reversed(chain):
            path = (*path, nid)
            self._paths[nid] = path
        return self._paths[node_id]

    # Mapping protocol
    def __getitem__(self, key: str) -> Node:
        return self._nodes[key]

    def __contains__(self, key: object) -> bool:  # Mapping's own goes through __getitem__ and KeyError: 20x slower
        return key in self._nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    def path(self, node_id: str) -> tuple[str, ...]:
        """Node ids from the child of the root down to ``node_id`` itself."""
        return self._paths[node_id]

    def depth(self, node_id: str) -> int:
        """1 for a child of the root."""
        return len(self._paths[node_id])

    def is_at_or_under(self, node_id: str, ancestor: str) -> bool:
        path = self._paths[node_id]
        depth = len(self._paths[ancestor])
        return len(path) >= depth and path[depth - 1] == ancestor

    def lca(self, a: str, b: str) -> str | None:
        """Lowest common ancestor of two nodes (a node is its own ancestor); ``None`` is the root."""
        found: str | None = None
        for x, y in zip(self._paths[a], self._paths[b], strict=False):
            if x != y:
                break
            found = x
        return found

    def area_of(self, node_id: str) -> str:
        """The child of the root above (or at) ``node_id``."""
        return self._paths[node_id][0]

    def circuit_of(self, node_id: str) -> str | None:
        """The nearest ``cpe`` at or above ``node_id`` (the circuit a channel rides on)."""
        for nid in reversed(self._paths[node_id]):
            if self._nodes[nid].kind is NodeKind.CPE:
                return nid
        return None

    @cached_property
    def children(self) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for node in self._nodes.values():
            out.setdefault(node.parent, []).append(node.id)
        return out

    @cached_property
    def channels(self) -> tuple[Channel, ...]:
        """Every channel in inventory order."""
        out: list[Channel] = []
        for node in self._nodes.values():
            for i in range(node.channels):
                out.append(Channel(node.id, i, len(out)))
        return tuple(out)

    @cached_property
    def channels_under(self) -> dict[str, tuple[int, ...]]:
        """Channel positions at or under each node."""
        acc: dict[str, list[int]] = {nid: [] for nid in self._nodes}
        for ch in self.channels:
            for nid in self._paths[ch.node]:
                acc[nid].append(ch.position)
        return {nid: tuple(v) for nid, v in acc.items()}

    def subset(self, scopes: Iterable[str]) -> frozenset[int]:
        """Channel positions at or under any of ``scopes``."""
        out: set[int] = set()
        for s in scopes:
            if s not in self._nodes:
                raise InventoryError(f"scope {s!r} is not a node of the inventory")
            out.update(self.channels_under[s])
        return frozenset(out)
