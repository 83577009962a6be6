"""Everything slawatch stores, behind one typed :class:`Repository` (get it from ``Database.repository()``).

Each method is one transaction: it either happens whole or not at all, and any error from the database or
its driver comes out as :class:`~monitor.errors.StorageError` (arguments of the wrong shape raise
:class:`ValueError` before anything is written).

* **Events** are the source of truth. :meth:`Repository.append_events` stores only events whose id is new
  (the same event twice is one row) and returns those it stored; :meth:`Repository.load_events` gives them
  back in processing order, ``(known, seq)``. The repository does not judge which events to store (the
  service keeps the confirmed ``state`` events, not raw polls).
* **Poll runs**, the **inventory** and the **contracts** are current state, rewritten whole.
  Nodes referenced by stored events may be removed from the inventory: events name nodes by id only.
* **Incidents** are a projection the engine rebuilds from the events, replaced per contract.
* **Reports**: only issued versions are stored (computing one stores nothing), each with its JSON text as
  issued, the event-log position it saw, and the assessor's signature (SPEC R9).
* The **audit log** and **evidence** files are append-only.
* **Tokens**: only the sha256 of a secret is stored; the secret is returned once by
  :meth:`Repository.create_token`.

All times go in and come out timezone-aware (UTC on the way out); a naive datetime is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.confirmation import PollRun
from monitor.errors import EventError, InventoryError, SlawatchError, StorageError
from monitor.events import Event, MaintenanceEvent, parse_event
from monitor.incidents import IncidentView
from monitor.inventory import Inventory, Node, NodeKind, SnmpSettings
from monitor.inventory_io import InventoryDiff, diff_inventories
from monitor.storage.database import WRITE_OPTION, translate_errors
from monitor.storage.tables import (
    AuditRow,
    ContractRow,
    EventRow,
    EvidenceRow,
    IncidentMemberRow,
    IncidentRow,
    IncidentTimelineRow,
    NodeRow,
    PollRunRow,
    ReportRow,
    TokenRow,
)
from monitor.storage.token_cache import TOKENS

__all__ = [
    "CONTRACT_KEYS",
    "AuditEntry",
    "EventDelta",
    "EventLog",
    "EventRecord",
    "EvidenceFile",
    "ReportStateError",
    "ReportVersion",
    "Repository",
    "StoredReport",
    "TokenInfo",
    "report_text",
]

_events = cast(Table, EventRow.__table__)
_poll_runs = cast(Table, PollRunRow.__table__)
_nodes = cast(Table, NodeRow.__table__)
_contracts = cast(Table, ContractRow.__table__)
_incidents = cast(Table, IncidentRow.__table__)
_members = cast(Table, IncidentMemberRow.__table__)
_timeline = cast(Table, IncidentTimelineRow.__table__)
_reports = cast(Table, ReportRow.__table__)
_tokens = cast(Table, TokenRow.__table__)
_audit = cast(Table, AuditRow.__table__)
_evidence = cast(Table, EvidenceRow.__table__)

#: Rows per multi-row statement (stays well below SQLite's and asyncpg's bound-parameter limits).
_CHUNK = 500
_MONTH_RE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_REPORT_RETRIES = 5

#: The keys a stored contract has; ``id`` is required, the others default as in :meth:`save_contracts`.
CONTRACT_KEYS = ("id", "name", "customer", "timezone", "base", "scopes", "policy")

T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


# ------------------------------------------------------------------------------------- value records


@dataclass(frozen=True, slots=True)
class ReportVersion:
    """What is known about one issued version of a monthly report (SPEC R9), without its body.

    ``generated_at`` is when it was issued; ``last_event_seq`` the position in the event log it saw (None for
    versions stored before migration 0004, as ``issued_by``). ``signed`` is true for the one signed version
    of the month that is not superseded: the paid one.
    """

    contract_id: str
    month: str
    version: int
    as_of: datetime
    generated_at: datetime
    policy_hash: str
    issued_by: str | None = None
    last_event_seq: int | None = None
    reason: str | None = None
    signed_at: datetime | None = None
    signed_by: str | None = None
    superseded_by: int | None = None

    @property
    def signed(self) -> bool:
        return self.signed_at is not None and self.superseded_by is None


@dataclass(frozen=True, slots=True)
class StoredReport:
    """One issued version of a monthly report: ``content`` is its JSON text exactly as issued, ``body`` the
    same value parsed."""

    contract_id: str
    month: str
    version: int
    as_of: datetime
    generated_at: datetime
    policy_hash: str
    body: dict[str, Any]
    content: str = ""
    issued_by: str | None = None
    last_event_seq: int | None = None
    reason: str | None = None
    signed_at: datetime | None = None
    signed_by: str | None = None
    superseded_by: int | None = None

    @property
    def signed(self) -> bool:
        return self.signed_at is not None and self.superseded_by is None

    def info(self) -> ReportVersion:
        return ReportVersion(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ReportVersion)})


class ReportStateError(SlawatchError):
    """The month's versions do not allow an issue or a signature: ``status`` 404 (no such version) or 409
    (the month is closed, the version is already signed, ...); ``field`` names the input at fault."""

    def __init__(self, message: str, *, status: int, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A stored event as the log has it: ``seq`` its position, ``at`` its dated time, ``known`` when it became
    known, ``recorded_at`` when the store received it, ``source`` where it came from."""

    seq: int
    type: str
    at: datetime
    known: datetime
    node: str | None
    source: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class EventDelta:
    """Events one report saw that another did not (:meth:`Repository.events_since`)."""

    count: int  # dated in the range asked for
    events: list[EventRecord]  # the first of those, in storage order
    elsewhere: int  # dated outside it


@dataclass(frozen=True, slots=True)
class EventLog:
    """Stored event payloads in processing order and the log position when they were read."""

    rows: list[tuple[str, Any]]
    position: int
    url: str = ""

    def first_known(self) -> datetime | None:
        """The known time of the first event (the rows are in processing order: the earliest known), parsing that
        one row only; None when there is none."""
        return EventLog(self.rows[:1], self.position, self.url).events()[0].known if self.rows else None

    def events(self) -> list[Event]:
        """The payloads parsed (pure: safe in a worker thread)."""
        out: list[Event] = []
        for eid, payload in self.rows:
            try:
                out.append(parse_event(payload, UTC, where=f"stored event {eid}"))
            except EventError as exc:
                raise StorageError(f"the database at {self.url} holds an event that does not parse: {exc}") from exc
        return out


def report_text(body: Mapping[str, Any]) -> str:
    """A report's JSON text as stored and served: UTF-8, compact, keys in the report's order, no NaN."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


_REPORT_INFO = tuple(_reports.c[f.name] for f in dataclasses.fields(ReportVersion))


def _report_version(row: Any) -> ReportVersion:
    return ReportVersion(**{f.name: row[f.name] for f in dataclasses.fields(ReportVersion)})


def _stored_report(row: Any) -> StoredReport:
    values = {f.name: row[f.name] for f in dataclasses.fields(StoredReport) if f.name != "content"}
    content = row["content"]
    return StoredReport(**values, content=content if content is not None else report_text(row["body"]))


def _report_subject(contract_id: str, month: str, version: int) -> str:
    return f"report {contract_id}/{month} v{version}"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token without its secret (which is not stored)."""

    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit log entry: who (``actor``) did what (``action``) to what (``subject``), when."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """An uploaded evidence file; ``id`` is the sha256 (hex) of ``content``."""

    id: str
    filename: str
    media_type: str
    size: int
    content: bytes = dataclasses.field(repr=False)
    uploaded_at: datetime
    uploaded_by: str


# ----------------------------------------------------------------------------------------- helpers


def _event_node(event: Event) -> str | None:
    if isinstance(event, MaintenanceEvent):
        return event.scope
    return cast(str | None, getattr(event, "node", None))


def _node_row(node: Node, position: int) -> dict[str, Any]:
    return {
        "id": node.id,
        "position": position,
        "kind": node.kind.value,
        "parent": node.parent,
        "name": node.name,
        "address": node.address,
        "channels": node.channels,
        "bandwidth_mbps": node.bandwidth_mbps,
        "monthly_fee": node.monthly_fee,
        "in_county": node.in_county,
        "commissioned": node.commissioned,
        "decommissioned": node.decommissioned,
        "snmp": dataclasses.asdict(node.snmp) if node.snmp is not None else None,
    }


def _node_from_row(row: Any) -> Node:
    snmp = SnmpSettings(**row.snmp) if row.snmp is not None else None
    return Node(
        id=row.id,
        kind=NodeKind(row.kind),
        parent=row.parent,
        name=row.name,
        address=row.address,
        channels=row.channels,
        bandwidth_mbps=row.bandwidth_mbps,
        monthly_fee=row.monthly_fee,
        in_county=row.in_county,
        commissioned=row.commissioned,
        decommissioned=row.decommissioned,
        snmp=snmp,
    )


def _contract_row(contract: Mapping[str, Any], position: int) -> dict[str, Any]:
    unknown = sorted(set(contract) - set(CONTRACT_KEYS))
    if unknown:
        raise ValueError(f"contract has keys the store does not keep: {', '.join(unknown)}")
    cid = contract.get("id")
    if not isinstance(cid, str) or not cid:
        raise ValueError(f"contract id {cid!r} is not a non-empty string")
    base = contract.get("base")
    if base is not None and not isinstance(base, str):
        if isinstance(base, bool) or not isinstance(base, int | Decimal):
            raise ValueError(f"contract {cid!r}: base {base!r} is not text, an integer or a Decimal")
        base = str(base)
    scopes = list(contract.get("scopes") or [])
    if not all(isinstance(s, str) for s in scopes):
        raise ValueError(f"contract {cid!r}: scopes must be node ids")
    policy = contract.get("policy") or {}
    if not isinstance(policy, Mapping):
        raise ValueError(f"contract {cid!r}: policy must be a mapping")
    return {
        "id": cid,
        "position": position,
        "name": str(contract.get("name") or ""),
        "customer": str(contract.get("customer") or ""),
        "timezone": str(contract.get("timezone") or "Asia/Shanghai"),
        "base": base,
        "scopes": scopes,
        "policy": dict(policy),
    }


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Repository:
    """Typed access to the slawatch tables of one database (see the module docstring).

    ``clock`` gives "now" (UTC) for ``recorded_at``, ``created_at`` and the like; tests may replace it.
    """

    def __init__(self, engine: AsyncEngine, url: str, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._url = url
        self._dialect = engine.dialect.name
        self._clock = clock

    # --------------------------------------------------------------------------------- plumbing

    @asynccontextmanager
    async def _write(self, action: str) -> AsyncIterator[AsyncConnection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite); errors become StorageError."""
        with translate_errors(action, self._url):
            async with self._engine.connect() as conn:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    yield conn

    @asynccontextmanager
    async def _read(self, action: str, *, one_snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """One read-only transaction; errors become StorageError. ``one_snapshot``: every statement in it sees
        the same committed state (PostgreSQL's REPEATABLE READ; a SQLite read transaction always does). Under
        PostgreSQL's default READ COMMITTED each statement sees its own: rows read, then an event committed, then
        ``max(seq)`` read gave a position past an event the rows did not hold, and whoever read on from that
        position never saw it (a projection built beside the loop lost an event posted while it read)."""
        with translate_errors(action, self._url):
            async with self._engine.connect() as conn:
                if one_snapshot and self._dialect == "postgresql":
                    await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    yield conn

    def _insert(self, table: Table) -> Any:
        """The dialect's INSERT (it has ``on_conflict_do_nothing`` / ``on_conflict_do_update``)."""
        return pg_insert(table) if self._dialect == "postgresql" else sqlite_insert(table)

    def _now(self) -> datetime:
        return _aware(self._clock(), "clock")

    # ----------------------------------------------------------------------------------- events

    async def append_events(
        self,
        events: Iterable[Event],
        source: str,
        *,
        audit: Callable[[Event], tuple[str, str, str | None] | None] | None = None,
    ) -> list[Event]:
        """Store the events whose id is not stored yet, in the given order; return those, in that order.

        ``source`` says where they came from (``replay:file.jsonl:12``, ``api:token-name``, ``collector``).
        ``audit`` maps a newly stored event to an audit entry ``(actor, action, subject)`` (None: no entry);
        the entries are written in the same transaction as the events, so neither is ever stored alone.
        """
        unique: dict[str, Event] = {}
        for ev in events:
            unique.setdefault(ev.id, ev)
        if not unique:
            return []
        now = self._now()
        rows = [
            {
                "id": eid,
                "known": ev.known,
                "at": ev.at,
                "type": ev.type,
                "node": _event_node(ev),
                "payload": ev.to_json(),
                "source": source,
                "recorded_at": now,
            }
            for eid, ev in unique.items()
        ]
        inserted: set[str] = set()
        # One statement compiled once and sent as "insertmanyvalues" batches: a multi-VALUES statement built
        # per chunk spent most of a large replay compiling SQL.
        stmt = self._insert(_events).on_conflict_do_nothing(index_elements=["id"]).returning(_events.c.id)
        async with self._write("append events") as conn:
            for chunk in _chunks(rows, 5000):
                inserted.update((await conn.execute(stmt, list(chunk))).scalars())
            new = [ev for eid, ev in unique.items() if eid in inserted]
            entries: list[dict[str, object]] = []
            for ev in new:
                entry = audit(ev) if audit is not None else None
                if entry is not None:
                    actor, action, subject = entry
                    entries.append(
                        {"at": now, "actor": actor, "action": action, "subject": subject, "detail": ev.to_json()}
                    )
            for batch in _chunks(entries, 5000):
                await conn.execute(insert(_audit), list(batch))
        return new

    async def load_events(self, until_known: datetime | None = None) -> list[Event]:
        """Stored events in processing order ``(known, seq)``; with ``until_known``, only those known at or
        before it (inclusive)."""
        stmt = select(_events.c.id, _events.c.payload).order_by(_events.c.known, _events.c.seq)
        if until_known is not None:
            stmt = stmt.where(_events.c.known <= _aware(until_known, "until_known"))
        async with self._read("load events") as conn:
            rows = (await conn.execute(stmt)).all()
        out: list[Event] = []
        for eid, payload in rows:
            try:
                out.append(parse_event(payload, UTC, where=f"stored event {eid}"))
            except EventError as exc:
                raise StorageError(
                    f"the database at {self._url} holds an event that does not parse: {exc}"
                ) from exc
        return out

    async def count_events(self) -> int:
        """How many events are stored."""
        async with self._read("count events") as conn:
            return int((await conn.execute(select(func.count()).select_from(_events))).scalar_one())

    # -------------------------------------------------------------------------------- poll runs

    async def save_poll_runs(self, runs: Mapping[str, PollRun]) -> None:
        """Insert or update the run of each node in ``runs`` (others stay as they are), in one transaction."""
        rows = [
            {
                "node": node,
                "ok": run.ok,
                "count": run.count,
                "since": run.since,
                "last_poll": run.last_poll,
            }
            for node, run in runs.items()
        ]
        if not rows:
            return
        stmt = self._insert(_poll_runs)
        stmt = stmt.on_conflict_do_update(
            index_elements=["node"],
            set_={c: getattr(stmt.excluded, c) for c in ("ok", "count", "since", "last_poll")},
        )
        async with self._write("save poll runs") as conn:
            for chunk in _chunks(rows, 5000):
                await conn.execute(stmt, list(chunk))

    async def load_poll_runs(self) -> dict[str, PollRun]:
        async with self._read("load poll runs") as conn:
            rows = (await conn.execute(select(_poll_runs).order_by(_poll_runs.c.node))).mappings().all()
        return {
            r["node"]: PollRun(ok=r["ok"], count=r["count"], since=r["since"], last_poll=r["last_poll"])
            for r in rows
        }

    # -------------------------------------------------------------------------------- inventory

    async def _load_inventory(self, conn: AsyncConnection) -> Inventory:
        rows = (await conn.execute(select(_nodes).order_by(_nodes.c.position, _nodes.c.id))).all()
        try:
            return Inventory(_node_from_row(r) for r in rows)
        except (InventoryError, ValueError) as exc:
            raise StorageError(f"the inventory stored in {self._url} does not validate: {exc}") from exc

    async def load_inventory(self) -> Inventory:
        """The stored inventory in its order (an empty one when none is stored)."""
        async with self._read("load the inventory") as conn:
            return await self._load_inventory(conn)

    async def save_inventory(self, inventory: Inventory) -> InventoryDiff:
        """Make ``inventory`` (already validated) the stored one, in one transaction; return what changed.

        Nodes are updated in place, new ones inserted, missing ones deleted; order changes alone are stored
        but are not part of the diff. A removed node may still be named by stored events.
        """
        async with self._write("save the inventory") as conn:
            old = await self._load_inventory(conn)
            diff = diff_inventories(old, inventory)
            old_position = {nid: i for i, nid in enumerate(old)}
            changed = set(diff.changed)
            updates: list[dict[str, Any]] = []
            inserts: list[dict[str, Any]] = []
            for position, node in enumerate(inventory.values()):
                if node.id not in old_position:
                    inserts.append(_node_row(node, position))
                elif node.id in changed:
                    row = _node_row(node, position)
                    row["key"] = row.pop("id")
                    updates.append(row)
                elif old_position[node.id] != position:
                    updates.append({"key": node.id, "position": position})
            for ids in _chunks(list(diff.removed), 5000):
                await conn.execute(delete(_nodes).where(_nodes.c.id.in_(ids)))
            # Position-only and full updates have different SET clauses: run them as two executemany.
            for group in (
                [u for u in updates if len(u) == 2],
                [u for u in updates if len(u) > 2],
            ):
                if group:
                    values: dict[str, Any] = {k: bindparam(k) for k in group[0] if k != "key"}
                    stmt = update(_nodes).where(_nodes.c.id == bindparam("key")).values(values)
                    await conn.execute(stmt, group)
            for chunk in _chunks(inserts, 5000):
                await conn.execute(insert(_nodes), list(chunk))
        return diff

    # -------------------------------------------------------------------------------- contracts

    async def save_contracts(self, contracts: Sequence[Mapping[str, Any]]) -> None:
        """Make ``contracts`` the stored set, in order, in one transaction.

        Each is a mapping with ``id`` (required), ``name``, ``customer`` (default ""), ``timezone`` (default
        ``Asia/Shanghai``), ``base`` (text or None; a number is stored as its text), ``scopes`` (node ids,
        default []) and ``policy`` (a JSON object, default {}). Other keys are refused (ValueError).
        """
        rows = [_contract_row(c, i) for i, c in enumerate(contracts)]
        ids = [r["id"] for r in rows]
        if len(set(ids)) != len(ids):
            raise ValueError("contract ids are not unique")
        async with self._write("save contracts") as conn:
            await conn.execute(delete(_contracts))
            if rows:
                await conn.execute(insert(_contracts), rows)

    async def load_contracts(self) -> list[dict[str, Any]]:
        """The stored contracts in their order, as dicts with the keys :data:`CONTRACT_KEYS`."""
        async with self._read("load contracts") as conn:
            rows = (await conn.execute(select(_contracts).order_by(_contracts.c.position))).mappings().all()
        return [{k: row[k] for k in CONTRACT_KEYS} for row in rows]

    # -------------------------------------------------------------------------------- incidents

    async def replace_incidents(
        self,
        contract_id: str,
        incidents: Sequence[IncidentView],
        channel_label: Callable[[int], tuple[str, str]],
        *,
        whole: bool = True,
        also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> None:
        """Replace every stored incident of ``contract_id`` by ``incidents``, in one transaction; with
        ``whole=False`` replace only the incidents given (by id) and keep the others.

        ``channel_label`` maps a channel position to its ``(label, node)``. ``also`` runs inside the same
        transaction once the incidents are written (the alert outbox rows this change causes: both or neither).
        """
        incident_rows: list[dict[str, Any]] = []
        member_rows: list[dict[str, Any]] = []
        timeline_rows: list[dict[str, Any]] = []
        labels: dict[int, tuple[str, str]] = {}
        for inc in incidents:
            status = inc.exclusion_status()
            incident_rows.append(
                {
                    "contract_id": contract_id,
                    "id": inc.id,
                    "scope": inc.scope,
                    "start": inc.start,
                    "end": inc.end,
                    "level": inc.level,
                    "peak": inc.peak,
                    "ack": inc.ack,
                    "ack_by": inc.ack_by,
                    "onsite": inc.onsite,
                    "onsite_by": inc.onsite_by,
                    "excluded": status.value if status is not None else None,
                }
            )
            for ordinal, position in enumerate(inc.members):
                if position not in labels:
                    labels[position] = channel_label(position)
                label, node = labels[position]
                member_rows.append(
                    {
                        "contract_id": contract_id,
                        "incident_id": inc.id,
                        "position": position,
                        "ordinal": ordinal,
                        "channel": label,
                        "node": node,
                    }
                )
            for seq, entry in enumerate(inc.timeline):
                timeline_rows.append(
                    {
                        "contract_id": contract_id,
                        "incident_id": inc.id,
                        "seq": seq,
                        "at": entry.at,
                        "known": entry.known,
                        "kind": entry.kind.value,
                        "detail": entry.detail,
                    }
                )
        async with self._write(f"replace the incidents of contract {contract_id}") as conn:
            for table in (_timeline, _members, _incidents):
                if whole:
                    await conn.execute(delete(table).where(table.c.contract_id == contract_id))
                    continue
                key = table.c.id if table is _incidents else table.c.incident_id
                for ids in _chunks([inc.id for inc in incidents]):
                    await conn.execute(delete(table).where(table.c.contract_id == contract_id, key.in_(ids)))
            for table, rows in (
                (_incidents, incident_rows),
                (_members, member_rows),
                (_timeline, timeline_rows),
            ):
                for chunk in _chunks(rows, 5000):
                    await conn.execute(insert(table), list(chunk))
            if also is not None:
                await also(conn)

    async def load_incidents(self, contract_id: str) -> list[dict[str, Any]]:
        """The stored incidents of a contract, by start then id, as plain dicts.

        Keys: ``id``, ``scope``, ``start``, ``end``, ``open``, ``level``, ``peak``, ``ack``, ``ack_by``,
        ``onsite``, ``onsite_by``, ``excluded`` (exclusion status text or None), ``members`` (dicts with
        ``position``, ``channel``, ``node``, in the order they joined) and ``timeline`` (dicts with ``at``,
        ``known``, ``kind``, ``detail``). Times are aware UTC datetimes.
        """
        async with self._read(f"load the incidents of contract {contract_id}") as conn:

            async def rows(table: Table, *order: str) -> Sequence[Any]:
                stmt = select(table).where(table.c.contract_id == contract_id).order_by(*(table.c[o] for o in order))
                return (await conn.execute(stmt)).mappings().all()

            incidents = await rows(_incidents, "start", "id")
            members = await rows(_members, "incident_id", "ordinal")
            timeline = await rows(_timeline, "incident_id", "seq")
        by_id: dict[str, dict[str, Any]] = {}
        for row in incidents:
            item = {k: row[k] for k in row if k != "contract_id"}
            item["open"] = row["end"] is None
            item["members"] = []
            item["timeline"] = []
            by_id[row["id"]] = item
        for row in members:
            by_id[row["incident_id"]]["members"].append(
                {"position": row["position"], "channel": row["channel"], "node": row["node"]}
            )
        for row in timeline:
            by_id[row["incident_id"]]["timeline"].append(
                {"at": row["at"], "known": row["known"], "kind": row["kind"], "detail": row["detail"]}
            )
        return list(by_id.values())

    # ---------------------------------------------------------------------------------- reports

    async def _lock_month(self, conn: AsyncConnection, contract_id: str, month: str) -> None:
        """On PostgreSQL, one writer per (contract, month) at a time (SQLite's BEGIN IMMEDIATE already is)."""
        if self._dialect == "postgresql":
            key = func.hashtextextended(f"slawatch.reports/{contract_id}/{month}", 0)
            await conn.execute(select(func.pg_advisory_xact_lock(key)))

    @staticmethod
    def _check_month(month: str) -> None:
        if not _MONTH_RE.match(month):
            raise ValueError(f"month {month!r} is not YYYY-MM")

    async def save_report(
        self,
        contract_id: str,
        month: str,
        as_of: datetime,
        generated_at: datetime,
        policy_hash: str,
        body: Mapping[str, Any],
    ) -> int:
        """Store ``body`` as a new version of a contract's ``month`` (``YYYY-MM``) report as it is, without the
        checks of :meth:`issue_report` (no issuer, no event position); return its version (1, 2, ...).

        The version is the previous highest for (contract, month) plus one, assigned atomically."""
        self._check_month(month)
        row = {
            "contract_id": contract_id,
            "month": month,
            "as_of": _aware(as_of, "as_of"),
            "generated_at": _aware(generated_at, "generated_at"),
            "policy_hash": policy_hash,
            "body": dict(body),
        }
        latest = (
            select(func.coalesce(func.max(_reports.c.version), 0))
            .where(_reports.c.contract_id == contract_id, _reports.c.month == month)
            .scalar_subquery()
        )
        for attempt in range(_REPORT_RETRIES):
            try:
                # Should a concurrent writer still take the same number, the key refuses it: try again.
                async with self._write(f"save the {month} report of contract {contract_id}") as conn:
                    await self._lock_month(conn, contract_id, month)
                    stmt = insert(_reports).values(version=latest + 1, **row).returning(_reports.c.version)
                    return int((await conn.execute(stmt)).scalar_one())
            except StorageError as exc:
                if not isinstance(exc.__cause__, IntegrityError) or attempt == _REPORT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def issue_report(
        self,
        contract_id: str,
        month: str,
        *,
        as_of: datetime,
        issued_at: datetime,
        policy_hash: str,
        body: Mapping[str, Any],
        issued_by: str,
        last_event_seq: int,
        reason: str | None = None,
    ) -> StoredReport:
        """Issue a new version of a contract's ``month`` report (SPEC R9) and return it as stored.

        The version number (previous highest plus one) is written into the body as ``version``, and the body
        is kept as its JSON text (:func:`report_text`), which :meth:`load_report` returns unchanged ever after.
        When the month is closed (a version is signed) a ``reason`` is required (:class:`ReportStateError`
        409, field ``reason``). The issue is written to the audit log in the same transaction.
        """
        self._check_month(month)
        if not issued_by:
            raise ValueError("a report version needs its issuer")
        reason = reason or None
        for attempt in range(_REPORT_RETRIES):
            try:
                async with self._write(f"issue the {month} report of contract {contract_id}") as conn:
                    await self._lock_month(conn, contract_id, month)
                    signed = await self._signed_version(conn, contract_id, month)
                    if signed is not None and reason is None:
                        raise ReportStateError(
                            f"{month} is closed (version {signed} of contract {contract_id} is signed): a new "
                            "version needs a stated reason",
                            status=409,
                            field="reason",
                        )
                    latest = await conn.execute(
                        select(func.coalesce(func.max(_reports.c.version), 0)).where(
                            _reports.c.contract_id == contract_id, _reports.c.month == month
                        )
                    )
                    version = int(latest.scalar_one()) + 1
                    stored_body = {**body, "version": version}
                    when, issued = _aware(as_of, "as_of"), _aware(issued_at, "issued_at")
                    row: dict[str, Any] = {
                        "contract_id": contract_id,
                        "month": month,
                        "version": version,
                        "as_of": when,
                        "generated_at": issued,
                        "policy_hash": policy_hash,
                        "body": stored_body,
                        "content": report_text(stored_body),
                        "issued_by": issued_by,
                        "last_event_seq": last_event_seq,
                        "reason": reason,
                        "signed_at": None,
                        "signed_by": None,
                        "superseded_by": None,
                    }
                    await conn.execute(insert(_reports).values(**row))
                    await conn.execute(
                        insert(_audit).values(
                            at=issued,
                            actor=issued_by,
                            action="report issue",
                            subject=_report_subject(contract_id, month, version),
                            detail={
                                "as_of": when.isoformat(),
                                "policy_hash": policy_hash,
                                "last_event_seq": last_event_seq,
                                "reason": reason,
                            },
                        )
                    )
                    return _stored_report(row)
            except StorageError as exc:
                if not isinstance(exc.__cause__, IntegrityError) or attempt == _REPORT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _signed_version(self, conn: AsyncConnection, contract_id: str, month: str) -> int | None:
        stmt = select(_reports.c.version).where(
            _reports.c.contract_id == contract_id,
            _reports.c.month == month,
            _reports.c.signed_at.is_not(None),
            _reports.c.superseded_by.is_(None),
        )
        found = (await conn.execute(stmt)).scalar_one_or_none()
        return None if found is None else int(found)

    async def sign_report(
        self, contract_id: str, month: str, version: int, *, signed_by: str, signed_at: datetime
    ) -> ReportVersion:
        """Sign a version: the month is then closed and this version is the paid one (SPEC R9).

        Only one version of a month is signed at a time. While one is, another can be signed only if it was
        issued after it with a reason (the month reopened); the earlier signature is then superseded.
        :class:`ReportStateError` 404 when there is no such version, 409 when the rule refuses.
        """
        self._check_month(month)
        if not signed_by:
            raise ValueError("a signature needs its signer")
        when = _aware(signed_at, "signed_at")
        async with self._write(f"sign version {version} of the {month} report of contract {contract_id}") as conn:
            await self._lock_month(conn, contract_id, month)
            stmt = select(*_REPORT_INFO).where(_reports.c.contract_id == contract_id, _reports.c.month == month)
            rows = {int(r["version"]): _report_version(r) for r in (await conn.execute(stmt)).mappings()}
            target = rows.get(version)
            if target is None:
                have = ", ".join(str(v) for v in sorted(rows)) or "none"
                raise ReportStateError(
                    f"no version {version} of the {month} report of contract {contract_id} (issued: {have})",
                    status=404,
                    field="version",
                )
            current = next((r for r in rows.values() if r.signed), None)
            if target.signed:
                raise ReportStateError(f"version {version} of {month} is already the signed one", status=409)
            if target.signed_at is not None:
                raise ReportStateError(
                    f"version {version} of {month} was signed and superseded by version {target.superseded_by}; "
                    "issue a new version (with a reason) to sign again",
                    status=409,
                    field="version",
                )
            if current is not None:
                if version < current.version:
                    raise ReportStateError(
                        f"{month} is closed by signed version {current.version}; version {version} predates it: "
                        "issue a new version with a reason and sign that",
                        status=409,
                        field="version",
                    )
                if target.reason is None:
                    raise ReportStateError(
                        f"{month} is closed by signed version {current.version}; version {version} states no "
                        "reason: issue a new version with a reason and sign that",
                        status=409,
                        field="reason",
                    )
                await conn.execute(
                    update(_reports)
                    .where(
                        _reports.c.contract_id == contract_id,
                        _reports.c.month == month,
                        _reports.c.version == current.version,
                    )
                    .values(superseded_by=version)
                )
            await conn.execute(
                update(_reports)
                .where(
                    _reports.c.contract_id == contract_id, _reports.c.month == month, _reports.c.version == version
                )
                .values(signed_at=when, signed_by=signed_by)
            )
            await conn.execute(
                insert(_audit).values(
                    at=when,
                    actor=signed_by,
                    action="report sign",
                    subject=_report_subject(contract_id, month, version),
                    detail={"supersedes": None if current is None else current.version},
                )
            )
        return dataclasses.replace(target, signed_at=when, signed_by=signed_by)

    async def load_report(
        self, contract_id: str, month: str, version: int | None = None
    ) -> StoredReport | None:
        """A version of a report (the latest when ``version`` is None), or None when there is none."""
        stmt = select(_reports).where(_reports.c.contract_id == contract_id, _reports.c.month == month)
        if version is None:
            stmt = stmt.order_by(_reports.c.version.desc()).limit(1)
        else:
            stmt = stmt.where(_reports.c.version == version)
        async with self._read(f"load the {month} report of contract {contract_id}") as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _stored_report(row)

    async def signed_report(self, contract_id: str, month: str) -> StoredReport | None:
        """The signed (paid) version of a contract's month, or None while the month is open."""
        stmt = select(_reports).where(
            _reports.c.contract_id == contract_id,
            _reports.c.month == month,
            _reports.c.signed_at.is_not(None),
            _reports.c.superseded_by.is_(None),
        )
        async with self._read(f"load the signed {month} report of contract {contract_id}") as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _stored_report(row)

    async def report_versions(self, contract_id: str, month: str) -> list[int]:
        """The versions stored for a contract's month, ascending."""
        stmt = (
            select(_reports.c.version)
            .where(_reports.c.contract_id == contract_id, _reports.c.month == month)
            .order_by(_reports.c.version)
        )
        async with self._read(f"list the {month} reports of contract {contract_id}") as conn:
            return [int(v) for v in (await conn.execute(stmt)).scalars()]

    async def list_reports(self, contract_id: str, month: str) -> list[ReportVersion]:
        """What is known about each version of a contract's month (not the bodies), by version."""
        stmt = (
            select(*_REPORT_INFO)
            .where(_reports.c.contract_id == contract_id, _reports.c.month == month)
            .order_by(_reports.c.version)
        )
        async with self._read(f"list the {month} reports of contract {contract_id}") as conn:
            return [_report_version(r) for r in (await conn.execute(stmt)).mappings()]

    async def load_event_log(self, until_known: datetime | None = None) -> EventLog:
        """The stored events' payloads in processing order ``(known, seq)`` (with ``until_known``, those known at
        or before it), and the log's position (the highest ``seq`` stored), read in one transaction.

        The payloads are parsed by :meth:`EventLog.events`, which needs no database (it may run in a worker
        thread)."""
        stmt = select(_events.c.id, _events.c.payload).order_by(_events.c.known, _events.c.seq)
        if until_known is not None:
            stmt = stmt.where(_events.c.known <= _aware(until_known, "until_known"))
        async with self._read("load events", one_snapshot=True) as conn:
            rows = [(str(eid), payload) for eid, payload in (await conn.execute(stmt)).all()]
            position = (await conn.execute(select(func.coalesce(func.max(_events.c.seq), 0)))).scalar_one()
        return EventLog(rows, int(position), self._url)

    async def load_event_log_after(self, position: int, until_known: datetime | None = None) -> EventLog:
        """The stored events after ``position`` (``seq > position``; with ``until_known``, those known at or
        before it) in processing order, and the log's position: what was stored while a projection was being
        built from an earlier :meth:`load_event_log`, or after a projection snapshot."""
        stmt = (
            select(_events.c.id, _events.c.payload)
            .where(_events.c.seq > position)
            .order_by(_events.c.known, _events.c.seq)
        )
        if until_known is not None:
            stmt = stmt.where(_events.c.known <= _aware(until_known, "until_known"))
        async with self._read("load events", one_snapshot=True) as conn:
            rows = [(str(eid), payload) for eid, payload in (await conn.execute(stmt)).all()]
            top = (await conn.execute(select(func.coalesce(func.max(_events.c.seq), position)))).scalar_one()
        return EventLog(rows, int(top), self._url)

    async def events_since(
        self,
        *,
        position: int | None,
        as_of: datetime,
        until_known: datetime,
        dated_from: datetime,
        dated_to: datetime,
        limit: int = 1000,
    ) -> EventDelta:
        """The stored events a report as of ``until_known`` sees and one that saw the log up to ``position`` as of
        ``as_of`` did not (``seq > position`` or ``known > as_of``; ``position`` None: only ``known > as_of``).

        Those dated in ``[dated_from, dated_to)`` are counted and listed (the first ``limit``, in storage
        order); those dated elsewhere are counted."""
        news = _events.c.known > _aware(as_of, "as_of")
        if position is not None:
            news = news | (_events.c.seq > position)
        seen = (_events.c.known <= _aware(until_known, "until_known")) & news
        inside = (_events.c.at >= _aware(dated_from, "dated_from")) & (_events.c.at < _aware(dated_to, "dated_to"))
        columns = (
            _events.c.seq,
            _events.c.type,
            _events.c.at,
            _events.c.known,
            _events.c.node,
            _events.c.source,
            _events.c.recorded_at,
        )
        async with self._read("load the events since a report", one_snapshot=True) as conn:
            count_in = (await conn.execute(select(func.count()).select_from(_events).where(seen & inside))).scalar_one()
            count_out = (
                await conn.execute(select(func.count()).select_from(_events).where(seen & ~inside))
            ).scalar_one()
            rows = (
                await conn.execute(select(*columns).where(seen & inside).order_by(_events.c.seq).limit(limit))
            ).all()
        records = [EventRecord(int(r.seq), r.type, r.at, r.known, r.node, r.source, r.recorded_at) for r in rows]
        return EventDelta(int(count_in), records, int(count_out))

    # ----------------------------------------------------------------------------------- tokens

    async def create_token(self, name: str, role: str) -> str:
        """Create an API token and return its secret (shown once: only its sha256 is stored).

        A name is unique among unrevoked tokens (StorageError otherwise).
        """
        if not name or not role:
            raise ValueError("a token needs a name and a role")
        secret = secrets.token_urlsafe(32)
        row = {
            "name": name,
            "role": role,
            "hash": _token_hash(secret),
            "created_at": self._now(),
            "revoked_at": None,
        }
        try:
            async with self._write(f"create token {name!r}") as conn:
                await conn.execute(insert(_tokens).values(**row))
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StorageError(f"a token named {name!r} already exists; revoke it first") from exc
            raise
        return secret

    async def role_for_token(self, secret: str) -> tuple[str, str] | None:
        """``(name, role)`` of the unrevoked token with this secret, or None."""
        stmt = select(_tokens.c.name, _tokens.c.role).where(
            _tokens.c.hash == _token_hash(secret), _tokens.c.revoked_at.is_(None)
        )
        async with self._read("look up a token") as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else (row.name, row.role)

    async def revoke_token(self, name: str) -> bool:
        """Revoke the unrevoked token called ``name``; False when there is none."""
        stmt = (
            update(_tokens)
            .where(_tokens.c.name == name, _tokens.c.revoked_at.is_(None))
            .values(revoked_at=self._now())
        )
        async with self._write(f"revoke token {name!r}") as conn:
            revoked = bool((await conn.execute(stmt)).rowcount)
        if revoked:
            TOKENS.forget(self._url)  # it stops working at once in this process (token_cache)
        return revoked

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first (never the secrets)."""
        stmt = select(_tokens.c.name, _tokens.c.role, _tokens.c.created_at, _tokens.c.revoked_at).order_by(
            _tokens.c.id
        )
        async with self._read("list tokens") as conn:
            rows = (await conn.execute(stmt)).all()
        return [TokenInfo(r.name, r.role, r.created_at, r.revoked_at) for r in rows]

    # -------------------------------------------------------------------------------- audit log

    async def append_audit(
        self,
        actor: str,
        action: str,
        subject: str | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append one entry to the audit log (``at`` defaults to now); return its sequence number."""
        row = {
            "at": self._now() if at is None else _aware(at, "at"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "detail": dict(detail) if detail is not None else None,
        }
        async with self._write(f"append to the audit log ({action})") as conn:
            result = await conn.execute(insert(_audit).values(**row).returning(_audit.c.seq))
            return int(result.scalar_one())

    async def load_audit(self, subject: str | None = None) -> list[AuditEntry]:
        """Audit entries in the order they were appended, all or those about ``subject``."""
        stmt = select(_audit).order_by(_audit.c.seq)
        if subject is not None:
            stmt = stmt.where(_audit.c.subject == subject)
        async with self._read("load the audit log") as conn:
            rows = (await conn.execute(stmt)).all()
        return [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail) for r in rows]

    # --------------------------------------------------------------------------------- evidence

    async def save_evidence(
        self,
        content: bytes,
        filename: str,
        media_type: str,
        uploaded_by: str,
        uploaded_at: datetime | None = None,
    ) -> str:
        """Store an evidence file; return its id (sha256 hex of the content). The same content twice is one
        file: the first upload's name, type and uploader are kept."""
        evidence_id = hashlib.sha256(content).hexdigest()
        row = {
            "id": evidence_id,
            "filename": filename,
            "media_type": media_type,
            "size": len(content),
            "content": content,
            "uploaded_at": self._now() if uploaded_at is None else _aware(uploaded_at, "uploaded_at"),
            "uploaded_by": uploaded_by,
        }
        async with self._write(f"save evidence {filename!r}") as conn:
            await conn.execute(
                self._insert(_evidence).values(**row).on_conflict_do_nothing(index_elements=["id"])
            )
        return evidence_id

    async def load_evidence(self, evidence_id: str) -> EvidenceFile | None:
        async with self._read(f"load evidence {evidence_id}") as conn:
            row = (await conn.execute(select(_evidence).where(_evidence.c.id == evidence_id))).first()
        if row is None:
            return None
        return EvidenceFile(
            id=row.id,
            filename=row.filename,
            media_type=row.media_type,
            size=row.size,
            content=bytes(row.content),
            uploaded_at=row.uploaded_at,
            uploaded_by=row.uploaded_by,
        )

    # ------------------------------------------------------------------ queries for the API (filters, pages)

    async def query_incidents(
        self,
        contract_id: str,
        *,
        start_from: datetime | None = None,
        start_to: datetime | None = None,
        levels: Sequence[int] = (),
        open_: bool | None = None,
        acked: bool | None = None,
        excluded: Sequence[str | None] = (),
        scopes: Sequence[str] | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """One page of a contract's stored incidents, by start then id (``newest_first``: both descending),
        without members and timeline.

        Filters: ``start`` in ``[start_from, start_to)``, ``level`` in ``levels``, ``open_`` (no end yet),
        ``acked``, exclusion status in ``excluded`` (None there: no exclusion step), ``scope`` in ``scopes``;
        ``after`` is the ``(start, id)`` of the last row of the previous page. Each row has the incident's
        columns, ``open`` and ``channels`` (how many channels it ever held). At most ``limit`` rows."""
        if limit < 1:
            raise ValueError("limit must be positive")
        members = (
            select(func.count())
            .select_from(_members)
            .where(_members.c.contract_id == contract_id, _members.c.incident_id == _incidents.c.id)
            .scalar_subquery()
        )
        # Rows as tuples, made dicts by these keys: row mappings and a comprehension per row cost ~0.15 ms a page.
        columns = [c for c in _incidents.c if c.name != "contract_id"]
        keys = (*(c.name for c in columns), "channels")
        stmt = select(*columns, members.label("channels")).where(_incidents.c.contract_id == contract_id)
        if start_from is not None:
            stmt = stmt.where(_incidents.c.start >= _aware(start_from, "start_from"))
        if start_to is not None:
            stmt = stmt.where(_incidents.c.start < _aware(start_to, "start_to"))
        if levels:
            stmt = stmt.where(_incidents.c.level.in_(list(levels)))
        if open_ is not None:
            stmt = stmt.where(_incidents.c.end.is_(None) if open_ else _incidents.c.end.is_not(None))
        if acked is not None:
            stmt = stmt.where(_incidents.c.ack.is_not(None) if acked else _incidents.c.ack.is_(None))
        if excluded:
            named = [s for s in excluded if s is not None]
            cond: Any = _incidents.c.excluded.in_(named)
            if None in excluded:
                cond = cond | _incidents.c.excluded.is_(None)
            stmt = stmt.where(cond)
        if scopes is not None:
            stmt = stmt.where(_incidents.c.scope.in_(list(scopes)))
        start_c, id_c = _incidents.c.start, _incidents.c.id
        if after is not None:
            start, iid = _aware(after[0], "after"), after[1]
            if newest_first:
                stmt = stmt.where((start_c < start) | ((start_c == start) & (id_c < iid)))
            else:
                stmt = stmt.where((start_c > start) | ((start_c == start) & (id_c > iid)))
        order = (start_c.desc(), id_c.desc()) if newest_first else (start_c, id_c)
        stmt = stmt.order_by(*order).limit(limit)
        async with self._read(f"query the incidents of contract {contract_id}") as conn:
            rows = (await conn.execute(stmt)).all()
        out = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["open"] = item["end"] is None
            item["channels"] = int(item["channels"])
            out.append(item)
        return out

    async def load_incident(self, contract_id: str, incident_id: str) -> dict[str, Any] | None:
        """One stored incident as :meth:`load_incidents` gives each (with members and timeline), or None."""
        async with self._read(f"load incident {incident_id} of contract {contract_id}") as conn:
            row = (
                (
                    await conn.execute(
                        select(_incidents).where(
                            _incidents.c.contract_id == contract_id, _incidents.c.id == incident_id
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            members = (
                await conn.execute(
                    select(_members)
                    .where(_members.c.contract_id == contract_id, _members.c.incident_id == incident_id)
                    .order_by(_members.c.ordinal)
                )
            ).mappings()
            timeline = (
                await conn.execute(
                    select(_timeline)
                    .where(_timeline.c.contract_id == contract_id, _timeline.c.incident_id == incident_id)
                    .order_by(_timeline.c.seq)
                )
            ).mappings()
            item = {k: row[k] for k in row if k != "contract_id"}
            item["open"] = row["end"] is None
            item["members"] = [{"position": m["position"], "channel": m["channel"], "node": m["node"]} for m in members]
            item["timeline"] = [
                {"at": t["at"], "known": t["known"], "kind": t["kind"], "detail": t["detail"]} for t in timeline
            ]
        return item

    async def query_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """One page of the audit log in the order it was appended: entries after ``after_seq`` with the given
        ``actor``, ``action`` and ``subject`` (exact), ``at`` in ``[since, until)``; at most ``limit``."""
        if limit < 1:
            raise ValueError("limit must be positive")
        stmt = select(_audit)
        if actor is not None:
            stmt = stmt.where(_audit.c.actor == actor)
        if action is not None:
            stmt = stmt.where(_audit.c.action == action)
        if subject is not None:
            stmt = stmt.where(_audit.c.subject == subject)
        if since is not None:
            stmt = stmt.where(_audit.c.at >= _aware(since, "since"))
        if until is not None:
            stmt = stmt.where(_audit.c.at < _aware(until, "until"))
        if after_seq is not None:
            stmt = stmt.where(_audit.c.seq > after_seq)
        stmt = stmt.order_by(_audit.c.seq).limit(limit)
        async with self._read("query the audit log") as conn:
            rows = (await conn.execute(stmt)).all()
        return [AuditEntry(r.seq, r.at, r.actor, r.action, r.subject, r.detail) for r in rows]

    # ------------------------------------------------------------------ tokens with an expiry (migration 0006)

    async def create_expiring_token(
        self, name: str, role: str, expires_at: datetime | None, *, by: str | None = None
    ) -> tuple[str, datetime]:
        """Create an API token that stops working at ``expires_at`` (None: never); return its secret (shown
        once) and its creation time. With ``by``, the creation is in the audit log (same transaction).
        A name is unique among unrevoked tokens (StorageError otherwise)."""
        if not name or not role:
            raise ValueError("a token needs a name and a role")
        secret = secrets.token_urlsafe(32)
        now = self._now()
        row = {
            "name": name,
            "role": role,
            "hash": _token_hash(secret),
            "created_at": now,
            "revoked_at": None,
            "expires_at": None if expires_at is None else _aware(expires_at, "expires_at"),
        }
        try:
            async with self._write(f"create token {name!r}") as conn:
                await conn.execute(insert(_tokens).values(**row))
                if by is not None:
                    until = None if expires_at is None else _aware(expires_at, "expires_at").isoformat()
                    detail = {"role": role, "expires_at": until}
                    await conn.execute(
                        insert(_audit).values(at=now, actor=by, action="token create", subject=name, detail=detail)
                    )
        except StorageError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StorageError(f"a token named {name!r} already exists; revoke it first") from exc
            raise
        return secret, now

    async def active_token(self, secret: str, now: datetime) -> tuple[str, str] | None:
        """``(name, role)`` of the token with this secret if it is neither revoked nor expired at ``now``.

        A token found valid is kept for a couple of seconds (:mod:`monitor.storage.token_cache`: every API
        request asks this); a revocation through this process is seen at once, one by another process within
        :data:`~monitor.storage.token_cache.TOKEN_CACHE_S`."""
        when = _aware(now, "now")
        digest = _token_hash(secret)
        cached = TOKENS.get(self._url, digest, when)
        if cached is not None:
            return cached
        generation = TOKENS.generation(self._url)
        stmt = select(_tokens.c.name, _tokens.c.role, _tokens.c.expires_at).where(
            _tokens.c.hash == digest,
            _tokens.c.revoked_at.is_(None),
            _tokens.c.expires_at.is_(None) | (_tokens.c.expires_at > when),
        )
        async with self._read("look up a token") as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        TOKENS.put(self._url, digest, row.name, row.role, row.expires_at, generation=generation)
        return row.name, row.role

    async def revoke_token_by(self, name: str, by: str) -> datetime | None:
        """Revoke the unrevoked token called ``name`` and write it in the audit log (actor ``by``), in one
        transaction; the revocation time, or None when there is no such token."""
        now = self._now()
        stmt = update(_tokens).where(_tokens.c.name == name, _tokens.c.revoked_at.is_(None)).values(revoked_at=now)
        async with self._write(f"revoke token {name!r}") as conn:
            if not (await conn.execute(stmt)).rowcount:
                return None
            await conn.execute(
                insert(_audit).values(at=now, actor=by, action="token revoke", subject=name, detail=None)
            )
        TOKENS.forget(self._url)  # it stops working at once in this process (token_cache)
        return now

    async def token_records(self) -> list[dict[str, Any]]:
        """Every token, oldest first, as dicts with ``name``, ``role``, ``created_at``, ``revoked_at`` and
        ``expires_at`` (never the secrets nor their hashes)."""
        columns = (_tokens.c.name, _tokens.c.role, _tokens.c.created_at, _tokens.c.revoked_at, _tokens.c.expires_at)
        async with self._read("list tokens") as conn:
            rows = (await conn.execute(select(*columns).order_by(_tokens.c.id))).mappings().all()
        return [dict(r) for r in rows]
