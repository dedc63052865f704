"""The datasets' job handler: making a profile, quality or analysis report of a large dataset."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from vigil import analysis
from vigil.core.database import TenantScope
from vigil.datasets.reports import (
    REPORT_JOB,
    ReportService,
    ScorerProvider,
    compute,
    mark_report_unsuccessful,
    request_model,
)
from vigil.jobs.models import Job
from vigil.jobs.registry import JobContext, JobOutcome, JobRegistry


def register(registry: JobRegistry, *, scorers: ScorerProvider | None = None) -> None:
    """Registers the report job; `scorers` lets an analysis use a detector (wired by the app)."""

    def run(ctx: JobContext) -> JobOutcome:
        return make_report(ctx, scorers)

    registry.register(REPORT_JOB, run, on_unsuccessful=_report_unsuccessful)


def make_report(ctx: JobContext, scorers: ScorerProvider | None) -> JobOutcome:
    payload = ctx.payload
    request = request_model(payload["kind"], payload["parameters"])
    scorer: analysis.Scorer | None = None
    with ctx.app.database.session() as session:
        service = ReportService(session=session, scope=ctx.scope, app=ctx.app, scorers=scorers)
        frame = service.frame_of(service.datasets.stored(dataset_id=payload["dataset_id"]))
        scorer = service.scorer(request)
    ctx.progress(5, f"computing the {payload['kind']} report")
    body = compute(payload["kind"], frame, request, scorer=scorer, progress=lambda p: ctx.progress(5 + 0.9 * p))
    result: dict[str, Any] = {
        "report_id": payload["report_id"],
        "dataset_id": payload["dataset_id"],
        "kind": payload["kind"],
    }

    def store(session: Session) -> None:
        service = ReportService(session=session, scope=ctx.scope, app=ctx.app)
        service.finish(report_id=payload["report_id"], body=body)
        report = service.reports.get(payload["report_id"])
        result["version"] = report.version if report is not None else None

    return JobOutcome(result=result, apply=store)


def _report_unsuccessful(session: Session, job: Job, status: str, error: dict[str, Any]) -> None:
    mark_report_unsuccessful(
        session=session,
        scope=TenantScope(job.tenant_id),
        report_id=job.payload["report_id"],
        status=status,
        error=error,
    )
