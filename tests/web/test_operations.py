"""Liveness, readiness, metrics, problem-type documentation, request ids — through real HTTP calls."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from vigil.config import Settings


def test_health_is_ok_and_carries_a_request_id(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert len(response.headers["x-request-id"]) >= 16


def test_a_sane_client_request_id_is_echoed(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/health", headers={"X-Request-ID": "<bad id>"}).headers["x-request-id"] != "<bad id>"


def test_ready_checks_database_and_blob_store(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body == {"status": "ready", "checks": {"database": "ok", "blob_store": "ok"}}


def test_ready_is_503_problem_when_the_blob_store_is_gone(client: TestClient, settings: Settings) -> None:
    shutil.rmtree(settings.blob_root)
    settings.blob_root.write_text("not a directory any more")
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["blob_store"].startswith("unavailable")


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/api/v1/datasets/ds_123")
    text = client.get("/metrics").text
    assert 'vigil_http_requests_total{method="GET",route="/api/v1/datasets/{dataset_id}",status="401"}' in text
    assert "vigil_http_request_duration_seconds_bucket" in text
    assert "ds_123" not in text


def test_problem_types_are_documented(client: TestClient) -> None:
    catalog = client.get("/problems").json()
    assert "/problems/not-found" in catalog
    assert client.get("/problems/quota-exceeded").json()["type"] == "/problems/quota-exceeded"
    assert client.get("/problems/nope").status_code == 404
