"""The PyOD detectors of the catalog, as data: library class, parameter schema (PyOD's names and defaults), family."""

from __future__ import annotations

from vigil.ml.entry import PYOD, CatalogEntry, from_library
from vigil.ml.params import RANDOM_STATE, Param, choice, flag, integer, real
from vigil.ml.stepwise import grow_pyod_forest

__all__ = ["ISOLATION_FOREST_PARAMS", "PYOD_ENTRIES"]

_N_NEIGHBORS_MAX = 1000
_P = integer("p", 2, "Power of the Minkowski distance (1: Manhattan, 2: Euclidean).", minimum=1, maximum=10)


def _n_neighbors(default: int, *, minimum: int = 1) -> Param:
    return integer(
        "n_neighbors",
        default,
        "Number of neighbours each row is compared with; must be below the number of training rows.",
        minimum=minimum,
        maximum=_N_NEIGHBORS_MAX,
    )


# PyOD's IForest wraps scikit-learn's, so both entries take the same parameters.
ISOLATION_FOREST_PARAMS = (
    integer("n_estimators", 100, "Number of trees in the ensemble.", minimum=1, maximum=5000),
    real(
        "max_features",
        1.0,
        "Fraction of the features each tree is grown on.",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    flag("bootstrap", False, "Draw each tree's rows with replacement."),
    RANDOM_STATE,
)

PYOD_ENTRIES: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="iforest",
        family="ensemble",
        title="Isolation Forest (PyOD)",
        description="Random trees isolate rows; rows isolated in few splits are anomalous. Fast, a good default.",
        factory=from_library("pyod.models.iforest", "IForest"),
        convention=PYOD,
        explainer="isolation_path",
        params=ISOLATION_FOREST_PARAMS,
        fit_with_progress=grow_pyod_forest,
    ),
    CatalogEntry(
        name="inne",
        family="ensemble",
        title="Isolation using Nearest-Neighbour Ensembles (PyOD)",
        description="Hyperspheres around sampled rows isolate the others; handles local anomalies better than trees.",
        factory=from_library("pyod.models.inne", "INNE"),
        convention=PYOD,
        params=(
            integer("n_estimators", 200, "Number of sub-samples in the ensemble.", minimum=1, maximum=5000),
            RANDOM_STATE,
        ),
    ),
    CatalogEntry(
        name="ecod",
        family="probabilistic",
        title="Empirical Cumulative Distribution (PyOD)",
        description="Tail probabilities of each feature's empirical distribution, combined. No parameters to tune.",
        factory=from_library("pyod.models.ecod", "ECOD"),
        convention=PYOD,
        explainer="tail_probabilities",
    ),
    CatalogEntry(
        name="copod",
        family="probabilistic",
        title="Copula-Based Outlier Detection (PyOD)",
        description="Tail probabilities from an empirical copula of the features. No parameters to tune.",
        factory=from_library("pyod.models.copod", "COPOD"),
        convention=PYOD,
        explainer="tail_probabilities",
    ),
    CatalogEntry(
        name="hbos",
        family="proximity",
        title="Histogram-Based Outlier Score (PyOD)",
        description="Per-feature histograms; a row falling in sparse bins is anomalous. Very fast, assumes "
        "independent features.",
        factory=from_library("pyod.models.hbos", "HBOS"),
        convention=PYOD,
        explainer="histogram_density",
        params=(
            integer("n_bins", 10, "Number of bins of each feature's histogram.", minimum=2, maximum=1000),
            real(
                "alpha",
                0.1,
                "Regulariser against empty bins.",
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
                exclusive_maximum=True,
            ),
            real(
                "tol",
                0.5,
                "How far outside the bins a value may fall and still use the edge bin.",
                minimum=0,
                maximum=1,
            ),
        ),
    ),
    CatalogEntry(
        name="knn",
        family="proximity",
        title="k Nearest Neighbours (PyOD)",
        description="Distance to the k-th (or mean/median of the k) nearest training rows.",
        factory=from_library("pyod.models.knn", "KNN"),
        convention=PYOD,
        params=(
            _n_neighbors(5),
            choice("method", "largest", ("largest", "mean", "median"), "How the k distances become one score."),
            _P,
        ),
    ),
    CatalogEntry(
        name="lof",
        family="proximity",
        title="Local Outlier Factor (PyOD)",
        description="Local density of a row compared with its neighbours' densities; finds local anomalies.",
        factory=from_library("pyod.models.lof", "LOF"),
        convention=PYOD,
        params=(_n_neighbors(20), _P),
    ),
    CatalogEntry(
        name="cof",
        family="proximity",
        title="Connectivity-Based Outlier Factor (PyOD)",
        description="Like LOF with chaining distances, for anomalies off low-density patterns. Quadratic: small data.",
        factory=from_library("pyod.models.cof", "COF"),
        convention=PYOD,
        params=(
            _n_neighbors(20, minimum=2),
            choice("method", "fast", ("fast", "memory"), "fast: quadratic memory; memory: slower, linear memory."),
        ),
    ),
    CatalogEntry(
        name="cblof",
        family="proximity",
        title="Cluster-Based Local Outlier Factor (PyOD)",
        description="k-means clusters split into large and small; scores are distances to the nearest large cluster.",
        factory=from_library("pyod.models.cblof", "CBLOF"),
        convention=PYOD,
        params=(
            integer("n_clusters", 8, "Number of k-means clusters.", minimum=2, maximum=1000),
            real(
                "alpha",
                0.9,
                "Share of the rows the large clusters must hold.",
                minimum=0.5,
                maximum=1.0,
                exclusive_minimum=True,
                exclusive_maximum=True,
            ),
            real("beta", 5.0, "Size ratio separating large from small clusters.", minimum=1.0, exclusive_minimum=True),
            flag("use_weights", False, "Weight scores by cluster size."),
            RANDOM_STATE,
        ),
    ),
    CatalogEntry(
        name="ocsvm",
        family="linear",
        title="One-Class SVM (PyOD)",
        description="A kernel boundary around the bulk of the data. Quadratic in rows: keep the training set small.",
        factory=from_library("pyod.models.ocsvm", "OCSVM"),
        convention=PYOD,
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
    CatalogEntry(
        name="pca",
        family="linear",
        title="Principal Component Analysis (PyOD)",
        description="Weighted distance to the principal hyperplanes; anomalies break the features' correlations.",
        factory=from_library("pyod.models.pca", "PCA"),
        convention=PYOD,
        params=(
            integer(
                "n_components",
                None,
                "Number of components kept (null: all); at most the number of features.",
                minimum=1,
                maximum=10_000,
            ),
            flag("whiten", False, "Scale components to unit variance."),
            flag("weighted", True, "Weight each component's distance by its explained variance."),
            flag("standardization", True, "Standardise the features before the decomposition."),
            RANDOM_STATE,
        ),
    ),
    CatalogEntry(
        name="mcd",
        family="linear",
        title="Minimum Covariance Determinant (PyOD)",
        description="Mahalanobis distance under a robust covariance estimate; for roughly Gaussian data.",
        factory=from_library("pyod.models.mcd", "MCD"),
        convention=PYOD,
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
        name="gmm",
        family="probabilistic",
        title="Gaussian Mixture Model (PyOD)",
        description="Negative log-likelihood under a Gaussian mixture fitted to the training data.",
        factory=from_library("pyod.models.gmm", "GMM"),
        convention=PYOD,
        params=(
            integer("n_components", 1, "Number of mixture components.", minimum=1, maximum=100),
            choice(
                "covariance_type", "full", ("full", "tied", "diag", "spherical"), "Shape of each covariance matrix."
            ),
            real("reg_covar", 1e-6, "Added to the covariance diagonals for stability.", minimum=0.0, maximum=1.0),
            integer("max_iter", 100, "Maximum EM iterations.", minimum=1, maximum=10_000),
            integer("n_init", 1, "Number of initialisations; the best is kept.", minimum=1, maximum=100),
            RANDOM_STATE,
        ),
    ),
    CatalogEntry(
        name="kde",
        family="probabilistic",
        title="Kernel Density Estimation (PyOD)",
        description="Negative log-density under a Gaussian kernel density estimate. Scale the features first.",
        factory=from_library("vigil.ml.sliced_kde", "KDE"),
        convention=PYOD,
        params=(
            real("bandwidth", 1.0, "Kernel bandwidth.", minimum=0.0, maximum=1e6, exclusive_minimum=True),
            choice("algorithm", "auto", ("auto", "kd_tree", "ball_tree"), "Tree used for the density queries."),
            integer("leaf_size", 30, "Leaf size of the tree.", minimum=1, maximum=10_000),
        ),
    ),
    CatalogEntry(
        name="loda",
        family="ensemble",
        title="Lightweight On-line Detector of Anomalies (PyOD)",
        description="An ensemble of one-dimensional histograms on random projections. Fast on wide data.",
        factory=from_library("pyod.models.loda", "LODA"),
        convention=PYOD,
        params=(
            integer("n_bins", 10, "Number of bins of each projection's histogram.", minimum=2, maximum=1000),
            integer("n_random_cuts", 100, "Number of random projections.", minimum=1, maximum=10_000),
            RANDOM_STATE,
        ),
    ),
    CatalogEntry(
        name="feature_bagging",
        family="ensemble",
        title="Feature Bagging (PyOD)",
        description="LOF detectors on random feature subsets, their scores combined (Lazarevic and Kumar, 2005).",
        factory=from_library("pyod.models.feature_bagging", "FeatureBagging"),
        convention=PYOD,
        params=(
            integer("n_estimators", 10, "Number of base detectors.", minimum=1, maximum=1000),
            real(
                "max_features",
                1.0,
                "Largest share of the features one base detector sees (each draws between half and this).",
                minimum=0.5,
                maximum=1.0,
            ),
            flag("bootstrap_features", False, "Draw features with replacement."),
            choice("combination", "average", ("average", "max"), "How the base detectors' scores are combined."),
            RANDOM_STATE,
        ),
    ),
)
