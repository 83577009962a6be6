"""Liveness and database reachability, without authentication (for load balancers and probes)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServiceDep
from api.models import Health
from monitor.errors import StorageError

router = APIRouter(tags=["health"])
log = logging.getLogger("slawatch.api")


@router.get(
    "/healthz",
    summary="Liveness and database check",
    response_model=Health,
    responses={503: {"description": "the database is unavailable", "model": Health}},
)
async def healthz(service: ServiceDep) -> JSONResponse:
    try:
        await service.db.current_revision()
    except StorageError as exc:
        log.error("health check: database unavailable", extra={"error": str(exc)})
        return JSONResponse({"status": "unavailable", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
