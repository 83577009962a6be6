"""Posting events: a batch is parsed and checked whole (syntax, roles, inventory) before anything is stored.

The body is JSON Lines (``application/x-ndjson``, ``text/plain``), a JSON array of events or one JSON object.
Which events a role may send (admin may send all):

    state, poll                                      collector
    ack, onsite, explanation, exclusion requested    operator
    exclusion approved/rejected, maintenance, finding assessor

An event posted here is known when the API receives it (SPEC R8): the server sets ``known_at`` to the
receipt time (``service.clock()``), and a ``known_at`` sent by the client is refused. An event may be dated
at most ``max_clock_skew_s`` after its receipt (it is then known at its dated time); a collector's ``state``
and ``poll`` events at most ``max_backdate_s`` before it (R9). A maintenance event without ``at`` is declared
at its ``from``, or at its receipt when ``from`` is still ahead. A batch is in dated order. Any refusal
refuses the whole batch: nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.deps import Caller, PathContract, ServiceDep, SettingsDep, require
from api.errors import ApiError
from api.models import WRITE, IngestResponse, problems
from api.routers.evidence import check_evidence
from monitor.errors import EventError
from monitor.events import Event, ExclusionEvent, ExclusionStatus, MaintenanceEvent, format_time, parse_event
from monitor.roles import ADMIN
from monitor.service import Service
from monitor.settings import Settings

router = APIRouter(tags=["events"])

COLLECTOR = frozenset({"collector"})
#: The collector's own observations: limited in how far back they may be dated (SPEC R9).
OBSERVATIONS = frozenset({"state", "poll"})
OPERATOR = frozenset({"operator"})
ASSESSOR = frozenset({"assessor"})

EVENT_ROLES: dict[str, frozenset[str]] = {
    "state": COLLECTOR,
    "poll": COLLECTOR,
    "ack": OPERATOR,
    "onsite": OPERATOR,
    "explanation": OPERATOR,
    "exclusion": ASSESSOR,  # a decision; a request is the operator's (below)
    "maintenance": ASSESSOR,
    "finding": ASSESSOR,
}

# Anyone who may send some event type reaches the parser; a viewer is refused up front.
Poster = Annotated[Caller, Depends(require("collector", "operator", "assessor"))]

_LINES_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines", "text/")

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSON Lines, a JSON array of events, or one event object",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
            },
        },
    }
}


def roles_for(event: Event) -> frozenset[str]:
    """The roles (besides admin) that may send this event."""
    if isinstance(event, ExclusionEvent) and event.status is ExclusionStatus.REQUESTED:
        return OPERATOR
    return EVENT_ROLES[event.type]


def _objects(body: bytes, content_type: str) -> Iterator[tuple[str, object]]:
    """``(where, decoded object)`` for each event of the body."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EventError("the body is not UTF-8 text", where="request body") from None
    media = content_type.split(";")[0].strip().lower()
    if not media.startswith(_LINES_TYPES):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as exc:
            if media == "application/json":
                raise EventError(f"not JSON ({exc.msg})", where=f"request line {exc.lineno}") from None
        except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, nesting too deep
            raise EventError(f"not usable JSON ({_reason(exc)})", where="request body") from None
        else:
            if isinstance(whole, list):
                for n, obj in enumerate(whole, start=1):
                    yield f"request item {n}", obj
                return
            yield "request line 1", whole
            return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventError(f"not JSON ({exc.msg})", where=f"request line {n}") from None
        except (ValueError, RecursionError) as exc:
            raise EventError(f"not usable JSON ({_reason(exc)})", where=f"request line {n}") from None
        yield f"request line {n}", obj


def _reason(exc: Exception) -> str:
    return "nested too deep" if isinstance(exc, RecursionError) else str(exc).split(";")[0][:120]


def _received(obj: object, event: Event, where: str, now: datetime, caller: Caller, settings: Settings) -> Event:
    """``event`` known at its receipt ``now`` (SPEC R8), after the checks on its dated time (R8, R9)."""
    if isinstance(event, MaintenanceEvent) and isinstance(obj, dict) and obj.get("at") is None and event.at > now:
        event = replace(event, at=now)  # declared now, for a window still ahead
    skew = timedelta(seconds=settings.max_clock_skew_s)
    if event.at > now + skew:
        raise EventError(
            f"dated {format_time(event.at)}, more than {settings.max_clock_skew_s:g} s after its receipt at "
            f"{format_time(now)}; nothing stored",
            where=where,
            field="at",
        )
    backdate = timedelta(seconds=settings.max_backdate_s)
    if caller.role in COLLECTOR and event.type in OBSERVATIONS and event.at < now - backdate:
        raise EventError(
            f"a collector may not send {event.type} events dated more than {settings.max_backdate_s:g} s before "
            f"their receipt ({format_time(event.at)} < {format_time(now - backdate)}); nothing stored",
            where=where,
            field="at",
        )
    return event.received(max(now, event.at))


async def _ingest(
    request: Request, service: Service, caller: Caller, settings: Settings, tz: tzinfo | None
) -> dict[str, Any]:
    located: list[tuple[str, Event]] = []
    previous: datetime | None = None
    body = await request.body()
    now = service.clock()
    for where, obj in _objects(body, request.headers.get("content-type", "")):
        if isinstance(obj, dict) and "known_at" in obj:
            raise EventError(
                "the server sets known_at (the time the API receives the event); nothing stored",
                where=where,
                field="known_at",
            )
        event = parse_event(obj, tz, where)
        if not caller.may(roles_for(event)):
            kind = event.type
            if isinstance(event, ExclusionEvent):
                kind = f"exclusion {event.status.value}"
            allowed = ", ".join(sorted(roles_for(event) | {ADMIN}))
            raise ApiError(
                403,
                f"role {caller.role!r} may not send {kind} events (needs one of: {allowed}); nothing stored",
                where=where,
                field="type",
            )
        event = _received(obj, event, where, now, caller, settings)
        if previous is not None and event.at < previous:
            raise EventError(
                f"events must be in time order: {format_time(event.at)} is before the previous event's "
                f"{format_time(previous)}",
                where=where,
                field="at",
            )
        previous = event.at
        located.append((where, event))
    if not located:
        raise EventError("the body holds no events", where="request body")
    await check_evidence(service, located)
    result = await service.ingest(located, source=f"api:{caller.name}", actor=caller.name)
    return result.to_json()


@router.post(
    "/events",
    summary="Post events (JSON Lines, array or object)",
    openapi_extra=_BODY_DOC,
    response_model=IngestResponse,
    responses=problems(*WRITE),
)
async def post_events(
    request: Request, service: ServiceDep, settings: SettingsDep, caller: Poster
) -> dict[str, Any]:
    """Times without an offset are read in the contracts' time zone (an error when contracts differ)."""
    return await _ingest(request, service, caller, settings, await service.event_timezone())


@router.post(
    "/contracts/{contract_id}/events",
    summary="Post events, reading times without an offset in the contract's zone",
    openapi_extra=_BODY_DOC,
    response_model=IngestResponse,
    responses=problems(*WRITE, 404),
)
async def post_contract_events(
    request: Request, service: ServiceDep, settings: SettingsDep, caller: Poster, contract: PathContract
) -> dict[str, Any]:
    return await _ingest(request, service, caller, settings, contract.policy.zone)
