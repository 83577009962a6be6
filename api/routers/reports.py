"""Monthly reports (SPEC §5–6) as JSON, CSV or bilingual HTML; every request issues and keeps a version."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from api.deps import PathContract, ServiceDep, SoleContract
from monitor.assessment import Month
from monitor.contracts import Contract
from monitor.errors import InputError
from monitor.events import parse_time
from monitor.service import Service

router = APIRouter(tags=["reports"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}

AsOf = Annotated[
    str | None,
    Query(description="RFC 3339 time the report is made as of (default now); no offset: the contract's zone"),
]
FormatQuery = Annotated[
    Literal["json", "csv", "html"], Query(alias="format", description="json, csv or html")
]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report (JSON per SPEC §6, or CSV, or HTML)",
        "content": {"text/csv": {}, "text/html": {}},
    }
}


async def _report(service: Service, contract: Contract, month: str, as_of: str | None, fmt: str) -> Response:
    try:
        Month.parse(month, contract.policy)
    except ValueError as exc:
        raise InputError(str(exc), where="path", field="month") from None
    when: datetime | None = None
    if as_of is not None:
        try:
            when = parse_time(as_of, contract.policy.zone, "as_of")
        except InputError as exc:
            raise InputError(exc.message, where="query", field="as_of") from None
    issued = await service.report(month, as_of=when, contract_id=contract.id)
    if fmt == "json":
        return JSONResponse(issued.body)
    return Response(issued.render(fmt), media_type=MEDIA_TYPES[fmt])


@router.get(
    "/reports/monthly/{month}", summary="The monthly assessment (single contract)", responses=_RESPONSES
)
async def monthly_report(
    service: ServiceDep, contract: SoleContract, month: str, as_of: AsOf = None, fmt: FormatQuery = "json"
) -> Response:
    return await _report(service, contract, month, as_of, fmt)


@router.get(
    "/contracts/{contract_id}/reports/monthly/{month}",
    summary="The monthly assessment of one contract",
    responses=_RESPONSES,
)
async def contract_monthly_report(
    service: ServiceDep, contract: PathContract, month: str, as_of: AsOf = None, fmt: FormatQuery = "json"
) -> Response:
    return await _report(service, contract, month, as_of, fmt)
