"""The `auto` detector's catalog entry: the default for a detector created without an algorithm."""

from __future__ import annotations

from vigil.ml.entry import PYOD, CatalogEntry, from_library
from vigil.ml.params import RANDOM_STATE, flag, real
from vigil.ml.stepwise import fit_auto

__all__ = ["AUTO", "AUTO_ENTRIES"]

AUTO = "auto"

AUTO_ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name=AUTO,
        family="ensemble",
        title="Auto: an ensemble of fast detectors, semi-supervised once labels exist",
        description="Isolation Forest, ECOD, COPOD, HBOS and kNN, their robustly standardised scores averaged with "
        "one vote per family (isolation, tails, neighbours); with feedback labels, a gradient-boosting model over "
        "the features and those scores (and PCA's) is blended in (XGBOD-style). The default when no algorithm is "
        "named. Explained by Shapley sampling.",
        factory=from_library("vigil.ml.auto", "AutoDetector"),
        convention=PYOD,
        params=(
            flag("use_labels", True, "Learn from feedback labels when the training dataset has some."),
            real(
                "supervised_weight",
                0.85,
                "Largest weight of the supervised model in the blend (reached as labelled anomalies accumulate).",
                minimum=0.0,
                maximum=1.0,
            ),
            RANDOM_STATE,
        ),
        learns_from_labels=True,
        fit_with_progress=fit_auto,
    ),
)
