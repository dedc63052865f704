"""A job's stream of updates (`GET /jobs/{id}/events`, server-sent events) over real HTTP: states as they happen,
the end of the stream at a terminal state or at its bound, past the request deadline; tenant-isolated, and refused
with a problem before any event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.client.live_server import live_server
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD
from tests.jobs.conftest import TENANT, enqueue
from vigil.client import JobTimeout, VigilClient
from vigil.client.jobs import sse_events
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.jobs.schemas import JobPublic
from vigil.jobs.service import follow_job, wait_for_job

CSV = b"a,b\n" + b"".join(f"{i % 7},{i % 5}\n".encode() for i in range(60))
# Shorter than the streams below: a stream, once started, must not be cut at the request deadline.
DEADLINE_S = 1.0


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that runs no jobs (no worker threads): a job stays queued until the test cancels it."""
    with live_server(tmp_path_factory.mktemp("events"), job_workers=0, request_timeout_s=DEADLINE_S) as url:
        yield url


def analyst_of_a_new_tenant(url: str) -> VigilClient:
    with VigilClient(url) as root:
        root.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        tenant = root.create_tenant(f"events-{uuid.uuid4().hex[:8]}")
        email = f"analyst-{uuid.uuid4().hex[:8]}@example.com"
        root.create_user(email, PASSWORD, role="analyst", tenant_id=tenant.id)
    analyst = VigilClient(url)
    analyst.login(email, PASSWORD)
    return analyst


def queued_training(analyst: VigilClient) -> str:
    dataset = analyst.datasets.upload(CSV, name="d")
    detector = analyst.detectors.create(name="d", algorithm="iforest")
    return analyst.detectors.train(detector.id, dataset.id).id


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    for event, data in sse_events(response.iter_lines()):
        yield event, json.loads(data)


def test_the_stream_sends_each_change_and_ends_with_the_job(idle_server: str) -> None:
    with analyst_of_a_new_tenant(idle_server) as analyst, httpx.Client(base_url=idle_server, timeout=30) as http:
        job_id = queued_training(analyst)
        with http.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=analyst.auth_headers()) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-accel-buffering"] == "no"
            stream = events(response)
            event, first = next(stream)
            # The job cannot end on its own here, so this event was sent while the stream was still open.
            assert (event, first["id"], first["status"]) == ("job", job_id, "queued")
            assert analyst.jobs.cancel(job_id).status == "cancelled"
            rest = list(stream)
    assert [event for event, _ in rest] == ["job", "end"]
    assert rest[0][1]["status"] == "cancelled"
    assert rest[1][1] == {"reason": "finished"}


def test_a_stream_is_bounded_and_outlives_the_request_deadline(idle_server: str) -> None:
    with analyst_of_a_new_tenant(idle_server) as analyst, httpx.Client(base_url=idle_server, timeout=30) as http:
        job_id = queued_training(analyst)
        path, bound = f"/api/v1/jobs/{job_id}/events", {"timeout": 2 * DEADLINE_S}
        with http.stream("GET", path, params=bound, headers=analyst.auth_headers()) as response:
            assert response.status_code == 200  # not the deadline's 503
            received = list(events(response))
        assert [event for event, _ in received] == ["job", "end"]
        assert received[-1][1] == {"reason": "timeout"}  # sent after the deadline had passed: the stream was not cut
        # The SDK follows on from stream to stream until its own timeout: the job had not ended.
        followed = list(analyst.jobs.follow(job_id, timeout=0.5))
        assert [job.status for job in followed] == ["queued"]
        # Waiting with progress follows the stream too, and gives up at its timeout with the state it last saw.
        seen: list[str] = []
        with pytest.raises(JobTimeout) as waited:
            analyst.jobs.wait(job_id, timeout=0.5, progress=lambda job: seen.append(job.status))
        assert waited.value.job.status == "queued"
        assert seen == ["queued"]
        analyst.jobs.cancel(job_id)


def test_another_tenants_job_unknown_jobs_and_bad_bounds_are_problems(idle_server: str) -> None:
    with (
        analyst_of_a_new_tenant(idle_server) as owner,
        analyst_of_a_new_tenant(idle_server) as stranger,
        httpx.Client(base_url=idle_server, timeout=30) as http,
    ):
        job_id = queued_training(owner)
        for headers, path, status in [
            (stranger.auth_headers(), f"/api/v1/jobs/{job_id}/events", 404),
            (owner.auth_headers(), "/api/v1/jobs/job_missing/events", 404),
            ({}, f"/api/v1/jobs/{job_id}/events", 401),
            (owner.auth_headers(), f"/api/v1/jobs/{job_id}/events?timeout=0", 422),
            (owner.auth_headers(), f"/api/v1/jobs/{job_id}/events?timeout=121", 422),
        ]:
            answer = http.get(path, headers=headers)
            assert answer.status_code == status, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        owner.jobs.cancel(job_id)


def test_a_quiet_job_gets_keep_alives_until_the_bound(app: AppContext) -> None:
    job_id = enqueue(app, "nobody-runs-this")

    async def main() -> list[JobPublic | None]:
        first = await wait_for_job(app=app, scope=TenantScope(TENANT), job_id=job_id, wait_s=0)
        updates = follow_job(app=app, scope=TenantScope(TENANT), first=first, max_s=1.0, idle_s=0.3)
        return [update async for update in updates]

    seen = anyio.run(main)
    assert isinstance(seen[0], JobPublic)
    assert seen[0].status == "queued"
    assert seen[1:], "no keep-alive in a second without a change"
    assert all(update is None for update in seen[1:])


def test_the_sdk_follows_a_training_to_its_end(tmp_path: Path) -> None:
    with live_server(tmp_path) as url, analyst_of_a_new_tenant(url) as analyst:
        job_id = queued_training(analyst)
        states = list(analyst.jobs.follow(job_id, timeout=60))
        assert states[-1].status == "succeeded", states[-1]
        progress = [job.progress for job in states]
        assert progress == sorted(progress)
        # Each state is a change: the stream does not repeat what the client already has.
        marks = [(job.status, job.progress, job.stage) for job in states]
        assert len(marks) == len(set(marks))
        seen: list[str] = []
        again = analyst.detectors.train(analyst.detectors.list().items[0].id, analyst.datasets.list().items[0].id)
        done = analyst.jobs.wait(again.id, timeout=60, progress=lambda job: seen.append(job.status))
        assert done.status == "succeeded"
        assert seen[-1] == "succeeded"
