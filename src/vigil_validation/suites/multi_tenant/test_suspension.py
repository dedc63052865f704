"""A suspended tenant is locked out — every token and API key, at once on the API process that suspended it and on
every other within the target's staleness bound — and nobody else is; resuming lets it in."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, eventually
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant


def test_suspended_tenant_is_locked_out(
    admin: VigilClient,
    tenant_factory: Callable[[], ProvisionedTenant],
    validation_config: ValidationConfig,
    staleness_bound: float,
) -> None:
    a, b = tenant_factory(), tenant_factory()
    key = a.admin.call("POST", "/api/v1/api-keys", json={"name": "k", "scopes": ["datasets:read"]})["key"]
    with a.admin.with_token(key) as machine:
        _locked_out_and_back(admin, a, b, machine, validation_config.security.password, staleness_bound)


def _locked_out_and_back(
    admin: VigilClient,
    a: ProvisionedTenant,
    b: ProvisionedTenant,
    machine: VigilClient,
    password: str,
    staleness_bound: float,
) -> None:
    def datasets(client: VigilClient, status: int) -> httpx.Response:
        return eventually(
            lambda: client.send("GET", "/api/v1/datasets"), lambda r: r.status_code == status, within_s=staleness_bound
        )

    assert machine.send("GET", "/api/v1/datasets").status_code == 200
    admin.call("POST", f"/api/v1/tenants/{a.id}/suspend")
    for client in (a.admin, a.analyst, a.viewer, machine):
        assert_problem(datasets(client, 401), 401, "unauthorized")
    login = a.admin.send(
        "POST", "/api/v1/auth/token", json={"email": a.emails["viewer"], "password": password}, authenticated=False
    )
    assert_problem(login, 401)  # the right password, but no new session for a suspended tenant
    assert b.viewer.send("GET", "/api/v1/datasets").status_code == 200
    admin.call("POST", f"/api/v1/tenants/{a.id}/resume")
    assert datasets(a.viewer, 200).status_code == 200
    assert datasets(machine, 200).status_code == 200
