"""The scikit-learn detectors of the catalog, as data; their scores are negated so that higher is more anomalous."""

from __future__ import annotations

from vigil.ml.entry import SKLEARN, SKLEARN_LOF, CatalogEntry, from_library
from vigil.ml.params import RANDOM_STATE, choice, flag, integer, real
from vigil.ml.pyod_detectors import ISOLATION_FOREST_PARAMS
from vigil.ml.stepwise import grow_sklearn_forest

__all__ = ["SKLEARN_ENTRIES"]

SKLEARN_ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="sklearn_iforest",
        family="ensemble",
        title="Isolation Forest (scikit-learn)",
        description="scikit-learn's IsolationForest; scores are its negated decision_function.",
        factory=from_library("sklearn.ensemble", "IsolationForest"),
        convention=SKLEARN,
        params=ISOLATION_FOREST_PARAMS,
        explainer="isolation_path",
        fit_with_progress=grow_sklearn_forest,
    ),
    CatalogEntry(
        name="sklearn_lof",
        family="proximity",
        title="Local Outlier Factor (scikit-learn)",
        description="scikit-learn's LocalOutlierFactor in novelty mode, so it can score new rows.",
        # novelty=True is what makes decision_function available for rows outside the training set.
        factory=from_library("sklearn.neighbors", "LocalOutlierFactor", fixed={"novelty": True}),
        convention=SKLEARN_LOF,
        params=(
            integer(
                "n_neighbors",
                20,
                "Number of neighbours each row is compared with (capped at the number of training rows).",
                minimum=1,
                maximum=1000,
            ),
            real("p", 2.0, "Power of the Minkowski distance (1: Manhattan, 2: Euclidean).", minimum=1.0, maximum=10.0),
            integer("leaf_size", 30, "Leaf size of the neighbour search tree.", minimum=1, maximum=10_000),
        ),
    ),
    CatalogEntry(
        name="elliptic_envelope",
        family="linear",
        title="Elliptic Envelope (scikit-learn)",
        description="Mahalanobis distance under a robust (MCD) covariance estimate; for roughly Gaussian data.",
        factory=from_library("sklearn.covariance", "EllipticEnvelope"),
        convention=SKLEARN,
        params=(
            real(
                "support_fraction",
                None,
                "Share of rows in the robust estimate (null: the library's minimum).",
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
            ),
            flag("assume_centered", False, "Assume the data is centred at zero."),
            RANDOM_STATE,
        ),
    ),
    CatalogEntry(
        name="sklearn_ocsvm",
        family="linear",
        title="One-Class SVM (scikit-learn)",
        description="scikit-learn's OneClassSVM with gamma='scale'. Quadratic in rows: keep the training set small.",
        factory=from_library("sklearn.svm", "OneClassSVM", contamination=False),
        convention=SKLEARN,
        params=(
            choice("kernel", "rbf", ("rbf", "linear", "poly", "sigmoid"), "Kernel of the SVM."),
            real(
                "nu",
                0.5,
                "Upper bound on the share of training errors and lower bound on the share of support vectors.",
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
            ),
            integer("degree", 3, "Degree of the polynomial kernel (other kernels ignore it).", minimum=1, maximum=10),
            real(
                "tol", 0.001, "Tolerance of the stopping criterion.", minimum=0.0, maximum=1.0, exclusive_minimum=True
            ),
            flag("shrinking", True, "Use the shrinking heuristic."),
        ),
    ),
)
