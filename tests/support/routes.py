"""Every API route as FastAPI's `APIRoute`, for the tests that walk them all (permissions, roles).

FastAPI keeps a router included in another router as one entry that points at it, not as its routes (the
detectors router joins one router per purpose), so a walk must follow those entries. The walk assumes no prefix on
such an inner inclusion; the OpenAPI test compares the walk with the served document, which catches one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from vigil.app import API_ROUTERS


def api_routes() -> list[APIRoute]:
    return [route for router in API_ROUTERS for route in _walk(router.routes)]


def _walk(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (inner := getattr(route, "original_router", None)) is not None:
            yield from _walk(inner.routes)
