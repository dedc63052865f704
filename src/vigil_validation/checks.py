"""Assertions and measures the suites share: the RFC 9457 problem contract, ROC-AUC, job polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
import numpy as np

from vigil.client import VigilClient
from vigil.client.models import Job

T = TypeVar("T")
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_MEMBERS = ("type", "title", "status", "detail", "request_id")
# What a leaked stack trace or internal error looks like in a response body.
LEAK_MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.", "psycopg.", "Exception:")


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with `status`: media type, members, a request id, no stack trace."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    media = response.headers.get("content-type", "").split(";", maxsplit=1)[0].strip()
    assert media == PROBLEM_MEDIA_TYPE, f"content-type {media!r} is not {PROBLEM_MEDIA_TYPE}: {response.text[:300]}"
    body = response.json()
    assert isinstance(body, dict), body
    missing = [m for m in PROBLEM_MEMBERS if not body.get(m)]
    assert not missing, f"problem document lacks {missing}: {body}"
    assert body["status"] == status, body
    assert isinstance(body["type"], str), body
    assert isinstance(body["request_id"], str), body
    if slug is not None:
        assert body["type"].rstrip("/").endswith(f"/{slug}"), f"type {body['type']!r} is not {slug!r}"
    header_id = response.headers.get("x-request-id")
    if header_id is not None:
        assert body["request_id"] == header_id, (body["request_id"], header_id)
    leaks = [marker for marker in LEAK_MARKERS if marker in response.text]
    assert not leaks, f"the response leaks internals ({leaks}): {response.text[:500]}"
    return body


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties counted half): the chance a positive outscores a negative."""
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    positives, negatives = s[y == 1], s[y == 0]
    if not len(positives) or not len(negatives):
        raise ValueError("ROC-AUC needs both classes")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=float)
    sorted_scores = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = ranks[y == 1].sum()
    u = rank_sum - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def watch_job(client: VigilClient, job_id: str, *, timeout: float, poll: float) -> tuple[Job, list[str], list[float]]:
    """Polls a job to a final state, returning it with every status and progress value seen on the way."""
    statuses: list[str] = []
    progress: list[float] = []
    deadline = time.monotonic() + timeout
    while True:
        job = client.jobs.get(job_id)
        if not statuses or statuses[-1] != job["status"]:
            statuses.append(job["status"])
        progress.append(float(job["progress"]))
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job, statuses, progress
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout:g}s"
        time.sleep(poll)


def staleness_bound_s(url: str) -> float:
    """How long a change may take to hold on every API process of the target (its `/health` says: the credential
    and lookup caches' lifetime); 0 for a server that does not say, which must then hold at once."""
    body = httpx.get(f"{url}/health", timeout=30).json()
    return float(body.get("staleness_bound_s", 0.0))


def eventually(probe: Callable[[], T], holds: Callable[[T], bool], *, within_s: float, poll_s: float = 0.1) -> T:
    """`probe()` again until `holds` says yes or `within_s` (the target's staleness bound) has passed since the
    call; returns the last result. The last try starts after the bound, so what it shows is what the target
    promises: a check on it fails if the change still does not hold."""
    deadline = time.monotonic() + within_s
    while True:
        result = probe()
        if holds(result) or time.monotonic() > deadline:
            return result
        time.sleep(poll_s)
