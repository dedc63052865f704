"""The consistency checker (Jepsen's method, for Vigil's writes): a history of idempotent writes (`writes.py`:
uploads, detector creations, trainings and detections), each with what its client saw — acknowledged (2xx),
definitely refused (4xx), or unknown (no answer, 5xx) — then a read-back:

- every acknowledged write exists exactly once, with the id it was acknowledged with and the right content (a
  dataset's rows; a job's kind);
- every unknown write exists at most once, and a retry with its `Idempotency-Key` completes it (2xx), after
  which it exists exactly once — a job no write accounts for is a write applied twice;
- every job the workload made ended within `jobs_end_s` of the read-back, and succeeded — or was given up after
  a SIGKILL on each of its attempts (`job-interrupted`: the guard against a job that kills its process; counted);
- nothing of one tenant appears in another's lists;
- (`BlobAudit`, where the scenario can reach the server's storage) no blob is left that no row refers to once the
  orphan sweep has run with no grace, and no row refers to a blob that is missing.

The writers run in threads while faults are injected; the checker runs after the deployment has recovered."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from vigil.client import VigilClient, VigilConnectionError
from vigil_validation.suites.disaster_recovery.writes import (
    JOB_KINDS,
    RESOURCE_KINDS,
    ROWS,
    Kind,
    Subject,
    Write,
    classify,
    send_write,
)

JOB_KIND = {"training": "detector.train", "detection": "detector.detect"}
ENDED = ("succeeded", "failed", "cancelled")


@dataclass
class BlobAudit:
    """The storage after a scenario, read by the operator's command (`vigil admin sweep-blobs`) on the server's
    own settings: what the orphan sweep took (the crashes' leftovers), what it left, and rows without their blob."""

    swept: int
    swept_bytes: int
    left: int  # unreferenced blobs still there after the sweep: must be none
    missing: list[str]  # keys rows refer to that are not in the store: must be none


@dataclass
class Verdict:
    requests: int = 0
    acknowledged: int = 0
    unknown: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    unfinishable: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    completed_by_retry: int = 0
    # Retries answered with the first result (`Idempotent-Replayed`): recorded, or read back after a crash.
    replayed: int = 0
    jobs: int = 0
    unended: list[str] = field(default_factory=list)
    failed_jobs: list[str] = field(default_factory=list)
    interrupted_jobs: list[str] = field(default_factory=list)
    jobs_end_s: float = 0.0
    blobs: BlobAudit | None = None

    def counts(self) -> dict[str, int]:
        blobs = {}
        if self.blobs is not None:
            blobs = {
                "orphan_blobs_swept": self.blobs.swept,
                "orphan_blobs_left": self.blobs.left,
                "blobs_missing": len(self.blobs.missing),
            }
        return {
            "requests": self.requests,
            "acknowledged": self.acknowledged,
            "unknown": self.unknown,
            "refused": self.refused,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "wrong_content": len(self.wrong),
            "unfinishable": len(self.unfinishable),
            "leaked": len(self.leaked),
            "completed_by_retry": self.completed_by_retry,
            "replayed": self.replayed,
            "jobs": self.jobs,
            "jobs_unended": len(self.unended),
            "jobs_failed": len(self.failed_jobs),
            "jobs_given_up_after_kills": len(self.interrupted_jobs),
            **blobs,
        }


@dataclass
class Workload:
    """Writer threads: each sends new writes for a tenant (by a seeded draw: uploads and detector creations, and
    trainings and detections where the tenant has a `Subject`) until stopped, recording every outcome."""

    clients: dict[str, VigilClient]  # tenant id -> a logged-in analyst of it
    seed: int
    writers: int = 4
    pause_s: float = 0.05
    subjects: dict[str, Subject] = field(default_factory=dict)  # tenant id -> what its jobs work on
    job_share: float = 0.3  # of the writes of a tenant with a subject: trainings and detections, half each
    history: list[Write] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _kind(self, rng: random.Random, tenant: str) -> Kind:
        draw = rng.random()
        if tenant in self.subjects and draw < self.job_share:
            return "training" if draw < self.job_share / 2 else "detection"
        return "dataset" if rng.random() < 0.5 else "detector"

    def _writer(self, n: int) -> None:
        rng = random.Random(f"{self.seed}:{n}")
        tenants = sorted(self.clients)
        while not self._stop.is_set():
            tenant = tenants[rng.randrange(len(tenants))]
            key = uuid.UUID(int=rng.getrandbits(128)).hex
            kind = self._kind(rng, tenant)
            write = Write(kind=kind, tenant=tenant, key=key, name=f"dr-{kind}-{key[:16]}")
            try:
                response = send_write(self.clients[tenant], write, self.subjects.get(tenant))
                write.status = response.status_code
                if 200 <= response.status_code < 300:
                    write.acked_id = response.json()["id"]
            except VigilConnectionError:
                write.status = 0
            write.outcome = classify(write.status)
            write.t_s = self.clock()
            with self._lock:
                self.history.append(write)
            # Back off after a failure, as a real client would (and so a down server is not spun on).
            self._stop.wait(self.pause_s if write.outcome == "ack" else 1.0)

    def start(self) -> None:
        for n in range(self.writers):
            thread = threading.Thread(target=self._writer, args=(n,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def _listed(client: VigilClient, kind: Kind, subject: Subject | None) -> list[tuple[str, dict[str, Any]]]:
    """(name, item) of what a tenant holds of a kind; jobs (nameless) by id, only those on the tenant's subject."""
    if kind in RESOURCE_KINDS:
        collection = client.datasets if kind == "dataset" else client.detectors
        return [(item.name, item.to_dict()) for item in collection.iter_all(page_size=100)]
    if subject is None:
        return []
    return [
        (job.id, job.to_dict())
        for job in client.jobs.iter_all(page_size=100)
        if job.subject_id == subject.detector_id and job.kind == JOB_KIND[kind] and job.id != subject.setup_job_id
    ]


def _retry(client: VigilClient, write: Write, subject: Subject | None, *, for_s: float) -> httpx.Response:
    """The write again with its key, as a client would retry it: while the answer says "not yet" (409: the key is
    still claimed by a request that was cut off; 503; 429) it waits `Retry-After` and tries again, for `for_s`."""
    deadline = time.monotonic() + for_s
    while True:
        response = send_write(client, write, subject)
        if response.status_code not in (409, 429, 503) or time.monotonic() >= deadline:
            return response
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        time.sleep(min(max(wait, 0.2), 5.0, max(0.0, deadline - time.monotonic())))


def check(
    history: list[Write],
    clients: dict[str, VigilClient],
    *,
    subjects: dict[str, Subject] | None = None,
    retry: bool = True,
    retry_for_s: float = 30.0,
    jobs_end_s: float = 120.0,
) -> Verdict:
    """Reads everything back and judges the history (retrying each unknown write with its key if `retry`), then
    waits up to `jobs_end_s` for every job the writes made to end."""
    subjects = subjects or {}
    verdict = Verdict(requests=len(history))
    kinds = (*RESOURCE_KINDS, *JOB_KINDS)
    listed = {
        (tenant, kind): _listed(client, kind, subjects.get(tenant))
        for tenant, client in clients.items()
        for kind in kinds
    }
    owner = {w.name: w.tenant for w in history}
    for (tenant, kind), items in listed.items():
        for name, _item in items:
            if kind in RESOURCE_KINDS and owner.get(name, tenant) != tenant:
                verdict.leaked.append(f"{name} of tenant {owner[name]} in tenant {tenant}")
    accounted: dict[str, str] = {}  # the jobs some write was answered with -> their tenant
    for write in history:
        _judge(write, listed, clients, subjects, verdict, accounted, retry=retry, retry_for_s=retry_for_s)
    for (tenant, kind), items in listed.items():
        if kind in JOB_KINDS:
            # Listed before the retries: a job nobody was answered with is a write applied twice (or one refused).
            extra = [job_id for job_id, _ in items if job_id not in accounted]
            verdict.duplicated += [
                f"{kind} job {job_id} of tenant {tenant}: no write accounts for it" for job_id in extra
            ]
    _wait_jobs_ended(verdict, clients, accounted, within_s=jobs_end_s)
    return verdict


def _judge(
    write: Write,
    listed: dict[tuple[str, Kind], list[tuple[str, dict[str, Any]]]],
    clients: dict[str, VigilClient],
    subjects: dict[str, Subject],
    verdict: Verdict,
    accounted: dict[str, str],
    *,
    retry: bool,
    retry_for_s: float,
) -> None:
    is_job = write.kind in JOB_KINDS
    items = listed[(write.tenant, write.kind)]
    found = [item for name, item in items if name == (write.acked_id if is_job else write.name)]
    label = f"{write.kind} {write.name} ({write.outcome}, {write.status})"
    if write.outcome == "ack":
        verdict.acknowledged += 1
        if is_job and write.acked_id is not None:
            accounted[write.acked_id] = write.tenant
        if not found:
            verdict.lost.append(label)
        elif len(found) > 1:
            verdict.duplicated.append(label)
        elif found[0]["id"] != write.acked_id:
            verdict.wrong.append(f"{label}: acknowledged as {write.acked_id}, stored as {found[0]['id']}")
        elif write.kind == "dataset" and found[0].get("rows") != ROWS:
            verdict.wrong.append(f"{label}: {found[0].get('rows')} rows, not {ROWS}")
        return
    if write.outcome == "refused":
        verdict.refused += 1
        if found and not is_job:
            verdict.wrong.append(f"{label}: refused but stored")
        return
    verdict.unknown += 1
    if len(found) > 1:
        verdict.duplicated.append(label)
        return
    if not retry:
        return
    response = _retry(clients[write.tenant], write, subjects.get(write.tenant), for_s=retry_for_s)
    if not 200 <= response.status_code < 300:
        verdict.unfinishable.append(f"{label}: the retry answered {response.status_code}")
        return
    verdict.completed_by_retry += 1
    verdict.replayed += response.headers.get("idempotent-replayed") == "true"
    answered = response.json()["id"]
    if is_job:
        accounted[answered] = write.tenant
    elif found and answered != found[0]["id"]:
        # Applied before the answer was lost, then applied again by the retry (which took over the claim).
        verdict.duplicated.append(f"{label}: applied before the crash, applied again by the retry")


def _wait_jobs_ended(
    verdict: Verdict, clients: dict[str, VigilClient], jobs: dict[str, str], *, within_s: float
) -> None:
    """Until every job in `jobs` (id -> tenant) has ended, or `within_s`: each tenant's job list read whole, a page
    of 500 at a time (one request per job would spend the caller's rate limit on a long run's thousands)."""
    started = time.monotonic()
    deadline = started + within_s
    verdict.jobs = len(jobs)
    seen: dict[str, dict[str, Any]] = {}
    for tenant, client in clients.items():
        mine = {job_id for job_id, owner in jobs.items() if owner == tenant}
        while mine:
            listed = {job.id: job.to_dict() for job in client.jobs.iter_all(page_size=500) if job.id in mine}
            seen.update(listed)
            if all(listed.get(job_id, {}).get("status") in ENDED for job_id in mine) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    for job_id in sorted(jobs):
        job = seen.get(job_id, {"kind": "?", "status": "missing"})
        if job["status"] not in ENDED:
            verdict.unended.append(f"job {job_id} ({job['kind']}) still {job['status']}")
        elif str((job.get("error") or {}).get("type", "")).endswith("/job-interrupted"):
            # Running at a SIGKILL on each of its attempts: given up by the guard against a job that kills its
            # process (which cannot tell a kill from outside from one it caused). It ended, and says why.
            verdict.interrupted_jobs.append(f"job {job_id} ({job['kind']}): {job['error'].get('detail')}")
        elif job["status"] != "succeeded":
            verdict.failed_jobs.append(f"job {job_id} ({job['kind']}) {job['status']}: {job.get('error')}")
    verdict.jobs_end_s = time.monotonic() - started
