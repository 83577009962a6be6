"""Maintenance requests (SPEC §4): the workflow record of a window the operator asks for and the assessor
consents to or refuses. Functions over a connected :class:`~monitor.storage.database.Database` (kept apart from
the repository, like :mod:`monitor.storage.heartbeats`); table ``maintenance_requests``, migration ``0003``.

* :func:`insert_request`: store a new request; the same id again leaves the stored one as it is.
* :func:`load_request` / :func:`list_requests`: one request, or all (of a status) in request order.
* :func:`decide_request`: move a request from ``requested`` to ``consented`` or ``refused`` in one conditional
  UPDATE, so that of two concurrent decisions exactly one wins. :func:`undo_decision` puts it back (when the
  consent's event could not be ingested).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from monitor.events import format_time
from monitor.storage.database import WRITE_OPTION, Database, translate_errors
from monitor.storage.tables import MaintenanceRequestRow

__all__ = [
    "CONSENTED",
    "REFUSED",
    "REQUESTED",
    "STATUSES",
    "MaintenanceRequest",
    "decide_request",
    "insert_request",
    "list_requests",
    "load_request",
    "undo_decision",
]

REQUESTED = "requested"
CONSENTED = "consented"
REFUSED = "refused"
STATUSES = (REQUESTED, CONSENTED, REFUSED)

_requests = cast(Table, MaintenanceRequestRow.__table__)


@dataclass(frozen=True, slots=True)
class MaintenanceRequest:
    id: str
    scope: str
    start: datetime
    end: datetime
    reason: str
    requested_by: str
    requested_at: datetime
    status: str = REQUESTED
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None

    @property
    def late(self) -> bool:
        """Asked for after the window had started."""
        return self.requested_at > self.start

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "from": format_time(self.start),
            "to": format_time(self.end),
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": format_time(self.requested_at),
            "late": self.late,
            "status": self.status,
            "decided_by": self.decided_by,
            "decided_at": format_time(self.decided_at) if self.decided_at is not None else None,
            "note": self.note,
        }


def _from_row(row: Any) -> MaintenanceRequest:
    return MaintenanceRequest(
        id=row.id,
        scope=row.scope,
        start=row.start,
        end=row.end,
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
    )


async def insert_request(db: Database, request: MaintenanceRequest) -> tuple[MaintenanceRequest, bool]:
    """Store ``request`` unless one with its id exists; return the stored request and whether it is new."""
    row = {
        "id": request.id,
        "scope": request.scope,
        "start": request.start,
        "end": request.end,
        "reason": request.reason,
        "requested_by": request.requested_by,
        "requested_at": request.requested_at,
        "status": request.status,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at,
        "note": request.note,
    }
    insert = pg_insert(_requests) if db.dialect == "postgresql" else sqlite_insert(_requests)
    with translate_errors(f"store maintenance request {request.id}", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                result = await conn.execute(insert.values(**row).on_conflict_do_nothing(index_elements=["id"]))
                created = (result.rowcount or 0) == 1
                stored = (await conn.execute(select(_requests).where(_requests.c.id == request.id))).one()
    return _from_row(stored), created


async def load_request(db: Database, request_id: str) -> MaintenanceRequest | None:
    with translate_errors(f"load maintenance request {request_id}", db.url):
        async with db.engine.connect() as conn, conn.begin():
            row = (await conn.execute(select(_requests).where(_requests.c.id == request_id))).first()
    return None if row is None else _from_row(row)


async def list_requests(db: Database, status: str | None = None) -> list[MaintenanceRequest]:
    """Requests in the order they were asked for (then by id), all or those of ``status``."""
    stmt = select(_requests).order_by(_requests.c.requested_at, _requests.c.id)
    if status is not None:
        stmt = stmt.where(_requests.c.status == status)
    with translate_errors("list maintenance requests", db.url):
        async with db.engine.connect() as conn, conn.begin():
            rows = (await conn.execute(stmt)).all()
    return [_from_row(r) for r in rows]


async def decide_request(
    db: Database, request_id: str, status: str, by: str, at: datetime, note: str | None = None
) -> bool:
    """Decide a request still ``requested``; False when there is none such (unknown or decided already)."""
    if status not in (CONSENTED, REFUSED):
        raise ValueError(f"a decision is {CONSENTED} or {REFUSED}, not {status!r}")
    stmt = (
        update(_requests)
        .where(_requests.c.id == request_id, _requests.c.status == REQUESTED)
        .values(status=status, decided_by=by, decided_at=at, note=note)
    )
    with translate_errors(f"decide maintenance request {request_id}", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                result = await conn.execute(stmt)
    return (result.rowcount or 0) == 1


async def undo_decision(db: Database, request_id: str, status: str, at: datetime) -> None:
    """Put a request decided ``status`` at ``at`` back to ``requested`` (its decision could not take effect)."""
    stmt = (
        update(_requests)
        .where(_requests.c.id == request_id, _requests.c.status == status, _requests.c.decided_at == at)
        .values(status=REQUESTED, decided_by=None, decided_at=None, note=None)
    )
    with translate_errors(f"undo the decision on maintenance request {request_id}", db.url):
        async with db.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.execute(stmt)
