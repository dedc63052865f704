"""`VigilClient.jobs`: read, list and cancel jobs, follow one as it runs (server-sent events), wait for it to end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from vigil.client.errors import JobTimeout, VigilAPIError, VigilConnectionError
from vigil.client.models import Job, Page
from vigil.client.progress import JobBar
from vigil.client.resources import API, Collection
from vigil.client.types import FINAL_JOB_STATES

# The longest a single long-poll asks the server to hold a job request (the server's own bound is 60 s).
LONG_POLL_S = 30.0
# The longest one stream of a job's updates is asked to stay open (the server's own bound is 120 s): past it the
# SDK reconnects, so no connection outlives a proxy's patience.
FOLLOW_S = 120.0


class Jobs(Collection[Job]):
    path = "jobs"
    model = Job

    def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> Page[Job]:
        return self._page(
            self._client.call(
                "GET", f"{API}/jobs", params={"limit": limit, "cursor": cursor, "status": status, "kind": kind}
            )
        )

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self._client.call("POST", f"{API}/jobs/{job_id}/cancel"))

    def get(self, item_id: str, *, wait: float | None = None) -> Job:
        """The job; with `wait`, the server answers as soon as it ends or after that many seconds (at most 60)."""
        return Job.model_validate(self._client.call("GET", f"{API}/jobs/{item_id}", params={"wait": wait}))

    def follow(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """The job's states as they happen (`GET /jobs/{id}/events`, server-sent events): now, then at each change
        of status, progress or stage, until it has ended (the last one yielded) or `timeout` seconds have passed.

        >>> for job in vigil.jobs.follow(job_id):  # doctest: +SKIP
        ...     print(job.stage, job.progress, job.eta_s)
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        lost = 0
        while True:
            # Rounded as sent (the server refuses a bound of 0): what rounds to nothing is a timeout already.
            hold = round(FOLLOW_S if deadline is None else min(FOLLOW_S, deadline - time.monotonic()), 3)
            if hold <= 0:
                return
            try:
                with self._client.open_stream(f"{API}/jobs/{job_id}/events", params={"timeout": hold}) as response:
                    for event, data in sse_events(response.iter_lines()):
                        if event == "job":
                            job = Job.model_validate_json(data)
                            lost = 0
                            yield job
                            if job.done:
                                return
            except VigilConnectionError:
                # The stream was cut (a restart, a proxy): follow on from a new one, as EventSource would.
                wait = self._client.retry.wait_s(lost)
                if wait is None:
                    raise
                lost += 1
                time.sleep(wait)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = 3600.0,
        progress: bool | Callable[[Job], None] = False,
        poll: float | None = None,
    ) -> Job:
        """Waits until the job succeeded, failed or was cancelled and returns it (whatever the outcome); raises
        `JobTimeout` if it is still queued or running after `timeout` seconds (None: no limit).

        Without `progress`, each request is a long-poll the server holds until the job ends. With it, the client
        follows the job's stream of updates (`follow`), so a Rich progress bar (`True`) or the caller's function
        (given each state of the job) moves as the job does. `poll` is accepted for compatibility and ignored."""
        del poll
        deadline = None if timeout is None else time.monotonic() + timeout
        report: Callable[[Job], None] | None = None
        bar = None
        if progress is True:
            bar = JobBar(job_id)
            report = bar.update
        elif callable(progress):
            report = progress
        try:
            if report is not None:
                followed = self._follow_reporting(job_id, timeout, report)
                if followed is not None:
                    if followed.done:
                        return followed
                    raise JobTimeout(followed, timeout or 0.0)
            while True:
                left = LONG_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
                hold = min(left, 1.0 if report is not None else LONG_POLL_S)
                job = self.get(job_id, wait=round(hold, 3) or None)
                if report is not None:
                    report(job)
                if job.status in FINAL_JOB_STATES:
                    return job
                if deadline is not None and time.monotonic() >= deadline:
                    raise JobTimeout(job, timeout or 0.0)
        finally:
            if bar is not None:
                bar.close()

    def _follow_reporting(self, job_id: str, timeout: float | None, report: Callable[[Job], None]) -> Job | None:
        """The job's last state, reported all along the way; None when the server has no stream of updates (an
        older one): the caller then polls."""
        last = None
        try:
            for job in self.follow(job_id, timeout=timeout):
                report(job)
                last = job
        except VigilAPIError as exc:
            if exc.status not in (404, 405) or last is not None:
                raise
            self.get(job_id)  # an unknown job is a 404 here too; a known one means the route is what is missing
            return None
        if last is None:  # the timeout passed before the first event
            last = self.get(job_id)
            report(last)
        return last


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) of each server-sent event in a text stream's lines (comments and `retry:` skipped)."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)
