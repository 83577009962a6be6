"""``slawatch status``: the live state of the network for a terminal, read from the database.

Works from any process (the live service need not be this one): it reads the live collector's heartbeat,
each node's latest stored state, and each contract's stored incident projection. A channel's state follows
SPEC §2 by :func:`monitor.channels.channel_state`: the topmost node on its path that is not up decides.

Use :func:`load_status` (async, over a :class:`~monitor.service.Service`) then :func:`status_text`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.channels import channel_state
from monitor.events import NodeState, format_time
from monitor.inventory import Inventory
from monitor.service import Service
from monitor.storage.heartbeats import Heartbeat, latest_states, read_heartbeat

__all__ = ["LEVEL_NAMES", "LiveStatus", "channel_states", "load_status", "status_text"]

LEVEL_NAMES = {1: "level 1", 2: "level 2", 3: "level 3", 0: "fault"}


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """Everything ``slawatch status`` shows, as of ``now``."""

    now: datetime
    heartbeat: Heartbeat | None
    stale_after_s: float
    nodes: dict[str, int]  # polled nodes by state
    channels: dict[str, int]  # channels by state: online, offline, unknown, inactive
    unknown: list[tuple[str, datetime | None]]  # unknown polled nodes and since when
    down: list[tuple[str, datetime | None]]
    incidents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # contract -> open incidents

    @property
    def collector(self) -> str:
        """``running``, ``stalled`` (heartbeat older than ``stale_after_s``), ``stopped`` or ``never ran``."""
        beat = self.heartbeat
        if beat is None:
            return "never ran"
        if not beat.running:
            return "stopped"
        age = (self.now - beat.at).total_seconds()
        return "running" if age <= self.stale_after_s else "stalled"


def channel_states(inventory: Inventory, states: Mapping[str, NodeState], now: datetime) -> Counter[str]:
    """Channels by state at ``now`` by SPEC §2's rule (:func:`monitor.channels.channel_state`)."""
    out: Counter[str] = Counter()
    for channel in inventory.channels:
        out[channel_state(inventory, channel.node, states, now)[0].value] += 1
    return out


async def load_status(
    service: Service, *, now: datetime | None = None, heartbeat_name: str = "live", stale_after_s: float = 30.0
) -> LiveStatus:
    """Read the heartbeat, the latest node states and the open incidents of every contract."""
    now = now or service.clock()
    inventory = await service.inventory()
    latest = await latest_states(service.db)
    states = {n: s for n, (s, _) in latest.items() if n in inventory}
    beat = await read_heartbeat(service.db, heartbeat_name)
    polled = [n.id for n in inventory.nodes() if n.polled and n.active_at(now)]
    nodes: Counter[str] = Counter()
    unknown: list[tuple[str, datetime | None]] = []
    down: list[tuple[str, datetime | None]] = []
    for node_id in polled:
        state = states.get(node_id, NodeState.UP)
        nodes[state.value] += 1
        since = latest[node_id][1] if node_id in latest else None
        if state is NodeState.UNKNOWN:
            unknown.append((node_id, since))
        elif state is NodeState.DOWN:
            down.append((node_id, since))
    incidents: dict[str, list[dict[str, Any]]] = {}
    for contract in await service.contracts():
        rows = await service.repo.load_incidents(contract.id)
        incidents[contract.id] = [r for r in rows if r["open"]]
    return LiveStatus(
        now=now,
        heartbeat=beat,
        stale_after_s=stale_after_s,
        nodes={s.value: nodes[s.value] for s in NodeState},
        channels=dict(channel_states(inventory, states, now)),
        unknown=unknown,
        down=down,
        incidents=incidents,
    )


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "since before any event"
    seconds = int(max(0.0, (now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} d ago"


def status_text(status: LiveStatus, *, limit: int = 20) -> str:
    """The status as plain text lines (no colour, fits 100 columns). ``limit`` caps each listing."""
    now = status.now
    lines: list[str] = [f"slawatch status at {format_time(now.replace(microsecond=0))}"]
    beat = status.heartbeat
    collector = status.collector
    if beat is None:
        lines.append("collector: never ran (no heartbeat): every state below comes from stored events")
    else:
        when = format_time(beat.at.replace(microsecond=0))
        last = f"stopped {when}" if collector == "stopped" else f"last cycle {when}"
        lines.append(
            f"collector: {collector}, {last} ({_ago(now, beat.at)}), "
            f"started {format_time(beat.started_at.replace(microsecond=0))}"
        )
        if collector in ("stopped", "stalled"):
            lines.append("  the time since the last cycle will be blind (unknown), not an outage")
    n = status.nodes
    lines.append(
        f"polled nodes: {sum(n.values())}: up {n.get('up', 0)}, down {n.get('down', 0)}, unknown {n.get('unknown', 0)}"
    )
    c = status.channels
    lines.append(
        f"channels: {sum(c.values())}: online {c.get('online', 0)}, offline {c.get('offline', 0)}, "
        f"unknown {c.get('unknown', 0)}, inactive {c.get('inactive', 0)}"
    )
    for contract_id, incidents in status.incidents.items():
        by_level = Counter(int(i["level"]) for i in incidents)
        counts = ", ".join(f"{LEVEL_NAMES[lvl]} {by_level.get(lvl, 0)}" for lvl in (1, 2, 3, 0))
        lines.append(f"open incidents [{contract_id}]: {len(incidents)} ({counts})")
        ordered = sorted(incidents, key=lambda i: (int(i["level"]) or 9, i["start"]))
        for i in ordered[:limit]:
            ack = "acked" if i.get("ack") else "not acked"
            lines.append(
                f"  {LEVEL_NAMES[int(i['level'])]:<8} {i['id']}  scope {i['scope']}, "
                f"{i['peak']} channels at peak, started {_ago(now, i['start'])}, {ack}"
            )
        if len(ordered) > limit:
            lines.append(f"  ... and {len(ordered) - limit} more")
    for label, items in (("down", status.down), ("unknown", status.unknown)):
        if not items:
            continue
        lines.append(f"nodes {label}: {len(items)}")
        for node_id, since in items[:limit]:
            lines.append(f"  {node_id}  {label} {_ago(now, since)}")
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines) + "\n"
