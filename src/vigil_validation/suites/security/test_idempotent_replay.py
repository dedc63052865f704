"""An `Idempotency-Key` replays a stored answer only to a caller who may still make the request, and never a
secret: a logged-out token, a disabled user and a revoked API key are refused as they would be without the key,
and a retried `POST /api-keys` says a key was made without handing its secret out again."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, eventually
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, bearer, login_pair, new_user, record_attack

DETECTOR = {"name": "replayed", "algorithm": "iforest"}


def _create(anonymous: VigilClient, headers: dict[str, str], key: str) -> httpx.Response:
    return anonymous.send(
        "POST", f"{API}/detectors", json=DETECTOR, headers={**headers, "Idempotency-Key": key}, authenticated=False
    )


@pytest.mark.smoke
def test_no_replay_to_a_credential_that_lost_its_authority(
    tenant: ProvisionedTenant,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    record: Recorder,
    staleness_bound: float,
) -> None:
    # Each loss of authority holds on every API process within the target's staleness bound.
    def refused(request: Callable[[], httpx.Response]) -> httpx.Response:
        return eventually(request, lambda r: r.status_code == 401, within_s=staleness_bound)

    password = validation_config.security.password
    key = f"replay-{uuid.uuid4().hex}"

    pair = login_pair(anonymous, tenant.emails["analyst"], password)
    assert _create(anonymous, bearer(pair["access_token"]), key).status_code == 201
    anonymous.send("POST", f"{API}/auth/logout", headers=bearer(pair["access_token"]), authenticated=False)
    after_logout = refused(lambda: _create(anonymous, bearer(pair["access_token"]), key))
    assert_problem(after_logout, 401)
    record_attack(record, "idempotent-replay", "after-logout", after_logout)

    email = new_user(tenant.admin, tenant.id, password)
    access = login_pair(anonymous, email, password)["access_token"]
    assert _create(anonymous, bearer(access), key).status_code == 201
    user_id = anonymous.send("GET", f"{API}/me", headers=bearer(access), authenticated=False).json()["user"]["id"]
    tenant.admin.send("PATCH", f"{API}/users/{user_id}", json={"is_active": False}).raise_for_status()
    after_disable = refused(lambda: _create(anonymous, bearer(access), key))
    assert_problem(after_disable, 401)
    record_attack(record, "idempotent-replay", "after-user-disabled", after_disable)

    created = tenant.admin.send("POST", f"{API}/api-keys", json={"name": "replay", "scopes": ["detectors:write"]})
    assert created.status_code == 201, created.text
    machine = {"X-API-Key": created.json()["key"]}
    assert _create(anonymous, machine, key).status_code == 201
    tenant.admin.send("DELETE", f"{API}/api-keys/{created.json()['id']}").raise_for_status()
    after_revoke = refused(lambda: _create(anonymous, machine, key))
    assert_problem(after_revoke, 401)
    record_attack(record, "idempotent-replay", "after-key-revoked", after_revoke)


def test_a_retried_api_key_creation_does_not_hand_the_secret_out_again(
    tenant: ProvisionedTenant, record: Recorder
) -> None:
    headers = {"Idempotency-Key": f"secret-{uuid.uuid4().hex}"}
    body = {"name": "shown-once", "scopes": ["read-only"]}
    first = tenant.admin.send("POST", f"{API}/api-keys", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = tenant.admin.send("POST", f"{API}/api-keys", json=body, headers=headers)
    problem = assert_problem(again, 409, "secret-not-replayed")
    assert problem["resource_id"] == first.json()["id"]
    assert first.json()["key"] not in again.text
    record_attack(record, "idempotent-replay", "api-key-secret", again)
    listed = tenant.admin.send("GET", f"{API}/api-keys").json()["items"]
    assert [k["id"] for k in listed if k["name"] == "shown-once"] == [first.json()["id"]]
