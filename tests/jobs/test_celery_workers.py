"""Celery workers as real processes on PostgreSQL and RabbitMQ: jobs leave the API process, and every way a worker
can fail — SIGKILL mid-training, a cancel, a hang past the hard limit, memory beyond the cap, a job that kills its
own process each time, a soft limit — ends the job as it should, with the domain's state made consistent."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.jobs.conftest import enqueue, read, wait
from tests.jobs.kinds import ECHO, HANG, HANG_LIMIT_S, HOG, SPIN, SUICIDE
from tests.jobs.workers import Deployment, deployment  # noqa: F401 - the fixture

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_jobs_run_in_worker_processes_not_in_the_api(deployment: Callable[..., Deployment]) -> None:
    cluster = deployment()
    cluster.add_worker()
    [node] = cluster.wait_nodes(1)
    job = wait(cluster.app, enqueue(cluster.app, ECHO, {"value": 41}))
    assert job.status == "succeeded", job.error
    assert job.result is not None
    assert job.result["echo"] == 41
    assert job.result["pid"] != os.getpid()
    assert job.worker_id == node.id
    assert job.attempts == 1
