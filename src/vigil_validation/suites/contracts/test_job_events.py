"""The stream of a job's updates (`GET /jobs/{id}/events`, server-sent events): a training's states, in order, to its
end, then `end` and the stream closes; another tenant's job is a 404 problem before any event."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from vigil.client.jobs import sse_events
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant

CSV = b"a,b\n" + b"".join(f"{i % 11},{(i * 7) % 13}\n".encode() for i in range(400))


@pytest.mark.smoke
def test_a_training_is_followed_to_its_end(
    tenant: ProvisionedTenant, tenant_factory: Callable[[], ProvisionedTenant]
) -> None:
    analyst = tenant.analyst
    dataset = analyst.datasets.upload(CSV, name="events")
    detector = analyst.detectors.create(name="events", algorithm="iforest", parameters={"n_estimators": 50})
    job = analyst.detectors.train(detector.id, dataset.id)
    with analyst.open_stream(f"/api/v1/jobs/{job.id}/events", params={"timeout": 60}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = list(sse_events(response.iter_lines()))
    kinds = [event for event, _ in received]
    assert kinds[-1] == "end", kinds
    assert set(kinds[:-1]) == {"job"}, kinds
    assert json.loads(received[-1][1]) == {"reason": "finished"}
    states = [json.loads(data) for event, data in received if event == "job"]
    assert states[0]["id"] == job.id
    assert states[-1]["status"] == "succeeded", states[-1]
    progress = [state["progress"] for state in states]
    assert progress == sorted(progress), f"progress went backwards: {progress}"

    stranger = tenant_factory().analyst
    assert_problem(stranger.send("GET", f"/api/v1/jobs/{job.id}/events"), 404)
    assert_problem(analyst.send("GET", f"/api/v1/jobs/{job.id}/events", params={"timeout": 0}), 422)
