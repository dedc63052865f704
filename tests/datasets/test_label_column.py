"""A declared label column is the known answer, not a feature: left out of fits and correlations, and the target of
feature relevance."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.detectors.test_workflow import upload


def test_the_label_column_is_not_analysed_as_a_feature(client: TestClient, tenant: Tenant) -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 500)
    frame = pl.DataFrame({"signal": label * 3.0 + rng.normal(0, 1, 500), "noise": rng.normal(0, 1, 500), "y": label})
    dataset_id = upload(client, tenant.analyst, frame, name="labelled")
    made = client.post(f"/api/v1/datasets/{dataset_id}/analysis", json={"label_column": "y"}, headers=tenant.analyst)
    assert made.status_code == 201, made.text
    body = made.json()["body"]
    assert [c["name"] for c in body["columns"]] == ["signal", "noise"]
    assert "y" not in body["correlations"]["columns"]
    relevance = body["relevance"]
    assert relevance["target"] == "y"
    assert relevance["features"][0]["feature"] == "signal"


def labelled_frame(rows: int = 500) -> pl.DataFrame:
    """`signal` predicts the 0/1 label `y` (5 % of rows are class 1: a rare class, as anomalies are); `noise` does
    not; two rows have no label."""
    rng = np.random.default_rng(1)
    label = (rng.random(rows) < 0.05).astype(np.int64)
    frame = pl.DataFrame({"signal": label * 4.0 + rng.normal(0, 1, rows), "noise": rng.normal(0, 1, rows), "y": label})
    return frame.with_columns(pl.when(pl.int_range(rows) < 2).then(None).otherwise(pl.col("y")).alias("y"))


def test_the_profile_keeps_the_label_apart_and_relates_the_features_to_it(client: TestClient, tenant: Tenant) -> None:
    frame = labelled_frame()
    dataset_id = upload(client, tenant.analyst, frame, name="labelled-profile")
    made = client.post(f"/api/v1/datasets/{dataset_id}/profile", json={"label_column": "y"}, headers=tenant.analyst)
    assert made.status_code == 201, made.text
    body = made.json()["body"]
    assert [c["name"] for c in body["columns"]] == ["signal", "noise"]  # the features only
    assert "y" not in body["correlations"]["columns"]
    assert body["dataset"]["columns"] == 3  # the dataset still has it
    label = body["label"]
    ones = int(frame["y"].sum())
    assert (label["name"], label["missing"], label["distinct"]) == ("y", 2, 2)
    assert label["classes"][0]["value"] == 0
    assert label["classes"][1] == {"value": 1, "count": ones, "share": ones / (frame.height - 2)}
    relevance = body["relevance"]
    assert relevance["target"] == "y"
    assert [f["feature"] for f in relevance["features"]] == ["signal", "noise"]
    assert body["parameters"]["label_column"] == "y"
    page = client.get(f"/api/v1/datasets/{dataset_id}/profile.html", headers=tenant.viewer).text
    assert "<h2>Label</h2>" in page
    assert "<h2>Feature relevance</h2>" in page

    plain = client.post(f"/api/v1/datasets/{dataset_id}/profile", json={}, headers=tenant.analyst).json()["body"]
    assert [c["name"] for c in plain["columns"]] == ["signal", "noise", "y"]  # undeclared, it is just a column
    assert (plain["label"], plain["relevance"]) == (None, None)
    assert plain["dataset"]["duplicate_rows"] == body["dataset"]["duplicate_rows"]


def test_quality_checks_the_label_as_an_answer_not_as_a_feature(client: TestClient, tenant: Tenant) -> None:
    dataset_id = upload(client, tenant.analyst, labelled_frame(), name="labelled-quality")
    url = f"/api/v1/datasets/{dataset_id}/quality"
    plain = client.post(url, json={}, headers=tenant.analyst).json()["body"]
    # Undeclared, the rare class 1 of `y` reads as outliers, and its missing values would be imputed.
    assert any(i["check"] == "outliers" and i["column"] == "y" for i in plain["issues"])
    assert any(r["action"] == "impute" and r["column"] == "y" for r in plain["recommendations"])

    made = client.post(url, json={"label_column": "y"}, headers=tenant.analyst)
    assert made.status_code == 201, made.text
    body = made.json()["body"]
    on_label = [i for i in body["issues"] if i["column"] == "y"]
    assert [i["check"] for i in on_label] == ["missing_values"]  # what it lacks, not its rare class
    assert on_label[0]["affected_rows"] == 2
    advice = [r for r in body["recommendations"] if r["column"] == "y"]
    assert [r["action"] for r in advice] == ["drop"]
    assert "never impute" in advice[0]["detail"]
    assert body["label"]["missing"] == 2
    assert body["dataset"]["assessed_columns"] == 2
    page = client.get(f"/api/v1/datasets/{dataset_id}/quality.html", headers=tenant.viewer).text
    assert "<h2>Label</h2>" in page


@pytest.mark.parametrize("kind", ["profile", "quality", "analysis"])
def test_an_unknown_label_column_is_refused_and_nothing_is_made(client: TestClient, tenant: Tenant, kind: str) -> None:
    dataset_id = upload(client, tenant.analyst, labelled_frame(50), name="labelled-bad")
    url = f"/api/v1/datasets/{dataset_id}/{kind}"
    refused = client.post(url, json={"label_column": "nope"}, headers=tenant.analyst)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["loc"] == ["body", "label_column", "nope"]
    assert client.get(url, headers=tenant.viewer).status_code == 404  # no report version was made
