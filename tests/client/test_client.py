"""The SDK against a real server over real HTTP: every method, the error type, idempotency keys, job waiting."""

from __future__ import annotations

import io
import socket
import uuid
from pathlib import Path

import polars as pl
import pytest

from tests.client.conftest import SdkTenant
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from vigil.client import JobTimeout, VigilAPIError, VigilClient, VigilConnectionError
from vigil.client.models import Dataset, DetectionResult, DetectorInfo, Job, ModelVersion, Page

EXAMPLE = Path(__file__).parents[2] / "examples" / "breastw.csv"
FEATURES = [c for c in pl.read_csv(EXAMPLE).columns if c != "malignant"]


def test_health_ready_and_openapi(server_url: str) -> None:
    with VigilClient(server_url) as client:
        assert client.health()["status"] == "ok"
        assert client.ready()["status"] == "ready"
        assert "/api/v1/datasets" in client.openapi()["paths"]


def test_login_and_me(server_url: str) -> None:
    with VigilClient(server_url) as client:
        with pytest.raises(VigilAPIError) as refused:
            client.login(ADMIN_EMAIL, "not the password at all")
        assert client.token is None
        error = refused.value
        assert error.status == 401
        assert error.is_problem
        assert error.type == "/problems/unauthorized"
        assert error.title
        assert error.detail
        assert error.request_id
        assert error.request_id == error.headers["x-request-id"]
        assert "401" in str(error)


def test_refresh_rotates_and_logout_ends_the_session(server_url: str) -> None:
    with VigilClient(server_url) as client:
        first = client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        second = client.refresh()
        assert second["refresh_token"] != first["refresh_token"]
        assert client.token == second["access_token"]
        assert client.me()["role"] == "superadmin"
        # An access token that stops working is renewed once with the refresh token, transparently.
        client.token = "not-a-token"
        assert client.me()["role"] == "superadmin"
        client.logout()
        assert client.token is None
        with VigilClient(server_url, token=second["access_token"]) as stale, pytest.raises(VigilAPIError) as ended:
            stale.me()
        assert ended.value.status == 401


def test_me_and_provisioning(root: VigilClient, server_url: str) -> None:
    assert root.me()["role"] == "superadmin"
    key = f"sdk-{uuid.uuid4().hex}"
    name = f"tenant-{key[-8:]}"
    tenant = root.create_tenant(name, idempotency_key=key)
    assert root.create_tenant(name, idempotency_key=key)["id"] == tenant["id"]  # a retry, not a duplicate
    assert root.get_tenant(tenant["id"])["name"] == name
    assert tenant["id"] in {t["id"] for t in root.list_tenants(limit=500)["items"]}
    assert root.update_tenant(tenant["id"], name=f"{name}-renamed")["name"] == f"{name}-renamed"
    user = root.create_user(f"u-{key[-8:]}@example.com", "correct horse battery staple 42", tenant_id=tenant["id"])
    assert (user["role"], user["tenant_id"]) == ("analyst", tenant["id"])
    with VigilClient(server_url) as analyst:
        analyst.login(user["email"], "correct horse battery staple 42")
        assert analyst.me()["tenant"]["id"] == tenant["id"]
        with pytest.raises(VigilAPIError) as forbidden:
            analyst.list_users()
        assert forbidden.value.status == 403
    root.delete_tenant(tenant["id"])
    with pytest.raises(VigilAPIError) as gone:
        root.get_tenant(tenant["id"])
    assert gone.value.status == 404


def test_dataset_methods(sdk_tenant: SdkTenant, tmp_path: Path) -> None:
    datasets = sdk_tenant.analyst.datasets
    from_bytes = datasets.upload(b"a,b\n1,2\n3,4\n", name="bytes")
    path = tmp_path / "from-path.csv"
    path.write_bytes(b"a\n1\n2\n3\n")
    from_path = datasets.upload(path)
    from_frame = datasets.upload(pl.DataFrame({"x": [1.0, 2.0], "y": [True, False]}), name="frame")
    assert (from_bytes["rows"], from_path["name"], from_path["rows"]) == (2, "from-path", 3)
    assert {c["name"] for c in from_frame["schema"]} == {"x", "y"}

    page = sdk_tenant.viewer.datasets.list(limit=2)
    assert [d["id"] for d in page["items"]] == [from_frame["id"], from_path["id"]]  # newest first
    assert page["next_cursor"]
    everything = [d["id"] for d in sdk_tenant.viewer.datasets.iter_all(page_size=1)]
    assert everything == [from_frame["id"], from_path["id"], from_bytes["id"]]

    assert datasets.get(from_bytes["id"]) == from_bytes
    assert datasets.update(from_bytes["id"], name="renamed", description="d")["name"] == "renamed"
    assert datasets.rows(from_path["id"], offset=1, limit=1)["rows"] == [{"a": 2}]
    assert [r["a"] for r in datasets.all_rows(from_path["id"], page_size=2)] == [1, 2, 3]
    datasets.delete(from_bytes["id"])
    with pytest.raises(VigilAPIError) as gone:
        datasets.get(from_bytes["id"])
    assert gone.value.status == 404
    with pytest.raises(TypeError):
        datasets.upload(12345)


def test_detector_workflow(sdk_tenant: SdkTenant) -> None:
    analyst = sdk_tenant.analyst
    frame = pl.read_csv(EXAMPLE)
    dataset = analyst.datasets.upload(EXAMPLE)
    assert analyst.algorithms()
    detector = analyst.detectors.create(
        name="d", algorithm="iforest", contamination=0.35, features=FEATURES, parameters={"n_estimators": 20}
    )
    assert analyst.detectors.get(detector["id"])["status"] == "created"
    assert analyst.detectors.update(detector["id"], description="tuned")["description"] == "tuned"
    assert detector["id"] in {d["id"] for d in analyst.detectors.iter_all()}

    job = analyst.detectors.train(detector["id"], dataset["id"])
    finished = analyst.jobs.wait(job["id"], timeout=60, poll=0.05)
    assert finished["status"] == "succeeded", finished
    # Typed results, validated against what the server really sent (their schemas: tests/client/test_models.py).
    assert isinstance(dataset, Dataset)
    assert dataset.rows == frame.height
    assert dataset.column_names == frame.columns
    assert isinstance(detector, DetectorInfo)
    assert detector.features == FEATURES
    assert isinstance(finished, Job)
    assert finished.done
    assert finished.finished_at is not None
    versions = analyst.detectors.versions(detector.id)
    assert isinstance(versions, Page)
    assert isinstance(versions.items[0], ModelVersion)
    assert versions.items[0].training_rows == frame.height
    assert analyst.detectors.versions(detector["id"])["items"][0]["version"] == 1
    assert job["id"] in {j["id"] for j in analyst.jobs.list(kind=job["kind"])["items"]}
    with pytest.raises(VigilAPIError) as finished_already:
        analyst.jobs.cancel(job["id"])
    assert finished_already.value.status == 409

    inline = analyst.detect(detector["id"], records=frame.head(5).drop("malignant").to_dicts())
    assert inline["total"] == 5
    assert isinstance(inline, DetectionResult)
    assert [row.index for row in inline.results] == list(range(5))
    by_frame = analyst.detect(detector["id"], frame=frame.head(7), version=1)
    assert (by_frame["total"], by_frame["model_version"]) == (7, 1)
    scoring = analyst.detect(detector["id"], dataset_id=dataset["id"])
    assert isinstance(scoring, Job)
    result = analyst.jobs.wait(scoring["id"], timeout=60, poll=0.05)["result"]
    assert result["total"] == frame.height
    with pytest.raises(ValueError, match="exactly one"):
        analyst.detect(detector["id"], records=[{}], dataset_id=dataset["id"])

    analyst.detectors.delete(detector["id"])
    with pytest.raises(VigilAPIError) as gone:
        analyst.detectors.get(detector["id"])
    assert gone.value.status == 404


def test_wait_times_out_with_the_last_state(sdk_tenant: SdkTenant) -> None:
    analyst = sdk_tenant.analyst
    big = pl.DataFrame({"a": list(range(20_000)), "b": [i % 7 for i in range(20_000)]})
    buffer = io.BytesIO()
    big.write_parquet(buffer)
    dataset = analyst.datasets.upload(buffer.getvalue(), media_type="application/vnd.apache.parquet")
    detector = analyst.detectors.create(name="slow", algorithm="iforest", parameters={"n_estimators": 300})
    job = analyst.detectors.train(detector["id"], dataset["id"])
    with pytest.raises(JobTimeout) as timed_out:
        analyst.jobs.wait(job["id"], timeout=0.0, poll=0.01)
    assert timed_out.value.job["id"] == job["id"]
    assert isinstance(timed_out.value, TimeoutError)
    analyst.jobs.wait(job["id"], timeout=120)  # let it finish before the tenant is deleted


def test_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with VigilClient(f"http://127.0.0.1:{port}", timeout=2) as client, pytest.raises(VigilConnectionError):
        client.health()


def test_with_token_and_raw_send(sdk_tenant: SdkTenant) -> None:
    other = sdk_tenant.viewer.with_token(sdk_tenant.analyst.token)
    with other:
        assert other.me()["role"] == "analyst"
    anonymous = sdk_tenant.viewer.with_token(None)
    with anonymous:
        response = anonymous.send("GET", "/api/v1/me")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
