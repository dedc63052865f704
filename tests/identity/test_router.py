"""Identity through the API: logging in, the caller, tenants and users, and the roles' limits."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Tenant, bearer, login


def test_login_and_me(client: TestClient) -> None:
    token = client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 900
    me = client.get("/api/v1/me", headers=bearer(token["access_token"])).json()
    assert me["user"]["email"] == ADMIN_EMAIL
    assert me["role"] == "superadmin"
    assert "tenants:manage" in me["permissions"]


def test_login_accepts_the_oauth2_password_form(client: TestClient) -> None:
    response = client.post("/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 200


def test_wrong_password_and_unknown_email_look_the_same(client: TestClient) -> None:
    wrong = client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": "not the password at all"})
    unknown = client.post("/api/v1/auth/token", json={"email": "ghost@example.com", "password": "whatever it is here"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_roles_get_their_permissions(client: TestClient, tenant: Tenant) -> None:
    viewer = client.get("/api/v1/me", headers=tenant.viewer).json()
    assert "datasets:read" in viewer["permissions"]
    assert "datasets:write" not in viewer["permissions"]
    assert (
        client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=tenant.viewer).status_code
        == 403
    )
    assert client.get("/api/v1/users", headers=tenant.analyst).status_code == 403
    assert client.get("/api/v1/tenants", headers=tenant.admin).status_code == 403


def test_tenant_admin_manages_users_of_their_tenant_only(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    created = client.post(
        "/api/v1/users",
        json={"email": "new-analyst@example.com", "password": PASSWORD, "role": "analyst"},
        headers=a.admin,
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["tenant_id"] == a.id
    assert login(client, "new-analyst@example.com", PASSWORD)
    # Another tenant's admin sees nothing of it, and cannot place users in other tenants.
    assert client.get(f"/api/v1/users/{user['id']}", headers=b.admin).status_code == 404
    assert client.delete(f"/api/v1/users/{user['id']}", headers=b.admin).status_code == 404
    sneaky = client.post(
        "/api/v1/users",
        json={"email": "sneaky@example.com", "password": PASSWORD, "role": "admin", "tenant_id": a.id},
        headers=b.admin,
    )
    assert sneaky.status_code == 403
    listed = [u["email"] for u in client.get("/api/v1/users", headers=b.admin).json()["items"]]
    assert "new-analyst@example.com" not in listed


def test_password_policy_and_duplicate_email(client: TestClient, tenant: Tenant) -> None:
    short = client.post("/api/v1/users", json={"email": "s@example.com", "password": "short"}, headers=tenant.admin)
    assert short.status_code == 422
    assert "at least 15 characters" in short.json()["errors"][0]["msg"]
    common = client.post(
        "/api/v1/users", json={"email": "c@example.com", "password": "passwordpassword"}, headers=tenant.admin
    )
    assert "commonly used" in common.json()["errors"][0]["msg"]
    first = client.post("/api/v1/users", json={"email": "dup@example.com", "password": PASSWORD}, headers=tenant.admin)
    again = client.post("/api/v1/users", json={"email": "DUP@example.com", "password": PASSWORD}, headers=tenant.admin)
    assert (first.status_code, again.status_code) == (201, 409)


def test_disabled_user_and_suspended_tenant_lose_access(client: TestClient, tenant: Tenant) -> None:
    me = client.get("/api/v1/me", headers=tenant.analyst).json()
    assert (
        client.patch(f"/api/v1/users/{me['user']['id']}", json={"is_active": False}, headers=tenant.admin).status_code
        == 200
    )
    assert client.get("/api/v1/me", headers=tenant.analyst).status_code == 401
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    assert client.patch(f"/api/v1/tenants/{tenant.id}", json={"status": "suspended"}, headers=root).status_code == 200
    assert client.get("/api/v1/me", headers=tenant.admin).status_code == 401


def test_deleting_a_tenant_removes_its_users(client: TestClient, tenant: Tenant) -> None:
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    assert client.delete(f"/api/v1/tenants/{tenant.id}", headers=root).status_code == 204
    assert client.get(f"/api/v1/tenants/{tenant.id}", headers=root).status_code == 404
    assert client.get("/api/v1/me", headers=tenant.admin).status_code == 401


def test_unknown_fields_are_rejected(client: TestClient) -> None:
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    assert client.post("/api/v1/tenants", json={"name": "t", "is_platform": True}, headers=root).status_code == 422
