"""Parameter schemas of catalog entries, and checking user-given parameters against them.

A schema is data (`Param`), so the same description feeds the API's catalog listing and the validation; nothing
here knows any particular algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vigil.ml.errors import InvalidParameters

__all__ = ["RANDOM_STATE", "Param", "ParamType", "check_parameters", "choice", "flag", "integer", "real"]

ParamType = Literal["int", "float", "bool", "choice"]
_LOC = ("body", "parameters")


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its library name, type, default and allowed values.

    `default` None means "let the library decide", and then None is an accepted value (`nullable`).
    Bounds are inclusive unless `exclusive_minimum` / `exclusive_maximum` says otherwise.
    """

    name: str
    type: ParamType
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    @property
    def nullable(self) -> bool:
        return self.default is None

    def describe(self) -> dict[str, Any]:
        """The public shape of the parameter (the API's `AlgorithmParam`)."""
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices is not None else None,
            "description": self.description,
        }

    def check(self, value: Any) -> tuple[Any, tuple[str, str] | None]:
        """The value as the library wants it, or an error as ``(type, message)``."""
        if value is None:
            return (None, None) if self.nullable else (None, ("none_forbidden", "must not be null"))
        if self.type == "bool":
            return (value, None) if isinstance(value, bool) else (None, ("bool_type", "must be a boolean"))
        if self.type == "choice":
            assert self.choices is not None
            # Compare types too: 1 == True, and a choice of "1" is not the number 1.
            if any(type(value) is type(c) and value == c for c in self.choices):
                return value, None
            return None, ("literal_error", f"must be one of {', '.join(map(repr, self.choices))}")
        # A bool is an int to Python, but `true` for a count is a mistake, not a 1.
        if isinstance(value, bool):
            return None, (f"{self.type}_type", f"must be {'an integer' if self.type == 'int' else 'a number'}")
        if self.type == "int":
            if not isinstance(value, int):
                return None, ("int_type", "must be an integer")
        elif isinstance(value, int | float):
            value = float(value)
            if not math.isfinite(value):
                return None, ("finite_number", "must be a finite number")
        else:
            return None, ("float_type", "must be a number")
        bound = self._bound_error(value)
        return (None, bound) if bound else (value, None)

    def _bound_error(self, value: float) -> tuple[str, str] | None:
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                return "greater_than", f"must be > {self.minimum:g}"
            if value < self.minimum:
                return "greater_than_equal", f"must be >= {self.minimum:g}"
        if self.maximum is not None:
            if self.exclusive_maximum and value >= self.maximum:
                return "less_than", f"must be < {self.maximum:g}"
            if value > self.maximum:
                return "less_than_equal", f"must be <= {self.maximum:g}"
        return None


def integer(
    name: str, default: int | None, description: str, *, minimum: int | None = None, maximum: int | None = None
) -> Param:
    return Param(name, "int", default, description, minimum=minimum, maximum=maximum)


def real(
    name: str,
    default: float | None,
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> Param:
    return Param(
        name,
        "float",
        default,
        description,
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_minimum,
        exclusive_maximum=exclusive_maximum,
    )


def flag(name: str, default: bool, description: str) -> Param:
    return Param(name, "bool", default, description)


def choice(name: str, default: str, choices: Sequence[str], description: str) -> Param:
    assert default in choices, f"default {default!r} of {name!r} is not among its choices"
    return Param(name, "choice", default, description, choices=tuple(choices))


RANDOM_STATE = integer(
    "random_state",
    None,
    "Seed of the random number generator; fix it for reproducible models (null: a fresh seed each training).",
    minimum=0,
    maximum=2**32 - 1,
)


def check_parameters(algorithm: str, schema: Sequence[Param], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of `schema`, from `parameters` or its default; raises `InvalidParameters` listing all errors.

    Examples
    --------
    >>> schema = [integer("n_neighbors", 5, "Neighbours.", minimum=1)]
    >>> check_parameters("knn", schema, {})
    {'n_neighbors': 5}
    >>> check_parameters("knn", schema, {"n_neighbors": True, "bogus": 1})
    Traceback (most recent call last):
    ...
    vigil.ml.errors.InvalidParameters: 2 invalid parameter(s) for algorithm 'knn': 'n_neighbors', 'bogus'.
    """
    by_name = {p.name: p for p in schema}
    errors: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    for param in schema:
        if param.name not in parameters:
            result[param.name] = param.default
            continue
        value, error = param.check(parameters[param.name])
        if error is None:
            result[param.name] = value
        else:
            errors.append({"loc": [*_LOC, param.name], "msg": f"{param.name} {error[1]}", "type": error[0]})
    known = ", ".join(by_name) or "none"
    errors.extend(
        {
            "loc": [*_LOC, str(name)],
            "msg": f"unknown parameter {name!r} for {algorithm!r} (known: {known})",
            "type": "extra_forbidden",
        }
        for name in parameters
        if name not in by_name
    )
    if errors:
        raise InvalidParameters(algorithm, errors)
    return result
