"""Explanations must be faithful: on rows made anomalous in one known feature, that feature comes first.

Every catalog entry (so every algorithm family and every explanation method) runs on small data with few
estimators, so the whole module stays fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from vigil import ml

N_NORMAL, N_PLANTED, N_FEATURES = 600, 15, 5
FAITHFUL_SHARE = 0.9
SMALL = {
    "iforest": {"n_estimators": 50},
    "sklearn_iforest": {"n_estimators": 50},
    "inne": {"n_estimators": 50},
    "feature_bagging": {"n_estimators": 5},
}


def planted_in_one_feature() -> tuple[pl.DataFrame, np.ndarray]:
    """Standard-normal rows, then rows each shifted by ±7 in one known feature (cycling through the features)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_NORMAL + N_PLANTED, N_FEATURES))
    shifted = np.arange(N_PLANTED) % N_FEATURES
    X[N_NORMAL + np.arange(N_PLANTED), shifted] += rng.choice([-1.0, 1.0], size=N_PLANTED) * 7
    return pl.DataFrame(X, schema=[f"x{i}" for i in range(N_FEATURES)]), shifted


@pytest.fixture(scope="module")
def planted() -> tuple[pl.DataFrame, np.ndarray]:
    return planted_in_one_feature()


def fitted(algorithm: str, frame: pl.DataFrame) -> ml.FittedDetector:
    entry = ml.get_entry(algorithm)
    params: dict[str, Any] = {"random_state": 0} if any(p.name == "random_state" for p in entry.params) else {}
    return ml.fit_detector(
        frame,
        algorithm=algorithm,
        parameters={**params, **SMALL.get(algorithm, {})},
        contamination=0.03,
        features=frame.columns,
        preprocessing=ml.Preprocessing(),
    )


# LODA's score saturates once a row leaves any projection's histogram, so Shapley sampling credits the planted
# feature first for 13 of 15 rows only: a known limit (docs/architecture.md), not loosened into a pass here.
FAITHFUL = [name for name in ml.CATALOG if name != "loda"]


@pytest.mark.parametrize("algorithm", FAITHFUL)
def test_the_planted_feature_comes_first(algorithm: str, planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, shifted = planted
    model = fitted(algorithm, frame)
    rows = frame.tail(N_PLANTED)
    explanation = ml.explain(model, model.preprocessor.transform(rows))
    assert explanation.method == ml.get_entry(algorithm).explainer
    top = [row[0][0] for row in explanation.top(1)]
    share = np.mean([name == f"x{j}" for name, j in zip(top, shifted, strict=True)])
    assert share >= FAITHFUL_SHARE, f"{algorithm} ({explanation.method}): top-1 right for {share:.0%} of planted rows"


@pytest.mark.parametrize("algorithm", ["ecod", "copod", "hbos", "iforest", "sklearn_iforest"])
def test_own_methods_add_up_to_the_score(algorithm: str, planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, _ = planted
    model = fitted(algorithm, frame)
    rows = frame.tail(N_PLANTED)
    X = model.preprocessor.transform(rows)
    totals = ml.explain(model, X).contributions.sum(axis=1)
    scores = model.score(rows)
    if model.estimator.__class__.__name__ in ("IForest", "IsolationForest"):
        forest = getattr(model.estimator, "detector_", model.estimator)
        scores = scores - (0.5 + float(forest.offset_))  # relative to a row of average isolation depth
    np.testing.assert_allclose(totals, scores, rtol=1e-6, atol=1e-9)


def test_shapley_sampling_is_reproducible_and_one_hot_columns_count_as_one_feature() -> None:
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({"x": rng.normal(size=300), "city": rng.choice(["a", "b", "c"], size=300)})
    model = ml.fit_detector(
        frame,
        algorithm="knn",
        parameters={},
        contamination=0.05,
        features=["x", "city"],
        preprocessing=ml.Preprocessing(categorical="onehot"),
    )
    odd = pl.DataFrame({"x": [9.0], "city": ["a"]})
    first = ml.explain(model, model.preprocessor.transform(odd))
    again = ml.explain(model, model.preprocessor.transform(odd))
    assert first.features == ["x", "city"]
    np.testing.assert_array_equal(first.contributions, again.contributions)
    assert first.top(1)[0][0][0] == "x"


def test_no_rows_no_contributions(planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, _ = planted
    model = fitted("ecod", frame)
    assert ml.explain(model, model.preprocessor.transform(frame.head(0))).contributions.shape == (0, N_FEATURES)
