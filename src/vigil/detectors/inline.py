"""Inline detection records straight to the float64 matrix a model scores, for the common case: every record a
flat object with exactly the model's features as keys and plain numbers as values. Anything else (a null, text,
a boolean, a missing or extra key) returns None, and the caller takes the general way through a table, which
knows how to explain what is wrong — so the two ways never disagree on an answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

_NUMBERS = (int, float)


def records_matrix(records: Sequence[Any], features: Sequence[str]) -> npt.NDArray[np.float64] | None:
    """The records as rows of `features`, or None if any record is not the plain case.

    >>> records_matrix([{"a": 1, "b": 2.5}, {"b": 0.0, "a": -1}], ["a", "b"]).tolist()
    [[1.0, 2.5], [-1.0, 0.0]]
    >>> records_matrix([{"a": 1, "b": None}], ["a", "b"]) is None
    True
    """
    width = len(features)
    rows: list[list[Any]] = []
    for record in records:
        if type(record) is not dict or len(record) != width:
            return None
        try:
            row = [record[name] for name in features]
        except KeyError:
            return None
        # `type(...) in`, not isinstance: a bool is an int to isinstance, and booleans take the general way.
        if not all(type(value) in _NUMBERS for value in row):
            return None
        rows.append(row)
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond float64: the general way reports it
        return None
    if matrix.shape != (len(rows), width) or not np.isfinite(matrix).all():
        return None
    return matrix
