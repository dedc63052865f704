"""Detection results a person can read: each score's percentile among the training scores (0–1, the same scale
whatever the algorithm) and a flag on rows whose missing values were filled in."""

from __future__ import annotations

import io

import polars as pl
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.detectors.test_workflow import breastw, trained_detector, upload

TYPICAL = {f"f{i}": 1.0 for i in range(9)}
EXTREME = {f"f{i}": 50.0 for i in range(9)}  # far beyond the data (1–10)


@pytest.mark.parametrize("algorithm", ["iforest", "knn"])
def test_scores_come_with_a_percentile_and_imputed_rows_are_flagged(
    client: TestClient, tenant: Tenant, algorithm: str
) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id, algorithm=algorithm)
    with_gap = {**TYPICAL, "f3": None}
    answer = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        json={"records": [TYPICAL, EXTREME, with_gap]},
        headers=tenant.analyst,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    typical, extreme, gap = body["results"]
    assert 0.0 <= typical["percentile"] < 0.9
    assert extreme["percentile"] > 0.95  # among the most anomalous training rows, or beyond them all
    assert extreme["is_anomaly"]
    assert [r["imputed"] for r in body["results"]] == [False, False, True]
    assert body["imputed_rows"] == 1
    assert gap["percentile"] == pytest.approx(typical["percentile"], abs=0.5)


def test_parquet_answers_carry_the_same_columns(client: TestClient, tenant: Tenant) -> None:
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id)
    buffer = io.BytesIO()
    pl.DataFrame([TYPICAL, EXTREME]).write_parquet(buffer)
    answer = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        content=buffer.getvalue(),
        headers={
            **tenant.analyst,
            "Content-Type": "application/vnd.apache.parquet",
            "Accept": "application/vnd.apache.parquet",
        },
    )
    assert answer.status_code == 200, answer.text
    table = pq.read_table(io.BytesIO(answer.content))
    assert table.column_names == ["index", "score", "is_anomaly", "percentile", "imputed"]
    assert table.column("percentile").to_pylist()[1] > 0.95
