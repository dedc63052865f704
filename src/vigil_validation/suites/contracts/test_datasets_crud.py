"""The dataset resource's whole lifecycle through the API: create, read, rename, preview, list, delete."""

from __future__ import annotations

import pytest

from vigil.client import VigilAPIError
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant

CSV = b"a,b,label\n1,2.5,x\n3,4.5,y\n5,6.5,x\n"


@pytest.mark.smoke
def test_dataset_lifecycle(tenant: ProvisionedTenant) -> None:
    analyst, viewer = tenant.analyst, tenant.viewer
    created = analyst.datasets.upload(CSV, name="lifecycle", description="three rows")
    assert created["name"] == "lifecycle"
    assert (created["rows"], created["columns"]) == (3, 3)
    assert created["size_bytes"] > 0
    kinds = {c["name"]: c["kind"] for c in created["schema"]}
    assert kinds["a"] == "numeric"
    assert kinds["b"] == "numeric"
    assert kinds["label"] == "categorical"

    fetched = viewer.datasets.get(created["id"])
    assert fetched == created

    renamed = analyst.datasets.update(created["id"], name="renamed", description="changed")
    assert (renamed["name"], renamed["description"]) == ("renamed", "changed")
    assert renamed["created_at"] == created["created_at"]
    assert viewer.datasets.get(created["id"])["name"] == "renamed"

    rows = viewer.datasets.rows(created["id"], offset=1, limit=1)
    assert rows["total"] == 3
    assert rows["columns"] == ["a", "b", "label"]
    assert rows["rows"] == [{"a": 3, "b": 4.5, "label": "y"}]

    assert created["id"] in {d["id"] for d in viewer.datasets.iter_all()}

    analyst.datasets.delete(created["id"])
    with pytest.raises(VigilAPIError) as gone:
        viewer.datasets.get(created["id"])
    assert gone.value.status == 404
    assert_problem(viewer.send("GET", f"/api/v1/datasets/{created['id']}/rows"), 404)
    assert created["id"] not in {d["id"] for d in viewer.datasets.iter_all()}
    assert_problem(analyst.send("DELETE", f"/api/v1/datasets/{created['id']}"), 404)


def test_rejected_upload_changes_nothing(tenant: ProvisionedTenant) -> None:
    before = [d["id"] for d in tenant.viewer.datasets.iter_all()]
    response = tenant.analyst.send(
        "POST",
        "/api/v1/datasets",
        content=b"\x00\x01 not a parquet file",
        params={"name": "broken"},
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert_problem(response, 422)
    assert [d["id"] for d in tenant.viewer.datasets.iter_all()] == before
