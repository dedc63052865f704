"""The contract of the three report endpoints (profile, quality, analysis): status codes, response shapes,
versioning, problem documents, permissions and tenant isolation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant

CSV = b"amount,city,count\n1.5,Oslo,1\n2.5,Lima,2\n,Oslo,3\n4.0,oslo,4\n4.0,oslo,4\n"
KINDS = ["profile", "quality", "analysis"]
REPORT_FIELDS = {
    "id", "dataset_id", "kind", "version", "status", "parameters", "body", "error", "job_id", "dataset_rows",
    "created_at", "finished_at",
}  # fmt: skip


@pytest.fixture
def dataset_id(tenant: ProvisionedTenant) -> str:
    return str(tenant.analyst.datasets.upload(CSV, name="contract")["id"])


@pytest.mark.parametrize("kind", KINDS)
def test_create_read_and_version(tenant: ProvisionedTenant, dataset_id: str, kind: str) -> None:
    base = f"/api/v1/datasets/{dataset_id}/{kind}"
    assert_problem(tenant.viewer.send("GET", base), 404)
    assert_problem(tenant.viewer.send("GET", f"{base}.html"), 404)
    created = tenant.analyst.send("POST", base, json={})
    assert created.status_code == 201, created.text
    first = created.json()
    assert set(first) == REPORT_FIELDS
    assert (first["kind"], first["version"], first["status"], first["dataset_id"]) == (kind, 1, "ready", dataset_id)
    assert first["dataset_rows"] == 5
    assert isinstance(first["body"], dict)
    assert first["error"] is None
    second = tenant.analyst.send("POST", base).json()  # no body at all is fine too
    assert second["version"] == 2
    assert tenant.viewer.call("GET", base)["version"] == 2
    assert tenant.viewer.call("GET", base, params={"version": 1}) == first
    versions = tenant.viewer.call("GET", f"{base}/versions")["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert_problem(tenant.viewer.send("GET", base, params={"version": 99}), 404)
    assert_problem(tenant.viewer.send("GET", base, params={"version": 0}), 422)
    page = tenant.viewer.send("GET", f"{base}.html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp
    assert "script" not in csp


def test_report_bodies_have_their_sections(tenant: ProvisionedTenant, dataset_id: str) -> None:
    base = f"/api/v1/datasets/{dataset_id}"
    profile = tenant.analyst.call("POST", f"{base}/profile")["body"]
    assert {"dataset", "columns", "correlations"} <= set(profile)
    assert {"rows", "columns", "duplicate_rows", "memory_bytes"} <= set(profile["dataset"])
    amount = next(c for c in profile["columns"] if c["name"] == "amount")
    assert {"count", "missing", "distinct", "mean", "std", "quantiles", "skewness", "kurtosis", "histogram"} <= set(
        amount
    )
    assert set(amount["quantiles"]) == {"p1", "p5", "p25", "p50", "p75", "p95", "p99"}
    quality = tenant.analyst.call("POST", f"{base}/quality")["body"]
    assert set(quality["scores"]) == {"completeness", "uniqueness", "validity", "consistency", "outliers"}
    for issue in quality["issues"]:
        assert {"id", "dimension", "severity", "affected_rows", "sample_rows", "column", "message"} <= set(issue)
        assert issue["severity"] in ("high", "medium", "low", "info")
    for advice in quality["recommendations"]:
        assert advice["action"] in ("impute", "drop", "cap", "encode", "deduplicate", "standardize", "cast")
        assert advice["issues"]
    analysis = tenant.analyst.call("POST", f"{base}/analysis", json={"target": "count"})["body"]
    assert {"columns", "correlations", "relevance"} <= set(analysis)
    for column in analysis["columns"]:
        assert {"best_fit", "fits", "normality"} <= set(column)
        for fit in column["fits"]:
            assert {"family", "parameters", "ks_statistic", "ks_pvalue", "aic"} <= set(fit)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("profile", {"bins": 1}),
        ("profile", {"columns": ["ghost"]}),
        ("profile", {"unexpected": 1}),
        ("quality", {"expectations": {"ghost": {"min": 0}}}),
        ("quality", {"expectations": {"city": {"min": 0}}}),
        ("quality", {"expectations": {"amount": {"min": 3, "max": 1}}}),
        ("quality", {"expectations": {"amount": {"between": [1, 2]}}}),
        ("analysis", {"families": ["cauchy"]}),
        ("analysis", {"target": "ghost"}),
        ("analysis", {"detector_id": "det_does_not_exist"}),
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    tenant: ProvisionedTenant, dataset_id: str, kind: str, body: dict[str, object]
) -> None:
    response = tenant.analyst.send("POST", f"/api/v1/datasets/{dataset_id}/{kind}", json=body)
    expected = 404 if "detector_id" in body else 422
    assert_problem(response, expected)
    assert tenant.viewer.call("GET", f"/api/v1/datasets/{dataset_id}/{kind}/versions")["items"] == []


def test_permissions_and_isolation(
    tenant: ProvisionedTenant, tenant_factory: Callable[[], ProvisionedTenant], dataset_id: str
) -> None:
    base = f"/api/v1/datasets/{dataset_id}"
    for kind in KINDS:
        assert_problem(tenant.viewer.send("POST", f"{base}/{kind}", json={}), 403)
    tenant.analyst.call("POST", f"{base}/profile")
    other = tenant_factory()
    for path in ("profile", "profile.html", "profile/versions"):
        assert_problem(other.admin.send("GET", f"{base}/{path}"), 404)
    for kind in KINDS:
        assert_problem(other.analyst.send("POST", f"{base}/{kind}", json={}), 404)
    assert_problem(tenant.analyst.send("POST", "/api/v1/datasets/ds_unknown/profile", json={}), 404)
