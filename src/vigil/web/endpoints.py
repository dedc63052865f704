"""How a route whose body must block (a database read) runs: `blocking` costs one hop to a worker thread, not two;
`quick_read` none at all on SQLite.

FastAPI runs a plain `def` endpoint in the thread pool, and then validates its answer in the pool again: a second
hop, ~110 us of a ~1 ms list request, that buys nothing (validation holds the interpreter lock wherever it runs).
Decorated, the endpoint is an `async def` to FastAPI that runs the body in one worker thread and validates on the
event loop. For reads whose answers are bounded (a page is at most 500 items), so validation never holds the loop
for long.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import anyio
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from vigil.core.quick_reads import is_contention, quick_reads_for

P = ParamSpec("P")
T = TypeVar("T")
# The largest page built on the event loop. Building a page holds the interpreter lock wherever it runs, but in a
# worker thread the loop still gets it back every switch interval (1 ms); on the loop it waits for the whole page.
# Measured in process under load (load average 6-7): a page of 500 detectors took ~42 ms on the loop; 100 items hold
# it for a fifth of that, and the default page (50) for a tenth.
QUICK_PAGE_ROWS = 100


def blocking(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """The endpoint as a coroutine function FastAPI reads as the original: `functools.wraps` keeps its name, docs
    and signature (FastAPI resolves the annotations in the original's module)."""

    @functools.wraps(endpoint)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs))

    return run


def quick_read(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A read-only list endpoint with `session` (the request's) and `limit` parameters: on SQLite, for a page of at
    most `QUICK_PAGE_ROWS` items, its body runs on the event loop, on a session of the database's quick reads
    (`core/quick_reads.py`: read-only, never waits for a lock), so the request makes no hop to a worker thread at
    all. Measured: see docs/architecture.md, "Lists read on the event loop".

    If the read meets a lock, it is run again as `blocking` runs it, on the request's own session, in a worker thread
    (the body only reads, so running it twice changes nothing); so it is on PostgreSQL, whose reads go over the
    network, and for a larger page, whose building would hold the loop for longer than a hop costs."""
    parameters = inspect.signature(endpoint).parameters
    if "session" not in parameters or "limit" not in parameters:
        raise TypeError(f"{endpoint.__name__}: a quick read is given the parameters 'session' and 'limit'")
    in_thread = blocking(endpoint)

    @functools.wraps(endpoint)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        session, limit = kwargs["session"], kwargs["limit"]
        if (
            isinstance(session, Session)
            and isinstance(limit, int)
            and limit <= QUICK_PAGE_ROWS
            and (reads := quick_reads_for(session)) is not None
        ):
            with reads.session_like(session) as quick:
                try:
                    return endpoint(*args, **{**kwargs, "session": quick})  # type: ignore[arg-type]
                except OperationalError as exc:
                    if not is_contention(exc):
                        raise
        return await in_thread(*args, **kwargs)

    return run
