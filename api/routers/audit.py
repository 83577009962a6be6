"""The audit log, read-only (admin and assessor): who did what to what, when, in the order it was written.

    GET /audit?actor=&action=&subject=&from=&to=&cursor=&limit=

Filters are exact (``action``: ``ack``, ``exclusion``, ``maintenance``, ``report issue``, ``token create``...);
``from``/``to`` bound ``at`` as ``[from, to)`` (RFC 3339; no offset: the contracts' zone). Pages of ``limit``
entries (default 100, at most 1000); ``next_cursor`` gives the next one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.deps import Caller, ServiceDep, require
from api.errors import ApiError
from api.models import READ, AuditPage, problems
from api.pagination import decode_cursor, number_cursor, number_key, page
from monitor.errors import InputError
from monitor.events import parse_time

router = APIRouter(tags=["audit"])

Auditor = Annotated[Caller, Depends(require("assessor"))]
Text = Annotated[str | None, Query(min_length=1, max_length=256)]
TimeQuery = Annotated[str | None, Query(max_length=64, json_schema_extra={"format": "date-time"})]


@router.get(
    "/audit",
    summary="The audit log (admin, assessor)",
    response_model=AuditPage,
    responses=problems(*READ, 403),
)
async def audit(
    service: ServiceDep,
    _caller: Auditor,
    actor: Text = None,
    action: Text = None,
    subject: Text = None,
    since: Annotated[str | None, Query(alias="from", max_length=64, description="RFC 3339: at or after")] = None,
    until: Annotated[str | None, Query(alias="to", max_length=64, description="RFC 3339: before")] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    tz = await service.event_timezone()
    try:
        lo = None if since is None else parse_time(since, tz, "from")
        hi = None if until is None else parse_time(until, tz, "to")
    except InputError as exc:
        raise ApiError(422, exc.message, where="query", field=exc.field) from None
    rows = await service.repo.query_audit(
        actor=actor,
        action=action,
        subject=subject,
        since=lo,
        until=hi,
        after_seq=None if cursor is None else decode_cursor(cursor, number_key("audit", 18)),
        limit=limit + 1,
    )
    rows, next_cursor = page(rows, limit, lambda e: number_cursor("audit", e.seq))
    return {
        "entries": [
            {
                "seq": e.seq,
                "at": e.at.astimezone(tz).isoformat() if tz is not None else e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            }
            for e in rows
        ],
        "limit": limit,
        "next_cursor": next_cursor,
    }
