"""Recommendations consistent with the data they are about: a cap names only values the column really has."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from vigil.analysis.quality import assess


def test_a_cap_stays_inside_the_columns_observed_range() -> None:
    # Small integers from 1, mostly 1–3 with a long upper tail: the lower fence falls below 1.
    rng = np.random.default_rng(0)
    values = np.clip(np.round(rng.exponential(1.5, 2000)) + 1, 1, 10)
    report = assess(pl.DataFrame({"cells": values}))
    caps = [r for r in report["recommendations"] if r["action"] == "cap"]
    assert caps, report["recommendations"]
    detail = caps[0]["detail"]
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", detail.split("(")[0])]
    assert numbers, detail
    assert all(1 <= n <= 10 for n in numbers), detail
    assert "runs from 1 to 10" in detail


def test_repeats_in_low_cardinality_data_are_not_a_high_severity_issue() -> None:
    rng = np.random.default_rng(1)
    scores = pl.DataFrame({f"s{i}": rng.integers(1, 4, 3000) for i in range(3)})  # 27 possible rows
    issue = next(i for i in assess(scores)["issues"] if i["check"] == "duplicate_rows")
    assert issue["affected_rows"] == 3000 - 27
    assert issue["severity"] == "low"
    assert issue["details"]["expected_by_chance"] > issue["affected_rows"]
    wide = pl.DataFrame({"x": np.concatenate([rng.normal(size=2700), np.zeros(300)]), "y": np.zeros(3000)})
    repeated = next(i for i in assess(wide)["issues"] if i["check"] == "duplicate_rows")
    assert repeated["severity"] == "medium"  # continuous values that repeat: a real finding
