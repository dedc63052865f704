"""API keys: shown once, never listed again, scoped (a key does only what its scopes say), revocable, expiring,
and confined to their tenant; forged keys are refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, eventually
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, bearer, login_pair, new_user, record_attack


def create_key(owner: VigilClient, **body: Any) -> dict[str, Any]:
    response = owner.send("POST", f"{API}/api-keys", json={"name": "validation", "scopes": ["read-only"], **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


KeyClient = Callable[[str], VigilClient]


@pytest.fixture
def key_client(client_factory: Callable[[], VigilClient]) -> KeyClient:
    """`key_client(key)`: a client that authenticates with an API key (closed with the session's clients)."""

    def make(key: str) -> VigilClient:
        client = client_factory()
        client.api_key = key
        return client

    return make


def test_a_key_is_shown_once_and_does_only_its_scopes(
    tenant: ProvisionedTenant, anonymous: VigilClient, key_client: KeyClient, record: Recorder
) -> None:
    created = create_key(tenant.admin, scopes=["datasets:read", "datasets:write"])
    assert created["key"].startswith(created["prefix"])
    listed = tenant.admin.send("GET", f"{API}/api-keys").json()["items"]
    assert all("key" not in k and created["key"] not in str(k) for k in listed)
    machine = key_client(created["key"])
    uploaded = machine.datasets.upload(b"a,b\n1,2\n3,4\n", name="by-key")
    assert uploaded["name"] == "by-key"
    for name, method, path, body in (
        ("key-beyond-scope-create-detector", "POST", f"{API}/detectors", {"name": "x", "algorithm": "iforest"}),
        ("key-manages-users", "GET", f"{API}/users", None),
        ("key-mints-keys", "POST", f"{API}/api-keys", {"name": "child", "scopes": ["read-only"]}),
        ("key-reads-audit-log", "GET", f"{API}/audit-events", None),
        ("key-manages-tenants", "GET", f"{API}/tenants", None),
    ):
        response = machine.send(method, path, json=body)
        assert_problem(response, 403)
        record_attack(record, "api-key", name, response)
    # Bearer works as well as X-API-Key.
    as_bearer = anonymous.send("GET", f"{API}/datasets", headers={"Authorization": f"Bearer {created['key']}"})
    assert as_bearer.status_code == 200


def test_creators_cannot_grant_more_than_they_have(tenant: ProvisionedTenant, record: Recorder) -> None:
    for name, client, scopes in (
        ("analyst-creates-key", tenant.analyst, ["detect"]),
        ("viewer-creates-key", tenant.viewer, ["read-only"]),
    ):
        response = client.send("POST", f"{API}/api-keys", json={"name": "x", "scopes": scopes})
        assert_problem(response, 403)
        record_attack(record, "api-key", name, response)
    for scope in ("users:manage", "tenants:manage", "*", "admin"):
        response = tenant.admin.send("POST", f"{API}/api-keys", json={"name": "x", "scopes": [scope]})
        assert_problem(response, 422)
        record_attack(record, "api-key", f"unknown-or-forbidden-scope-{scope}", response)


def test_revoked_expired_and_forged_keys_are_refused(
    tenant: ProvisionedTenant, key_client: KeyClient, record: Recorder, staleness_bound: float
) -> None:
    live = create_key(tenant.admin)
    short = create_key(tenant.admin, expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    assert key_client(live["key"]).send("GET", f"{API}/datasets").status_code == 200
    assert tenant.admin.send("DELETE", f"{API}/api-keys/{live['id']}").status_code == 204
    # Refused on every API process within the target's staleness bound (at once on the one that revoked it).
    revoked = eventually(
        lambda: key_client(live["key"]).send("GET", f"{API}/datasets"),
        lambda r: r.status_code == 401,
        within_s=staleness_bound,
    )
    assert_problem(revoked, 401)
    record_attack(record, "api-key", "revoked-key", revoked)
    prefix, secret = live["key"].rsplit("_", 1)
    for name, forged in (
        ("right-prefix-wrong-secret", f"{prefix}_{'A' * len(secret)}"),
        ("truncated-key", live["key"][:-4]),
        ("made-up-key", "vgl_aaaaaaaaaaaa_" + "B" * 43),
        ("sql-in-key", "vgl_' OR '1'='1"),
    ):
        response = key_client(forged).send("GET", f"{API}/datasets")
        assert_problem(response, 401)
        record_attack(record, "api-key", name, response)
    time.sleep(2.5)
    expired = key_client(short["key"]).send("GET", f"{API}/datasets")
    assert_problem(expired, 401)
    record_attack(record, "api-key", "expired-key", expired)


def test_a_key_is_confined_to_its_tenant(tenant_factory: Any, key_client: KeyClient, record: Recorder) -> None:
    owner, stranger = tenant_factory(), tenant_factory()
    secret = owner.analyst.datasets.upload(b"a\n1\n2\n", name="secret")
    key = create_key(stranger.admin)
    response = key_client(key["key"]).send("GET", f"{API}/datasets/{secret['id']}")
    assert_problem(response, 404)
    record_attack(record, "api-key", "read-another-tenants-dataset", response)
    revoke = owner.admin.send("DELETE", f"{API}/api-keys/{key['id']}")
    assert_problem(revoke, 404)
    record_attack(record, "api-key", "revoke-another-tenants-key", revoke)


def test_a_key_has_at_most_its_creators_current_authority(
    tenant: ProvisionedTenant,
    anonymous: VigilClient,
    key_client: KeyClient,
    validation_config: ValidationConfig,
    record: Recorder,
    staleness_bound: float,
) -> None:
    """A key acts for the admin who made it: their demotion narrows it, their disabling or deletion stops it
    (within the target's staleness bound on every API process)."""
    password = validation_config.security.password
    email = new_user(tenant.admin, tenant.id, password, role="admin")
    creator = bearer(login_pair(anonymous, email, password)["access_token"])
    creator_id = anonymous.send("GET", f"{API}/me", headers=creator, authenticated=False).json()["user"]["id"]
    made = anonymous.send(
        "POST",
        f"{API}/api-keys",
        json={"name": "creator-bound", "scopes": ["detectors:write", "datasets:read"]},
        headers=creator,
        authenticated=False,
    )
    assert made.status_code == 201, made.text
    machine = key_client(made.json()["key"])
    assert machine.send("GET", f"{API}/datasets").status_code == 200

    tenant.admin.send("PATCH", f"{API}/users/{creator_id}", json={"role": "viewer"}).raise_for_status()
    beyond = eventually(
        lambda: machine.send("POST", f"{API}/detectors", json={"name": "x", "algorithm": "iforest"}),
        lambda r: r.status_code == 403,
        within_s=staleness_bound,
    )
    assert_problem(beyond, 403)
    record_attack(record, "api-key", "beyond-demoted-creator", beyond)

    tenant.admin.send("PATCH", f"{API}/users/{creator_id}", json={"is_active": False}).raise_for_status()
    disabled = eventually(
        lambda: machine.send("GET", f"{API}/datasets"), lambda r: r.status_code == 401, within_s=staleness_bound
    )
    assert_problem(disabled, 401)
    record_attack(record, "api-key", "creator-disabled", disabled)

    tenant.admin.send("DELETE", f"{API}/users/{creator_id}").raise_for_status()
    deleted = eventually(
        lambda: machine.send("GET", f"{API}/datasets"), lambda r: r.status_code == 401, within_s=staleness_bound
    )
    assert_problem(deleted, 401)
    record_attack(record, "api-key", "creator-deleted", deleted)
