"""The assessor's queue: what awaits a decision (any token may read it; deciding is the assessor's).

    GET /queue   exclusion requests not decided since they were made (POST .../incidents/{id}/exclusion/approve
                 or /reject), and maintenance requests awaiting consent (POST /maintenance/{id}/consent or /refuse)

Exclusions come from the incident projection's engines (the latest step of each incident's exclusion is a
request), oldest request first, across contracts; maintenance requests in the order they were asked for.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Principal, ServiceDep
from api.models import READ, QueueResponse, problems
from monitor.events import ExclusionStatus
from monitor.storage.maintenance import REQUESTED, list_requests

router = APIRouter(tags=["queue"])


@router.get(
    "/queue", summary="What awaits the assessor's decision", response_model=QueueResponse, responses=problems(*READ)
)
async def queue(service: ServiceDep, _caller: Principal) -> dict[str, Any]:
    engines = service.projection_engines()
    if engines is None:
        await service.rebuild()
        engines = service.projection_engines() or ()
    pending: list[dict[str, Any]] = []
    for contract, engine in engines:
        zone = contract.policy.zone
        for incident in engine.incidents:
            steps = incident.exclusion
            if not steps or steps[-1].status is not ExclusionStatus.REQUESTED:
                continue
            decided = max((n for n, s in enumerate(steps) if s.status is not ExclusionStatus.REQUESTED), default=-1)
            asked = steps[decided + 1 :]
            pending.append(
                {
                    "contract": contract.id,
                    "incident": incident.id,
                    "scope": incident.scope,
                    "level": engine.policy.level_for(incident.peak),
                    "start": incident.start.astimezone(zone).isoformat(),
                    "end": None if incident.end is None else incident.end.astimezone(zone).isoformat(),
                    "requested_at": asked[0].at.astimezone(zone).isoformat(),
                    "requested_by": sorted({s.by for s in asked if s.by}),
                }
            )
    pending.sort(key=lambda p: (p["requested_at"], p["contract"], p["incident"]))
    maintenance = [r.to_json() for r in await list_requests(service.db, REQUESTED)]
    return {"exclusions": pending, "maintenance": maintenance}
