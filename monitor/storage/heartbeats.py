"""The live collector's heartbeat, and the few reads the live loop and ``slawatch status`` need.

Functions over a connected :class:`~monitor.storage.database.Database` (kept apart from the repository):

* :func:`write_heartbeat` / :func:`read_heartbeat`: one row per collector name (``heartbeats`` table,
  migration ``0002``): ``started_at``, ``at`` (the last completed cycle: everything before it was
  observed) and ``running`` (``False`` after a clean stop). A restart dates its blind gap at ``at``.
* :func:`latest_states`: each node's latest confirmed state from the stored ``state`` events (in processing
  order), with the time it is dated at; :func:`latest_state_events` the same with the time it was known (what
  ``Service.ingest`` loads once and then keeps in memory); :func:`node_states_and_heartbeat` some nodes'
  latest states and the heartbeat in one read (a node's status under ``slawatch serve``).
* :func:`event_position` / :func:`events_after`: cheap reads of the events' ``seq`` (primary key), by which
  ``Service.ingest`` notices events stored by another process; :func:`inventory_fingerprint`: a one-row
  summary of the stored inventory, by which it notices an inventory imported by another process.
* :func:`forget_poll_runs`: drop the confirmer's stored runs of some nodes, so that their next poll starts a
  fresh run. ``Service.ingest`` interrupts the run of a node that goes unknown; the live service calls this
  at start for every polled node, so that a node that was unknown already (no new event) does not continue
  a run begun before the time the service was not running.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.events import NodeState, parse_time
from monitor.storage.database import WRITE_OPTION, Database, translate_errors
from monitor.storage.tables import EventRow, HeartbeatRow, NodeRow, PollRunRow

__all__ = [
    "Heartbeat",
    "event_position",
    "events_after",
    "forget_poll_runs",
    "inventory_fingerprint",
    "latest_state_events",
    "latest_states",
    "node_states_and_heartbeat",
    "read_heartbeat",
    "write_heartbeat",
]

_heartbeats = cast(Table, HeartbeatRow.__table__)
_events = cast(Table, EventRow.__table__)
_poll_runs = cast(Table, PollRunRow.__table__)
_nodes = cast(Table, NodeRow.__table__)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    name: str
    started_at: datetime
    at: datetime
    running: bool


async def write_heartbeat(
    db: Database, *, at: datetime, started_at: datetime, running: bool = True, name: str = "live"
) -> None:
    """Insert or replace the heartbeat of collector ``name``."""
    row = {"name": name, "started_at": started_at, "at": at, "running": running}
    insert = pg_insert(_heartbeats) if db.dialect == "postgresql" else sqlite_insert(_heartbeats)
    stmt = insert.values(row).on_conflict_do_update(
        index_elements=["name"],
        set_={c: getattr(insert.excluded, c) for c in ("started_at", "at", "running")},
    )
    with translate_errors("write the heartbeat", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.execute(stmt)


async def read_heartbeat(db: Database, name: str = "live") -> Heartbeat | None:
    with translate_errors("read the heartbeat", db.url):
        async with db.engine.connect() as conn, conn.begin():
            return await _heartbeat_on(conn, name)


async def _heartbeat_on(conn: AsyncConnection, name: str) -> Heartbeat | None:
    row = (await conn.execute(select(_heartbeats).where(_heartbeats.c.name == name))).mappings().first()
    if row is None:
        return None
    return Heartbeat(row["name"], row["started_at"], row["at"], bool(row["running"]))


async def latest_states(db: Database) -> dict[str, tuple[NodeState, datetime]]:
    """Each node's latest stored ``state`` event: (state, dated time), in processing order (known, seq)."""
    stmt = (
        select(_events.c.node, _events.c.payload)
        .where(_events.c.type == "state")
        .order_by(_events.c.known, _events.c.seq)
    )
    with translate_errors("load the latest node states", db.url):
        async with db.engine.connect() as conn, conn.begin():
            rows = (await conn.execute(stmt)).all()
    out: dict[str, tuple[NodeState, datetime]] = {}
    for node, payload in rows:
        data: dict[str, Any] = payload
        out[node] = (NodeState(data["state"]), parse_time(data["at"], None, "at"))
    return out


async def latest_state_events(
    db: Database, nodes: Collection[str] | None = None
) -> dict[str, tuple[NodeState, datetime, datetime]]:
    """Each node's latest stored ``state`` event in processing order (known, seq): (state, dated, known).

    One row per node of the inventory (only ``nodes``, when given), each found through the ``node`` index
    (newest first, one row), so the cost follows the nodes and each node's own history, not the length of the
    event log (a restart adds a couple of state events per node; a month of them used to be read back whole at
    every start)."""
    with translate_errors("load the latest node states", db.url):
        async with db.engine.connect() as conn, conn.begin():
            return await _state_events_on(conn, nodes)


async def node_states_and_heartbeat(
    db: Database, nodes: Collection[str], name: str = "live"
) -> tuple[dict[str, tuple[NodeState, datetime, datetime]], Heartbeat | None]:
    """:func:`latest_state_events` of ``nodes`` and :func:`read_heartbeat` in one read transaction: a node's
    stored status asks both, and on SQLite each transaction is ~1 ms of CPU through aiosqlite's thread."""
    with translate_errors("load the latest node states and the heartbeat", db.url):
        async with db.engine.connect() as conn, conn.begin():
            return await _state_events_on(conn, nodes), await _heartbeat_on(conn, name)


async def _state_events_on(
    conn: AsyncConnection, nodes: Collection[str] | None
) -> dict[str, tuple[NodeState, datetime, datetime]]:
    e = _events.c
    newest = (
        select(e.seq)
        .where(e.node == _nodes.c.id, e.type == "state")
        .order_by(e.known.desc(), e.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    picked_nodes = select(newest.label("seq")).select_from(_nodes)
    if nodes is not None:
        picked_nodes = picked_nodes.where(_nodes.c.id.in_(list(nodes)))
    picked = picked_nodes.subquery()
    stmt = select(e.node, e.payload, e.known).join(picked, e.seq == picked.c.seq)
    rows = (await conn.execute(stmt)).all()
    out: dict[str, tuple[NodeState, datetime, datetime]] = {}
    for node, payload, known in rows:
        data: dict[str, Any] = payload
        out[node] = (NodeState(data["state"]), parse_time(data["at"], None, "at"), known)
    return out


async def event_position(db: Database) -> int:
    """The highest ``seq`` of the stored events (0 when there is none): it moves whenever anyone stores one."""
    with translate_errors("read the event position", db.url):
        async with db.engine.connect() as conn, conn.begin():
            return int((await conn.execute(select(func.coalesce(func.max(_events.c.seq), 0)))).scalar_one())


async def events_after(db: Database, seq: int) -> tuple[int, int]:
    """How many events are stored after ``seq``, and the highest ``seq`` (``seq`` when none): a range on the
    primary key, cheap whatever the size of the table."""
    stmt = select(func.count(), func.coalesce(func.max(_events.c.seq), seq)).where(_events.c.seq > seq)
    with translate_errors("read the event position", db.url):
        async with db.engine.connect() as conn, conn.begin():
            count, top = (await conn.execute(stmt)).one()
    return int(count), int(top)


async def inventory_fingerprint(db: Database) -> tuple[Any, ...]:
    """A one-row summary of the stored inventory (node count, ids, order, tree, addresses, channels and active
    intervals): it changes when another process imports a different inventory."""
    n = _nodes.c
    stmt = select(
        func.count(),
        func.coalesce(func.sum(n.position), 0),
        func.coalesce(func.sum(func.length(n.id) * (n.position + 1)), 0),
        func.coalesce(func.sum(func.length(func.coalesce(n.parent, "")) * (n.position + 1)), 0),
        func.coalesce(func.sum(func.length(func.coalesce(n.address, "")) * (n.position + 1)), 0),
        func.coalesce(func.sum(n.channels * (n.position + 1)), 0),
        func.count(n.commissioned),
        func.count(n.decommissioned),
        func.max(n.commissioned),
        func.max(n.decommissioned),
        func.max(n.id),
        func.min(n.id),
    )
    with translate_errors("read the inventory fingerprint", db.url):
        async with db.engine.connect() as conn, conn.begin():
            row = (await conn.execute(stmt)).one()
    return tuple(row)


async def forget_poll_runs(db: Database, nodes: Iterable[str]) -> int:
    """Delete the stored confirmation runs of ``nodes``; returns how many were deleted."""
    ids = sorted(set(nodes))
    if not ids:
        return 0
    deleted = 0
    with translate_errors("reset poll runs", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                for i in range(0, len(ids), 500):
                    result = await conn.execute(delete(_poll_runs).where(_poll_runs.c.node.in_(ids[i : i + 500])))
                    deleted += result.rowcount or 0
    return deleted
