"""Detection quality, as a user judges it: explanations that name the planted feature, feedback that makes the next
version measurably better, and versions compared, promoted and rolled back — all through the public API."""

from __future__ import annotations

import numpy as np
import polars as pl

from vigil.client import VigilClient
from vigil_validation.checks import eventually, watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant, Recorder

FEATURES = ["a", "b", "c", "d"]


def train(
    client: VigilClient, detector_id: str, dataset_id: str, config: ValidationConfig, *, promote: bool = True
) -> None:
    job = client.detectors.train(detector_id, dataset_id, promote=promote)
    final, _, _ = watch_job(client, job["id"], timeout=config.api.job_timeout_s, poll=config.api.job_poll_interval_s)
    assert final["status"] == "succeeded", final


def hidden_anomalies(seed: int) -> pl.DataFrame:
    """Anomalies *inside* the bulk (a thin slab of feature a where b > 0): outlier detectors barely see them,
    labels teach them. `label` is the known answer, not a feature."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1200, len(FEATURES)))
    y = (np.abs(X[:, 0] - 0.5) < 0.15) & (X[:, 1] > 0)
    return pl.DataFrame(X, schema=FEATURES).with_columns(pl.Series("label", np.where(y, "anomaly", "normal")))


def test_explanations_name_the_planted_feature(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, len(FEATURES)))
    planted = rng.normal(size=(12, len(FEATURES)))
    shifted = np.arange(12) % len(FEATURES)
    planted[np.arange(12), shifted] += rng.choice([-1.0, 1.0], size=12) * 7
    analyst = tenant.analyst
    dataset = analyst.datasets.upload(pl.DataFrame(X, schema=FEATURES), name="planted")
    for algorithm in ("iforest", "ecod", "knn", "auto"):
        detector = analyst.detectors.create(
            name=f"explain-{algorithm}", algorithm=algorithm, features=FEATURES, contamination=0.05
        )
        train(analyst, detector["id"], dataset["id"], validation_config)
        result = analyst.detect(detector["id"], records=pl.DataFrame(planted, schema=FEATURES).to_dicts(), explain=1)
        tops = [row["explanation"][0]["feature"] for row in result["results"]]
        share = float(np.mean([t == FEATURES[j] for t, j in zip(tops, shifted, strict=True)]))
        record(f"explanation_top1_{algorithm}", share)
        assert share >= 0.9, f"{algorithm} ({result['explanation_method']}): planted feature first for {share:.0%}"


def test_feedback_then_retrain_gives_a_better_version_that_can_be_promoted_and_rolled_back(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder, staleness_bound: float
) -> None:
    analyst = tenant.analyst
    frame = hidden_anomalies(0)
    dataset = analyst.datasets.upload(frame, name="hidden-anomalies")
    detector = analyst.detectors.create(
        name="auto-with-feedback", features=FEATURES, contamination=0.05, parameters={"random_state": 0}
    )
    assert detector["algorithm"] == "auto"
    train(analyst, detector["id"], dataset["id"], validation_config)
    assert analyst.detectors.version(detector["id"], 1)["metrics"] is None

    # The analyst labels every third row by index, then the rest from the dataset's label column.
    labels = frame["label"].to_list()
    some = {i: labels[i] for i in range(0, len(labels), 3)}
    summary = analyst.detectors.feedback(detector["id"], dataset_id=dataset["id"], labels=some)
    assert summary["added"] == len(some)
    summary = analyst.detectors.feedback(detector["id"], dataset_id=dataset["id"], label_column="label")
    assert summary["anomalies"] == labels.count("anomaly")
    train(analyst, detector["id"], dataset["id"], validation_config, promote=False)
    assert tenant.viewer.detectors.get(detector["id"])["current_version"] == 1

    comparison = analyst.detectors.compare(detector["id"], 1, 2, dataset_id=dataset["id"])
    before, after = comparison["a"]["metrics"]["roc_auc"], comparison["b"]["metrics"]["roc_auc"]
    record("roc_auc_before_feedback", before)
    record("roc_auc_after_feedback", after)
    assert after > before + 0.2, comparison
    assert comparison["metric_deltas"]["roc_auc"] > 0.2
    assert analyst.detectors.version(detector["id"], 2)["metrics"]["holdout"]["roc_auc"] == after

    # A promotion or rollback reaches the other API processes' scoring within the target's staleness bound.
    assert analyst.detectors.promote(detector["id"], 2)["current_version"] == 2
    scored = eventually(
        lambda: analyst.detect(detector["id"], records=hidden_anomalies(1).select(FEATURES).head(5).to_dicts()),
        lambda result: result["model_version"] == 2,
        within_s=staleness_bound,
    )
    assert scored["model_version"] == 2
    assert analyst.detectors.rollback(detector["id"])["current_version"] == 1
    rolled_back = eventually(
        lambda: analyst.detect(detector["id"], records=frame.select(FEATURES).head(1).to_dicts()),
        lambda result: result["model_version"] == 1,
        within_s=staleness_bound,
    )
    assert rolled_back["model_version"] == 1
