"""The inline detect path: plain numeric records go straight to a matrix, any other shape through a table — and
both give the same answers; the loaded model is kept; `Server-Timing` says where the time went."""

from __future__ import annotations

import io
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant, make_settings, provision_tenant, wait_for_job
from tests.detectors.test_workflow import breastw, trained_detector, upload
from vigil.app import create_app
from vigil.detectors.artifact_cache import models as model_cache
from vigil.detectors.inline import records_matrix


@pytest.fixture
def detector(client: TestClient, tenant: Tenant) -> tuple[str, pl.DataFrame]:
    frame, _ = breastw()
    return trained_detector(client, tenant, upload(client, tenant.analyst, frame)), frame


def detect(client: TestClient, tenant: Tenant, detector_id: str, records: list[dict[str, object]]) -> dict[str, object]:
    response = client.post(f"/api/v1/detectors/{detector_id}/detect", json={"records": records}, headers=tenant.analyst)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def scores(body: dict[str, object]) -> list[float]:
    results = body["results"]
    assert isinstance(results, list)
    return [r["score"] for r in results]


def test_records_matrix_takes_only_the_plain_case() -> None:
    features = ["a", "b"]
    assert records_matrix([{"a": 1, "b": 2.0}], features) is not None
    for odd in (
        [{"a": 1, "b": None}],  # a null: the table way fills it as configured
        [{"a": 1, "b": "2"}],  # text
        [{"a": True, "b": 2.0}],  # a boolean
        [{"a": 1}],  # a missing key
        [{"a": 1, "b": 2, "c": 3}],  # an extra key
        [{"a": 1, "b": [2]}],  # nested
        [{"a": 10**400, "b": 1}],  # beyond float64
        [[1, 2]],  # not an object
    ):
        assert records_matrix(odd, features) is None, odd


def test_matrix_and_table_ways_agree_bit_for_bit(
    client: TestClient, tenant: Tenant, detector: tuple[str, pl.DataFrame]
) -> None:
    detector_id, frame = detector
    rows = frame.head(50)
    plain = detect(client, tenant, detector_id, rows.to_dicts())  # the matrix way
    # The same rows as a Parquet body always take the table way.
    buffer = io.BytesIO()
    rows.write_parquet(buffer)
    tabled = client.post(
        f"/api/v1/detectors/{detector_id}/detect",
        content=buffer.getvalue(),
        headers={**tenant.analyst, "Content-Type": "application/vnd.apache.parquet"},
    )
    assert tabled.status_code == 200, tabled.text
    assert scores(plain) == scores(tabled.json())
    # Integers where the training data had floats: converted exactly as the table way converts them.
    as_ints = [{k: int(v) for k, v in r.items()} for r in rows.to_dicts()]
    via_matrix = scores(detect(client, tenant, detector_id, as_ints))
    with_a_null = [*as_ints, {**as_ints[0], "f0": None}]  # one null sends the whole batch the table way
    via_table = scores(detect(client, tenant, detector_id, with_a_null))
    assert via_matrix == via_table[:-1]


def test_odd_records_still_get_their_problem(
    client: TestClient, tenant: Tenant, detector: tuple[str, pl.DataFrame]
) -> None:
    detector_id, frame = detector
    record = frame.head(1).to_dicts()[0]
    for odd, slug in (
        ({**record, "f0": "ten"}, "invalid-input"),
        ({**record, "extra": 1}, "invalid-input"),
        ({k: v for k, v in record.items() if k != "f1"}, "invalid-input"),
        ({**record, "f0": {"nested": 1}}, "invalid-input"),
    ):
        response = client.post(
            f"/api/v1/detectors/{detector_id}/detect", json={"records": [odd]}, headers=tenant.analyst
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith(slug)
    for body in ({"records": [1, 2]}, {"records": []}, {"records": [record], "version": 0}, {"rows": [record]}):
        response = client.post(f"/api/v1/detectors/{detector_id}/detect", json=body, headers=tenant.analyst)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"], response.text


def test_the_model_stays_loaded_and_timing_is_reported(
    client: TestClient, tenant: Tenant, detector: tuple[str, pl.DataFrame]
) -> None:
    detector_id, frame = detector
    records = frame.head(5).to_dicts()
    detect(client, tenant, detector_id, records)
    loads = model_cache.loads
    response = client.post(f"/api/v1/detectors/{detector_id}/detect", json={"records": records}, headers=tenant.analyst)
    assert response.status_code == 200
    assert model_cache.loads == loads, "the model was loaded again"
    timing = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
    assert {"parse", "model", "convert", "score", "encode"} <= set(timing)
    assert all(float(value) >= 0 for value in timing.values())


def test_process_metrics_are_exported(client: TestClient) -> None:
    text = client.get("/metrics").text
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_gc_collections_total",
        "vigil_process_threads",
    ):
        assert f"\n{name}" in text, name
    resident = next(line for line in text.splitlines() if line.startswith("process_resident_memory_bytes"))
    assert float(resident.split()[-1]) > 10 * 2**20  # a Python server with numpy loaded holds well over 10 MiB
    assert np.isfinite(float(resident.split()[-1]))


def test_a_retraining_is_used_at_once(client: TestClient, tenant: Tenant, detector: tuple[str, pl.DataFrame]) -> None:
    detector_id, frame = detector
    records = frame.head(3).to_dicts()
    assert detect(client, tenant, detector_id, records)["model_version"] == 1  # version 1 now in the lookup cache
    dataset_id = upload(client, tenant.analyst, frame, name="again")
    job = client.post(f"/api/v1/detectors/{detector_id}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst)
    assert wait_for_job(client, job.json()["id"], tenant.analyst)["status"] == "succeeded"
    assert detect(client, tenant, detector_id, records)["model_version"] == 2


def test_a_deletion_elsewhere_applies_within_the_bound(tmp_path: Path) -> None:
    """Two apps on one database stand in for two server processes: the second deletes the detector the first has
    just used; once the lookup bound has passed, the first must not score with it any more."""
    ttl = 1.5
    settings = make_settings(tmp_path / "shared", lookup_cache_ttl_s=ttl)
    with ExitStack() as stack:
        first = stack.enter_context(TestClient(create_app(settings), raise_server_exceptions=False))
        second = stack.enter_context(TestClient(create_app(settings, run_workers=False)))
        tenant = provision_tenant(first)
        frame, _ = breastw()
        detector_id = trained_detector(first, tenant, upload(first, tenant.analyst, frame))
        records = frame.head(3).to_dicts()
        lookups = first.app.state.context.lookups  # type: ignore[attr-defined]
        detect(first, tenant, detector_id, records)
        hits = lookups.hits
        detect(first, tenant, detector_id, records)
        assert lookups.hits == hits + 1, "the second detection did not use the lookup cache"
        deleted = second.delete(f"/api/v1/detectors/{detector_id}", headers=tenant.analyst)
        assert deleted.status_code == 204
        changed_at = time.monotonic()
        time.sleep(max(0.0, ttl - (time.monotonic() - changed_at)) + 0.05)
        response = first.post(
            f"/api/v1/detectors/{detector_id}/detect", json={"records": records}, headers=tenant.analyst
        )
        assert response.status_code == 404, response.text
