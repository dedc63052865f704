"""Turning a frame's feature columns into the float64 matrix a detector sees: imputation, encoding, scaling.

What is learned at fit time (fill values, categories, scaling statistics) is kept in a `FittedPreprocessor`, so
scoring applies exactly the training-time transformation. With nothing to do (numeric features, no missing values,
no scaling) the matrix is the frame's own `to_numpy()` in row-major order, values unperturbed: scores then equal the
library's on that matrix bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import polars as pl

from vigil.ml.entry import Float64Array
from vigil.ml.errors import InvalidFeatures, MLError

__all__ = ["Categorical", "FittedPreprocessor", "Missing", "Preprocessing", "Scaling", "fit_preprocessor"]

Scaling = Literal["none", "standard", "minmax", "robust"]
Categorical = Literal["onehot", "ordinal", "error"]
Missing = Literal["mean", "median", "zero", "error"]
Kind = Literal["numeric", "categorical"]

UNSEEN = -1
"""Ordinal code of a category (or a null) not seen at training time."""


@dataclass(frozen=True)
class Preprocessing:
    """How feature columns become numbers.

    scaling
        ``none``, ``standard`` (zero mean, unit variance), ``minmax`` (to [0, 1]) or ``robust`` (median and
        inter-quartile range), learned on the training rows; applies to numeric features.
    categorical
        Text columns: ``onehot`` (unseen categories: all zeros), ``ordinal`` (codes by sorted category; unseen:
        -1) or ``error`` (text features are refused).
    missing
        Nulls and NaN in numeric features: replaced by the training ``mean``, ``median`` or ``zero``, or
        refused (``error``). A null category is treated as unseen unless ``error``.

    Examples
    --------
    >>> Preprocessing(**{"scaling": "standard"})
    Preprocessing(scaling='standard', categorical='error', missing='median')
    """

    scaling: Scaling = "none"
    categorical: Categorical = "error"
    missing: Missing = "median"

    def __post_init__(self) -> None:
        for name, allowed in (("scaling", Scaling), ("categorical", Categorical), ("missing", Missing)):
            if getattr(self, name) not in get_args(allowed):
                raise MLError(f"preprocessing.{name} must be one of {', '.join(get_args(allowed))}.")


def _error(column: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["features", column], "msg": msg, "type": kind}


def _raise(errors: list[dict[str, Any]], what: str) -> None:
    if errors:
        columns = ", ".join(repr(e["loc"][-1]) for e in errors[:10])
        raise InvalidFeatures(f"{what}: {columns}.", errors=errors)


def _kind(dtype: pl.DataType) -> Kind | None:
    if dtype.is_numeric() or isinstance(dtype, pl.Boolean | pl.Null):
        return "numeric"
    if isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
        return "categorical"
    return None


def _check_present(frame: pl.DataFrame, features: Sequence[str]) -> None:
    present = set(frame.columns)
    _raise(
        [_error(name, "no such column", "missing_column") for name in features if name not in present],
        "Missing feature column(s)",
    )


def _numeric_matrix(frame: pl.DataFrame, columns: Sequence[str]) -> Float64Array:
    """The columns as one float64 matrix (nulls as NaN); a plain `to_numpy()` when they already are float64."""
    selected = frame.select(columns)
    if any(dtype != pl.Float64 for dtype in selected.dtypes):
        selected = selected.select(pl.all().cast(pl.Float64))
    # Row-major: polars hands over a column-major copy, and estimators that walk rows (the tree ensembles, the
    # neighbour searches) convert or stride through it; in C order the same scores come ~20% sooner on big batches.
    matrix: Float64Array = np.ascontiguousarray(selected.to_numpy())
    return matrix


def _finite_problems(X: Float64Array, columns: Sequence[str], *, refuse_nan: bool) -> None:
    """Raises `InvalidFeatures` for infinities (always) and NaN/nulls (when refused). Only called on a miss."""
    errors = [
        _error(name, "contains infinite values", "finite_number") for name in _where(np.isinf(X).any(axis=0), columns)
    ]
    if refuse_nan:
        errors += [
            _error(name, "contains missing values (preprocessing.missing is 'error')", "missing")
            for name in _where(np.isnan(X).any(axis=0), columns)
        ]
    _raise(errors, "Non-finite or missing values in feature(s)")


def _where(column_mask: npt.ArrayLike, columns: Sequence[str]) -> list[str]:
    return [columns[int(i)] for i in np.flatnonzero(column_mask)]


def _fill_values(X: Float64Array, columns: Sequence[str], missing: Missing) -> Float64Array:
    if missing in ("zero", "error"):
        return np.zeros(X.shape[1])
    _raise(
        [
            _error(name, "has no values to learn a fill value from", "missing")
            for name in _where(np.isnan(X).all(axis=0), columns)
        ],
        "Feature(s) with only missing values",
    )
    statistic = np.nanmean if missing == "mean" else np.nanmedian
    return np.asarray(statistic(X, axis=0), dtype=np.float64)


def _scaling_statistics(X: Float64Array, scaling: Scaling) -> tuple[Float64Array, Float64Array] | None:
    if scaling == "none":
        return None
    if scaling == "standard":
        center, spread = X.mean(axis=0), X.std(axis=0)
    elif scaling == "minmax":
        center, spread = X.min(axis=0), np.ptp(X, axis=0)
    else:
        q25, center, q75 = np.percentile(X, [25, 50, 75], axis=0)
        spread = q75 - q25
    # A constant column carries no information; dividing by 1 keeps it constant instead of making it NaN.
    return np.asarray(center, dtype=np.float64), np.where(spread > 0, spread, 1.0).astype(np.float64)


@dataclass(frozen=True)
class FittedPreprocessor:
    """The transformation learned from training rows; `transform` applies it to any frame with the features.

    The output holds the numeric features first (in feature order), then each categorical feature's encoding;
    `output_columns` names the output's columns.
    """

    spec: Preprocessing
    features: tuple[str, ...]
    numeric: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    fill: Float64Array
    scaling: tuple[Float64Array, Float64Array] | None

    @property
    def output_columns(self) -> list[str]:
        encoded: list[str] = []
        for name, values in self.categories.items():
            encoded += [f"{name}={value}" for value in values] if self.spec.categorical == "onehot" else [name]
        return [*self.numeric, *encoded]

    @property
    def takes_matrix(self) -> bool:
        """Every feature is numeric: the input can be a float64 matrix of the features in order (`transform_matrix`)
        instead of a frame, which saves building one for a small batch."""
        return not self.categories

    def transform_matrix(self, X: Float64Array) -> Float64Array:
        """`transform` for a float64 matrix whose columns are `features`, in order (only when `takes_matrix`).

        Examples
        --------
        >>> fitted, _ = fit_preprocessor(pl.DataFrame({"x": [1.0, 3.0], "y": [0.0, 2.0]}), ["x", "y"],
        ...                              Preprocessing(scaling="minmax"))
        >>> fitted.transform_matrix(np.array([[2.0, 1.0], [np.nan, 4.0]])).tolist()
        [[0.5, 0.5], [0.5, 2.0]]
        """
        if not self.takes_matrix:
            raise MLError("This model has categorical features; score a frame instead.")
        if X.ndim != 2 or X.shape[1] != len(self.numeric):
            raise InvalidFeatures(f"Expected a matrix of {len(self.numeric)} feature column(s), got shape {X.shape}.")
        return self._finished(X)

    def transform(self, frame: pl.DataFrame) -> Float64Array:
        """The float64 matrix of `frame`'s features, as the detector was trained on.

        Raises `InvalidFeatures` for a missing column, a non-numeric numeric feature, infinite values, and nulls
        when `missing` is ``error``.
        """
        _check_present(frame, self.features)
        _raise(
            [
                _error(name, f"expected numbers, got {frame.schema[name]}", "numeric_type")
                for name in self.numeric
                if _kind(frame.schema[name]) != "numeric"
            ],
            "Non-numeric values in numeric feature(s)",
        )
        blocks = [self._numeric(frame)] if self.numeric else []
        blocks += [self._encode(frame.get_column(name), values) for name, values in self.categories.items()]
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    def _numeric(self, frame: pl.DataFrame) -> Float64Array:
        return self._finished(_numeric_matrix(frame, self.numeric))

    def _finished(self, X: Float64Array) -> Float64Array:
        # One vectorised pass in the common case; the column-by-column diagnosis only runs when something is off.
        if not np.isfinite(X).all():
            _finite_problems(X, self.numeric, refuse_nan=self.spec.missing == "error")
            X = np.where(np.isnan(X), self.fill, X)
        if self.scaling is not None:
            center, spread = self.scaling
            X = (X - center) / spread
        return X

    def _encode(self, column: pl.Series, values: tuple[str, ...]) -> Float64Array:
        if self.spec.missing == "error" and column.null_count():
            _raise(
                [_error(column.name, "contains missing values (preprocessing.missing is 'error')", "missing")],
                "Missing values in feature(s)",
            )
        codes = (
            column.cast(pl.String)
            .replace_strict(list(values), list(range(len(values))), default=UNSEEN, return_dtype=pl.Int64)
            .to_numpy()
        )
        if self.spec.categorical == "ordinal":
            return codes.astype(np.float64).reshape(-1, 1)
        onehot = np.zeros((codes.shape[0], len(values)))
        rows = np.flatnonzero(codes != UNSEEN)
        onehot[rows, codes[rows]] = 1.0
        return onehot


def fit_preprocessor(
    frame: pl.DataFrame, features: Sequence[str], spec: Preprocessing
) -> tuple[FittedPreprocessor, Float64Array]:
    """Learns the transformation from the training rows; returns it and the transformed training matrix.

    Examples
    --------
    >>> frame = pl.DataFrame({"x": [1.0, None, 3.0, 10.0], "city": ["a", "b", "a", None]})
    >>> fitted, X = fit_preprocessor(frame, ["x", "city"], Preprocessing(categorical="onehot"))
    >>> fitted.output_columns
    ['x', 'city=a', 'city=b']
    >>> X.tolist()
    [[1.0, 1.0, 0.0], [3.0, 0.0, 1.0], [3.0, 1.0, 0.0], [10.0, 0.0, 0.0]]
    """
    _check_present(frame, features)
    kinds = {name: _kind(frame.schema[name]) for name in features}
    errors = [
        _error(name, f"a {frame.schema[name]} column cannot be a feature", "feature_type")
        for name, kind in kinds.items()
        if kind is None
    ]
    if spec.categorical == "error":
        errors += [
            _error(
                name,
                "a text column cannot be a feature (set preprocessing.categorical to onehot or ordinal)",
                "feature_type",
            )
            for name, kind in kinds.items()
            if kind == "categorical"
        ]
    _raise(errors, "Unusable feature column(s)")
    numeric = tuple(name for name in features if kinds[name] == "numeric")
    categories = {
        name: tuple(sorted(frame.get_column(name).cast(pl.String).drop_nulls().unique().to_list()))
        for name in features
        if kinds[name] == "categorical"
    }
    fill, scaling = np.zeros(0), None
    if numeric:
        X = _numeric_matrix(frame, numeric)
        finite = bool(np.isfinite(X).all())
        if not finite:
            _finite_problems(X, numeric, refuse_nan=spec.missing == "error")
        fill = _fill_values(X, numeric, spec.missing)
        if not finite:
            X = np.where(np.isnan(X), fill, X)
        scaling = _scaling_statistics(X, spec.scaling)
    fitted = FittedPreprocessor(
        spec=spec, features=tuple(features), numeric=numeric, categories=categories, fill=fill, scaling=scaling
    )
    return fitted, fitted.transform(frame)
