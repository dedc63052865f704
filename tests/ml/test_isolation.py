"""Isolation forests scored tree by tree (`vigil.ml.isolation`): the library's scores bit for bit, the library's way
whenever they could differ, and the direct way once a forest has proved itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from vigil import ml
from vigil.ml.isolation import CHUNK_ROWS, PROOF_ROWS, outlyingness


def _fitted(planted: tuple[pl.DataFrame, np.ndarray], algorithm: str, **parameters: Any) -> ml.FittedDetector:
    frame, _ = planted
    return ml.fit_detector(
        frame,
        algorithm=algorithm,
        parameters=parameters,
        contamination=0.05,
        features=frame.columns,
        preprocessing=ml.Preprocessing(),
    )


def _library(model: ml.FittedDetector, X: np.ndarray) -> np.ndarray:
    """The scores as the library gives them: PyOD's decision_function, or scikit-learn's negated."""
    scores = np.asarray(model.estimator.decision_function(X), dtype=np.float64)
    return scores if model.algorithm == "iforest" else -scores


@pytest.mark.parametrize(
    ("algorithm", "parameters"),
    [
        ("iforest", {}),
        ("iforest", {"max_features": 0.5, "n_estimators": 37, "bootstrap": True}),
        ("sklearn_iforest", {}),
        ("sklearn_iforest", {"max_features": 0.4, "n_estimators": 7}),
    ],
)
@pytest.mark.parametrize("rows", [1, 100, PROOF_ROWS + 1])
def test_scores_equal_the_library_bit_for_bit(
    planted: tuple[pl.DataFrame, np.ndarray], algorithm: str, parameters: dict[str, Any], rows: int
) -> None:
    model = _fitted(planted, algorithm, random_state=3, **parameters)
    X = np.random.default_rng(rows).normal(scale=3.0, size=(rows, planted[0].width))
    for _ in range(2):  # the first call proves the forest, the second takes the direct way
        assert np.array_equal(model.score_matrix(X), _library(model, X))


def test_a_batch_past_one_chunk_scores_as_the_library(planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    model = _fitted(planted, "iforest", random_state=5, n_estimators=7, max_features=0.5)
    X = np.random.default_rng(9).normal(scale=3.0, size=(CHUNK_ROWS + 7, planted[0].width))
    assert np.array_equal(model.score_matrix(X), _library(model, X))


def test_a_proven_forest_no_longer_asks_the_library(planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    model = _fitted(planted, "sklearn_iforest", random_state=0)
    X = np.random.default_rng(1).normal(size=(100, planted[0].width))
    expected = _library(model, X)
    assert np.array_equal(outlyingness(model.estimator, X), expected)  # proves it

    def refuse(_: np.ndarray) -> np.ndarray:
        raise AssertionError("the library was asked again")

    model.estimator.decision_function = refuse
    assert np.array_equal(outlyingness(model.estimator, X), expected)


def test_a_forest_whose_direct_scores_differ_is_left_to_the_library(
    planted: tuple[pl.DataFrame, np.ndarray],
) -> None:
    # As if a scikit-learn release had changed how it scores a forest: the direct way would then be wrong, and the
    # proof on first use must catch it, for that batch and every later one.
    model = _fitted(planted, "iforest", random_state=0)
    forest = model.estimator.detector_
    released = forest._compute_score_samples
    forest._compute_score_samples = lambda X, subsample: np.sqrt(released(X, subsample))
    X = np.random.default_rng(2).normal(size=(50, planted[0].width))
    for _ in range(3):
        assert np.array_equal(model.score_matrix(X), _library(model, X))


@pytest.mark.parametrize(
    "X",
    [
        np.full((3, 6), np.nan),  # the library's own check names the problem
        np.zeros((3, 5)),  # the wrong width
        np.zeros((0, 6)),
        np.zeros(6),
    ],
)
def test_batches_the_direct_way_does_not_take(planted: tuple[pl.DataFrame, np.ndarray], X: np.ndarray) -> None:
    model = _fitted(planted, "iforest", random_state=0)
    assert outlyingness(model.estimator, X) is None


def test_other_detectors_are_left_to_their_library(planted: tuple[pl.DataFrame, np.ndarray]) -> None:
    model = _fitted(planted, "ecod")
    assert outlyingness(model.estimator, np.zeros((3, planted[0].width))) is None
