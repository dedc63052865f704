"""What a catalog entry is: a named detector described as data, with a factory and a score convention.

Every entry, whatever its library, is used through the same small contract: build an unfitted estimator from
validated parameters and a contamination, fit it, then read scores (higher = more anomalous) and a threshold
through its `ScoreConvention`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vigil.ml.isolation import outlyingness
from vigil.ml.params import Param

__all__ = [
    "PYOD",
    "SKLEARN",
    "SKLEARN_LOF",
    "CatalogEntry",
    "Factory",
    "Float64Array",
    "ProgressFit",
    "ScoreConvention",
    "from_library",
    "quantile_threshold",
]

Float64Array = npt.NDArray[np.float64]
Factory = Callable[[Mapping[str, Any], float], Any]
# Fits `estimator` on X (and labels) as its `fit` would, calling the last argument with the share done (0–1).
ProgressFit = Callable[[Any, Float64Array, Any, Callable[[float], None]], None]


def quantile_threshold(training_scores: Float64Array, contamination: float) -> float:
    """The (1 − contamination) quantile of training scores: PyOD's own rule for `threshold_`.

    Examples
    --------
    >>> quantile_threshold(np.arange(11, dtype=np.float64), 0.1)
    9.0
    """
    return float(np.percentile(training_scores, 100 * (1 - contamination)))


class ScoreConvention(Protocol):
    """How to read scores out of a fitted estimator of one library, so that higher is always more anomalous."""

    def scores(self, estimator: Any, X: Float64Array) -> Float64Array: ...

    def training_scores(self, estimator: Any, X: Float64Array) -> Float64Array: ...

    def threshold(self, estimator: Any, training_scores: Float64Array, contamination: float) -> float: ...


class PyODConvention:
    """PyOD: `decision_function` already grows with outlyingness; `decision_scores_` and `threshold_` come with fit."""

    def scores(self, estimator: Any, X: Float64Array) -> Float64Array:
        direct = outlyingness(estimator, X)  # an isolation forest's small batch: the same scores, sooner
        if direct is not None:
            return direct
        # asarray, not astype: the caller's contract is bit-for-bit equality with decision_function.
        return np.asarray(estimator.decision_function(X), dtype=np.float64)

    def training_scores(self, estimator: Any, X: Float64Array) -> Float64Array:
        return np.asarray(estimator.decision_scores_, dtype=np.float64)

    def threshold(self, estimator: Any, training_scores: Float64Array, contamination: float) -> float:
        return float(estimator.threshold_)


class SklearnConvention:
    """scikit-learn: `decision_function` is lower for outliers, so it is negated; the threshold is computed here."""

    def scores(self, estimator: Any, X: Float64Array) -> Float64Array:
        direct = outlyingness(estimator, X)
        if direct is not None:
            return direct
        return -np.asarray(estimator.decision_function(X), dtype=np.float64)

    def training_scores(self, estimator: Any, X: Float64Array) -> Float64Array:
        return self.scores(estimator, X)

    def threshold(self, estimator: Any, training_scores: Float64Array, contamination: float) -> float:
        return quantile_threshold(training_scores, contamination)


class SklearnLOFConvention(SklearnConvention):
    """LocalOutlierFactor(novelty=True) must not score its own training rows (each would count itself as a
    neighbour); its training scores are `negative_outlier_factor_`, shifted by `offset_` as decision_function is."""

    def training_scores(self, estimator: Any, X: Float64Array) -> Float64Array:
        return -(np.asarray(estimator.negative_outlier_factor_, dtype=np.float64) - float(estimator.offset_))


PYOD: ScoreConvention = PyODConvention()
SKLEARN: ScoreConvention = SklearnConvention()
SKLEARN_LOF: ScoreConvention = SklearnLOFConvention()


def from_library(
    module: str, name: str, *, fixed: Mapping[str, Any] | None = None, contamination: bool = True
) -> Factory:
    """A factory for `module.name(**fixed, **parameters[, contamination=...])`, imported only when first built.

    The import is deferred because PyOD's modules compile numba code on import; listing the catalog, or
    validating a detector's parameters, should not pay for that.
    """
    constant = dict(fixed or {})

    def build(parameters: Mapping[str, Any], contamination_value: float) -> Any:
        estimator_class = getattr(importlib.import_module(module), name)
        extra = {"contamination": contamination_value} if contamination else {}
        return estimator_class(**constant, **parameters, **extra)

    build.__qualname__ = f"from_library({module}.{name})"
    return build


@dataclass(frozen=True)
class CatalogEntry:
    """One detector of the catalog. `params` use the library's own parameter names, so they pass straight through."""

    name: str
    family: str
    title: str
    description: str
    factory: Factory
    convention: ScoreConvention
    params: tuple[Param, ...] = field(default=())
    explainer: str = "shapley_sampling"
    """How rows' scores are explained (`vigil.ml.explain`): the algorithm's own method, or Shapley sampling."""
    learns_from_labels: bool = False
    """Whether `fit` takes labels (1 anomaly, 0 normal, -1 unlabelled); others use labels only to be judged."""
    fit_with_progress: ProgressFit | None = None
    """A fit that reports how far it is (`vigil.ml.stepwise`), where the library allows one; None: one `fit` call."""

    def describe(self) -> dict[str, Any]:
        """The public shape of the entry (the API's `AlgorithmPublic`)."""
        return {
            "name": self.name,
            "family": self.family,
            "title": self.title,
            "description": self.description,
            "params": [p.describe() for p in self.params],
            "explanation_method": self.explainer,
            "learns_from_labels": self.learns_from_labels,
        }
