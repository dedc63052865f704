"""Datasets through the API: every upload format, listing, preview, rename, delete, and bad files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from vigil.config import Settings

FRAME = pl.DataFrame(
    {
        "amount": [1.5, 2.0, None, 4.25],
        "count": [1, 2, 3, 4],
        "city": ["Oslo", "Lima", "Oslo", None],
        "flag": [True, False, True, True],
    }
)


def encoded(fmt: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if fmt == "csv":
        FRAME.write_csv(buffer)
        return buffer.getvalue(), "text/csv"
    if fmt == "json":
        return json.dumps(FRAME.to_dicts()).encode(), "application/json"
    if fmt == "parquet":
        FRAME.write_parquet(buffer)
        return buffer.getvalue(), "application/vnd.apache.parquet"
    table = FRAME.to_arrow()
    with pa.ipc.new_stream(buffer, table.schema) as writer:
        writer.write_table(table)
    return buffer.getvalue(), "application/vnd.apache.arrow.stream"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "arrow"])
def test_every_format_gives_the_same_dataset(client: TestClient, tenant: Tenant, fmt: str) -> None:
    body, media_type = encoded(fmt)
    response = client.post(
        f"/api/v1/datasets?name=sales-{fmt}", content=body, headers={**tenant.analyst, "Content-Type": media_type}
    )
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["name"], dataset["rows"], dataset["columns"]) == (f"sales-{fmt}", 4, 4)
    kinds = {c["name"]: c["kind"] for c in dataset["schema"]}
    assert kinds == {"amount": "numeric", "count": "numeric", "city": "categorical", "flag": "boolean"}
    rows = client.get(f"/api/v1/datasets/{dataset['id']}/rows", headers=tenant.viewer).json()
    assert rows["rows"][2] == {"amount": None, "count": 3, "city": "Oslo", "flag": True}
    assert rows["total"] == 4


def test_multipart_upload_with_name_from_the_form(client: TestClient, tenant: Tenant) -> None:
    body, _ = encoded("csv")
    response = client.post(
        "/api/v1/datasets",
        files={"file": ("sales.csv", body, "application/octet-stream")},
        data={"name": "From form", "description": "monthly"},
        headers=tenant.analyst,
    )
    assert response.status_code == 201, response.text
    assert (response.json()["name"], response.json()["description"]) == ("From form", "monthly")
    unnamed = client.post("/api/v1/datasets", files={"file": ("q3.csv", body, "text/csv")}, headers=tenant.analyst)
    assert unnamed.json()["name"] == "q3"


def test_patch_and_delete_remove_the_blob(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    body, media_type = encoded("csv")
    dataset = client.post(
        "/api/v1/datasets?name=x", content=body, headers={**tenant.analyst, "Content-Type": media_type}
    ).json()
    patched = client.patch(
        f"/api/v1/datasets/{dataset['id']}", json={"name": "renamed", "description": "d"}, headers=tenant.analyst
    )
    assert (patched.json()["name"], patched.json()["description"]) == ("renamed", "d")
    assert (
        client.patch(f"/api/v1/datasets/{dataset['id']}", json={"rows": 9}, headers=tenant.analyst).status_code == 422
    )
    blobs = list(Path(settings.blob_root).rglob(f"{dataset['id']}.parquet"))
    assert len(blobs) == 1
    assert client.delete(f"/api/v1/datasets/{dataset['id']}", headers=tenant.analyst).status_code == 204
    assert client.get(f"/api/v1/datasets/{dataset['id']}", headers=tenant.viewer).status_code == 404
    assert not blobs[0].exists()


def test_list_pages_through_everything_once(client: TestClient, tenant: Tenant) -> None:
    body, media_type = encoded("csv")
    made = [
        client.post(
            f"/api/v1/datasets?name=d{n}", content=body, headers={**tenant.analyst, "Content-Type": media_type}
        ).json()["id"]
        for n in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(
            "/api/v1/datasets", params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=tenant.viewer
        ).json()
        seen += [d["id"] for d in page["items"]]
        # Items added while paging never disturb what is still to come.
        client.post("/api/v1/datasets?name=late", content=body, headers={**tenant.analyst, "Content-Type": media_type})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Newest first: what existed when paging began appears exactly once, in order; later items sort before it.
    assert seen == list(reversed(made))


def test_a_listed_dataset_reads_as_the_dataset_itself(client: TestClient, tenant: Tenant) -> None:
    """The list reads rows, not entities: every field must come out as `GET /datasets/{id}` shows it (the schema,
    the origin, timestamps with their zone)."""
    body, media_type = encoded("csv")
    made = client.post(
        "/api/v1/datasets?name=one", content=body, headers={**tenant.analyst, "Content-Type": media_type}
    ).json()
    one = client.get(f"/api/v1/datasets/{made['id']}", headers=tenant.viewer).json()
    page = client.get("/api/v1/datasets", headers=tenant.viewer).json()
    assert page["items"] == [one]
    assert one["schema"]
    assert one["created_at"].endswith("Z")


BAD_FILES = [
    (b"", "text/csv", "empty"),
    (b"a,b\n1,2\n3,4,5\n", "text/csv", "ragged"),
    (b"a,b\n", "text/csv", "no rows"),
    (b"\xff\xfe\x00garbage", "text/csv", "utf-8"),
    (b'{"not": "records"', "application/json", "json"),
    (b"PAR1 definitely not parquet", "application/vnd.apache.parquet", "parquet"),
]


@pytest.mark.parametrize(("body", "media_type", "_"), BAD_FILES, ids=[b[2] for b in BAD_FILES])
def test_bad_files_are_refused_and_leave_nothing(
    client: TestClient, tenant: Tenant, settings: Settings, body: bytes, media_type: str, _: str
) -> None:
    response = client.post(
        "/api/v1/datasets?name=bad", content=body, headers={**tenant.analyst, "Content-Type": media_type}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/datasets", headers=tenant.viewer).json()["items"] == []
    assert not [p for p in settings.blob_root.rglob("*") if p.is_file()]


def test_hostile_shapes_are_refused_clearly(client: TestClient, tenant: Tenant) -> None:
    wide = (",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("1" for _ in range(10_000)) + "\n").encode()
    response = client.post(
        "/api/v1/datasets?name=wide", content=wide, headers={**tenant.analyst, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    assert "column" in response.json()["detail"].lower()
    long_name = ("x" * 1_000_000 + ",b\n1,2\n").encode()
    response = client.post(
        "/api/v1/datasets?name=long", content=long_name, headers={**tenant.analyst, "Content-Type": "text/csv"}
    )
    assert response.status_code == 422
    assert len(response.text) < 5000  # the name is not echoed back
