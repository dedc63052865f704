"""The complete anomaly-detection workflow, as a user runs it: upload real data, configure a detector, train it
as a job, score inline records and the whole dataset, and check the scores find the known anomalies."""

from __future__ import annotations

import time

import pytest

from vigil.client import VigilClient
from vigil.client.models import Job
from vigil_validation.checks import roc_auc, watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant, Recorder
from vigil_validation.testdata import LabelledData

# Two rows of breastw's feature space: all cells normal, and all cells grossly abnormal.
BENIGN = {
    "clump_thickness": 1,
    "cell_size": 1,
    "cell_shape": 1,
    "adhesion": 1,
    "epithelial_size": 2,
    "bare_nuclei": 1,
    "chromatin": 1,
    "nucleoli": 1,
    "mitoses": 1,
}
MALIGNANT = {
    "clump_thickness": 10,
    "cell_size": 10,
    "cell_shape": 10,
    "adhesion": 8,
    "epithelial_size": 7,
    "bare_nuclei": 10,
    "chromatin": 9,
    "nucleoli": 7,
    "mitoses": 1,
}


def train(client: VigilClient, detector_id: str, dataset_id: str, config: ValidationConfig, record: Recorder) -> Job:
    """Trains through the job API, checking the job's life: queued/running → succeeded at 100%."""
    started = time.perf_counter()
    job = client.detectors.train(detector_id, dataset_id)
    assert job["status"] in ("queued", "running", "succeeded"), job
    final, statuses, progress = watch_job(
        client, job["id"], timeout=config.api.job_timeout_s, poll=config.api.job_poll_interval_s
    )
    record("training_time", time.perf_counter() - started, "s")
    assert final["status"] == "succeeded", final
    assert set(statuses) <= {"queued", "running", "succeeded"}, statuses
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert final["progress"] == pytest.approx(100), final
    assert final["finished_at"], final
    assert final["error"] is None, final
    return final


@pytest.mark.smoke
def test_csv_upload_train_and_detect_finds_the_malignant_cells(
    tenant: ProvisionedTenant,
    labelled_data: LabelledData,
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    settings = validation_config.test_data
    analyst = tenant.analyst
    dataset = analyst.datasets.upload(labelled_data.csv, name="breastw", media_type="text/csv")
    assert dataset["rows"] == labelled_data.frame.height
    assert dataset["columns"] == labelled_data.frame.width
    assert {c["name"] for c in dataset["schema"]} == set(labelled_data.frame.columns)

    algorithm = settings.algorithms[0]
    detector = analyst.detectors.create(
        name=f"breastw-{algorithm}",
        algorithm=algorithm,
        contamination=settings.contamination,
        features=labelled_data.features,
    )
    assert (detector["status"], detector["current_version"]) == ("created", None), detector
    train(analyst, detector["id"], dataset["id"], validation_config, record)

    trained = tenant.viewer.detectors.get(detector["id"])
    assert (trained["status"], trained["current_version"]) == ("trained", 1), trained
    versions = tenant.viewer.detectors.versions(detector["id"])["items"]
    assert [v["version"] for v in versions] == [1]
    assert versions[0]["training_rows"] == labelled_data.frame.height
    assert versions[0]["features"] == labelled_data.features

    # Inline records: the grossly abnormal row is flagged, the normal one is not.
    started = time.perf_counter()
    inline = analyst.detect(detector["id"], records=[BENIGN, MALIGNANT])
    record("inline_detect_latency", (time.perf_counter() - started) * 1000, "ms")
    assert (inline["total"], inline["model_version"]) == (2, 1), inline
    benign, malignant = inline["results"]
    assert malignant["score"] > benign["score"], inline
    assert (benign["is_anomaly"], malignant["is_anomaly"]) == (False, True), inline
    assert inline["anomalies"] == 1

    # The whole stored dataset, as a job whose result is a new dataset: the rows plus score and is_anomaly.
    job = analyst.detect(detector["id"], dataset_id=dataset["id"])
    final, _, _ = watch_job(
        analyst, job["id"], timeout=validation_config.api.job_timeout_s, poll=validation_config.api.job_poll_interval_s
    )
    assert final["status"] == "succeeded", final
    result = final["result"]
    assert result["total"] == labelled_data.frame.height, result
    rows = tenant.viewer.datasets.all_rows(result["result_dataset_id"])
    assert len(rows) == labelled_data.frame.height
    assert {"score", "is_anomaly", settings.label_column} <= set(rows[0]), rows[0]
    assert sum(bool(r["is_anomaly"]) for r in rows) == result["anomalies"]
    auc = roc_auc([int(r[settings.label_column]) for r in rows], [float(r["score"]) for r in rows])
    record(f"roc_auc_{algorithm}", auc)
    assert auc >= settings.min_roc_auc, f"{algorithm} ROC-AUC {auc:.3f} < {settings.min_roc_auc}"


def test_parquet_upload_and_frame_detection_with_other_algorithms(
    tenant: ProvisionedTenant,
    labelled_data: LabelledData,
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    settings = validation_config.test_data
    others = settings.algorithms[1:] or settings.algorithms
    analyst = tenant.analyst
    dataset = analyst.datasets.upload(labelled_data.frame, name="breastw-parquet")
    assert dataset["rows"] == labelled_data.frame.height
    assert dataset["source_format"].lower().startswith("parquet"), dataset
    catalog = {entry["name"] for entry in analyst.algorithms()}
    for algorithm in others:
        assert algorithm in catalog, f"{algorithm} is not in the catalog {sorted(catalog)}"
        detector = analyst.detectors.create(
            name=f"breastw-{algorithm}",
            algorithm=algorithm,
            contamination=settings.contamination,
            features=labelled_data.features,
        )
        train(analyst, detector["id"], dataset["id"], validation_config, record)
        # The frame goes as a Parquet body, label column included: the detector uses only its features.
        scored = analyst.detect(detector["id"], frame=labelled_data.frame)
        assert scored["total"] == labelled_data.frame.height, scored
        assert [r["index"] for r in scored["results"]] == list(range(labelled_data.frame.height))
        auc = roc_auc(labelled_data.labels, [r["score"] for r in scored["results"]])
        record(f"roc_auc_{algorithm}", auc)
        assert auc >= settings.min_roc_auc, f"{algorithm} ROC-AUC {auc:.3f} < {settings.min_roc_auc}"
