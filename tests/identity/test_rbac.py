"""RBAC from the permission table: every role against every API route — allowed exactly when the role's
permissions include the one the route declares (walked from the routes, so a new route is covered at once)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login
from tests.support.routes import api_routes
from vigil.app import API_PREFIX
from vigil.identity.permissions import ROLE_PERMISSIONS, Permission, Role


def _permission_of(route: APIRoute) -> Permission | None:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        permission = getattr(dependant.call, "required_permission", None)
        if permission is not None:
            return Permission(permission)
        stack.extend(dependant.dependencies)
    return None


def test_the_table_is_a_hierarchy() -> None:
    viewer, analyst, admin = (ROLE_PERMISSIONS[r] for r in (Role.VIEWER, Role.ANALYST, Role.ADMIN))
    assert viewer < analyst < admin < ROLE_PERMISSIONS[Role.SUPERADMIN]
    assert all(p.value.endswith(":read") or p in (Permission.ME_WRITE,) for p in viewer)
    assert Permission.TENANTS_MANAGE not in admin
    assert {Permission.USERS_MANAGE, Permission.API_KEYS_MANAGE, Permission.AUDIT_READ} <= admin - analyst


def test_every_role_against_every_route(client: TestClient, tenant: Tenant) -> None:
    headers = {
        Role.VIEWER: tenant.viewer,
        Role.ANALYST: tenant.analyst,
        Role.ADMIN: tenant.admin,
        Role.SUPERADMIN: bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD)),
    }
    routes = api_routes()
    checked = 0
    for route in routes:
        permission = _permission_of(route)
        if permission is None:
            continue
        # An id nobody has: an allowed call gets past authorization and fails later (404/422), a denied one is 403.
        path = API_PREFIX + re.sub(r"\{[^}]+\}", "nothing_0000000000000000000000", route.path)
        for method in route.methods - {"HEAD"}:
            if (method, route.path) in {("POST", "/auth/logout"), ("POST", "/me/password")}:
                body: dict[str, object] | None = {"unknown": 1}  # keep the session: invalid, yet authorized
            else:
                body = {} if method in ("POST", "PUT", "PATCH") else None
            for role, role_headers in headers.items():
                if method == "POST" and route.path == "/auth/logout":
                    continue  # would end the session used by the rest of the walk; covered in test_tokens
                response = client.request(method, path, json=body, headers=role_headers)
                allowed = permission in ROLE_PERMISSIONS[role]
                assert response.status_code != 401, (role, method, path, response.text)
                assert (response.status_code == 403) == (not allowed), (
                    f"{role} {method} {path} (needs {permission}): {response.status_code} {response.text[:200]}"
                )
                checked += 1
    assert checked > 100


def test_me_lists_the_tables_permissions(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    tenant = make_tenant()
    for role, headers in ((Role.VIEWER, tenant.viewer), (Role.ANALYST, tenant.analyst), (Role.ADMIN, tenant.admin)):
        me = client.get("/api/v1/me", headers=headers).json()
        assert set(me["permissions"]) == {p.value for p in ROLE_PERMISSIONS[role]}
