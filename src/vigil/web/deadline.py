"""Every request is answered within `request_timeout_s`: past it, a 503 problem with `Retry-After`.

Why: a database that stops answering (a partition, a blackhole) leaves the thread that asked it blocked, and no
timeout below us can cut it (a blocked driver call cannot be cancelled). Without a deadline the client hangs with
it, and retries pile up. With one, the client gets a prompt 503 it can act on; the blocked work goes on in the
background and, when the dependency returns, finishes — its transaction commits or rolls back as it would have,
so a retried write with the same `Idempotency-Key` gets the first result or runs once.

A response that has already started (a download, a stream) is never cut: the client is hearing from us."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.web.problems import problem_response

log = logging.getLogger("vigil.errors")
RETRY_AFTER_S = 5


class RequestDeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._late: set[asyncio.Task[None]] = set()  # requests answered with a 503 that are still running

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        given_up = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if given_up:
                return  # the client already has its 503
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if done or started:
            await task
            return
        given_up = True
        self._late.add(task)
        task.add_done_callback(self._finished_late)
        log.error(
            "request past its deadline of %gs: answered 503 (%s %s)", self.seconds, scope["method"], scope["path"]
        )
        response = problem_response(
            status=503,
            slug="service-unavailable",
            title="Service unavailable",
            detail=f"No answer within {self.seconds:g}s: a dependency is slow or unreachable. Retry shortly; "
            "a write retried with the same Idempotency-Key is never applied twice.",
            instance=scope.get("path"),
            headers={"Retry-After": str(RETRY_AFTER_S)},
            timeout_s=self.seconds,
        )
        await response(scope, receive, send)

    def _finished_late(self, task: asyncio.Task[None]) -> None:
        self._late.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a request answered 503 at its deadline failed later: %r", task.exception())
