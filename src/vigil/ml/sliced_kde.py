"""PyOD's KDE, with its density queries in slices.

scikit-learn's tree answers a kernel-density query in compiled code that holds the interpreter lock: every query
row visits every training row, so scoring n rows against a model of m holds the lock for n × m kernel evaluations
at once. Measured on this machine (8 features, 5,000 rows, 2,000 scored): PyOD's held it for 3.0–7.4 s at a time,
in which no other thread of the process ran — in the embedded server, no request was answered, and a transaction
holding SQLite's write lock could not finish, so other writers met their busy timeout (503). Here the queries go
in slices of at most `PAIRS_PER_SLICE` evaluations, and each slice hands the lock over before it starts (slicing
alone did not: `yield_lock`): on 16 features, 5,000 training rows and 1,700 queried (one Shapley explanation
step), the longest gap of a thread ticking every millisecond fell from 511–629 ms to 4–10 ms, the query's time
from 0.60–0.63 s to 0.64–0.67 s (two interleaved runs of three). The densities are the same: each row's is computed
on its own.

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(300, 3))
>>> from pyod.models import kde as pyod_kde
>>> bool(np.allclose(KDE().fit(X).decision_function(X[:50]), pyod_kde.KDE().fit(X).decision_function(X[:50])))
True
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pyod.models import kde as pyod_kde
from sklearn.neighbors import KernelDensity

PAIRS_PER_SLICE = 2**15


class SlicedKernelDensity(KernelDensity):  # type: ignore[misc]
    def score_samples(self, X: Any) -> Any:
        rows = np.asarray(X)
        step = max(1, PAIRS_PER_SLICE // max(1, self.tree_.data.shape[0]))
        score = super().score_samples
        if len(rows) <= step:
            return score(rows)
        parts = []
        for i in range(0, len(rows), step):
            if i:
                yield_lock()
            parts.append(score(rows[i : i + step]))
        return np.concatenate(parts)


def yield_lock() -> None:
    """Hands the interpreter lock to a waiting thread. Slicing alone did not: each slice releases and retakes the
    lock in short stretches, and CPython's waiting thread asks for it only after an interval (5 ms) in which it
    changed hands no time, so it never did: a thread ticking every millisecond got no tick in during a whole
    1,700-row query on 5,000 training rows (0.6 s), as unsliced. Sleeping zero seconds releases the lock and lets
    the waiter take it."""
    time.sleep(0)


class KDE(pyod_kde.KDE):  # type: ignore[misc]
    """PyOD's `KDE` (same parameters, same scores) whose density queries run in slices."""

    def __init__(
        self,
        contamination: float = 0.1,
        bandwidth: float = 1.0,
        algorithm: str = "auto",
        leaf_size: int = 30,
        metric: str = "minkowski",
        metric_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            contamination=contamination,
            bandwidth=bandwidth,
            algorithm=algorithm,
            leaf_size=leaf_size,
            metric=metric,
            metric_params=metric_params,
        )
        self.kde_ = SlicedKernelDensity(
            bandwidth=bandwidth, algorithm=algorithm, leaf_size=leaf_size, metric=metric, metric_params=metric_params
        )
