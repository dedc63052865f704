"""`IndexedRouter`: a domain's router that says "not mine" to a path none of its routes can match, at the cost of a
set lookup instead of trying each route.

FastAPI (0.165) finds a request's route by asking each included router in turn, and each of those tries its routes
one by one (~3 us each, the matching bookkeeping included), twice over for the router that matches. A request for
a domain late in the order paid for every route of the domains before it (measured in process: matching
`GET /api/v1/detectors` ~48 us, `GET /api/v1/me` ~86 us, `GET /api/v1/jobs` ~139 us; `/health` ~7 us).

The index is a necessary condition only: every route's path, whatever prefix it is included under, ends in its own
path, so a request can match it only if the request's path holds the route's first segment. A router refuses at
once when the request's path holds none of its routes' first segments; otherwise FastAPI matches as always, so which
route answers, with which parameters, is FastAPI's decision alone. A router with a route whose first segment is a
parameter (it could match anything) keeps no index and always matches as FastAPI does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter
from starlette.routing import BaseRoute, Match
from starlette.types import Scope


class IndexedRouter(APIRouter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index: frozenset[str] | None = None
        self._indexed = False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not self._indexed:
            # Built at the first request: routes are added when the modules are imported and the app is made.
            self._index = first_segments(self.routes)
            self._indexed = True
        if self._index is not None and self._index.isdisjoint(scope["path"].split("/")):
            return Match.NONE, {}
        return super().matches(scope)


def first_segments(routes: Iterable[BaseRoute]) -> frozenset[str] | None:
    """The first path segment of every route under `routes`; None when one of them is a parameter (or there are
    no routes), so that no index can be kept."""
    firsts = {_first_segment(path) for path in _walk(routes)}
    if not firsts or None in firsts:
        return None
    return frozenset(s for s in firsts if s is not None)


def _first_segment(path: str) -> str | None:
    first = path.lstrip("/").split("/", 1)[0]
    return None if not first or "{" in first else first


def _walk(routes: Iterable[BaseRoute]) -> Iterator[str]:
    """The paths of the routes under `routes`, following routers included without their routes copied in (FastAPI
    keeps such an inclusion as one entry pointing at the included router), each with its inclusion's prefix."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from (prefix + path for path in _walk(inner.routes))
        else:
            path = getattr(route, "path", None)
            yield path if isinstance(path, str) else "{unknown}"
