"""Every profile statistic against an independent numpy/scipy/Python computation on data with known properties."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tests.analysis.conftest import DUPLICATES, MISSING_NORMAL, NAN_NORMAL, N
from vigil.analysis import AnalysisError, ProfileOptions, profile
from vigil.analysis.profile import QUANTILES, quantile_key

NUMERIC = ["normal", "lognormal", "exponential", "counts", "signed", "related"]


@pytest.fixture(scope="module")
def report(frame: pl.DataFrame) -> dict[str, object]:
    return profile(frame)


def columns_of(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in report["columns"]}  # type: ignore[attr-defined]


def present(frame: pl.DataFrame, name: str) -> np.ndarray:
    values = frame[name].cast(pl.Float64).to_numpy()
    return values[~np.isnan(values)]


def test_dataset_level(frame: pl.DataFrame, report: dict[str, object]) -> None:
    dataset = report["dataset"]
    assert isinstance(dataset, dict)
    assert (dataset["rows"], dataset["columns"]) == (N + DUPLICATES, frame.width)
    rows = frame.rows()
    assert dataset["duplicate_rows"] == len(rows) - len(set(map(repr, rows))) == DUPLICATES
    assert dataset["memory_bytes"] == pytest.approx(frame.estimated_size(), rel=0.25)
    assert dataset["kinds"] == {"numeric": 6, "categorical": 1, "boolean": 1, "datetime": 1}


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_statistics_match_numpy_and_scipy(frame: pl.DataFrame, report: dict[str, object], name: str) -> None:
    column = columns_of(report)[name]
    x = present(frame, name)
    assert column["kind"] == "numeric"
    assert column["count"] == x.size
    assert column["missing"] == frame.height - x.size
    assert column["distinct"] == np.unique(x).size
    assert column["min"] == pytest.approx(x.min())
    assert column["max"] == pytest.approx(x.max())
    assert column["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert column["std"] == pytest.approx(x.std(ddof=1), rel=1e-10)
    expected = np.quantile(x, QUANTILES)
    for q, value in zip(QUANTILES, expected, strict=True):
        assert column["quantiles"][quantile_key(q)] == pytest.approx(value, rel=1e-12), q
    assert column["skewness"] == pytest.approx(stats.skew(x, bias=True), rel=1e-8, abs=1e-12)
    assert column["kurtosis"] == pytest.approx(stats.kurtosis(x, fisher=True, bias=True), rel=1e-8, abs=1e-12)
    assert column["zeros"] == int((x == 0).sum())
    assert column["negatives"] == int((x < 0).sum())
    assert column["infinite"] == 0
    counts, edges = np.histogram(x, bins=20)
    assert column["histogram"]["counts"] == counts.tolist()
    np.testing.assert_allclose(column["histogram"]["edges"], edges)


def test_planted_missing_values_are_counted(report: dict[str, object]) -> None:
    normal = columns_of(report)["normal"]
    assert normal["nan"] == NAN_NORMAL
    assert normal["missing"] == MISSING_NORMAL + NAN_NORMAL + 0  # the duplicated slice holds none
    assert normal["missing_share"] == pytest.approx(normal["missing"] / (N + DUPLICATES))


def test_top_values_of_a_discrete_numeric_column(frame: pl.DataFrame, report: dict[str, object]) -> None:
    counts = Counter(frame["counts"].to_list())
    top = columns_of(report)["counts"]["top_values"]
    assert [(t["value"], t["count"]) for t in top] == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    repeated = Counter(frame["exponential"].to_list())  # only the planted duplicate rows repeat a value
    top = columns_of(report)["exponential"]["top_values"]
    assert [(t["value"], t["count"]) for t in top] == sorted(repeated.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    distinct = profile(pl.DataFrame({"x": np.arange(100.0)}))["columns"][0]
    assert distinct["top_values"] == []  # every value distinct: nothing is "top"


def test_categorical_and_boolean_columns(frame: pl.DataFrame, report: dict[str, object]) -> None:
    city = columns_of(report)["city"]
    values = [v for v in frame["city"].to_list() if v is not None]
    counts = Counter(values)
    assert (city["count"], city["missing"], city["distinct"]) == (len(values), frame.height - len(values), 4)
    assert [(t["value"], t["count"]) for t in city["top_values"]] == counts.most_common()
    assert city["top_values"][0]["share"] == pytest.approx(counts.most_common(1)[0][1] / len(values))
    assert (city["min_length"], city["max_length"]) == (4, 4)
    assert city["cardinality"] == 4
    flag = columns_of(report)["flag"]
    flags = [v for v in frame["flag"].to_list() if v is not None]
    assert (flag["true"], flag["false"], flag["missing"]) == (
        sum(flags),
        len(flags) - sum(flags),
        frame.height - len(flags),
    )


def test_datetime_range_and_the_planted_gap(frame: pl.DataFrame, report: dict[str, object]) -> None:
    when = columns_of(report)["when"]
    instants = np.unique(frame["when"].to_numpy().astype("datetime64[s]").astype(np.int64))
    assert when["min"] == frame["when"].min().isoformat()  # type: ignore[union-attr]
    assert when["range_seconds"] == instants[-1] - instants[0]
    intervals = np.diff(instants)
    gaps = when["gaps"]
    assert gaps["median_seconds"] == np.median(intervals) == 3600
    assert gaps["max_seconds"] == intervals.max() == 3600 + 10 * 86400
    assert gaps["large_gaps"] == 1
    assert gaps["max_gap_start"].startswith("2024-03-24T08:00")  # row 2000: 2000 hours after 1 January


def test_correlations_match_scipy_on_pairwise_complete_rows(frame: pl.DataFrame, report: dict[str, object]) -> None:
    correlations = report["correlations"]
    assert isinstance(correlations, dict)
    assert correlations["columns"] == NUMERIC
    for i, a in enumerate(NUMERIC):
        for j, b in enumerate(NUMERIC):
            x, y = frame[a].cast(pl.Float64).to_numpy(), frame[b].cast(pl.Float64).to_numpy()
            both = ~np.isnan(x) & ~np.isnan(y)
            assert correlations["pearson"][i][j] == pytest.approx(stats.pearsonr(x[both], y[both]).statistic, abs=1e-9)
            expected = stats.spearmanr(x[both], y[both]).statistic
            assert correlations["spearman"][i][j] == pytest.approx(expected, abs=1e-9)
    strongest = correlations["strongest"][0]
    assert {strongest["a"], strongest["b"]} == {"lognormal", "related"}


def test_a_lazy_parquet_scan_and_small_batches_give_the_same_report(
    frame: pl.DataFrame, report: dict[str, object], tmp_path: Path
) -> None:
    path = tmp_path / "data.parquet"
    frame.write_parquet(path)
    assert profile(pl.scan_parquet(path)) == report
    assert profile(frame, options=ProfileOptions(column_batch=2)) == report


def test_correlation_sampling_and_column_choice(frame: pl.DataFrame) -> None:
    seen: list[float] = []
    found = profile(
        frame,
        options=ProfileOptions(columns=["normal", "city"], correlation_sample_rows=1000, duplicates=False),
        progress=seen.append,
    )
    assert [c["name"] for c in found["columns"]] == ["normal", "city"]
    assert found["dataset"]["duplicate_rows"] is None
    assert found["correlations"]["columns"] == ["normal"]
    assert seen == sorted(seen)
    assert seen[-1] == 100
    sampled = profile(frame, options=ProfileOptions(correlation_sample_rows=1000))["correlations"]
    assert sampled["sample_rows"] <= 1000


def test_edge_cases() -> None:
    odd = pl.DataFrame(
        {
            "empty": pl.Series([None, None], dtype=pl.Float64),
            "constant": [3.0, 3.0],
            "inf": [1.0, float("inf")],
            "text": ["", "x"],
        }
    )
    found = columns_of(profile(odd))
    assert (found["empty"]["count"], found["empty"]["missing"], found["empty"]["mean"]) == (0, 2, None)
    assert found["constant"]["std"] == 0
    assert found["constant"]["histogram"]["counts"] == np.histogram([3.0, 3.0], bins=20)[0].tolist()
    assert found["inf"]["infinite"] == 1
    assert found["text"]["empty"] == 1
    with pytest.raises(AnalysisError) as unknown:
        profile(odd, options=ProfileOptions(columns=["nope"]))
    assert unknown.value.errors == [{"loc": ["columns", "nope"], "msg": "no such column"}]
