"""Data with known answers for the engine's tests: Gaussian inliers and far-away planted anomalies."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

N_INLIERS, N_OUTLIERS, N_FEATURES = 500, 25, 6
CONTAMINATION = N_OUTLIERS / (N_INLIERS + N_OUTLIERS)


def planted_data(seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """500 standard-normal rows and 25 rows 5 to 8 units out on every axis, shuffled; labels 1 = planted."""
    rng = np.random.default_rng(seed)
    inliers = rng.normal(size=(N_INLIERS, N_FEATURES))
    outliers = rng.uniform(5, 8, size=(N_OUTLIERS, N_FEATURES)) * rng.choice([-1.0, 1.0], size=(N_OUTLIERS, N_FEATURES))
    X = np.vstack([inliers, outliers])
    labels = np.r_[np.zeros(N_INLIERS, dtype=int), np.ones(N_OUTLIERS, dtype=int)]
    order = rng.permutation(len(X))
    return pl.DataFrame(X[order], schema=[f"x{i}" for i in range(N_FEATURES)]), labels[order]


@pytest.fixture(scope="session")
def planted() -> tuple[pl.DataFrame, np.ndarray]:
    return planted_data()
