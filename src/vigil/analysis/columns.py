"""What every analysis shares: column kinds from polars dtypes, frames as lazy scans, JSON-safe values, errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import polars as pl

ColumnKind = Literal["numeric", "categorical", "boolean", "datetime"]
Frame = pl.DataFrame | pl.LazyFrame
Progress = Callable[[float], None]
# A report is plain JSON: str keys, and values that `json.dumps(..., allow_nan=False)` accepts.
Report = dict[str, Any]


class AnalysisError(ValueError):
    """A request the engine cannot honour (an unknown column, a contradictory expectation…).

    `errors` lists each wrong field as ``{"loc": [...], "msg": ...}``, the shape the API reports.
    """

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def kind_of(dtype: pl.DataType) -> ColumnKind:
    """The analysis kind of a polars dtype.

    >>> kind_of(pl.Int64()), kind_of(pl.Boolean()), kind_of(pl.Datetime()), kind_of(pl.String())
    ('numeric', 'boolean', 'datetime', 'categorical')
    """
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype.is_temporal() and dtype not in (pl.Duration, pl.Time):
        return "datetime"
    return "categorical"


def lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def kinds_of(frame: Frame) -> dict[str, ColumnKind]:
    """Every column's kind, in column order, read from the schema alone (nothing is loaded)."""
    return {name: kind_of(dtype) for name, dtype in lazy(frame).collect_schema().items()}


def height_of(frame: Frame) -> int:
    if isinstance(frame, pl.DataFrame):
        return frame.height
    return int(frame.select(pl.len()).collect().item())


def missing(column: str, dtype: pl.DataType) -> pl.Expr:
    """Null, or NaN for a float column: both are a missing value to an analyst."""
    expr = pl.col(column).is_null()
    return expr | pl.col(column).is_nan() if dtype.is_float() else expr


def valued(column: str, dtype: pl.DataType) -> pl.Expr:
    """The column with NaN turned into null, so every aggregation skips it."""
    return pl.col(column).fill_nan(None) if dtype.is_float() else pl.col(column)


def check_columns(frame: Frame, columns: Iterable[str] | None, *, field: str = "columns") -> list[str]:
    """The requested columns (all when None), refusing names the frame does not have."""
    names = list(lazy(frame).collect_schema().names())
    if columns is None:
        return names
    wanted = list(dict.fromkeys(columns))
    unknown = [c for c in wanted if c not in set(names)]
    if unknown:
        raise AnalysisError(
            f"No such column(s): {', '.join(map(repr, unknown[:10]))}.",
            errors=[{"loc": [field, c], "msg": "no such column"} for c in unknown[:50]],
        )
    return wanted


def clean(value: Any) -> Any:
    """A value made JSON-safe: numpy scalars as Python ones, NaN/inf as None, timestamps as ISO-8601 text.

    >>> clean({"a": np.float64("nan"), "b": [np.int64(3), 2.5], "c": float("inf")})
    {'a': None, 'b': [3, 2.5], 'c': None}
    """
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    return value


def progress_steps(progress: Progress | None, start: float, end: float, steps: int) -> Callable[[int], None]:
    """A reporter for step i of `steps`, mapped linearly onto [start, end] percent."""

    def report(i: int) -> None:
        if progress is not None:
            progress(start + (end - start) * min(1.0, i / max(steps, 1)))

    return report
