"""Detection quality through the real API: feedback → retrain → measured quality; versions judged, promoted, rolled
back and deleted; explanations inline, in Parquet and in dataset jobs; signed export and import; `auto`."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from tests.conftest import Tenant, wait_for_job
from tests.detectors.test_workflow import breastw, upload
from vigil import ml
from vigil.config import Settings

FEATURES = [f"f{i}" for i in range(9)]


def create(client: TestClient, tenant: Tenant, **body: object) -> str:
    response = client.post(
        "/api/v1/detectors", json={"name": "d", "features": FEATURES, **body}, headers=tenant.analyst
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def train(client: TestClient, tenant: Tenant, detector_id: str, dataset_id: str, **body: object) -> dict[str, object]:
    job = client.post(
        f"/api/v1/detectors/{detector_id}/train", json={"dataset_id": dataset_id, **body}, headers=tenant.analyst
    )
    assert job.status_code == 202, job.text
    finished = wait_for_job(client, job.json()["id"], tenant.analyst, timeout=120)
    assert finished["status"] == "succeeded", finished
    return finished


def test_feedback_retrain_measures_quality_and_versions_can_be_judged(client: TestClient, tenant: Tenant) -> None:
    frame, labels = breastw()
    dataset_id = upload(client, tenant.analyst, frame.with_columns(pl.Series("y", labels)))
    detector_id = create(client, tenant, parameters={"random_state": 0}, contamination=0.3)
    assert client.get(f"/api/v1/detectors/{detector_id}", headers=tenant.viewer).json()["algorithm"] == "auto"
    train(client, tenant, detector_id, dataset_id)
    v1 = client.get(f"/api/v1/detectors/{detector_id}/versions/1", headers=tenant.viewer).json()
    assert (v1["metrics"], v1["labels_used"], v1["active"]) == (None, 0, True)
    assert v1["dataset"]["rows"] == frame.height
    assert v1["explanation_method"] == "shapley_sampling"
    assert v1["training_seconds"] > 0

    added = client.post(
        f"/api/v1/detectors/{detector_id}/feedback",
        json={"dataset_id": dataset_id, "label_column": "y"},
        headers=tenant.analyst,
    )
    assert added.status_code == 201, added.text
    assert (added.json()["anomalies"], added.json()["normals"]) == (int(labels.sum()), int((labels == 0).sum()))
    train(client, tenant, detector_id, dataset_id, promote=False)
    v2 = client.get(f"/api/v1/detectors/{detector_id}/versions/2", headers=tenant.viewer).json()
    assert v2["active"] is False
    assert v2["labels_used"] > 0
    assert v2["metrics"]["holdout"]["roc_auc"] > 0.9

    compared = client.post(
        f"/api/v1/detectors/{detector_id}/versions/compare",
        json={"a": 1, "b": 2, "dataset_id": dataset_id},
        headers=tenant.viewer,
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["rows"] == frame.height
    assert 0 < body["spearman"] <= 1
    assert set(body["metric_deltas"]) == {"roc_auc", "pr_auc", "precision_at_k"}
    assert body["b"]["metrics"]["labelled"] == v2["metrics"]["holdout"]["labelled"]

    promoted = client.post(f"/api/v1/detectors/{detector_id}/versions/2/promote", headers=tenant.analyst).json()
    assert (promoted["current_version"], promoted["previous_versions"]) == (2, [1])
    conflict = client.delete(f"/api/v1/detectors/{detector_id}/versions/2", headers=tenant.analyst)
    assert conflict.status_code == 409
    back = client.post(f"/api/v1/detectors/{detector_id}/rollback", headers=tenant.analyst).json()
    assert back["current_version"] == 1
    assert client.post(f"/api/v1/detectors/{detector_id}/rollback", headers=tenant.analyst).status_code == 409
    assert client.delete(f"/api/v1/detectors/{detector_id}/versions/2", headers=tenant.analyst).status_code == 204
    assert client.get(f"/api/v1/detectors/{detector_id}/versions/2", headers=tenant.viewer).status_code == 404


def test_bad_feedback_changes_nothing(client: TestClient, make_tenant: object, tenant: Tenant) -> None:
    frame, _ = breastw()
    dataset_id = upload(
        client, tenant.analyst, frame.with_columns(pl.Series("y", ["anomaly"] * 3 + ["maybe"] * (frame.height - 3)))
    )
    detector_id = create(client, tenant, algorithm="iforest")
    url = f"/api/v1/detectors/{detector_id}/feedback"
    beyond = client.post(
        url,
        json={
            "dataset_id": dataset_id,
            "labels": [{"index": 0, "label": "anomaly"}, {"index": frame.height, "label": "normal"}],
        },
        headers=tenant.analyst,
    )
    assert beyond.status_code == 422
    assert beyond.headers["content-type"].startswith("application/problem+json")
    assert beyond.json()["errors"][0]["loc"] == ["body", "labels", 1, "index"]
    column = client.post(url, json={"dataset_id": dataset_id, "label_column": "y"}, headers=tenant.analyst)
    assert column.status_code == 422
    assert "maybe" in column.json()["detail"]
    assert client.get(url, headers=tenant.viewer).json()["items"] == []

    ok = client.post(
        url, json={"dataset_id": dataset_id, "labels": [{"index": 5, "label": "anomaly"}]}, headers=tenant.analyst
    )
    assert ok.status_code == 201
    listed = client.get(url, headers=tenant.viewer).json()["items"]
    assert [(i["index"], i["label"]) for i in listed] == [(5, "anomaly")]
    other = make_tenant()  # type: ignore[operator]
    assert client.get(url, headers=other.viewer).status_code == 404
    assert client.delete(f"{url}/{listed[0]['id']}", headers=other.analyst).status_code == 404
    assert client.delete(f"{url}/{listed[0]['id']}", headers=tenant.analyst).status_code == 204
    # A version number that only another detector has is not this detector's.
    other_detector = create(client, tenant, algorithm="iforest")
    train(client, tenant, other_detector, dataset_id)
    assert client.post(f"/api/v1/detectors/{detector_id}/versions/1/promote", headers=tenant.analyst).status_code == 404


def test_explanations_inline_parquet_and_in_a_job(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = create(client, tenant, algorithm="iforest", parameters={"random_state": 0, "n_estimators": 50})
    train(client, tenant, detector_id, dataset_id)
    records = frame.head(5).to_dicts()
    records[0]["f3"] = 50.0  # one cell far out: it must come first in the row's explanation
    result = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        json={"records": records, "explain": {"top_k": 2}},
        headers=tenant.analyst,
    ).json()
    assert result["explanation_method"] == "isolation_path"
    assert [len(r["explanation"]) for r in result["results"]] == [2] * 5
    assert result["results"][0]["explanation"][0]["feature"] == "f3"

    too_many = frame.to_dicts() * (settings.explain_inline_max_rows // frame.height + 1)
    refused = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        json={"records": too_many, "explain": {"top_k": 1}},
        headers=tenant.analyst,
    )
    assert refused.status_code == 422
    assert "job" in refused.json()["detail"]

    buffer = io.BytesIO()
    frame.head(20).write_parquet(buffer)
    table = pq.read_table(
        io.BytesIO(
            client.post(
                f"/api/v1/detectors/{detector_id}/detect?explain=3",
                content=buffer.getvalue(),
                headers={
                    **tenant.analyst,
                    "Content-Type": "application/vnd.apache.parquet",
                    "Accept": "application/vnd.apache.parquet",
                },
            ).content
        )
    )
    assert {"top_feature_1", "top_contribution_3"} <= set(table.column_names)

    job = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        json={"dataset_id": dataset_id, "explain": {"top_k": 1}},
        headers=tenant.analyst,
    )
    done = wait_for_job(client, job.json()["id"], tenant.analyst, timeout=120)
    rows = client.get(
        f"/api/v1/datasets/{done['result']['result_dataset_id']}/rows?limit=3",
        headers=tenant.viewer,  # type: ignore[index]
    ).json()
    assert {"top_feature_1", "top_contribution_1"} <= set(rows["columns"])


def test_signed_export_and_import(client: TestClient, make_tenant: object, tenant: Tenant) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    source = create(client, tenant, algorithm="hbos")
    train(client, tenant, source, dataset_id)
    exported = client.get(f"/api/v1/detectors/{source}/versions/1/export", headers=tenant.analyst)
    assert exported.status_code == 200
    other = make_tenant()  # type: ignore[operator]
    target = create(client, other, algorithm="hbos")
    url = f"/api/v1/detectors/{target}/versions/import?promote=true"
    octet = {"Content-Type": "application/octet-stream"}
    tampered = bytearray(exported.content)
    tampered[-20] ^= 0xFF
    assert client.post(url, content=bytes(tampered), headers={**other.analyst, **octet}).status_code == 409
    foreign_seed = ml.signing_seed(b"another installation")
    model = ml.fit_detector(
        frame, algorithm="hbos", parameters={}, contamination=0.1, features=FEATURES, preprocessing=ml.Preprocessing()
    )
    foreign = ml.seal_export(model, manifest={"version": 7}, seed=foreign_seed)
    assert client.post(url, content=foreign, headers={**other.analyst, **octet}).status_code == 409
    assert client.get(f"/api/v1/detectors/{target}/versions", headers=other.viewer).json()["items"] == []

    imported = client.post(url, content=exported.content, headers={**other.analyst, **octet})
    assert imported.status_code == 201, imported.text
    assert imported.json()["origin"]["source_version"] == 1
    assert client.get(imported.headers["location"], headers=other.viewer).json()["id"] == imported.json()["id"]
    records = {"records": frame.head(10).to_dicts()}
    a = client.post(f"/api/v1/detectors/{source}/detect", json=records, headers=tenant.analyst).json()
    b = client.post(f"/api/v1/detectors/{target}/detect", json=records, headers=other.analyst).json()
    assert [r["score"] for r in a["results"]] == [r["score"] for r in b["results"]]

    trusted = client.patch(
        "/api/v1/tenant/settings", json={"trusted_model_keys": [ml.public_key(foreign_seed)]}, headers=other.admin
    )
    assert trusted.status_code == 200, trusted.text
    again = client.post(url, content=foreign, headers={**other.analyst, **octet})
    assert again.status_code == 201, again.text
    assert again.json()["version"] == 2
    wrong = create(client, other, algorithm="ecod")
    mismatch = client.post(
        f"/api/v1/detectors/{wrong}/versions/import", content=foreign, headers={**other.analyst, **octet}
    )
    assert mismatch.status_code == 422


def test_api_auto_scores_equal_the_engines(client: TestClient, tenant: Tenant) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = create(client, tenant, parameters={"random_state": 3}, contamination=0.3)
    train(client, tenant, detector_id, dataset_id)
    api = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"records": frame.to_dicts()}, headers=tenant.analyst
    ).json()
    engine = ml.fit_detector(
        frame,
        algorithm="auto",
        parameters={"random_state": 3},
        contamination=0.3,
        features=FEATURES,
        preprocessing=ml.Preprocessing(),
    )
    np.testing.assert_allclose([r["score"] for r in api["results"]], engine.score(frame), rtol=1e-12)
    assert api["threshold"] == engine.threshold
