"""The online detectors of the catalog (`family: "online"`): River's `anomaly` module, each with its parameter
schema, the scaling it expects, and how it reads an event.

>>> is_online("hst"), get_online_entry("hst").river_class
(True, 'river.anomaly.HalfSpaceTrees')
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vigil.ml.errors import InvalidFeatures, InvalidParameters, UnknownAlgorithm
from vigil.ml.params import Param, check_parameters, integer, real

__all__ = [
    "ONLINE_CATALOG",
    "ONLINE_ENTRIES",
    "OnlineEntry",
    "Scaling",
    "check_online_features",
    "describe_online",
    "get_online_entry",
    "is_online",
    "validate_online_parameters",
]

Scaling = Literal["auto", "none", "minmax", "standard"]
SEED = integer(
    "seed",
    None,
    "Seed of the detector's random number generator (null: one is drawn when the stream is created and kept, so "
    "a restored stream replays exactly).",
    minimum=0,
    maximum=2**32 - 1,
)
# Half-space trees are built whole, on the first event a stream learns: `n_trees` full binary trees of `height`,
# about 180 bytes and 7 µs a node here. Each bound alone allows 200 trees of height 20 (400M nodes: tens of GB and
# most of an hour inside one request), so their product is bounded: 2^18 nodes, ~47 MB and ~2 s at most (e.g. 10
# trees of height 13, 32 of height 12, 4 of height 15).
HST_MAX_NODES = 2**18


def _hst_size(parameters: Mapping[str, Any]) -> None:
    nodes = parameters["n_trees"] * (2 ** (parameters["height"] + 1) - 1)
    if nodes > HST_MAX_NODES:
        raise InvalidParameters(
            "hst",
            [
                {
                    "loc": ["body", "parameters", "height"],
                    "msg": f"n_trees × (2^(height+1) − 1) tree nodes must be at most {HST_MAX_NODES:,} (got "
                    f"{nodes:,}): fewer or lower trees",
                    "type": "too_large",
                }
            ],
        )


@dataclass(frozen=True)
class OnlineEntry:
    """An online detector of the catalog: River's class, its parameter schema and how it reads an event.

    `univariate` detectors (River's supervised scorers) score one number: the stream's only feature.
    `scaling` is what `scaling="auto"` means for it (half-space trees expect features in [0, 1]).
    """

    name: str
    title: str
    description: str
    river_class: str
    params: tuple[Param, ...]
    univariate: bool = False
    scaling: Scaling = "none"
    # A check across parameters (each is bounded alone, their product may not be): raises `InvalidParameters`.
    limit: Callable[[Mapping[str, Any]], None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": "online",
            "title": self.title,
            "description": self.description,
            "params": [p.describe() for p in self.params],
            "explanation_method": "none",  # stream events are scored, not explained
            "learns_from_labels": False,
        }

    def build(self, parameters: Mapping[str, Any]) -> Any:
        module, _, name = self.river_class.rpartition(".")
        return getattr(importlib.import_module(module), name)(**parameters)


ONLINE_ENTRIES: tuple[OnlineEntry, ...] = (
    OnlineEntry(
        name="hst",
        title="Half-Space Trees (River)",
        description="River's HalfSpaceTrees: random half-space trees whose mass profiles are refreshed every window; "
        "fast, bounded memory. Features are min-max scaled online (scaling 'auto'). The default online detector.",
        river_class="river.anomaly.HalfSpaceTrees",
        params=(
            integer("n_trees", 10, "Number of trees.", minimum=1, maximum=200),
            integer(
                "height",
                8,
                f"Height of each tree; n_trees × (2^(height+1) − 1) nodes may be at most {HST_MAX_NODES:,}.",
                minimum=1,
                maximum=20,
            ),
            integer(
                "window_size",
                250,
                "Events per reference window (scores are 0 during the first).",
                minimum=2,
                maximum=1_000_000,
            ),
            SEED,
        ),
        scaling="minmax",
        limit=_hst_size,
    ),
    OnlineEntry(
        name="online_svm",
        title="One-Class SVM (River)",
        description="River's stochastic one-class SVM (linear, learnt by SGD); features are standardised online.",
        river_class="river.anomaly.OneClassSVM",
        params=(
            real(
                "nu",
                0.1,
                "Upper bound on the share of training errors.",
                minimum=0.0,
                maximum=1.0,
                exclusive_minimum=True,
            ),
            real(
                "intercept_lr",
                0.01,
                "Learning rate of the intercept.",
                minimum=0.0,
                maximum=10.0,
                exclusive_minimum=True,
            ),
        ),
        scaling="standard",
    ),
    OnlineEntry(
        name="online_lof",
        title="Local Outlier Factor (River)",
        description="River's incremental LOF. It keeps every event it learns, so its cost grows with the stream: "
        "for short or slow streams. Features are standardised online.",
        river_class="river.anomaly.LocalOutlierFactor",
        params=(integer("n_neighbors", 10, "Neighbours each event is compared with.", minimum=1, maximum=1000),),
        scaling="standard",
    ),
    OnlineEntry(
        name="online_loda",
        title="LODA (River)",
        description="Lightweight on-line detector of anomalies: histograms of sparse random projections.",
        river_class="river.anomaly.LODA",
        params=(
            integer("n_bins", 10, "Bins of each projection's histogram.", minimum=2, maximum=1000),
            integer("n_random_cuts", 100, "Number of random projections.", minimum=1, maximum=1000),
            SEED,
        ),
    ),
    OnlineEntry(
        name="gaussian",
        title="Gaussian scorer (River, univariate)",
        description="River's GaussianScorer: 2·|CDF(y) − 0.5| of a Gaussian fitted to the stream's one feature "
        "(optionally over a window). Needs exactly one feature.",
        river_class="river.anomaly.GaussianScorer",
        params=(
            integer("window_size", None, "Fit over this many recent values (null: all).", minimum=2, maximum=1_000_000),
            integer("grace_period", 100, "Events scored 0 while the Gaussian settles.", minimum=0, maximum=1_000_000),
        ),
        univariate=True,
    ),
    OnlineEntry(
        name="sad",
        title="Standard absolute deviation (River, univariate)",
        description="River's StandardAbsoluteDeviation: |y − mean| / standard deviation of the stream's one "
        "feature. Needs exactly one feature.",
        river_class="river.anomaly.StandardAbsoluteDeviation",
        params=(),
        univariate=True,
    ),
)
ONLINE_CATALOG: Mapping[str, OnlineEntry] = {entry.name: entry for entry in ONLINE_ENTRIES}


def is_online(algorithm: str) -> bool:
    """Whether `algorithm` is an online (streaming) entry of the catalog.

    >>> is_online("hst"), is_online("iforest")
    (True, False)
    """
    return algorithm in ONLINE_CATALOG


def get_online_entry(algorithm: str) -> OnlineEntry:
    try:
        return ONLINE_CATALOG[algorithm]
    except KeyError:
        raise UnknownAlgorithm(algorithm, sorted(ONLINE_CATALOG)) from None


def describe_online() -> list[dict[str, Any]]:
    return [entry.describe() for entry in ONLINE_ENTRIES]


def validate_online_parameters(algorithm: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The full parameters (defaults filled in); a null `seed` becomes a drawn one, so replays are exact.

    >>> params = validate_online_parameters("hst", {"n_trees": 5})
    >>> params["n_trees"], isinstance(params["seed"], int)
    (5, True)
    """
    entry = get_online_entry(algorithm)
    params = check_parameters(algorithm, entry.params, parameters)
    if entry.limit is not None:
        entry.limit(params)
    if "seed" in params and params["seed"] is None:
        params["seed"] = secrets.randbelow(2**32)
    return params


def check_online_features(entry: OnlineEntry, features: Sequence[str]) -> None:
    if not features:
        raise InvalidFeatures("A stream needs at least one feature.")
    if entry.univariate and len(features) != 1:
        raise InvalidFeatures(
            f"{entry.title} scores one value: give exactly one feature (got {len(features)}).",
            errors=[
                {
                    "loc": ["body", "features"],
                    "msg": "exactly one feature for a univariate detector",
                    "type": "univariate",
                }
            ],
        )
