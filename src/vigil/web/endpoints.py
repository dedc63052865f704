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


def blocking(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """The endpoint as a coroutine function FastAPI reads as the original: `functools.wraps` keeps its name, docs
    and signature (FastAPI resolves the annotations in the original's module)."""

    @functools.wraps(endpoint)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs))

    return run


def quick_read(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A read-only endpoint with a `session` parameter (the request's): on SQLite its body runs on the event loop,
    on a session of the database's quick reads (`core/quick_reads.py`: read-only, never waits for a lock), so the
    request makes no hop to a worker thread at all. Measured: see docs/architecture.md, "Request overhead of a list".

    If the read meets a lock, it is run again as `blocking` runs it, on the request's own session, in a worker thread
    (the body only reads, so running it twice changes nothing); so it is on PostgreSQL, whose reads go over the
    network. A page is bounded (at most 500 items), so the body never holds the loop for long either."""
    if "session" not in inspect.signature(endpoint).parameters:
        raise TypeError(f"{endpoint.__name__}: a quick read is given its session as the parameter 'session'")
    in_thread = blocking(endpoint)

    @functools.wraps(endpoint)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        session = kwargs["session"]
        if isinstance(session, Session) and (reads := quick_reads_for(session)) is not None:
            with reads.session_like(session) as quick:
                try:
                    return endpoint(*args, **{**kwargs, "session": quick})  # type: ignore[arg-type]
                except OperationalError as exc:
                    if not is_contention(exc):
                        raise
        return await in_thread(*args, **kwargs)

    return run
