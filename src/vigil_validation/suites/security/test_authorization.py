"""Roles hold: a viewer reads but never writes, an analyst does not manage users, a tenant admin not tenants."""

from __future__ import annotations

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant


@pytest.mark.smoke
def test_viewer_cannot_write(tenant: ProvisionedTenant) -> None:
    dataset = tenant.analyst.datasets.upload(b"a,b\n1,2\n3,4\n5,6\n", name="owned")
    detector = tenant.analyst.detectors.create(name="owned", algorithm="iforest", contamination=0.1)
    viewer = tenant.viewer
    writes: list[tuple[str, str, dict[str, object] | None]] = [
        ("POST", "/api/v1/detectors", {"name": "x", "algorithm": "iforest"}),
        ("PATCH", f"/api/v1/datasets/{dataset['id']}", {"name": "hijacked"}),
        ("DELETE", f"/api/v1/datasets/{dataset['id']}", None),
        ("PATCH", f"/api/v1/detectors/{detector['id']}", {"name": "hijacked"}),
        ("DELETE", f"/api/v1/detectors/{detector['id']}", None),
        ("POST", f"/api/v1/detectors/{detector['id']}/train", {"dataset_id": dataset["id"]}),
        ("POST", f"/api/v1/detectors/{detector['id']}/detect", {"records": [{"a": 1, "b": 2}]}),
        ("POST", "/api/v1/users", {"email": "x@example.com", "password": "a" * 20, "role": "admin"}),
    ]
    for method, path, body in writes:
        assert_problem(viewer.send(method, path, json=body), 403)
    upload = viewer.send(
        "POST", "/api/v1/datasets", content=b"a\n1\n", params={"name": "x"}, headers={"Content-Type": "text/csv"}
    )
    assert_problem(upload, 403)
    # …and nothing changed.
    assert viewer.datasets.get(dataset["id"])["name"] == "owned"
    assert viewer.detectors.get(detector["id"])["name"] == "owned"
    assert [d["id"] for d in viewer.datasets.iter_all()] == [dataset["id"]]
    assert [d["id"] for d in viewer.detectors.iter_all()] == [detector["id"]]


def test_viewer_can_read(tenant: ProvisionedTenant) -> None:
    me = tenant.viewer.me()
    assert me["role"] == "viewer"
    assert me["tenant"]["id"] == tenant.id
    assert "datasets:write" not in me["permissions"]
    for path in ("/api/v1/datasets", "/api/v1/detectors", "/api/v1/jobs", "/api/v1/algorithms"):
        assert tenant.viewer.send("GET", path).status_code == 200, path


def test_analyst_cannot_manage_users_and_admin_cannot_manage_tenants(tenant: ProvisionedTenant) -> None:
    new_user = {"email": "intruder@example.com", "password": "correct horse battery staple 99", "role": "admin"}
    assert_problem(tenant.analyst.send("POST", "/api/v1/users", json=new_user), 403)
    assert_problem(tenant.analyst.send("GET", "/api/v1/users"), 403)
    for client in (tenant.admin, tenant.analyst, tenant.viewer):
        assert_problem(client.send("GET", "/api/v1/tenants"), 403)
        assert_problem(client.send("POST", "/api/v1/tenants", json={"name": "rogue"}), 403)
        assert_problem(client.send("DELETE", f"/api/v1/tenants/{tenant.id}"), 403)


def test_tenant_admin_cannot_create_users_elsewhere(tenant: ProvisionedTenant, admin: VigilClient) -> None:
    """A tenant admin manages their own tenant's users; `tenant_id` is for the superadmin."""
    other = admin.create_tenant(f"other-{tenant.id[-8:]}")
    try:
        response = tenant.admin.send(
            "POST",
            "/api/v1/users",
            json={
                "email": f"planted-{tenant.id[-8:]}@example.com",
                "password": "correct horse battery staple 77",
                "role": "admin",
                "tenant_id": other["id"],
            },
        )
        assert response.status_code in (403, 404, 422), response.text
        assert_problem(response, response.status_code)
    finally:
        admin.delete_tenant(other["id"])
