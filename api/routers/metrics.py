"""``GET /metrics``: Prometheus text exposition (format 0.0.4), built at scrape time (:mod:`monitor.metrics`).

No token is asked, like ``/healthz``: the counts it shows are coarse (by area, kind, state, contract, level and
item; no node ids, no addresses, never a credential). It is served by the same server as the rest of the API,
so it is bound where the API is: 127.0.0.1 by default (``SLAWATCH_API_HOST``), reachable by a Prometheus on
the same host. To scrape it from elsewhere, either put it behind a reverse proxy that authenticates, or include
this router with the ``authenticate`` dependency and give Prometheus a viewer token (``authorization:
credentials_file`` in its scrape config).

:func:`install_http_metrics` gives the application its own registry (never the global one) with the process
and Python collectors and prometheus-fastapi-instrumentator's HTTP request metrics; ``/metrics`` appends it to
slawatch's own families. The alerts module connects its outbox by setting ``app.state.alert_outbox`` to an
:data:`~monitor.metrics.OutboxProbe` (an async callable returning :class:`~monitor.metrics.OutboxStats`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_fastapi_instrumentator import Instrumentator

from api.deps import ServiceDep
from monitor.live import LiveService
from monitor.metrics import CONTENT_TYPE, MetricsState, OutboxProbe, scrape

router = APIRouter(tags=["metrics"])


def install_http_metrics(app: FastAPI) -> CollectorRegistry:
    """The application's registry: process (``process_*``), Python (``python_*``) and HTTP request metrics
    (``http_requests_total``, ``http_request_duration_seconds``... by handler template, method and status
    class; ``/metrics`` itself excluded). Call once, before the application starts."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Instrumentator(registry=registry, excluded_handlers=["^/metrics$"]).instrument(app)
    app.state.http_metrics = registry
    app.state.metrics_state = MetricsState()
    return registry


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format 0.0.4)",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition", "content": {"text/plain": {}}}},
)
async def metrics(request: Request, service: ServiceDep) -> Response:
    """Live state by kind/state/area, collector health, probes and SNMP facts, RTT histogram; per contract the
    open incidents by level, the month so far (online rate, points lost by item, score, projected share) and
    the 11:00 points at risk; the alert outbox; process and HTTP request metrics."""
    state = request.app.state
    live: LiveService | None = getattr(state, "live", None)
    metrics_state: MetricsState | None = getattr(state, "metrics_state", None)
    if metrics_state is None:
        metrics_state = state.metrics_state = MetricsState()
    outbox: OutboxProbe | None = getattr(state, "alert_outbox", None)
    http: CollectorRegistry | None = getattr(state, "http_metrics", None)
    body = await scrape(live, service, state=metrics_state, outbox=outbox, extra=(http,) if http else ())
    return Response(body, media_type=CONTENT_TYPE)
