"""The service: the one place that joins storage, the engine and the assessment.

Both shells (the ``slawatch`` CLI and the REST API) call these methods; each ``await`` sits between pure
steps: load (I/O), decide (engine, pure), store (I/O).

Events are the source of truth. Ingesting validates a whole batch against the inventory first (nothing is
stored when one event is bad), turns ``poll`` events into confirmed ``state`` events (polls themselves are
not stored: only state changes, SPEC §2, with the confirmation runs kept so a split replay equals one), stores
the new events (deduplicated by their deterministic id), writes the audit log for the accounting events, and
rebuilds each contract's incident projection by replaying the stored stream through the same
:class:`~monitor.engine.Engine` that reports use.

A process builds the projection once (from the stored snapshot of it, :mod:`monitor.snapshot`, and the events
stored after that snapshot; from every stored event when none fits) and then applies each ingest's events to
it. A report or a daily claim list of now starts from the same snapshot; one as of an earlier time replays the
events known by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, tzinfo
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor.assessment import (
    Assessment,
    ClaimStatus,
    MaintenanceIndex,
    Month,
    claim_statuses,
    excluded_ids,
    verdicts,
)
from monitor.confirmation import ConfirmationSettings, Confirmer
from monitor.contracts import (
    Contract,
    contract_from_mapping,
    default_contract,
    select_contract,
    validate_contracts,
)
from monitor.engine import Engine, History
from monitor.errors import EventError, SnapshotError, StorageError, shown
from monitor.events import (
    BaseEvent,
    Event,
    ExclusionEvent,
    ExclusionStatus,
    FindingEvent,
    MaintenanceEvent,
    NodeState,
    PollEvent,
    StateEvent,
    TargetedEvent,
    format_time,
)
from monitor.inventory import Inventory
from monitor.inventory_io import InventoryDiff
from monitor.policy import DEFAULT_POLICY, Policy
from monitor.report import render, render_body
from monitor.report_cache import ReportCache, ReportKey
from monitor.report_versions import (
    LISTED,
    Checkpoint,
    ReportStateError,
    ReportVersion,
    StoredReport,
    assess_body,
    changes_json,
    check_as_of,
    check_reason,
    go_on,
    month_of,
    replay_history,
    version_json,
)
from monitor.snapshot import dump_engines, load_engines, snapshot_key
from monitor.storage.database import Database
from monitor.storage.heartbeats import (
    event_position,
    events_after,
    forget_poll_runs,
    inventory_fingerprint,
    latest_state_events,
)
from monitor.storage.repository import EventLog
from monitor.storage.snapshots import StoredSnapshot, event_id_at, events_upto, read_snapshot, write_snapshot

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from monitor.alerts.hook import AlertHook
    from monitor.incidents import IncidentView

log = logging.getLogger("slawatch.service")

ACCOUNTING_TYPES = ("ack", "onsite", "explanation", "exclusion", "maintenance", "finding")


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    stored: int
    duplicates: int
    confirmed: int  # state changes confirmed from polls
    # Stored events that applied to no incident of any contract (an ack before its incident was confirmed,
    # an explanation naming a node with no incident): (where, type, reason). They are kept, not applied.
    unmatched: tuple[tuple[str, str, str], ...] = ()
    # Polls not applied (SPEC R7: dated at or before the node's last applied poll): (where, reason).
    not_applied: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "confirmed": self.confirmed,
            "unmatched": [{"where": w, "type": t, "reason": r} for w, t, r in self.unmatched],
            "not_applied": [{"where": w, "reason": r} for w, r in self.not_applied],
        }


@dataclass(frozen=True, slots=True)
class IssuedReport:
    """A report computed (``version`` None: nothing is stored) as of a time; ``text`` is ``body`` as JSON text
    and ``position`` the event-log position the computation saw."""

    assessment: Assessment
    version: int | None
    generated_at: datetime
    body: dict[str, Any]
    text: str = ""
    position: int = 0
    age_s: float | None = None  # served from memory (monitor.report_cache): seconds since it was computed

    def render(self, fmt: str) -> str:
        return render(self.assessment, fmt, version=self.version, generated_at=self.generated_at)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MonthReport:
    """A month's report as the API and the CLI show it (SPEC R9): the computation while the month is open; once a
    version is signed (closed), that version beside the computation and ``changes`` since the signature."""

    computed: IssuedReport
    zone: tzinfo
    claim_hour: int = 11
    signed: StoredReport | None = None
    changes: dict[str, Any] | None = None

    @property
    def closed(self) -> bool:
        return self.signed is not None

    def to_json(self) -> dict[str, Any]:
        if self.signed is None:
            return self.computed.body
        return {
            "closed": True,
            "month": self.computed.body["month"],
            "signed_version": version_json(self.signed.info(), self.zone),
            "signed": self.signed.body,
            "recomputed": self.computed.body,
            "changes_since_signature": self.changes,
        }

    def text(self) -> str:
        """The JSON text (compact)."""
        return self.computed.text if self.signed is None else json.dumps(self.to_json(), ensure_ascii=False)

    def render(self, fmt: str) -> str:
        """``json`` (indented: the envelope when closed), or ``csv`` / ``html`` of what is paid: the signed
        version once the month is closed, else the computation."""
        if self.signed is None:
            return self.computed.render(fmt)
        if fmt == "json":
            return json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n"
        return render_body(self.signed.body, fmt, claim_hour=self.claim_hour)  # type: ignore[arg-type]


@dataclass(slots=True)
class _Projection:
    """The engines behind the stored incident projection, and how many stored events they have applied."""

    inventory: Inventory
    contracts: tuple[Contract, ...]
    engines: dict[str, Engine]
    events: int
    position: int = 0  # the highest stored ``seq`` applied (what a catch-up reads after)
    snapshot_events: int = 0  # ``events`` when the last snapshot of these engines was stored (or loaded)


@dataclass(slots=True)
class _IngestCache:
    """What :meth:`Service.ingest` keeps between batches, so that a live cycle reads and writes little.

    ``inventory`` (None: load it) with the stored inventory's ``fingerprint`` when it was loaded; ``states``
    each node's latest confirmed state and ``latest`` its (dated, known) times, as the stored stream gives
    them in processing order; ``confirmer`` the poll runs; ``seq`` the highest stored event position these
    reflect (None: load them again, e.g. after another process stored events).
    """

    inventory: Inventory | None = None
    fingerprint: tuple[Any, ...] | None = None
    checked: float = 0.0  # time.monotonic() of the last fingerprint read
    states: dict[str, NodeState] = field(default_factory=dict)
    latest: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    since: dict[str, datetime] = field(default_factory=dict)  # each node's latest dated time (from ``latest``)
    confirmer: Confirmer | None = None
    seq: int | None = None


def check_events(located: Sequence[tuple[str, Event]], inventory: Inventory) -> None:
    """Every node an event names must be in the inventory; errors name where and the field."""
    for where, event in located:
        for fname in ("node", "scope"):
            node = getattr(event, fname, None)
            if node is not None and node not in inventory:
                raise EventError(f"node {shown(node)} is not in the inventory", where=where, field=fname)


class Service:
    """slawatch's operations over one database. ``clock`` returns the current UTC time (injected)."""

    def __init__(
        self,
        db: Database,
        *,
        default_policy: Policy = DEFAULT_POLICY,
        confirmation: ConfirmationSettings | None = None,
        clock: Any = None,
        alerts: AlertHook | None = None,
        report_cache: ReportCache[IssuedReport] | None = None,
    ) -> None:
        self.db = db
        # Computed month reports kept in memory (monitor.report_cache); None: every report is computed.
        self.report_cache = report_cache
        # Alerts to on-call crews (monitor.alerts): planned from every stored projection; None: no alerts.
        self.alerts = alerts
        self.repo = db.repository()
        self.default_policy = default_policy
        self.confirmation = confirmation or ConfirmationSettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._projection: _Projection | None = None
        self._cache = _IngestCache()
        # How long the stored inventory is trusted without asking again whether another process imported one
        # (its fingerprint sums over every node row: 0.2-0.4 s at 100,000 nodes). 0: every time. The live
        # service sets its inventory_refresh_s: it reloads no more often anyway.
        self.inventory_check_s = 0.0
        self._checking_inventory = False  # a caller is reading the fingerprint (and the inventory, if it changed)
        # How long the stored contracts are trusted without reading them again (0: every time). Every route of
        # a contract asks for them, and on SQLite the read is ~1 ms of CPU (a transaction through aiosqlite's
        # thread): the API's lifespan sets its INVENTORY_CHECK_S. This process's own saves replace them at
        # once; another process's are seen within it, as its inventory is.
        self.contracts_check_s = 0.0
        self._contracts: tuple[float, list[Contract]] | None = None  # (monotonic() when read, contracts)
        # Above this many stored events, a missing projection is built beside the caller (events parsed and
        # replayed in a worker thread) instead of inside the ingest that needs it: a live start at 100,000 nodes
        # with a month of history would otherwise wait a minute, growing with every restart. None: always inside
        # (the default; the live service sets it). Ingests meanwhile store their events and leave them to it.
        self.rebuild_behind_after: int | None = None
        self._rebuilding: asyncio.Task[None] | None = None
        self._stop_build = threading.Event()  # set: the build beside the loop stops after its current chunk
        self._store_build = True  # the build beside the loop stores what it built
        self._store_lock = asyncio.Lock()
        # A projection built by replaying at least this many stored events is stored as a snapshot
        # (monitor.snapshot), so that the next start replays only what comes after it. None: never.
        self.snapshot_after: int | None = SNAPSHOT_AFTER_EVENTS
        self._snapshot_key: tuple[Inventory, tuple[Contract, ...], str] | None = None

    # ------------------------------------------------------------------ inventory and contracts
    async def inventory(self) -> Inventory:
        """The stored inventory: loaded once and kept while its fingerprint stays the same (a one-row query;
        loading 100,000 nodes takes seconds, and a start-up asked for it several times)."""
        return await self._fresh_inventory()

    async def _fresh_inventory(self) -> Inventory:
        cache = self._cache
        if cache.inventory is not None and (
            monotonic() - cache.checked < self.inventory_check_s
            or (self.inventory_check_s > 0 and self._checking_inventory)
        ):
            # Between checks, and while another caller's check is under way, the inventory checked last: the
            # requests arriving when a check is due would otherwise each sum every node row (50 ms at 100,000
            # nodes; four at once took 200 ms on two cores and held up every one of them) and, after an import
            # by another process, each load it again.
            return cache.inventory
        self._checking_inventory = True
        try:
            fingerprint = await inventory_fingerprint(self.db)
            if cache.inventory is None or cache.fingerprint != fingerprint:
                cache.inventory = await self.repo.load_inventory()
                cache.fingerprint = fingerprint
            cache.checked = monotonic()
        finally:
            self._checking_inventory = False
        return cache.inventory

    async def import_inventory(self, inventory: Inventory, contracts: Sequence[Contract] = ()) -> InventoryDiff:
        """Write a validated inventory (and its contracts) in place; report what changed."""
        if contracts:
            validate_contracts(contracts, inventory)
        diff = await self.repo.save_inventory(inventory)
        self._cache.inventory = None
        if contracts:
            await self.repo.save_contracts([c.to_json() for c in contracts])
            self._contracts = None
        await self.rebuild()
        return diff

    async def save_contracts(self, contracts: Sequence[Contract]) -> None:
        inventory = await self.inventory()
        validate_contracts(contracts, inventory)
        await self.repo.save_contracts([c.to_json() for c in contracts])
        self._contracts = None
        self._cache.inventory = None
        await self.rebuild()

    async def contracts(self) -> list[Contract]:
        """The stored contracts (the default one when none is stored), read again after ``contracts_check_s``."""
        kept = self._contracts
        if kept is not None and monotonic() - kept[0] < self.contracts_check_s:
            return list(kept[1])
        rows = await self.repo.load_contracts()
        if not rows:
            contracts = [default_contract(self.default_policy)]
        else:
            contracts = [contract_from_mapping(r, f"contract {r.get('id')}") for r in rows]
        self._contracts = (monotonic(), contracts)
        return list(contracts)

    async def contract(self, contract_id: str | None) -> Contract:
        return select_contract(await self.contracts(), contract_id)

    async def event_timezone(self) -> tzinfo | None:
        """The zone for times without an offset: the contracts' one zone, or None when they differ."""
        zones = {c.policy.timezone for c in await self.contracts()}
        return ZoneInfo(zones.pop()) if len(zones) == 1 else None

    # ------------------------------------------------------------------ events
    async def ingest(
        self,
        located: Sequence[tuple[str, Event]],
        source: str,
        actor: str = "admin",
        *,
        keep_runs: bool = True,
    ) -> IngestResult:
        """Validate, confirm, store and project a batch of events (all or nothing).

        Polls are confirmed in memory (:meth:`Confirmer.feed`, against the nodes' states kept in memory):
        only the events and the changes they confirm reach the database, and, with ``keep_runs``, the
        confirmation runs the batch changed (so that a replay split in two equals one). The live collector
        passes ``keep_runs=False``: its runs start afresh at every restart anyway. Polls not applied (R7) are
        returned in ``not_applied``, never dropped silently.
        """
        cache = await self._ingest_cache()
        inventory = cache.inventory
        confirmer = cache.confirmer
        assert inventory is not None and confirmer is not None
        check_events(located, inventory)
        trial = Confirmer(self.confirmation)
        trial.runs = dict(confirmer.runs)  # applied only once the batch is stored
        fed = trial.feed([e for _w, e in located], dict(cache.states))
        to_store = list(fed.events)

        def audit(event: Event) -> tuple[str, str, str | None] | None:
            return (actor, event.type, _subject(event)) if event.type in ACCOUNTING_TYPES else None

        inserted = await self.repo.append_events(to_store, source, audit=audit)
        touched = {e.node for _w, e in located if isinstance(e, PollEvent | StateEvent)}
        changed = {n: r for n in touched if (r := trial.runs.get(n)) is not None and r is not confirmer.runs.get(n)}
        for node in touched - trial.runs.keys():
            confirmer.runs.pop(node, None)
        confirmer.runs.update(changed)
        if keep_runs and changed:
            await self.repo.save_poll_runs(changed)
        self._note_stored(cache, inserted)
        if inserted:
            position = cache.seq
            if position is not None:
                count, top = await events_after(self.db, position)
                cache.seq = top if count == len(inserted) else None  # another writer too: reload next time
            if self._rebuilding is not None:
                self._store_build = True  # it applies them when it has caught up, and stores what they changed
            elif (
                self._projection is None
                and self.rebuild_behind_after is not None
                and (cache.seq or 0) > self.rebuild_behind_after
            ):
                self.build_projection_beside()
            else:
                await self._project(inserted, inventory)
        not_applied = tuple((located[i][0], reason) for i, reason in fed.not_applied)
        if not_applied:
            log.warning(
                "polls not applied",
                extra={"source": source, "count": len(not_applied), "first": not_applied[0][1]},
            )
        log.log(
            logging.INFO if inserted else logging.DEBUG,
            "ingested",
            extra={
                "source": source,
                "received": len(located),
                "stored": len(inserted),
                "confirmed": fed.confirmed,
            },
        )
        return IngestResult(
            len(located),
            len(inserted),
            len(to_store) - len(inserted),
            fed.confirmed,
            self._unmatched(located, inserted),
            not_applied,
        )

    async def _ingest_cache(self) -> _IngestCache:
        """The ingest cache, (re)loaded where the database moved under it: the inventory when its fingerprint
        changed (another process imported one), the states and runs when events were stored elsewhere."""
        cache = self._cache
        await self._fresh_inventory()
        position = await event_position(self.db)
        if cache.confirmer is None or cache.seq != position:
            latest = await latest_state_events(self.db)
            cache.states.clear()
            cache.states.update({n: state for n, (state, _at, _known) in latest.items()})
            cache.latest = {n: (at, known) for n, (_state, at, known) in latest.items()}
            cache.since.clear()
            cache.since.update({n: at for n, (_state, at, _known) in latest.items()})
            stored = await self.repo.load_poll_runs()
            if cache.confirmer is None:
                cache.confirmer = Confirmer(self.confirmation)
            mine = cache.confirmer.runs
            cache.confirmer.restore(
                {**mine, **{n: r for n, r in stored.items() if n not in mine or r.last_poll >= mine[n].last_poll}}
            )
            cache.seq = position
        return cache

    @staticmethod
    def _note_stored(cache: _IngestCache, inserted: Sequence[Event]) -> None:
        """Keep each node's latest state as the stored stream gives it (processing order: known, then seq)."""
        for event in inserted:
            if not isinstance(event, StateEvent):
                continue
            latest = cache.latest.get(event.node)
            if latest is None or event.known >= latest[1]:
                cache.states[event.node] = event.state
                cache.latest[event.node] = (event.at, event.known)
                cache.since[event.node] = event.at

    async def cached_inventory(self) -> Inventory:
        """The inventory ``ingest`` checks events against: loaded once, again only when it changed."""
        inventory = (await self._ingest_cache()).inventory
        assert inventory is not None
        return inventory

    async def node_states(self) -> Mapping[str, NodeState]:
        """Each node's latest confirmed state (nodes without a state event are up): kept in memory and
        updated by every ingest, so a caller may hold on to the mapping."""
        return (await self._ingest_cache()).states

    async def node_since(self) -> Mapping[str, datetime]:
        """The dated time of each node's latest confirmed state: kept in memory and updated by every ingest,
        like :meth:`node_states` (a caller may hold on to the mapping; it does not copy 100,000 entries)."""
        return (await self._ingest_cache()).since

    async def forget_poll_runs(self, nodes: Iterable[str]) -> None:
        """Drop the confirmation runs of ``nodes`` (stored and in memory): their next poll starts a new run."""
        ids = list(nodes)
        await forget_poll_runs(self.db, ids)
        confirmer = self._cache.confirmer
        if confirmer is not None:
            for node in ids:
                confirmer.runs.pop(node, None)

    def _unmatched(
        self, located: Sequence[tuple[str, Event]], inserted: Sequence[Event]
    ) -> tuple[tuple[str, str, str], ...]:
        """Newly stored events that no contract's engine could apply."""
        p = self._projection
        if p is None or not inserted or not p.engines:
            return ()
        new = {e.id for e in inserted}
        reasons: dict[str, str] = {}
        per_engine = []
        for engine in p.engines.values():
            ids = set()
            for u in engine.unmatched:
                if u.event.id in new:
                    ids.add(u.event.id)
                    reasons[u.event.id] = u.reason
            per_engine.append(ids)
        everywhere = set.intersection(*per_engine)
        return tuple((where, e.type, reasons[e.id]) for where, e in located if e.id in everywhere)

    # ------------------------------------------------------------------ projections and reports
    async def history(self, contract: Contract, as_of: datetime, inventory: Inventory | None = None) -> History:
        inventory = inventory or await self.inventory()
        events = await self.repo.load_events(until_known=as_of)
        engine = self._engine(contract, inventory)
        engine.replay(events)
        return engine.snapshot(as_of)

    def _engine(self, contract: Contract, inventory: Inventory) -> Engine:
        """A fresh engine for one contract: its policy, its channels, the deployment's confirmation."""
        return Engine(inventory, contract.policy, contract.channels(inventory), self.confirmation)

    async def rebuild(self, *, store: bool = True) -> None:
        """Rebuild every contract's incident projection from the stored events (from the stored snapshot on, when
        one was made from the same inventory, contracts and code); ``store``: write it (the processes that ingest
        do; a reader, such as ``/metrics`` beside a collector in another process, must not overwrite what that
        collector stores with a projection that may be older)."""
        inventory = await self.inventory()
        contracts = await self.contracts()
        engines, pending, base = await self._engines_to_build(inventory, contracts)
        events = pending.events()
        for engine in engines.values():
            engine.replay(events)
        self._projection = _Projection(
            inventory, tuple(contracts), engines, base + len(events), pending.position, snapshot_events=base
        )
        if not store:
            for engine in engines.values():
                engine.forget_changed()
        else:
            try:
                await self._store_projection(whole=True)
            except BaseException:
                # Its engines have drained their changes: kept, the next ingest would store only what comes
                # after. Dropped, the next ingest rebuilds and stores the whole projection (and its alerts) again.
                self._projection = None
                raise
        if self.snapshot_after is not None and len(events) >= self.snapshot_after:
            await self.save_snapshot()

    async def _engines_to_build(
        self, inventory: Inventory, contracts: Sequence[Contract]
    ) -> tuple[dict[str, Engine], EventLog, int]:
        """Engines for a projection build, the stored events still to replay into them, and how many stored
        events they have applied already: from the stored snapshot when one is usable, else fresh engines and
        every stored event."""
        found = await self._from_snapshot(inventory, contracts)
        if found is not None:
            engines, tail, snap = found
            return engines, tail, snap.events
        return {c.id: self._engine(c, inventory) for c in contracts}, await self.repo.load_event_log(), 0

    async def _from_snapshot(
        self, inventory: Inventory, contracts: Sequence[Contract], *, until_known: datetime | None = None
    ) -> tuple[dict[str, Engine], EventLog, StoredSnapshot] | None:
        """The engines of the stored snapshot and the stored events after it (with ``until_known``, those known
        by then: a report as of that time), when one is usable: same key, its event log unchanged, everything
        in it known by ``until_known``, and nothing after it known before what it applied (such an event must
        be replayed in its place). None otherwise: the caller replays every stored event."""
        restored = await self._restored(inventory, contracts, until_known)
        if restored is None:
            return None
        engines, snap = restored
        tail = await self.repo.load_event_log_after(snap.position, until_known=until_known)
        first = tail.first_known()  # parsing the whole tail here, on the loop, would parse it twice
        if first is not None and any(e.now is not None and first <= e.now for e in engines.values()):
            log.info("projection snapshot not used: events known before it were stored after it")
            return None
        if await events_upto(self.db, snap.position) != snap.events:
            log.warning("projection snapshot not used: the stored events do not add up to it")
            return None
        log.info(
            "projection from its snapshot",
            extra={"snapshot_events": snap.events, "events_after": len(tail.rows)},
        )
        return engines, tail, snap

    async def _key_for(self, inventory: Inventory, contracts: Sequence[Contract]) -> str:
        """The snapshot key of these inputs, kept while they stay the same (it reads the whole inventory: about
        0.3 s at 100,000 nodes, in a worker thread)."""
        known = self._snapshot_key
        if known is not None and known[0] is inventory and known[1] == tuple(contracts):
            return known[2]
        key = await asyncio.to_thread(snapshot_key, inventory, contracts, self.confirmation)
        self._snapshot_key = (inventory, tuple(contracts), key)
        return key

    async def _restored(
        self, inventory: Inventory, contracts: Sequence[Contract], until_known: datetime | None = None
    ) -> tuple[dict[str, Engine], StoredSnapshot] | None:
        """The engines of the stored snapshot made from these inputs (and holding only events known by
        ``until_known``), unpickled in a worker thread; None when there is none or it cannot be used (logged:
        the caller replays the stored events instead)."""
        if self.snapshot_after is None:
            return None
        try:
            key = await self._key_for(inventory, contracts)
            snap = await read_snapshot(self.db, key)
            if snap is None:
                return None
            if until_known is not None and (snap.known_until is None or snap.known_until > until_known):
                return None  # it holds events a report as of that time must not see
            engines = await asyncio.to_thread(load_engines, snap.data, inventory, [c.id for c in contracts])
        except (SnapshotError, StorageError) as exc:
            log.warning(
                "projection snapshot not used; the stored events are replayed",
                extra={"error": str(exc), "error_type": type(exc).__name__},
            )
            return None
        return engines, snap

    async def save_snapshot(self) -> bool:
        """Store a snapshot of the current projection (the live service calls this at its clean stop, after the
        last events; builds call it after a long replay). The engines are pickled here, on the event loop, so
        that nothing changes them meanwhile: about 3 s at 100,000 channels. True when one was stored; False when
        there is no projection, nothing new since the last snapshot, or it could not be stored (logged)."""
        p = self._projection
        if p is None or self._rebuilding is not None or self.snapshot_after is None or p.events == p.snapshot_events:
            return False
        key = await self._key_for(p.inventory, p.contracts)
        if self._projection is not p:
            return False
        events, position = p.events, p.position
        data, raw = dump_engines(p.engines, p.inventory)  # no await from reading the counts to here
        if await self._write_snapshot(key, p.engines, position, events, data, raw):
            p.snapshot_events = events
            return True
        return False

    async def _write_snapshot(
        self, key: str, engines: Mapping[str, Engine], position: int, events: int, data: bytes, raw: int
    ) -> bool:
        """Store a snapshot of engines that applied the ``events`` stored events up to ``position``, unless the
        count of stored events up to there says otherwise (a projection whose position lags its engines)."""
        try:
            if await events_upto(self.db, position) != events:
                log.warning("projection snapshot not stored: its position and its events disagree")
                return False
            known = max((e.now for e in engines.values() if e.now is not None), default=None)
            snap = StoredSnapshot(
                key, position, await event_id_at(self.db, position), events, known, self.clock(), raw, data
            )
            began = monotonic()
            await write_snapshot(self.db, snap)
        except StorageError as exc:
            log.warning("projection snapshot not stored", extra={"error": str(exc), "error_type": type(exc).__name__})
            return False
        log.info(
            "projection snapshot stored",
            extra={"events": events, "bytes": len(data), "raw_bytes": raw, "write_s": round(monotonic() - began, 2)},
        )
        return True

    def projection_building(self) -> bool:
        """Whether a projection is being built beside the caller (see ``rebuild_behind_after``)."""
        return self._rebuilding is not None

    def build_projection_beside(self, *, store: bool = True) -> bool:
        """Start building every contract's incident projection from the stored events with the parsing and the
        replay in a worker thread (the event loop stays free), unless one is being built already. The current
        projection (if any) keeps being served until the new one replaces it; ingests meanwhile store their
        events and leave them to the build. ``store``: as for :meth:`rebuild`; a read-only build stores all the
        same when this process ingests events while it runs (their incidents are its own to store). True when a
        build was started."""
        if self._rebuilding is not None:
            return False
        self._stop_build = threading.Event()
        self._store_build = store
        self._rebuilding = asyncio.create_task(self._rebuild_behind(), name="slawatch-projection")
        return True

    async def prepare_projection(self) -> bool:
        """At the start of a long-running process: with a long stored history (above ``rebuild_behind_after``)
        and no projection yet, start building it beside the loop now (from the stored snapshot, when one fits),
        rather than when the first ingest needs it: after a clean stop every node is unknown already, so a
        restart stores nothing until nodes are confirmed, and the API would have no incidents until then. True
        when a build was started."""
        if self._projection is not None or self._rebuilding is not None or self.rebuild_behind_after is None:
            return False
        if await event_position(self.db) <= self.rebuild_behind_after:
            return False
        return self.build_projection_beside()

    async def catch_up_projection(self) -> bool:
        """Apply to the projection the events other processes stored since it was built (``slawatch serve``
        beside a collector): the few new rows after its position, parsed and replayed here, nothing stored
        (the process that ingested them stored their incidents and alerts). False when it cannot be done
        incrementally: no projection, one being built, more than :data:`CATCH_UP_MAX_EVENTS` new rows (a
        collector's start stores one per node), another inventory or contracts, a count that does not add up,
        or an event known before what the engines have applied (a rebuild is needed)."""
        p = self._projection
        if p is None or self._rebuilding is not None:
            return False
        tail = await self.repo.load_event_log_after(p.position)
        if not tail.rows:
            return True
        if len(tail.rows) > CATCH_UP_MAX_EVENTS:  # parsed and replayed here they would hold the loop: rebuild
            return False
        if p.inventory != await self.inventory() or p.contracts != tuple(await self.contracts()):
            return False
        if await self.repo.count_events() != p.events + len(tail.rows):
            return False
        ordered = sorted(tail.events(), key=lambda e: e.known)
        if any(e.now is not None and ordered[0].known <= e.now for e in p.engines.values()):
            return False
        if self._projection is not p:  # replaced while this read
            return False
        for engine in p.engines.values():
            engine.replay(ordered)
            engine.forget_changed()  # stored by the process that ingested them
        p.events += len(ordered)
        p.position = tail.position
        return True

    async def stop_projection_build(self) -> None:
        """Stop a projection being built beside the loop (at shutdown): the worker thread ends after its current
        chunk, nothing is published, and the next process builds it again."""
        task = self._rebuilding
        if task is None:
            return
        self._stop_build.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._rebuilding = None  # a task cancelled before its first step never ran its own cleanup

    async def wait_projection(self) -> None:
        """Wait for a projection being built beside the caller (none: return at once)."""
        task = self._rebuilding
        if task is not None:
            await asyncio.shield(task)

    async def _rebuild_behind(self) -> None:
        """Build the projection from the stored events with the parsing and the replay in a worker thread, then
        apply what was stored meanwhile (ingests leave their events to it), and publish it. On failure, none is
        published: the next ingest rebuilds it as before."""
        try:
            began = monotonic()
            inventory = await self.inventory()
            contracts = await self.contracts()
            engines, stored, base = await self._engines_to_build(inventory, contracts)
            position, url = stored.position, stored.url
            pending = deque(stored.rows)  # the only reference left: each chunk is freed once applied
            del stored
            stop = self._stop_build
            replayed = await asyncio.to_thread(_replay_in_chunks, pending, url, list(engines.values()), stop)
            applied = base + replayed
            snapshot_events = base
            if not stop.is_set() and self.snapshot_after is not None and replayed >= self.snapshot_after:
                # pickled in the worker thread: these engines are not shared until published below
                key = await self._key_for(inventory, contracts)
                data, raw = await asyncio.to_thread(dump_engines, engines, inventory)
                if await self._write_snapshot(key, engines, position, applied, data, raw):
                    snapshot_events = applied
                del data
            while not stop.is_set():  # catch up with what was stored meanwhile, until nothing more is
                tail = await self.repo.load_event_log_after(position)
                if not tail.rows:
                    break
                first = tail.first_known()
                if first is not None and any(e.now is not None and first <= e.now for e in engines.values()):
                    log.warning("projection not built beside the loop: earlier events arrived; rebuilt inline next")
                    return
                applied += await asyncio.to_thread(
                    _replay_in_chunks, deque(tail.rows), url, list(engines.values()), stop
                )
                position = tail.position
            if stop.is_set():  # stopped part way: nothing is published
                return
            # No await between the last look and publishing, and none before the build stops being "in progress":
            # an ingest from here on projects as usual. (One that still saw a build in progress after the last look
            # left its events to a build that would never read them: found as a lost incident on PostgreSQL.)
            self._projection = _Projection(inventory, tuple(contracts), engines, applied, position, snapshot_events)
            store = self._store_build
            if self._rebuilding is asyncio.current_task():
                self._rebuilding = None
            if store:  # asked to, or this process ingested events meanwhile: they are its to store
                await self._store_projection(whole=True)
            else:
                for engine in engines.values():
                    engine.forget_changed()
            log.info(
                "projection built beside the loop",
                extra={"events": applied, "seconds": round(monotonic() - began, 1)},
            )
        except Exception as exc:
            self._projection = None
            log.exception("projection not built", extra={"error": str(exc), "error_type": type(exc).__name__})
        finally:
            if self._rebuilding is asyncio.current_task():
                self._rebuilding = None

    async def _project(self, inserted: Sequence[Event], inventory: Inventory) -> None:
        """Apply newly stored events to the in-memory engines; rebuild whole when that would not be the same.

        Incremental only when this process has seen every stored event (another writer changes the count),
        the inventory and contracts are the ones the engines were built on (another process may have imported
        new ones), and the new events are all known after what the engines have applied (an earlier one would
        have to be replayed in its place).

        The events are stored already: a failure here must not make the next ingest fail too. The stored
        projection is replaced in one transaction (the old one stays whole on failure); the in-memory engines
        are dropped, so the next ingest (or report) rebuilds them from the stored events, and the failure is
        logged with its cause.
        """
        p = self._projection
        ordered = sorted(inserted, key=lambda e: e.known)  # stable: ties keep storage order, as a rebuild does
        try:
            if (
                p is None
                or p.inventory != inventory
                or p.contracts != tuple(await self.contracts())
                or await self.repo.count_events() != p.events + len(ordered)
                or any(e.now is not None and ordered[0].known <= e.now for e in p.engines.values())
            ):
                await self.rebuild()
                return
            for engine in p.engines.values():
                engine.replay(ordered)
            p.events += len(ordered)
            p.position = await event_position(self.db)  # the count added up: no other writer in between
            await self._store_projection(whole=False)
        except Exception as exc:
            self._projection = None
            log.exception(
                "incident projection not stored; it is rebuilt from the stored events on the next ingest",
                extra={"error": str(exc), "error_type": type(exc).__name__},
            )

    async def _store_projection(self, *, whole: bool) -> None:
        """Write the engines' incidents: all of them (``whole``), or those changed since the last write (one
        write at a time: a whole write of a projection built beside the loop is not overtaken by a newer one)."""
        async with self._store_lock:
            await self._write_projection(whole=whole)

    async def _write_projection(self, *, whole: bool) -> None:
        p = self._projection
        assert p is not None
        inventory = p.inventory
        for contract_id, engine in p.engines.items():
            if whole:
                engine.forget_changed()
                incidents = [i.view(inventory, engine.policy.level_for(i.peak)) for i in engine.incidents]
            else:
                incidents = engine.drain_changed()
                if not incidents:
                    continue

            async def store(
                also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
                contract_id: str = contract_id,
                incidents: Sequence[IncidentView] = incidents,
            ) -> None:
                await self.repo.replace_incidents(
                    contract_id,
                    incidents,
                    lambda pos: (inventory.channels[pos].label, inventory.channels[pos].node),
                    whole=whole,
                    also=also,
                )

            if self.alerts is None:
                await store()
            else:  # the outbox rows are planned and written inside the projection write's transaction
                contract = next(c for c in p.contracts if c.id == contract_id)
                await self.alerts.incidents_changed(contract, incidents, inventory, self.clock(), store)

    async def report(
        self,
        month: str,
        *,
        as_of: datetime | None = None,
        contract_id: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> IssuedReport:
        """Assess a month as of a time (default now), from the events known by then (R8). Stores nothing (R9).

        The events are loaded here, on the event loop; the replay and the assessment run in worker threads so
        that the loop stays responsive, and ``checkpoint`` (e.g. an HTTP request's ``is_disconnected``) is
        asked before each expensive step: when it says the caller has gone, :class:`ReportCancelled`.
        """
        contract = await self.contract(contract_id)
        m = month_of(month, contract)
        for_now = as_of is None
        as_of = as_of or self.clock()
        inventory = await self.inventory()
        cache = self.report_cache
        if cache is None:
            return await self._compute_report(contract, m, as_of, inventory, checkpoint)
        terms = json.dumps(contract.to_json(), sort_keys=True, ensure_ascii=False)
        key = ReportKey(contract.id, terms, m.key, self._cache.fingerprint or (), await event_position(self.db))
        async with cache.lock(key):  # a second request for the same report waits for the first one's result
            hit = cache.get(key, None if for_now else as_of)
            if hit is not None:
                report, age = hit
                log.debug("report from memory", extra={"contract": contract.id, "month": m.key, "age_s": age})
                return replace(report, age_s=age)
            computed = await self._compute_report(contract, m, as_of, inventory, checkpoint)
            cache.put(replace(key, position=computed.position), as_of, computed, for_now=for_now)
            return computed

    async def _compute_report(
        self, contract: Contract, m: Month, as_of: datetime, inventory: Inventory, checkpoint: Checkpoint | None
    ) -> IssuedReport:
        await go_on(checkpoint, "events")
        engine, events = await self._engine_as_of(contract, inventory, as_of)
        await go_on(checkpoint, "replay")
        log.debug("report computing", extra={"contract": contract.id, "month": m.key, "events": len(events.rows)})
        history = await asyncio.to_thread(replay_history, engine, events, as_of)
        await go_on(checkpoint, "assessment")
        generated_at = self.clock()
        assessment, body, text = await asyncio.to_thread(assess_body, inventory, contract, history, m, generated_at)
        return IssuedReport(assessment, None, generated_at, body, text, events.position)

    async def _engine_as_of(self, contract: Contract, inventory: Inventory, as_of: datetime) -> tuple[Engine, EventLog]:
        """An engine of the contract's own and the stored events to replay into it for a history as of ``as_of``:
        the projection's stored snapshot and the events after it when the snapshot holds only events known by
        ``as_of`` (a report of now: seconds instead of a replay of the whole log at 100,000 channels), else a
        fresh engine and every event known by then."""
        found = await self._from_snapshot(inventory, await self.contracts(), until_known=as_of)
        if found is not None:
            engines, tail, _snap = found
            return engines[contract.id], tail
        return self._engine(contract, inventory), await self.repo.load_event_log(until_known=as_of)

    async def month_report(
        self,
        month: str,
        *,
        as_of: datetime | None = None,
        contract_id: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> MonthReport:
        """The month's report: the computation while the month is open; once closed (a version is signed), the
        signed version beside the computation and what changed since the signature (R9). Stores nothing."""
        contract = await self.contract(contract_id)
        m = month_of(month, contract)
        computed = await self.report(m.key, as_of=as_of, contract_id=contract.id, checkpoint=checkpoint)
        zone = contract.policy.zone
        signed = await self.repo.signed_report(contract.id, m.key)
        if signed is None:
            return MonthReport(computed, zone, contract.policy.claim_hour)
        delta = await self.repo.events_since(
            position=signed.last_event_seq,
            as_of=signed.as_of,
            until_known=computed.assessment.as_of,
            dated_from=m.start,
            dated_to=m.end,
            limit=LISTED,
        )
        changes = changes_json(signed, computed.body, delta, zone)
        return MonthReport(computed, zone, contract.policy.claim_hour, signed, changes)

    async def issue_report(
        self,
        month: str,
        *,
        by: str,
        as_of: datetime | None = None,
        reason: str | None = None,
        contract_id: str | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> StoredReport:
        """Issue a new version of a month's report as of a time (default now; not in the future), by ``by``.

        It stores the report's JSON text, the policy hash, the as-of, the issuer and the event-log position the
        computation saw; that text is what the version returns ever after. A closed month needs a ``reason``
        (:class:`ReportStateError` 409, field ``reason``); a reason is at most 4 KiB (InputError).
        """
        contract = await self.contract(contract_id)
        m = month_of(month, contract)
        reason = check_reason(reason)
        as_of = check_as_of(as_of, self.clock())
        signed = await self.repo.signed_report(contract.id, m.key)
        if signed is not None and reason is None:  # checked again when storing; this spares the computation
            raise ReportStateError(
                f"{m.key} is closed (version {signed.version} is signed): a new version needs a stated reason",
                status=409,
                field="reason",
            )
        computed = await self.report(m.key, as_of=as_of, contract_id=contract.id, checkpoint=checkpoint)
        stored = await self.repo.issue_report(
            contract.id,
            m.key,
            as_of=as_of,
            issued_at=computed.generated_at,
            policy_hash=contract.policy.hash,
            body=computed.body,
            issued_by=by,
            last_event_seq=computed.position,
            reason=reason,
        )
        log.info(
            "report issued",
            extra={"contract": contract.id, "month": m.key, "version": stored.version, "by": by},
        )
        return stored

    async def report_versions(self, month: str, *, contract_id: str | None = None) -> list[ReportVersion]:
        """The issued versions of a month, by version (without their bodies)."""
        contract = await self.contract(contract_id)
        return await self.repo.list_reports(contract.id, month_of(month, contract).key)

    async def report_version(self, month: str, version: int, *, contract_id: str | None = None) -> StoredReport:
        """An issued version as stored (its ``content`` is the JSON text as issued); 404 ReportStateError if none."""
        contract = await self.contract(contract_id)
        key = month_of(month, contract).key
        stored = await self.repo.load_report(contract.id, key, version)
        if stored is None:
            raise ReportStateError(
                f"no version {version} of the {key} report of contract {contract.id}", status=404, field="version"
            )
        return stored

    async def sign_report(self, month: str, version: int, *, by: str, contract_id: str | None = None) -> ReportVersion:
        """Sign an issued version (the month is then closed and it is the paid one); see
        :meth:`Repository.sign_report` for when a signature is refused."""
        contract = await self.contract(contract_id)
        key = month_of(month, contract).key
        signed = await self.repo.sign_report(contract.id, key, version, signed_by=by, signed_at=self.clock())
        log.info("report signed", extra={"contract": contract.id, "month": key, "version": version, "by": by})
        return signed

    # ------------------------------------------------------------------ read-only views of the projection
    # (for the metrics' month-to-date figures, monitor/projection.py; they never change the engines)
    def projection_engines(self) -> tuple[tuple[Contract, Engine], ...] | None:
        """Each contract with the live engine behind its incident projection, kept up to date by every ingest;
        None when there is none yet (or it was dropped after a failure): :meth:`rebuild` builds it. Callers
        only read the engines."""
        p = self._projection
        if p is None:
            return None
        return tuple((c, p.engines[c.id]) for c in p.contracts if c.id in p.engines)

    async def exclusion_requesters(self, contract_id: str, incident_id: str) -> frozenset[str]:
        """Who asked for an exclusion of an incident: the audit log's actors of the exclusion requests its
        contract's engine applied to it (named by incident id or by node), and the ``by`` those requests name.
        An exclusion is decided by someone else (issue 8: nobody approves their own request)."""
        if self._projection is None:
            await self.rebuild()
        p = self._projection
        engine = None if p is None else p.engines.get(contract_id)
        incident = None if engine is None else next((i for i in engine.incidents if i.id == incident_id), None)
        steps = [] if incident is None else [s for s in incident.exclusion if s.status is ExclusionStatus.REQUESTED]
        names = {s.by for s in steps if s.by}
        applied = {(format_time(s.at), s.cause, s.evidence) for s in steps}
        after: int | None = None
        while True:
            page = await self.repo.query_audit(action="exclusion", after_seq=after, limit=1000)
            for entry in page:
                d = entry.detail or {}
                if d.get("status") != ExclusionStatus.REQUESTED.value:
                    continue
                if d.get("incident") == incident_id or (
                    d.get("node") is not None and (d.get("at"), d.get("cause", ""), d.get("evidence")) in applied
                ):
                    names.add(entry.actor)
            if len(page) < 1000:
                return frozenset(names)
            after = page[-1].seq

    async def claim_day(self, contract: Contract, day: date) -> tuple[datetime, datetime, list[ClaimStatus]]:
        """The daily claim-rule list of ``day`` (in the contract's zone): ``(the claim instant, as of, every channel
        offline then, judged)`` from everything known now (the report's rule, :func:`claim_statuses`). Replayed
        as a report is (from the projection's snapshot when it can), in a worker thread."""
        policy = contract.policy
        at = datetime.combine(day, time(policy.claim_hour), tzinfo=policy.zone).astimezone(UTC)
        as_of = self.clock()
        inventory = await self.inventory()
        engine, events = await self._engine_as_of(contract, inventory, as_of)

        def judge() -> list[ClaimStatus]:
            history = replay_history(engine, events, as_of)
            maintenance = MaintenanceIndex(inventory, history.maintenance)
            excluded = excluded_ids(verdicts(inventory, history, maintenance))
            return claim_statuses(inventory, policy, history, [at], excluded, maintenance)

        return at, as_of, await asyncio.to_thread(judge)

    def projection_events(self) -> int | None:
        """How many stored events the projection has applied (None: no projection): fewer than are stored
        when another process stored events since."""
        p = self._projection
        return None if p is None else p.events


REBUILD_BEHIND_AFTER = 50_000
"""Stored events above which a long-running process (the live service, the API) builds a missing incident
projection beside its event loop (:meth:`Service.build_projection_beside`) rather than inside the call that needs
it: at 100,000 channels with a month of history the replay takes 20 s, and every request would wait for it."""

CATCH_UP_MAX_EVENTS = 5000
"""Above this many events stored elsewhere, a reader's projection is rebuilt beside the loop, not caught up on it
(106,434 rows, as a collector's start at 100,000 nodes stores, took 9 s of the loop to parse and replay)."""

SNAPSHOT_AFTER_EVENTS = 20_000
"""A projection built by replaying at least this many stored events is stored as a snapshot (about 2 s of replay
at 100,000 channels; a start of the live service at that size stores 106,434 ``unknown`` events)."""

_CHUNK = 5000  # stored events parsed and replayed at a time by a projection built beside the loop
_PAUSE_S = 0.2  # the worker's pause between chunks: the loop's cycles and requests come first


def _replay_in_chunks(
    pending: deque[tuple[str, Any]], url: str, engines: Sequence[Engine], stop: threading.Event | None = None
) -> int:
    """Replay the stored events' ``(id, payload)`` rows (in processing order, taken from ``pending`` as they go)
    through ``engines`` a chunk at a time, cut only between instants (events known at the same time stay
    together, as one replay takes them), each chunk freed once applied (a month parsed at once held ~200 MB
    more); returns how many were applied. Runs in a worker thread, pausing between chunks so that the event
    loop keeps its turns; ``stop`` set: returns after the current chunk (what it returns is then incomplete)."""
    applied = 0
    while pending and not (stop is not None and stop.is_set()):
        rows = [pending.popleft() for _ in range(min(_CHUNK, len(pending)))]
        part = EventLog(rows, 0, url).events()
        while pending and part[0].known == part[-1].known:  # one instant longer than a chunk: take it whole
            more = [pending.popleft() for _ in range(min(_CHUNK, len(pending)))]
            rows += more
            part += EventLog(more, 0, url).events()
        if pending:  # the last instant may go on in what is pending: it waits for the next chunk
            cut = len(part)
            while part[cut - 1].known == part[-1].known:
                cut -= 1
            pending.extendleft(reversed(rows[cut:]))
            part = part[:cut]
        for engine in engines:
            engine.replay(part)
        applied += len(part)
        del rows, part
        if pending:
            sleep(_PAUSE_S)
    return applied


def _subject(event: BaseEvent) -> str:
    if isinstance(event, TargetedEvent):
        return event.incident or event.node or ""
    if isinstance(event, MaintenanceEvent):
        return event.scope
    if isinstance(event, FindingEvent):
        return f"item {event.item}"
    if isinstance(event, ExclusionEvent):
        return json.dumps(event.to_json())
    return ""
