"""A suspended tenant is locked out at once — every token and API key — and nobody else is; resuming lets it in."""

from __future__ import annotations

from collections.abc import Callable

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant


def test_suspended_tenant_is_locked_out(
    admin: VigilClient, tenant_factory: Callable[[], ProvisionedTenant], validation_config: ValidationConfig
) -> None:
    a, b = tenant_factory(), tenant_factory()
    key = a.admin.call("POST", "/api/v1/api-keys", json={"name": "k", "scopes": ["datasets:read"]})["key"]
    with a.admin.with_token(key) as machine:
        _locked_out_and_back(admin, a, b, machine, validation_config.security.password)


def _locked_out_and_back(
    admin: VigilClient, a: ProvisionedTenant, b: ProvisionedTenant, machine: VigilClient, password: str
) -> None:
    assert machine.send("GET", "/api/v1/datasets").status_code == 200
    admin.call("POST", f"/api/v1/tenants/{a.id}/suspend")
    for client in (a.admin, a.analyst, a.viewer, machine):
        assert_problem(client.send("GET", "/api/v1/datasets"), 401, "unauthorized")
    login = a.admin.send(
        "POST", "/api/v1/auth/token", json={"email": a.emails["viewer"], "password": password}, authenticated=False
    )
    assert_problem(login, 401)  # the right password, but no new session for a suspended tenant
    assert b.viewer.send("GET", "/api/v1/datasets").status_code == 200
    admin.call("POST", f"/api/v1/tenants/{a.id}/resume")
    assert a.viewer.send("GET", "/api/v1/datasets").status_code == 200
    assert machine.send("GET", "/api/v1/datasets").status_code == 200
