"""The daily list for the 11:00 claim rule (SPEC §5, R4): every channel offline at the claim hour of a day (in
the contract's zone), its stretch start, its incident, claimed (acknowledged) by whom and when, and whether it
is a breach, judged by the report's own rule (:func:`monitor.assessment.claim_statuses`) from everything known
now (any token).

    GET /daily/{date}                           date: YYYY-MM-DD (ASCII)
    GET /contracts/{contract_id}/daily/{date}

A day whose claim hour is still ahead lists nothing yet.
"""

from datetime import date as Date
from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import PathContract, Principal, ServiceDep, SoleContract
from api.errors import ApiError
from api.models import READ, DailyList, problems
from monitor.contracts import Contract
from monitor.events import EARLIEST, LATEST
from monitor.service import Service

router = APIRouter(tags=["daily"])

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DatePath = Annotated[
    str, Path(pattern=DATE_PATTERN, max_length=10, description="YYYY-MM-DD, a day in the contract's zone")
]


async def _daily(service: Service, contract: Contract, day_text: str) -> dict[str, Any]:
    try:
        day = Date.fromisoformat(day_text)
    except ValueError:
        raise ApiError(422, f"{day_text!r} is not a date", where="path", field="date") from None
    if not EARLIEST.date() <= day < LATEST.date():
        raise ApiError(422, "dates lie in 2000-01-01 .. 2099-12-31", where="path", field="date")
    at, as_of, statuses = await service.claim_day(contract, day)
    zone = contract.policy.zone

    def t(value: Any) -> Any:
        return None if value is None else value.astimezone(zone).isoformat()

    channels = [
        {
            "channel": s.channel,
            "node": s.node,
            "stretch_start": t(s.stretch_start),
            "incident": s.incident.id if s.incident is not None else "",
            "ack": t(s.incident.ack) if s.incident is not None else None,
            "ack_by": s.incident.ack_by if s.incident is not None else None,
            "excluded": s.excluded,
            "maintenance": s.maintenance,
            "breach": s.breach,
        }
        for s in statuses
    ]
    return {
        "contract": contract.id,
        "date": day.isoformat(),
        "at": t(at),
        "as_of": t(as_of),
        "claim_grace_s": contract.policy.claim_grace_s,
        "channels": channels,
        "breaches": sum(1 for c in channels if c["breach"]),
    }


@router.get(
    "/daily/{date}",
    summary="Channels offline at the day's claim hour (single contract)",
    response_model=DailyList,
    responses=problems(*READ),
)
async def daily(service: ServiceDep, _caller: Principal, contract: SoleContract, date: DatePath) -> dict[str, Any]:
    return await _daily(service, contract, date)


@router.get(
    "/contracts/{contract_id}/daily/{date}",
    summary="Channels offline at the day's claim hour (one contract)",
    response_model=DailyList,
    responses=problems(*READ, 404),
)
async def contract_daily(
    service: ServiceDep, _caller: Principal, contract: PathContract, date: DatePath
) -> dict[str, Any]:
    return await _daily(service, contract, date)
