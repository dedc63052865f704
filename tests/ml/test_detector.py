"""fit_detector and FittedDetector.score beyond the shared conformance checks: exactness, failures, mixed data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from pyod.models.iforest import IForest

from tests.ml.conftest import planted_data
from vigil import ml


def fit(frame: pl.DataFrame, algorithm: str = "iforest", **options: object) -> ml.FittedDetector:
    return ml.fit_detector(
        frame,
        algorithm=algorithm,
        parameters=options.pop("parameters", {}),  # type: ignore[arg-type]
        contamination=options.pop("contamination", 0.1),  # type: ignore[arg-type]
        features=options.pop("features", frame.columns),  # type: ignore[arg-type]
        preprocessing=ml.Preprocessing(**options),  # type: ignore[arg-type]
    )


def test_iforest_equals_an_independent_pyod_model() -> None:
    frame, _ = planted_data(seed=1)
    model = fit(frame, parameters={"n_estimators": 50, "random_state": 7}, contamination=0.35)
    X = frame.to_numpy()
    independent = IForest(n_estimators=50, random_state=7, contamination=0.35).fit(X)
    np.testing.assert_array_equal(model.score(frame), model.estimator.decision_function(X))
    np.testing.assert_allclose(model.score(frame), independent.decision_function(X), rtol=1e-12)
    assert model.threshold == independent.threshold_


def test_scores_of_integer_columns_equal_decision_function_of_their_matrix() -> None:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame(rng.integers(0, 10, size=(200, 3)), schema=["a", "b", "c"])
    model = fit(frame, parameters={"random_state": 0})
    np.testing.assert_array_equal(model.score(frame), model.estimator.decision_function(frame.to_numpy()))


def test_more_neighbours_than_rows_is_a_training_failure_with_a_reason() -> None:
    with pytest.raises(ml.TrainingFailed, match="4 rows") as failed:
        fit(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), "knn", parameters={"n_neighbors": 50})
    assert "n_neighbors" in str(failed.value)
    assert isinstance(failed.value, ml.MLError)


def test_too_few_rows_bad_contamination_and_no_features_are_refused() -> None:
    with pytest.raises(ml.TrainingFailed, match="at least 2"):
        fit(pl.DataFrame({"x": [1.0]}))
    with pytest.raises(ml.MLError, match="contamination"):
        fit(pl.DataFrame({"x": [1.0, 2.0]}), contamination=0.9)
    with pytest.raises(ml.InvalidFeatures):
        fit(pl.DataFrame({"x": [1.0, 2.0]}), features=[])


def test_configuration_is_validated_again_at_fit() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(ml.UnknownAlgorithm):
        fit(frame, "magic")
    with pytest.raises(ml.InvalidParameters):
        fit(frame, parameters={"n_estimators": 0})
    assert fit(frame, parameters={"n_estimators": 5}).parameters["max_features"] == 1.0


def test_nulls_at_score_time_are_imputed_and_inf_is_refused() -> None:
    frame, _ = planted_data()
    model = fit(frame, parameters={"random_state": 0})
    row = frame.head(1)
    with_null = row.with_columns(pl.lit(None, dtype=pl.Float64).alias("x1"))
    median = frame.get_column("x1").median()
    np.testing.assert_array_equal(model.score(with_null), model.score(row.with_columns(pl.lit(median).alias("x1"))))
    with pytest.raises(ml.InvalidFeatures) as refused:
        model.score(row.with_columns(pl.lit(float("inf")).alias("x2")))
    assert refused.value.errors[0]["loc"] == ["features", "x2"]
    with pytest.raises(ml.InvalidFeatures):
        model.score(row.drop("x3"))


def test_categorical_features_train_and_score_including_unseen_categories() -> None:
    rng = np.random.default_rng(5)
    frame = pl.DataFrame({"x": rng.normal(size=300), "city": rng.choice(["a", "b", "c"], size=300)})
    for encoding in ("onehot", "ordinal"):
        model = fit(frame, "knn", categorical=encoding, scaling="standard")
        scores = model.score(pl.DataFrame({"x": [0.0, 0.0], "city": ["a", "atlantis"]}))
        assert scores.shape == (2,)
        assert np.isfinite(scores).all()


def test_score_summary_is_json_ready() -> None:
    frame, _ = planted_data()
    model = fit(frame, "ecod", contamination=0.05)
    summary = json.loads(json.dumps(model.score_summary))
    assert summary["min"] <= summary["p50"] <= summary["threshold"] <= summary["max"]
    assert summary["anomaly_rate"] == pytest.approx(0.05, abs=0.01)
