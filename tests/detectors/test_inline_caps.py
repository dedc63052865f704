"""Row caps for inline detection (JSON records; Parquet and Arrow bodies, made for bulk scoring, have their own),
refused before the body is decoded; bounded integer parameters; larger work goes through a dataset and a job."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pyarrow import ipc

from tests.conftest import Tenant
from tests.detectors.test_workflow import breastw, trained_detector, upload
from tests.web.test_problems import assert_problem
from vigil.config import Settings


def _body(rows: int, media: str, width: int = 9) -> bytes:
    table = pa.table({f"f{i}": np.zeros(rows) for i in range(width)})
    sink = io.BytesIO()
    if media.endswith("parquet"):
        pq.write_table(table, sink, compression="zstd", row_group_size=1_000_000)
    else:
        with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
            writer.write_table(table)
    return sink.getvalue()


@pytest.mark.parametrize("media", ["application/vnd.apache.parquet", "application/vnd.apache.arrow.stream"])
def test_table_bodies_have_the_inline_row_cap(
    client: TestClient, tenant: Tenant, settings: Settings, media: str
) -> None:
    frame, _ = breastw()
    detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
    cap = settings.max_inline_table_rows
    assert cap > settings.max_inline_records  # bulk scoring is what a table body is for
    url = f"/api/v1/detectors/{detector_id}/detect"
    at_cap = client.post(url, content=_body(cap, media), headers={**tenant.analyst, "Content-Type": media})
    assert at_cap.status_code == 200, at_cap.text
    assert at_cap.json()["total"] == cap
    bomb = _body(2_000_000, media)  # the 2,000,000 rows from a few KB
    assert len(bomb) < 200_000
    response = client.post(url, content=bomb, headers={**tenant.analyst, "Content-Type": media})
    body = assert_problem(response, 422, "invalid-input")
    assert body["limit"] == cap
    json_cap = settings.max_inline_records
    json_over = client.post(url, json={"records": [{"f0": 0}] * (json_cap + 1)}, headers=tenant.analyst)
    assert_problem(json_over, 422, "invalid-input")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/detectors/{d}/versions/{big}"),
        ("DELETE", "/api/v1/detectors/{d}/versions/{big}"),
        ("POST", "/api/v1/detectors/{d}/versions/{big}/promote"),
        ("GET", "/api/v1/detectors/{d}/versions/{big}/export"),
        ("POST", "/api/v1/detectors/{d}/detect?version={big}"),
        ("GET", "/api/v1/datasets/{ds}/rows?offset={big}"),
        ("GET", "/api/v1/datasets/{ds}/profile?version={big}"),
        ("GET", "/api/v1/datasets?limit={big}"),
    ],
)
@pytest.mark.parametrize("big", [2**63, 10**30, 2**53])
def test_huge_integers_in_paths_and_queries_are_422(
    client: TestClient, tenant: Tenant, method: str, path: str, big: int
) -> None:
    detector = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "ecod"}, headers=tenant.analyst)
    dataset = client.post(
        "/api/v1/datasets?name=d", content=b"a\n1\n2\n", headers={**tenant.analyst, "Content-Type": "text/csv"}
    )
    url = path.format(d=detector.json()["id"], ds=dataset.json()["id"], big=big)
    response = client.request(method, url, headers=tenant.analyst, json={"records": [{"a": 1}]})
    assert_problem(response, 422, "invalid-input")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/detectors/{d}/detect", {"records": [{"a": 1}], "version": 2**63}),
        ("/api/v1/detectors/{d}/versions/compare", {"a": 2**63, "b": 1, "dataset_id": "ds_x"}),
        ("/api/v1/detectors/{d}/feedback", {"dataset_id": "ds_x", "labels": [{"index": 2**63, "label": "anomaly"}]}),
        ("/api/v1/datasets/{ds}/analysis", {"detector_id": "det_x", "detector_version": 2**63}),
    ],
)
def test_huge_integers_in_bodies_are_422(
    client: TestClient, tenant: Tenant, path: str, body: dict[str, object]
) -> None:
    detector = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "ecod"}, headers=tenant.analyst)
    dataset = client.post(
        "/api/v1/datasets?name=d", content=b"a\n1\n2\n", headers={**tenant.analyst, "Content-Type": "text/csv"}
    )
    url = path.format(d=detector.json()["id"], ds=dataset.json()["id"])
    response = client.post(url, json=body, headers=tenant.analyst)
    assert_problem(response, 422, "invalid-input")
