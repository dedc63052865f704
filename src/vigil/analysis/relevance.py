"""Feature relevance for anomaly detection: which columns drive a detector's scores (permutation importance,
and mutual information with the scores), or carry information about a label column (mutual information).

The engine knows nothing of detectors: a `Scorer` is any callable from a frame to one score per row (higher =
more anomalous) together with the features it reads. The detectors domain supplies one from a trained model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from vigil.analysis.columns import Frame, Report, height_of, kind_of, lazy

DISCRETE_TARGET_MAX_VALUES = 20


@dataclass(frozen=True)
class Scorer:
    """A trained detector seen from the engine: `score(frame)` returns one anomaly score per row."""

    features: Sequence[str]
    score: Callable[[pl.DataFrame], np.ndarray]
    name: str = "detector"


def relevance_sample(frame: Frame, columns: Sequence[str], *, max_rows: int, seed: int) -> pl.DataFrame:
    """Up to `max_rows` rows, chosen at random with a seed (all rows, in order, when there are fewer)."""
    height = height_of(frame)
    data = lazy(frame).select(list(dict.fromkeys(columns)))
    if height <= max_rows:
        return data.collect()
    rows = np.sort(np.random.default_rng(seed).choice(height, size=max_rows, replace=False))
    return data.with_row_index("__row").filter(pl.col("__row").is_in(rows.tolist())).drop("__row").collect()


def feature_matrix(frame: pl.DataFrame, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features as a float matrix for mutual information: text as category codes, missing values as the
    column's median (or code −1); and which columns are discrete."""
    columns, discrete = [], []
    for name in features:
        series = frame.get_column(name)
        kind = kind_of(series.dtype)
        if kind == "categorical":
            values = series.cast(pl.String).fill_null("").cast(pl.Categorical).to_physical().cast(pl.Float64)
            columns.append(values.to_numpy())
            discrete.append(True)
            continue
        values = series.cast(pl.Float64).fill_nan(None)
        median = values.median()
        filled = values.fill_null(median if isinstance(median, float) else 0.0).to_numpy().copy()
        filled[~np.isfinite(filled)] = median if isinstance(median, float) else 0.0
        columns.append(filled)
        discrete.append(kind == "boolean")
    matrix = np.column_stack(columns) if columns else np.empty((frame.height, 0))
    return matrix, np.array(discrete, dtype=bool)


def mutual_information(
    matrix: np.ndarray, discrete: np.ndarray, target: np.ndarray, *, discrete_target: bool, seed: int
) -> np.ndarray:
    """Mutual information (nats) of each feature with the target, by scikit-learn's nearest-neighbour estimator.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 2))
    >>> mi = mutual_information(x, np.array([False, False]), x[:, 0] ** 2, discrete_target=False, seed=0)
    >>> bool(mi[0] > 0.5 > mi[1])
    True
    """
    # Imported here, as scipy and scikit-learn are below: each costs seconds of server start-up.
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if matrix.shape[1] == 0 or matrix.shape[0] < 4:
        return np.zeros(matrix.shape[1])
    estimate = mutual_info_classif if discrete_target else mutual_info_regression
    result: np.ndarray = estimate(matrix, target, discrete_features=discrete, random_state=seed, n_neighbors=3)
    return result


def permutation_importance(
    frame: pl.DataFrame, scorer: Scorer, *, repeats: int, seed: int
) -> tuple[np.ndarray, dict[str, tuple[float, float, float]]]:
    """For each feature: shuffle it, rescore, and measure how far the scores move — the mean absolute change in
    units of the scores' standard deviation (mean and std over `repeats` shuffles), and the Spearman correlation
    between the original and the shuffled scores (1 = the feature does not matter)."""
    from scipy import stats

    base = np.asarray(scorer.score(frame), dtype=np.float64)
    spread = float(base.std()) or 1.0
    rng = np.random.default_rng(seed)
    found: dict[str, tuple[float, float, float]] = {}
    for name in scorer.features:
        changes, rank_correlations = [], []
        for _ in range(repeats):
            order = rng.permutation(frame.height)
            shuffled = frame.with_columns(frame.get_column(name).gather(order).alias(name))
            scores = np.asarray(scorer.score(shuffled), dtype=np.float64)
            changes.append(float(np.mean(np.abs(scores - base))) / spread)
            with np.errstate(all="ignore"):
                rho = stats.spearmanr(base, scores).statistic if np.ptp(scores) and np.ptp(base) else math.nan
            rank_correlations.append(float(rho))
        found[name] = (float(np.mean(changes)), float(np.std(changes)), float(np.nanmean(rank_correlations)))
    return base, found


def _is_discrete(target: pl.Series) -> bool:
    kind = kind_of(target.dtype)
    if kind in ("categorical", "boolean"):
        return True
    return target.dtype.is_integer() and target.n_unique() <= DISCRETE_TARGET_MAX_VALUES


def relevance(
    frame: Frame,
    *,
    features: Sequence[str],
    target: str | None = None,
    scorer: Scorer | None = None,
    max_rows: int = 5_000,
    repeats: int = 3,
    seed: int = 0,
) -> Report:
    """Ranks `features` by how much they matter: to `scorer`'s scores (permutation importance, then mutual
    information with the scores), else to the `target` column (mutual information, then |Spearman|)."""
    from scipy import stats

    if scorer is None and target is None:
        raise ValueError("relevance needs a target column or a scorer")
    sample = relevance_sample(frame, [*features, *([target] if target else [])], max_rows=max_rows, seed=seed)
    matrix, discrete = feature_matrix(sample, features)
    importance: dict[str, tuple[float, float, float]] = {}
    if scorer is not None:
        values, importance = permutation_importance(sample, scorer, repeats=repeats, seed=seed)
        discrete_target, method, target_name = False, "permutation", scorer.name
    else:
        assert target is not None
        column = sample.get_column(target)
        discrete_target, method, target_name = _is_discrete(column), "mutual_information", target
        present = column.is_not_null().to_numpy()
        if kind_of(column.dtype) in ("categorical", "boolean"):
            values = column.cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Float64).to_numpy()
        else:
            values = column.cast(pl.Float64).to_numpy()
        present &= np.isfinite(values)
        matrix, values = matrix[present], values[present]
    mi = mutual_information(matrix, discrete, values, discrete_target=discrete_target, seed=seed)
    rows = []
    for i, name in enumerate(features):
        with np.errstate(all="ignore"):
            column_values = matrix[:, i]
            rho = (
                float(stats.spearmanr(column_values, values).statistic)
                if column_values.size > 2 and np.ptp(column_values) and np.ptp(values)
                else math.nan
            )
        entry: Report = {"feature": name, "mutual_information": float(mi[i]), "spearman": rho}
        if name in importance:
            mean, std, rank_corr = importance[name]
            entry |= {"permutation_importance": mean, "permutation_std": std, "score_rank_correlation": rank_corr}
        rows.append(entry)
    key = "permutation_importance" if scorer is not None else "mutual_information"
    rows.sort(key=lambda r: (-r[key], r["feature"]))
    total = sum(max(r[key], 0.0) for r in rows) or 1.0
    for rank, entry in enumerate(rows, start=1):
        entry["rank"], entry["share"] = rank, max(entry[key], 0.0) / total
    return {
        "method": method,
        "target": target_name,
        "discrete_target": discrete_target,
        "sample_rows": int(sample.height),
        "features": rows,
    }
