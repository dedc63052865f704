"""Quotas, tenant configuration, usage, suspension and retention — through the API, on a real app."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import timedelta

import polars as pl
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, wait_for_job
from vigil.core.database import TenantScope, utcnow
from vigil.datasets.retention import sweep_expired

CSV = b"a,b\n1,2\n3,4\n5,6\n"


def upload(client: TestClient, headers: dict[str, str], body: bytes = CSV, name: str = "d") -> Response:
    response: Response = client.post(
        "/api/v1/datasets", params={"name": name}, content=body, headers={**headers, "Content-Type": "text/csv"}
    )
    return response


def root(client: TestClient) -> dict[str, str]:
    return bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))


def test_dataset_and_detector_quotas_name_the_quota_and_leave_nothing(client: TestClient, tenant: Tenant) -> None:
    su = root(client)
    patched = client.patch(f"/api/v1/tenants/{tenant.id}", json={"quotas": {"datasets": 1, "detectors": 1}}, headers=su)
    assert patched.status_code == 200, patched.text
    assert patched.json()["quotas"]["datasets"] == 1
    assert upload(client, tenant.analyst).status_code == 201
    refused = upload(client, tenant.analyst)
    assert refused.status_code == 403
    body = refused.json()
    assert body["type"].endswith("/problems/quota-exceeded")
    assert (body["quota"], body["limit"], body["used"]) == ("datasets", 1, 1)
    assert len(client.get("/api/v1/datasets", headers=tenant.viewer).json()["items"]) == 1
    blobs = client.app.state.context.blobs  # type: ignore[attr-defined]
    staged = blobs.path(blobs.key(TenantScope(tenant.id), "staging"))
    assert not any(staged.iterdir()), "a refused upload left a staged file"
    assert (
        client.post("/api/v1/detectors", json={"name": "a", "algorithm": "iforest"}, headers=tenant.analyst).status_code
        == 201
    )
    second = client.post("/api/v1/detectors", json={"name": "b", "algorithm": "iforest"}, headers=tenant.analyst)
    assert (second.status_code, second.json()["quota"]) == (403, "detectors")
    usage = client.get(f"/api/v1/tenants/{tenant.id}/usage", headers=tenant.admin).json()["usage"]
    assert usage["datasets"] == {"used": 1, "limit": 1}
    assert usage["detectors"] == {"used": 1, "limit": 1}
    assert usage["storage_bytes"]["used"] > 0
    assert usage["streams"]["used"] == 0


def test_usage_of_another_tenant_is_404_for_a_tenant_admin(
    client: TestClient, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    assert client.get(f"/api/v1/tenants/{a.id}/usage", headers=b.admin).status_code == 404
    assert client.get(f"/api/v1/tenants/{a.id}/usage", headers=a.analyst).status_code == 403
    assert client.get(f"/api/v1/tenants/{a.id}/usage", headers=root(client)).status_code == 200


def test_configuration_applies_to_its_tenant_only(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    changed = client.patch(
        "/api/v1/tenant/settings",
        json={"default_contamination": 0.05, "allowed_algorithms": ["ecod"], "max_upload_bytes": 10},
        headers=a.admin,
    )
    assert changed.status_code == 200, changed.text
    assert client.get("/api/v1/tenant/settings", headers=b.admin).json()["allowed_algorithms"] is None
    refused = client.post("/api/v1/detectors", json={"name": "x", "algorithm": "iforest"}, headers=a.analyst)
    assert refused.status_code == 422
    made = client.post("/api/v1/detectors", json={"name": "x", "algorithm": "ecod"}, headers=a.analyst).json()
    assert made["contamination"] == 0.05
    other = client.post("/api/v1/detectors", json={"name": "x", "algorithm": "iforest"}, headers=b.analyst).json()
    assert other["contamination"] == 0.1
    too_big = upload(client, a.analyst)
    assert too_big.status_code == 413
    assert too_big.json()["limit_bytes"] == 10
    assert upload(client, b.analyst).status_code == 201
    beyond = client.patch("/api/v1/tenant/settings", json={"max_upload_bytes": 10**15}, headers=a.admin)
    assert beyond.status_code == 422


def test_api_calls_per_hour_is_one_budget_for_the_tenant(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    client.patch(f"/api/v1/tenants/{a.id}", json={"quotas": {"api_calls_per_hour": 3}}, headers=root(client))
    assert [client.get("/api/v1/datasets", headers=a.viewer).status_code for _ in range(3)] == [200] * 3
    spent = client.get("/api/v1/datasets", headers=a.analyst)
    assert spent.status_code == 429
    assert spent.json()["quota"] == "api_calls_per_hour"
    assert int(spent.headers["Retry-After"]) > 0
    assert client.get("/api/v1/datasets", headers=b.viewer).status_code == 200


def test_raising_the_hourly_quota_keeps_the_calls_already_counted(
    client: TestClient, make_tenant: Callable[[], Tenant]
) -> None:
    tenant, su = make_tenant(), root(client)
    client.patch(f"/api/v1/tenants/{tenant.id}", json={"quotas": {"api_calls_per_hour": 4}}, headers=su)
    assert [client.get("/api/v1/datasets", headers=tenant.viewer).status_code for _ in range(4)] == [200] * 4
    assert client.get("/api/v1/datasets", headers=tenant.viewer).status_code == 429
    # Raised from 4 to 6: the hour's 4 calls still count, so 2 more are allowed, not a fresh 6.
    client.patch(f"/api/v1/tenants/{tenant.id}", json={"quotas": {"api_calls_per_hour": 6}}, headers=su)
    assert [client.get("/api/v1/datasets", headers=tenant.viewer).status_code for _ in range(3)] == [200, 200, 429]
    usage = client.get(f"/api/v1/tenants/{tenant.id}/usage", headers=su).json()["usage"]
    assert usage["api_calls_per_hour"] == {"used": 6, "limit": 6}


def test_suspend_and_resume(client: TestClient, tenant: Tenant) -> None:
    su = root(client)
    assert client.post(f"/api/v1/tenants/{tenant.id}/suspend", headers=su).json()["status"] == "suspended"
    assert client.get("/api/v1/me", headers=tenant.viewer).status_code == 401
    assert client.post(f"/api/v1/tenants/{tenant.id}/resume", headers=su).json()["status"] == "active"
    assert client.get("/api/v1/me", headers=tenant.viewer).status_code == 200


def test_retention_sweep_deletes_only_expired_datasets_of_tenants_that_set_it(
    client: TestClient, make_tenant: Callable[[], Tenant]
) -> None:
    a, b = make_tenant(), make_tenant()
    old_a = upload(client, a.analyst).json()["id"]
    kept_b = upload(client, b.analyst).json()["id"]
    client.patch("/api/v1/tenant/settings", json={"retention_days": 1}, headers=a.admin)
    context = client.app.state.context  # type: ignore[attr-defined]
    assert sweep_expired(context) == 0  # nothing is a day old yet
    assert sweep_expired(context, now=utcnow() + timedelta(days=2)) == 1
    assert client.get(f"/api/v1/datasets/{old_a}", headers=a.viewer).status_code == 404
    assert client.get(f"/api/v1/datasets/{kept_b}", headers=b.viewer).status_code == 200


def test_export_then_delete_removes_rows_and_blobs(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    a, b = make_tenant(), make_tenant()
    dataset = upload(client, a.analyst, name="kept-in-export").json()
    client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=a.analyst)
    assert client.get(f"/api/v1/tenants/{a.id}/export", headers=b.admin).status_code == 404
    exported = client.get(f"/api/v1/tenants/{a.id}/export", headers=a.admin)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as zf:
        names = set(zf.namelist())
        assert {"tenant.json", "datasets.json", "detectors.json", "users.json"} <= names
        frame = pl.read_parquet(zf.read(f"datasets/{dataset['id']}.parquet"))
        assert frame.shape == (3, 2)
        assert json.loads(zf.read("datasets.json"))[0]["name"] == "kept-in-export"
        assert "password" not in zf.read("users.json").decode()
    blobs = client.app.state.context.blobs  # type: ignore[attr-defined]
    tenant_dir = blobs.path(blobs.key(TenantScope(a.id)))
    assert tenant_dir.exists()
    assert client.delete(f"/api/v1/tenants/{a.id}", headers=root(client)).status_code == 204
    assert not tenant_dir.exists()
    assert client.get("/api/v1/me", headers=a.admin).status_code == 401
    assert client.get("/api/v1/me", headers=b.admin).status_code == 200


def test_narrowed_algorithms_also_stop_training(client: TestClient, tenant: Tenant) -> None:
    detector = client.post("/api/v1/detectors", json={"name": "x", "algorithm": "iforest"}, headers=tenant.analyst)
    dataset = upload(client, tenant.analyst)
    assert dataset.status_code == 201
    narrowed = client.patch("/api/v1/tenant/settings", json={"allowed_algorithms": ["ecod"]}, headers=tenant.admin)
    assert narrowed.status_code == 200
    train = client.post(
        f"/api/v1/detectors/{detector.json()['id']}/train",
        json={"dataset_id": dataset.json()["id"]},
        headers=tenant.analyst,
    )
    assert train.status_code == 422
    assert "not allowed" in train.json()["detail"]
    assert client.get("/api/v1/jobs", headers=tenant.viewer).json()["items"] == []


def test_model_artifacts_count_toward_storage_and_are_refused_past_it(client: TestClient, tenant: Tenant) -> None:
    """Everything a tenant stores counts: a training whose model would pass `storage_bytes` fails, names the quota
    and leaves no version; with room, the model's bytes show in the usage beside the datasets'."""
    su = root(client)
    rows = "\n".join(f"{i % 7},{(i * 3) % 11}" for i in range(400))
    dataset = upload(client, tenant.analyst, f"a,b\n{rows}\n".encode()).json()
    detector = client.post(
        "/api/v1/detectors", json={"name": "m", "algorithm": "iforest"}, headers=tenant.analyst
    ).json()

    def train() -> dict[str, object]:
        job = client.post(
            f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset["id"]}, headers=tenant.analyst
        )
        assert job.status_code == 202, job.text
        return wait_for_job(client, job.json()["id"], tenant.analyst)

    def used() -> int:
        usage = client.get(f"/api/v1/tenants/{tenant.id}/usage", headers=tenant.admin).json()["usage"]
        return int(usage["storage_bytes"]["used"])

    datasets_only = used()
    assert datasets_only == dataset["size_bytes"]
    # Room for the dataset and a few bytes more, never a model (an IForest artifact is kilobytes).
    patched = client.patch(
        f"/api/v1/tenants/{tenant.id}", json={"quotas": {"storage_bytes": datasets_only + 100}}, headers=su
    )
    assert patched.status_code == 200, patched.text
    refused = train()
    assert refused["status"] == "failed"
    assert "storage_bytes" in json.dumps(refused["error"])
    versions = client.get(f"/api/v1/detectors/{detector['id']}/versions", headers=tenant.viewer).json()["items"]
    assert versions == []
    assert used() == datasets_only

    client.patch(f"/api/v1/tenants/{tenant.id}", json={"quotas": {"storage_bytes": 10**9}}, headers=su)
    assert train()["status"] == "succeeded"
    assert used() > datasets_only
