"""KDE's density queries in slices (ml/sliced_kde.py): no single call into scikit-learn's tree, which holds the
interpreter lock throughout, evaluates more than `PAIRS_PER_SLICE` kernels; the scores are PyOD's own."""

from __future__ import annotations

import numpy as np
import pytest
from pyod.models import kde as pyod_kde
from sklearn.neighbors import KernelDensity

from vigil import ml
from vigil.ml import sliced_kde


def test_each_query_is_bounded_and_the_scores_are_pyods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sliced_kde, "PAIRS_PER_SLICE", 2_000)
    X = np.random.default_rng(0).normal(size=(400, 5))
    calls: list[int] = []
    score_samples = KernelDensity.score_samples

    def counted(self: KernelDensity, rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return np.asarray(score_samples(self, rows))

    monkeypatch.setattr(KernelDensity, "score_samples", counted)
    model = sliced_kde.KDE().fit(X)
    scores = model.decision_function(X[:130])
    assert max(calls) * len(X) <= 2_000  # 5 rows of 400 per call
    assert sum(calls) == 400 + 130
    calls.clear()
    reference = pyod_kde.KDE().fit(X)
    assert calls == [400]  # PyOD's: every training row in one call
    assert np.array_equal(model.decision_scores_, reference.decision_scores_)
    assert np.array_equal(scores, reference.decision_function(X[:130]))


def test_the_catalogs_kde_is_the_sliced_one() -> None:
    estimator = ml.get_entry("kde").factory(ml.validate_parameters("kde", {}), 0.1)
    assert isinstance(estimator, sliced_kde.KDE)
    assert isinstance(estimator.kde_, sliced_kde.SlicedKernelDensity)


def test_the_lock_is_handed_over_between_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    # Slicing alone left a waiting thread starved (sliced_kde.yield_lock): each slice but the first yields first.
    monkeypatch.setattr(sliced_kde, "PAIRS_PER_SLICE", 2_000)
    X = np.random.default_rng(0).normal(size=(400, 5))
    model = sliced_kde.KDE().fit(X)
    events: list[str] = []
    score_samples = KernelDensity.score_samples

    def counted(self: KernelDensity, rows: np.ndarray) -> np.ndarray:
        events.append("slice")
        return np.asarray(score_samples(self, rows))

    monkeypatch.setattr(KernelDensity, "score_samples", counted)
    monkeypatch.setattr(sliced_kde, "yield_lock", lambda: events.append("yield"))
    model.decision_function(X[:13])  # 5 rows a slice: 3 slices
    assert events == ["slice", "yield", "slice", "yield", "slice"]
