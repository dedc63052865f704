"""The catalog listing and `validate_parameters`: unknown names, types (a bool is not an int), bounds, choices."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vigil import ml

LISTED_KEYS = {"name", "family", "title", "description", "params", "explanation_method", "learns_from_labels"}
PARAM_KEYS = {"name", "type", "default", "minimum", "maximum", "choices", "description"}


def refused(algorithm: str, parameters: dict[str, Any]) -> dict[str, str]:
    """The refused parameter names, each with its error type."""
    with pytest.raises(ml.InvalidParameters) as error:
        ml.validate_parameters(algorithm, parameters)
    return {e["loc"][-1]: e["type"] for e in error.value.errors}


def test_the_catalog_lists_at_least_fifteen_detectors_with_their_schemas() -> None:
    listing = ml.describe_catalog()
    names = [entry["name"] for entry in listing]
    assert len(names) >= 15
    assert len(set(names)) == len(names)
    assert {"iforest", "ecod", "knn", "lof", "ocsvm", "feature_bagging", "sklearn_iforest"} <= set(names)
    for entry in listing:
        assert set(entry) == LISTED_KEYS
        assert entry["name"] == entry["name"].lower()
        for param in entry["params"]:
            assert set(param) == PARAM_KEYS
            assert param["type"] in {"int", "float", "bool", "choice"}
    iforest = next(e for e in listing if e["name"] == "iforest")
    n_estimators = next(p for p in iforest["params"] if p["name"] == "n_estimators")
    assert (n_estimators["default"], n_estimators["minimum"]) == (100, 1)


def test_unknown_algorithm_is_named() -> None:
    with pytest.raises(ml.UnknownAlgorithm, match="'magic'"):
        ml.validate_parameters("magic", {})


def test_defaults_are_filled_in() -> None:
    assert ml.validate_parameters("knn", {"n_neighbors": 7}) == {"n_neighbors": 7, "method": "largest", "p": 2}


def test_all_errors_are_reported_together() -> None:
    assert refused("iforest", {"n_estimators": 0, "bogus": 1, "bootstrap": "yes"}) == {
        "n_estimators": "greater_than_equal",
        "bogus": "extra_forbidden",
        "bootstrap": "bool_type",
    }


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "int_type"), (False, "int_type"), (5.0, "int_type"), ("5", "int_type"), (None, "none_forbidden")],
)
def test_integers_must_be_integers(value: object, kind: str) -> None:
    assert refused("knn", {"n_neighbors": value}) == {"n_neighbors": kind}


def test_floats_accept_integers_but_not_bools_or_non_finite_numbers() -> None:
    params = ml.validate_parameters("iforest", {"max_features": 1})
    assert params["max_features"] == 1.0
    assert isinstance(params["max_features"], float)
    for value in (True, math.nan, math.inf):
        assert "max_features" in refused("iforest", {"max_features": value})


def test_bounds_inclusive_and_exclusive() -> None:
    assert refused("iforest", {"max_features": 0.0}) == {"max_features": "greater_than"}
    assert refused("iforest", {"max_features": 1.5}) == {"max_features": "less_than_equal"}
    assert ml.validate_parameters("iforest", {"max_features": 0.01, "n_estimators": 1})["n_estimators"] == 1
    assert refused("hbos", {"alpha": 1.0}) == {"alpha": "less_than"}


def test_choices() -> None:
    assert ml.validate_parameters("knn", {"method": "median"})["method"] == "median"
    assert refused("knn", {"method": "mode"}) == {"method": "literal_error"}
    assert refused("gmm", {"covariance_type": 1}) == {"covariance_type": "literal_error"}


def test_optional_parameters_take_null() -> None:
    assert ml.validate_parameters("iforest", {"random_state": None})["random_state"] is None
    assert ml.validate_parameters("pca", {"n_components": 2})["n_components"] == 2
    assert refused("iforest", {"random_state": -1}) == {"random_state": "greater_than_equal"}
