"""Judging scores against labels, and two model versions against each other: arrays in, plain numbers out.

The held-out part of a dataset's labels is chosen by hashing each row's index with the dataset's id, so it is
stable as labels are added or removed (a row never moves between the parts) and the same for every version.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.ml.entry import Float64Array

__all__ = [
    "HOLDOUT_FRACTION",
    "agreement",
    "fpr_threshold",
    "holdout_mask",
    "quality",
]

HOLDOUT_FRACTION = 0.3


def holdout_mask(row_indices: npt.ArrayLike, *, key: str, fraction: float = HOLDOUT_FRACTION) -> npt.NDArray[np.bool_]:
    """Whether each row index belongs to the held-out part (about `fraction` of rows), stable per `key`.

    Examples
    --------
    >>> mask = holdout_mask(np.arange(10_000), key="ds_1")
    >>> round(float(mask.mean()), 2)
    0.3
    >>> bool((holdout_mask(np.arange(5), key="ds_1") == mask[:5]).all())
    True
    """
    salt = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rows = np.asarray(row_indices, dtype=np.uint64)
    # SplitMix64's finaliser: a well-mixed 64-bit hash of (row, salt), cheap and vectorised.
    with np.errstate(over="ignore"):
        h = rows + np.uint64(salt) + np.uint64(0x9E3779B97F4A7C15)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(31))
    return np.asarray((h >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction)


def quality(labels: npt.ArrayLike, scores: Float64Array) -> dict[str, Any]:
    """ROC-AUC, PR-AUC (average precision) and precision at k (k = the number of labelled anomalies) of
    `scores` against 0/1 `labels`; the metrics are None when one class is missing.

    Examples
    --------
    >>> quality([0, 0, 1, 1], np.array([0.1, 0.2, 0.9, 0.3]))
    {'labelled': 4, 'anomalies': 2, 'roc_auc': 1.0, 'pr_auc': 1.0, 'precision_at_k': 1.0, 'k': 2}
    """
    # Imported here, as scipy below: each costs seconds of server start-up, paid by the first use instead.
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    positives = int(y.sum())
    result: dict[str, Any] = {"labelled": int(y.shape[0]), "anomalies": positives}
    if positives == 0 or positives == y.shape[0]:
        return {**result, "roc_auc": None, "pr_auc": None, "precision_at_k": None, "k": positives}
    top = np.argsort(-s, kind="stable")[:positives]
    return {
        **result,
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "precision_at_k": float(y[top].mean()),
        "k": positives,
    }


def agreement(
    scores_a: Float64Array, flags_a: npt.NDArray[np.bool_], scores_b: Float64Array, flags_b: npt.NDArray[np.bool_]
) -> dict[str, Any]:
    """How far two versions agree on the same rows: Spearman rank correlation of scores, overlap of flagged rows.

    Examples
    --------
    >>> a = np.array([1.0, 2.0, 3.0, 4.0])
    >>> agreement(a, a > 2.5, a * 2, a > 1.5)["flagged_jaccard"]
    0.6666666666666666
    """
    from scipy.stats import spearmanr

    both = int((flags_a & flags_b).sum())
    either = int((flags_a | flags_b).sum())
    rho = float(spearmanr(scores_a, scores_b).statistic) if scores_a.shape[0] > 1 else None
    return {
        "rows": int(scores_a.shape[0]),
        "spearman": rho if rho is None or np.isfinite(rho) else None,
        "flagged_a": int(flags_a.sum()),
        "flagged_b": int(flags_b.sum()),
        "flagged_both": both,
        "flagged_jaccard": both / either if either else 1.0,
    }


def fpr_threshold(normal_scores: Float64Array, target_fpr: float) -> float:
    """The threshold that flags a `target_fpr` share of rows known (or assumed) to be normal.

    Examples
    --------
    >>> fpr_threshold(np.arange(101, dtype=np.float64), 0.05)
    95.0
    """
    if normal_scores.shape[0] == 0:
        raise ValueError("a false-positive-rate threshold needs reference rows")
    return float(np.quantile(normal_scores, 1 - target_fpr))
