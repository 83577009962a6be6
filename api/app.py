"""The REST API application: ``create_app()`` builds it; nothing is created at import time.

Run with ``uvicorn --factory api.app:create_app``. Without an injected :class:`Service` the lifespan builds
the database (connect and upgrade) and the service from :class:`Settings`, as the CLI does, and closes them
on shutdown; an injected service belongs to the caller and is left open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.deps import authenticate
from api.docs import install_docs
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.routers import (
    alerts,
    audit,
    daily,
    events,
    evidence,
    health,
    incidents,
    inventory,
    maintenance,
    metrics,
    nodes,
    projection,
    queue,
    reports,
    tokens,
)
from api.routers.metrics import install_http_metrics
from monitor.heap import Heap
from monitor.runtime import open_service
from monitor.service import REBUILD_BEHIND_AFTER, Service
from monitor.settings import Settings

API_PREFIX = "/api/v1"
INVENTORY_CHECK_S = 5.0  # s: how stale the API's view of an inventory or contracts imported by another process may be


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """The application over ``service``, or over a database and service built from ``settings``.

    ``settings`` also bound what the API accepts (body sizes, clock skew, collectors' backdating); default:
    from the environment."""
    config = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            app.state.service = service
            yield
            return
        async with open_service(config) as opened:
            app.state.service = opened
            # A long history: the incident projection (open incidents, month-to-date metrics) is built in a
            # worker thread from the start, so no request waits for a 20 s replay at 100,000 channels.
            opened.rebuild_behind_after = REBUILD_BEHIND_AFTER
            settling: asyncio.Task[None] | None = None
            if await opened.repo.count_events() > REBUILD_BEHIND_AFTER:
                opened.build_projection_beside(store=False)  # read side: the ingesting process stores it

                heap = Heap()

                async def settle() -> None:  # the built projection out of the collector's walks (monitor.heap)
                    await opened.wait_projection()
                    heap.freeze()

                settling = asyncio.create_task(settle(), name="slawatch-heap")
            # Whether another process imported an inventory is asked at most this often (summing over every
            # node row costs 50 ms at 100,000 nodes: not once per request).
            opened.inventory_check_s = max(opened.inventory_check_s, INVENTORY_CHECK_S)
            # The contracts likewise: every contract route asks for them (a read transaction per request).
            opened.contracts_check_s = max(opened.contracts_check_s, INVENTORY_CHECK_S)
            try:
                yield
            finally:
                if settling is not None:
                    settling.cancel()
                    heap.release()
                await opened.stop_projection_build()
                app.state.service = None

    app = FastAPI(
        title="slawatch",
        summary="SLA monitor for leased data circuits",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from local assets by install_docs: no CDN
        redoc_url=None,
    )
    app.state.settings = config
    install_error_handlers(app)
    install_docs(app)
    # Every request body has a limit (SPEC R10), enforced before the body is read whole.
    app.add_middleware(BodyLimit, default=config.max_body_bytes, evidence=config.max_evidence_bytes)
    install_http_metrics(app)  # process and HTTP request metrics on the app's own registry
    app.include_router(health.router)
    app.include_router(metrics.router)  # no token: bound where the API is (127.0.0.1 by default)
    app.include_router(alerts.router)  # the one-tap ack page: its signed link is the credential
    authenticated = [Depends(authenticate)]
    for router in (events.router, reports.router, incidents.router, nodes.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=authenticated)
    app.include_router(maintenance.router, prefix=API_PREFIX, dependencies=authenticated)
    app.include_router(evidence.router, prefix=API_PREFIX, dependencies=authenticated)
    for router in (queue.router, audit.router, tokens.router, daily.router, inventory.router, projection.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=authenticated)
    return app
