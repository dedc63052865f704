"""HTML reports: self-contained, scripts impossible, hostile column names shown as text."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from vigil.analysis import AnalysisOptions, analyse, assess, profile, render_analysis, render_profile, render_quality

HOSTILE = ["<script>alert(1)</script>", "\" onerror='alert(2)", "$\\frac{1}$", "a" * 300]


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    columns = {name: rng.normal(size=200) for name in HOSTILE}
    columns["<b>city</b>"] = rng.choice(["<i>x</i>", "y"], 200).tolist()
    columns["label"] = (rng.random(200) < 0.2).astype(np.int64)
    columns["when"] = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1, 3, 19), "1m", eager=True)
    return pl.DataFrame(columns)


def assert_safe(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert "onerror='" not in page
    assert "Content-Security-Policy" in page
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "only inline data URIs"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "&lt;script&gt;" in page


def test_profile_page(frame: pl.DataFrame) -> None:
    page = render_profile(profile(frame), title="<title>")
    assert_safe(page)
    assert "&lt;title&gt;" in page
    assert page.count("data:image/png;base64,") >= len(HOSTILE) + 3  # histograms and two heatmaps
    assert "&lt;i&gt;x&lt;/i&gt;" in page


def test_quality_page(frame: pl.DataFrame) -> None:
    planted = pl.when(pl.int_range(pl.len()) == 0).then(1e6).otherwise(pl.col(HOSTILE[0]))
    page = render_quality(assess(frame.with_columns(planted.alias(HOSTILE[0]))))
    assert_safe(page)
    assert "quality scorecard" in page


def test_analysis_page(frame: pl.DataFrame) -> None:
    page = render_analysis(analyse(frame, options=AnalysisOptions(target="label", fit_sample=100)))
    assert_safe(page)
    assert "Feature relevance" in page
