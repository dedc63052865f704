"""The API contract: the served OpenAPI document matches the committed one, and every route declares a permission."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.support.routes import api_routes
from vigil.app import API_PREFIX
from vigil.openapi import openapi_document

COMMITTED = Path(__file__).parent.parent / "docs" / "openapi.json"
PUBLIC_ROUTES = {"/api/v1/auth/token", "/api/v1/auth/refresh"}


def test_served_spec_matches_the_committed_document(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, (
        "The API changed: review the change, then run `make openapi` and commit docs/openapi.json"
    )
    assert openapi_document() == committed


def _declared_permissions(route: APIRoute) -> set[str]:
    found = set()
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        permission = getattr(dependant.call, "required_permission", None)
        if permission is not None:
            found.add(str(permission))
        stack.extend(dependant.dependencies)
    return found


def test_every_api_route_declares_its_permission(client: TestClient) -> None:
    routes = api_routes()
    assert len(routes) > 20
    undeclared = [
        f"{sorted(r.methods)} {r.path}"
        for r in routes
        if API_PREFIX + r.path not in PUBLIC_ROUTES and not _declared_permissions(r)
    ]
    assert undeclared == []
    # …and those are all the API's routes: the served document has no operation the walk above missed.
    served = {path for path in client.get("/openapi.json").json()["paths"] if path.startswith(API_PREFIX)}
    assert served == {API_PREFIX + r.path for r in routes}
