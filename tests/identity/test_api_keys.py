"""API keys: made by tenant admins, shown once, stored hashed with a public prefix, scoped, expiring, revocable."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, Tenant, bearer, login
from vigil.config import Settings
from vigil.core.database import Database, bind_platform
from vigil.identity.models import ApiKey


def _create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["datasets:read"], **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_key_is_shown_once_and_works_in_both_headers(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    created = _create(client, tenant.admin, scopes=["datasets:read", "detect"])
    key = created["key"]
    assert key.startswith(created["prefix"] + "_")
    assert created["prefix"].startswith("vgl_")
    assert created["scopes"] == ["datasets:read", "detect"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert client.get("/api/v1/datasets", headers=headers).status_code == 200
    listed = client.get("/api/v1/api-keys", headers=tenant.admin).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    database = Database(settings)
    try:
        with database.session() as session:
            bind_platform(session)  # a raw look at the table: every tenant's rows (RLS on PostgreSQL)
            row = session.scalars(select(ApiKey)).one()
        assert row.key_hash != key
        assert key not in row.key_hash
        assert len(row.key_hash) == 64
    finally:
        database.dispose()


def test_scopes_bound_what_a_key_may_do(client: TestClient, tenant: Tenant) -> None:
    key = {"X-API-Key": _create(client, tenant.admin, scopes=["read-only"])["key"]}
    assert client.get("/api/v1/detectors", headers=key).status_code == 200
    assert client.get("/api/v1/jobs", headers=key).status_code == 200
    refused = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=key)
    assert refused.status_code == 403
    assert "this API key" in refused.json()["detail"]
    # Identity management and the user's own account (sessions, password) are never a key's business.
    for method, path in (("GET", "/api/v1/users"), ("GET", "/api/v1/auth/sessions"), ("GET", "/api/v1/api-keys")):
        assert client.request(method, path, headers=key).status_code == 403


def test_a_key_may_ask_who_it_is(client: TestClient, tenant: Tenant) -> None:
    """Finding 13: GET /me answers an API key — the key, the admin it acts for, and what it may do."""
    created = _create(client, tenant.admin, scopes=["datasets:read", "detect"])
    me = client.get("/api/v1/me", headers={"X-API-Key": created["key"]})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["api_key"] == {"id": created["id"], "name": "ci", "prefix": created["prefix"]}
    assert body["user"]["id"] == client.get("/api/v1/me", headers=tenant.admin).json()["user"]["id"]
    assert body["role"] == "admin"
    assert body["tenant"]["id"] == tenant.id
    assert set(body["permissions"]) == {"datasets:read", "detect", "whoami:read"}
    assert client.get("/api/v1/me", headers=tenant.viewer).json()["api_key"] is None


def test_a_key_cannot_exceed_its_creator_or_name_unknown_scopes(client: TestClient, tenant: Tenant) -> None:
    for scopes in (["users:manage"], ["tenants:manage"], ["me:read"], ["everything"], []):
        response = client.post("/api/v1/api-keys", json={"name": "x", "scopes": scopes}, headers=tenant.admin)
        assert response.status_code == 422, (scopes, response.text)
    assert (
        client.post("/api/v1/api-keys", json={"name": "x", "scopes": ["detect"]}, headers=tenant.analyst).status_code
        == 403
    )


def test_expired_and_revoked_keys_are_refused(client: TestClient, tenant: Tenant) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (
        client.post(
            "/api/v1/api-keys", json={"name": "x", "scopes": ["detect"], "expires_at": past}, headers=tenant.admin
        ).status_code
        == 422
    )
    expiry = datetime.now(UTC) + timedelta(seconds=3)  # far enough ahead for the creating request to be in time
    soon = _create(client, tenant.admin, expires_at=expiry.isoformat())
    live = _create(client, tenant.admin)
    assert client.get("/api/v1/datasets", headers={"X-API-Key": live["key"]}).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{live['id']}", headers=tenant.admin).status_code == 204
    assert client.get("/api/v1/datasets", headers={"X-API-Key": live["key"]}).status_code == 401
    assert client.delete(f"/api/v1/api-keys/{live['id']}", headers=tenant.admin).status_code == 404
    time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.2)
    assert client.get("/api/v1/datasets", headers={"X-API-Key": soon["key"]}).status_code == 401


def test_forged_keys_are_refused(client: TestClient, tenant: Tenant) -> None:
    real = _create(client, tenant.admin)["key"]
    prefix, secret = real.rsplit("_", 1)
    for forged in (f"{prefix}_{'A' * len(secret)}", "vgl_aaaaaaaaaaaa_" + "B" * 43, "vgl_", real + "x", real[:-1]):
        assert client.get("/api/v1/datasets", headers={"X-API-Key": forged}).status_code == 401, forged
    both = {"X-API-Key": real, "Authorization": "Bearer something-else"}
    assert client.get("/api/v1/datasets", headers=both).status_code == 401


def test_keys_are_tenant_scoped(client: TestClient, make_tenant: Any) -> None:
    a, b = make_tenant(), make_tenant()
    key = _create(client, a.admin)
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=b.admin).status_code == 404
    assert client.get("/api/v1/api-keys", headers=b.admin).json()["items"] == []
    # The key sees its own tenant's data only.
    uploaded = client.post(
        "/api/v1/datasets",
        params={"name": "b-data"},
        content=b"x\n1\n2\n",
        headers={**b.analyst, "Content-Type": "text/csv"},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert client.get(f"/api/v1/datasets/{uploaded.json()['id']}", headers={"X-API-Key": key["key"]}).status_code == 404


@pytest.mark.parametrize("field", ["name", "scopes"])
def test_create_is_strict(client: TestClient, tenant: Tenant, field: str) -> None:
    body: dict[str, Any] = {"name": "ci", "scopes": ["detect"], "unknown": True}
    assert client.post("/api/v1/api-keys", json=body, headers=tenant.admin).status_code == 422
    body = {"name": "ci", "scopes": ["detect"]}
    body.pop(field)
    assert client.post("/api/v1/api-keys", json=body, headers=tenant.admin).status_code == 422


def test_idempotency_is_per_key(client: TestClient, tenant: Tenant) -> None:
    one = {"X-API-Key": _create(client, tenant.admin, scopes=["detectors:write"])["key"]}
    two = {"Authorization": f"Bearer {_create(client, tenant.admin, scopes=['detectors:write'])['key']}"}
    body = {"name": "idem", "algorithm": "iforest"}
    first = client.post("/api/v1/detectors", json=body, headers={**one, "Idempotency-Key": "k1"})
    again = client.post("/api/v1/detectors", json=body, headers={**one, "Idempotency-Key": "k1"})
    other = client.post("/api/v1/detectors", json={**body, "name": "idem2"}, headers={**two, "Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert other.json()["id"] != first.json()["id"]  # another key's Idempotency-Key space


# --- finding 5: a key's authority is at most its creator's current role -----------------------------------------


def _second_admin(client: TestClient, tenant: Tenant) -> tuple[str, dict[str, str]]:
    email = f"admin2-{tenant.id}@vigil.test"
    created = client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "role": "admin"}, headers=tenant.admin
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], bearer(login(client, email, PASSWORD))


def test_a_key_stops_when_its_creator_is_disabled(client: TestClient, tenant: Tenant) -> None:
    creator_id, creator = _second_admin(client, tenant)
    key = {"X-API-Key": _create(client, creator, scopes=["datasets:read"])["key"]}
    assert client.get("/api/v1/datasets", headers=key).status_code == 200
    assert (
        client.patch(f"/api/v1/users/{creator_id}", json={"is_active": False}, headers=tenant.admin).status_code == 200
    )
    assert client.get("/api/v1/datasets", headers=key).status_code == 401
    # Authority follows the creator's current state: enabled again, the key works again.
    assert (
        client.patch(f"/api/v1/users/{creator_id}", json={"is_active": True}, headers=tenant.admin).status_code == 200
    )
    assert client.get("/api/v1/datasets", headers=key).status_code == 200


def test_a_key_is_revoked_when_its_creator_is_deleted(client: TestClient, tenant: Tenant) -> None:
    creator_id, creator = _second_admin(client, tenant)
    created = _create(client, creator, scopes=["datasets:read"])
    key = {"X-API-Key": created["key"]}
    assert client.delete(f"/api/v1/users/{creator_id}", headers=tenant.admin).status_code == 204
    assert client.get("/api/v1/datasets", headers=key).status_code == 401
    listed = {k["id"]: k for k in client.get("/api/v1/api-keys", headers=tenant.admin).json()["items"]}
    assert listed[created["id"]]["revoked_at"] is not None


def test_a_key_never_outranks_its_creators_current_role(client: TestClient, tenant: Tenant) -> None:
    creator_id, creator = _second_admin(client, tenant)
    key = {"X-API-Key": _create(client, creator, scopes=["detectors:write", "datasets:read"])["key"]}
    body = {"name": "by-key", "algorithm": "iforest"}
    assert client.post("/api/v1/detectors", json=body, headers=key).status_code == 201
    assert client.patch(f"/api/v1/users/{creator_id}", json={"role": "viewer"}, headers=tenant.admin).status_code == 200
    # A viewer cannot write detectors, so neither can the keys they made; what a viewer may do still works.
    assert client.post("/api/v1/detectors", json={**body, "name": "after"}, headers=key).status_code == 403
    assert client.get("/api/v1/datasets", headers=key).status_code == 200
