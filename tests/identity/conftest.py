"""Identity test helpers: an app with its own settings, users made through the API, and tokens with their pair."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, bearer, make_settings
from vigil.app import create_app


@contextmanager
def app_client(tmp_path: Path, *, peer: str = "testclient", **overrides: Any) -> Iterator[TestClient]:
    """A real app on a fresh SQLite database with these settings (e.g. small limits or timeouts), called from
    the address `peer`."""
    settings = make_settings(tmp_path / f"data-{uuid.uuid4().hex[:6]}", **overrides)
    app = create_app(settings, run_workers=False)
    with TestClient(app, raise_server_exceptions=False, client=(peer, 50000)) as test_client:
        yield test_client


def tokens(client: TestClient, email: str, password: str, **headers: str) -> dict[str, Any]:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def root_headers(client: TestClient) -> dict[str, str]:
    return bearer(tokens(client, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])


def new_user(client: TestClient, *, role: str = "analyst", tenant_id: str | None = None) -> tuple[str, str]:
    """A user in a new tenant (or the given one), made by the superadmin; returns (email, user id)."""
    root = root_headers(client)
    if tenant_id is None:
        made = client.post("/api/v1/tenants", json={"name": f"t-{uuid.uuid4().hex[:8]}"}, headers=root)
        assert made.status_code == 201, made.text
        tenant_id = made.json()["id"]
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "role": role, "tenant_id": tenant_id}, headers=root
    )
    assert created.status_code == 201, created.text
    return email, str(created.json()["id"])


@pytest.fixture
def user_factory(client: TestClient) -> Callable[..., tuple[str, str]]:
    def make(role: str = "analyst", tenant_id: str | None = None) -> tuple[str, str]:
        return new_user(client, role=role, tenant_id=tenant_id)

    return make
