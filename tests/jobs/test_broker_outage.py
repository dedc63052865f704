"""The broker is down when a job is submitted: the job is accepted (202, queued, in the outbox), `/ready` names the
broker, and the job runs once the broker is back — published by the outbox dispatcher, nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, bearer, login, provision_tenant
from tests.detectors.test_workflow import breastw, upload
from tests.jobs.conftest import read, wait
from tests.jobs.workers import Deployment
from tests.support.cluster import BROKER_URL
from tests.support.tcp_proxy import TcpForwarder

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.scaleout]


def test_a_job_submitted_while_the_broker_is_down_runs_when_it_is_back(
    deployment: Callable[..., Deployment],
) -> None:
    broker = urlsplit(BROKER_URL)
    with TcpForwarder(broker.port or 5672) as link:
        through_link = BROKER_URL.replace(f":{broker.port}/", f":{link.port}/")
        link.up()
        # Everyone reaches the broker through the link: the API and the workers (whose dispatchers would
        # otherwise publish the outbox themselves).
        cluster = deployment(broker_url=through_link, broker_connect_timeout_s=1.0)
        cluster.add_worker()
        cluster.wait_nodes(1)
        tenant = provision_tenant(cluster.client, bearer(login(cluster.client, ADMIN_EMAIL, ADMIN_PASSWORD)))
        frame, _ = breastw()
        dataset_id = upload(cluster.client, tenant.analyst, frame)
        detector = cluster.client.post(
            "/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=tenant.analyst
        ).json()

        link.down()  # the broker is unreachable (nothing listens on its port): a submission is still accepted
        answer = cluster.client.post(
            f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset_id}, headers=tenant.analyst
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        ready = cluster.client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["broker"].startswith("unavailable")
        assert ready.json()["checks"]["database"] == "ok"
        queued = read(cluster.app, job_id)
        assert (queued.status, queued.dispatched_at) == ("queued", None), "it waits in the outbox"

        link.up()  # the broker is back
        job = wait(cluster.app, job_id, timeout=120)
        assert job.status == "succeeded", job.error
        assert job.attempts == 1
        assert cluster.client.get("/ready").status_code == 200
        trained = cluster.client.get(f"/api/v1/detectors/{detector['id']}", headers=tenant.viewer).json()
        assert trained["status"] == "trained"
