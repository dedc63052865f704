"""Preprocessing with known answers: imputation, refusals, scaling, encodings and unseen categories."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from vigil.ml import FittedPreprocessor, InvalidFeatures, MLError, Preprocessing
from vigil.ml.preprocessing import fit_preprocessor

TRAIN = pl.DataFrame({"x": [1.0, 2.0, None, 3.0, 10.0], "y": [0.0, 0.0, 1.0, 1.0, 2.0]})


def fit(frame: pl.DataFrame, features: list[str], **spec: str) -> tuple[FittedPreprocessor, np.ndarray]:
    return fit_preprocessor(frame, features, Preprocessing(**spec))  # type: ignore[arg-type]


def failing_columns(error: pytest.ExceptionInfo[InvalidFeatures]) -> list[str]:
    return [e["loc"][-1] for e in error.value.errors]


@pytest.mark.parametrize(("missing", "fill"), [("mean", 4.0), ("median", 2.5), ("zero", 0.0)])
def test_missing_values_are_imputed_with_the_training_statistic(missing: str, fill: float) -> None:
    fitted, X = fit(TRAIN, ["x", "y"], missing=missing)
    assert X[:, 0].tolist() == [1.0, 2.0, fill, 3.0, 10.0]
    # At scoring time nulls and NaN alike get the value learned from the training rows, not from the batch.
    scored = fitted.transform(pl.DataFrame({"x": [None, math.nan, 100.0], "y": [5.0, 5.0, 5.0]}))
    assert scored[:, 0].tolist() == [fill, fill, 100.0]


def test_missing_error_refuses_nulls_at_fit_and_at_score() -> None:
    with pytest.raises(InvalidFeatures) as refused:
        fit(TRAIN, ["x", "y"], missing="error")
    assert failing_columns(refused) == ["x"]
    fitted, _ = fit(TRAIN.drop_nulls(), ["x", "y"], missing="error")
    with pytest.raises(InvalidFeatures) as refused:
        fitted.transform(pl.DataFrame({"x": [1.0], "y": [math.nan]}))
    assert failing_columns(refused) == ["y"]


def test_a_column_with_no_values_cannot_learn_a_fill() -> None:
    with pytest.raises(InvalidFeatures) as refused:
        fit(pl.DataFrame({"x": [None, None], "y": [1.0, 2.0]}, schema={"x": pl.Float64, "y": pl.Float64}), ["x", "y"])
    assert failing_columns(refused) == ["x"]


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [
        ("standard", [-math.sqrt(1.5), 0.0, math.sqrt(1.5)]),
        ("minmax", [0.0, 0.5, 1.0]),
        ("robust", [-1.0, 0.0, 1.0]),
    ],
)
def test_scaling_uses_training_statistics(scaling: str, expected: list[float]) -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0], "constant": [7.0, 7.0, 7.0]})
    fitted, X = fit(frame, ["x", "constant"], scaling=scaling)
    np.testing.assert_allclose(X[:, 0], expected)
    assert np.isfinite(X[:, 1]).all()  # a constant column is divided by 1, not by 0
    np.testing.assert_allclose(fitted.transform(frame.head(1))[0, 0], expected[0])


def test_no_op_preprocessing_is_the_frames_own_matrix() -> None:
    frame = pl.DataFrame({"a": [0.1, 0.2, 0.3], "b": [1e300, -1e-300, 0.0]})
    _, X = fit(frame, ["a", "b"])
    np.testing.assert_array_equal(X, frame.to_numpy())


def test_integer_and_boolean_columns_become_floats() -> None:
    frame = pl.DataFrame({"n": [1, 2, 3], "flag": [True, False, True], "small": pl.Series([4, 5, 6], dtype=pl.UInt8)})
    _, X = fit(frame, ["n", "flag", "small"])
    assert X.dtype == np.float64
    assert X.tolist() == [[1.0, 1.0, 4.0], [2.0, 0.0, 5.0], [3.0, 1.0, 6.0]]


def test_onehot_encodes_known_categories_and_zeroes_unseen_ones() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, 3.0], "city": ["b", "a", "b"]})
    fitted, X = fit(frame, ["x", "city"], categorical="onehot")
    assert fitted.output_columns == ["x", "city=a", "city=b"]
    assert X.tolist() == [[1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]]
    unseen = fitted.transform(pl.DataFrame({"x": [1.0, 1.0, 1.0], "city": ["a", "zürich", None]}))
    assert unseen[:, 1:].tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]


def test_ordinal_codes_by_sorted_category_with_a_reserved_code_for_unseen() -> None:
    frame = pl.DataFrame({"city": pl.Series(["b", "a", "c"], dtype=pl.Categorical)})
    fitted, X = fit(frame, ["city"], categorical="ordinal")
    assert X.ravel().tolist() == [1.0, 0.0, 2.0]
    assert fitted.transform(pl.DataFrame({"city": ["c", "new", None]})).ravel().tolist() == [2.0, -1.0, -1.0]


def test_text_features_are_refused_unless_encoded() -> None:
    with pytest.raises(InvalidFeatures) as refused:
        fit(pl.DataFrame({"x": [1.0, 2.0], "city": ["a", "b"]}), ["x", "city"])
    assert failing_columns(refused) == ["city"]
    assert "categorical" in refused.value.errors[0]["msg"]


def test_unsupported_column_types_are_refused() -> None:
    frame = pl.DataFrame({"when": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]})
    with pytest.raises(InvalidFeatures) as refused:
        fit(frame, ["when"], categorical="onehot")
    assert failing_columns(refused) == ["when"]


@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinite_values_are_refused_at_fit_and_at_score(bad: float) -> None:
    with pytest.raises(InvalidFeatures) as refused:
        fit(pl.DataFrame({"x": [1.0, bad], "y": [1.0, 2.0]}), ["x", "y"])
    assert failing_columns(refused) == ["x"]
    fitted, _ = fit(pl.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0]}), ["x", "y"])
    with pytest.raises(InvalidFeatures) as refused:
        fitted.transform(pl.DataFrame({"x": [1.0, 2.0], "y": [bad, None]}))
    assert failing_columns(refused) == ["y"]


def test_missing_and_non_numeric_columns_are_refused_at_score() -> None:
    fitted, _ = fit(pl.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0]}), ["x", "y"])
    with pytest.raises(InvalidFeatures) as refused:
        fitted.transform(pl.DataFrame({"x": [1.0]}))
    assert refused.value.errors[0]["loc"] == ["features", "y"]
    with pytest.raises(InvalidFeatures) as refused:
        fitted.transform(pl.DataFrame({"x": [1.0], "y": ["one"]}))
    assert failing_columns(refused) == ["y"]


def test_missing_column_refused_at_fit() -> None:
    with pytest.raises(InvalidFeatures) as refused:
        fit(pl.DataFrame({"x": [1.0, 2.0]}), ["x", "nope"])
    assert failing_columns(refused) == ["nope"]


def test_preprocessing_options_are_checked() -> None:
    assert Preprocessing(scaling="robust", categorical="ordinal", missing="zero").scaling == "robust"
    with pytest.raises(MLError, match="scaling"):
        Preprocessing(**{"scaling": "log"})  # type: ignore[arg-type]
