"""Maintenance windows through the API (SPEC §4): the operator requests, the assessor consents or refuses.

Events stay the source of truth: a request is a workflow record (:mod:`monitor.storage.maintenance`), and a
consent ingests a ``maintenance`` event (declared at the decision time) through :meth:`Service.ingest`, so that a
consented window counts exactly as one sent in an event stream. A refusal emits nothing. A window asked for after
its start is allowed, flagged ``late``; its consent is explicit like every other in this flow. Every step is in
the audit log (subject: the request id).

    request_maintenance(service, scope, start, end, reason, by, at) -> MaintenanceRequest
    decide_maintenance(service, request_id, consent, by, at, note)  -> MaintenanceRequest
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from monitor.errors import EventError, SlawatchError, shown
from monitor.events import MaintenanceEvent, format_time
from monitor.service import Service
from monitor.storage.maintenance import (
    CONSENTED,
    REFUSED,
    REQUESTED,
    MaintenanceRequest,
    decide_request,
    insert_request,
    load_request,
    undo_decision,
)

__all__ = [
    "AlreadyDecided",
    "UnknownRequest",
    "consent_event",
    "decide_maintenance",
    "request_id",
    "request_maintenance",
]


class UnknownRequest(SlawatchError):
    """No maintenance request has this id (the API answers 404)."""


class AlreadyDecided(SlawatchError):
    """The maintenance request was consented to or refused already (the API answers 409)."""


def request_id(scope: str, start: datetime, end: datetime, reason: str, by: str) -> str:
    """``MR-`` and 12 hex digits of the sha256 of the request's content and requester."""
    blob = json.dumps(
        {"scope": scope, "from": format_time(start), "to": format_time(end), "reason": reason, "by": by},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "MR-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def consent_event(request: MaintenanceRequest) -> MaintenanceEvent:
    """The event a consented request stands for (declared at the decision time)."""
    if request.status != CONSENTED or request.decided_at is None:
        raise ValueError(f"maintenance request {request.id} is {request.status}, not consented")
    return MaintenanceEvent(
        at=request.decided_at, start=request.start, end=request.end, scope=request.scope, reason=request.reason
    )


async def request_maintenance(
    service: Service, scope: str, start: datetime, end: datetime, reason: str, by: str, at: datetime
) -> MaintenanceRequest:
    """Record a request for a window over ``scope`` during ``[start, end)``; the same request again is the
    stored one (with its status). Raises :class:`EventError` (field ``scope``/``to``) when it is invalid."""
    if scope not in await service.inventory():
        raise EventError(f"node {shown(scope)} is not in the inventory", field="scope")
    if end <= start:
        raise EventError("'to' must be after 'from'", field="to")
    wanted = MaintenanceRequest(
        id=request_id(scope, start, end, reason, by),
        scope=scope,
        start=start,
        end=end,
        reason=reason,
        requested_by=by,
        requested_at=at,
    )
    stored, created = await insert_request(service.db, wanted)
    if created:
        await service.repo.append_audit(
            by,
            "maintenance requested",
            stored.id,
            {"scope": scope, "from": format_time(start), "to": format_time(end), "reason": reason, "late": stored.late},
            at=at,
        )
    return stored


async def decide_maintenance(
    service: Service, request_id: str, consent: bool, by: str, at: datetime, note: str | None = None
) -> MaintenanceRequest:
    """Consent to or refuse a request still ``requested``. A consent ingests its ``maintenance`` event (when
    that fails, e.g. its scope left the inventory, the request is ``requested`` again and the error raised).

    Raises :class:`UnknownRequest` or :class:`AlreadyDecided`.
    """
    current = await load_request(service.db, request_id)
    if current is None:
        raise UnknownRequest(f"no maintenance request {request_id!r}")
    status = CONSENTED if consent else REFUSED
    if current.status != REQUESTED or not await decide_request(service.db, request_id, status, by, at, note):
        latest = await load_request(service.db, request_id) or current
        raise AlreadyDecided(
            f"maintenance request {request_id} was {latest.status} already"
            + (f" by {latest.decided_by}" if latest.decided_by else "")
        )
    decided = await load_request(service.db, request_id)
    assert decided is not None  # decided just now; requests are never deleted
    if consent:
        event = consent_event(decided)
        try:
            await service.ingest([(f"maintenance request {request_id}", event)], f"maintenance:{request_id}", by)
        except BaseException:
            await undo_decision(service.db, request_id, status, at)
            raise
    await service.repo.append_audit(
        by, f"maintenance {status}", request_id, {"note": note, "late": decided.late}, at=at
    )
    return decided
