"""Quality metrics, version agreement, the stable held-out part and thresholds by false-positive rate."""

from __future__ import annotations

import numpy as np
import pytest

from vigil import ml


def test_quality_of_perfect_and_random_scores() -> None:
    labels = np.r_[np.zeros(90, dtype=int), np.ones(10, dtype=int)]
    perfect = ml.quality(labels, labels.astype(float))
    assert (perfect["roc_auc"], perfect["pr_auc"], perfect["precision_at_k"], perfect["k"]) == (1.0, 1.0, 1.0, 10)
    inverted = ml.quality(labels, -labels.astype(float))
    assert inverted["roc_auc"] == 0.0
    assert inverted["precision_at_k"] == 0.0
    assert ml.quality(np.zeros(5, dtype=int), np.arange(5.0))["roc_auc"] is None


def test_holdout_is_stable_and_depends_on_the_dataset() -> None:
    rows = np.arange(20_000)
    a, b = ml.holdout_mask(rows, key="ds_a"), ml.holdout_mask(rows, key="ds_b")
    assert abs(a.mean() - ml.HOLDOUT_FRACTION) < 0.02
    np.testing.assert_array_equal(ml.holdout_mask(rows[5000:6000], key="ds_a"), a[5000:6000])
    assert (a != b).mean() > 0.3


def test_agreement_and_fpr_threshold() -> None:
    scores = np.arange(100.0)
    same = ml.agreement(scores, scores > 89, scores * 3, scores > 89)
    assert same["spearman"] == pytest.approx(1.0)
    assert same["flagged_jaccard"] == 1.0
    assert ml.agreement(scores, scores > 89, -scores, -scores > -10)["spearman"] == pytest.approx(-1.0)
    assert np.mean(scores > ml.fpr_threshold(scores, 0.05)) == 0.05
