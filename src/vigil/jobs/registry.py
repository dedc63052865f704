"""Job kinds: domains register a handler per kind, so the job machinery knows no domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.jobs.models import Job


class JobCancelled(Exception):
    """Raised inside a handler when its job was cancelled; the runner records the cancellation."""


@dataclass
class JobOutcome:
    """What a handler returns: the job's result, and the writes that must commit together with its success."""

    result: dict[str, Any]
    apply: Callable[[Session], None] | None = None


class JobContext:
    """What a running handler sees: its payload and tenant, the app's plumbing, and a progress reporter."""

    def __init__(
        self,
        *,
        job_id: str,
        scope: TenantScope,
        payload: dict[str, Any],
        app: AppContext,
        report: Callable[[float], None],
    ) -> None:
        self.job_id = job_id
        self.scope = scope
        self.payload = payload
        self.app = app
        self._report = report

    def progress(self, percent: float) -> None:
        """Reports progress (0–100); raises `JobCancelled` if the job was cancelled meanwhile."""
        self._report(max(0.0, min(100.0, percent)))


Handler = Callable[[JobContext], JobOutcome]
# Called in the transaction that marks a job failed or cancelled, so the domain's state never stays "in progress".
FailureHook = Callable[[Session, Job, str, dict[str, Any]], None]


@dataclass
class JobKind:
    name: str
    run: Handler
    on_unsuccessful: FailureHook | None = None


@dataclass
class JobRegistry:
    kinds: dict[str, JobKind] = field(default_factory=dict)

    def register(self, name: str, run: Handler, *, on_unsuccessful: FailureHook | None = None) -> None:
        if name in self.kinds:
            raise ValueError(f"job kind {name!r} is already registered")
        self.kinds[name] = JobKind(name=name, run=run, on_unsuccessful=on_unsuccessful)

    def get(self, name: str) -> JobKind | None:
        return self.kinds.get(name)
