"""Input and output hardening: security headers, no caching of credentialed answers, hostile bodies refused with
4xx (never 5xx), errors that echo no secrets; production refuses to start without a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, login, make_settings
from vigil.app import create_app
from vigil.config import Settings
from vigil.core.secrets import MissingSecretError


def test_security_headers_everywhere(client: TestClient, tenant: Tenant) -> None:
    for response in (client.get("/health"), client.get("/api/v1/me", headers=tenant.viewer), client.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert client.get("/api/v1/me", headers=tenant.viewer).headers["cache-control"] == "no-store"
    assert (
        client.post("/api/v1/auth/token", json={"email": "a@b.cd", "password": "x"}).headers["cache-control"]
        == "no-store"
    )
    assert "no-store" not in client.get("/health").headers.get("cache-control", "")
    # Swagger UI runs its own scripts, packaged and served from this origin: nothing from elsewhere.
    docs_policy = client.get("/docs").headers["content-security-policy"]
    assert "script-src 'self'" in docs_policy
    assert "http" not in docs_policy
    assert "frame-ancestors 'none'" in docs_policy


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ('{"name": ' + "[" * 50_000 + "]" * 50_000 + "}", "application/json"),
        (b'{"name": "\xff\xfe\xfd"}', "application/json"),
        ("{not json", "application/json"),
        ('{"name": "x", "name": {"$gt": ""}}', "application/json"),
    ],
)
def test_hostile_bodies_are_4xx_and_store_nothing(
    client: TestClient, tenant: Tenant, body: str | bytes, content_type: str
) -> None:
    for path, headers in (("/api/v1/api-keys", tenant.admin), ("/api/v1/auth/token", {})):
        response = client.post(path, content=body, headers={**headers, "Content-Type": content_type})
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/api-keys", headers=tenant.admin).json()["items"] == []


def test_injection_strings_are_inert(client: TestClient, tenant: Tenant) -> None:
    for hostile in ("' OR '1'='1", "admin@x.io'; DROP TABLE users; --", '{"$ne": null}', "../../etc/passwd"):
        response = client.post("/api/v1/auth/token", json={"email": hostile, "password": hostile})
        assert response.status_code in (401, 422), response.text
        created = client.post("/api/v1/api-keys", json={"name": hostile, "scopes": ["detect"]}, headers=tenant.admin)
        assert created.status_code == 201
        assert created.json()["name"] == hostile
    assert client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": {"$ne": None}}).status_code == 422
    assert client.get("/api/v1/me", headers=tenant.admin).status_code == 200


def test_errors_do_not_echo_secrets(client: TestClient) -> None:
    secret = "my very secret passphrase 123"
    for body in ({"email": "nobody@example.com", "password": secret}, {"email": "bad", "password": secret}):
        response = client.post("/api/v1/auth/token", json=body)
        assert secret not in response.text
    weird = client.post("/api/v1/auth/refresh", json={"refresh_token": secret, "x": secret})
    assert weird.status_code == 422
    assert secret not in weird.text
    assert "Traceback" not in json.dumps(weird.json())


def test_production_needs_a_secret(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, environment="production", secret_key=None)
    with pytest.raises(MissingSecretError):
        create_app(settings)
    with pytest.raises(MissingSecretError):
        create_app(make_settings(tmp_path, environment="production", secret_key="too-short"))


def test_values_the_database_refuses_are_422_on_every_backend(any_db_settings: Settings) -> None:
    with TestClient(create_app(any_db_settings, run_workers=False), raise_server_exceptions=False) as client:
        root = {"Authorization": f"Bearer {login(client, ADMIN_EMAIL, ADMIN_PASSWORD)}"}
        for response in (
            client.post("/api/v1/tenants", json={"name": "nul\u0000byte"}, headers=root),
            client.post("/api/v1/auth/token", json={"email": "nul\u0000@example.com", "password": "whatever it is"}),
            client.get("/api/v1/tenants/nul%00byte", headers=root),
        ):
            assert response.status_code in (401, 422), response.text
        names = [t["name"] for t in client.get("/api/v1/tenants", headers=root).json()["items"]]
        assert not any("\x00" in n for n in names)
