"""Tenant B cannot see, change or use tenant A's data: another tenant's object answers exactly like none."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant


@pytest.mark.smoke
def test_another_tenants_objects_are_404(tenant_factory: Callable[[], ProvisionedTenant]) -> None:
    owner, stranger = tenant_factory(), tenant_factory()
    dataset = owner.analyst.datasets.upload(b"a,b\n1,2\n3,4\n5,6\n7,8\n", name="secret")
    detector = owner.analyst.detectors.create(name="secret", algorithm="iforest", contamination=0.2)
    job = owner.analyst.detectors.train(detector["id"], dataset["id"])
    mine = stranger.analyst.datasets.upload(b"a,b\n1,2\n3,4\n", name="mine")
    mine_detector = stranger.analyst.detectors.create(name="mine", algorithm="iforest")

    attempts: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", f"/api/v1/datasets/{dataset['id']}", None),
        ("GET", f"/api/v1/datasets/{dataset['id']}/rows", None),
        ("PATCH", f"/api/v1/datasets/{dataset['id']}", {"name": "stolen"}),
        ("DELETE", f"/api/v1/datasets/{dataset['id']}", None),
        ("GET", f"/api/v1/detectors/{detector['id']}", None),
        ("GET", f"/api/v1/detectors/{detector['id']}/versions", None),
        ("PATCH", f"/api/v1/detectors/{detector['id']}", {"name": "stolen"}),
        ("DELETE", f"/api/v1/detectors/{detector['id']}", None),
        ("POST", f"/api/v1/detectors/{detector['id']}/train", {"dataset_id": mine["id"]}),
        ("POST", f"/api/v1/detectors/{detector['id']}/detect", {"records": [{"a": 1, "b": 2}]}),
        ("POST", f"/api/v1/detectors/{mine_detector['id']}/train", {"dataset_id": dataset["id"]}),
        ("GET", f"/api/v1/jobs/{job['id']}", None),
        ("POST", f"/api/v1/jobs/{job['id']}/cancel", None),
    ]
    for client in (stranger.admin, stranger.analyst):
        for method, path, body in attempts:
            try:
                assert_problem(client.send(method, path, json=body), 404)
            except AssertionError as exc:
                raise AssertionError(f"{method} {path}: {exc}") from exc

    # Nothing of A's shows in B's lists, and A's objects are untouched.
    assert {d["id"] for d in stranger.viewer.datasets.iter_all()} == {mine["id"]}
    assert {d["id"] for d in stranger.viewer.detectors.iter_all()} == {mine_detector["id"]}
    assert job["id"] not in {j["id"] for j in stranger.viewer.jobs.list()["items"]}
    assert owner.viewer.datasets.get(dataset["id"])["name"] == "secret"
    assert owner.viewer.detectors.get(detector["id"])["name"] == "secret"
