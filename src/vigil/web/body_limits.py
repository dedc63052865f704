"""Request body size limits: enforced on the declared length and again on the bytes actually received.

JSON bodies are parsed whole in memory, so they get a smaller limit than file uploads, which stream to disk.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.errors import PayloadTooLarge
from vigil.web.problems import problem_response


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_json_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        is_json = headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"application/json"
        limit = self.max_json_bytes if is_json else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = PayloadTooLarge(limit)
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
                if received > limit:
                    # Raised inside the endpoint's body read, so the problem handlers turn it into a 413.
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)
