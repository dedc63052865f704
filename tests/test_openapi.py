"""The API contract: the served OpenAPI document matches the committed one, and every route declares a permission."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from vigil.openapi import openapi_document

COMMITTED = Path(__file__).parent.parent / "docs" / "openapi.json"
PUBLIC_ROUTES = {"/api/v1/auth/token"}


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
    routes = [r for r in client.app.routes if isinstance(r, APIRoute) and r.path.startswith("/api/v1")]  # type: ignore[attr-defined]
    assert len(routes) > 20
    undeclared = [
        f"{sorted(r.methods)} {r.path}" for r in routes if r.path not in PUBLIC_ROUTES and not _declared_permissions(r)
    ]
    assert undeclared == []
