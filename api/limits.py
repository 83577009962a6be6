"""Request body limits (SPEC R10: every request body has a configured size limit), as pure ASGI middleware.

A body is refused with 413 (a problem response naming ``request body``) *before* it is read whole: at once when
its ``Content-Length`` is over the limit, otherwise as soon as the bytes received so far pass it (chunked bodies
have no ``Content-Length``). The receive channel of the app is wrapped: reading past the limit raises
:class:`~api.errors.BodyTooLarge`, which the app's handlers (or this middleware, if it gets here) answer with
413 while no response has started. Evidence uploads (``POST .../evidence``) have their own, larger limit.

    app.add_middleware(BodyLimit, default=settings.max_body_bytes, evidence=settings.max_evidence_bytes)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, problem


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

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, str(BodyTooLarge(limit).detail), "request body")
        response.headers["Connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
