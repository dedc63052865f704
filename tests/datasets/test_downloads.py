"""Downloads: a stored dataset comes back in every upload format, and CSV never carries a live formula."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from vigil.config import Settings

FRAME = pl.DataFrame(
    {
        "note": ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "plain", None],
        "amount": [-5.0, 1.5, None, 3.0, 4.0, 0.0],
        "=cmd": [1, 2, 3, 4, 5, 6],
    }
)


@pytest.fixture
def dataset_id(client: TestClient, tenant: Tenant) -> str:
    buffer = io.BytesIO()
    FRAME.write_parquet(buffer)
    response = client.post(
        "/api/v1/datasets?name=cells",
        content=buffer.getvalue(),
        headers={**tenant.analyst, "Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def download(client: TestClient, tenant: Tenant, dataset_id: str, fmt: str) -> bytes:
    response = client.get(f"/api/v1/datasets/{dataset_id}/download?format={fmt}", headers=tenant.viewer)
    assert response.status_code == 200, response.text
    assert f'filename="{dataset_id}.{fmt}"' in response.headers["content-disposition"]
    return response.content


def test_csv_cells_that_would_run_as_formulas_are_text(
    client: TestClient, tenant: Tenant, dataset_id: str, settings: Settings
) -> None:
    rows = list(csv.reader(io.StringIO(download(client, tenant, dataset_id, "csv").decode())))
    assert rows[0] == ["note", "amount", "'=cmd"]
    assert [row[0] for row in rows[1:]] == ['\'=HYPERLINK("http://evil")', "'+1+1", "'-2", "'@SUM(A1)", "plain", ""]
    # Numbers are numbers, negative or not: only text is neutralised.
    assert rows[1][1] == "-5"
    # The file written for the download is gone once it has been sent.
    assert not [p for p in settings.blob_root.rglob("up-*") if p.is_file()]


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "json"])
def test_binary_and_json_downloads_round_trip(client: TestClient, tenant: Tenant, dataset_id: str, fmt: str) -> None:
    body = download(client, tenant, dataset_id, fmt)
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
    elif fmt == "arrow":
        table = pa.ipc.open_stream(body).read_all()
    else:
        table = pa.Table.from_pylist(json.loads(body))
    assert pl.from_arrow(table).equals(FRAME)  # type: ignore[union-attr]


def test_downloads_stay_in_their_tenant(
    client: TestClient, tenant: Tenant, make_tenant: Callable[[], Tenant], dataset_id: str
) -> None:
    other = make_tenant()
    response = client.get(f"/api/v1/datasets/{dataset_id}/download", headers=other.viewer)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    bad = client.get(f"/api/v1/datasets/{dataset_id}/download?format=xlsx", headers=tenant.viewer)
    assert bad.status_code == 422
