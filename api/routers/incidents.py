"""Incidents as last projected from the stored events (SPEC §3), newest projection, oldest incident first."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import PathContract, ServiceDep, SoleContract
from monitor.contracts import Contract
from monitor.service import Service

router = APIRouter(tags=["incidents"])

OpenQuery = Annotated[
    bool | None, Query(alias="open", description="true: only open incidents; false: only ended")
]


def _jsonable(value: Any, zone: tzinfo) -> Any:
    """Times as RFC 3339 with the contract's offset; containers recursively."""
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, zone) for v in value]
    return value


async def _incidents(service: Service, contract: Contract, open_: bool | None) -> dict[str, Any]:
    rows = await service.repo.load_incidents(contract.id)
    if open_ is not None:
        rows = [r for r in rows if r["open"] is open_]
    zone = contract.policy.zone
    return {"contract": contract.id, "incidents": [_jsonable(r, zone) for r in rows]}


@router.get("/incidents", summary="Incidents (single contract)")
async def list_incidents(
    service: ServiceDep, contract: SoleContract, open_: OpenQuery = None
) -> dict[str, Any]:
    return await _incidents(service, contract, open_)


@router.get("/contracts/{contract_id}/incidents", summary="Incidents of one contract")
async def list_contract_incidents(
    service: ServiceDep, contract: PathContract, open_: OpenQuery = None
) -> dict[str, Any]:
    return await _incidents(service, contract, open_)
