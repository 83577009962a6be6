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
* **Global rate limit.** A token bucket of ``rate_pps`` packets/s (burst: one second's worth, or what the time
  since the last plan brought, up to ``burst_s`` seconds': a long cycle does not lose its budget), an ICMP
  probe costing ``icmp_cost`` packets (the ping count) and an SNMP probe ``snmp_cost``. Due targets are taken
  released first, then escalated, then the most overdue (oldest slot); what does not fit is *deferred*
  and stays due.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
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
    burst_s: float = 1.0  # the bucket holds this many seconds of packets at most (a late plan keeps them)

    def __post_init__(self) -> None:
        for name in ("icmp_interval_s", "snmp_interval_s", "suspect_interval_s", "rate_pps", "burst_s"):
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

    A plan costs what is due, not the inventory (100,000 targets on a 1 s tick): each target has a time from
    which it may be due (a heap ordered by it, pushed by :meth:`record`), so a plan looks only at the targets
    whose time has come (*pending* until probed), at the nodes that became fast since the last plan, and at
    the subtrees of the blocking nodes; the targets per kind are kept until the inventory object changes or a
    node's commissioned/decommissioned time passes. The result is the rule above, target for target.
    """

    def __init__(self, settings: ScheduleSettings, *, start: datetime) -> None:
        self.settings = settings
        self.start = start
        self.last: dict[tuple[str, str], datetime] = {}  # (kind, node) -> last probe time
        self.outcome: dict[str, tuple[bool, datetime]] = {}  # node -> (last ICMP ok?, when)
        self._held: set[str] = set()
        self._burst = max(settings.rate_pps, float(max(settings.icmp_cost, settings.snmp_cost)))  # one second's
        self._tokens = self._burst
        self._refilled = start
        # incremental bookkeeping (see the class docstring)
        self._failed: set[str] = set()  # nodes whose last ICMP outcome failed
        self._fast: set[str] = set()  # nodes at the suspect interval at the last plan
        self._heap: list[tuple[float, str, str]] = []  # (may be due from, kind, node)
        self._key: dict[tuple[str, str], float] = {}  # the valid heap entry of each tracked target
        self._pending: set[tuple[str, str]] = set()  # targets whose time has come, not probed since
        self._tracked: set[tuple[str, str]] = set()
        self._phases: dict[tuple[str, str, float], float] = {}
        self._inventory: Inventory | None = None
        self._targets: dict[str, list[str]] | None = None
        self._order: dict[str, int] = {}
        self._bounds: list[float] = []
        self._valid = (0.0, 0.0)

    # ------------------------------------------------------------------ feedback
    def record(self, kind: str, node: str, at: datetime, ok: bool | None = None) -> None:
        """A probe of ``node`` was made at ``at``; ``ok`` is the ICMP outcome (None: not to be believed,
        e.g. in a blind cycle: the time counts, the outcome does not)."""
        previous = self.last.get((kind, node))
        if previous is None or at >= previous:
            self.last[(kind, node)] = at
        if kind == ICMP and ok is not None:
            self.outcome[node] = (ok, at)
            if ok:
                self._failed.discard(node)
            else:
                self._failed.add(node)
        key = (kind, node)
        if key in self._tracked:
            self._pending.discard(key)
            fast = kind == ICMP and (node in self._failed or node in self._fast)
            self._push(kind, node, self._interval_of(kind, fast))

    def forget(self, node: str) -> None:
        """Drop what is known of a node (removed from the inventory)."""
        for kind in KINDS:
            self.last.pop((kind, node), None)
            self._key.pop((kind, node), None)
            self._pending.discard((kind, node))
        self.outcome.pop(node, None)
        self._held.discard(node)
        self._failed.discard(node)
        self._fast.discard(node)
        for kind in KINDS:  # still a target (not gone from the inventory after all): as never probed
            if (kind, node) in self._tracked:
                self._push(kind, node, self._interval_of(kind, False))

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

    @property
    def order(self) -> Mapping[str, int]:
        """Each ICMP target's index in the targets last returned by :meth:`current_targets`."""
        return self._order

    def current_targets(self, inventory: Inventory, at: datetime) -> dict[str, list[str]]:
        """:meth:`targets` at ``at``, kept while ``inventory`` is the same object and no node's commissioned
        or decommissioned time lies between: the same lists (do not change them) until then."""
        if inventory is not self._inventory:
            self._inventory = inventory
            self._targets = None
            bounds: set[float] = set()
            for node in inventory.nodes():
                for t in (node.commissioned, node.decommissioned):
                    if t is not None:
                        bounds.add(t.timestamp())
            self._bounds = sorted(bounds)
        ts = at.timestamp()
        if self._targets is None or not self._valid[0] <= ts < self._valid[1]:
            targets = self.targets(inventory, at)
            i = bisect.bisect_right(self._bounds, ts)
            self._valid = (
                self._bounds[i - 1] if i > 0 else -math.inf,
                self._bounds[i] if i < len(self._bounds) else math.inf,
            )
            self._track(targets)
            self._targets = targets
            self._order = {node: i for i, node in enumerate(targets[ICMP])}
        return self._targets

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

    def _phase(self, kind: str, node: str, interval: float) -> float:
        key = (kind, node, interval)
        value = self._phases.get(key)
        if value is None:
            value = self._phases[key] = phase(kind, node, interval)
        return value

    def slot(self, kind: str, node: str, interval: float, now: datetime) -> float:
        """The latest slot of a target at or before ``now`` (Unix seconds)."""
        t = now.timestamp()
        return t - (t - self._phase(kind, node, interval)) % interval

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

    def _due_from(self, kind: str, node: str, interval: float) -> float:
        """The earliest time (Unix seconds) at which :meth:`_due_since` says due, at this interval."""
        ph = self._phase(kind, node, interval)
        last = self.last.get((kind, node))
        if last is None:
            s = self.start.timestamp()
            first = s - (s - ph) % interval
            return first if first >= s else first + interval
        t = last.timestamp()
        return max(t - (t - ph) % interval + interval, t + interval / 2)

    def _interval_of(self, kind: str, fast: bool) -> float:
        if kind == ICMP and fast:
            return min(self.settings.suspect_interval_s, self.settings.icmp_interval_s)
        return self.settings.interval(kind)

    def _push(self, kind: str, node: str, interval: float, *, earlier_only: bool = False) -> None:
        when = self._due_from(kind, node, interval)
        key = (kind, node)
        current = self._key.get(key)
        if earlier_only and current is not None and current <= when:
            return
        self._key[key] = when
        heapq.heappush(self._heap, (when, kind, node))

    def _track(self, targets: Mapping[str, list[str]]) -> None:
        """Follow a new set of targets: the new ones get their time, the gone ones are dropped."""
        now = {(kind, node) for kind in KINDS for node in targets[kind]}
        for key in self._tracked - now:
            self._key.pop(key, None)
            self._pending.discard(key)
        for kind, node in now - self._tracked:
            fast = kind == ICMP and (node in self._failed or node in self._fast)
            self._push(kind, node, self._interval_of(kind, fast))
        self._tracked = now
        if len(self._heap) > 4 * len(self._key) + 1024:  # drop the stale entries
            self._heap = [(w, k, n) for (k, n), w in self._key.items()]
            heapq.heapify(self._heap)

    # ------------------------------------------------------------------ the plan
    def plan(self, now: datetime, inventory: Inventory, states: Mapping[str, NodeState]) -> Plan:
        """What to probe at ``now``. Takes tokens for what it returns; call :meth:`record` after probing."""
        self.current_targets(inventory, now)
        order = self._order
        not_up = {n for n, state in states.items() if state is not NodeState.UP}
        # held: the subtrees of the polled nodes that block (their topmost blocking ancestor named)
        blockers = [n for n in self._failed if n in inventory and inventory[n].polled]
        blockers += [
            n
            for n in not_up
            if states[n] is NodeState.DOWN and n not in self.outcome and n in inventory and inventory[n].polled
        ]
        below: set[str] = set()
        children = inventory.children
        stack = list(blockers)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in below:
                    below.add(child)
                    stack.append(child)
        held: dict[str, str] = {}
        for node in sorted((n for n in below if n in order), key=order.__getitem__):
            blocker = self.blocking_ancestor(inventory, node, states)
            if blocker is not None:
                held[node] = blocker
        released = self._held - held.keys()
        self._held = set(held)
        escalated: set[str] = set()
        for node in self._failed:
            if node not in inventory or node in held:
                continue
            when = self.outcome[node][1]
            for ancestor in inventory.path(node)[:-1]:
                if not inventory[ancestor].polled or ancestor in held or self.blocks(ancestor, states):
                    continue
                last = self.last.get((ICMP, ancestor))
                if last is None or last < when:
                    escalated.add(ancestor)
        # the nodes that became fast since the last plan may be due earlier than their time in the heap
        fast = self._failed | not_up
        for node in fast - self._fast:
            if (ICMP, node) in self._tracked and (ICMP, node) not in self._pending:
                self._push(ICMP, node, self._interval_of(ICMP, True), earlier_only=True)
        self._fast = fast
        # the targets whose time has come
        t_now = now.timestamp()
        heap, keys = self._heap, self._key
        while heap and heap[0][0] <= t_now:
            due_at, kind, node = heapq.heappop(heap)
            if keys.get((kind, node)) == due_at:
                del keys[(kind, node)]
                self._pending.add((kind, node))
        candidates: list[tuple[int, float, int, str, str]] = []  # (priority, slot, order, kind, node)
        for node in released:
            if node in order:
                for kind in KINDS:
                    if (kind, node) in self._tracked:
                        candidates.append((0, 0.0, order[node], kind, node))
        for node in escalated:
            if node in order and node not in released:
                candidates.append((1, 0.0, order[node], ICMP, node))
        for kind, node in list(self._pending):
            if node in held or node in released or (kind == ICMP and node in escalated):
                continue
            interval = self.interval(kind, node, states)
            since = self._due_since(kind, node, interval, now)
            if since is not None:
                candidates.append((2, since, order[node], kind, node))
            else:
                self._pending.discard((kind, node))
                self._push(kind, node, interval)
                if keys[(kind, node)] <= t_now:  # rounding: look again at the next plan
                    keys[(kind, node)] = t_now + 1e-3
                    heapq.heappush(heap, (t_now + 1e-3, kind, node))
        candidates.sort()
        elapsed = max(0.0, (now - self._refilled).total_seconds())
        self._refilled = max(now, self._refilled)
        # a plan that comes late (a long cycle) keeps the packets of the time it waited, up to burst_s seconds'
        cap = max(self._burst, self.settings.rate_pps * min(elapsed, self.settings.burst_s))
        self._tokens = min(cap, self._tokens + elapsed * self.settings.rate_pps)
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
            released=tuple(sorted((n for n in released if n in order), key=order.__getitem__)),
        )
