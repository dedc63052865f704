"""The audit log: who did what, when, from where — for logins, key and role changes, deletions; read by tenant
admins only, their own tenant's only, cursor-paginated."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Tenant


def _events(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, object]]:
    response = client.get("/api/v1/audit-events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_changes_are_recorded_with_who_and_where(client: TestClient, tenant: Tenant) -> None:
    key = client.post("/api/v1/api-keys", json={"name": "ci", "scopes": ["detect"]}, headers=tenant.admin).json()
    client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.admin)
    user = client.post(
        "/api/v1/users", json={"email": "audited@example.com", "password": PASSWORD}, headers=tenant.admin
    ).json()
    client.patch(f"/api/v1/users/{user['id']}", json={"role": "viewer"}, headers=tenant.admin)
    client.delete(f"/api/v1/users/{user['id']}", headers=tenant.admin)

    events = _events(client, tenant.admin)
    actions = [e["action"] for e in events]
    assert actions[:6] == [
        "user.delete",
        "user.role_change",
        "user.create",
        "api_key.revoke",
        "api_key.create",
        "auth.login",
    ]
    me = client.get("/api/v1/me", headers=tenant.admin).json()
    role_change = events[1]
    assert role_change["actor_id"] == me["user"]["id"]
    assert role_change["target_id"] == user["id"]
    assert role_change["details"] == {"email": "audited@example.com", "old_role": "analyst", "new_role": "viewer"}
    assert role_change["ip"] == "testclient"
    assert all(e["created_at"] for e in events)
    assert "key" not in str(events[3]["details"]).replace("prefix", "")  # the secret never reaches the log


def test_only_admins_read_and_only_their_tenant(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    client.post("/api/v1/api-keys", json={"name": "a-key", "scopes": ["detect"]}, headers=a.admin)
    assert client.get("/api/v1/audit-events", headers=a.analyst).status_code == 403
    assert client.get("/api/v1/audit-events", headers=a.viewer).status_code == 403
    assert "api_key.create" not in [e["action"] for e in _events(client, b.admin)]
    assert "api_key.create" in [e["action"] for e in _events(client, a.admin)]


def test_paginated_and_filtered(client: TestClient, tenant: Tenant) -> None:
    for n in range(3):
        client.post("/api/v1/api-keys", json={"name": f"k{n}", "scopes": ["detect"]}, headers=tenant.admin)
    first = client.get("/api/v1/audit-events", params={"limit": 2, "action": "api_key.create"}, headers=tenant.admin)
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = client.get(
        "/api/v1/audit-events",
        params={"limit": 2, "action": "api_key.create", "cursor": page["next_cursor"]},
        headers=tenant.admin,
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    bad = client.get("/api/v1/audit-events", params={"action": "x'; DROP TABLE users; --"}, headers=tenant.admin)
    assert bad.status_code == 422
