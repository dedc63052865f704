"""Tenant settings apply to their tenant only: changing A's never changes B's."""

from __future__ import annotations

from collections.abc import Callable

from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant


def test_settings_of_one_tenant_never_change_another(tenant_factory: Callable[[], ProvisionedTenant]) -> None:
    a, b = tenant_factory(), tenant_factory()
    b_before = b.admin.call("GET", "/api/v1/tenant/settings")
    changed = a.admin.call(
        "PATCH",
        "/api/v1/tenant/settings",
        json={"default_contamination": 0.05, "allowed_algorithms": ["ecod"], "retention_days": 30},
    )
    assert changed["allowed_algorithms"] == ["ecod"]
    assert b.admin.call("GET", "/api/v1/tenant/settings") == b_before

    refused = a.analyst.send("POST", "/api/v1/detectors", json={"name": "x", "algorithm": "iforest"})
    assert_problem(refused, 422, "invalid-input")
    a_detector = a.analyst.detectors.create(name="a", algorithm="ecod")
    assert a_detector["contamination"] == 0.05
    b_detector = b.analyst.detectors.create(name="b", algorithm="iforest")
    assert b_detector["contamination"] == b_before["default_contamination"]
    # A viewer cannot change settings; B's admin changing B's leaves A's as A set them.
    assert_problem(a.viewer.send("PATCH", "/api/v1/tenant/settings", json={"retention_days": 1}), 403)
    b.admin.call("PATCH", "/api/v1/tenant/settings", json={"default_contamination": 0.2})
    assert a.admin.call("GET", "/api/v1/tenant/settings")["default_contamination"] == 0.05
