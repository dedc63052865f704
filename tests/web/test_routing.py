"""`IndexedRouter`: a router refuses a path none of its routes can match without trying them, and never refuses one
they can (every API route is still reached, with FastAPI's own 404, 405 and slash redirects around it)."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support.routes import api_routes
from vigil.app import API_PREFIX
from vigil.web.routing import IndexedRouter, first_segments


def test_every_api_route_is_still_reached(client: TestClient) -> None:
    """Without credentials every API route answers its own refusal (401, or 422 for a public route's missing
    body), never a 404 or 405 for want of a route: a route the index left out would be one."""
    reached = 0
    for route in api_routes():
        path = API_PREFIX + re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(route.methods):
            response = client.request(method, path, headers={"Content-Type": "application/json"})
            assert response.status_code not in (404, 405), (method, path, response.text)
            reached += 1
    assert reached > 50


def make_app() -> FastAPI:
    app = FastAPI()
    widgets, anything = IndexedRouter(prefix="/widgets"), IndexedRouter()

    @widgets.get("")
    def list_widgets() -> str:
        return "widgets"

    @widgets.get("/{widget_id}/parts")
    def parts(widget_id: str) -> str:
        return f"parts of {widget_id}"

    @anything.get("/{name}")
    def named(name: str) -> str:
        return f"named {name}"

    for router in (widgets, anything):
        app.include_router(router, prefix="/api")
    return app


def test_answers_are_fastapi_s_own() -> None:
    app = make_app()
    with TestClient(app) as client:
        assert client.get("/api/widgets").json() == "widgets"
        assert client.get("/api/widgets/7/parts").json() == "parts of 7"
        assert client.get("/api/gadgets").json() == "named gadgets"  # the parameter router keeps no index
        assert client.post("/api/widgets").status_code == 405  # a path of the router, another method
        assert client.get("/api/widgets/7/bolts").status_code == 404
        redirect = client.get("/api/widgets/", follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"].endswith("/api/widgets")


def test_an_index_is_the_routes_first_segments() -> None:
    app = make_app()
    widgets, anything = (route.original_router for route in app.router.routes[-2:])  # type: ignore[attr-defined]
    assert first_segments(widgets.routes) == frozenset({"widgets"})
    assert first_segments(anything.routes) is None  # `/{name}` could be any path
    assert first_segments([]) is None
