"""Quality findings against independent computations: planted missing values, duplicates, outliers, broken
expectations, mixed types and inconsistent categories — counts, sample rows and scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from tests.analysis.conftest import DUPLICATES, MISSING_NORMAL, NAN_NORMAL, OUTLIERS, N
from vigil.analysis import AnalysisError, QualityOptions, assess, parse_expectations
from vigil.analysis.recommend import severity


def issues_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {issue["id"]: issue for issue in report["issues"]}


@pytest.fixture(scope="module")
def report(frame: pl.DataFrame) -> dict[str, Any]:
    return assess(frame)


def test_missing_values(frame: pl.DataFrame, report: dict[str, Any]) -> None:
    issues = issues_of(report)
    normal = frame["normal"].to_numpy()
    missing_rows = np.flatnonzero(np.isnan(normal))  # polars nulls become NaN in numpy too
    assert issues["missing_values:normal"]["affected_rows"] == missing_rows.size == MISSING_NORMAL + NAN_NORMAL
    assert issues["missing_values:normal"]["sample_rows"] == missing_rows[:10].tolist()
    city_missing = [i for i, v in enumerate(frame["city"].to_list()) if v is None]
    assert issues["missing_values:city"]["affected_rows"] == len(city_missing)
    assert issues["missing_values:city"]["sample_rows"] == city_missing[:10]
    assert "missing_values:lognormal" not in issues
    cells = frame.height * frame.width
    missing_cells = sum(frame[c].is_null().sum() + (frame[c].is_nan().sum() if frame[c].dtype.is_float() else 0)
                        for c in frame.columns)  # fmt: skip
    assert report["scores"]["completeness"] == pytest.approx(1 - missing_cells / cells)


def test_duplicate_rows(frame: pl.DataFrame, report: dict[str, Any]) -> None:
    seen: set[str] = set()
    repeats = []
    for i, row in enumerate(frame.rows()):
        key = repr(row)
        if key in seen:
            repeats.append(i)
        seen.add(key)
    duplicate = issues_of(report)["duplicate_rows"]
    assert duplicate["affected_rows"] == len(repeats) == DUPLICATES
    assert duplicate["sample_rows"] == repeats[:10] == list(range(N, N + 10))
    assert report["scores"]["uniqueness"] == pytest.approx(1 - DUPLICATES / frame.height)


def test_outliers_by_modified_z_score(frame: pl.DataFrame, report: dict[str, Any]) -> None:
    issues = issues_of(report)
    for name in ("normal", "lognormal", "exponential", "signed"):
        x = frame[name].cast(pl.Float64).to_numpy()
        finite = x[np.isfinite(x)]
        median = np.median(finite)
        mad = np.median(np.abs(finite - median))
        z = np.abs(x - median) / (1.4826 * mad)
        expected = np.flatnonzero(np.nan_to_num(z, nan=0.0) > 3.5)
        found = issues.get(f"outliers:{name}", {"affected_rows": 0, "sample_rows": []})
        assert found["affected_rows"] == expected.size, name
        assert found["sample_rows"] == expected[:10].tolist(), name
    # The planted ones are all found (first), plus the rare natural value beyond 3.5 sigma.
    assert OUTLIERS <= issues["outliers:normal"]["affected_rows"] <= OUTLIERS + 3
    assert issues["outliers:normal"]["sample_rows"] == list(range(10))
    outlier_cells = sum(i["affected_rows"] for i in report["issues"] if i["check"] == "outliers")
    assert report["scores"]["outliers"] == pytest.approx(1 - outlier_cells / (frame.height * 6))


def test_outliers_when_most_values_are_equal() -> None:
    values = np.zeros(100)
    values[[3, 50]] = [1.0, 40.0]
    found = issues_of(assess(pl.DataFrame({"x": values})))
    mean_ad = np.mean(np.abs(values - 0.0))
    expected = np.flatnonzero(np.abs(values) / (1.253314 * mean_ad) > 3.5)
    assert found["outliers:x"]["sample_rows"] == expected.tolist() == [50]
    assert "outliers:y" not in issues_of(assess(pl.DataFrame({"y": np.ones(10)})))


def test_expectations() -> None:
    frame = pl.DataFrame(
        {
            "age": [5, -1, 130, None, 40, 40],
            "code": ["a", "b", "zz", None, "a", "b"],
            "when": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 6), "1d", eager=True),
            "amount": ["1", "2", "x", "4.5", None, "6"],
        }
    )
    expectations = parse_expectations(
        {
            "age": {"min": 0, "max": 120, "not_null": True, "unique": True},
            "code": {"allowed": ["a", "b"]},
            "when": {"max": "2024-01-04T00:00:00"},
            "amount": {"kind": "numeric"},
        }
    )
    report = assess(frame, options=QualityOptions(expectations=expectations))
    issues = issues_of(report)
    assert (issues["min_violated:age"]["affected_rows"], issues["min_violated:age"]["sample_rows"]) == (1, [1])
    assert (issues["max_violated:age"]["affected_rows"], issues["max_violated:age"]["sample_rows"]) == (1, [2])
    assert issues["null_violated:age"]["sample_rows"] == [3]
    assert issues["unique_violated:age"]["sample_rows"] == [5]
    assert issues["not_allowed:code"]["sample_rows"] == [2]
    assert issues["max_violated:when"]["sample_rows"] == [4, 5]
    assert issues["wrong_type:amount"]["sample_rows"] == [2]
    assert issues["mixed_types:amount"]["sample_rows"] == [2]
    rule_rows = sum(
        i["affected_rows"] for i in report["issues"] if i["dimension"] == "validity" and i["counts_in_score"]
    )
    assert report["scores"]["validity"] == pytest.approx(1 - rule_rows / (6 * 4))
    actions = {(r["action"], r["column"]) for r in report["recommendations"]}
    assert {("cap", "age"), ("impute", "code"), ("deduplicate", "age"), ("cast", "amount")} <= actions


@pytest.mark.parametrize(
    "raw",
    [
        {"x": {"bogus": 1}},
        {"x": {"min": True}},
        {"x": {"min": float("nan")}},
        {"x": {"allowed": []}},
        {"x": {"not_null": "yes"}},
        {"x": {"kind": "image"}},
        {"x": 3},
    ],
)
def test_malformed_expectations_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(AnalysisError) as refused:
        parse_expectations(raw)
    assert refused.value.errors
    assert refused.value.errors[0]["loc"][:2] == ["expectations", "x"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"text": {"min": 1}}, "min"),
        ({"x": {"min": 2, "max": 1}}, "min"),
        ({"x": {"allowed": ["a"]}}, "allowed"),
        ({"when": {"min": "not a date"}}, "min"),
        ({"ghost": {"unique": True}}, "ghost"),
    ],
)
def test_expectations_that_cannot_apply_are_refused(raw: dict[str, Any], field: str) -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0], "text": ["a", "b"], "when": [None, None]}).with_columns(
        pl.col("when").cast(pl.Datetime)
    )
    with pytest.raises(AnalysisError) as refused:
        assess(frame, options=QualityOptions(expectations=parse_expectations(raw)))
    assert field in str(refused.value.errors)


def test_consistency_mixed_types_and_categories() -> None:
    frame = pl.DataFrame(
        {
            "city": ["Oslo", "oslo", " Oslo", "Lima", "Lima", "Oslo", "Oslo", "LIMA", "12", None],
            "level": ["1", "2", "3", "4", "5", "6", "7", "8", "n/a", "9"],
        }
    )
    report = assess(frame)
    issues = issues_of(report)
    # Oslo ×3 is canonical; "oslo", " Oslo" and "LIMA" are other spellings.
    assert issues["inconsistent_categories:city"]["sample_rows"] == [1, 2, 7]
    assert issues["mixed_types:city"]["sample_rows"] == [8]
    assert issues["mixed_types:level"]["sample_rows"] == [8]
    assert issues["mixed_types:level"]["details"]["minority"] == "text"
    assert report["scores"]["consistency"] == pytest.approx(1 - 5 / 20)


def test_infinite_values_batches_and_overall(frame: pl.DataFrame, report: dict[str, Any]) -> None:
    odd = pl.DataFrame({"x": [1.0, float("inf"), -float("inf"), 2.0]})
    assert issues_of(assess(odd))["non_finite:x"]["sample_rows"] == [1, 2]
    assert assess(frame, options=QualityOptions(column_batch=3)) == report
    assert report["overall"] == pytest.approx(sum(report["scores"].values()) / 5)
    subset = assess(frame, options=QualityOptions(columns=["lognormal"]))
    assert issues_of(subset)["duplicate_rows"]["affected_rows"] == DUPLICATES  # whole rows, whatever the columns


def test_severity_thresholds() -> None:
    assert [severity("missing_values", s) for s in (0.6, 0.1, 0.01)] == ["high", "medium", "low"]
    assert [severity("duplicate_rows", s) for s in (0.2, 0.05, 0.001)] == ["high", "medium", "low"]
    assert [severity("not_allowed", s) for s in (0.1, 0.001)] == ["high", "medium"]
