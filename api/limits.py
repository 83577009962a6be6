"""Request body limits (SPEC R10: every request body has a configured size limit), as pure ASGI middleware.

A body is refused with 413 (a problem response naming ``request body``) *before* it is read whole: at once when
its ``Content-Length`` is over the limit, otherwise as soon as the bytes received so far pass it (chunked bodies
have no ``Content-Length``). The receive channel of the app is wrapped: reading past the limit raises
:class:`~api.errors.BodyTooLarge`, which the app's handlers (or this middleware, if it gets here) answer with
413 while no response has started. Evidence uploads (``POST .../evidence``) have their own, larger limit.

Before the 413 is sent, what the client is still sending is read and thrown away, up to :data:`DRAIN_BYTES`
and while it keeps arriving (:data:`DRAIN_IDLE_S`): closing a socket with unread bytes in it makes the kernel
send a reset instead of the response's end, and a client still writing its body then sees "connection reset"
rather than the 413 (nginx's lingering close does the same). Nothing drained is kept.

    app.add_middleware(BodyLimit, default=settings.max_body_bytes, evidence=settings.max_evidence_bytes)
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, problem

DRAIN_BYTES = 4 * 1024 * 1024
"""At most this many bytes (B) of a refused body are read and dropped before the 413 is sent."""
DRAIN_IDLE_S = 0.25
"""Draining stops when nothing more has arrived for this long (s): a client that waits for the answer gets it."""
DRAIN_TOTAL_S = 2.0
"""Draining stops after this long (s) whatever arrives: a slow sender cannot hold the refusal back."""


async def drain(receive: Receive) -> int:
    """Read and drop the rest of a request body (bounded by the ``DRAIN_*`` limits); return the bytes dropped."""
    dropped = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TOTAL_S
    while dropped <= DRAIN_BYTES:
        try:
            async with asyncio.timeout(min(DRAIN_IDLE_S, max(0.0, deadline - loop.time()))):
                message = await receive()
        except TimeoutError:
            break
        if message["type"] != "http.request":
            break
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return dropped


class BodyLimit:
    """Refuse HTTP request bodies over ``default`` bytes (``evidence`` bytes for evidence uploads) with 413."""

    def __init__(self, app: ASGIApp, *, default: int, evidence: int) -> None:
        self.app = app
        self.default = default
        self.evidence = evidence

    def limit_for(self, scope: Scope) -> int:
        path: str = scope.get("path", "")
        if scope.get("method") == "POST" and path.rstrip("/").endswith("/evidence"):
            return self.evidence
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        for name, value in scope.get("headers", ()):
            declared = value.strip()
            if name == b"content-length" and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
                await self._refuse(limit, scope, receive, send)
                return

        received = 0
        overflowed = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if overflowed:  # the app's own handler answers the 413: drop what is still coming first
                    await drain(receive)
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        await drain(receive)
        response = problem(413, str(BodyTooLarge(limit).detail), "request body")
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
