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

from vigil.core.bounds import json_cost
from vigil.core.errors import PayloadTooLarge, VigilError
from vigil.web.problems import problem_response

_IDENTITY_ENCODINGS = {b"", b"identity"}


@dataclass(frozen=True, slots=True)
class BodyLimitRule:
    """Requests whose method is `method` (any if None) and whose path matches `path` get `max_bytes`."""

    path: re.Pattern[str]
    max_bytes: int
    method: str | None = None
    # Upload routes stream the body to disk; every other route parses it whole in memory, so its parsed size counts.
    streamed: bool = False
    # Media types the route hands to a table reader (Parquet, Arrow) instead of parsing as JSON — the route refuses
    # any other label but JSON — so such a body's JSON cost means nothing: the reader charges what the file decodes
    # to, from its metadata. Estimating it anyway cost a 25 MB bulk detection 60 ms of the event loop.
    table_media: frozenset[str] = frozenset()
    # The byte limit of a body in `table_media` (its own, as it is not parsed as JSON); `max_bytes` if None.
    table_max_bytes: int | None = None

    def applies(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path.fullmatch(path) is not None

    def parses(self, media_type: str) -> bool:
        """Whether a body labelled `media_type` is parsed whole in memory (as JSON), so its parsed size counts."""
        return not self.streamed and media_type not in self.table_media


def _media_type(scope: Scope) -> str:
    """The Content-Type's media type as the route will read it: the first such header, as Starlette's `headers.get`
    takes it (a second header must not make the route parse what this middleware thought it would not)."""
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return str(value.split(b";")[0].strip().lower().decode("latin-1"))
    return ""


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


class ParsedTooLarge(VigilError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"The body would parse into more than {limit_bytes} bytes in memory (JSON of many tiny objects); "
            "send large data as a dataset (CSV, Parquet, Arrow).",
            limit_bytes=limit_bytes,
        )


class BodySizeLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default_max_bytes: int,
        rules: Sequence[BodyLimitRule] = (),
        max_parsed_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes
        self.rules = tuple(rules)
        self.max_parsed_bytes = max_parsed_bytes

    def limit_for(self, method: str, path: str, media_type: str = "") -> tuple[int, bool]:
        """The route's byte limit, and whether its body is parsed in memory (so what it parses into counts)."""
        for rule in self.rules:
            if rule.applies(method, path):
                if media_type in rule.table_media and rule.table_max_bytes is not None:
                    return rule.table_max_bytes, False
                return rule.max_bytes, rule.parses(media_type)
        return self.default_max_bytes, True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding not in _IDENTITY_ENCODINGS:
            await _refuse(UnsupportedContentEncoding(encoding.decode("latin-1")[:40]), scope, receive, send)
            return
        limit, parsed = self.limit_for(scope["method"], scope["path"], _media_type(scope))
        budget = self.max_parsed_bytes if parsed else None
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(PayloadTooLarge(limit), scope, receive, send)
            return
        received = 0
        cost = 0  # what the body parses into, estimated as it arrives (a JSON bomb of tiny objects is refused)
        exceeded: VigilError | None = None
        started = False

        async def counting_receive() -> Message:
            nonlocal received, cost, exceeded
            if exceeded is not None:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if budget is not None:
                    cost += json_cost(chunk)
                if received > limit:
                    exceeded = PayloadTooLarge(limit)
                elif budget is not None and cost > budget:
                    exceeded = ParsedTooLarge(budget)
                if exceeded is not None:
                    # Tell the endpoint the client went away: whatever it was reading stops here, and whatever it
                    # answers is dropped in favour of the 413 below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded is not None and not started:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if exceeded is None or started:
                raise
        if exceeded is not None and not started:
            await _refuse(exceeded, scope, receive, send)


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
