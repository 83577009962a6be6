"""Stored snapshots of the incident projection (table ``projection_snapshots``, migration ``0007``).

Functions over a connected :class:`~monitor.storage.database.Database` (kept apart from the repository, like
:mod:`monitor.storage.heartbeats`); what a snapshot holds and how it is made is :mod:`monitor.snapshot`'s.

* :func:`read_snapshot`: the stored snapshot with a given key, if its ``position`` still names the same event
  (``last_event``): a database restored from a backup, or events deleted under it, leave it unused.
* :func:`write_snapshot`: store one, replacing every other in the same transaction (one snapshot at a time:
  the newest is the only one a start wants, and each is megabytes).
* :func:`event_id_at` / :func:`events_upto`: the id of the event at a position, how many are stored up to it:
  what a snapshot is checked against when it is stored and when it is read.
* :func:`delete_snapshots`: drop them all (the next start replays the whole event log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, select

from monitor.storage.database import WRITE_OPTION, Database, translate_errors
from monitor.storage.tables import EventRow, ProjectionSnapshotRow

__all__ = ["StoredSnapshot", "delete_snapshots", "event_id_at", "events_upto", "read_snapshot", "write_snapshot"]

_snapshots = cast(Table, ProjectionSnapshotRow.__table__)
_events = cast(Table, EventRow.__table__)


@dataclass(frozen=True, slots=True)
class StoredSnapshot:
    """One stored snapshot: ``data`` as :func:`monitor.snapshot.dump_engines` made it (compressed bytes)."""

    key: str
    position: int  # the highest event ``seq`` applied
    last_event: str  # the id of the event at ``position`` ("" when nothing was applied)
    events: int  # how many stored events were applied
    known_until: datetime | None  # the latest known time among them
    taken_at: datetime
    raw_bytes: int  # before compression
    data: bytes

    def __repr__(self) -> str:  # never megabytes in a log line or a test failure
        return (
            f"StoredSnapshot(key={self.key[:12]}..., position={self.position}, events={self.events}, "
            f"bytes={len(self.data)}, taken_at={self.taken_at.isoformat()})"
        )


async def event_id_at(db: Database, position: int) -> str:
    """The id of the event stored at ``seq == position`` ("" for position 0 or when there is none)."""
    if position <= 0:
        return ""
    with translate_errors("read an event id", db.url):
        async with db.engine.connect() as conn, conn.begin():
            found = (await conn.execute(select(_events.c.id).where(_events.c.seq == position))).scalar_one_or_none()
    return "" if found is None else str(found)


async def events_upto(db: Database, position: int) -> int:
    """How many events are stored at or before ``seq == position`` (a range on the primary key)."""
    with translate_errors("count events", db.url):
        async with db.engine.connect() as conn, conn.begin():
            stmt = select(func.count()).select_from(_events).where(_events.c.seq <= position)
            return int((await conn.execute(stmt)).scalar_one())


async def read_snapshot(db: Database, key: str) -> StoredSnapshot | None:
    """The stored snapshot made under ``key``, or None: there is none, or the event log under it changed (the
    event at its position is not the one it was taken after)."""
    c = _snapshots.c
    with translate_errors("read the projection snapshot", db.url):
        async with db.engine.connect() as conn, conn.begin():
            row = (await conn.execute(select(_snapshots).where(c.key == key))).mappings().first()
            if row is None:
                return None
            found = ""
            if row["position"] > 0:
                at = select(_events.c.id).where(_events.c.seq == row["position"])
                found = str((await conn.execute(at)).scalar_one_or_none() or "")
    if found != row["last_event"]:
        return None
    return StoredSnapshot(**{name: row[name] for name in StoredSnapshot.__dataclass_fields__})


async def write_snapshot(db: Database, snapshot: StoredSnapshot) -> None:
    """Store ``snapshot`` and drop every other, in one transaction (a failure leaves the previous one whole)."""
    values = {name: getattr(snapshot, name) for name in StoredSnapshot.__dataclass_fields__}
    with translate_errors("store the projection snapshot", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.execute(delete(_snapshots))
                await conn.execute(insert(_snapshots).values(**values))


async def delete_snapshots(db: Database) -> int:
    """Drop every stored snapshot; how many there were."""
    with translate_errors("delete projection snapshots", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                return (await conn.execute(delete(_snapshots))).rowcount or 0
