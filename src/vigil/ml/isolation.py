"""Isolation-forest scores of small batches without scikit-learn's per-tree task dispatch.

scikit-learn scores an `IsolationForest` tree by tree through joblib: a `Parallel` call over one `delayed` task per
tree, each task wrapped to carry the library's configuration and warning filters into it. For a batch of a hundred
rows that bookkeeping costs about three times what the trees' own work does (a 100-tree forest: ~3.5 ms against
~1 ms), and it is paid on every detection request. `outlyingness` walks the same trees in the same order with the
same arithmetic, so its scores are the library's bit for bit. It does not take that on trust: the first batch each
forest scores is also scored by the library, and a forest whose answers differ (a scikit-learn release that changed
its internals) is scored by the library from then on.

Large batches are left to the library: there the dispatch is a rounding error and its chunking bounds memory.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import numpy.typing as npt

# Not entry.Float64Array: entry's score conventions import this module.
Float64Array = npt.NDArray[np.float64]

__all__ = ["SMALL_BATCH_ROWS", "outlyingness"]

SMALL_BATCH_ROWS = 4096
"""Batches up to this many rows take the direct way (where the per-tree dispatch is a real share of the time)."""

# Each forest's verdict (True: its direct scores were found equal to the library's), kept while the forest lives.
_verdicts: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def outlyingness(estimator: Any, X: Float64Array) -> Float64Array | None:
    """``-decision_function(X)`` of a fitted isolation forest (scikit-learn's `IsolationForest`, or PyOD's `IForest`,
    which wraps one and negates it), for a small finite float64 batch; None when this estimator or batch is not one
    the direct way takes, and the caller asks the library.

    Examples
    --------
    >>> from sklearn.ensemble import IsolationForest
    >>> rng = np.random.default_rng(0)
    >>> forest = IsolationForest(random_state=0).fit(rng.normal(size=(200, 3)))
    >>> X = rng.normal(size=(5, 3))
    >>> bool(np.array_equal(outlyingness(forest, X), -forest.decision_function(X)))
    True
    >>> outlyingness(object(), X) is None
    True
    """
    forest = _forest_of(estimator)
    if forest is None or X.ndim != 2 or not 0 < X.shape[0] <= SMALL_BATCH_ROWS:
        return None
    if X.shape[1] != getattr(forest, "n_features_in_", None) or not np.isfinite(X).all():
        return None  # the library's own checks say what is wrong
    with _lock:
        verdict = _verdicts.get(forest)
    if verdict is False:
        return None
    try:
        scores = _direct(forest, X)
    except (AttributeError, ImportError, IndexError, TypeError, ValueError):
        scores = None
    if verdict is None:
        library = -np.asarray(forest.decision_function(X), dtype=np.float64)
        equal = scores is not None and np.array_equal(scores, library)
        with _lock:
            _verdicts[forest] = equal
        return library
    return scores


def _forest_of(estimator: Any) -> Any | None:
    """The scikit-learn forest inside `estimator`, when it is one whose scores are its negated decision_function."""
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415 (the engine imports its libraries when used)

    if type(estimator) is IsolationForest:
        return estimator
    if type(estimator).__module__ == "pyod.models.iforest" and type(estimator).__name__ == "IForest":
        inner = getattr(estimator, "detector_", None)
        return inner if type(inner) is IsolationForest else None
    return None


def _direct(forest: Any, X: Float64Array) -> Float64Array:
    """scikit-learn's `IsolationForest._compute_score_samples` and `decision_function`, tree by tree in one loop:
    the same float32 input, the same per-tree sums in the same order, the same normalisation."""
    from sklearn.ensemble._iforest import _average_path_length  # noqa: PLC0415

    X32 = np.asarray(X, dtype=np.float32)
    depths = np.zeros(X32.shape[0], order="F")
    subsample = forest._max_features != X32.shape[1]
    path_lengths, average_lengths = forest._decision_path_lengths, forest._average_path_length_per_tree
    for index, (tree, features) in enumerate(zip(forest.estimators_, forest.estimators_features_, strict=True)):
        leaves = tree.apply(X32[:, features] if subsample else X32, check_input=False)
        depths += path_lengths[index][leaves] + average_lengths[index][leaves] - 1.0
    denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])
    normal = 2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))
    # score_samples is -normal; decision_function subtracts offset_; the outlyingness is its negation.
    return np.asarray(-((-normal) - forest.offset_), dtype=np.float64)
