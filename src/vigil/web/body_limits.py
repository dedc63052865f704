"""Request body limits, one per route, enforced before the body is read: on the declared length at once, and on the
bytes actually received for a chunked body (or one that lies about its length).

The limit is chosen by the route, never by the Content-Type the client declares: a JSON route parses its body
whole in memory whatever media type it is labelled with, so only the upload routes (which stream to disk) get the
large limit, and the credential routes a tiny one. Compressed bodies (`Content-Encoding`) are refused with 415:
nothing downstream would count the decompressed bytes, and a few KB of gzip can expand to gigabytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.errors import PayloadTooLarge, VigilError
from vigil.web.problems import problem_response

_IDENTITY_ENCODINGS = {b"", b"identity"}


@dataclass(frozen=True, slots=True)
class BodyLimitRule:
    """Requests whose method is `method` (any if None) and whose path matches `path` get `max_bytes`."""

    path: re.Pattern[str]
    max_bytes: int
    method: str | None = None

    def applies(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path.fullmatch(path) is not None


class UnsupportedContentEncoding(VigilError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"

    def __init__(self, encoding: str) -> None:
        super().__init__(
            f"Content-Encoding {encoding!r} is not accepted; send the body uncompressed "
            "(Parquet compresses its own data).",
            supported=["identity"],
        )


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, default_max_bytes: int, rules: Sequence[BodyLimitRule] = ()) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes
        self.rules = tuple(rules)

    def limit_for(self, method: str, path: str) -> int:
        for rule in self.rules:
            if rule.applies(method, path):
                return rule.max_bytes
        return self.default_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding not in _IDENTITY_ENCODINGS:
            await _refuse(UnsupportedContentEncoding(encoding.decode("latin-1")[:40]), scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(PayloadTooLarge(limit), scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Tell the endpoint the client went away: whatever it was reading stops here, and whatever it
                    # answers is dropped in favour of the 413 below.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _refuse(PayloadTooLarge(limit), scope, receive, send)


async def _refuse(error: VigilError, scope: Scope, receive: Receive, send: Send) -> None:
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
