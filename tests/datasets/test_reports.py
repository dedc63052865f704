"""Data-science reports through the API: profile, quality and analysis — inline and as a job, read back by
version, rendered as HTML (escaping hostile column names), tenant-isolated and permission-checked."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Tenant, bearer, login, make_settings, wait_for_job
from vigil.app import create_app
from vigil.config import Settings
from vigil.migrations.runner import downgrade_database, upgrade_database

HOSTILE = "<script>alert(1)</script>"


def planted(n: int = 400, seed: int = 3) -> pl.DataFrame:
    """Known problems: 20 missing `amount`s, 5 huge `amount` outliers, 8 duplicated rows, 6 mis-spelled cities."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 10, n)
    amount[:5] = [1e4, 2e4, 3e4, -1e4, 5e4]
    frame = pl.DataFrame(
        {
            "amount": amount,
            "count": rng.poisson(4, n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n).tolist(),
            HOSTILE: rng.exponential(2.0, n),
            "label": (rng.random(n) < 0.1).astype(int),
        }
    )
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_between(10, 29)).then(None).otherwise(pl.col("amount")).alias("amount"),
        pl.when(pl.int_range(pl.len()).is_between(40, 45))
        .then(pl.lit("oslo "))
        .otherwise(pl.col("city"))
        .alias("city"),
    )
    return pl.concat([frame, frame.slice(100, 8)])


def upload(client: TestClient, headers: dict[str, str], frame: pl.DataFrame, name: str = "planted") -> str:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    response = client.post(
        f"/api/v1/datasets?name={name}",
        content=buffer.getvalue(),
        headers={**headers, "Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def dataset(client: TestClient, tenant: Tenant) -> str:
    return upload(client, tenant.analyst, planted())


def test_profile_inline_is_stored_and_versioned(client: TestClient, tenant: Tenant, dataset: str) -> None:
    assert client.get(f"/api/v1/datasets/{dataset}/profile", headers=tenant.viewer).status_code == 404
    made = client.post(f"/api/v1/datasets/{dataset}/profile", headers=tenant.analyst)
    assert made.status_code == 201, made.text
    report = made.json()
    assert (report["kind"], report["version"], report["status"]) == ("profile", 1, "ready")
    body = report["body"]
    assert body["dataset"]["rows"] == 408
    assert body["dataset"]["duplicate_rows"] == 8
    columns = {c["name"]: c for c in body["columns"]}
    assert columns["amount"]["missing"] == 20
    assert columns["city"]["kind"] == "categorical"
    assert columns[HOSTILE]["kind"] == "numeric"

    again = client.post(f"/api/v1/datasets/{dataset}/profile", json={"bins": 5}, headers=tenant.analyst).json()
    assert again["version"] == 2
    assert len(again["body"]["columns"][0]["histogram"]["counts"]) == 5
    latest = client.get(f"/api/v1/datasets/{dataset}/profile", headers=tenant.viewer).json()
    assert latest["version"] == 2
    first = client.get(f"/api/v1/datasets/{dataset}/profile?version=1", headers=tenant.viewer).json()
    assert first["body"] == report["body"]
    versions = client.get(f"/api/v1/datasets/{dataset}/profile/versions", headers=tenant.viewer).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    missing = client.get(f"/api/v1/datasets/{dataset}/profile?version=9", headers=tenant.viewer)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_quality_finds_the_planted_problems(client: TestClient, tenant: Tenant, dataset: str) -> None:
    expectations = {"count": {"min": 0, "max": 8}, "city": {"allowed": ["Oslo", "Lima", "Pune"]}}
    made = client.post(
        f"/api/v1/datasets/{dataset}/quality", json={"expectations": expectations}, headers=tenant.analyst
    )
    assert made.status_code == 201, made.text
    body = made.json()["body"]
    issues = {issue["id"]: issue for issue in body["issues"]}
    assert issues["missing_values:amount"]["affected_rows"] == 20
    assert issues["missing_values:amount"]["sample_rows"] == list(range(10, 20))
    assert issues["duplicate_rows"]["affected_rows"] == 8
    assert issues["duplicate_rows"]["sample_rows"] == list(range(400, 408))
    assert issues["outliers:amount"]["affected_rows"] == 5
    assert issues["outliers:amount"]["sample_rows"] == [0, 1, 2, 3, 4]
    assert issues["inconsistent_categories:city"]["affected_rows"] == 6
    assert issues["not_allowed:city"]["affected_rows"] == 6
    counts = planted()["count"]
    assert issues["max_violated:count"]["affected_rows"] == int((counts > 8).sum())
    assert set(body["scores"]) == {"completeness", "uniqueness", "validity", "consistency", "outliers"}
    assert all(0 <= s <= 1 for s in body["scores"].values())
    assert body["scores"]["uniqueness"] == pytest.approx(1 - 8 / 408)
    actions = {(r["action"], r["column"]) for r in body["recommendations"]}
    assert {("impute", "amount"), ("deduplicate", None), ("cap", "amount"), ("standardize", "city")} <= actions


@pytest.mark.parametrize(
    ("expectations", "field"),
    [
        ({"nope": {"min": 1}}, "nope"),
        ({"city": {"min": 1}}, "min"),
        ({"amount": {"min": 5, "max": 1}}, "min"),
        ({"amount": {"minimum": 5}}, "minimum"),
        ({"amount": {"allowed": []}}, "allowed"),
        ({"amount": {"allowed": ["x"]}}, "allowed"),
    ],
)
def test_bad_expectations_are_a_422_problem(
    client: TestClient, tenant: Tenant, dataset: str, expectations: dict[str, object], field: str
) -> None:
    response = client.post(
        f"/api/v1/datasets/{dataset}/quality", json={"expectations": expectations}, headers=tenant.analyst
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in str(response.json()["errors"])
    assert client.get(f"/api/v1/datasets/{dataset}/quality", headers=tenant.viewer).status_code == 404


def test_analysis_with_a_target_and_with_a_detector(client: TestClient, tenant: Tenant, dataset: str) -> None:
    made = client.post(f"/api/v1/datasets/{dataset}/analysis", json={"target": "label"}, headers=tenant.analyst)
    assert made.status_code == 201, made.text
    body = made.json()["body"]
    fits = {c["name"]: c for c in body["columns"]}
    assert fits[HOSTILE]["best_fit"] in ("exponential", "gamma", "weibull")
    assert "label" not in fits
    assert body["relevance"]["method"] == "mutual_information"

    detector = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "iforest", "contamination": 0.05, "features": ["count", HOSTILE]},
        headers=tenant.analyst,
    ).json()
    job = client.post(f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset}, headers=tenant.analyst)
    assert wait_for_job(client, job.json()["id"], tenant.analyst)["status"] == "succeeded"
    relevance = client.post(
        f"/api/v1/datasets/{dataset}/analysis",
        json={"detector_id": detector["id"], "columns": ["count", HOSTILE], "permutation_repeats": 1},
        headers=tenant.analyst,
    )
    assert relevance.status_code == 201, relevance.text
    ranked = relevance.json()["body"]["relevance"]
    assert ranked["method"] == "permutation"
    assert {f["feature"] for f in ranked["features"]} == {"count", HOSTILE}
    assert all(f["permutation_importance"] > 0 for f in ranked["features"])
    unknown = client.post(f"/api/v1/datasets/{dataset}/analysis", json={"detector_id": "det_x"}, headers=tenant.analyst)
    assert unknown.status_code == 404


@pytest.mark.parametrize("kind", ["profile", "quality", "analysis"])
def test_html_pages_escape_hostile_column_names(client: TestClient, tenant: Tenant, dataset: str, kind: str) -> None:
    assert client.get(f"/api/v1/datasets/{dataset}/{kind}.html", headers=tenant.viewer).status_code == 404
    assert client.post(f"/api/v1/datasets/{dataset}/{kind}", headers=tenant.analyst).status_code == 201
    page = client.get(f"/api/v1/datasets/{dataset}/{kind}.html", headers=tenant.viewer)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    text = page.text
    assert "<script" not in text.lower()
    assert "data:image/png;base64," in text
    report = client.get(f"/api/v1/datasets/{dataset}/{kind}", headers=tenant.viewer).json()
    if HOSTILE in json.dumps(report["body"]):  # wherever the report names the column, the page shows it escaped
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_other_tenants_and_viewers(
    client: TestClient, tenant: Tenant, make_tenant: Callable[[], Tenant], dataset: str
) -> None:
    assert client.post(f"/api/v1/datasets/{dataset}/profile", headers=tenant.analyst).status_code == 201
    other = make_tenant()
    for path in ("profile", "profile.html", "profile?version=1", "profile/versions"):
        response = client.get(f"/api/v1/datasets/{dataset}/{path}", headers=other.admin)
        assert response.status_code == 404, path
    assert client.post(f"/api/v1/datasets/{dataset}/profile", headers=other.admin).status_code == 404
    denied = client.post(f"/api/v1/datasets/{dataset}/quality", headers=tenant.viewer)
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")


def test_unknown_columns_and_fields_are_refused(client: TestClient, tenant: Tenant, dataset: str) -> None:
    for kind, body in [
        ("profile", {"columns": ["ghost"]}),
        ("analysis", {"target": "ghost"}),
        ("profile", {"bins": 1}),
        ("analysis", {"families": ["cauchy"]}),
        ("quality", {"surprise": True}),
    ]:
        response = client.post(f"/api/v1/datasets/{dataset}/{kind}", json=body, headers=tenant.analyst)
        assert response.status_code == 422, (kind, body, response.text)


@pytest.fixture
def job_client(tmp_path: Path) -> Iterator[TestClient]:
    """A server whose inline limit is 100 rows, so the planted dataset goes to a job."""
    with TestClient(create_app(make_settings(tmp_path / "d", report_inline_max_rows=100))) as test_client:
        yield test_client


@pytest.fixture
def job_tenant(job_client: TestClient) -> Tenant:
    root = bearer(login(job_client, ADMIN_EMAIL, ADMIN_PASSWORD))
    tenant_id = job_client.post("/api/v1/tenants", json={"name": "jobs"}, headers=root).json()["id"]
    headers = {}
    for role in ("analyst", "viewer"):
        email = f"{role}@jobs.example.com"
        job_client.post(
            "/api/v1/users",
            json={"email": email, "password": PASSWORD, "role": role, "tenant_id": tenant_id},
            headers=root,
        )
        headers[role] = bearer(login(job_client, email, PASSWORD))
    return Tenant(id=tenant_id, admin={}, analyst=headers["analyst"], viewer=headers["viewer"])


@pytest.mark.parametrize("kind", ["profile", "quality", "analysis"])
def test_large_datasets_are_reported_by_a_job(job_client: TestClient, job_tenant: Tenant, kind: str) -> None:
    dataset = upload(job_client, job_tenant.analyst, planted())
    accepted = job_client.post(f"/api/v1/datasets/{dataset}/{kind}", json={}, headers=job_tenant.analyst)
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(job_client, accepted.json()["id"], job_tenant.analyst)
    assert job["status"] == "succeeded", job
    assert job["progress"] == pytest.approx(100)
    result = job["result"]
    assert isinstance(result, dict)
    assert (result["kind"], result["version"], result["dataset_id"]) == (kind, 1, dataset)
    report = job_client.get(f"/api/v1/datasets/{dataset}/{kind}", headers=job_tenant.viewer).json()
    assert (report["status"], report["version"], report["job_id"]) == ("ready", 1, job["id"])
    assert report["body"]


def test_reports_table_migrates_up_and_down(any_db_settings: Settings) -> None:
    engine = create_engine(any_db_settings.database_admin_url_resolved)
    any_db_settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade_database(engine, "0002")
        assert "dataset_reports" in inspect(engine).get_table_names()
        downgrade_database(engine, "0001")
        assert "dataset_reports" not in inspect(engine).get_table_names()
        upgrade_database(engine)
        assert "dataset_reports" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
