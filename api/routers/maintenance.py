"""Maintenance windows through the API (SPEC §4): the operator requests, the assessor consents or refuses.

    POST /maintenance                  operator   {scope, from, to, reason}: a request (the same again: the same one)
    GET  /maintenance?status=          any token  the requests (requested | consented | refused)
    GET  /maintenance/{id}             any token  one request
    POST /maintenance/{id}/consent     assessor   {note}, optional: emits the maintenance event
    POST /maintenance/{id}/refuse      assessor   {note}, optional

Admin may do everything. Times are RFC 3339; without an offset they are read in the contracts' zone. A request
made after the window's start is accepted and flagged ``late``. Deciding a decided request is 409, an unknown
id 404. A consented request's ``event`` is the id of the ``maintenance`` event its consent stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Principal, ServiceDep, require
from api.errors import ApiError
from api.models import READ, WRITE, MaintenanceList, MaintenanceRequestOut, problems
from monitor.errors import InputError
from monitor.events import MAX_TEXT_BYTES, check_text, parse_time
from monitor.maintenance import AlreadyDecided, UnknownRequest, consent_event, decide_maintenance, request_maintenance
from monitor.service import Service
from monitor.storage.maintenance import CONSENTED, MaintenanceRequest, list_requests, load_request

router = APIRouter(tags=["maintenance"])

Operator = Annotated[Caller, Depends(require("operator"))]
Assessor = Annotated[Caller, Depends(require("assessor"))]


class MaintenanceRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    scope: str = Field(
        min_length=1, max_length=64, description="the node whose channels (and everything under it) are covered"
    )
    start: str = Field(alias="from", max_length=64, description="RFC 3339; no offset: the contracts' time zone")
    end: str = Field(alias="to", max_length=64, description="RFC 3339, after 'from'")
    reason: str = Field(
        min_length=1, max_length=MAX_TEXT_BYTES, description=f"the planned work (at most {MAX_TEXT_BYTES} bytes)"
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None,
        max_length=MAX_TEXT_BYTES,
        description=f"why (kept with the decision and in the audit log; at most {MAX_TEXT_BYTES} bytes)",
    )


StatusQuery = Annotated[
    Literal["requested", "consented", "refused"] | None, Query(description="only requests with this status")
]


def _json(request: MaintenanceRequest) -> dict[str, Any]:
    out = request.to_json()
    if request.status == CONSENTED:
        out["event"] = consent_event(request).id
    return out


@router.post(
    "/maintenance",
    summary="Request a maintenance window (operator)",
    response_model=MaintenanceRequestOut,
    response_model_exclude_unset=True,  # 'event' only for a consented request
    responses=problems(*WRITE),
)
async def post_request(service: ServiceDep, caller: Operator, body: MaintenanceRequestBody) -> dict[str, Any]:
    tz = await service.event_timezone()
    try:
        check_text(body.reason, "reason")  # bytes of UTF-8: the schema's max_length counts characters
        start = parse_time(body.start, tz, "from")
        end = parse_time(body.end, tz, "to")
        record = await request_maintenance(
            service, body.scope, start, end, body.reason, by=caller.name, at=service.clock()
        )
    except InputError as exc:
        raise InputError(exc.message, where="body", field=exc.field) from None
    return _json(record)


@router.get(
    "/maintenance",
    summary="Maintenance requests",
    response_model=MaintenanceList,
    response_model_exclude_unset=True,
    responses=problems(*READ),
)
async def get_requests(service: ServiceDep, _caller: Principal, status: StatusQuery = None) -> dict[str, Any]:
    return {"requests": [_json(r) for r in await list_requests(service.db, status)]}


@router.get(
    "/maintenance/{request_id}",
    summary="One maintenance request",
    response_model=MaintenanceRequestOut,
    response_model_exclude_unset=True,  # 'event' only for a consented request
    responses=problems(*READ, 404),
)
async def get_request(service: ServiceDep, _caller: Principal, request_id: str) -> dict[str, Any]:
    record = await load_request(service.db, request_id)
    if record is None:
        raise ApiError(404, f"no maintenance request {request_id!r}", where="path", field="request_id")
    return _json(record)


async def _decide(
    service: Service, caller: Caller, request_id: str, consent: bool, body: DecisionBody | None
) -> dict[str, Any]:
    if body is not None and body.note is not None:
        try:
            check_text(body.note, "note")
        except InputError as exc:
            raise InputError(exc.message, where="body", field=exc.field) from None
    try:
        record = await decide_maintenance(
            service, request_id, consent, by=caller.name, at=service.clock(), note=body.note if body else None
        )
    except UnknownRequest as exc:
        raise ApiError(404, str(exc), where="path", field="request_id") from None
    except AlreadyDecided as exc:
        raise ApiError(409, str(exc), where="path", field="request_id") from None
    return _json(record)


Decision = Annotated[DecisionBody | None, Body()]


@router.post(
    "/maintenance/{request_id}/consent",
    summary="Consent to a maintenance request (assessor)",
    response_model=MaintenanceRequestOut,
    response_model_exclude_unset=True,  # 'event' only for a consented request
    responses=problems(*WRITE, 404, 409),
)
async def consent(service: ServiceDep, caller: Assessor, request_id: str, body: Decision = None) -> dict[str, Any]:
    return await _decide(service, caller, request_id, True, body)


@router.post(
    "/maintenance/{request_id}/refuse",
    summary="Refuse a maintenance request (assessor)",
    response_model=MaintenanceRequestOut,
    response_model_exclude_unset=True,  # 'event' only for a consented request
    responses=problems(*WRITE, 404, 409),
)
async def refuse(service: ServiceDep, caller: Assessor, request_id: str, body: Decision = None) -> dict[str, Any]:
    return await _decide(service, caller, request_id, False, body)
