"""User-supplied expectations per column (min, max, allowed values, not null, unique, kind), checked and turned
into row masks for the quality assessment."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from vigil.analysis.columns import AnalysisError, ColumnKind, kind_of

KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "boolean", "datetime")
_FIELDS = ("min", "max", "allowed", "not_null", "unique", "kind")


@dataclass(frozen=True)
class Expectation:
    """What one column should satisfy. `min`/`max` bound numeric or datetime (ISO-8601 text) values inclusively;
    `allowed` lists the only values it may hold; `kind` is the column kind it should have."""

    min: float | str | None = None
    max: float | str | None = None
    allowed: Sequence[Any] | None = None
    not_null: bool = False
    unique: bool = False
    kind: ColumnKind | None = None


@dataclass(frozen=True)
class Rule:
    """One check of one column: its mask marks the rows that break it."""

    check: str
    column: str
    mask: pl.Expr
    message: str


def parse_expectations(raw: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Expectation]:
    """Expectations from plain JSON, refusing unknown fields and values of the wrong type.

    >>> parse_expectations({"age": {"min": 0, "max": 120, "not_null": True}})["age"].max
    120
    >>> parse_expectations({"age": {"minimum": 0}})
    Traceback (most recent call last):
    ...
    vigil.analysis.columns.AnalysisError: Invalid expectations: 1 problem(s).
    """
    errors: list[dict[str, Any]] = []
    parsed: dict[str, Expectation] = {}
    for column, spec in (raw or {}).items():
        if not isinstance(spec, Mapping):
            errors.append({"loc": ["expectations", column], "msg": "an expectation is an object"})
            continue
        loc = ["expectations", column]
        errors += [{"loc": [*loc, k], "msg": "unknown field"} for k in spec if k not in _FIELDS]
        for bound in ("min", "max"):
            value = spec.get(bound)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | str)):
                errors.append({"loc": [*loc, bound], "msg": "a number, or an ISO-8601 timestamp"})
            elif isinstance(value, float) and not math.isfinite(value):
                errors.append({"loc": [*loc, bound], "msg": "a finite number"})
        allowed = spec.get("allowed")
        if allowed is not None and (not isinstance(allowed, list) or not allowed):
            errors.append({"loc": [*loc, "allowed"], "msg": "a non-empty list of values"})
        for flag in ("not_null", "unique"):
            if not isinstance(spec.get(flag, False), bool):
                errors.append({"loc": [*loc, flag], "msg": "true or false"})
        if spec.get("kind") is not None and spec.get("kind") not in KINDS:
            errors.append({"loc": [*loc, "kind"], "msg": f"one of {', '.join(KINDS)}"})
        parsed[column] = Expectation(**{k: spec[k] for k in _FIELDS if k in spec})
    if errors:
        raise AnalysisError(f"Invalid expectations: {len(errors)} problem(s).", errors=errors)
    return parsed


def rules_for(column: str, dtype: pl.DataType, expectation: Expectation) -> list[Rule]:
    """The rules an expectation sets for a column of `dtype`; raises `AnalysisError` if they cannot apply."""
    kind = kind_of(dtype)
    x = pl.col(column)
    loc = ["expectations", column]
    rules: list[Rule] = []
    if expectation.kind is not None and expectation.kind != kind:
        rules.append(_kind_rule(column, kind, expectation.kind))
    for bound, op in (("min", "lt"), ("max", "gt")):
        value = getattr(expectation, bound)
        if value is None:
            continue
        literal = _bound(value, kind, [*loc, bound])
        mask = (x < literal) if op == "lt" else (x > literal)
        rules.append(Rule(f"{bound}_violated", column, mask.fill_null(False), f"values {_op(op)} {bound} {value}"))
    if expectation.min is not None and expectation.max is not None:
        low, high = _bound(expectation.min, kind, loc), _bound(expectation.max, kind, loc)
        if low > high:
            raise AnalysisError(
                f"Expectation for {column!r}: min is greater than max.",
                errors=[{"loc": [*loc, "min"], "msg": "min is greater than max"}],
            )
    if expectation.allowed is not None:
        allowed = _allowed_series(expectation.allowed, dtype, [*loc, "allowed"])
        rules.append(
            Rule("not_allowed", column, (x.is_not_null() & ~x.is_in(allowed)), "values outside the allowed list")
        )
    if expectation.not_null:
        missing = x.is_null() | x.is_nan() if dtype.is_float() else x.is_null()
        rules.append(Rule("null_violated", column, missing, "missing values where none are expected"))
    if expectation.unique:
        rules.append(Rule("unique_violated", column, x.is_not_null() & ~x.is_first_distinct(), "repeated values"))
    return rules


def _kind_rule(column: str, actual: ColumnKind, expected: ColumnKind) -> Rule:
    x = pl.col(column)
    if expected == "numeric" and actual == "categorical":
        mask = x.is_not_null() & x.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).is_null()
        return Rule("wrong_type", column, mask, "values that are not numbers")
    return Rule("wrong_type", column, x.is_not_null(), f"a {actual} column where {expected} is expected")


def _bound(value: float | str, kind: ColumnKind, loc: list[Any]) -> Any:
    if kind == "numeric" and isinstance(value, int | float):
        return value
    if kind == "datetime" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise AnalysisError("Not an ISO-8601 timestamp.", errors=[{"loc": loc, "msg": "bad timestamp"}]) from None
    raise AnalysisError(
        f"A {kind} column cannot have a {loc[-1]} bound of {value!r}.",
        errors=[{"loc": loc, "msg": f"min/max apply to numeric (numbers) and datetime (ISO text) columns, not {kind}"}],
    )


def _allowed_series(values: Sequence[Any], dtype: pl.DataType, loc: list[Any]) -> pl.Series:
    try:
        return pl.Series(values=list(values), strict=True).cast(dtype, strict=True)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        raise AnalysisError(
            f"The allowed values do not fit a {dtype} column.",
            errors=[{"loc": loc, "msg": f"values of one type that fit {dtype}"}],
        ) from None


def _op(op: str) -> str:
    return "below" if op == "lt" else "above"
