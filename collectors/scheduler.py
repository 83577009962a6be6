"""Pure polling plan: which nodes to probe now, by kind (``icmp``, ``snmp``). No I/O, no clock of its own.

The live loop asks :meth:`Scheduler.plan` at every tick with the time, the inventory and the nodes' confirmed
states, probes what it returns, and reports each probe back with :meth:`Scheduler.record`. Rules:

* **Per-kind intervals.** Every node with an address is an ``icmp`` target; a node with SNMP settings is
  also an ``snmp`` target. ICMP every ``icmp_interval_s`` (60 s), SNMP every ``snmp_interval_s`` (300 s).
* **Faster while not up.** A node whose last ICMP probe failed (suspect), or whose confirmed state is not
  ``up`` (down, or unknown and waiting for ``up_after`` good polls), is probed every ``suspect_interval_s``.
* **Spread.** Each (kind, node) has a fixed phase ``offset = blake2b64(kind:node) / 2^64 * interval``: its
  slots are the times ``offset + k * interval`` (on the Unix epoch), so start times are spread over the
  interval, deterministically, and survive restarts. A target is due when it has not been probed since its
  latest slot (and not within half an interval, so switching interval never probes twice in a row); a
  target never probed is due at its first slot after the scheduler's start.
* **Behind a not-up parent.** A node is *held* (not probed, any kind) when one of its polled ancestors
  blocks: its last ICMP probe failed, or, not probed yet, its confirmed state is ``down``. The plan names
  the topmost such ancestor (the one its channels are attributed to). A node that stops being held is due
  at once (the parent is back: see its children now); the plan names it as *released*. A held node is not
  due, so the live loop never counts it blind for want of results (SPEC R2).
* **Escalation.** When a node's probe fails, its polled ancestors not probed since are due at once, so that
  a dead CPE is seen before its cameras' next probe (their channels go to the CPE, not to each camera).
* **Global rate limit.** A token bucket of ``rate_pps`` packets/s (burst: one second's worth), an ICMP
  probe costing ``icmp_cost`` packets (the ping count) and an SNMP probe ``snmp_cost``. Due targets are taken
  released first, then escalated, then the most overdue (oldest slot); what does not fit is *deferred*
  and stays due.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from monitor.events import NodeState
from monitor.inventory import Inventory

__all__ = ["ICMP", "KINDS", "SNMP", "Plan", "ScheduleSettings", "Scheduler", "phase"]

ICMP = "icmp"
SNMP = "snmp"
KINDS = (ICMP, SNMP)


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """Intervals in seconds, rate in packets per second, costs in packets per probe."""

    icmp_interval_s: float = 60.0
    snmp_interval_s: float = 300.0
    suspect_interval_s: float = 15.0
    rate_pps: float = 2000.0
    icmp_cost: int = 3
    snmp_cost: int = 1

    def __post_init__(self) -> None:
        for name in ("icmp_interval_s", "snmp_interval_s", "suspect_interval_s", "rate_pps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.icmp_cost < 1 or self.snmp_cost < 1:
            raise ValueError("probe costs must be at least 1 packet")

    def interval(self, kind: str) -> float:
        return self.icmp_interval_s if kind == ICMP else self.snmp_interval_s

    def cost(self, kind: str) -> int:
        return self.icmp_cost if kind == ICMP else self.snmp_cost


def phase(kind: str, node: str, interval: float) -> float:
    """The fixed offset of a target's slots inside ``interval`` (seconds), from a stable hash of its id."""
    digest = hashlib.blake2b(f"{kind}:{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


@dataclass(frozen=True, slots=True)
class Plan:
    """What to probe at ``at``. ``due[kind]`` in the order to probe; ``held`` node -> blocking ancestor;
    ``deferred[kind]``: due but over the rate budget (due again at the next plan); ``released``: nodes held
    at the previous plan and not any more (due again from now: SPEC R2), in inventory order."""

    at: datetime
    due: Mapping[str, tuple[str, ...]]
    held: Mapping[str, str] = field(default_factory=dict)
    deferred: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    released: tuple[str, ...] = ()

    def nodes(self, kind: str) -> tuple[str, ...]:
        return self.due.get(kind, ())


class Scheduler:
    """Plans probes over time; remembers when each target was last probed and each node's last ICMP outcome.

    ``start`` is when the scheduler began (targets never probed wait for their first slot after it).
    """

    def __init__(self, settings: ScheduleSettings, *, start: datetime) -> None:
        self.settings = settings
        self.start = start
        self.last: dict[tuple[str, str], datetime] = {}  # (kind, node) -> last probe time
        self.outcome: dict[str, tuple[bool, datetime]] = {}  # node -> (last ICMP ok?, when)
        self._held: set[str] = set()
        self._burst = max(settings.rate_pps, float(max(settings.icmp_cost, settings.snmp_cost)))
        self._tokens = self._burst
        self._refilled = start

    # ------------------------------------------------------------------ feedback
    def record(self, kind: str, node: str, at: datetime, ok: bool | None = None) -> None:
        """A probe of ``node`` was made at ``at``; ``ok`` is the ICMP outcome (None: not to be believed,
        e.g. in a blind cycle: the time counts, the outcome does not)."""
        previous = self.last.get((kind, node))
        if previous is None or at >= previous:
            self.last[(kind, node)] = at
        if kind == ICMP and ok is not None:
            self.outcome[node] = (ok, at)

    def forget(self, node: str) -> None:
        """Drop what is known of a node (removed from the inventory)."""
        for kind in KINDS:
            self.last.pop((kind, node), None)
        self.outcome.pop(node, None)
        self._held.discard(node)

    # ------------------------------------------------------------------ pure queries
    @staticmethod
    def targets(inventory: Inventory, at: datetime | None = None) -> dict[str, list[str]]:
        """Node ids per kind, in inventory order: active nodes with an address (and SNMP settings)."""
        out: dict[str, list[str]] = {ICMP: [], SNMP: []}
        for node in inventory.nodes():
            if node.address is None or (at is not None and not node.active_at(at)):
                continue
            out[ICMP].append(node.id)
            if node.snmp is not None:
                out[SNMP].append(node.id)
        return out

    def fast(self, node: str, states: Mapping[str, NodeState]) -> bool:
        """Probed at the suspect interval: last ICMP probe failed, or confirmed state not up."""
        outcome = self.outcome.get(node)
        if outcome is not None and not outcome[0]:
            return True
        return states.get(node, NodeState.UP) is not NodeState.UP

    def interval(self, kind: str, node: str, states: Mapping[str, NodeState]) -> float:
        if kind == ICMP and self.fast(node, states):
            return min(self.settings.suspect_interval_s, self.settings.icmp_interval_s)
        return self.settings.interval(kind)

    def blocks(self, node: str, states: Mapping[str, NodeState]) -> bool:
        """Whether a polled node hides its subtree: last ICMP probe failed, or not probed and down."""
        outcome = self.outcome.get(node)
        if outcome is not None:
            return not outcome[0]
        return states.get(node, NodeState.UP) is NodeState.DOWN

    def blocking_ancestor(self, inventory: Inventory, node: str, states: Mapping[str, NodeState]) -> str | None:
        """The topmost polled strict ancestor of ``node`` that blocks, or None."""
        for ancestor in inventory.path(node)[:-1]:
            if inventory[ancestor].polled and self.blocks(ancestor, states):
                return ancestor
        return None

    def slot(self, kind: str, node: str, interval: float, now: datetime) -> float:
        """The latest slot of a target at or before ``now`` (Unix seconds)."""
        t = now.timestamp()
        return t - (t - phase(kind, node, interval)) % interval

    def _due_since(self, kind: str, node: str, interval: float, now: datetime) -> float | None:
        """The slot since which the target is due, or None when it is not due."""
        slot = self.slot(kind, node, interval, now)
        last = self.last.get((kind, node))
        if last is None:
            return slot if slot >= self.start.timestamp() else None
        t_last = last.timestamp()
        if t_last < slot and now.timestamp() - t_last >= interval / 2:
            return slot
        return None

    # ------------------------------------------------------------------ the plan
    def plan(self, now: datetime, inventory: Inventory, states: Mapping[str, NodeState]) -> Plan:
        """What to probe at ``now``. Takes tokens for what it returns; call :meth:`record` after probing."""
        targets = self.targets(inventory, now)
        held: dict[str, str] = {}
        for node in targets[ICMP]:
            blocker = self.blocking_ancestor(inventory, node, states)
            if blocker is not None:
                held[node] = blocker
        released = self._held - set(held)
        self._held = set(held)
        escalated: set[str] = set()
        for node, (ok, when) in self.outcome.items():
            if ok or node not in inventory or node in held:
                continue
            for ancestor in inventory.path(node)[:-1]:
                if not inventory[ancestor].polled or ancestor in held or self.blocks(ancestor, states):
                    continue
                last = self.last.get((ICMP, ancestor))
                if last is None or last < when:
                    escalated.add(ancestor)
        order = {node: i for i, node in enumerate(targets[ICMP])}
        candidates: list[tuple[int, float, int, str, str]] = []  # (priority, slot, order, kind, node)
        for kind in KINDS:
            for node in targets[kind]:
                if node in held:
                    continue
                if node in released:
                    candidates.append((0, 0.0, order[node], kind, node))
                    continue
                if kind == ICMP and node in escalated:
                    candidates.append((1, 0.0, order[node], kind, node))
                    continue
                since = self._due_since(kind, node, self.interval(kind, node, states), now)
                if since is not None:
                    candidates.append((2, since, order[node], kind, node))
        candidates.sort()
        elapsed = max(0.0, (now - self._refilled).total_seconds())
        self._refilled = max(now, self._refilled)
        self._tokens = min(self._burst, self._tokens + elapsed * self.settings.rate_pps)
        due: dict[str, list[str]] = {ICMP: [], SNMP: []}
        deferred: dict[str, list[str]] = {ICMP: [], SNMP: []}
        full = False
        for _prio, _slot, _order, kind, node in candidates:
            cost = self.settings.cost(kind)
            if not full and self._tokens >= cost:
                self._tokens -= cost
                due[kind].append(node)
            else:
                full = True
                deferred[kind].append(node)
        return Plan(
            at=now,
            due={k: tuple(v) for k, v in due.items()},
            held=held,
            deferred={k: tuple(v) for k, v in deferred.items() if v},
            released=tuple(n for n in targets[ICMP] if n in released),
        )
