"""Explanations: which features drove each row's anomaly score, by each algorithm's own method where it has one.

Every method returns one contribution per feature and row, in score units and higher = pushed towards anomalous:

``tail_probabilities`` (ECOD, COPOD)
    The detector's score *is* a sum over dimensions of negative log tail probabilities; each dimension's term is
    its contribution, and they add up to the score exactly.
``histogram_density`` (HBOS)
    Likewise a sum over dimensions of negative log histogram densities; each term is its contribution.
``isolation_path`` (both isolation forests)
    Path attribution over isolation depth, in the manner of Saabas for regression trees: every split on a row's
    path through a tree changes the expected isolation depth of the rows reaching it (depth + c(n) for n rows);
    the change, negated (isolating faster is more anomalous), is credited to the split's feature and averaged
    over trees. The credits add up to c(ψ) − E[h(x)]; they are rescaled to add up to the score minus the score of
    a row of average depth.
``shapley_sampling`` (every other algorithm, and `auto`)
    Model-agnostic Shapley values by permutation sampling (Štrumbelj and Kononenko, 2014): features are switched
    one at a time, in random order, from a background row (kept with the model: a sample of its training rows)
    to the explained row, and each switch's change in score is credited to the switched feature; antithetic
    permutation pairs, a fixed seed (the same row gets the same explanation), and a budget of score evaluations.
    In expectation the contributions add up to the row's score minus the mean score of the background.

Contributions are computed on the detector's input columns and summed back to the features (a one-hot encoded
feature's columns count as one feature).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vigil.ml.catalog import get_entry
from vigil.ml.entry import Float64Array
from vigil.ml.errors import MLError

if TYPE_CHECKING:
    from vigil.ml.detector import FittedDetector

__all__ = ["METHODS", "Explanation", "explain", "method_of"]

_EVALUATIONS = 400_000
_MIN_PERMUTATIONS, _MAX_PERMUTATIONS = 8, 64
_SEED = 0


@dataclass(frozen=True)
class Explanation:
    """Per-row contributions of each feature (`features` order), and the method that produced them."""

    method: str
    features: list[str]
    contributions: Float64Array

    def top(self, k: int) -> list[list[tuple[str, float]]]:
        """Each row's `k` features with the largest contributions, largest first.

        Examples
        --------
        >>> Explanation("x", ["a", "b", "c"], np.array([[0.1, 2.0, -1.0]])).top(2)
        [[('b', 2.0), ('a', 0.1)]]
        """
        k = max(0, min(k, len(self.features)))
        # Stable sort on the negated values: ties keep feature order, so the answer is reproducible.
        order = np.argsort(-self.contributions, axis=1, kind="stable")[:, :k]
        return [
            [(self.features[j], float(self.contributions[i, j])) for j in row] for i, row in enumerate(order.tolist())
        ]


Method = Callable[["FittedDetector", Float64Array], Float64Array]


def _tail_probabilities(model: FittedDetector, X: Float64Array) -> Float64Array:
    # ECOD and COPOD keep the last call's per-dimension terms on the estimator (`O`); a shallow copy keeps the
    # shared, cached model untouched by concurrent callers.
    estimator = copy.copy(model.estimator)
    estimator.decision_function(X)
    return np.asarray(estimator.O, dtype=np.float64)[-X.shape[0] :]


def _histogram_density(model: FittedDetector, X: Float64Array) -> Float64Array:
    # Imported here, not at the top: PyOD's modules compile numba code on import (see `entry.from_library`).
    per_dimension = importlib.import_module("pyod.models.hbos")._calculate_outlier_scores
    est = model.estimator
    # PyOD sums these log2 densities and negates the sum (`invert_order`): each negated term is a contribution.
    return -np.asarray(per_dimension(X, est.bin_edges_, est.hist_, est.n_bins, est.alpha, est.tol), dtype=np.float64)


def _average_path_length(n: Float64Array) -> Float64Array:
    """c(n): the average depth of an unsuccessful search in a binary tree of n rows (scikit-learn's formula)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _isolation_path(model: FittedDetector, X: Float64Array) -> Float64Array:
    from scipy.sparse import csr_matrix  # here, not at import: scipy costs seconds of server start-up

    forest = model.estimator.detector_ if hasattr(model.estimator, "detector_") else model.estimator
    n, d = X.shape
    credit = np.zeros((n, d))
    for tree, columns in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = tree.tree_
        parent = np.full(t.node_count, -1)
        for side in (t.children_left, t.children_right):
            inner = np.flatnonzero(side >= 0)
            parent[side[inner]] = inner
        depth = np.zeros(t.node_count)
        for node in range(1, t.node_count):  # children always come after their parent in sklearn's trees
            depth[node] = depth[parent[node]] + 1
        value = depth + _average_path_length(t.n_node_samples.astype(np.float64))
        has_parent = parent >= 0
        # An edge into node u changes the expected depth by value[u] - value[parent]; faster isolation = credit.
        gain = np.zeros(t.node_count)
        gain[has_parent] = value[parent[has_parent]] - value[has_parent]
        feature = np.zeros(t.node_count, dtype=np.int64)
        feature[has_parent] = np.asarray(columns)[t.feature[parent[has_parent]]]
        paths = tree.decision_path(X[:, columns] if len(columns) != d else X)
        per_node = csr_matrix((gain, (np.arange(t.node_count), feature)), shape=(t.node_count, d))
        credit += np.asarray((paths @ per_node).todense())
    credit /= len(forest.estimators_)
    # In score units: rescaled to add up to score(x) minus the score of a row of average depth c(ψ), whose raw
    # sklearn score is -0.5; both PyOD's IForest and the sklearn entry's convention negate decision_function.
    reference = -(-0.5 - float(forest.offset_))
    total = credit.sum(axis=1)
    scale = np.divide(
        model.convention.scores(model.estimator, X) - reference, total, out=np.ones(n), where=np.abs(total) > 1e-12
    )
    return credit * np.where(scale > 0, scale, 1.0)[:, None]


def _shapley_sampling(model: FittedDetector, X: Float64Array) -> Float64Array:
    n, d = X.shape
    background = model.background if model.background is not None and len(model.background) else X
    rng = np.random.default_rng(_SEED)
    pairs = int(np.clip(_EVALUATIONS // max(1, 2 * n * (d + 1)), _MIN_PERMUTATIONS // 2, _MAX_PERMUTATIONS // 2))
    contributions = np.zeros((n, d))
    for _ in range(pairs):
        forward = np.argsort(rng.random((n, d)), axis=1)
        base = background[rng.integers(0, background.shape[0], size=n)]
        for order in (forward, forward[:, ::-1]):
            # Row i's hybrids: 0 switched features, then 1, ..., then all d (= the row itself).
            hybrids = np.repeat(base[:, None, :], d + 1, axis=1)
            switched = np.zeros((n, d), dtype=bool)
            for step in range(d):
                switched[np.arange(n), order[:, step]] = True
                hybrids[:, step + 1, :] = np.where(switched, X, base)
            scores = model.convention.scores(model.estimator, hybrids.reshape(-1, d)).reshape(n, d + 1)
            gains = np.diff(scores, axis=1)
            np.add.at(contributions, (np.repeat(np.arange(n), d), order.ravel()), gains.ravel())
    return contributions / (2 * pairs)


METHODS: dict[str, Method] = {
    "tail_probabilities": _tail_probabilities,
    "histogram_density": _histogram_density,
    "isolation_path": _isolation_path,
    "shapley_sampling": _shapley_sampling,
}


def method_of(algorithm: str) -> str:
    return get_entry(algorithm).explainer


def explain(model: FittedDetector, X: Float64Array, *, method: str | None = None) -> Explanation:
    """Contributions of `model`'s features to the scores of the (already transformed) rows `X`.

    Examples
    --------
    >>> import polars as pl
    >>> from vigil.ml import Preprocessing, fit_detector
    >>> rng = np.random.default_rng(0)
    >>> frame = pl.DataFrame(rng.normal(size=(200, 3)), schema=["a", "b", "c"])
    >>> model = fit_detector(frame, algorithm="ecod", parameters={}, contamination=0.1, features=["a", "b", "c"],
    ...                      preprocessing=Preprocessing())
    >>> odd = pl.DataFrame({"a": [0.0], "b": [9.0], "c": [0.1]})
    >>> result = explain(model, model.preprocessor.transform(odd))
    >>> result.top(1)[0][0][0], result.method
    ('b', 'tail_probabilities')
    """
    name = method or method_of(model.algorithm)
    if name not in METHODS:
        raise MLError(f"Unknown explanation method {name!r}.")
    if X.shape[0] == 0:
        return Explanation(name, model.features, np.zeros((0, len(model.features))))
    raw = METHODS[name](model, X)
    return Explanation(name, model.features, _to_features(model, raw))


def _to_features(model: FittedDetector, raw: Float64Array) -> Float64Array:
    """Sums the input columns' contributions back to the features they encode (one-hot columns → one feature)."""
    columns = model.preprocessor.output_columns
    index = {name: i for i, name in enumerate(model.features)}
    owner = np.array([index[c] if c in index else index[c.split("=", 1)[0]] for c in columns])
    out = np.zeros((raw.shape[0], len(model.features)))
    for column, feature in enumerate(owner.tolist()):
        out[:, feature] += raw[:, column]
    return out
