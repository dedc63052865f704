"""Fitting a catalog detector on a frame, and the fitted model that scores new frames against its threshold."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from vigil.ml.catalog import get_entry, validate_parameters
from vigil.ml.entry import Float64Array, ScoreConvention
from vigil.ml.errors import InvalidFeatures, MLError, TrainingFailed
from vigil.ml.preprocessing import FittedPreprocessor, Preprocessing, fit_preprocessor

__all__ = [
    "BACKGROUND_ROWS",
    "MIN_TRAINING_ROWS",
    "FitReport",
    "FittedDetector",
    "fit_detector",
    "summarise_scores",
]

MIN_TRAINING_ROWS = 2
BACKGROUND_ROWS = 64
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FitReport = Callable[[float, str], None]
"""Hears how far a fit is: the share done (0–1) and its stage. It may raise (a cancelled job): the fit stops."""
# The shares of a fit its stages take: preparing the features, fitting the estimator, scoring the training rows.
_FIT_FROM, _FIT_TO = 0.05, 0.85


@dataclass(frozen=True, eq=False)
class FittedDetector:
    """A trained detector: the fitted preprocessing, the library's fitted estimator, and the decision threshold.

    Attributes
    ----------
    algorithm, parameters, contamination
        The catalog entry and the (validated, complete) configuration it was trained with.
    preprocessor
        What turns a frame into the estimator's input (see `FittedPreprocessor`).
    estimator
        The fitted PyOD or scikit-learn object itself.
    threshold
        Scores above it are anomalies: the (1 − contamination) quantile of the training scores.
    n_train_rows
        Number of training rows.
    score_summary
        Statistics of the training scores (JSON-ready floats): min, max, mean, std, quantiles, threshold.
    background
        A seeded sample of the transformed training rows: the reference of model-agnostic explanations.
    fit_seconds
        Wall time of the fit (preprocessing, estimator and threshold).
    labels_used
        How many labelled rows the estimator learned from (0 unless it learns from labels).
    """

    algorithm: str
    parameters: dict[str, Any]
    contamination: float
    preprocessor: FittedPreprocessor
    estimator: Any
    convention: ScoreConvention
    threshold: float
    n_train_rows: int
    score_summary: dict[str, float] = field(default_factory=dict)
    # Class-level defaults, so artifacts written before these fields existed still load.
    background: Float64Array | None = None
    fit_seconds: float = 0.0
    labels_used: int = 0

    @property
    def features(self) -> list[str]:
        """The feature columns, in training order; scoring selects them from a frame by name."""
        return list(self.preprocessor.features)

    def score(self, frame: pl.DataFrame) -> Float64Array:
        """Anomaly scores of `frame`'s rows (higher = more anomalous), as float64.

        The features are selected by name (other columns are ignored), transformed as at training time, and
        scored by the library's own ``decision_function`` (negated for scikit-learn estimators).
        Raises `InvalidFeatures` for missing columns, non-numeric or infinite values, and refused nulls.

        Examples
        --------
        >>> train = pl.DataFrame({"x": [0.0, 0.1, 0.2, 0.1, 0.0, 0.2] * 5, "y": [1.0, 1.1, 0.9, 1.0, 1.2, 0.8] * 5})
        >>> model = fit_detector(
        ...     train, algorithm="knn", parameters={}, contamination=0.1, features=["x", "y"],
        ...     preprocessing=Preprocessing(),
        ... )
        >>> scores = model.score(pl.DataFrame({"x": [0.1, 5.0], "y": [1.0, -4.0]}))
        >>> bool(scores[1] > model.threshold > scores[0])
        True
        """
        return self._scores(self.preprocessor.transform(frame))

    def percentiles(self, scores: Float64Array) -> Float64Array | None:
        """Each score's place among the training scores, 0–1 (the share of training rows that scored lower, read
        from the quantiles kept in `score_summary` and interpolated between them): a scale a person can read
        whatever the algorithm's raw scores look like. None for models saved without a summary.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> train = pl.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
        >>> model = fit_detector(
        ...     train, algorithm="knn", parameters={}, contamination=0.1, features=["x", "y"],
        ...     preprocessing=Preprocessing(),
        ... )
        >>> low, high = model.percentiles(model.score(pl.DataFrame({"x": [0.0, 60.0], "y": [0.0, -40.0]})))
        >>> bool(0.0 <= low < 0.9), float(high)
        (True, 1.0)
        """
        summary = self.score_summary
        names = ["min", *(f"p{round(q * 100):02d}" for q in _QUANTILES), "max"]
        if not all(name in summary for name in names):
            return None
        points = np.array([summary[name] for name in names], dtype=np.float64)
        levels = np.array([0.0, *_QUANTILES, 1.0], dtype=np.float64)
        return np.asarray(np.interp(scores, points, levels), dtype=np.float64)

    def score_matrix(self, X: Float64Array) -> Float64Array:
        """`score` for a float64 matrix of the features in training order (when `preprocessor.takes_matrix`): the
        same scores, bit for bit, without building a frame — what small inline batches want.

        Examples
        --------
        >>> train = pl.DataFrame({"x": [0.0, 0.1, 0.2, 0.1, 0.0, 0.2] * 5, "y": [1.0, 1.1, 0.9, 1.0, 1.2, 0.8] * 5})
        >>> model = fit_detector(
        ...     train, algorithm="knn", parameters={}, contamination=0.1, features=["x", "y"],
        ...     preprocessing=Preprocessing(),
        ... )
        >>> rows = np.array([[0.1, 1.0], [5.0, -4.0]])
        >>> bool((model.score_matrix(rows) == model.score(pl.DataFrame(rows, schema=["x", "y"]))).all())
        True
        """
        return self._scores(self.preprocessor.transform_matrix(X))

    def _scores(self, X: Float64Array) -> Float64Array:
        if X.shape[0] == 0:
            # Estimators refuse empty input; an empty batch simply has no scores.
            return np.empty(0, dtype=np.float64)
        return self.convention.scores(self.estimator, X)


def summarise_scores(scores: Float64Array, threshold: float) -> dict[str, float]:
    """Statistics of training scores, kept with a model version so a user can judge new scores against them.

    Examples
    --------
    >>> summary = summarise_scores(np.arange(101, dtype=np.float64), 90.0)
    >>> summary["p50"], summary["max"], summary["anomaly_rate"]  # doctest: +ELLIPSIS
    (50.0, 100.0, 0.0990099009900990...)
    """
    values = np.quantile(scores, _QUANTILES)
    return {
        "min": float(scores.min()),
        "max": float(scores.max()),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        **{f"p{round(q * 100):02d}": float(v) for q, v in zip(_QUANTILES, values, strict=True)},
        "threshold": float(threshold),
        "anomaly_rate": float(np.mean(scores > threshold)),
    }


def fit_detector(
    frame: pl.DataFrame,
    *,
    algorithm: str,
    parameters: Mapping[str, Any],
    contamination: float,
    features: Sequence[str],
    preprocessing: Preprocessing,
    labels: npt.ArrayLike | None = None,
    progress: FitReport | None = None,
) -> FittedDetector:
    """Fits the catalog detector `algorithm` on `frame[features]` and sets its threshold from `contamination`.

    Parameters
    ----------
    frame
        Training rows; only `features` are used.
    algorithm, parameters
        A catalog name and its parameters (validated here again; defaults filled in).
    contamination
        Expected share of anomalies, in (0, 0.5]; the threshold is the (1 − contamination) quantile of the
        training scores (for PyOD, its own ``threshold_``).
    features
        The feature columns, in order.
    preprocessing
        How the columns become numbers (see `Preprocessing`).
    labels
        Optional feedback, one per row: 1 anomaly, 0 normal, -1 unlabelled. Algorithms that learn from labels
        (`CatalogEntry.learns_from_labels`, i.e. `auto`) use them; the others ignore them.
    progress
        Optional: hears the share of the fit done and its stage ("preparing features", "fitting", "scoring the
        training rows") — within the fitting itself too, tree by tree or member by member, where the entry can
        (`CatalogEntry.fit_with_progress`). What it raises stops the fit and comes out as it is.

    Raises
    ------
    UnknownAlgorithm, InvalidParameters
        A bad algorithm or parameters.
    InvalidFeatures
        Columns that are missing or unusable, or values that are refused.
    TrainingFailed
        The library could not fit this data (e.g. more neighbours than rows); its message says why.

    Examples
    --------
    >>> frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> fit_detector(  # doctest: +ELLIPSIS
    ...     frame, algorithm="knn", parameters={"n_neighbors": 50}, contamination=0.1, features=["x"],
    ...     preprocessing=Preprocessing(),
    ... )
    Traceback (most recent call last):
    ...
    vigil.ml.errors.TrainingFailed: k Nearest Neighbours (PyOD) could not be trained on 4 rows x 1 column(s): ...
    """
    entry = get_entry(algorithm)
    params = validate_parameters(algorithm, parameters)
    if not (isinstance(contamination, int | float) and 0 < contamination <= 0.5):
        raise MLError(f"contamination must be in (0, 0.5], got {contamination!r}.")
    if not features:
        raise InvalidFeatures("At least one feature is needed.")
    if frame.height < MIN_TRAINING_ROWS:
        raise TrainingFailed(f"{entry.title} needs at least {MIN_TRAINING_ROWS} training rows, got {frame.height}.")
    report: FitReport = progress or (lambda share, stage: None)
    # What the caller's report raised passes through untouched (not as a training failure).
    stops: list[BaseException] = []

    def reporting(share: float, stage: str) -> None:
        try:
            report(share, stage)
        except BaseException as exc:
            stops.append(exc)
            raise

    def fitting(share: float) -> None:
        reporting(_FIT_FROM + (_FIT_TO - _FIT_FROM) * share, "fitting")

    started = time.perf_counter()
    report(0.0, "preparing features")
    preprocessor, X = fit_preprocessor(frame, list(features), preprocessing)
    estimator = entry.factory(params, float(contamination))
    where = f"{entry.title} could not be trained on {X.shape[0]} rows x {X.shape[1]} column(s)"
    y = None
    if labels is not None and entry.learns_from_labels:
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (frame.height,):
            raise MLError(f"labels must have one value per training row ({frame.height}), got {y.shape}.")
    fitting(0.0)
    try:
        if progress is not None and entry.fit_with_progress is not None:
            entry.fit_with_progress(estimator, X, y, fitting)
        elif y is not None:
            estimator.fit(X, y)
        else:
            estimator.fit(X)
        reporting(_FIT_TO, "scoring the training rows")
        training = entry.convention.training_scores(estimator, X)
        threshold = entry.convention.threshold(estimator, training, float(contamination))
    except MemoryError:
        raise
    except Exception as exc:
        stopped = next((cause for cause in _causes(exc) if any(cause is stop for stop in stops)), None)
        if stopped is not None:
            raise stopped from None
        # The libraries fail in many ways (ValueError, LinAlgError, IndexError, numba errors, ...); whichever it
        # is, the user needs the library's reason, as a training failure rather than a server error.
        raise TrainingFailed(f"{where}: {exc}") from exc
    if not (np.isfinite(training).all() and math.isfinite(threshold)):
        raise TrainingFailed(f"{where}: the training scores are not finite (degenerate data for this algorithm?).")
    return FittedDetector(
        algorithm=algorithm,
        parameters=params,
        contamination=float(contamination),
        preprocessor=preprocessor,
        estimator=estimator,
        convention=entry.convention,
        threshold=threshold,
        n_train_rows=frame.height,
        score_summary=summarise_scores(training, threshold),
        background=_background(X),
        fit_seconds=time.perf_counter() - started,
        labels_used=int(getattr(estimator, "labels_used_", 0)),
    )


def _background(X: Float64Array) -> Float64Array:
    rng = np.random.default_rng(0)
    rows = rng.choice(X.shape[0], size=min(BACKGROUND_ROWS, X.shape[0]), replace=False)
    return np.array(X[np.sort(rows)], dtype=np.float64)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from or during: a library may wrap what a progress report raised."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
