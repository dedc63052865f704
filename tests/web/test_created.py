"""A request that creates answers 201 with `Location`: the path the created resource is read from (RFC 9110
§15.3.2), filled from what was made; one that queues a job answers 202 with the job's — documented on every such
operation, and true on each."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Tenant, bearer, login, wait_for_job
from vigil.web.contract import operations


def test_every_creating_or_accepting_operation_documents_its_location(client: TestClient) -> None:
    answers = [
        (method, path, status, operation["responses"][status])
        for path, method, operation in operations(client.get("/openapi.json").json())
        for status in ("201", "202")
        if status in operation["responses"]
    ]
    assert len(answers) >= 16
    for method, path, status, answer in answers:
        assert "Location" in answer.get("headers", {}), f"{method.upper()} {path} {status} documents no Location"


def _located(response: Any, prefix: str, status: int = 201) -> str:
    assert response.status_code == status, response.text
    location = str(response.headers["location"])
    assert location.startswith(prefix), location
    return location


def test_each_location_reads_back_what_was_made(client: TestClient, tenant: Tenant) -> None:
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    made = client.post("/api/v1/tenants", json={"name": "located"}, headers=root)
    assert client.get(_located(made, "/api/v1/tenants/"), headers=root).json()["id"] == made.json()["id"]
    user = client.post(
        "/api/v1/users",
        json={"email": "located@example.com", "password": PASSWORD, "role": "viewer"},
        headers=tenant.admin,
    )
    assert client.get(_located(user, "/api/v1/users/"), headers=tenant.admin).json()["id"] == user.json()["id"]
    key = client.post("/api/v1/api-keys", json={"name": "located", "scopes": ["datasets:read"]}, headers=tenant.admin)
    assert _located(key, "/api/v1/api-keys/") == f"/api/v1/api-keys/{key.json()['id']}"
    assert client.delete(key.headers["location"], headers=tenant.admin).status_code == 204

    buffer = io.BytesIO()
    pl.DataFrame({"a": [0.1, 0.2, 0.3, 5.0], "b": [1.0, 1.1, 0.9, -3.0]}).write_parquet(buffer)
    dataset = client.post(
        "/api/v1/datasets?name=located",
        content=buffer.getvalue(),
        headers={**tenant.analyst, "Content-Type": "application/vnd.apache.parquet"},
    )
    read = client.get(_located(dataset, "/api/v1/datasets/"), headers=tenant.viewer)
    assert read.json()["id"] == dataset.json()["id"]
    detector = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=tenant.analyst)
    read = client.get(_located(detector, "/api/v1/detectors/"), headers=tenant.viewer)
    assert read.json()["id"] == detector.json()["id"]
    labels = client.post(
        f"/api/v1/detectors/{detector.json()['id']}/feedback",
        json={"dataset_id": dataset.json()["id"], "labels": [{"index": 3, "label": "anomaly"}]},
        headers=tenant.analyst,
    )
    listed = client.get(_located(labels, f"/api/v1/detectors/{detector.json()['id']}/feedback"), headers=tenant.viewer)
    assert [label["index"] for label in listed.json()["items"]] == [3]

    job = client.post(
        f"/api/v1/detectors/{detector.json()['id']}/train",
        json={"dataset_id": dataset.json()["id"]},
        headers=tenant.analyst,
    )
    trained = wait_for_job(client, job.json()["id"], tenant.analyst)
    assert _located(job, "/api/v1/jobs/", 202) == f"/api/v1/jobs/{trained['id']}"
    scoring = client.post(
        f"/api/v1/detectors/{detector.json()['id']}/detect",
        json={"dataset_id": dataset.json()["id"]},
        headers=tenant.analyst,
    )
    assert (
        client.get(_located(scoring, "/api/v1/jobs/", 202), headers=tenant.viewer).json()["id"] == scoring.json()["id"]
    )
    profile = client.post(f"/api/v1/datasets/{dataset.json()['id']}/profile", headers=tenant.analyst)
    read = client.get(
        _located(profile, f"/api/v1/datasets/{dataset.json()['id']}/profile?version="), headers=tenant.viewer
    )
    assert read.json()["id"] == profile.json()["id"]

    stream = client.post(
        "/api/v1/streams",
        json={"name": "s", "algorithm": "hst", "features": ["a", "b"]},
        headers=tenant.analyst,
    )
    assert client.get(_located(stream, "/api/v1/streams/"), headers=tenant.viewer).json()["id"] == stream.json()["id"]
