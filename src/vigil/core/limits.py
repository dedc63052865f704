"""Request body size limit: enforced on the declared length and again on the bytes actually received."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.errors import PayloadTooLarge
from vigil.core.problems import problem_response


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = PayloadTooLarge(self.max_bytes)
            response = problem_response(
                status=error.status,
                slug=error.slug,
                title=error.title,
                detail=error.detail,
                instance=scope["path"],
                headers={"Connection": "close"},
                **error.extra,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the endpoint's body read, so the problem handlers turn it into a 413.
                    raise PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
