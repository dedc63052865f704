"""`blocking`: a route whose body must block (a database read) costs one hop to a worker thread, not two.

FastAPI runs a plain `def` endpoint in the thread pool, and then validates its answer in the pool again: a second
hop, ~110 us of a ~1 ms list request, that buys nothing (validation holds the interpreter lock wherever it runs).
Decorated, the endpoint is an `async def` to FastAPI that runs the body in one worker thread and validates on the
event loop. For reads whose answers are bounded (a page is at most 500 items), so validation never holds the loop
for long.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import anyio

P = ParamSpec("P")
T = TypeVar("T")


def blocking(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """The endpoint as a coroutine function FastAPI reads as the original: `functools.wraps` keeps its name, docs
    and signature (FastAPI resolves the annotations in the original's module)."""

    @functools.wraps(endpoint)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs))

    return run
