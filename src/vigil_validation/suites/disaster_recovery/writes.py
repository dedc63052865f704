"""The writes the consistency checker's workload sends, each with an `Idempotency-Key`: uploads, detector
creations, and — once a tenant has a trained detector to work on (`prepare_subject`) — trainings and detections of
a stored dataset, which each enqueue a job. What a client saw of each is classified the way Jepsen does."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

import httpx

from vigil.client import VigilClient

Outcome = Literal["ack", "refused", "unknown"]
Kind = Literal["dataset", "detector", "training", "detection"]
RESOURCE_KINDS: tuple[Kind, ...] = ("dataset", "detector")
JOB_KINDS: tuple[Kind, ...] = ("training", "detection")
ROWS = 20
PREPARE_WAIT_S = 120.0


@dataclass
class Write:
    kind: Kind
    tenant: str
    key: str
    name: str
    outcome: Outcome = "unknown"
    status: int = 0
    acked_id: str | None = None
    t_s: float = 0.0


@dataclass(frozen=True)
class Subject:
    """What a tenant's trainings and detections work on: a detector already trained once, and a dataset."""

    detector_id: str
    dataset_id: str
    setup_job_id: str


def csv_for(name: str) -> bytes:
    # Content derived from the name: the read-back knows what each dataset must hold.
    seed = sum(name.encode())
    lines = ["a,b"] + [f"{(seed + i) % 97},{i}" for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def prepare_subject(client: VigilClient) -> Subject:
    """Made before any fault: a dataset, a detector, and its first training (so detections have a model)."""
    suffix = uuid.uuid4().hex[:10]
    dataset = client.datasets.upload(csv_for(f"dr-subject-{suffix}"), name=f"dr-subject-{suffix}")
    detector = client.detectors.create(name=f"dr-subject-{suffix}", algorithm="iforest")
    job = client.detectors.train(detector["id"], dataset["id"], idempotency_key=uuid.uuid4().hex)
    deadline = time.monotonic() + PREPARE_WAIT_S
    ended = client.jobs.get(job["id"])
    while ended["status"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        ended = client.jobs.get(job["id"], wait=1.0)  # within the deployment's short request deadline
    if ended["status"] != "succeeded":
        raise AssertionError(f"the workload's first training did not succeed: {ended}")
    return Subject(detector_id=detector["id"], dataset_id=dataset["id"], setup_job_id=job["id"])


def send_write(client: VigilClient, write: Write, subject: Subject | None) -> httpx.Response:
    headers = {"Idempotency-Key": write.key}
    if write.kind == "dataset":
        return client.send(
            "POST",
            "/api/v1/datasets",
            content=csv_for(write.name),
            params={"name": write.name},
            headers={**headers, "Content-Type": "text/csv"},
        )
    if write.kind == "detector":
        return client.send(
            "POST", "/api/v1/detectors", json={"name": write.name, "algorithm": "iforest"}, headers=headers
        )
    if subject is None:
        raise ValueError(f"a {write.kind} needs the tenant's prepared subject")
    if write.kind == "training":
        # Not promoted: the detections keep scoring with a version that is there.
        body = {"dataset_id": subject.dataset_id, "promote": False}
        return client.send("POST", f"/api/v1/detectors/{subject.detector_id}/train", json=body, headers=headers)
    body = {"dataset_id": subject.dataset_id}
    return client.send("POST", f"/api/v1/detectors/{subject.detector_id}/detect", json=body, headers=headers)


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "ack"
    if 400 <= status < 500 and status not in (408, 409, 429):
        return "refused"
    # No answer, 5xx (the write may have been applied after the deadline), 409 (its key is claimed by a request
    # still running), 429: the client does not know — the checker holds the write to "at most once + completable".
    return "unknown"
