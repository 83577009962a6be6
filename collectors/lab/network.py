"""The lab's view of an inventory: pure functions, no I/O except reading the inventory file to locate lines.

* :func:`check_loopback` — the hard network rule: every polled address of a lab inventory is in
  ``127.0.0.0/8`` or ``::1``; anything else is refused, naming node, file line and field.
* :func:`addresses_behind` — the addresses a fault at a node silences: the node's own and every descendant's.
* :func:`nft_ruleset` / :func:`nft_set_script` — the nftables text for the lab table and for replacing the
  set of silenced addresses in one transaction.
* :data:`SCENARIOS` / :func:`pick_node` — named faults (``trunk-cut``, ``branch-cut``, ``cpe-power``,
  ``camera``, ``nvr``) and the deterministic choice of their node when none is given.
* :func:`parse_duration` — ``30s``, ``10m``, ``2h``, ``1h30m``, ``1.5s``, ``250ms`` (a bare number is seconds).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from collectors import netrule
from monitor.inventory import Inventory, NodeKind

__all__ = [
    "DEFAULT_SENTINEL",
    "DEFAULT_TABLE",
    "SCENARIOS",
    "LabInputError",
    "Scenario",
    "addresses_behind",
    "check_loopback",
    "format_duration",
    "nft_ruleset",
    "nft_set_script",
    "parse_duration",
    "pick_node",
    "require_loopback",
]

DEFAULT_TABLE = "slawatch_lab"
#: The address a collector pings to tell "my own view is broken" from "the network is down"; ``blind`` drops
#: pings to it. The same as the live collector's default (``monitor.live.LiveSettings.sentinels``).
DEFAULT_SENTINEL = "127.0.0.1"
_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class LabInputError(ValueError):
    """A lab request that cannot be carried out as given (unknown node, bad duration, non-loopback address)."""


# ------------------------------------------------------------------------------------------ addresses


def require_loopback(address: str, what: str) -> str:
    """The canonical form of ``address`` if it is in 127.0.0.0/8 or is ::1; :class:`LabInputError` otherwise."""
    try:
        return netrule.require_loopback(address, what)
    except ValueError as exc:
        raise LabInputError(str(exc)) from None


def _line_of(lines: list[str], node_id: str, address: str) -> int | None:
    """Best effort: the first line holding ``address`` at or after the first line naming ``node_id``."""
    id_re = re.compile(rf"(?<![A-Za-z0-9._-]){re.escape(node_id)}(?![A-Za-z0-9._-])")
    addr_re = re.compile(rf"(?<![0-9A-Fa-f:.]){re.escape(address)}(?![0-9A-Fa-f:.])")
    start = next((n for n, line in enumerate(lines) if id_re.search(line)), None)
    if start is None:
        return None
    return next((n + 1 for n in range(start, len(lines)) if addr_re.search(lines[n])), None)


def check_loopback(inv: Inventory, source: Path | None = None) -> list[str]:
    """One message per node whose address is outside loopback (empty: the inventory may be used by the lab).

    With ``source`` (the inventory file), messages read ``file:line: node 'X' field 'address': ...``.
    """
    bad = [n for n in inv.nodes() if n.address is not None and not ipaddress.ip_address(n.address).is_loopback]
    if not bad:
        return []
    lines: list[str] = []
    if source is not None:
        try:
            lines = source.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
    out = []
    for node in bad:
        assert node.address is not None
        line = _line_of(lines, node.id, node.address) if lines else None
        where = f"{source}:{line}: " if line else (f"{source}: " if source else "")
        out.append(
            f"{where}node {node.id!r} field 'address': {node.address} is not a loopback address "
            "(the lab only touches 127.0.0.0/8 and ::1)"
        )
    return out


def addresses_behind(inv: Inventory, node_id: str) -> list[str]:
    """Addresses of ``node_id`` and of every descendant that has one, in inventory (depth-first) order."""
    if node_id not in inv:
        raise LabInputError(f"node {node_id!r} is not in the lab inventory")
    out: list[str] = []
    stack = [node_id]
    while stack:
        nid = stack.pop()
        address = inv[nid].address
        if address is not None:
            out.append(address)
        stack.extend(reversed(inv.children.get(nid, [])))
    return out


# ----------------------------------------------------------------------------------------------- nft


def check_table_name(table: str) -> str:
    if not _TABLE_RE.match(table):
        raise LabInputError(f"nft table name {table!r} is not 1-64 letters, digits or '_' starting with a letter")
    return table


def _split_families(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    v4: set[str] = set()
    v6: set[str] = set()
    for a in addresses:
        ip = ipaddress.ip_address(require_loopback(a, "nft element"))
        (v4 if ip.version == 4 else v6).add(str(ip))
    key = lambda a: ipaddress.ip_address(a)  # noqa: E731
    return sorted(v4, key=key), sorted(v6, key=key)


def _elements(addresses: list[str]) -> str:
    return f" elements = {{ {', '.join(addresses)} }};" if addresses else ""


def nft_ruleset(table: str = DEFAULT_TABLE, failed: Iterable[str] = (), blind: Iterable[str] = ()) -> str:
    """The lab table, (re)created from scratch in one transaction, with ``failed`` and ``blind`` silenced.

    Sets ``failed``/``failed6``: echo requests *and* UDP (SNMP) arriving on ``lo`` for them are dropped without
    an answer, so pings and SNMP GETs time out as for a dead device. Sets ``blind``/``blind6`` (the collector's
    sentinels): echo requests only, so a sentinel such as 127.0.0.1 stops answering pings while local UDP
    services on it keep working.
    """
    check_table_name(table)
    f4, f6 = _split_families(failed)
    b4, b6 = _split_families(blind)
    return f"""table inet {table} {{}}
delete table inet {table}
table inet {table} {{
  set failed {{ type ipv4_addr;{_elements(f4)} }}
  set failed6 {{ type ipv6_addr;{_elements(f6)} }}
  set blind {{ type ipv4_addr;{_elements(b4)} }}
  set blind6 {{ type ipv6_addr;{_elements(b6)} }}
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname "lo" ip daddr @failed icmp type echo-request drop
    iifname "lo" ip daddr @failed meta l4proto udp drop
    iifname "lo" ip6 daddr @failed6 icmpv6 type echo-request drop
    iifname "lo" ip6 daddr @failed6 meta l4proto udp drop
    iifname "lo" ip daddr @blind icmp type echo-request drop
    iifname "lo" ip6 daddr @blind6 icmpv6 type echo-request drop
  }}
}}
"""


def nft_set_script(table: str, failed: Iterable[str], blind: Iterable[str] = ()) -> str:
    """Replace the silenced addresses with exactly these, as one atomic ``nft -f`` transaction."""
    check_table_name(table)
    lines = []
    for name, addresses in (("failed", failed), ("blind", blind)):
        v4, v6 = _split_families(addresses)
        for set_name, elements in ((name, v4), (f"{name}6", v6)):
            lines.append(f"flush set inet {table} {set_name}")
            if elements:
                lines.append(f"add element inet {table} {set_name} {{ {', '.join(elements)} }}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ durations

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``10m``, ``2h``, ``1h30m``, ``1.5s``, ``250ms`` or a bare number of seconds."""
    t = text.strip().lower()
    try:
        seconds = float(t)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _DURATION_RE.finditer(t):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(t) or not t:
            raise LabInputError(f"{text!r} is not a duration such as 30s, 10m, 2h or 1h30m") from None
    if not 0 < seconds < 366 * 86400:
        raise LabInputError(f"duration {text!r} must be more than 0 and less than a year")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, s = divmod(round(seconds), 60)
    h, m = divmod(minutes, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")


# ------------------------------------------------------------------------------------------ scenarios


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named fault: which kind of node it hits and whether it is a power loss (agent reboots on heal)."""

    name: str
    kind: NodeKind
    power: bool
    help: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "trunk-cut",
            NodeKind.AREA,
            False,
            "the trunk to a township (area) is cut: every address in the township goes silent",
        ),
        Scenario(
            "branch-cut",
            NodeKind.BRANCH,
            False,
            "a fibre branch is cut: every CPE, camera and NVR on the branch goes silent",
        ),
        Scenario(
            "cpe-power",
            NodeKind.CPE,
            True,
            "a CPE loses power: it and everything behind it go silent; when it heals its SNMP agent "
            "comes back rebooted (sysUpTime near 0, counters reset)",
        ),
        Scenario("camera", NodeKind.CAMERA, False, "one camera goes silent"),
        Scenario("nvr", NodeKind.NVR, False, "one NVR goes silent"),
    )
}


def pick_node(inv: Inventory, scenario: Scenario, with_agent: Collection[str] = ()) -> str:
    """The node a scenario hits when none is given: deterministic, from inventory order.

    The first node of the scenario's kind that has an address at or under it; for ``cpe-power`` the first
    CPE among ``with_agent`` (CPEs with a running SNMP agent) if there is one, so the reboot is visible.
    """
    candidates = [n.id for n in inv.nodes() if n.kind is scenario.kind and addresses_behind(inv, n.id)]
    if scenario.power:
        preferred = [c for c in candidates if c in with_agent]
        candidates = preferred or candidates
    if not candidates:
        raise LabInputError(f"scenario {scenario.name}: the inventory has no {scenario.kind.value} with an address")
    return candidates[0]


def check_scenario_node(inv: Inventory, scenario: Scenario, node_id: str) -> str:
    if node_id not in inv:
        raise LabInputError(f"node {node_id!r} is not in the lab inventory")
    kind = inv[node_id].kind
    if kind is not scenario.kind:
        raise LabInputError(
            f"scenario {scenario.name} hits a {scenario.kind.value}; {node_id!r} is a {kind.value}"
        )
    return node_id
