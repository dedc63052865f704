"""The `auto` ensemble: unsupervised without labels, and labels make it find what no detector can."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from vigil import ml
from vigil.ml.auto import AutoDetector


def hidden_anomalies(seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Anomalies inside the bulk (a thin slab in feature 0 and 1): outlier detectors cannot see them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(1500, 4))
    y = ((np.abs(X[:, 0] - 0.5) < 0.15) & (X[:, 1] > 0)).astype(int)
    return pl.DataFrame(X, schema=["a", "b", "c", "d"]), y


def fit(frame: pl.DataFrame, labels: np.ndarray | None = None, **params: object) -> ml.FittedDetector:
    return ml.fit_detector(
        frame,
        algorithm="auto",
        parameters={"random_state": 0, **params},
        contamination=0.05,
        features=frame.columns,
        preprocessing=ml.Preprocessing(),
        labels=labels,
    )


def test_labels_teach_auto_what_no_detector_sees() -> None:
    train, y_train = hidden_anomalies(0)
    test, y_test = hidden_anomalies(1)
    labels = np.where(y_train == 1, 1, -1)
    labels[np.flatnonzero(y_train == 1)[::2]] = -1  # half the anomalies stay unlabelled
    unsupervised = roc_auc_score(y_test, fit(train).score(test))
    model = fit(train, labels)
    semi = roc_auc_score(y_test, model.score(test))
    assert model.estimator.semi_supervised
    assert model.labels_used > 0
    assert unsupervised < 0.7 < 0.9 < semi, (unsupervised, semi)
    # use_labels=false ignores them: the unsupervised model, bit for bit.
    np.testing.assert_array_equal(fit(train, labels, use_labels=False).score(test), fit(train).score(test))


def test_other_algorithms_ignore_labels() -> None:
    train, y = hidden_anomalies()
    kw = {
        "parameters": {"random_state": 0},
        "contamination": 0.05,
        "features": train.columns,
        "preprocessing": ml.Preprocessing(),
    }
    with_labels = ml.fit_detector(train, algorithm="iforest", labels=np.where(y == 1, 1, -1), **kw)  # type: ignore[arg-type]
    without = ml.fit_detector(train, algorithm="iforest", **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(with_labels.score(train), without.score(train))
    assert with_labels.labels_used == 0


def test_bad_labels_are_refused() -> None:
    train, _ = hidden_anomalies()
    with pytest.raises(ml.TrainingFailed):
        fit(train, np.full(train.height, 2))
    with pytest.raises(ml.MLError):
        fit(train, np.zeros(3, dtype=int))


def test_auto_on_tiny_data_adapts_its_neighbours() -> None:
    X = np.vstack([np.random.default_rng(0).normal(size=(4, 2)), [[9.0, 9.0]]])
    scores = AutoDetector(contamination=0.2, random_state=0).fit(X).decision_scores_
    assert scores.argmax() == 4


def test_unsupervised_vote_is_one_per_family_and_leaves_pca_to_the_classifier() -> None:
    # Three tail detectors must not outvote isolation and neighbours, and PCA (weak alone) only feeds the classifier.
    X = np.vstack([np.random.default_rng(0).normal(size=(300, 3)), np.full((3, 3), 6.0)])
    model = AutoDetector(contamination=0.05, random_state=0).fit(X)
    Z = model.member_scores(X)
    names = [name for name, _, _ in model.members_]
    column = {name: Z[:, names.index(name)] for name in names}
    expected = (column["iforest"] + (column["ecod"] + column["copod"] + column["hbos"]) / 3 + column["knn"]) / 3
    np.testing.assert_allclose(model.decision_function(X), expected, rtol=1e-12)
    assert "pca" in names
