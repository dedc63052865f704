"""Generated data with known properties: planted missing values, duplicates, outliers, known distributions."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

N = 3_000
MISSING_NORMAL = 150  # nulls planted in `normal`
NAN_NORMAL = 30  # NaNs planted in `normal`
DUPLICATES = 25  # rows copied to the end
OUTLIERS = 12  # planted in `normal`, far beyond any robust fence
GAP_AFTER = 2_000  # the `when` column skips 10 days after this row


def make_frame(seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    normal = rng.normal(50.0, 5.0, N)
    normal[:OUTLIERS] = 50.0 + rng.choice([-1, 1], OUTLIERS) * rng.uniform(100, 200, OUTLIERS)
    normal[100 : 100 + NAN_NORMAL] = np.nan
    start = datetime(2024, 1, 1)
    when = [start + timedelta(hours=i) + (timedelta(days=10) if i > GAP_AFTER else timedelta()) for i in range(N)]
    frame = pl.DataFrame(
        {
            "normal": normal,
            "lognormal": rng.lognormal(1.0, 0.5, N),
            "exponential": rng.exponential(3.0, N),
            "counts": rng.poisson(2.0, N).astype(np.int64),
            "signed": rng.integers(-5, 6, N).astype(np.float64),
            "related": np.zeros(N),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], N, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
            "flag": rng.random(N) < 0.3,
            "when": when,
        }
    )
    frame = frame.with_columns(
        related=pl.col("lognormal") * 2 + pl.Series(rng.normal(0, 0.1, N)),
        normal=pl.when(pl.int_range(pl.len()).is_between(200, 200 + MISSING_NORMAL - 1))
        .then(None)
        .otherwise(pl.col("normal")),
        city=pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("city")),
        flag=pl.when(pl.int_range(pl.len()) % 89 == 0).then(None).otherwise(pl.col("flag")),
    )
    return pl.concat([frame, frame.slice(500, DUPLICATES)])


@pytest.fixture(scope="session")
def frame() -> pl.DataFrame:
    return make_frame()
