"""Incidents as last projected from the stored events (SPEC §3): a filtered, paginated list, one incident's
detail, and the acts on an incident as resource routes (the events route stays for machines).

    GET  /incidents                              any token  filters: month, level, state, acked, exclusion,
                                                            scope (at or under a node), open; ?cursor=&limit=
    GET  /incidents/{id}                         any token  members, timeline, clocks so far, the level's limits
    POST /incidents/{id}/ack                     operator   {by?, at?}: the first acknowledgement counts
    POST /incidents/{id}/onsite                  operator   {by?, at?}: arrival on site
    POST /incidents/{id}/explanation             operator   {text, at?}
    POST /incidents/{id}/exclusion               operator   {cause, evidence: [sha256:<id>, ...], at?}: a request
    POST /incidents/{id}/exclusion/approve       assessor   {note?}: never by whoever requested it
    POST /incidents/{id}/exclusion/reject        assessor   {note?}

Each route also exists under ``/contracts/{contract_id}``; without it the deployment must have one contract.
Admin may do everything. An act builds the event the events route would (``by`` is the caller's token name
unless a crew name is given for ack/onsite; an exclusion's ``by`` is always the caller) and goes through
``service.ingest``: it is known at its receipt (SPEC R8), it is in the audit log, and it answers the incident
as it is then. A refusal stores nothing. Times without an offset are read in the contract's zone.
"""

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, PathContract, ServiceDep, SettingsDep, SoleContract, authenticate, require
from api.errors import ApiError
from api.models import (
    EVIDENCE_PATTERN,
    MONTH_PATTERN,
    READ,
    WRITE,
    IncidentDetail,
    IncidentPage,
    problems,
)
from api.pagination import decode_cursor, encode_cursor, page
from api.routers.evidence import check_evidence
from monitor.contracts import Contract
from monitor.errors import EventError, InputError, shown
from monitor.events import (
    MAX_TEXT_BYTES,
    AckEvent,
    Event,
    ExclusionEvent,
    ExclusionStatus,
    ExplanationEvent,
    OnsiteEvent,
    format_time,
    parse_time,
)
from monitor.report_versions import month_of
from monitor.service import Service
from monitor.settings import Settings

router = APIRouter(tags=["incidents"])

MAX_LIMIT = 1000
MAX_NAME = 64
MAX_EVIDENCE = 16

Operator = Annotated[Caller, Depends(require("operator"))]
Assessor = Annotated[Caller, Depends(require("assessor"))]
Reader = Annotated[Caller, Depends(authenticate)]
IncidentPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=96,
        description="the incident id, `{scope}@{start UTC}`, e.g. `CPE-0042@2026-10-03T00:00:00Z`",
    ),
]


# ---------------------------------------------------------------------- bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: str | None = Field(
        default=None,
        max_length=64,
        description="when it happened (RFC 3339; no offset: the contract's zone); default: its receipt",
        json_schema_extra={"format": "date-time"},
    )


class CrewBody(_Body):
    by: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME, description="the crew member's name; default: the caller"
    )


class ExplanationBody(_Body):
    text: str = Field(min_length=1, max_length=MAX_TEXT_BYTES, description=f"at most {MAX_TEXT_BYTES} bytes")


class ExclusionBody(_Body):
    cause: str = Field(
        min_length=1, max_length=MAX_TEXT_BYTES, description=f"the third party's cause (at most {MAX_TEXT_BYTES} bytes)"
    )
    evidence: list[Annotated[str, Field(pattern=EVIDENCE_PATTERN)]] = Field(
        default_factory=list,
        max_length=MAX_EVIDENCE,
        description="ids of stored evidence files (POST /api/v1/evidence), `sha256:<64 hex>`",
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None, max_length=MAX_TEXT_BYTES, description=f"why (at most {MAX_TEXT_BYTES} bytes)"
    )


# ---------------------------------------------------------------------- rendering
def _t(value: datetime | None, zone: tzinfo) -> str | None:
    return None if value is None else value.astimezone(zone).isoformat()


def _summary(row: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    return {
        "id": row["id"],
        "scope": row["scope"],
        "start": _t(row["start"], zone),
        "end": _t(row["end"], zone),
        "open": row["open"],
        "level": row["level"],
        "peak": row["peak"],
        "channels": row["channels"] if "channels" in row else len(row["members"]),
        "ack": _t(row["ack"], zone),
        "ack_by": row["ack_by"],
        "onsite": _t(row["onsite"], zone),
        "onsite_by": row["onsite_by"],
        "excluded": row["excluded"],
    }


async def _detail(service: Service, contract: Contract, row: dict[str, Any]) -> dict[str, Any]:
    zone = contract.policy.zone
    policy = contract.policy
    now = service.clock()
    start: datetime = row["start"]
    end: datetime | None = row["end"]
    ack: datetime | None = row["ack"]
    upto = end if end is not None else now
    response_to = upto if ack is None else min(ack, upto)
    inventory = await service.cached_inventory()
    circuits = {c for m in row["members"] if m["node"] in inventory and (c := inventory.circuit_of(m["node"]))}
    in_county = not circuits or any(inventory[c].in_county is not False for c in circuits)
    rule = policy.levels.get(row["level"])
    return {
        **_summary(row, zone),
        "contract": contract.id,
        "members": row["members"],
        "timeline": [
            {"at": _t(e["at"], zone), "known": _t(e["known"], zone), "kind": e["kind"], "detail": e["detail"]}
            for e in row["timeline"]
        ],
        "clocks": {
            "as_of": _t(now, zone),
            "response_s": max(0.0, (response_to - start).total_seconds()),
            "response_running": ack is None and end is None,
            "recovery_s": max(0.0, (upto - start).total_seconds()),
            "recovery_running": end is None,
            "onsite_s": None if row["onsite"] is None else (row["onsite"] - start).total_seconds(),
        },
        "limits": {
            "response_limit_s": None if rule is None else rule.response_limit_s,
            "recovery_limit_s": None if rule is None else rule.recovery_limit_s,
            "unexplained_after_s": None if rule is None else rule.unexplained_after_s,
            "restore_limit_s": policy.restore_in_county_s if in_county else policy.restore_out_county_s,
        },
    }


# ---------------------------------------------------------------------- the list
def _cursor_of(order: str) -> Callable[[dict[str, Any]], str]:
    """Cursors name their order: one of an oldest-first walk is refused by a newest-first one (and back)."""

    def cursor(row: dict[str, Any]) -> str:
        key = [format_time(row["start"]), row["id"]] + ([order] if order != "asc" else [])
        return encode_cursor(json.dumps(key, separators=(",", ":")).encode())

    return cursor


def _key_of(order: str) -> Callable[[bytes], tuple[datetime, str]]:
    def key(raw: bytes) -> tuple[datetime, str]:
        start, iid, *rest = json.loads(raw)
        if not isinstance(iid, str) or not iid or rest != ([order] if order != "asc" else []):
            raise ValueError(iid)
        return parse_time(start, None, "cursor"), iid

    return key


Month = Annotated[
    str | None,
    Query(
        pattern=MONTH_PATTERN, max_length=7, description="YYYY-MM: incidents that started in the month (contract zone)"
    ),
]
Levels = Annotated[list[int] | None, Query(description="levels 0-3 (0: fault); repeat for several")]
State = Annotated[Literal["open", "ended"] | None, Query(description="open or ended")]
OpenQuery = Annotated[bool | None, Query(alias="open", description="true: only open incidents; false: only ended")]
Acked = Annotated[bool | None, Query(description="true: acknowledged; false: not acknowledged")]
Exclusion = Annotated[
    Literal["none", "requested", "approved", "rejected"] | None,
    Query(description="the exclusion's latest step (none: never requested)"),
]
Scope = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="a node: incidents whose scope is at or under it"),
]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
Order = Annotated[
    Literal["asc", "desc"],
    Query(description="asc: oldest first (by start, then id); desc: newest first (what a NOC looks at)"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"at most this many incidents (1-{MAX_LIMIT})")]


async def _list(
    service: Service,
    contract: Contract,
    *,
    month: str | None,
    level: list[int] | None,
    state: str | None,
    open_: bool | None,
    acked: bool | None,
    exclusion: str | None,
    scope: str | None,
    cursor: str | None,
    limit: int,
    order: str = "asc",
) -> dict[str, Any]:
    start_from = start_to = None
    if month is not None:
        try:
            m = month_of(month, contract)
        except InputError as exc:
            raise ApiError(422, exc.message, where="query", field="month") from None
        start_from, start_to = m.start, m.end
    levels = sorted(set(level or ()))
    if any(not 0 <= v <= 3 for v in levels):
        raise ApiError(422, "levels are 0 (fault) to 3", where="query", field="level")
    if state is not None and open_ is not None and (state == "open") != open_:
        raise ApiError(422, "state and open contradict each other", where="query", field="open")
    if state is not None:
        open_ = state == "open"
    scopes: list[str] | None = None
    if scope is not None:
        inventory = await service.cached_inventory()
        if scope not in inventory:
            raise ApiError(422, f"node {shown(scope)} is not in the inventory", where="query", field="scope")
        scopes = [n for n in inventory if inventory.is_at_or_under(n, scope)]
    excluded: list[str | None] = []
    if exclusion is not None:
        excluded = [None if exclusion == "none" else exclusion]
    rows = await service.repo.query_incidents(
        contract.id,
        start_from=start_from,
        start_to=start_to,
        levels=levels,
        open_=open_,
        acked=acked,
        excluded=excluded,
        scopes=scopes,
        after=None if cursor is None else decode_cursor(cursor, _key_of(order)),
        limit=limit + 1,
        newest_first=order == "desc",
    )
    rows, next_cursor = page(rows, limit, _cursor_of(order))
    zone = contract.policy.zone
    return {
        "contract": contract.id,
        "incidents": [_summary(r, zone) for r in rows],
        "limit": limit,
        "next_cursor": next_cursor,
    }


# ---------------------------------------------------------------------- acts
async def _incident(service: Service, contract: Contract, incident_id: str) -> dict[str, Any]:
    row = await service.repo.load_incident(contract.id, incident_id)
    if row is None:
        raise ApiError(404, f"no incident {incident_id!r} in contract {contract.id}", where="path", field="incident_id")
    return row


def _when(body: _Body | None, contract: Contract, now: datetime, settings: Settings, start: datetime) -> datetime:
    """The act's dated time: ``at`` if given (not after its receipt beyond the allowed skew, not before the
    incident's start), else its receipt."""
    if body is None or body.at is None:
        return now
    try:
        at = parse_time(body.at, contract.policy.zone, "at")
    except InputError as exc:
        raise ApiError(422, exc.message, where="body", field="at") from None
    if at > now + timedelta(seconds=settings.max_clock_skew_s):
        raise ApiError(
            422, f"dated {format_time(at)}, after its receipt at {format_time(now)}", where="body", field="at"
        )
    if at < start:
        raise ApiError(
            422, f"dated {format_time(at)}, before the incident's start {format_time(start)}", where="body", field="at"
        )
    return at


async def _ingest(
    service: Service, contract: Contract, caller: Caller, incident_id: str, event: Event, now: datetime
) -> dict[str, Any]:
    """Store ``event`` (known at its receipt ``now``: SPEC R8) as the events route would; the incident after it."""
    received = event.received(max(now, event.at))
    where = f"{event.type} of {incident_id}"  # evidence ids were checked one by one (_request)
    await service.ingest([(where, received)], source=f"api:{caller.name}", actor=caller.name)
    return await _detail(service, contract, await _incident(service, contract, incident_id))


def _build(make: Callable[[], Event]) -> Event:
    try:
        return make()
    except EventError as exc:
        raise ApiError(422, exc.message, where="body", field=exc.field) from None


async def _ack(
    service: Service, settings: Settings, contract: Contract, caller: Caller, incident_id: str, body: CrewBody | None
) -> dict[str, Any]:
    row = await _incident(service, contract, incident_id)
    if row["ack"] is not None:
        raise ApiError(
            409,
            f"incident {incident_id} was acknowledged at {format_time(row['ack'])} by {row['ack_by'] or '?'} "
            "(only the first acknowledgement counts); nothing stored",
            where="path",
            field="incident_id",
        )
    if row["end"] is not None:
        raise ApiError(
            409, f"incident {incident_id} has ended: nothing to acknowledge", where="path", field="incident_id"
        )
    now = service.clock()
    at = _when(body, contract, now, settings, row["start"])
    by = (body.by if body is not None else None) or caller.name
    event = _build(lambda: AckEvent(at=at, incident=incident_id, by=by))
    return await _ingest(service, contract, caller, incident_id, event, now)


async def _onsite(
    service: Service, settings: Settings, contract: Contract, caller: Caller, incident_id: str, body: CrewBody | None
) -> dict[str, Any]:
    row = await _incident(service, contract, incident_id)
    if row["onsite"] is not None:
        raise ApiError(
            409,
            f"incident {incident_id}: arrival on site recorded at {format_time(row['onsite'])}; nothing stored",
            where="path",
            field="incident_id",
        )
    now = service.clock()
    at = _when(body, contract, now, settings, row["start"])
    by = (body.by if body is not None else None) or caller.name
    event = _build(lambda: OnsiteEvent(at=at, incident=incident_id, by=by))
    return await _ingest(service, contract, caller, incident_id, event, now)


async def _explain(
    service: Service, settings: Settings, contract: Contract, caller: Caller, incident_id: str, body: ExplanationBody
) -> dict[str, Any]:
    row = await _incident(service, contract, incident_id)
    now = service.clock()
    at = _when(body, contract, now, settings, row["start"])
    event = _build(lambda: ExplanationEvent(at=at, incident=incident_id, text=body.text, by=caller.name))
    return await _ingest(service, contract, caller, incident_id, event, now)


async def _request(
    service: Service, settings: Settings, contract: Contract, caller: Caller, incident_id: str, body: ExclusionBody
) -> dict[str, Any]:
    row = await _incident(service, contract, incident_id)
    status = row["excluded"]
    if status == ExclusionStatus.REJECTED.value and await _pending(service, contract, incident_id):
        status = "requested again"
    if status in (ExclusionStatus.REQUESTED.value, ExclusionStatus.APPROVED.value, "requested again"):
        raise ApiError(
            409,
            f"the exclusion of incident {incident_id} is {status} already; nothing stored",
            where="path",
            field="incident_id",
        )
    now = service.clock()
    at = _when(body, contract, now, settings, row["start"])
    evidence = " ".join(dict.fromkeys(body.evidence)) or None
    event = _build(
        lambda: ExclusionEvent(
            at=at,
            incident=incident_id,
            status=ExclusionStatus.REQUESTED,
            cause=body.cause,
            evidence=evidence,
            by=caller.name,
        )
    )
    for n, evidence_id in enumerate(dict.fromkeys(body.evidence)):  # each must be stored (422 naming it)
        one = ExclusionEvent(at=at, incident=incident_id, status=ExclusionStatus.REQUESTED, evidence=evidence_id)
        try:
            await check_evidence(service, [("body", one)])
        except EventError as exc:
            raise ApiError(422, exc.message, where="body", field=f"evidence.{n}") from None
    return await _ingest(service, contract, caller, incident_id, event, now)


async def _pending(service: Service, contract: Contract, incident_id: str) -> bool:
    """Whether the incident's latest exclusion step is a request (awaiting a decision), by the projection's engine."""
    engines = service.projection_engines()
    if engines is None:
        await service.rebuild()
        engines = service.projection_engines() or ()
    for c, engine in engines:
        if c.id == contract.id:
            incident = next((i for i in engine.incidents if i.id == incident_id), None)
            return (
                incident is not None
                and bool(incident.exclusion)
                and (incident.exclusion[-1].status is ExclusionStatus.REQUESTED)
            )
    return False


async def _decide(
    service: Service,
    contract: Contract,
    caller: Caller,
    incident_id: str,
    status: ExclusionStatus,
    body: DecisionBody | None,
) -> dict[str, Any]:
    row = await _incident(service, contract, incident_id)
    if row["excluded"] is None:
        raise ApiError(
            409,
            f"no exclusion of incident {incident_id} was requested; nothing stored",
            where="path",
            field="incident_id",
        )
    if caller.name in await service.exclusion_requesters(contract.id, incident_id):
        raise ApiError(
            403,
            f"{caller.name} requested this exclusion: someone else decides it; nothing stored",
            where="path",
            field="incident_id",
        )
    now = service.clock()
    note = "" if body is None or body.note is None else body.note
    event = _build(lambda: ExclusionEvent(at=now, incident=incident_id, status=status, cause=note, by=caller.name))
    return await _ingest(service, contract, caller, incident_id, event, now)


# ---------------------------------------------------------------------- routes (twice: sole contract, by id)
Crew = Annotated[CrewBody | None, Body()]
Decision = Annotated[DecisionBody | None, Body()]


def _routes(prefix: str, contract_dep: Callable[..., Awaitable[Contract]], label: str) -> None:
    ContractDep = Annotated[Contract, Depends(contract_dep)]
    item = prefix + "/incidents/{incident_id}"

    @router.get(
        prefix + "/incidents",
        summary=f"Incidents, filtered and paginated ({label})",
        response_model=IncidentPage,
        responses=problems(*READ, 404) if prefix else problems(*READ),
    )
    async def list_incidents(
        service: ServiceDep,
        _caller: Reader,
        contract: ContractDep,
        month: Month = None,
        level: Levels = None,
        state: State = None,
        open_: OpenQuery = None,
        acked: Acked = None,
        exclusion: Exclusion = None,
        scope: Scope = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        order: Order = "asc",
    ) -> dict[str, Any]:
        return await _list(
            service,
            contract,
            month=month,
            level=level,
            state=state,
            open_=open_,
            acked=acked,
            exclusion=exclusion,
            scope=scope,
            cursor=cursor,
            limit=limit,
            order=order,
        )

    @router.get(item, summary=f"One incident ({label})", response_model=IncidentDetail, responses=problems(*READ, 404))
    async def get_incident(
        service: ServiceDep, _caller: Reader, contract: ContractDep, incident_id: IncidentPath
    ) -> dict[str, Any]:
        return await _detail(service, contract, await _incident(service, contract, incident_id))

    acts = problems(*WRITE, 404, 409)

    @router.post(
        item + "/ack", summary=f"Acknowledge (operator; {label})", response_model=IncidentDetail, responses=acts
    )
    async def ack(
        service: ServiceDep,
        settings: SettingsDep,
        caller: Operator,
        contract: ContractDep,
        incident_id: IncidentPath,
        body: Crew = None,
    ) -> dict[str, Any]:
        return await _ack(service, settings, contract, caller, incident_id, body)

    @router.post(
        item + "/onsite",
        summary=f"Record the arrival on site (operator; {label})",
        response_model=IncidentDetail,
        responses=acts,
    )
    async def onsite(
        service: ServiceDep,
        settings: SettingsDep,
        caller: Operator,
        contract: ContractDep,
        incident_id: IncidentPath,
        body: Crew = None,
    ) -> dict[str, Any]:
        return await _onsite(service, settings, contract, caller, incident_id, body)

    @router.post(
        item + "/explanation",
        summary=f"File a written explanation (operator; {label})",
        response_model=IncidentDetail,
        responses=acts,
    )
    async def explanation(
        service: ServiceDep,
        settings: SettingsDep,
        caller: Operator,
        contract: ContractDep,
        incident_id: IncidentPath,
        body: ExplanationBody,
    ) -> dict[str, Any]:
        return await _explain(service, settings, contract, caller, incident_id, body)

    @router.post(
        item + "/exclusion",
        summary=f"Request a third-party exclusion (operator; {label})",
        response_model=IncidentDetail,
        responses=acts,
    )
    async def exclusion_request(
        service: ServiceDep,
        settings: SettingsDep,
        caller: Operator,
        contract: ContractDep,
        incident_id: IncidentPath,
        body: ExclusionBody,
    ) -> dict[str, Any]:
        return await _request(service, settings, contract, caller, incident_id, body)

    @router.post(
        item + "/exclusion/approve",
        summary=f"Approve the exclusion (assessor, not its requester; {label})",
        response_model=IncidentDetail,
        responses=acts,
    )
    async def exclusion_approve(
        service: ServiceDep, caller: Assessor, contract: ContractDep, incident_id: IncidentPath, body: Decision = None
    ) -> dict[str, Any]:
        return await _decide(service, contract, caller, incident_id, ExclusionStatus.APPROVED, body)

    @router.post(
        item + "/exclusion/reject",
        summary=f"Reject the exclusion (assessor, not its requester; {label})",
        response_model=IncidentDetail,
        responses=acts,
    )
    async def exclusion_reject(
        service: ServiceDep, caller: Assessor, contract: ContractDep, incident_id: IncidentPath, body: Decision = None
    ) -> dict[str, Any]:
        return await _decide(service, contract, caller, incident_id, ExclusionStatus.REJECTED, body)


async def _sole(contract: SoleContract) -> Contract:
    return contract


async def _by_id(contract: PathContract) -> Contract:
    return contract


_routes("", _sole, "single contract")
_routes("/contracts/{contract_id}", _by_id, "one contract")
