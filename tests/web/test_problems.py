"""Every error class is an RFC 9457 problem document with a request id, and never leaks internals."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant, make_settings
from vigil.app import create_app


def assert_problem(response: object, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    return body


def test_unknown_route(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404, "route-not-found")


def test_method_not_allowed(client: TestClient) -> None:
    body = assert_problem(client.put("/health"), 405, "method-not-allowed")
    assert "PUT" in str(body["detail"])


def test_missing_and_garbage_tokens(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/datasets"), 401, "unauthorized")
    response = client.get("/api/v1/datasets", headers={"Authorization": "Bearer not.a.jwt"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_validation_error_names_fields_without_echoing_values(client: TestClient, tenant: Tenant) -> None:
    secret = "x" * 5000
    response = client.post(
        "/api/v1/detectors", json={"name": "d", "algorithm": "iforest", "contamination": secret}, headers=tenant.analyst
    )
    body = assert_problem(response, 422, "invalid-input")
    assert any(e["loc"][-1] == "contamination" for e in body["errors"])  # type: ignore[index, union-attr]
    assert secret not in response.text


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", max_upload_bytes=1000)
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/api/v1/auth/token",
            json={"email": settings.bootstrap_admin_email, "password": "a very long bootstrap passphrase"},
        ).json()["access_token"]
        response = client.post(
            "/api/v1/datasets?name=big",
            content=b"a,b\n" + b"1,2\n" * 1000,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        )
        body = assert_problem(response, 413, "payload-too-large")
        assert body["limit_bytes"] == 1000
        assert client.get("/api/v1/datasets", headers={"Authorization": f"Bearer {token}"}).json()["items"] == []


def test_unsupported_media_type(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        "/api/v1/datasets", content=b"<xml/>", headers={**tenant.analyst, "Content-Type": "application/xml"}
    )
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "text/csv" in body["supported"]  # type: ignore[operator]


@pytest.mark.parametrize("path", ["/api/v1/datasets/ds_x", "/api/v1/detectors/det_x", "/api/v1/jobs/job_x"])
def test_unknown_ids_are_404(client: TestClient, tenant: Tenant, path: str) -> None:
    assert_problem(client.get(path, headers=tenant.viewer), 404, "not-found")
