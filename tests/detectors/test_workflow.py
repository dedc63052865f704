"""The core workflow through the real API: upload → detector → train (job) → detect, on ADBench breastw."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pyod.models.iforest import IForest
from sklearn.metrics import roc_auc_score

from tests.conftest import Tenant, wait_for_job
from tests.support.write_lock import write_lock_is_free
from vigil import ml
from vigil.config import Settings
from vigil.core.secrets import ARTIFACTS, derive_key
from vigil.datasets import formats

FIXTURES = Path(__file__).parent.parent / "fixtures"


def breastw() -> tuple[pl.DataFrame, np.ndarray]:
    data = np.load(FIXTURES / "breastw.npz", allow_pickle=False)
    frame = pl.DataFrame(data["X"], schema=[f"f{i}" for i in range(data["X"].shape[1])])
    return frame, data["y"].astype(int)


def upload(client: TestClient, headers: dict[str, str], frame: pl.DataFrame, name: str = "breastw") -> str:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    response = client.post(
        f"/api/v1/datasets?name={name}",
        content=buffer.getvalue(),
        headers={**headers, "Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def trained_detector(client: TestClient, tenant: Tenant, dataset_id: str, **config: object) -> str:
    body = {"name": "iforest", "algorithm": "iforest", "contamination": 0.35, **config}
    created = client.post("/api/v1/detectors", json=body, headers=tenant.analyst)
    assert created.status_code == 201, created.text
    detector_id = str(created.json()["id"])
    job = client.post(f"/api/v1/detectors/{detector_id}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst)
    assert job.status_code == 202, job.text
    finished = wait_for_job(client, job.json()["id"], tenant.analyst)
    assert finished["status"] == "succeeded", finished
    return detector_id


def test_workflow_finds_the_known_anomalies(client: TestClient, tenant: Tenant) -> None:
    frame, labels = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id)
    detector = client.get(f"/api/v1/detectors/{detector_id}", headers=tenant.viewer).json()
    assert (detector["status"], detector["current_version"]) == ("trained", 1)

    records = frame.to_dicts()
    result = client.post(f"/api/v1/detectors/{detector_id}/detect", json={"records": records}, headers=tenant.analyst)
    assert result.status_code == 200, result.text
    body = result.json()
    scores = np.array([r["score"] for r in body["results"]])
    assert body["total"] == len(records)
    assert body["model_version"] == 1
    assert body["anomalies"] == sum(r["is_anomaly"] for r in body["results"])
    assert roc_auc_score(labels, scores) >= 0.9


def test_api_scores_equal_pyods_own_decision_function(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id, parameters={"n_estimators": 50, "random_state": 7})
    api = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"records": frame.head(200).to_dicts()}, headers=tenant.analyst
    ).json()
    api_scores = np.array([r["score"] for r in api["results"]])

    # The very model the server stored, loaded and verified the way the server does it:
    version = client.get(f"/api/v1/detectors/{detector_id}/versions", headers=tenant.viewer).json()["items"][0]
    artifact = next(settings.blob_root.rglob(f"{version['job_id']}.vmdl")).read_bytes()
    secret = settings.secret_key.get_secret_value().encode()  # type: ignore[union-attr]
    stored = ml.load_artifact(artifact, key=derive_key(secret, ARTIFACTS))
    X = frame.head(200).to_numpy()
    np.testing.assert_array_equal(api_scores, stored.estimator.decision_function(X))
    # …and a model fitted independently with the same parameters and seed agrees too.
    independent = IForest(n_estimators=50, random_state=7, contamination=0.35).fit(frame.to_numpy())
    np.testing.assert_allclose(api_scores, independent.decision_function(X), rtol=1e-12)
    assert api["threshold"] == pytest.approx(independent.threshold_)


def test_parquet_body_and_parquet_response(client: TestClient, tenant: Tenant) -> None:
    frame, labels = breastw()
    detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    response = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        content=buffer.getvalue(),
        headers={
            **tenant.analyst,
            "Content-Type": "application/vnd.apache.parquet",
            "Accept": "application/vnd.apache.parquet",
        },
    )
    assert response.status_code == 200, response.text
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column_names[:3] == ["index", "score", "is_anomaly"]  # then percentile, imputed
    assert table.num_rows == frame.height
    assert int(response.headers["x-vigil-total"]) == frame.height
    assert roc_auc_score(labels, table.column("score").to_numpy()) >= 0.9
    arrow = io.BytesIO()
    with pa.ipc.new_stream(arrow, frame.to_arrow().schema) as writer:
        writer.write_table(frame.to_arrow())
    json_response = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        content=arrow.getvalue(),
        headers={**tenant.analyst, "Content-Type": "application/vnd.apache.arrow.stream"},
    )
    assert json_response.json()["total"] == frame.height


def test_detect_a_dataset_as_a_job_keeps_the_result_as_a_dataset(client: TestClient, tenant: Tenant) -> None:
    frame, labels = breastw()
    dataset_id = upload(client, tenant.analyst, frame.with_columns(pl.Series("y", labels)))
    detector_id = trained_detector(client, tenant, dataset_id, features=[f"f{i}" for i in range(9)])
    accepted = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert accepted.status_code == 202
    job = wait_for_job(client, accepted.json()["id"], tenant.analyst)
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert isinstance(result, dict)
    assert result["total"] == frame.height
    rows = client.get(f"/api/v1/datasets/{result['result_dataset_id']}/rows?limit=1000", headers=tenant.viewer).json()
    assert rows["total"] == frame.height
    assert set(rows["columns"]) >= {"score", "is_anomaly", "percentile", "imputed", "y"}
    scored = pl.DataFrame(rows["rows"])
    assert roc_auc_score(scored["y"].to_numpy(), scored["score"].to_numpy()) >= 0.9
    assert int(scored["is_anomaly"].sum()) == result["anomalies"]
    # The same scale as an inline answer: the flagged rows sit above the threshold's share of the training scores.
    assert scored["percentile"].is_between(0.0, 1.0).all()
    assert (
        scored.filter(pl.col("is_anomaly"))["percentile"].min()
        >= scored.filter(~pl.col("is_anomaly"))["percentile"].max()
    )
    assert not scored["imputed"].any()


def test_retraining_makes_a_new_version(client: TestClient, tenant: Tenant) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id)
    job = client.post(f"/api/v1/detectors/{detector_id}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst)
    assert wait_for_job(client, job.json()["id"], tenant.analyst)["status"] == "succeeded"
    versions = client.get(f"/api/v1/detectors/{detector_id}/versions", headers=tenant.viewer).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    old = client.post(
        f"/api/v1/detectors/{detector_id}/detect?version=1",
        json={"records": frame.head(3).to_dicts()},
        headers=tenant.analyst,
    )
    assert old.json()["model_version"] == 1


def test_a_detection_writes_its_result_file_while_other_writers_can_write(
    client: TestClient, tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has one write lock; a job's end is recorded under it. Writing the result table there (seconds for a
    large one) made every other writer wait — logins, uploads — up to the busy timeout, then 503. Each time a table
    is written as Parquet, another connection tries to take the write lock at once."""
    if settings.sqlite_path is None:
        pytest.skip("the database's one write lock is SQLite's; PostgreSQL locks rows")
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id)
    writable: list[bool] = []
    write_parquet = formats.write_parquet

    def probing(table: pa.Table, path: Path) -> None:
        assert settings.sqlite_path is not None
        writable.append(write_lock_is_free(settings.sqlite_path))
        write_parquet(table, path)

    monkeypatch.setattr(formats, "write_parquet", probing)
    accepted = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    job = wait_for_job(client, accepted.json()["id"], tenant.analyst)
    assert job["status"] == "succeeded", job
    assert writable == [True], "the result table was written while the database's write lock was held"
