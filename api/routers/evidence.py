"""Evidence files (SPEC §4: photos, scanned reports) uploaded over the API, and the check that events naming
one name a stored one.

    POST /evidence?filename=NAME   operator, assessor   the raw file as the body (any Content-Type), at most
                                                        the setting max_evidence_bytes (413 above, before the
                                                        body is read whole); the same file twice is one
    GET  /evidence/{id}            any token            the file's bytes, with its media type, as an attachment

An evidence id is ``sha256:`` and the 64 hex digits of the content's sha256. An event (exclusion, finding) may
name one in its ``evidence`` field; :func:`check_evidence` refuses a batch naming one that is not stored (422,
naming the line and the field). Any other ``evidence`` text is a written explanation and is not checked.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import Caller, Principal, ServiceDep, SettingsDep, require
from api.errors import ApiError
from api.models import READ, WRITE, EvidenceUploaded, problems
from monitor.errors import EventError
from monitor.events import Event
from monitor.service import Service

router = APIRouter(tags=["evidence"])

#: A hard cap on evidence files (bytes), over the setting ``max_evidence_bytes`` (the smaller one applies;
#: api.limits.BodyLimit enforces the setting before the route runs).
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024

PREFIX = "sha256:"
_ID = re.compile(r"sha256:[0-9a-f]{64}")

Uploader = Annotated[Caller, Depends(require("operator", "assessor"))]
FilenameQuery = Annotated[
    str, Query(min_length=1, max_length=255, description="the file's name (kept for display and downloads)")
]

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the file itself (raw bytes, any media type)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the file is larger than {limit} bytes", where="request body")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request, filename: str) -> str:
    declared = request.headers.get("content-type", "").strip()
    if declared and declared.split(";")[0].strip().lower() != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


@router.post(
    "/evidence",
    summary="Upload an evidence file (the raw body)",
    openapi_extra=_BODY_DOC,
    response_model=EvidenceUploaded,
    responses=problems(*WRITE),
)
async def upload(
    request: Request, service: ServiceDep, settings: SettingsDep, caller: Uploader, filename: FilenameQuery
) -> dict[str, Any]:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or any(ord(c) < 32 for c in name):
        raise ApiError(422, "not a usable file name", where="query", field="filename")
    content = await _read_limited(request, min(settings.max_evidence_bytes, MAX_EVIDENCE_BYTES))
    if not content:
        raise ApiError(422, "the body is empty: send the file itself", where="request body")
    media_type = _media_type(request, name)
    digest = await service.repo.save_evidence(content, name, media_type, caller.name)
    evidence_id = PREFIX + digest
    await service.repo.append_audit(
        caller.name, "evidence", evidence_id, {"file": name, "size": len(content), "media_type": media_type}
    )
    stored = await service.repo.load_evidence(digest)  # the first upload's name and type stand
    return {
        "id": evidence_id,
        "size": len(content),
        "media_type": stored.media_type if stored else media_type,
        "filename": stored.filename if stored else name,
    }


@router.get(
    "/evidence/{evidence_id}",
    summary="Download an evidence file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems(*READ, 404)},
)
async def download(service: ServiceDep, _caller: Principal, evidence_id: str) -> Response:
    if not _ID.fullmatch(evidence_id):
        raise ApiError(404, f"no evidence {evidence_id!r} (ids are sha256:<64 hex>)", where="path", field="evidence_id")
    stored = await service.repo.load_evidence(evidence_id.removeprefix(PREFIX))
    if stored is None:
        raise ApiError(404, f"no evidence {evidence_id}", where="path", field="evidence_id")
    headers = {
        # Uploaded content is served as a download and never sniffed or run in the API's origin.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    return Response(stored.content, media_type=stored.media_type, headers=headers)


async def check_evidence(service: Service, located: Sequence[tuple[str, Event]]) -> None:
    """Refuse (EventError: 422, naming where and ``evidence``) an event naming an evidence id not stored."""
    for where, event in located:
        evidence = getattr(event, "evidence", None)
        if not isinstance(evidence, str) or not evidence.startswith(PREFIX):
            continue
        if not _ID.fullmatch(evidence):
            message = f"{evidence!r} is not an evidence id (sha256:<64 lowercase hex>)"
            raise EventError(message, where=where, field="evidence")
        if await service.repo.load_evidence(evidence.removeprefix(PREFIX)) is None:
            raise EventError(
                f"no evidence {evidence} is stored: upload it first (POST /api/v1/evidence); nothing stored",
                where=where,
                field="evidence",
            )
