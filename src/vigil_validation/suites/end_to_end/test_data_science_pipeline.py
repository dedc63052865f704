"""The data-science pipeline as an analyst runs it: upload data with planted problems → profile → quality →
analysis, and check that every planted problem is found with the right count, in the JSON and the HTML."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import polars as pl
import pytest

from vigil.client import VigilClient
from vigil_validation.checks import watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant, Recorder

ROWS = 1_000
MISSING = 30  # empty `amount` cells (rows 100–129)
OUTLIERS = 6  # `amount` far outside its uniform(90, 110) range (rows 0–5)
MISSPELLED = 8  # "oslo" for "Oslo" (rows 200–207)
TEXT_IN_NUMBERS = 5  # "ERR" in the numeric `reading` column (rows 300–304)
TOO_OLD = 4  # `age` above the expected maximum of 120 (rows 400–403)
DUPLICATES = 12  # copies of rows 600–611 appended at the end
HOSTILE = "<img src=x onerror=alert(1)>"


def planted_frame(seed: int = 17) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    amount: list[float | None] = rng.uniform(90, 110, ROWS).round(2).tolist()
    amount[:OUTLIERS] = [5_000.0, -4_000.0, 9_000.0, 7_500.0, -6_000.0, 8_000.0]
    amount[100 : 100 + MISSING] = [None] * MISSING
    city = rng.choice(["Oslo", "Lima", "Pune"], ROWS, p=[0.5, 0.3, 0.2]).tolist()
    city[200 : 200 + MISSPELLED] = ["oslo"] * MISSPELLED
    reading = [f"{v:.3f}" for v in rng.normal(20, 2, ROWS)]
    reading[300 : 300 + TEXT_IN_NUMBERS] = ["ERR"] * TEXT_IN_NUMBERS
    age = rng.integers(18, 90, ROWS)
    age[400 : 400 + TOO_OLD] = [150, 200, 121, 999]
    signal = rng.normal(0, 1, ROWS)
    frame = pl.DataFrame(
        {
            "amount": amount,
            "city": city,
            "reading": reading,
            "age": age,
            "wait": rng.exponential(4.0, ROWS).round(4),
            HOSTILE: signal,
            "label": (np.abs(signal) > 2.0).astype(np.int64),
        }
    )
    return pl.concat([frame, frame.slice(600, DUPLICATES)])


def as_csv(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


def make_report(
    client: VigilClient, dataset_id: str, kind: str, body: dict[str, Any], config: ValidationConfig
) -> dict[str, Any]:
    """POST a report; a large dataset answers 202 with a job, which must finish at 100% with the report."""
    response = client.send("POST", f"/api/v1/datasets/{dataset_id}/{kind}", json=body)
    assert response.status_code in (201, 202), response.text
    if response.status_code == 202:
        job, _, progress = watch_job(
            client, response.json()["id"], timeout=config.api.job_timeout_s, poll=config.api.job_poll_interval_s
        )
        assert job["status"] == "succeeded", job
        assert progress == sorted(progress), progress
        assert job["result"]["kind"] == kind
        return client.call("GET", f"/api/v1/datasets/{dataset_id}/{kind}", params={"version": job["result"]["version"]})
    report: dict[str, Any] = response.json()
    return report


@pytest.mark.smoke
def test_pipeline_finds_every_planted_problem(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    analyst, viewer = tenant.analyst, tenant.viewer
    frame = planted_frame()
    dataset = analyst.datasets.upload(as_csv(frame), name="planted", media_type="text/csv")
    rows = ROWS + DUPLICATES
    assert dataset["rows"] == rows

    started = time.perf_counter()
    profile = make_report(analyst, dataset["id"], "profile", {}, validation_config)
    record("profile_time", time.perf_counter() - started, "s")
    assert (profile["status"], profile["version"]) == ("ready", 1)
    body = profile["body"]
    assert body["dataset"]["rows"] == rows
    assert body["dataset"]["duplicate_rows"] == DUPLICATES
    columns = {c["name"]: c for c in body["columns"]}
    assert columns["amount"]["missing"] == MISSING
    assert columns["amount"]["max"] == 9_000.0
    assert columns["reading"]["kind"] == "categorical"  # the "ERR"s made it text
    assert {t["value"] for t in columns["city"]["top_values"]} == {"Oslo", "Lima", "Pune", "oslo"}
    assert columns["age"]["max"] == 999

    started = time.perf_counter()
    quality = make_report(
        analyst,
        dataset["id"],
        "quality",
        {"expectations": {"age": {"min": 0, "max": 120}, "city": {"allowed": ["Oslo", "Lima", "Pune"]}}},
        validation_config,
    )
    record("quality_time", time.perf_counter() - started, "s")
    issues = {i["id"]: i for i in quality["body"]["issues"]}

    def found(issue_id: str, count: int, first_rows: list[int]) -> None:
        assert issue_id in issues, f"{issue_id} not found among {sorted(issues)}"
        assert issues[issue_id]["affected_rows"] == count, issues[issue_id]
        assert issues[issue_id]["sample_rows"][: len(first_rows)] == first_rows, issues[issue_id]

    found("missing_values:amount", MISSING, list(range(100, 110)))
    found("outliers:amount", OUTLIERS, list(range(OUTLIERS)))
    found("duplicate_rows", DUPLICATES, list(range(ROWS, ROWS + 10)))
    found("inconsistent_categories:city", MISSPELLED, list(range(200, 200 + MISSPELLED)))
    found("not_allowed:city", MISSPELLED, list(range(200, 200 + MISSPELLED)))
    found("mixed_types:reading", TEXT_IN_NUMBERS, list(range(300, 300 + TEXT_IN_NUMBERS)))
    found("max_violated:age", TOO_OLD, list(range(400, 400 + TOO_OLD)))
    scores = quality["body"]["scores"]
    assert scores["uniqueness"] == pytest.approx(1 - DUPLICATES / rows)
    assert 0 < quality["body"]["overall"] < 1
    actions = {(r["action"], r["column"]) for r in quality["body"]["recommendations"]}
    assert {("impute", "amount"), ("cap", "amount"), ("deduplicate", None), ("standardize", "city"),
            ("cast", "reading")} <= actions  # fmt: skip

    analysis = make_report(analyst, dataset["id"], "analysis", {"target": "label"}, validation_config)
    fits = {c["name"]: c for c in analysis["body"]["columns"]}
    assert fits["wait"]["best_fit"] in ("exponential", "gamma", "weibull")
    assert fits["wait"]["normality"]["normal"] is False
    relevance = analysis["body"]["relevance"]
    assert relevance["features"][0]["feature"] == HOSTILE  # the label is |signal| > 2: the signal matters most

    for kind in ("profile", "quality", "analysis"):
        page = viewer.send("GET", f"/api/v1/datasets/{dataset['id']}/{kind}.html")
        assert page.status_code == 200, page.text[:300]
        assert page.headers["content-type"].startswith("text/html")
        assert "<img src=x" not in page.text
        assert "<script" not in page.text.lower()
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "script-src" not in page.headers.get("content-security-policy", "default-src 'none'")


@pytest.mark.slow
def test_a_large_dataset_is_profiled_by_a_job(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    """Above the server's inline limit (100,000 rows by default) the report is made by a job with progress."""
    rng = np.random.default_rng(3)
    rows = 150_000
    frame = pl.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(6)})
    dataset = tenant.analyst.datasets.upload(frame, name="large")
    started = time.perf_counter()
    report = make_report(tenant.analyst, dataset["id"], "profile", {}, validation_config)
    record("large_profile_time", time.perf_counter() - started, "s")
    assert report["status"] == "ready"
    assert report["body"]["dataset"]["rows"] == rows
    assert report["body"]["columns"][0]["count"] == rows
