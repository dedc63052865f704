"""The unversioned operational contract: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import pytest

from vigil.client import VigilClient

EXPECTED_PATHS = (
    "/api/v1/auth/token",
    "/api/v1/me",
    "/api/v1/tenants",
    "/api/v1/users",
    "/api/v1/datasets",
    "/api/v1/datasets/{dataset_id}",
    "/api/v1/algorithms",
    "/api/v1/detectors",
    "/api/v1/detectors/{detector_id}/train",
    "/api/v1/detectors/{detector_id}/detect",
    "/api/v1/jobs",
    "/api/v1/jobs/{job_id}",
)
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.mark.smoke
def test_health_and_readiness(anonymous: VigilClient) -> None:
    health = anonymous.send("GET", "/health", authenticated=False)
    assert health.status_code == 200, health.text
    assert health.headers["content-type"].startswith("application/json")
    assert health.json()["status"] == "ok"
    ready = anonymous.send("GET", "/ready", authenticated=False)
    assert ready.status_code == 200, ready.text
    checks = ready.json().get("checks", {})
    assert checks, ready.json()
    assert all(value == "ok" for value in checks.values()), checks


def test_metrics_are_prometheus_text(anonymous: VigilClient) -> None:
    anonymous.send("GET", "/health")  # at least one request is counted
    response = anonymous.send("GET", "/metrics", authenticated=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    lines = response.text.splitlines()
    assert any(line.startswith("# HELP ") for line in lines)
    assert any(line.startswith("# TYPE ") for line in lines)
    samples = [line for line in lines if line and not line.startswith("#")]
    assert samples, "no samples"
    for line in samples:  # `name{labels} value` — the value parses as a float
        float(line.rsplit(" ", 1)[1])


@pytest.mark.smoke
def test_openapi_document_describes_the_v1_api(anonymous: VigilClient) -> None:
    response = anonymous.send("GET", "/openapi.json", authenticated=False)
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3."), spec.get("openapi")
    assert spec["info"]["title"]
    assert spec["info"]["version"]
    paths = spec["paths"]
    missing = [p for p in EXPECTED_PATHS if p not in paths]
    assert not missing, f"the API lost paths: {missing}"
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            assert operation.get("responses"), f"{method.upper()} {path} documents no responses"
            placeholders = {p.strip("{}") for p in path.split("/") if p.startswith("{")}
            declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
            assert placeholders <= declared, f"{method.upper()} {path} does not declare {placeholders - declared}"
