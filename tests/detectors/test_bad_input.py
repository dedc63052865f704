"""Bad input to detectors: each gets a problem naming what was wrong, and leaves nothing behind."""

from __future__ import annotations

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant, wait_for_job
from tests.detectors.test_workflow import breastw, trained_detector, upload
from tests.ml.test_artifacts import Retired, retired_pickle, signed_artifact
from vigil import ml
from vigil.config import Settings
from vigil.core.secrets import ARTIFACTS, derive_key
from vigil.detectors.artifact_cache import models
from vigil.ml import exchange, provenance


def count(client: TestClient, path: str, headers: dict[str, str]) -> int:
    return len(client.get(path, headers=headers).json()["items"])


def test_unknown_algorithm_and_bad_parameters(client: TestClient, tenant: Tenant) -> None:
    unknown = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "magic"}, headers=tenant.analyst)
    assert unknown.status_code == 422
    assert "magic" in unknown.json()["detail"]
    bad = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "iforest", "parameters": {"n_estimators": 0, "bogus": 1}},
        headers=tenant.analyst,
    )
    assert bad.status_code == 422
    fields = {e["loc"][-1] for e in bad.json()["errors"]}
    assert {"n_estimators", "bogus"} <= fields
    wrong_type = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "knn", "parameters": {"n_neighbors": True}},
        headers=tenant.analyst,
    )
    assert wrong_type.status_code == 422
    assert count(client, "/api/v1/detectors", tenant.viewer) == 0


def test_detect_before_training_is_409(client: TestClient, tenant: Tenant) -> None:
    detector = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "ecod"}, headers=tenant.analyst).json()
    response = client.post(
        f"/api/v1/detectors/{detector['id']}/detect", json={"records": [{"a": 1}]}, headers=tenant.analyst
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/invalid-state"


def test_unusable_features_are_refused_before_any_job(client: TestClient, tenant: Tenant) -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0] * 20, "city": ["a", "b", "c"] * 20})
    dataset_id = upload(client, tenant.analyst, frame)
    detector = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "iforest", "features": ["x", "city", "nope"]},
        headers=tenant.analyst,
    ).json()
    response = client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert response.status_code == 422
    messages = {e["loc"][-1]: e["msg"] for e in response.json()["errors"]}
    assert "categorical" in messages["city"]
    assert "no such column" in messages["nope"]
    assert count(client, "/api/v1/jobs", tenant.viewer) == 0
    assert client.get(f"/api/v1/detectors/{detector['id']}", headers=tenant.viewer).json()["status"] == "created"
    # With an encoding the same column is fine.
    client.patch(
        f"/api/v1/detectors/{detector['id']}",
        json={"features": ["x", "city"], "preprocessing": {"categorical": "onehot"}},
        headers=tenant.analyst,
    )
    job = client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert wait_for_job(client, job.json()["id"], tenant.analyst)["status"] == "succeeded"


def test_records_must_match_the_features(client: TestClient, tenant: Tenant) -> None:
    frame, _ = breastw()
    detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
    row = frame.row(0, named=True)
    missing = {k: v for k, v in row.items() if k != "f3"}
    response = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"records": [missing]}, headers=tenant.analyst
    )
    assert response.status_code == 422
    assert "'f3'" in response.json()["detail"]
    extra = {**row, "surprise": 1}
    response = client.post(f"/api/v1/detectors/{detector_id}/detect", json={"records": [extra]}, headers=tenant.analyst)
    assert response.status_code == 422
    assert "surprise" in response.json()["detail"]
    text = '{"records": [{' + ", ".join(f'"f{i}": {"Infinity" if i == 2 else 1.0}' for i in range(9)) + "}]}"
    response = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        content=text,
        headers={**tenant.analyst, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    nulls = {**row, "f1": None}
    ok = client.post(f"/api/v1/detectors/{detector_id}/detect", json={"records": [nulls]}, headers=tenant.analyst)
    assert ok.status_code == 200, ok.text  # missing values are imputed (median by default)


def test_a_training_that_fails_says_why(client: TestClient, tenant: Tenant) -> None:
    dataset_id = upload(client, tenant.analyst, pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}))
    detector = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "knn", "parameters": {"n_neighbors": 50}},
        headers=tenant.analyst,
    ).json()
    job = client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    finished = wait_for_job(client, job.json()["id"], tenant.analyst)
    assert finished["status"] == "failed"
    assert finished["error"]["detail"]  # type: ignore[index]
    state = client.get(f"/api/v1/detectors/{detector['id']}", headers=tenant.viewer).json()
    assert state["status"] == "failed"
    assert state["status_reason"]


def test_a_tampered_model_is_refused_never_loaded(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    frame, _ = breastw()
    detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
    version = client.get(f"/api/v1/detectors/{detector_id}/versions", headers=tenant.viewer).json()["items"][0]
    path = next(settings.blob_root.rglob(f"{version['job_id']}.vmdl"))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    # Dropped from the process's model cache, so this load reads the tampered file.
    models.forget([str(path.relative_to(settings.blob_root))])
    response = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"records": frame.head(2).to_dicts()}, headers=tenant.analyst
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/artifact-integrity"


def test_a_model_written_by_other_library_versions_is_incompatible_not_tampered(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    frame, _ = breastw()
    detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
    version = client.get(f"/api/v1/detectors/{detector_id}/versions", headers=tenant.viewer).json()["items"][0]
    path = next(settings.blob_root.rglob(f"{version['job_id']}.vmdl"))
    secret = settings.secret_key.get_secret_value().encode()  # type: ignore[union-attr]
    ours = provenance.library_versions()
    # Genuine (signed with the server's key), but its pickle needs a class these library versions do not have.
    written = {**ours, "scikit-learn": "0.24.2"}
    path.write_bytes(signed_artifact(retired_pickle(), key=derive_key(secret, ARTIFACTS), written_by=written))
    models.forget([str(path.relative_to(settings.blob_root))])
    response = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"records": frame.head(2).to_dicts()}, headers=tenant.analyst
    )
    assert response.status_code == 409
    body = response.json()
    assert body["type"] == "/problems/artifact-incompatible"
    assert body["written_by"] == {"scikit-learn": "0.24.2"}
    assert body["read_by"] == {"scikit-learn": ours["scikit-learn"]}
    assert "scikit-learn 0.24.2" in body["detail"]
    assert "Retrain" in body["detail"]
    described = client.get("/problems/artifact-incompatible").json()
    assert "written_by" in described["description"]


def test_an_export_of_other_library_versions_is_incompatible_and_not_imported(
    client: TestClient, tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=tenant.analyst)
    detector_id = detector.json()["id"]
    seed = ml.signing_seed(settings.secret_key.get_secret_value().encode())  # type: ignore[union-attr]
    ours = provenance.library_versions()
    with monkeypatch.context() as exporter:  # this installation's key, another installation's libraries
        exporter.setattr(exchange, "library_versions", lambda: {**ours, "pyod": "1.0.0"})
        export = ml.seal_export(Retired(), manifest={"version": 1}, seed=seed)  # type: ignore[arg-type]
    response = client.post(
        f"/api/v1/detectors/{detector_id}/versions/import",
        content=export,
        headers={**tenant.analyst, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/artifact-incompatible"
    assert (response.json()["written_by"], response.json()["read_by"]) == ({"pyod": "1.0.0"}, {"pyod": ours["pyod"]})
    assert "Export it again" in response.json()["detail"]
    assert client.get(f"/api/v1/detectors/{detector_id}/versions", headers=tenant.viewer).json()["items"] == []
