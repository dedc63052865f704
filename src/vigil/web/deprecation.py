"""Deprecating an operation: it keeps working, and every answer says since when it is deprecated (RFC 9745
`Deprecation`), after when it may go (RFC 8594 `Sunset`) and, when given, where its successor is documented (`Link`,
rel="deprecation"). The OpenAPI document marks it `deprecated` (web/contract.py documents the headers).

Use: `@router.get("/old", **Deprecation(since=…, sunset=…).route())`. The route's dependency marks the request
(route dependencies run before the endpoint's own, authentication included), and `DeprecationHeadersMiddleware`
adds the headers to whatever answer leaves — a success, a problem, a response the endpoint built itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATE_KEY = "vigil_deprecation"


@dataclass(frozen=True)
class Deprecation:
    since: datetime
    sunset: datetime
    link: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            # RFC 9745: a Structured Field Date, `@` and seconds since the epoch.
            "Deprecation": f"@{int(self.since.timestamp())}",
            # RFC 8594: an HTTP-date.
            "Sunset": format_datetime(self.sunset, usegmt=True),
        }
        if self.link:
            headers["Link"] = f'<{self.link}>; rel="deprecation"'
        return headers

    def route(self) -> dict[str, Any]:
        """Keyword arguments for a route decorator."""

        async def mark(request: Request) -> None:
            request.state.vigil_deprecation = self

        return {
            "deprecated": True,
            "dependencies": [Depends(mark)],
            "openapi_extra": {"x-sunset": self.sunset.isoformat()},
        }


class DeprecationHeadersMiddleware:
    """Adds a deprecated operation's headers to its answer, whatever produced it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def announcing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                deprecation = scope.get("state", {}).get(STATE_KEY)
                if isinstance(deprecation, Deprecation):
                    extra = [(k.lower().encode(), v.encode()) for k, v in deprecation.headers().items()]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, announcing_send)
