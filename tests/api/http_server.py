"""The real app served by uvicorn on 127.0.0.1 (an ephemeral port) in a thread of its own, for tests over HTTP.

The server thread runs its own event loop: it opens the database (upgraded), a :class:`Service` on a settable
:class:`Clock`, imports the small inventory, creates a token per role and serves ``create_app(settings,
service=...)``. Tests talk to it with a synchronous ``httpx.Client`` (real sockets, real HTTP/1.1, chunked
bodies, Content-Length) and run coroutines on the server's loop with :meth:`HttpServer.run` (to count what is
stored).

    with serve_http(database_url, Settings(data_dir=tmp_path)) as server:
        r = server.client.post("/api/v1/events", content=..., headers=server.auth("admin"))
        assert server.run(server.service.repo.load_events()) == []
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from api.app import create_app
from monitor.inventory_io import load_inventory
from monitor.service import Service
from monitor.settings import Settings
from monitor.storage import Database

SMALL = Path(__file__).parents[1] / "data" / "inventory" / "small.csv"
CST = timezone(timedelta(hours=8))
ROLES = ("viewer", "collector", "operator", "assessor", "admin")

T = TypeVar("T")


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 20, 9, 0, tzinfo=CST))

    def __call__(self) -> datetime:
        return self.now


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:  # the test process keeps its signal handlers
        yield


@dataclass
class HttpServer:
    client: httpx.Client
    base_url: str
    service: Service
    tokens: dict[str, str]
    clock: Clock
    loop: asyncio.AbstractEventLoop

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stored_events(self) -> int:
        return len(self.run(self.service.repo.load_events()))


@contextlib.contextmanager
def serve_http(database_url: str, settings: Settings) -> Iterator[HttpServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    clock = Clock()
    state: dict[str, Any] = {}

    async def main() -> None:
        db = Database(database_url)
        await db.connect()
        try:
            await db.upgrade()
            service = Service(db, clock=clock)
            await service.import_inventory(load_inventory(SMALL))
            state["tokens"] = {role: await service.repo.create_token(f"{role}-1", role) for role in ROLES}
            state["service"] = service
            app = create_app(settings, service=service)
            server = _Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on"))
            state["server"] = server
            serving = asyncio.ensure_future(server.serve(sockets=[sock]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            ready.set()
            await serving
        except BaseException as exc:
            state["error"] = exc
            raise
        finally:
            ready.set()
            await db.close()

    def thread_main() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(BaseException):
            loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=thread_main, name="slawatch-http-test", daemon=True)
    thread.start()
    try:
        if not ready.wait(60) or "error" in state:
            raise RuntimeError(f"the test server did not start: {state.get('error')!r}")
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url, timeout=60) as client:
            yield HttpServer(client, base_url, state["service"], state["tokens"], clock, loop)
    finally:
        server = state.get("server")
        if server is not None:
            loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(60)
        sock.close()
