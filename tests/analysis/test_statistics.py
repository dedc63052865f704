"""Distribution fits, goodness of fit and normality tests on samples of known distributions, checked against
independent computations (the true parameters, an ECDF by hand, the Jarque–Bera formula)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from vigil.analysis import FAMILIES, AnalysisError, AnalysisOptions, analyse
from vigil.analysis.statistics import fit_distribution, fit_distributions, normality, sample_values

RNG = np.random.default_rng(11)
SAMPLES = {
    "normal": (RNG.normal(5.0, 2.0, 4000), {"loc": 5.0, "scale": 2.0}),
    "lognormal": (RNG.lognormal(1.0, 0.4, 4000), {"s": 0.4, "scale": math.e}),
    "exponential": (RNG.exponential(3.0, 4000), {"scale": 3.0}),
    "gamma": (RNG.gamma(4.0, 2.0, 4000), {"a": 4.0, "scale": 2.0}),
    "uniform": (RNG.uniform(-1.0, 3.0, 4000), {"loc": -1.0, "scale": 4.0}),
}


@pytest.mark.parametrize("family", list(SAMPLES))
def test_the_true_family_is_the_best_fit_with_its_parameters(family: str) -> None:
    values, truth = SAMPLES[family]
    fitted = fit_distributions(values)
    assert fitted["best"] == family
    best = fitted["fits"][0]
    for name, value in truth.items():
        assert best["parameters"][name] == pytest.approx(value, rel=0.06), name
    assert best["ks_pvalue"] > 0.01


def ks_by_hand(values: np.ndarray, cdf: np.ndarray) -> float:
    n = values.size
    upper = np.arange(1, n + 1) / n - cdf
    lower = cdf - np.arange(0, n) / n
    return float(max(upper.max(), lower.max()))


@pytest.mark.parametrize("family", ["normal", "gamma"])
def test_goodness_of_fit_and_likelihood_by_hand(family: str) -> None:
    values, _ = SAMPLES[family]
    entry = next(f for f in FAMILIES if f.name == family)
    fit = fit_distribution(values, entry)
    assert fit is not None
    params = list(fit["parameters"].values())
    ordered = np.sort(values)
    assert fit["ks_statistic"] == pytest.approx(ks_by_hand(ordered, entry.dist.cdf(ordered, *params)), rel=1e-9)
    log_likelihood = float(np.sum(entry.dist.logpdf(values, *params)))
    assert fit["log_likelihood"] == pytest.approx(log_likelihood)
    assert fit["aic"] == pytest.approx(2 * 2 - 2 * log_likelihood)
    if family == "normal":  # the MLE of a normal is the mean and the biased standard deviation
        assert fit["parameters"]["loc"] == pytest.approx(values.mean())
        assert fit["parameters"]["scale"] == pytest.approx(values.std(ddof=0), rel=1e-6)


def test_families_outside_their_support_are_not_fitted() -> None:
    names = [f["family"] for f in fit_distributions(SAMPLES["normal"][0] - 10)["fits"]]
    assert set(names) == {"normal", "uniform"}


def test_normality_tests() -> None:
    normal = normality(SAMPLES["normal"][0])
    skewed = normality(SAMPLES["exponential"][0])
    assert normal["normal"] is True
    assert skewed["normal"] is False
    values = SAMPLES["exponential"][0]
    n, s, k = values.size, stats.skew(values), stats.kurtosis(values)
    assert skewed["tests"]["jarque_bera"]["statistic"] == pytest.approx(n / 6 * (s**2 + k**2 / 4), rel=1e-9)
    assert skewed["tests"]["dagostino_pearson"]["pvalue"] < 1e-6
    assert set(normal["tests"]) == {"shapiro_wilk", "dagostino_pearson", "jarque_bera", "anderson_darling"}
    assert normality(np.ones(10))["normal"] is None


def test_analysis_report() -> None:
    frame = pl.DataFrame(
        {name: values[:1000] for name, (values, _) in SAMPLES.items()} | {"text": ["a"] * 1000}
    ).with_columns(pl.when(pl.int_range(pl.len()) < 10).then(None).otherwise(pl.col("normal")).alias("normal"))
    seen: list[float] = []
    report = analyse(frame, options=AnalysisOptions(fit_sample=500, seed=3), progress=seen.append)
    columns = {c["name"]: c for c in report["columns"]}
    assert set(columns) == set(SAMPLES)
    assert columns["normal"]["values"] == 990
    assert all(c["sample_size"] == 500 for c in columns.values())
    matrix = np.column_stack([frame[c].to_numpy()[10:] for c in SAMPLES])
    np.testing.assert_allclose(report["correlations"]["pearson"], np.corrcoef(matrix, rowvar=False), atol=0.02)
    assert report["relevance"] is None
    assert seen == sorted(seen)
    assert seen[-1] == 100
    again = analyse(frame, options=AnalysisOptions(fit_sample=500, seed=3))
    assert again == report  # seeded: the same report every time
    with pytest.raises(AnalysisError):
        analyse(frame, options=AnalysisOptions(families=["cauchy"]))
    with pytest.raises(AnalysisError):
        analyse(frame, options=AnalysisOptions(target="ghost"))


def test_sample_values_are_finite_and_seeded() -> None:
    frame = pl.DataFrame({"x": [1.0, float("nan"), None, float("inf"), *range(100)]})
    values, total = sample_values(frame, "x", size=10, seed=1)
    assert total == 101
    assert values.size == 10
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(values, sample_values(frame, "x", size=10, seed=1)[0])


def test_no_family_is_named_when_the_test_rejects_every_one() -> None:
    rng = np.random.default_rng(3)
    two_peaks = np.concatenate([rng.normal(-10, 1, 2000), rng.normal(10, 1, 2000)])
    fitted = fit_distributions(two_peaks)
    assert fitted["fits"], "the candidates are still fitted and listed, for reference"
    assert fitted["best"] is None
    assert fitted["verdict"].startswith("no candidate family fits")
