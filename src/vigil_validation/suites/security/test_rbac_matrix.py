"""The RBAC matrix: every role (and scoped API keys) against every class of route, allowed or denied exactly as
the documented permission table says — and `GET /me` reports that same table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, eventually
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder

# The permission table as documented (docs/architecture.md, identity): what each role may do.
VIEWER = {
    "whoami:read",
    "me:read",
    "me:write",
    "datasets:read",
    "detectors:read",
    "jobs:read",
    "algorithms:read",
    "streams:read",
}
ANALYST = VIEWER | {"datasets:write", "detectors:write", "detect", "jobs:manage", "streams:write"}
ADMIN = ANALYST | {"users:read", "users:manage", "api-keys:manage", "audit:read", "tenant-settings:manage"}
SUPERADMIN = ADMIN | {"tenants:manage"}
TABLE = {"viewer": VIEWER, "analyst": ANALYST, "admin": ADMIN, "superadmin": SUPERADMIN}
KEY_IMPLICIT = {"whoami:read"}  # every API key may ask who it is (GET /me), whatever its scopes
NOTHING = "nothing_0000000000000000000000"  # an id nobody has: allowed calls get past authorization, then 404


@dataclass(frozen=True)
class RouteClass:
    name: str
    permission: str
    method: str
    path: str
    body: dict[str, object] | None = None


ROUTE_CLASSES = (
    RouteClass("read own profile", "whoami:read", "GET", "/me"),
    RouteClass("list own sessions", "me:read", "GET", "/auth/sessions"),
    RouteClass("change own password", "me:write", "POST", "/me/password", {}),
    RouteClass("end a session", "me:write", "DELETE", f"/auth/sessions/{NOTHING}"),
    RouteClass("list datasets", "datasets:read", "GET", "/datasets"),
    RouteClass("read a dataset", "datasets:read", "GET", f"/datasets/{NOTHING}"),
    RouteClass("rename a dataset", "datasets:write", "PATCH", f"/datasets/{NOTHING}", {"name": "x"}),
    RouteClass("delete a dataset", "datasets:write", "DELETE", f"/datasets/{NOTHING}"),
    RouteClass("list detectors", "detectors:read", "GET", "/detectors"),
    RouteClass("change a detector", "detectors:write", "PATCH", f"/detectors/{NOTHING}", {"name": "x"}),
    RouteClass("train a detector", "detectors:write", "POST", f"/detectors/{NOTHING}/train", {"dataset_id": NOTHING}),
    RouteClass("detect", "detect", "POST", f"/detectors/{NOTHING}/detect", {"records": [{"a": 1}]}),
    RouteClass("list jobs", "jobs:read", "GET", "/jobs"),
    RouteClass("cancel a job", "jobs:manage", "POST", f"/jobs/{NOTHING}/cancel"),
    RouteClass("read the catalog", "algorithms:read", "GET", "/algorithms"),
    RouteClass("list users", "users:read", "GET", "/users"),
    RouteClass("delete a user", "users:manage", "DELETE", f"/users/{NOTHING}"),
    RouteClass("list API keys", "api-keys:manage", "GET", "/api-keys"),
    RouteClass("revoke an API key", "api-keys:manage", "DELETE", f"/api-keys/{NOTHING}"),
    RouteClass("read the audit log", "audit:read", "GET", "/audit-events"),
    RouteClass("tenant security settings", "tenant-settings:manage", "GET", "/tenant/security"),
    RouteClass("list tenants", "tenants:manage", "GET", "/tenants"),
    RouteClass("delete a tenant", "tenants:manage", "DELETE", f"/tenants/{NOTHING}"),
)


def check_matrix(principals: dict[str, tuple[VigilClient, set[str]]]) -> tuple[int, int, list[str]]:
    allowed = denied = 0
    failures: list[str] = []
    for principal, (client, permissions) in principals.items():
        for route in ROUTE_CLASSES:
            response = client.send(route.method, API + route.path, json=route.body)
            may = route.permission in permissions
            ok = response.status_code not in (401, 403) if may else response.status_code == 403
            if not ok:
                failures.append(f"{principal} {route.name} ({route.method} {route.path}): {response.status_code}")
            elif not may:
                assert_problem(response, 403)
            allowed, denied = allowed + may, denied + (not may)
    return allowed, denied, failures


@pytest.mark.smoke
def test_roles_against_every_route_class(tenant: ProvisionedTenant, admin: VigilClient, record: Recorder) -> None:
    principals = {
        "viewer": (tenant.viewer, VIEWER),
        "analyst": (tenant.analyst, ANALYST),
        "admin": (tenant.admin, ADMIN),
        "superadmin": (admin, SUPERADMIN),
    }
    allowed, denied, failures = check_matrix(principals)
    record("rbac:role-route-checks", allowed + denied, "checks")
    record("rbac:denied-as-documented", denied, "checks")
    assert not failures, "\n".join(failures)


def test_scoped_api_keys_against_every_route_class(
    tenant: ProvisionedTenant, client_factory: Callable[[], VigilClient], record: Recorder
) -> None:
    principals: dict[str, tuple[VigilClient, set[str]]] = {}
    for name, scopes in (("key read-only", ["read-only"]), ("key detect", ["detect", "datasets:read"])):
        created = tenant.admin.send("POST", f"{API}/api-keys", json={"name": name, "scopes": scopes})
        assert created.status_code == 201, created.text
        client = client_factory()
        client.api_key = created.json()["key"]
        principals[name] = (client, set(created.json()["scopes"]) | KEY_IMPLICIT)
    allowed, denied, failures = check_matrix(principals)
    record("rbac:api-key-route-checks", allowed + denied, "checks")
    assert not failures, "\n".join(failures)


def test_me_reports_the_documented_table(tenant: ProvisionedTenant, admin: VigilClient) -> None:
    for role, client in (("viewer", tenant.viewer), ("analyst", tenant.analyst), ("admin", tenant.admin)):
        assert set(client.me()["permissions"]) == TABLE[role], role
    assert set(admin.me()["permissions"]) >= SUPERADMIN


def test_role_changes_apply_at_once(tenant: ProvisionedTenant, record: Recorder, staleness_bound: float) -> None:
    """A demoted admin loses admin rights with the token they already hold: on their very next request to the API
    process that made the change, on every other within the target's staleness bound."""
    me = tenant.analyst.me()
    promoted = tenant.admin.send("PATCH", f"{API}/users/{me['user']['id']}", json={"role": "admin"})
    assert promoted.status_code == 200

    def users() -> httpx.Response:
        return tenant.analyst.send("GET", f"{API}/users")

    assert eventually(users, lambda r: r.status_code == 200, within_s=staleness_bound).status_code == 200
    demoted = tenant.admin.send("PATCH", f"{API}/users/{me['user']['id']}", json={"role": "viewer"})
    assert demoted.status_code == 200
    response = eventually(users, lambda r: r.status_code == 403, within_s=staleness_bound)
    assert_problem(response, 403)
    record("attack:rbac:stale-role-in-token", response.status_code, "HTTP status")
