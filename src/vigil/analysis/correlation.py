"""Pearson and Spearman correlation matrices with pairwise-complete observations, and the strongest pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from vigil.analysis.columns import Frame, Report, clean, height_of, lazy

DEFAULT_SAMPLE_ROWS = 100_000
DEFAULT_MAX_COLUMNS = 50


def numeric_sample(frame: Frame, columns: Sequence[str], *, max_rows: int) -> tuple[np.ndarray, int]:
    """Up to `max_rows` rows of `columns` as a float matrix (NaN for missing), taken at an even stride so the
    sample is deterministic and spread over the whole dataset; also returns the dataset's row count."""
    height = height_of(frame)
    step = max(1, math.ceil(height / max_rows)) if max_rows > 0 else 1
    query = lazy(frame).select(pl.col(c).cast(pl.Float64) for c in columns)
    if step > 1:
        query = query.gather_every(step)
    matrix = query.collect().to_numpy(order="fortran").astype(np.float64, copy=False)
    return matrix, height


def _pearson_pair(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.dot(xc, xc)) * float(np.dot(yc, yc)))
    if denominator == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float(np.dot(xc, yc)) / denominator))


def pearson_matrix(matrix: np.ndarray) -> np.ndarray:
    """Pearson's r for every pair of columns over the rows where both are present (NaN when undefined).

    Pairwise-complete sums come from matrix products of the values and the presence mask, so the cost is a few
    products, not a loop over pairs.

    >>> pearson_matrix(np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 7.0]])).round(3).tolist()
    [[1.0, 0.993], [0.993, 1.0]]
    """
    present = ~np.isnan(matrix)
    if present.all():
        return _complete_pearson(matrix)
    mask = present.astype(np.float64)
    # Centre each column on its own mean first: the sums below then stay small and the result accurate.
    values = np.where(present, matrix, 0.0)
    means = values.sum(axis=0) / np.maximum(present.sum(axis=0), 1)
    centred = np.where(present, values - means, 0.0)
    n = mask.T @ mask
    sx = centred.T @ mask  # sx[i, j]: sum of column i over rows where j is present (and i, as it is 0 elsewhere)
    sxx = (centred**2).T @ mask
    sxy = centred.T @ centred
    with np.errstate(all="ignore"):
        covariance = n * sxy - sx * sx.T
        variance = (n * sxx - sx**2) * (n * sxx - sx**2).T
        result = covariance / np.sqrt(variance)
    result[(n < 2) | ~(variance > 0)] = np.nan
    clipped: np.ndarray = np.clip(result, -1.0, 1.0)
    return clipped


def _complete_pearson(matrix: np.ndarray) -> np.ndarray:
    """Without missing values, one matrix product (a constant column correlates with nothing: NaN)."""
    if matrix.shape[0] < 2:
        return np.full((matrix.shape[1],) * 2, np.nan)
    centred = matrix - matrix.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(all="ignore"):
        result = (centred.T @ centred) / np.outer(norms, norms)
    result[:, norms == 0] = np.nan
    result[norms == 0, :] = np.nan
    clipped: np.ndarray = np.clip(result, -1.0, 1.0)
    return clipped


class _Ranker:
    """Average ranks of one column's values within any subset of its rows, in O(n) per subset: the column is
    sorted once, and a subset's ranks are counts of kept rows before each group of tied values."""

    def __init__(self, column: np.ndarray) -> None:
        rows = np.flatnonzero(~np.isnan(column))
        self.order = rows[np.argsort(column[rows], kind="stable")]
        ordered = column[self.order]
        self.groups = np.concatenate(([0], np.cumsum(ordered[1:] != ordered[:-1]))) if ordered.size else ordered
        self.size = column.size

    def ranks(self, keep: np.ndarray) -> np.ndarray:
        """Ranks (1-based, ties averaged) among the rows where `keep` is true; NaN elsewhere."""
        kept = keep[self.order]
        counts = np.bincount(self.groups.astype(np.intp), weights=kept)
        before = np.cumsum(counts) - counts
        ranks = np.full(self.size, np.nan)
        ranks[self.order] = np.where(kept, (before + (counts + 1) / 2)[self.groups.astype(np.intp)], np.nan)
        return ranks


def spearman_matrix(matrix: np.ndarray) -> np.ndarray:
    """Spearman's rho (Pearson's r of average ranks) for every pair, ranked within the rows where both are
    present — as `scipy.stats.spearmanr` on those rows."""
    from scipy import stats

    k = matrix.shape[1]
    present = ~np.isnan(matrix)
    if present.all():
        return pearson_matrix(stats.rankdata(matrix, axis=0)) if k else np.empty((0, 0))
    complete = present.all(axis=0)
    result = np.full((k, k), np.nan)
    if complete.any():
        block = pearson_matrix(stats.rankdata(matrix[:, complete], axis=0))
        result[np.ix_(complete, complete)] = block
    rankers = [_Ranker(matrix[:, i]) for i in range(k)]
    for i in range(k):
        for j in range(i, k):
            if complete[i] and complete[j]:
                continue
            both = present[:, i] & present[:, j]
            x, y = rankers[i].ranks(both)[both], rankers[j].ranks(both)[both]
            result[i, j] = result[j, i] = _pearson_pair(x, y)
    return result


def strongest_pairs(
    columns: Sequence[str], pearson: np.ndarray, spearman: np.ndarray, *, top: int = 10
) -> list[dict[str, object]]:
    """The pairs with the largest absolute correlation (either kind), strongest first."""
    pairs = []
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            p, s = pearson[i, j], spearman[i, j]
            strength = np.nanmax([abs(p), abs(s)]) if not (np.isnan(p) and np.isnan(s)) else math.nan
            if not math.isnan(strength):
                pairs.append((float(strength), columns[i], columns[j], p, s))
    pairs.sort(key=lambda item: -item[0])
    return [{"a": a, "b": b, "pearson": clean(p), "spearman": clean(s)} for _, a, b, p, s in pairs[:top]]


def correlations(
    frame: Frame,
    columns: Sequence[str],
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    top: int = 10,
) -> Report:
    """Both matrices over numeric `columns` (at most `max_columns` of them), on an even sample of rows.

    >>> frame = pl.DataFrame({"x": [1.0, 2, 3, 4], "y": [2.0, 4, 6, 5], "z": [4.0, 3, 2, 1]})
    >>> report = correlations(frame, ["x", "y", "z"])
    >>> top = report["strongest"][0]
    >>> top["a"], top["b"], round(top["pearson"], 6), round(top["spearman"], 6)
    ('x', 'z', -1.0, -1.0)
    """
    chosen = list(columns)[:max_columns]
    if not chosen:
        return {"columns": [], "pearson": [], "spearman": [], "strongest": [], "sample_rows": 0, "omitted": []}
    matrix, height = numeric_sample(frame, chosen, max_rows=sample_rows)
    with np.errstate(all="ignore"):
        pearson, spearman = pearson_matrix(matrix), spearman_matrix(matrix)
    return {
        "columns": chosen,
        "pearson": clean(pearson),
        "spearman": clean(spearman),
        "strongest": strongest_pairs(chosen, pearson, spearman, top=top),
        "sample_rows": int(matrix.shape[0]),
        "rows": height,
        "omitted": list(columns)[max_columns:],
    }
