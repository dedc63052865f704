"""Feature relevance: permutation importance against a scorer's scores, and mutual information with a target."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from vigil.analysis import AnalysisOptions, Scorer, analyse
from vigil.analysis.relevance import relevance


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 1500
    signal = rng.normal(size=n)
    label = (np.abs(signal) > 1.8).astype(np.int64)
    return pl.DataFrame(
        {"signal": signal, "noise": rng.normal(size=n), "other": rng.uniform(size=n), "label": label,
         "kind": rng.choice(["a", "b"], n).tolist()}
    )  # fmt: skip


def test_permutation_importance_finds_the_only_feature_a_scorer_reads(frame: pl.DataFrame) -> None:
    scorer = Scorer(features=["signal", "noise", "other"], score=lambda f: np.abs(f["signal"].to_numpy()))
    found = relevance(frame, features=scorer.features, scorer=scorer, repeats=2, seed=1)
    ranked = {f["feature"]: f for f in found["features"]}
    assert found["features"][0]["feature"] == "signal"
    assert ranked["signal"]["share"] == 1.0
    assert ranked["noise"]["permutation_importance"] == ranked["other"]["permutation_importance"] == 0.0
    assert ranked["noise"]["score_rank_correlation"] == 1.0
    # The measure by hand: the mean absolute change of the scores, in units of their standard deviation.
    base = np.abs(frame["signal"].to_numpy())
    order = np.random.default_rng(1).permutation(frame.height)
    first = np.mean(np.abs(np.abs(frame["signal"].to_numpy()[order]) - base)) / base.std()
    assert ranked["signal"]["permutation_importance"] == pytest.approx(first, rel=0.2)


def test_mutual_information_with_a_label_equals_scikit_learns(frame: pl.DataFrame) -> None:
    found = relevance(frame, features=["signal", "noise", "other"], target="label", seed=0)
    assert found["discrete_target"] is True
    assert found["features"][0]["feature"] == "signal"
    expected = mutual_info_classif(
        frame.select("signal", "noise", "other").to_numpy(), frame["label"].to_numpy(), random_state=0, n_neighbors=3
    )
    got = {f["feature"]: f["mutual_information"] for f in found["features"]}
    np.testing.assert_allclose([got["signal"], got["noise"], got["other"]], expected)


def test_a_continuous_target_and_categorical_features(frame: pl.DataFrame) -> None:
    found = relevance(frame, features=["kind", "noise"], target="signal", seed=0)
    assert found["discrete_target"] is False
    got = {f["feature"]: f["mutual_information"] for f in found["features"]}
    codes = frame["kind"].cast(pl.Categorical).to_physical().cast(pl.Float64).to_numpy()
    matrix = np.column_stack([codes, frame["noise"].to_numpy()])
    expected = mutual_info_regression(
        matrix, frame["signal"].to_numpy(), discrete_features=np.array([True, False]), random_state=0, n_neighbors=3
    )
    np.testing.assert_allclose([got["kind"], got["noise"]], expected)


def test_analysis_relevance_and_sampling(frame: pl.DataFrame) -> None:
    report = analyse(frame, options=AnalysisOptions(target="label", relevance_rows=500))
    assert report["relevance"]["sample_rows"] == 500
    assert report["relevance"]["features"][0]["feature"] == "signal"
    assert "label" not in {c["name"] for c in report["columns"]}
    with pytest.raises(ValueError, match="target"):
        relevance(frame, features=["noise"])
