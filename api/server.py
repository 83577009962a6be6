"""``slawatch run``: the live polling loop and the REST API in one process, over one service.

This module sits above both :mod:`monitor.live` (the loop) and :mod:`api.app` (the application): the loop
never imports the API, and the API's routers only read the loop they are handed (``app.state.live``).
:func:`run_live` opens the database (upgraded) and the service, runs the loop and uvicorn in one event
loop until SIGINT or SIGTERM (or ``stop`` is set), and stops both cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator, Mapping
from typing import Any

from collectors.probers import Prober
from monitor.errors import SlawatchError
from monitor.heap import Heap
from monitor.live import LiveService, LiveSettings
from monitor.runtime import open_service
from monitor.service import Service
from monitor.settings import Settings

__all__ = ["run_live"]

log = logging.getLogger("slawatch.live")


class _NoSignals:
    """Mixin for uvicorn's Server: leave SIGINT/SIGTERM to :func:`run_live`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _api_server(settings: Settings, service: Service, runner: LiveService) -> Any | None:
    try:
        import uvicorn

        from api.app import create_app
    except ImportError as exc:
        log.warning("API not available, running without it", extra={"reason": str(exc)})
        return None

    class Server(_NoSignals, uvicorn.Server):
        pass

    app = create_app(settings, service=service)
    app.state.live = runner
    config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_config=None)
    return Server(config)


async def _serve(server: Any, settings: Settings) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise SlawatchError(
            f"the API could not start on {settings.api_host}:{settings.api_port} (address in use?)"
        ) from None


async def run_live(
    settings: Settings,
    live: LiveSettings,
    *,
    serve_api: bool = True,
    stop: asyncio.Event | None = None,
    probers: Mapping[str, Prober] | None = None,
) -> None:
    """``slawatch run``: database (upgraded), service, live loop and API in this event loop until SIGINT or
    SIGTERM (or ``stop`` is set). A clean stop marks every polled node unknown from then."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    installed: list[signal.Signals] = []
    async with open_service(settings) as service:
        try:
            runner = LiveService(service, live, probers=probers, heap=Heap())
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
                    pass
            server = _api_server(settings, service, runner) if serve_api else None
            tasks: list[asyncio.Task[Any]] = [asyncio.create_task(runner.run(stop), name="slawatch-live")]
            if server is not None:
                tasks.append(asyncio.create_task(_serve(server, settings), name="slawatch-api"))
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.set()
                if server is not None:
                    server.should_exit = True
                results = await asyncio.gather(*tasks, return_exceptions=True)
                stopping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopping
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    raise result
            if server is not None and not server.started and serve_api:
                log.warning("the API did not start", extra={"host": settings.api_host, "port": settings.api_port})
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
