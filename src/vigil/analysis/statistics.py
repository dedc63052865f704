"""Statistical analysis: distribution fitting and normality tests per numeric column, the correlation matrices,
and (with a target or a scorer) which features matter — the report behind `POST …/analysis`.

Fits are maximum-likelihood (scipy) on a seeded random sample of each column; the Kolmogorov–Smirnov statistic
and p-value measure the fit (with parameters estimated from the same data the p-value is optimistic, so read it
as a ranking aid), and the AIC picks the best family.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from vigil.analysis.columns import AnalysisError, Frame, Progress, Report, check_columns, clean, kind_of, lazy
from vigil.analysis.correlation import DEFAULT_MAX_COLUMNS, DEFAULT_SAMPLE_ROWS, correlations
from vigil.analysis.relevance import Scorer, relevance

ALPHA = 0.05
# A family is named the best fit only if the KS test does not reject it at this level.
FIT_ALPHA = 0.01


@dataclass(frozen=True)
class Family:
    """A candidate distribution: the name of its scipy distribution, what is held fixed in the fit, and its
    support. The distribution is looked up when used: importing `scipy.stats` costs seconds of server start-up."""

    name: str
    scipy_name: str
    fixed: dict[str, float]
    support: Callable[[np.ndarray], bool]

    @property
    def dist(self) -> Any:
        from scipy import stats

        return getattr(stats, self.scipy_name)

    @property
    def free_parameters(self) -> int:
        return len((self.dist.shapes or "").split(",")) * bool(self.dist.shapes) + 2 - len(self.fixed)


FAMILIES: tuple[Family, ...] = (
    Family("normal", "norm", {}, lambda x: True),
    Family("lognormal", "lognorm", {"floc": 0.0}, lambda x: bool(x.min() > 0)),
    Family("exponential", "expon", {"floc": 0.0}, lambda x: bool(x.min() >= 0)),
    Family("gamma", "gamma", {"floc": 0.0}, lambda x: bool(x.min() > 0)),
    Family("weibull", "weibull_min", {"floc": 0.0}, lambda x: bool(x.min() > 0)),
    Family("uniform", "uniform", {}, lambda x: True),
)


@dataclass(frozen=True)
class AnalysisOptions:
    columns: Sequence[str] | None = None
    families: Sequence[str] | None = None
    fit_sample: int = 5_000
    seed: int = 0
    correlation_sample_rows: int = DEFAULT_SAMPLE_ROWS
    correlation_max_columns: int = DEFAULT_MAX_COLUMNS
    target: str | None = None  # a label (or score) column to measure feature relevance against
    relevance_rows: int = 5_000
    permutation_repeats: int = 3


def fit_distribution(values: np.ndarray, family: Family) -> Report | None:
    """A maximum-likelihood fit of one family, with its KS goodness of fit, log-likelihood and AIC; None when
    the data lie outside the family's support.

    >>> x = np.random.default_rng(1).normal(10, 2, 2000)
    >>> fit = fit_distribution(x, FAMILIES[0])
    >>> round(fit["parameters"]["loc"], 1), round(fit["parameters"]["scale"], 1), fit["ks_pvalue"] > 0.05
    (10.0, 2.0, True)
    """
    from scipy import stats

    if values.size < 3 or not family.support(values):
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            params = family.dist.fit(values, **family.fixed)
        except (ValueError, RuntimeError, FloatingPointError):
            return None
        ks = stats.kstest(values, family.dist.cdf, args=params)
        log_likelihood = float(np.sum(family.dist.logpdf(values, *params)))
    names = [*(s.strip() for s in (family.dist.shapes or "").split(",") if s.strip()), "loc", "scale"]
    k = family.free_parameters
    return {
        "family": family.name,
        "parameters": dict(zip(names, map(float, params), strict=True)),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "log_likelihood": log_likelihood if math.isfinite(log_likelihood) else None,
        "aic": 2 * k - 2 * log_likelihood if math.isfinite(log_likelihood) else None,
    }


def fit_distributions(values: np.ndarray, families: Sequence[Family] = FAMILIES) -> Report:
    """Every family that was fitted, best (lowest AIC) first. `best` names one only if the KS test does not reject
    it at `FIT_ALPHA`: when every candidate is rejected, no family describes the data and the report says so
    (`verdict`) rather than naming the least bad."""
    fits = [fit for family in families if (fit := fit_distribution(values, family)) is not None]
    fits.sort(key=lambda f: f["aic"] if f["aic"] is not None else math.inf)
    accepted = [f for f in fits if f["ks_pvalue"] is not None and f["ks_pvalue"] >= FIT_ALPHA]
    if accepted:
        verdict = f"{accepted[0]['family']} fits (KS p = {accepted[0]['ks_pvalue']:.2g})"
    elif fits:
        verdict = f"no candidate family fits: the KS test rejects every one at p < {FIT_ALPHA:g}"
    else:
        verdict = "no family could be fitted"
    return {"fits": fits, "best": accepted[0]["family"] if accepted else None, "verdict": verdict}


def normality(values: np.ndarray, alpha: float = ALPHA) -> Report:
    """Shapiro–Wilk, D'Agostino–Pearson K², Jarque–Bera and Anderson–Darling tests of normality; `normal` is
    the verdict of all of them at level `alpha` (Bonferroni-corrected).

    >>> report = normality(np.random.default_rng(2).exponential(size=500))
    >>> report["normal"], report["tests"]["shapiro_wilk"]["pvalue"] < 0.001
    (False, True)
    """
    from scipy import stats

    tests: dict[str, Report] = {}
    n = values.size
    if n < 3 or float(np.ptp(values)) == 0.0:
        return {"tests": tests, "normal": None, "alpha": alpha, "n": int(n)}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if n <= 5000:
            tests["shapiro_wilk"] = _test(stats.shapiro(values))
        if n >= 20:
            tests["dagostino_pearson"] = _test(stats.normaltest(values))
        tests["jarque_bera"] = _test(stats.jarque_bera(values))
        tests["anderson_darling"] = _test(stats.anderson(values, dist="norm", method="interpolate"))
    pvalues = [t["pvalue"] for t in tests.values() if t["pvalue"] is not None]
    # Several tests of one hypothesis: Bonferroni keeps the chance of a false "not normal" at `alpha`.
    normal = min(pvalues) * len(pvalues) >= alpha if pvalues else None
    return {"tests": tests, "normal": normal, "alpha": alpha, "n": int(n)}


def _test(result: Any) -> Report:
    statistic, pvalue = float(result.statistic), float(result.pvalue)
    return {"statistic": statistic, "pvalue": pvalue if math.isfinite(pvalue) else None}


def sample_values(frame: Frame, column: str, *, size: int, seed: int) -> tuple[np.ndarray, int]:
    """A seeded random sample (without replacement) of a column's finite values, and how many there are."""
    values = lazy(frame).select(pl.col(column).cast(pl.Float64)).collect().to_series().to_numpy()
    values = values[np.isfinite(values)]
    total = int(values.size)
    if total > size:
        values = np.random.default_rng(seed).choice(values, size=size, replace=False)
    return values, total


def analyse(
    frame: Frame,
    *,
    options: AnalysisOptions | None = None,
    scorer: Scorer | None = None,
    progress: Progress | None = None,
) -> Report:
    """The analysis report: per numeric column its fits and normality, the correlations, and feature relevance
    (against `options.target`, or against the scores of `scorer`, a trained detector).

    >>> rng = np.random.default_rng(0)
    >>> frame = pl.DataFrame({"a": rng.normal(size=300), "b": rng.exponential(size=300)})
    >>> report = analyse(frame)
    >>> [(c["name"], c["best_fit"]) for c in report["columns"]]
    [('a', 'normal'), ('b', 'exponential')]
    """
    options = options or AnalysisOptions()
    scan = lazy(frame)
    schema = scan.collect_schema()
    columns = check_columns(frame, options.columns)
    families = _families(options.families)
    if options.target is not None:
        check_columns(frame, [options.target], field="target")
    numeric = [c for c in columns if kind_of(schema[c]) == "numeric" and c != options.target]
    report_columns = []
    for i, column in enumerate(numeric):
        values, total = sample_values(scan, column, size=options.fit_sample, seed=options.seed)
        fitted = fit_distributions(values, families)
        report_columns.append(
            {
                "name": column,
                "values": total,
                "sample_size": int(values.size),
                "best_fit": fitted["best"],
                "fit_verdict": fitted["verdict"],
                "fits": fitted["fits"],
                "normality": normality(values),
            }
        )
        if progress is not None:
            progress(70.0 * (i + 1) / max(len(numeric), 1))
    report: Report = {
        "columns": report_columns,
        "correlations": correlations(
            scan, numeric, sample_rows=options.correlation_sample_rows, max_columns=options.correlation_max_columns
        ),
        "relevance": None,
        "parameters": {
            "families": [f.name for f in families],
            "fit_sample": options.fit_sample,
            "seed": options.seed,
            "alpha": ALPHA,
            "target": options.target,
        },
    }
    if progress is not None:
        progress(80.0)
    if scorer is not None or options.target is not None:
        candidates = [c for c in columns if c != options.target and kind_of(schema[c]) != "datetime"]
        report["relevance"] = relevance(
            scan,
            features=list(scorer.features) if scorer is not None else candidates,
            target=options.target,
            scorer=scorer,
            max_rows=options.relevance_rows,
            repeats=options.permutation_repeats,
            seed=options.seed,
        )
    if progress is not None:
        progress(100.0)
    return clean(report)  # type: ignore[no-any-return]


def _families(names: Sequence[str] | None) -> list[Family]:
    if names is None:
        return list(FAMILIES)
    known = {f.name: f for f in FAMILIES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AnalysisError(
            f"Unknown distribution famil(ies): {', '.join(map(repr, unknown[:10]))}.",
            errors=[{"loc": ["families", n], "msg": f"one of {', '.join(known)}"} for n in unknown[:20]],
        )
    return [known[n] for n in dict.fromkeys(names)]
