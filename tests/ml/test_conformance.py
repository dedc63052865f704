"""Every catalog entry through the same checks (the scikit-learn `check_estimator` habit).

A new detector is covered by adding its catalog entry: fitting, the score contract (shape, dtype, finite, equal
to the library's own decision_function with the sign convention), the threshold rule, accuracy on planted
anomalies, artifact round trip and refusal of tampered bytes, and its parameter schema.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from pyod.models.base import BaseDetector
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor

from tests.ml.conftest import CONTAMINATION
from vigil import ml

ALGORITHMS = list(ml.CATALOG)
KEY = b"conformance-secret"
AUC_FLOOR = 0.9


def defaults_with_seed(entry: ml.CatalogEntry) -> dict[str, Any]:
    return {"random_state": 0} if any(p.name == "random_state" for p in entry.params) else {}


@pytest.fixture(scope="module", params=ALGORITHMS)
def fitted(request: pytest.FixtureRequest, planted: tuple[pl.DataFrame, np.ndarray]) -> ml.FittedDetector:
    frame, _ = planted
    entry = ml.get_entry(request.param)
    return ml.fit_detector(
        frame,
        algorithm=entry.name,
        parameters=defaults_with_seed(entry),
        contamination=CONTAMINATION,
        features=frame.columns,
        preprocessing=ml.Preprocessing(),
    )


def library_scores(estimator: Any, matrix: np.ndarray) -> np.ndarray:
    """The library's own decision_function, turned so that higher is more anomalous."""
    if isinstance(estimator, BaseDetector):
        return np.asarray(estimator.decision_function(matrix))
    assert type(estimator).__module__.startswith("sklearn.")
    return -np.asarray(estimator.decision_function(matrix))


def library_training_scores(estimator: Any, matrix: np.ndarray) -> np.ndarray:
    if isinstance(estimator, BaseDetector):
        return np.asarray(estimator.decision_scores_)
    if isinstance(estimator, LocalOutlierFactor):
        return -(np.asarray(estimator.negative_outlier_factor_) - float(estimator.offset_))
    return -np.asarray(estimator.decision_function(matrix))


def test_scores_have_the_right_shape_and_type(fitted: ml.FittedDetector, planted: tuple[pl.DataFrame, Any]) -> None:
    frame, _ = planted
    scores = fitted.score(frame)
    assert scores.shape == (frame.height,)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert fitted.features == frame.columns
    assert fitted.n_train_rows == frame.height


def test_scores_are_the_librarys_own(fitted: ml.FittedDetector, planted: tuple[pl.DataFrame, Any]) -> None:
    frame, _ = planted
    # Default preprocessing on clean numeric data is a no-op: the frame's own matrix (row-major) reaches the estimator.
    X = np.ascontiguousarray(frame.select(fitted.features).to_numpy())
    np.testing.assert_array_equal(fitted.preprocessor.transform(frame), X)
    np.testing.assert_array_equal(fitted.score(frame), library_scores(fitted.estimator, X))


def test_threshold_is_the_contamination_quantile(fitted: ml.FittedDetector, planted: tuple[pl.DataFrame, Any]) -> None:
    frame, _ = planted
    training = library_training_scores(fitted.estimator, frame.to_numpy())
    assert fitted.threshold == pytest.approx(np.percentile(training, 100 * (1 - CONTAMINATION)), rel=1e-12)
    if isinstance(fitted.estimator, BaseDetector):
        assert fitted.threshold == fitted.estimator.threshold_
    assert fitted.score_summary["threshold"] == fitted.threshold
    assert fitted.score_summary["anomaly_rate"] == pytest.approx(CONTAMINATION, abs=0.01)


def test_finds_the_planted_anomalies(fitted: ml.FittedDetector, planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, labels = planted
    assert roc_auc_score(labels, fitted.score(frame)) >= AUC_FLOOR


def test_scores_select_features_by_name(fitted: ml.FittedDetector, planted: tuple[pl.DataFrame, Any]) -> None:
    frame, _ = planted
    shuffled = frame.select(reversed(frame.columns)).with_columns(pl.lit("ignored").alias("note"))
    np.testing.assert_array_equal(fitted.score(shuffled), fitted.score(frame))
    assert fitted.score(frame.head(0)).shape == (0,)


def test_artifact_round_trips(fitted: ml.FittedDetector, planted: tuple[pl.DataFrame, Any]) -> None:
    frame, _ = planted
    loaded = ml.load_artifact(ml.dump_artifact(fitted, key=KEY), key=KEY)
    np.testing.assert_array_equal(loaded.score(frame), fitted.score(frame))
    assert (loaded.threshold, loaded.features, loaded.score_summary) == (
        fitted.threshold,
        fitted.features,
        fitted.score_summary,
    )


def test_tampered_or_foreign_artifact_is_refused(fitted: ml.FittedDetector) -> None:
    data = bytearray(ml.dump_artifact(fitted, key=KEY))
    data[-10] ^= 0xFF
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(bytes(data), key=KEY)
    data[-10] ^= 0xFF
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(bytes(data), key=b"another-secret")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_default_validates_and_builds(algorithm: str) -> None:
    entry = ml.get_entry(algorithm)
    defaults = {p.name: p.default for p in entry.params}
    assert ml.validate_parameters(algorithm, defaults) == defaults == ml.validate_parameters(algorithm, {})
    # Parameter names are the library's own: the estimator built from them reports the same values back.
    built = entry.factory(defaults, 0.1).get_params()
    assert {name: built[name] for name in defaults} == defaults
    takes_seed = "random_state" in built
    assert takes_seed == ("random_state" in defaults), "random_state must be offered wherever the library takes it"


def out_of_bounds(param: ml.Param) -> list[Any]:
    """Values the schema must refuse for this parameter."""
    values: list[Any] = []
    if param.type in ("int", "float"):
        values.append(True)  # a bool is never a number here
        if param.minimum is not None:
            values.append(param.minimum if param.exclusive_minimum else param.minimum - 1)
        if param.maximum is not None:
            values.append(param.maximum if param.exclusive_maximum else param.maximum + 1)
        values.append("1")
    elif param.type == "bool":
        values += [1, "true"]
    else:
        values += ["not-a-choice", 1]
    if param.default is not None:
        values.append(None)
    return values


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bad_parameter_values_are_refused(algorithm: str) -> None:
    entry = ml.get_entry(algorithm)
    for param in entry.params:
        for value in out_of_bounds(param):
            with pytest.raises(ml.InvalidParameters) as refused:
                ml.validate_parameters(algorithm, {param.name: value})
            assert [e["loc"] for e in refused.value.errors] == [["body", "parameters", param.name]], value
    with pytest.raises(ml.InvalidParameters):
        ml.validate_parameters(algorithm, {"no_such_parameter": 1})
