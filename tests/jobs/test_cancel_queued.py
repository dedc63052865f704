"""Cancelling a job that has not started yet runs its kind's failure hook too: a queued training cancelled leaves
its detector as it was before (issue 11's bug: it stayed `training` for ever, and detect answered 409)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, make_settings, provision_tenant
from tests.detectors.test_workflow import breastw, upload
from vigil.app import create_app
from vigil.config import Settings


@pytest.fixture
def idle_client(settings: Settings) -> Iterator[TestClient]:
    """An app whose executor has no threads: every job stays queued until the test says otherwise."""
    idle = make_settings(
        settings.data_dir,
        job_workers=0,
        database_url=settings.database_url,
        database_admin_url=settings.database_admin_url,
    )
    with TestClient(create_app(idle), raise_server_exceptions=False) as client:
        yield client


def queued_training(client: TestClient) -> tuple[Tenant, dict[str, Any], str]:
    """A fresh tenant, a training of it and the dataset it trains on, on an app whose executor has no threads (so
    the job stays queued)."""
    tenant: Tenant = provision_tenant(client, bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD)))
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=tenant.analyst)
    job = client.post(
        f"/api/v1/detectors/{detector.json()['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert job.status_code == 202, job.text
    return tenant, dict(job.json()), dataset_id


def test_cancelling_a_queued_training_restores_the_detector(idle_client: TestClient) -> None:
    tenant, job, dataset_id = queued_training(idle_client)
    detector = {"id": job["subject_id"]}
    assert job["status"] == "queued"
    assert idle_client.get(f"/api/v1/detectors/{detector['id']}", headers=tenant.viewer).json()["status"] == "training"

    cancelled = idle_client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=tenant.analyst)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    after = idle_client.get(f"/api/v1/detectors/{detector['id']}", headers=tenant.viewer).json()
    assert after["status"] == "created", "the failure hook must put the detector back"
    assert after["status_reason"] == "The last training was cancelled."
    # Cancelling again is a conflict, and a new training is accepted.
    assert idle_client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=tenant.analyst).status_code == 409
    retrain = idle_client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
    )
    assert retrain.status_code == 202
