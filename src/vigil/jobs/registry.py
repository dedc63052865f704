"""Job kinds: domains register a handler per kind — with its failure hook, time limits, attempts and, for big
batch work, how it splits into partitions — so the job machinery knows no domain."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import JobTimeLimit, VigilError, problem_type_uri
from vigil.jobs.models import Job


class JobCancelled(Exception):
    """Raised inside a handler when its job was cancelled (or ended elsewhere); the executor stops the work."""


class SoftTimeLimit(Exception):
    """Raised in a handler (through its progress reports) once its kind's soft time limit has passed."""


def problem_of(exc: BaseException) -> dict[str, Any]:
    """A job's error, shaped like the problem document the API would have returned."""
    if isinstance(exc, VigilError):
        return {
            "type": problem_type_uri(exc.slug),
            "title": exc.title,
            "status": exc.status,
            "detail": exc.detail,
            **exc.extra,
        }
    return {
        "type": problem_type_uri("internal"),
        "title": "Internal server error",
        "status": 500,
        "detail": f"The job failed unexpectedly ({type(exc).__name__}).",
    }


def time_limit_problem(limit_s: float | None, *, hard: bool) -> dict[str, Any]:
    which = "hard" if hard else "soft"
    stopped = "its process was killed" if hard else "it was stopped"
    return problem_of(
        JobTimeLimit(
            f"The job ran past its {which} time limit of {limit_s:g} s and {stopped}."
            if limit_s
            else f"The job ran past its {which} time limit and {stopped}.",
            limit_s=limit_s,
            limit=which,
        )
    )


@dataclass(frozen=True)
class Claimed:
    """A claimed job, as its executor needs it."""

    id: str
    kind: str
    tenant_id: str
    payload: dict[str, Any]
    attempt: int
    wait_s: float


@dataclass(frozen=True)
class RunReport:
    """How one run ended (for metrics): kind, status, queue wait and the handler's own time."""

    job_id: str
    kind: str
    status: str
    wait_s: float
    run_s: float
    recorded: bool


@dataclass
class JobOutcome:
    """What a handler returns: the job's result, the writes that must commit together with its success, and what
    to undo if the success cannot be recorded (the job was cancelled meanwhile): e.g. delete a written artifact."""

    result: dict[str, Any]
    apply: Callable[[Session], None] | None = None
    discard: Callable[[], None] | None = None


class JobContext:
    """What a running handler sees: its payload and tenant, the app's plumbing, and a progress reporter."""

    def __init__(
        self,
        *,
        job_id: str,
        scope: TenantScope,
        payload: dict[str, Any],
        app: AppContext,
        report: Callable[[float, str | None], None],
        attempt: int = 1,
    ) -> None:
        self.job_id = job_id
        self.scope = scope
        self.payload = payload
        self.app = app
        self.attempt = attempt
        self._report = report

    def progress(self, percent: float, stage: str | None = None) -> None:
        """Reports progress (0–100) and, when it changes, the stage the job is in (a short label a user reads:
        "fitting", "scoring"); raises `JobCancelled` if the job was cancelled meanwhile."""
        self._report(max(0.0, min(100.0, percent)), stage[:64] if stage else None)

    def scratch_key(self, name: str) -> str:
        """A blob key for this attempt's intermediate files (partitions' outputs), removed when the job ends."""
        return self.app.blobs.key(self.scope, "jobs", self.job_id, f"a{self.attempt}", name)

    def store_part_summary(self, index: int, summary: dict[str, Any]) -> None:
        """A partition's small JSON summary, kept for the merge (in the attempt's scratch space)."""
        self.app.blobs.put_bytes(self.scratch_key(f"part-{index:05d}.json"), json.dumps(summary).encode())

    def part_summaries(self, total: int) -> list[dict[str, Any]]:
        return [json.loads(self.app.blobs.get_bytes(self.scratch_key(f"part-{i:05d}.json"))) for i in range(total)]

    def scaled(self, low: float, high: float) -> JobContext:
        """The same job, whose 0–100 progress maps onto [low, high] of the job's (a part of a bigger whole)."""
        return JobContext(
            job_id=self.job_id,
            scope=self.scope,
            payload=self.payload,
            app=self.app,
            report=lambda p, stage: self._report(low + (high - low) * max(0.0, min(100.0, p)) / 100.0, stage),
            attempt=self.attempt,
        )


Handler = Callable[[JobContext], JobOutcome]
# Called in the transaction that marks a job failed or cancelled, so the domain's state never stays "in progress".
FailureHook = Callable[[Session, Job, str, dict[str, Any]], None]


@dataclass(frozen=True)
class JobLimits:
    """How long one attempt may run and how often a job is tried.

    `soft_time_limit_s` ends the job as failed with a clear problem (the handler is interrupted where it can be);
    `time_limit_s` is the hard limit: the process running it is killed (Celery) or the job is abandoned (threads).
    `max_attempts` counts attempts that were *interrupted* (a lost worker, an expired lease): a handler that
    raises fails at once, since running it again would raise again."""

    soft_time_limit_s: float | None = None
    time_limit_s: float | None = None
    max_attempts: int = 3

    def __post_init__(self) -> None:
        soft, hard = self.soft_time_limit_s, self.time_limit_s
        if soft is not None and hard is not None and soft > hard:
            raise ValueError("the soft time limit must not exceed the hard one")
        if self.max_attempts < 1:
            raise ValueError("a job needs at least one attempt")


@dataclass(frozen=True)
class Partitioning:
    """Big batch work that fans out: `split` returns one spec per part (JSON), `run_part` does one part and
    returns a small JSON summary (its data goes to the blob store), `merge` joins the summaries into the job's
    outcome. One part, or an executor without a broker, runs the same three steps in one process — so the result
    cannot depend on how it was spread."""

    split: Callable[[JobContext], list[dict[str, Any]]]
    run_part: Callable[[JobContext, int, dict[str, Any]], dict[str, Any]]
    merge: Callable[[JobContext, list[dict[str, Any]]], JobOutcome]
    part_limits: JobLimits = field(default_factory=JobLimits)


@dataclass
class JobKind:
    name: str
    run: Handler
    on_unsuccessful: FailureHook | None = None
    limits: JobLimits = field(default_factory=JobLimits)
    partitioning: Partitioning | None = None


@dataclass
class JobRegistry:
    kinds: dict[str, JobKind] = field(default_factory=dict)

    def register(
        self,
        name: str,
        run: Handler,
        *,
        on_unsuccessful: FailureHook | None = None,
        limits: JobLimits | None = None,
        partitioning: Partitioning | None = None,
    ) -> None:
        if name in self.kinds:
            raise ValueError(f"job kind {name!r} is already registered")
        self.kinds[name] = JobKind(
            name=name,
            run=run,
            on_unsuccessful=on_unsuccessful,
            limits=limits or JobLimits(),
            partitioning=partitioning,
        )

    def get(self, name: str) -> JobKind | None:
        return self.kinds.get(name)

    def with_limits(self, overrides: Mapping[str, tuple[float, float]]) -> JobRegistry:
        """A copy whose kinds take the operator's time limits (`VIGIL_JOB_TIME_LIMITS`: kind → [soft, hard])."""
        unknown = sorted(set(overrides) - set(self.kinds))
        if unknown:
            raise ValueError(f"time limits for unknown job kind(s): {', '.join(unknown)}")
        kinds = {}
        for name, kind in self.kinds.items():
            if name in overrides:
                soft, hard = overrides[name]
                kinds[name] = replace(kind, limits=replace(kind.limits, soft_time_limit_s=soft, time_limit_s=hard))
            else:
                kinds[name] = kind
        return JobRegistry(kinds=kinds)

    def on_unsuccessful(self, session: Session, job: Job, status: str, error: dict[str, Any]) -> None:
        """Runs the kind's failure hook (in the caller's transaction): every unsuccessful end goes through here."""
        kind = self.kinds.get(job.kind)
        if kind is not None and kind.on_unsuccessful is not None:
            kind.on_unsuccessful(session, job, status, error)


def run_whole(kind: JobKind, ctx: JobContext) -> JobOutcome:
    """The handler, or a partitioned kind's split → parts → merge, all in this process."""
    plan = kind.partitioning
    if plan is None:
        return kind.run(ctx)
    parts = plan.split(ctx)
    summaries = []
    for index, spec in enumerate(parts):
        share = 90.0 / max(1, len(parts))
        summaries.append(plan.run_part(ctx.scaled(5 + index * share, 5 + (index + 1) * share), index, spec))
    return plan.merge(ctx.scaled(95, 100), summaries)


def forget_scratch(app: AppContext, tenant_id: str, job_id: str) -> None:
    """Removes a job's scratch space (its partitions' outputs), every attempt's, once the job has ended."""
    app.blobs.delete_prefix(app.blobs.key(TenantScope(tenant_id), "jobs", job_id), best_effort=True)
