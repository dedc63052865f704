"""A declared label column is the known answer, not a feature: left out of fits and correlations, and the target of
feature relevance."""

from __future__ import annotations

import numpy as np
import polars as pl
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
