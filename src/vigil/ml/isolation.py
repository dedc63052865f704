"""Isolation-forest scores without scikit-learn's per-tree task dispatch, equal to the library's bit for bit.

scikit-learn scores an `IsolationForest` tree by tree through joblib: a `Parallel` call over one `delayed` task per
tree, each task wrapped to carry the library's configuration and warning filters into it. For a batch of a hundred
rows that bookkeeping costs about three times what the trees' own work does (a 100-tree forest: ~3.5 ms against
~1 ms), and it is paid on every detection request. Per tree the library then gathers two per-node tables at each
row's leaf and adds them; their sum per node does not depend on the rows, so it is computed once per forest here,
and a big batch does one gather per tree instead of two (~8% of its time).

`outlyingness` walks the same trees in the same order with the same arithmetic (a per-node sum gathered is the sum
of the gathered values, exactly), so its scores are the library's bit for bit. It does not take that on trust: the
first batch each forest scores is also scored by the library (its first rows, at most `PROOF_ROWS`), and a forest
whose answers differ (a scikit-learn release that changed its internals) is scored by the library from then on.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# Not entry.Float64Array: entry's score conventions import this module.
Float64Array = npt.NDArray[np.float64]

__all__ = ["CHUNK_ROWS", "PROOF_ROWS", "outlyingness"]

PROOF_ROWS = 1024
"""How many rows of a forest's first batch are also scored by the library, to prove the direct way."""
CHUNK_ROWS = 65_536
"""Rows scored at a time: bounds the per-tree leaf and gather arrays (the scores do not depend on it)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What scoring a forest directly needs that does not depend on the rows."""

    trees: tuple[Any, ...]
    features: tuple[npt.NDArray[np.intp] | None, ...]  # per tree, the columns it was grown on (None: all)
    leaf_depths: tuple[Float64Array, ...]  # per tree and node: its depth plus the average path length below it, - 1
    denominator: float
    offset: float


# A forest's plan once proved (None: its direct scores differed, or it could not be planned), kept while it lives.
_plans: weakref.WeakKeyDictionary[Any, _Plan | None] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def outlyingness(estimator: Any, X: Float64Array) -> Float64Array | None:
    """``-decision_function(X)`` of a fitted isolation forest (scikit-learn's `IsolationForest`, or PyOD's `IForest`,
    which wraps one and negates it) for a finite float64 matrix; None when this estimator or matrix is not one the
    direct way takes, and the caller asks the library.

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
    if forest is None or X.ndim != 2 or X.shape[0] == 0:
        return None
    if X.shape[1] != getattr(forest, "n_features_in_", None) or not np.isfinite(X).all():
        return None  # the library's own checks say what is wrong
    with _lock:
        known = forest in _plans
        plan = _plans.get(forest)
    if plan is None:
        if known:
            return None
        plan = _proved_plan(forest, X[:PROOF_ROWS])
        if plan is None:
            return None
    return _scores(plan, X)


def _forest_of(estimator: Any) -> Any | None:
    """The scikit-learn forest inside `estimator`, when it is one whose scores are its negated decision_function."""
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415 (the engine imports its libraries when used)

    if type(estimator) is IsolationForest:
        return estimator
    if type(estimator).__module__ == "pyod.models.iforest" and type(estimator).__name__ == "IForest":
        inner = getattr(estimator, "detector_", None)
        return inner if type(inner) is IsolationForest else None
    return None


def _proved_plan(forest: Any, sample: Float64Array) -> _Plan | None:
    """The forest's plan if its direct scores of `sample` equal the library's, bit for bit; the verdict is kept."""
    try:
        plan: _Plan | None = _plan(forest)
        direct = _scores(plan, sample) if plan is not None else None
    except (AttributeError, ImportError, IndexError, TypeError, ValueError):
        plan, direct = None, None
    library = -np.asarray(forest.decision_function(sample), dtype=np.float64)
    if direct is None or not np.array_equal(direct, library):
        plan = None
    with _lock:
        _plans[forest] = plan
    return plan


def _plan(forest: Any) -> _Plan:
    """What scikit-learn's `IsolationForest._compute_score_samples` and `decision_function` use, read once."""
    from sklearn.ensemble._iforest import _average_path_length  # noqa: PLC0415

    subsample = forest._max_features != forest.n_features_in_
    return _Plan(
        trees=tuple(forest.estimators_),
        features=tuple(np.asarray(f) if subsample else None for f in forest.estimators_features_),
        leaf_depths=tuple(
            # The library's own sum, per node instead of per row: gathered after, the values are the same.
            depths + averages - 1.0
            for depths, averages in zip(
                forest._decision_path_lengths, forest._average_path_length_per_tree, strict=True
            )
        ),
        denominator=float(len(forest.estimators_) * _average_path_length([forest._max_samples])[0]),
        offset=float(forest.offset_),
    )


def _scores(plan: _Plan, X: Float64Array) -> Float64Array:
    X32 = np.asarray(X, dtype=np.float32)
    depths = np.zeros(X32.shape[0], order="F")
    for start in range(0, X32.shape[0], CHUNK_ROWS):
        rows = X32[start : start + CHUNK_ROWS]
        chunk = depths[start : start + CHUNK_ROWS]
        for tree, features, leaf_depths in zip(plan.trees, plan.features, plan.leaf_depths, strict=True):
            leaves = tree.apply(rows if features is None else rows[:, features], check_input=False)
            chunk += leaf_depths[leaves]
    denominator = plan.denominator
    normal = 2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))
    # score_samples is -normal; decision_function subtracts offset_; the outlyingness is its negation.
    return np.asarray(-((-normal) - plan.offset), dtype=np.float64)
