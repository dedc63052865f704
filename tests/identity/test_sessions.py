"""Sessions: several per user, listed and ended one by one; idle and absolute limits (a tenant may tighten them);
a password change or disabling the user ends all of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, Tenant, bearer
from tests.identity.conftest import app_client, new_user, tokens
from vigil.config import Settings
from vigil.core.database import Database, bind_platform
from vigil.identity.models import AuthSession, RefreshToken


def test_several_sessions_listed_and_ended_one_by_one(
    client: TestClient, user_factory: Callable[..., tuple[str, str]]
) -> None:
    email, _ = user_factory()
    laptop = tokens(client, email, PASSWORD, **{"User-Agent": "laptop-browser"})
    phone = tokens(client, email, PASSWORD, **{"User-Agent": "phone-app"})
    listed = client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"])).json()["items"]
    assert [s["user_agent"] for s in listed] == ["phone-app", "laptop-browser"]
    assert [s["current"] for s in listed] == [False, True]
    assert all(s["ip"] == "testclient" for s in listed)
    phone_id = listed[0]["id"]
    assert client.delete(f"/api/v1/auth/sessions/{phone_id}", headers=bearer(laptop["access_token"])).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(phone["access_token"])).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(laptop["access_token"])).status_code == 200
    # Ended already, or never one's own: both are simply not there.
    assert client.delete(f"/api/v1/auth/sessions/{phone_id}", headers=bearer(laptop["access_token"])).status_code == 404


def test_another_users_session_cannot_be_seen_or_ended(
    client: TestClient, user_factory: Callable[..., tuple[str, str]]
) -> None:
    alice, _ = user_factory()
    mallory, _ = user_factory()
    alice_tokens = tokens(client, alice, PASSWORD)
    mallory_headers = bearer(tokens(client, mallory, PASSWORD)["access_token"])
    alice_session = client.get("/api/v1/auth/sessions", headers=bearer(alice_tokens["access_token"])).json()["items"][0]
    assert alice_session["id"] not in {
        s["id"] for s in client.get("/api/v1/auth/sessions", headers=mallory_headers).json()["items"]
    }
    assert client.delete(f"/api/v1/auth/sessions/{alice_session['id']}", headers=mallory_headers).status_code == 404
    assert client.get("/api/v1/me", headers=bearer(alice_tokens["access_token"])).status_code == 200


def test_session_ids_are_validated(client: TestClient, tenant: Tenant) -> None:
    for bad in ("..%2F..%2Fetc", "x' OR '1'='1", "a" * 65):
        assert client.delete(f"/api/v1/auth/sessions/{bad}", headers=tenant.viewer).status_code in (404, 422)


def test_idle_timeout_set_by_the_tenant_ends_sessions(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        email, _ = new_user(client, role="admin")
        admin = bearer(tokens(client, email, PASSWORD)["access_token"])
        tightened = client.patch("/api/v1/tenant/security", json={"session_idle_timeout_s": 2}, headers=admin)
        assert tightened.status_code == 200, tightened.text
        assert tightened.json()["session_idle_timeout_s"] == 2
        pair = tokens(client, email, PASSWORD)  # a new session gets the tenant's limit
        assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 200
        time.sleep(2.5)
        assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401


def test_a_session_in_use_outlives_the_idle_timeout_with_the_credential_cache_on(tmp_path: Path) -> None:
    """Requests answered from the credential cache are use too: a session used every 0.4 s for twice its idle
    timeout stays alive, while an unused one ends."""
    with app_client(tmp_path, auth_cache_ttl_s=5) as client:
        email, _ = new_user(client, role="admin")
        admin = bearer(tokens(client, email, PASSWORD)["access_token"])
        assert client.patch("/api/v1/tenant/security", json={"session_idle_timeout_s": 2}, headers=admin).is_success
        busy, idle = tokens(client, email, PASSWORD), tokens(client, email, PASSWORD)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert client.get("/api/v1/me", headers=bearer(busy["access_token"])).status_code == 200
            time.sleep(0.4)
        assert client.get("/api/v1/me", headers=bearer(idle["access_token"])).status_code == 401


def test_absolute_lifetime_ends_sessions_even_in_use(tmp_path: Path) -> None:
    with app_client(tmp_path, session_lifetime_s=1, session_touch_interval_s=1) as client:
        email, _ = new_user(client)
        pair = tokens(client, email, PASSWORD)
        deadline = time.monotonic() + 10
        while client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401


def test_a_tenant_can_only_tighten(client: TestClient, tenant: Tenant) -> None:
    looser = client.patch("/api/v1/tenant/security", json={"session_lifetime_s": 10**9}, headers=tenant.admin)
    assert looser.status_code == 422
    assert looser.json()["errors"][0]["loc"] == ["body", "session_lifetime_s"]
    assert client.patch("/api/v1/tenant/security", json={"nope": 1}, headers=tenant.admin).status_code == 422
    assert client.get("/api/v1/tenant/security", headers=tenant.analyst).status_code == 403


def test_session_limit_ends_the_oldest(tmp_path: Path) -> None:
    with app_client(tmp_path, max_sessions_per_user=2) as client:
        email, _ = new_user(client)
        first, second, third = (tokens(client, email, PASSWORD) for _ in range(3))
        assert client.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 401
        for pair in (second, third):
            assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 200


def test_password_change_needs_the_current_one_and_ends_all_sessions(
    client: TestClient, user_factory: Callable[..., tuple[str, str]]
) -> None:
    email, _ = user_factory("viewer")
    one, two = tokens(client, email, PASSWORD), tokens(client, email, PASSWORD)
    headers = bearer(one["access_token"])
    new = "a brand new passphrase for the viewer"
    wrong = client.post(
        "/api/v1/me/password", json={"current_password": "not it at all", "new_password": new}, headers=headers
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["loc"] == ["body", "current_password"]
    weak = client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "short"}, headers=headers
    )
    assert weak.status_code == 422
    same = client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": PASSWORD}, headers=headers
    )
    assert same.status_code == 422
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # refusals changed nothing

    changed = client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": new}, headers=headers
    )
    assert changed.status_code == 204, changed.text
    for pair in (one, two):
        assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD}).status_code == 401
    assert tokens(client, email, new)["access_token"]


def test_disabling_a_user_ends_their_sessions(client: TestClient, user_factory: Callable[..., tuple[str, str]]) -> None:
    admin_email, _admin_id = user_factory("admin")
    tenant_id = client.get("/api/v1/me", headers=bearer(tokens(client, admin_email, PASSWORD)["access_token"])).json()[
        "tenant"
    ]["id"]
    email, user_id = user_factory("analyst", tenant_id)
    pair = tokens(client, email, PASSWORD)
    admin = bearer(tokens(client, admin_email, PASSWORD)["access_token"])
    assert client.patch(f"/api/v1/users/{user_id}", json={"is_active": False}, headers=admin).status_code == 200
    assert client.patch(f"/api/v1/users/{user_id}", json={"is_active": True}, headers=admin).status_code == 200
    # Enabled again, the old session stays ended: a disable is not undone by an enable.
    assert client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401


@pytest.mark.postgres
def test_sessions_and_refresh_rotation_on_postgres(any_db_settings: Settings) -> None:
    from fastapi.testclient import TestClient as Client  # noqa: PLC0415

    from vigil.app import create_app  # noqa: PLC0415

    with Client(create_app(any_db_settings, run_workers=False), raise_server_exceptions=False) as client:
        email, _ = new_user(client)
        first = tokens(client, email, PASSWORD)
        second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
        assert client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
        assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 401
    database = Database(any_db_settings)
    try:
        with database.session() as session:
            bind_platform(session)  # the app role sees no tenant's rows without it (row-level security)
            revoked = session.scalars(select(AuthSession.revoked_reason)).all()
            hashes = session.scalars(select(RefreshToken.token_hash)).all()
        assert "refresh-token-reuse" in revoked
        assert first["refresh_token"] not in hashes
        assert all(len(h) == 64 for h in hashes)
    finally:
        database.dispose()
