"""Moving a fitted detector's threshold: a fixed score, or a target false-positive rate (see `metrics`)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vigil.ml.detector import FittedDetector
from vigil.ml.errors import MLError

__all__ = ["with_threshold"]


def with_threshold(model: FittedDetector, threshold: float) -> FittedDetector:
    """The same model with another threshold; its score summary's threshold and anomaly rate follow.

    Examples
    --------
    >>> import polars as pl
    >>> from vigil.ml import Preprocessing, fit_detector
    >>> model = fit_detector(pl.DataFrame({"x": [0.0, 1.0, 2.0, 50.0]}), algorithm="hbos", parameters={},
    ...                      contamination=0.25, features=["x"], preprocessing=Preprocessing())
    >>> with_threshold(model, 1e9).score_summary["anomaly_rate"]
    0.0
    """
    if not math.isfinite(threshold):
        raise MLError(f"A threshold must be a finite number, got {threshold!r}.")
    summary = dict(model.score_summary)
    if "anomaly_rate" in summary and summary.get("threshold") is not None:
        # The training scores are gone; the summary's quantiles say where the new threshold cuts them.
        quantiles = sorted((v, float(k[1:]) / 100) for k, v in summary.items() if k.startswith("p") and k[1:].isdigit())
        values = np.array([summary["min"], *[q[0] for q in quantiles], summary["max"]])
        shares = np.array([0.0, *[q[1] for q in quantiles], 1.0])
        summary["anomaly_rate"] = float(1 - np.interp(threshold, values, shares, left=0.0, right=1.0))
    summary["threshold"] = float(threshold)
    return dataclasses.replace(model, threshold=float(threshold), score_summary=summary)
