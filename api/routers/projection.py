"""Month-to-date projection per contract (any token): the online rate so far, points lost so far by item, the
projected score, share and amount if nothing else happens, the 11:00 breaches so far and the channels at risk at
the next claim instant, and the open incidents by level.

    GET /projection                          single contract
    GET /contracts/{contract_id}/projection

Computed incrementally (:class:`monitor.projection.MonthToDate` over the service's live engine, kept between
requests in ``app.state``), not by a full assessment per request; the figures equal the month's report as of
now over the same events.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import PathContract, Principal, ServiceDep, SoleContract
from api.errors import ApiError
from api.models import READ, Time, problems
from monitor.contracts import Contract
from monitor.projection import MonthToDate, month_at
from monitor.service import Service

router = APIRouter(tags=["projection"])

US = 1_000_000


class ProjectionSeconds(BaseModel):
    online: float
    offline: float
    excluded: float
    blind: float
    expected: float


class Projection(BaseModel):
    contract: str
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$")
    as_of: Time
    online_rate: float = Field(description="a fraction (0.98, not 98)")
    channel_seconds: ProjectionSeconds
    lost: dict[str, float] = Field(description="points lost so far by item (capped at the item's points)")
    score: float
    share_paid: float
    base: float
    amount: float
    claim_breaches: int
    next_claim: Time
    at_risk: dict[str, int] = Field(description="area -> channels that breach at next_claim unless claimed")
    at_risk_points: float
    open_by_level: dict[str, int]
    oldest_open: dict[str, Time]


async def _projection(request: Request, service: Service, contract: Contract) -> dict[str, Any]:
    engines = service.projection_engines()
    if engines is None:
        await service.rebuild()
        engines = service.projection_engines()
    engine = next((e for c, e in engines or () if c.id == contract.id), None)
    if engine is None:  # pragma: no cover - every contract has an engine after a rebuild
        raise ApiError(503, f"no projection for contract {contract.id} yet")
    now = service.clock()
    trackers: dict[str, MonthToDate] = getattr(request.app.state, "projection_trackers", None) or {}
    request.app.state.projection_trackers = trackers
    tracker = trackers.get(contract.id)
    if tracker is None or not tracker.fits(contract, engine, now):
        tracker = trackers[contract.id] = MonthToDate(contract, engine, month_at(now, contract))
    f = tracker.figures(now)
    zone = contract.policy.zone
    s = f.seconds
    return {
        "contract": f.contract,
        "month": f.month,
        "as_of": f.as_of.astimezone(zone).isoformat(),
        "online_rate": float(f.online_rate),
        "channel_seconds": {
            "online": s.online / US,
            "offline": s.offline / US,
            "excluded": s.excluded / US,
            "blind": s.blind / US,
            "expected": s.expected / US,
        },
        "lost": {k: float(v) for k, v in f.lost.items()},
        "score": float(f.score),
        "share_paid": float(f.share),
        "base": float(f.base),
        "amount": float(f.amount),
        "claim_breaches": f.claim_breaches,
        "next_claim": f.next_claim.astimezone(zone).isoformat(),
        "at_risk": dict(f.at_risk),
        "at_risk_points": float(f.at_risk_points),
        "open_by_level": {str(k): v for k, v in f.open_by_level.items()},
        "oldest_open": {str(k): v.astimezone(zone).isoformat() for k, v in f.oldest_open.items()},
    }


@router.get(
    "/projection", summary="Month to date (single contract)", response_model=Projection, responses=problems(*READ)
)
async def projection(
    request: Request, service: ServiceDep, _caller: Principal, contract: SoleContract
) -> dict[str, Any]:
    return await _projection(request, service, contract)


@router.get(
    "/contracts/{contract_id}/projection",
    summary="Month to date (one contract)",
    response_model=Projection,
    responses=problems(*READ, 404),
)
async def contract_projection(
    request: Request, service: ServiceDep, _caller: Principal, contract: PathContract
) -> dict[str, Any]:
    return await _projection(request, service, contract)
