"""Profiling: what each column holds, what is missing, how the columns relate — in a few columnar passes.

Numeric columns are sorted once per batch of columns (as polars' own `describe()` does), which makes the
quantiles, the distinct count, the histogram and the most frequent values cheap reads of the sorted data;
everything else is one aggregated `select`. A lazy scan reads only a batch of columns at a time, so profiling a
large Parquet file holds about one batch in memory, not the whole dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from vigil.analysis.columns import (
    ColumnKind,
    Frame,
    Progress,
    Report,
    check_columns,
    clean,
    height_of,
    kind_of,
    lazy,
    progress_steps,
    valued,
)
from vigil.analysis.correlation import DEFAULT_MAX_COLUMNS, DEFAULT_SAMPLE_ROWS, correlations
from vigil.analysis.label import label_classes, label_relevance, split_label

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_HASH_MIX = np.uint64(0x9E3779B97F4A7C15)
_FIXED_BYTES = {
    pl.Int8: 1, pl.UInt8: 1, pl.Int16: 2, pl.UInt16: 2, pl.Int32: 4, pl.UInt32: 4, pl.Float32: 4, pl.Date: 4,
    pl.Int64: 8, pl.UInt64: 8, pl.Float64: 8, pl.Datetime: 8, pl.Duration: 8, pl.Time: 8, pl.Int128: 16,
}  # fmt: skip


@dataclass(frozen=True)
class ProfileOptions:
    """What to profile and how much detail to keep.

    `columns` limits the per-column part (all columns by default); `duplicates` and `correlations` switch off
    the dataset-level passes; `column_batch` bounds how many columns are in memory at once. `label` names the
    dataset's known answer: it is left out of the features (their profiles and correlations), summarised as classes
    under ``label``, and the target of ``relevance``.
    """

    columns: Sequence[str] | None = None
    top_values: int = 10
    bins: int = 20
    duplicates: bool = True
    correlations: bool = True
    correlation_sample_rows: int = DEFAULT_SAMPLE_ROWS
    correlation_max_columns: int = DEFAULT_MAX_COLUMNS
    column_batch: int = 16
    label: str | None = None
    relevance_rows: int = 5_000


def quantile_key(q: float) -> str:
    """>>> quantile_key(0.05), quantile_key(0.5)
    ('p5', 'p50')
    """
    return f"p{q * 100:g}"


def profile(frame: Frame, *, options: ProfileOptions | None = None, progress: Progress | None = None) -> Report:
    """Profiles a frame (a DataFrame, or a LazyFrame such as `pl.scan_parquet(path)`).

    Returns ``{"dataset": {rows, columns, duplicate_rows, memory_bytes, kinds}, "columns": [...],
    "correlations": {...}}``; each column entry has its ``kind`` and the statistics for that kind.

    >>> frame = pl.DataFrame({"x": [1.0, 2.0, 2.0, None], "city": ["a", "b", "b", "b"]})
    >>> report = profile(frame)
    >>> report["dataset"]["rows"], report["dataset"]["duplicate_rows"]
    (4, 1)
    >>> x = report["columns"][0]
    >>> x["count"], x["missing"], x["distinct"], x["mean"], x["quantiles"]["p50"]
    (3, 1, 2, 1.6666666666666667, 2.0)
    >>> report["columns"][1]["top_values"][0]
    {'value': 'b', 'count': 3, 'share': 0.75}
    """
    options = options or ProfileOptions()
    scan = lazy(frame)
    schema = scan.collect_schema()
    columns = split_label(frame, check_columns(frame, options.columns), options.label)
    height = height_of(frame)
    batches = [columns[i : i + options.column_batch] for i in range(0, len(columns), max(1, options.column_batch))]
    steps = progress_steps(progress, 0.0, 80.0, len(batches))
    steps(0)
    profiles: dict[str, Report] = {}
    row_hash: np.ndarray | None = None
    # Duplicates are whole rows (the label included): hashed batch by batch when the batches are whole rows.
    hash_all = options.duplicates and options.columns is None and options.label is None
    for i, batch in enumerate(batches):
        found, batch_hash = _profile_batch(scan, {c: schema[c] for c in batch}, height, options, hash_all)
        profiles.update(found)
        if batch_hash is not None:
            row_hash = batch_hash if row_hash is None else (row_hash * _HASH_MIX) ^ batch_hash
        steps(i + 1)
    if options.duplicates and not hash_all:
        _, row_hash = _profile_batch(scan, {}, height, options, True, hash_columns=list(schema.names()))
    numeric = [c for c in columns if profiles[c]["kind"] == "numeric"]
    report: Report = {
        "dataset": {
            "rows": height,
            "columns": len(schema),
            "profiled_columns": len(columns),
            "duplicate_rows": duplicate_count(row_hash) if options.duplicates else None,
            "memory_bytes": sum(int(profiles[c].pop("memory_bytes")) for c in columns),
            "kinds": {kind: sum(1 for c in columns if profiles[c]["kind"] == kind) for kind in _KINDS},
        },
        "columns": [profiles[c] for c in columns],
        "correlations": correlations(
            scan,
            numeric,
            sample_rows=options.correlation_sample_rows,
            max_columns=options.correlation_max_columns,
        )
        if options.correlations
        else None,
        "label": None,
        "relevance": None,
        "parameters": {
            "top_values": options.top_values,
            "bins": options.bins,
            "quantiles": list(QUANTILES),
            "label_column": options.label,
        },
    }
    if options.label is not None:
        if progress is not None:
            progress(90.0)
        report["label"] = label_classes(scan, options.label)
        report["relevance"] = label_relevance(scan, columns, options.label, max_rows=options.relevance_rows, seed=0)
    if progress is not None:
        progress(100.0)
    return clean(report)  # type: ignore[no-any-return]


_KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "boolean", "datetime")


def duplicate_count(row_hash: np.ndarray | None) -> int:
    """Rows that repeat an earlier row (by a 64-bit hash of the whole row)."""
    if row_hash is None or row_hash.size == 0:
        return 0
    return int(row_hash.size - pl.Series(row_hash).n_unique())


def _profile_batch(
    scan: pl.LazyFrame,
    schema: dict[str, pl.DataType],
    height: int,
    options: ProfileOptions,
    with_hash: bool,
    hash_columns: list[str] | None = None,
) -> tuple[dict[str, Report], np.ndarray | None]:
    kinds = {c: kind_of(dtype) for c, dtype in schema.items()}
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    queries = [
        scan.select(valued(c, schema[c]).sort().alias(c) for c in numeric),
        scan.select([pl.len().alias("__rows"), *_scalar_exprs(schema, kinds, options)]),
    ]
    hashed = hash_columns if hash_columns is not None else list(schema)
    if with_hash and hashed:
        queries.append(scan.select(pl.struct(hashed).hash(seed=0).alias("h")))
    results = pl.collect_all(queries)
    sorted_frame, scalars = results[0], results[1].row(0, named=True)
    row_hash = results[2].to_series().to_numpy() if len(results) > 2 else None
    profiles: dict[str, Report] = {}
    numeric_stats = _numeric_stats(sorted_frame, options) if numeric else {}
    for c, kind in kinds.items():
        base: Report = {"name": c, "kind": kind, "dtype": str(schema[c])}
        if kind == "numeric":
            base |= numeric_stats[c]
            base["nan"] = scalars[f"{c}|nan"]
            base["missing"] = height - base["count"]
            base["memory_bytes"] = height * _FIXED_BYTES.get(type(schema[c]), 8) + height // 8
        elif kind == "datetime":
            base |= _datetime_stats(scan, c, scalars, height, options)
        else:
            base |= _discrete_stats(c, kind, scalars, height)
        base["missing_share"] = base["missing"] / height if height else 0.0
        profiles[c] = base
    return profiles, row_hash


def _scalar_exprs(
    schema: dict[str, pl.DataType], kinds: dict[str, ColumnKind], options: ProfileOptions
) -> list[pl.Expr]:
    exprs: list[pl.Expr] = []
    k = options.top_values
    for c, kind in kinds.items():
        x = pl.col(c)
        if kind == "numeric":
            exprs.append((x.is_nan().sum() if schema[c].is_float() else pl.lit(0)).alias(f"{c}|nan"))
            continue
        exprs += [x.count().alias(f"{c}|count"), x.n_unique().alias(f"{c}|n_unique")]
        if kind in ("categorical", "boolean"):
            top = x.drop_nulls().value_counts(sort=True, name="count").head(k).implode()
            exprs.append(top.alias(f"{c}|top"))
        if kind == "categorical":
            text = x.cast(pl.String)
            exprs += [
                (text == "").sum().alias(f"{c}|empty"),
                text.str.len_chars().min().alias(f"{c}|min_length"),
                text.str.len_chars().max().alias(f"{c}|max_length"),
                text.str.len_bytes().sum().alias(f"{c}|bytes"),
            ]
        elif kind == "boolean":
            exprs.append(x.sum().alias(f"{c}|true"))
        else:
            exprs += [x.min().alias(f"{c}|min"), x.max().alias(f"{c}|max")]
    return exprs


def _numeric_stats(sorted_frame: pl.DataFrame, options: ProfileOptions) -> dict[str, Report]:
    """Everything about numeric columns, from the columns sorted with NaN as null (nulls first)."""
    exprs: list[pl.Expr] = []
    for c in sorted_frame.columns:
        x = pl.col(c)
        exprs += [
            x.count().alias(f"{c}|count"),
            x.min().alias(f"{c}|min"),
            x.max().alias(f"{c}|max"),
            x.mean().alias(f"{c}|mean"),
            x.std().alias(f"{c}|std"),
            x.skew(bias=True).alias(f"{c}|skewness"),
            x.kurtosis(fisher=True, bias=True).alias(f"{c}|kurtosis"),
            (x == 0).sum().alias(f"{c}|zeros"),
            (x < 0).sum().alias(f"{c}|negatives"),
            x.is_infinite().sum().alias(f"{c}|infinite"),
            # Sorted: a value differing from its predecessor starts a new distinct value.
            (x.drop_nulls() != x.drop_nulls().shift(1)).sum().alias(f"{c}|changes"),
            *(x.quantile(q, "linear").alias(f"{c}|{quantile_key(q)}") for q in QUANTILES),
        ]
    row = sorted_frame.lazy().select(exprs).collect().row(0, named=True)
    stats: dict[str, Report] = {}
    for c in sorted_frame.columns:
        count = int(row[f"{c}|count"])
        finite = _finite_values(sorted_frame.get_column(c), count)
        stats[c] = {
            "count": count,
            "distinct": int(row[f"{c}|changes"]) + 1 if count else 0,
            "min": row[f"{c}|min"],
            "max": row[f"{c}|max"],
            "mean": row[f"{c}|mean"],
            "std": row[f"{c}|std"],
            "quantiles": {quantile_key(q): row[f"{c}|{quantile_key(q)}"] for q in QUANTILES},
            "skewness": row[f"{c}|skewness"],
            "kurtosis": row[f"{c}|kurtosis"],
            "zeros": row[f"{c}|zeros"],
            "negatives": row[f"{c}|negatives"],
            "infinite": row[f"{c}|infinite"],
            "histogram": histogram(finite, options.bins),
        }
        stats[c]["top_values"] = (
            _sorted_top_values(sorted_frame.get_column(c), count, options.top_values)
            if stats[c]["distinct"] < count
            else []
        )
    return stats


def _finite_values(sorted_column: pl.Series, count: int) -> np.ndarray:
    present = sorted_column.slice(sorted_column.len() - count, count)  # nulls sort first
    values = present.cast(pl.Float64).to_numpy()
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def histogram(sorted_values: np.ndarray, bins: int) -> Report:
    """`numpy.histogram(values, bins)` for sorted finite values, by binary search instead of a scan.

    >>> histogram(np.array([0.0, 1.0, 1.0, 4.0]), 4)
    {'edges': [0.0, 1.0, 2.0, 3.0, 4.0], 'counts': [1, 2, 0, 1]}
    """
    if sorted_values.size == 0:
        return {"edges": [], "counts": []}
    low, high = float(sorted_values[0]), float(sorted_values[-1])
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    positions = np.searchsorted(sorted_values, edges[:-1], side="left")
    counts = np.diff(np.append(positions, sorted_values.size))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def _sorted_top_values(sorted_column: pl.Series, count: int, k: int) -> list[Report]:
    present = sorted_column.slice(sorted_column.len() - count, count)
    runs = present.rle().struct.unnest().sort(["len", "value"], descending=[True, False]).head(k)
    return [
        {"value": value, "count": int(n), "share": int(n) / count}
        for n, value in zip(runs["len"].to_list(), runs["value"].to_list(), strict=True)
    ]


def _discrete_stats(c: str, kind: ColumnKind, scalars: dict[str, Any], height: int) -> Report:
    count = int(scalars[f"{c}|count"])
    distinct = int(scalars[f"{c}|n_unique"]) - (1 if count < height else 0)  # n_unique counts null as a value
    top = [
        {"value": item[c], "count": int(item["count"]), "share": int(item["count"]) / count if count else 0.0}
        for item in scalars[f"{c}|top"] or []
    ]
    stats: Report = {
        "count": count,
        "missing": height - count,
        "distinct": distinct,
        "cardinality": distinct,
        "cardinality_ratio": distinct / count if count else 0.0,
        "top_values": top,
        "frequencies": {"top_share": sum(t["share"] for t in top), "other_count": count - sum(t["count"] for t in top)},
    }
    if kind == "categorical":
        stats |= {
            "empty": int(scalars[f"{c}|empty"] or 0),
            "min_length": scalars[f"{c}|min_length"],
            "max_length": scalars[f"{c}|max_length"],
            "memory_bytes": int(scalars[f"{c}|bytes"] or 0) + 4 * (height + 1) + height // 8,
        }
    else:
        true = int(scalars[f"{c}|true"] or 0)
        stats |= {"true": true, "false": count - true, "memory_bytes": height // 8 * 2 + 2}
    return stats


def _datetime_stats(
    scan: pl.LazyFrame, c: str, scalars: dict[str, Any], height: int, options: ProfileOptions
) -> Report:
    count = int(scalars[f"{c}|count"])
    distinct = int(scalars[f"{c}|n_unique"]) - (1 if count < height else 0)
    stats: Report = {
        "count": count,
        "missing": height - count,
        "distinct": distinct,
        "min": scalars[f"{c}|min"],
        "max": scalars[f"{c}|max"],
        "range_seconds": (scalars[f"{c}|max"] - scalars[f"{c}|min"]).total_seconds() if count else None,
        "memory_bytes": 8 * height + height // 8,
        "top_values": [],
    }
    instants = scan.select(pl.col(c).drop_nulls().cast(pl.Datetime("us")).cast(pl.Int64)).collect().to_series()
    values = np.sort(instants.to_numpy()) / 1e6  # seconds since the epoch
    stats["histogram"] = histogram(values, options.bins)
    stats["gaps"] = _gaps(np.unique(values))
    return stats


def _gaps(unique_seconds: np.ndarray) -> Report | None:
    """Intervals between consecutive distinct instants: the typical one, the largest, and how many are unusually
    long (more than three times the median), which is where data is missing in time."""
    if unique_seconds.size < 2:
        return None
    intervals = np.diff(unique_seconds)
    median = float(np.median(intervals))
    widest = int(np.argmax(intervals))
    return {
        "median_seconds": median,
        "max_seconds": float(intervals[widest]),
        "max_gap_start": _iso(unique_seconds[widest]),
        "max_gap_end": _iso(unique_seconds[widest + 1]),
        "large_gaps": int((intervals > 3 * median).sum()) if median > 0 else 0,
    }


def _iso(seconds: float) -> str:
    return str(np.datetime64(round(seconds * 1e6), "us"))
