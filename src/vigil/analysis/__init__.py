"""The analysis engine: profiling, quality assessment and statistical analysis — frames in, JSON reports out.

Pure: it imports no web framework, no database and no other part of Vigil (import-linter checks it), so it can
be tested, benchmarked and reused alone. Give it a polars DataFrame, or a LazyFrame (`pl.scan_parquet(path)`) to
read only what each pass needs.
"""

from __future__ import annotations

from vigil.analysis.columns import AnalysisError, Report
from vigil.analysis.expectations import Expectation, parse_expectations
from vigil.analysis.profile import ProfileOptions, profile
from vigil.analysis.quality import QualityOptions, assess
from vigil.analysis.relevance import Scorer
from vigil.analysis.render import render_analysis, render_profile, render_quality
from vigil.analysis.statistics import FAMILIES, AnalysisOptions, analyse


def warm_up() -> None:
    """Imports what reports draw and test with (matplotlib, scipy.stats, scikit-learn), which start-up leaves out,
    so that the first report after start does not pay for it."""
    import sklearn.feature_selection  # noqa: F401, PLC0415
    from scipy import stats  # noqa: F401, PLC0415

    from vigil.analysis import plots  # noqa: F401, PLC0415


__all__ = [
    "FAMILIES",
    "AnalysisError",
    "AnalysisOptions",
    "Expectation",
    "ProfileOptions",
    "QualityOptions",
    "Report",
    "Scorer",
    "analyse",
    "assess",
    "parse_expectations",
    "profile",
    "render_analysis",
    "render_profile",
    "render_quality",
    "warm_up",
]
