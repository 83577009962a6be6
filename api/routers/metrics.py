"""``GET /metrics``: Prometheus text exposition (format 0.0.4), built at scrape time (:mod:`monitor.metrics`).

No token is asked, like ``/healthz``: the counts it shows are coarse (by area, kind, state, contract and level;
no node ids, no addresses, never a credential). It is served by the same server as the rest of the API, so it
is bound where the API is: 127.0.0.1 by default (``SLAWATCH_API_HOST``), reachable by a Prometheus on the same
host. To scrape it from elsewhere, either put it behind a reverse proxy that authenticates, or include this
router with the ``authenticate`` dependency and give Prometheus a viewer token (``authorization:
credentials_file`` in its scrape config).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ServiceDep
from monitor.live import LiveService
from monitor.metrics import CONTENT_TYPE, scrape

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format 0.0.4)",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition", "content": {"text/plain": {}}}},
)
async def metrics(request: Request, service: ServiceDep) -> Response:
    """Live state by kind/state/area, collector health, probes and SNMP facts, open incidents per contract and
    level. Without a live service in this process (``slawatch serve``): the stored counts and the collector's
    heartbeat only."""
    live: LiveService | None = getattr(request.app.state, "live", None)
    return Response(await scrape(live, service), media_type=CONTENT_TYPE)
