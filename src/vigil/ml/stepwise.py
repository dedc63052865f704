"""Fits that say how far they are, for the detectors whose library allows it: an isolation forest grown in increments
of trees, the `auto` ensemble member by member. A catalog entry names its way (`CatalogEntry.fit_with_progress`);
the others fit in one call and move at stage boundaries.

Growing a forest in steps gives the very model one fit gives: scikit-learn's warm start advances the random state
past the trees it already has, so each new tree gets the seed it would have had (checked, score for score, in
`tests/ml/test_stepwise.py`). The contamination's offset, which a fit computes by scoring the training rows, is
computed once at the end instead of at every step.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.ml.entry import Float64Array

__all__ = ["STEPS", "FitProgress", "fit_auto", "grow_pyod_forest", "grow_sklearn_forest"]

FitProgress = Callable[[float], None]
"""Called with the share of the fit done, 0–1. It may raise (a cancelled job): the fit stops there."""
# Reports per fit: each step re-walks the trees grown so far (cheap), and more would not be seen by anyone.
STEPS = 10


def _sizes(total: int) -> list[int]:
    """How many trees after each step: about a tenth more each time, the last step reaching `total`.

    >>> _sizes(100), _sizes(3)
    ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], [1, 2, 3])
    """
    return sorted({max(1, -(-total * step // STEPS)) for step in range(1, STEPS + 1)})


def grow_sklearn_forest(forest: Any, X: Float64Array, y: npt.ArrayLike | None, progress: FitProgress) -> None:
    """Fits a scikit-learn `IsolationForest` as `forest.fit(X)` would, reporting after each increment of trees."""
    del y  # unsupervised
    total, contamination = int(forest.n_estimators), forest.contamination
    # The forest works on float32: converted once here rather than at each step.
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    forest.set_params(warm_start=True, contamination="auto")
    try:
        for size in _sizes(total):
            forest.set_params(n_estimators=size)
            forest.fit(X32)
            progress(size / total)
    finally:
        forest.set_params(warm_start=False, contamination=contamination, n_estimators=total)
    if contamination == "auto":
        forest.offset_ = -0.5
    else:
        forest.offset_ = np.percentile(forest.score_samples(X32), 100.0 * contamination)


def grow_pyod_forest(detector: Any, X: Float64Array, y: npt.ArrayLike | None, progress: FitProgress) -> None:
    """Fits PyOD's `IForest` as its `fit(X)` would — the same scikit-learn forest, then PyOD's scores and
    threshold — growing the forest in increments."""
    # Imported when first used, as the catalog's factories are: start-up leaves the scientific libraries for later.
    invert_order = importlib.import_module("pyod.utils.utility").invert_order
    forest_class = importlib.import_module("sklearn.ensemble").IsolationForest
    X = importlib.import_module("sklearn.utils").check_array(X)
    detector._set_n_classes(y)
    forest = forest_class(
        n_estimators=detector.n_estimators,
        max_samples=detector.max_samples,
        contamination=detector.contamination,
        max_features=detector.max_features,
        bootstrap=detector.bootstrap,
        n_jobs=detector.n_jobs,
        random_state=detector.random_state,
        verbose=detector.verbose,
    )
    grow_sklearn_forest(forest, X, None, progress)
    detector.detector_ = forest
    detector.decision_scores_ = invert_order(forest.decision_function(X))
    detector._process_decision_scores()


def fit_auto(detector: Any, X: Float64Array, y: npt.ArrayLike | None, progress: FitProgress) -> None:
    """The `auto` ensemble reports after each member it fits."""
    detector.fit(X, y, progress=progress)
