"""Monthly reports (SPEC §5–6, R8, R9): computed on request (nothing stored); versions issued, listed, fetched, signed.

    GET  /reports/monthly/{month}?as_of=&format=                 compute (any token); a closed month: the signed
                                                                  version beside a recomputation (JSON)
    POST /reports/monthly/{month}/versions   {"as_of", "reason"} issue a version (assessor, admin): 201, its JSON
    GET  /reports/monthly/{month}/versions                        list the versions (any token)
    GET  /reports/monthly/{month}/versions/{n}?format=            one version: its JSON byte for byte as issued,
                                                                  or CSV / HTML rendered from it (any token)
    POST /reports/monthly/{month}/versions/{n}/sign               sign it: the month is closed (assessor, admin)

and the same under ``/contracts/{contract_id}/...``. A computation runs off the event loop and stops when the
client disconnects (499, nothing sent). Refusals: 404 no such version; 409 a closed month without a ``reason``,
or a signature the month's state does not allow; 422 bad input; each names its ``field``.

A computed report is kept in memory (``monitor.report_cache``): asked again with nothing stored since, it is
served at once as that computation (its ``as_of``) with an ``Age`` header (SLAWATCH_REPORT_CACHE_S, default 60 s,
for "as of now"; an explicit ``as_of`` is kept for that time only).

``format``: ``json`` (default), ``csv`` (every table in one text, as before), ``html`` (the printable bilingual
page), ``zip`` (one CSV per table, UTF-8 with BOM, for spreadsheets) or ``pdf`` (the page to sign; 503 where
WeasyPrint is not installed); ``zip`` and ``pdf`` come as attachments with a file name.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, PathContract, ServiceDep, SoleContract, require
from api.errors import ApiError
from api.models import (
    MONTH_PATTERN,
    READ,
    WRITE,
    ClosedMonthReport,
    ReportBody,
    SignedVersionInfo,
    VersionList,
    problems,
)
from monitor.assessment import Month
from monitor.contracts import Contract
from monitor.errors import InputError
from monitor.events import parse_time
from monitor.report import MEDIA_TYPES, file_name, render_body, render_file
from monitor.report_pdf import PdfUnavailable
from monitor.report_versions import REASON_MAX_BYTES, ReportCancelled, ReportStateError, StoredReport, version_json
from monitor.service import Service

router = APIRouter(tags=["reports"])

#: The client closed the connection before the report was computed (nginx's code; nobody receives it).
CLIENT_GONE = 499

AsOf = Annotated[
    str | None,
    Query(description="RFC 3339 time the report is made as of (default now); no offset: the contract's zone"),
]
FormatQuery = Annotated[
    Literal["json", "csv", "html", "zip", "pdf"],
    Query(alias="format", description="json, csv (one text), html, zip (one CSV per table) or pdf"),
]
#: Formats served as files (binary, with a Content-Disposition naming them).
FILE_FORMATS = ("zip", "pdf")
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the version number (1, 2, ...)")]
Issuer = Annotated[Caller, Depends(require("assessor"))]

MonthPath = Annotated[
    str,
    Path(
        pattern=MONTH_PATTERN,
        max_length=7,
        description="the month, ASCII `YYYY-MM` (SPEC R10), in the contract's zone",
        examples=["2026-03"],
    ),
]

#: The renderings besides JSON (documented; the bytes are returned as they are).
_RENDERED: dict[str, dict[str, Any]] = {
    "text/csv": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string"}},
    "application/zip": {"schema": {"type": "string", "format": "binary"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ReportBody | ClosedMonthReport,
        "description": "The report (JSON per SPEC §6, or CSV, HTML, a zip of CSV tables or a PDF); for a closed "
        "month (JSON) the signed version beside a recomputation (`ClosedMonthReport`)",
        "content": _RENDERED,
    },
    **problems(*READ, 404),
}
_VERSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ReportBody,
        "description": "The version: JSON byte for byte as issued, or CSV, HTML, a zip of CSV tables or a PDF",
        "content": _RENDERED,
    },
    **problems(*READ, 404),
}
_ISSUE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": ReportBody, "description": "The issued version's JSON (`Location`: the version)"},
    **problems(*WRITE, 404, 409),
}
_LIST_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"model": VersionList}, **problems(*READ, 404)}
_SIGN_RESPONSES = problems(*WRITE, 404, 409)


class IssueRequest(BaseModel):
    """What to issue: as of when (default now, never in the future) and why (required for a closed month)."""

    model_config = ConfigDict(extra="forbid")

    as_of: str | None = Field(default=None, max_length=64, description="RFC 3339; no offset: the contract's zone")
    reason: str | None = Field(
        default=None,
        max_length=REASON_MAX_BYTES,
        description="why this version is issued; required once the month is closed (a version is signed)",
    )


def _month(contract: Contract, month: str) -> str:
    try:
        return Month.parse(month, contract.policy).key
    except ValueError as exc:
        raise InputError(str(exc), where="path", field="month") from None


def _as_of(contract: Contract, as_of: str | None, where: str) -> datetime | None:
    if as_of is None:
        return None
    try:
        return parse_time(as_of, contract.policy.zone, "as_of")
    except InputError as exc:
        raise InputError(exc.message, where=where, field="as_of") from None


def _refused(exc: ReportStateError) -> ApiError:
    return ApiError(exc.status, exc.message, field=exc.field)


async def _report(
    request: Request, service: Service, contract: Contract, month: str, as_of: str | None, fmt: str
) -> Response:
    key = _month(contract, month)
    when = _as_of(contract, as_of, "query")
    try:
        result = await service.month_report(
            key, as_of=when, contract_id=contract.id, checkpoint=request.is_disconnected
        )
        await _still_there(request)
    except ReportCancelled:
        return Response(status_code=CLIENT_GONE)
    if fmt in FILE_FORMATS:  # what is paid: the signed version once the month is closed, else the computation
        body = result.signed.body if result.signed is not None else result.computed.body
        return await _file(body, fmt, contract.policy.claim_hour)
    text = await asyncio.to_thread(result.text) if fmt == "json" else await asyncio.to_thread(result.render, fmt)
    age = result.computed.age_s  # kept in memory: the report as of its computation (its as_of), this old (s)
    return Response(text, media_type=MEDIA_TYPES[fmt], headers={} if age is None else {"Age": str(int(age))})


async def _file(body: dict[str, Any], fmt: str, claim_hour: int) -> Response:
    """A report body as a zip or PDF attachment; 503 when no PDF can be rendered on this machine."""
    try:
        content = await asyncio.to_thread(render_file, body, fmt, claim_hour=claim_hour)  # type: ignore[arg-type]
    except PdfUnavailable as exc:
        raise ApiError(503, str(exc), field="format") from None
    disposition = f'attachment; filename="{file_name(body, fmt)}"'
    return Response(content, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": disposition})


async def _still_there(request: Request) -> None:
    if await request.is_disconnected():
        raise ReportCancelled("the client went away")


async def _issue(
    request: Request, service: Service, contract: Contract, month: str, body: IssueRequest | None, caller: Caller
) -> Response:
    key = _month(contract, month)
    body = body or IssueRequest()
    when = _as_of(contract, body.as_of, "body")
    try:
        stored = await service.issue_report(
            key,
            by=caller.name,
            as_of=when,
            reason=body.reason,
            contract_id=contract.id,
            checkpoint=request.is_disconnected,
        )
    except ReportStateError as exc:
        raise _refused(exc) from None
    except ReportCancelled:
        return Response(status_code=CLIENT_GONE)
    location = request.url.path.rstrip("/") + f"/{stored.version}"
    return Response(
        stored.content,
        status_code=201,
        media_type=MEDIA_TYPES["json"],
        headers={"Location": location, "X-Report-Version": str(stored.version)},
    )


async def _versions(service: Service, contract: Contract, month: str) -> JSONResponse:
    key = _month(contract, month)
    versions = await service.report_versions(key, contract_id=contract.id)
    signed = next((v.version for v in versions if v.signed), None)
    zone = contract.policy.zone
    return JSONResponse(
        {
            "contract": contract.id,
            "month": key,
            "closed": signed is not None,
            "signed_version": signed,
            "versions": [version_json(v, zone) for v in versions],
        }
    )


async def _version(service: Service, contract: Contract, month: str, version: int, fmt: str) -> Response:
    key = _month(contract, month)
    try:
        stored: StoredReport = await service.report_version(key, version, contract_id=contract.id)
    except ReportStateError as exc:
        raise _refused(exc) from None
    if fmt == "json":
        return Response(stored.content, media_type=MEDIA_TYPES["json"])
    if fmt in FILE_FORMATS:
        return await _file(stored.body, fmt, contract.policy.claim_hour)
    text = await asyncio.to_thread(render_body, stored.body, fmt, claim_hour=contract.policy.claim_hour)  # type: ignore[arg-type]
    return Response(text, media_type=MEDIA_TYPES[fmt])


async def _sign(service: Service, contract: Contract, month: str, version: int, caller: Caller) -> dict[str, Any]:
    key = _month(contract, month)
    try:
        signed = await service.sign_report(key, version, by=caller.name, contract_id=contract.id)
    except ReportStateError as exc:
        raise _refused(exc) from None
    return {"contract": contract.id, "month": key, **version_json(signed, contract.policy.zone)}


# ---------------------------------------------------------------------- the only contract
@router.get("/reports/monthly/{month}", summary="The monthly assessment (single contract)", responses=_RESPONSES)
async def monthly_report(
    request: Request,
    service: ServiceDep,
    contract: SoleContract,
    month: MonthPath,
    as_of: AsOf = None,
    fmt: FormatQuery = "json",
) -> Response:
    """Computed now (nothing is stored). Once the month is closed, JSON shows the signed version beside a
    recomputation and what changed since the signature; CSV and HTML show the signed version."""
    return await _report(request, service, contract, month, as_of, fmt)


@router.post(
    "/reports/monthly/{month}/versions",
    summary="Issue a version (assessor, admin)",
    status_code=201,
    responses=_ISSUE_RESPONSES,
)
async def issue_version(
    request: Request,
    service: ServiceDep,
    contract: SoleContract,
    caller: Issuer,
    month: MonthPath,
    body: IssueRequest | None = None,
) -> Response:
    """Stores the report's JSON as of ``as_of`` (default now), the policy hash, the issuer and the last event seen;
    returns that JSON (``Location``: the version). A closed month needs a ``reason`` (409 otherwise)."""
    return await _issue(request, service, contract, month, body, caller)


@router.get("/reports/monthly/{month}/versions", summary="The issued versions of a month", responses=_LIST_RESPONSES)
async def list_versions(service: ServiceDep, contract: SoleContract, month: MonthPath) -> JSONResponse:
    return await _versions(service, contract, month)


@router.get("/reports/monthly/{month}/versions/{version}", summary="One issued version", responses=_VERSION_RESPONSES)
async def get_version(
    service: ServiceDep, contract: SoleContract, month: MonthPath, version: VersionPath, fmt: FormatQuery = "json"
) -> Response:
    """JSON: byte for byte as issued. CSV, HTML, zip and PDF are rendered from that JSON."""
    return await _version(service, contract, month, version, fmt)


@router.post(
    "/reports/monthly/{month}/versions/{version}/sign",
    summary="Sign a version (assessor, admin)",
    response_model=SignedVersionInfo,
    responses=_SIGN_RESPONSES,
)
async def sign_version(
    service: ServiceDep, contract: SoleContract, caller: Issuer, month: MonthPath, version: VersionPath
) -> dict[str, Any]:
    """The month is then closed and this version is what is paid. While one is signed, another can be signed
    only if issued after it with a reason (409 otherwise)."""
    return await _sign(service, contract, month, version, caller)


# ---------------------------------------------------------------------- a named contract
@router.get(
    "/contracts/{contract_id}/reports/monthly/{month}",
    summary="The monthly assessment of one contract",
    responses=_RESPONSES,
)
async def contract_monthly_report(
    request: Request,
    service: ServiceDep,
    contract: PathContract,
    month: MonthPath,
    as_of: AsOf = None,
    fmt: FormatQuery = "json",
) -> Response:
    return await _report(request, service, contract, month, as_of, fmt)


@router.post(
    "/contracts/{contract_id}/reports/monthly/{month}/versions",
    summary="Issue a version of one contract's month (assessor, admin)",
    status_code=201,
    responses=_ISSUE_RESPONSES,
)
async def contract_issue_version(
    request: Request,
    service: ServiceDep,
    contract: PathContract,
    caller: Issuer,
    month: MonthPath,
    body: IssueRequest | None = None,
) -> Response:
    return await _issue(request, service, contract, month, body, caller)


@router.get(
    "/contracts/{contract_id}/reports/monthly/{month}/versions",
    summary="The versions of a contract's month",
    responses=_LIST_RESPONSES,
)
async def contract_list_versions(service: ServiceDep, contract: PathContract, month: MonthPath) -> JSONResponse:
    return await _versions(service, contract, month)


@router.get(
    "/contracts/{contract_id}/reports/monthly/{month}/versions/{version}",
    summary="One issued version of a contract's month",
    responses=_VERSION_RESPONSES,
)
async def contract_get_version(
    service: ServiceDep, contract: PathContract, month: MonthPath, version: VersionPath, fmt: FormatQuery = "json"
) -> Response:
    return await _version(service, contract, month, version, fmt)


@router.post(
    "/contracts/{contract_id}/reports/monthly/{month}/versions/{version}/sign",
    summary="Sign a version of a contract's month (assessor, admin)",
    response_model=SignedVersionInfo,
    responses=_SIGN_RESPONSES,
)
async def contract_sign_version(
    service: ServiceDep, contract: PathContract, caller: Issuer, month: MonthPath, version: VersionPath
) -> dict[str, Any]:
    return await _sign(service, contract, month, version, caller)
