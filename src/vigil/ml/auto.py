"""The `auto` detector: several fast detectors combined, unsupervised without labels and semi-supervised with them.

Unsupervised, each member's scores are standardised robustly by the median and interquartile range of its own
training scores (score distributions are heavy-tailed, and the anomalies themselves inflate a standard deviation)
and clipped (one member's extreme value must not outvote the others). The members fall into three families that
see different kinds of anomaly: isolation (IForest), per-feature tails (ECOD, COPOD, HBOS) and neighbour distance
(kNN); the unsupervised score is the mean of the family means, so three tail detectors do not outvote the others.
PCA's reconstruction error is a member for the classifier below but not in the unsupervised vote: alone it trails
the others on ADBench, and in the vote it lowered the mean ROC-AUC (measured on a split of the training parts).

With labels (1 = anomaly, 0 = normal, -1 = unlabelled), a small gradient-boosting classifier learns from the features
*and* the members' standardised scores (the idea of XGBOD: detector scores as learned representations), trained on
the labelled anomalies against the rows least likely to be anomalies; its log-odds, standardised on the training
rows, are blended with the standardised unsupervised score. A few labels so lift ROC-AUC far above any unsupervised
detector (`benchmarks/bench_adbench.py`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pyod.models.base import BaseDetector
from sklearn.ensemble import HistGradientBoostingClassifier

from vigil.ml.entry import Float64Array

__all__ = ["MEMBERS", "UNLABELLED", "AutoDetector"]

UNLABELLED = -1
_CLIP = (-5.0, 10.0)
# Beyond this many training rows the neighbour-based members see a sample: their cost grows with the rows squared.
_NEIGHBOUR_ROWS = 10_000
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Member:
    """One detector of the ensemble: a PyOD class, its fixed parameters, whether it takes a seed, and its family
    in the unsupervised vote (`None`: a feature of the classifier only)."""

    name: str
    module: str
    cls: str
    fixed: tuple[tuple[str, Any], ...] = ()
    seeded: bool = False
    family: str | None = None

    def build(self, seed: int | None, contamination: float) -> Any:
        # Imported when first built: PyOD's modules compile numba code on import (see `entry.from_library`).
        estimator_class = getattr(importlib.import_module(self.module), self.cls)
        extra = {"random_state": seed} if self.seeded else {}
        return estimator_class(contamination=contamination, **dict(self.fixed), **extra)


MEMBERS: tuple[Member, ...] = (
    Member("iforest", "pyod.models.iforest", "IForest", (("n_estimators", 100),), seeded=True, family="isolation"),
    Member("ecod", "pyod.models.ecod", "ECOD", family="tails"),
    Member("copod", "pyod.models.copod", "COPOD", family="tails"),
    Member("hbos", "pyod.models.hbos", "HBOS", family="tails"),
    # The mean distance to 10 neighbours: steadier than the distance to the 5th alone.
    Member("knn", "pyod.models.knn", "KNN", (("n_neighbors", 10), ("method", "mean")), family="neighbours"),
    Member("pca", "pyod.models.pca", "PCA", seeded=True),
)
# Column indices of each family's members in `MEMBERS` order.
_FAMILIES: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i, m in enumerate(MEMBERS) if m.family == family)
    for family in dict.fromkeys(m.family for m in MEMBERS if m.family is not None)
)


def _standardiser(training: Float64Array) -> tuple[float, float]:
    spread = float(training.std())
    return float(training.mean()), spread if spread > 0 and np.isfinite(spread) else 1.0


def _robust_standardiser(training: Float64Array) -> tuple[float, float]:
    """Median and interquartile range (scaled to a normal's standard deviation) of a member's training scores."""
    finite = training[np.isfinite(training)]
    if finite.size == 0:
        return 0.0, 1.0
    q1, median, q3 = np.quantile(finite, (0.25, 0.5, 0.75))
    spread = float(q3 - q1) / 1.349
    # A member whose middle half is one value (e.g. HBOS on a few distinct values) falls back to the whole spread.
    return float(median), spread if spread > 0 else _standardiser(finite)[1]


def _unsupervised(Z: Float64Array) -> Float64Array:
    vote: Float64Array = np.mean([Z[:, list(family)].mean(axis=1) for family in _FAMILIES], axis=0)
    return vote


def _logit(p: Float64Array) -> Float64Array:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


class AutoDetector(BaseDetector):  # type: ignore[misc]
    """An ensemble of fast detectors (a PyOD detector, so it fits the catalog's score convention).

    Parameters
    ----------
    contamination
        Expected share of anomalies; sets `threshold_` from the training scores.
    use_labels
        Learn from labels when `fit` is given some (otherwise the unsupervised combination only).
    supervised_weight
        Weight of the supervised rank in the blend once labels exist, at most (fewer labels, less weight).
    random_state
        Seed of the randomised members and of the classifier.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(200, 3)), rng.normal(6, 1, size=(10, 3))])
    >>> model = AutoDetector(contamination=0.05, random_state=0).fit(X)
    >>> bool(model.decision_function(X[-10:]).min() > model.decision_function(X[:200]).max() - 1)
    True
    """

    def __init__(
        self,
        contamination: float = 0.1,
        use_labels: bool = True,
        supervised_weight: float = 0.85,
        random_state: int | None = None,
    ) -> None:
        super().__init__(contamination=contamination)
        self.use_labels = use_labels
        self.supervised_weight = supervised_weight
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------------------
    def fit(
        self, X: Float64Array, y: npt.ArrayLike | None = None, *, progress: Callable[[float], None] | None = None
    ) -> AutoDetector:
        """Fits the members, then the classifier when there are labels; `progress` (not kept) hears the share
        done after each member."""
        X = np.asarray(X, dtype=np.float64)
        self._set_n_classes(None)
        labels = self._labels(y, X.shape[0])
        self.members_: list[tuple[str, Any, tuple[float, float]]] = []
        standardised = []
        for done, member in enumerate(MEMBERS, start=1):
            estimator, training = self._fit_member(member, X)
            centre_spread = _robust_standardiser(training)
            self.members_.append((member.name, estimator, centre_spread))
            standardised.append(self._standardise(training, centre_spread))
            if progress is not None:
                # The classifier (with labels) and the combination take the last share.
                progress(0.9 * done / len(MEMBERS))
        Z = np.column_stack(standardised)
        unsupervised = _unsupervised(Z)
        self.unsupervised_scale_ = _standardiser(unsupervised)
        self.classifier_: Any = None
        self.labels_used_ = 0
        if self.use_labels and labels is not None and int((labels == 1).sum()) >= 1:
            self._fit_classifier(X, Z, unsupervised, labels)
        self.decision_scores_ = self._combine(X, Z, unsupervised)
        self._process_decision_scores()
        return self

    def _labels(self, y: npt.ArrayLike | None, n: int) -> IntArray | None:
        if y is None:
            return None
        labels = np.asarray(y, dtype=np.int64)
        if labels.shape != (n,) or not np.isin(labels, (UNLABELLED, 0, 1)).all():
            raise ValueError("labels must be one of -1 (unlabelled), 0 (normal), 1 (anomaly), one per row")
        return labels

    def _fit_member(self, member: Member, X: Float64Array) -> tuple[Any, Float64Array]:
        estimator = member.build(self.random_state, float(self.contamination))
        if member.name == "knn" and X.shape[0] > _NEIGHBOUR_ROWS:
            rng = np.random.default_rng(self.random_state)
            estimator.fit(X[rng.choice(X.shape[0], _NEIGHBOUR_ROWS, replace=False)])
            return estimator, np.asarray(estimator.decision_function(X), dtype=np.float64)
        if member.name == "knn":
            # Fewer rows than neighbours: the member adapts instead of failing the whole ensemble.
            estimator.n_neighbors = max(1, min(estimator.n_neighbors, X.shape[0] - 1))
        estimator.fit(X)
        return estimator, np.asarray(estimator.decision_scores_, dtype=np.float64)

    def _fit_classifier(self, X: Float64Array, Z: Float64Array, unsupervised: Float64Array, labels: IntArray) -> None:
        positives = labels == 1
        # Unlabelled rows are mostly normal, but the ones the ensemble finds most anomalous may well be anomalies
        # nobody has labelled yet: leaving them out of the negatives keeps them from teaching the opposite.
        unlabelled = labels == UNLABELLED
        cut = np.quantile(unsupervised[unlabelled], 1 - float(self.contamination)) if unlabelled.any() else np.inf
        negatives = (labels == 0) | (unlabelled & (unsupervised < cut))
        rows = positives | negatives
        target = positives[rows].astype(np.int64)
        if target.min() == target.max():
            return
        n_pos = int(positives.sum())
        weights = np.where(target == 1, (target.shape[0] - n_pos) / max(n_pos, 1), 1.0)
        classifier = HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=5, random_state=self.random_state
        )
        classifier.fit(np.hstack([X, Z])[rows], target, sample_weight=weights)
        self.classifier_ = classifier
        self.labels_used_ = int(rows.sum() - (unlabelled & rows).sum())
        self.n_positive_labels_ = n_pos
        self.supervised_scale_ = _standardiser(_logit(classifier.predict_proba(np.hstack([X, Z]))[:, 1]))

    # -- scoring -------------------------------------------------------------------------------------------
    @staticmethod
    def _standardise(scores: Float64Array, centre_spread: tuple[float, float]) -> Float64Array:
        centre, spread = centre_spread
        z = (np.asarray(scores, dtype=np.float64) - centre) / spread
        return np.clip(np.nan_to_num(z, nan=0.0, posinf=_CLIP[1], neginf=_CLIP[0]), *_CLIP)

    def member_scores(self, X: Float64Array) -> Float64Array:
        """The members' standardised scores of `X`, one column per member (in `MEMBERS` order)."""
        scores: Float64Array = np.column_stack(
            [self._standardise(est.decision_function(X), cs) for _, est, cs in self.members_]
        )
        return scores

    def _weight(self) -> float:
        # One labelled anomaly is an anecdote, twenty a pattern: trust the classifier as labels accumulate.
        n = getattr(self, "n_positive_labels_", 0)
        return float(self.supervised_weight) * n / (n + 3.0)

    def _combine(self, X: Float64Array, Z: Float64Array, unsupervised: Float64Array) -> Float64Array:
        if self.classifier_ is None:
            return unsupervised
        supervised = _logit(self.classifier_.predict_proba(np.hstack([X, Z]))[:, 1])
        w = self._weight()
        # Both on one scale (standardised on the training rows): ranks would tie every row beyond the training
        # maximum, which is exactly where the anomalies are.
        return (1 - w) * self._standardise(unsupervised, self.unsupervised_scale_) + w * self._standardise(
            supervised, self.supervised_scale_
        )

    def decision_function(self, X: Float64Array) -> Float64Array:
        X = np.asarray(X, dtype=np.float64)
        Z = self.member_scores(X)
        return self._combine(X, Z, _unsupervised(Z))

    @property
    def semi_supervised(self) -> bool:
        """Whether labels shaped this model (a classifier was trained)."""
        return self.classifier_ is not None
