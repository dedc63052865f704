"""Vigil's detection engine, pure: a catalog of PyOD and scikit-learn detectors (fit, score, threshold, artifacts)
and of River's online detectors (score and learn event by event, signed state snapshots).

Frames in, arrays out; no web framework, database or domain code (an import-linter contract checks it).

Examples
--------
>>> import polars as pl
>>> from vigil import ml
>>> frame = pl.DataFrame({"x": [0.0, 0.2, 0.1, 0.3, 0.2, 9.0] * 4})
>>> model = ml.fit_detector(frame, algorithm="ecod", parameters={}, contamination=0.2, features=["x"],
...                         preprocessing=ml.Preprocessing())
>>> model.score(frame).shape
(24,)
"""

from vigil.ml.artifacts import FORMAT_VERSION, MAGIC, dump_artifact, load_artifact
from vigil.ml.auto_entry import AUTO
from vigil.ml.catalog import CATALOG, describe_catalog, get_entry, validate_parameters, warm_up
from vigil.ml.detector import FittedDetector, fit_detector
from vigil.ml.entry import CatalogEntry, ScoreConvention, quantile_threshold
from vigil.ml.errors import (
    ArtifactIncompatible,
    ArtifactTampered,
    InvalidFeatures,
    InvalidParameters,
    MLError,
    TrainingFailed,
    UnknownAlgorithm,
    UntrustedSigner,
)
from vigil.ml.exchange import key_id, open_export, public_key, seal_export, signing_seed
from vigil.ml.explain import Explanation, explain
from vigil.ml.metrics import HOLDOUT_FRACTION, agreement, fpr_threshold, holdout_mask, quality
from vigil.ml.online import OnlineModel, Step, ThresholdSpec, dump_state, load_state
from vigil.ml.online_catalog import (
    check_online_features,
    get_online_entry,
    is_online,
    validate_online_parameters,
)
from vigil.ml.params import Param
from vigil.ml.preprocessing import FittedPreprocessor, Preprocessing
from vigil.ml.thresholds import with_threshold

__all__ = [
    "AUTO",
    "CATALOG",
    "FORMAT_VERSION",
    "HOLDOUT_FRACTION",
    "MAGIC",
    "ArtifactIncompatible",
    "ArtifactTampered",
    "CatalogEntry",
    "Explanation",
    "FittedDetector",
    "FittedPreprocessor",
    "InvalidFeatures",
    "InvalidParameters",
    "MLError",
    "OnlineModel",
    "Param",
    "Preprocessing",
    "ScoreConvention",
    "Step",
    "ThresholdSpec",
    "TrainingFailed",
    "UnknownAlgorithm",
    "UntrustedSigner",
    "agreement",
    "check_online_features",
    "describe_catalog",
    "dump_artifact",
    "dump_state",
    "explain",
    "fit_detector",
    "fpr_threshold",
    "get_entry",
    "get_online_entry",
    "holdout_mask",
    "is_online",
    "key_id",
    "load_artifact",
    "load_state",
    "open_export",
    "public_key",
    "quality",
    "quantile_threshold",
    "seal_export",
    "signing_seed",
    "validate_online_parameters",
    "validate_parameters",
    "warm_up",
    "with_threshold",
]
