"""Report use cases: profile, assess the quality of, and analyse a dataset — inline for small data, as a job for
large data — and keep every version for reading back as JSON or HTML.

Feature relevance by a trained detector needs the detectors domain, which sits above this one. Rather than
reaching up, this module declares the port it needs (`ScorerProvider`: detector id → an engine `Scorer`) and
the app wires the detectors' implementation in (`vigil.app`), for the router and for the job handler alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import polars as pl
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil import analysis
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import Conflict, InvalidInput, NotFound
from vigil.core.ids import new_id
from vigil.datasets.models import Dataset, DatasetReport
from vigil.datasets.repository import ReportRepository
from vigil.datasets.schemas import (
    AnalysisRequest,
    ProfileRequest,
    QualityRequest,
    ReportKind,
    ReportPublic,
    ReportVersionPublic,
)
from vigil.datasets.service import DatasetService
from vigil.jobs.schemas import JobPublic
from vigil.jobs.service import JobService

REPORT_JOB = "dataset.report"
ReportRequest = ProfileRequest | QualityRequest | AnalysisRequest
Progress = Callable[[float], None]


class ScorerProvider(Protocol):
    """Turns a detector (and model version) of the tenant into a scorer; raises the domain's `VigilError`s."""

    def __call__(
        self, *, session: Session, scope: TenantScope, app: AppContext, detector_id: str, version: int | None
    ) -> analysis.Scorer: ...


def engine_problem(exc: analysis.AnalysisError) -> InvalidInput:
    return InvalidInput(str(exc), errors=[{**e, "loc": ["body", *e.get("loc", [])]} for e in exc.errors])


def request_model(kind: str, parameters: dict[str, Any]) -> ReportRequest:
    if kind == "profile":
        return ProfileRequest.model_validate(parameters)
    if kind == "quality":
        return QualityRequest.model_validate(parameters)
    return AnalysisRequest.model_validate(parameters)


def compute(
    kind: str,
    frame: pl.LazyFrame,
    request: ReportRequest,
    *,
    scorer: analysis.Scorer | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Runs the engine for one report; `AnalysisError`s become 422 problems."""
    try:
        if isinstance(request, ProfileRequest):
            options = analysis.ProfileOptions(
                columns=request.columns,
                top_values=request.top_values,
                bins=request.bins,
                correlation_sample_rows=request.correlation_sample_rows,
                correlation_max_columns=request.correlation_max_columns,
                label=request.label_column,
            )
            return analysis.profile(frame, options=options, progress=progress)
        if isinstance(request, QualityRequest):
            raw = {c: e.model_dump(exclude_defaults=True) for c, e in request.expectations.items()}
            quality = analysis.QualityOptions(
                columns=request.columns,
                expectations=analysis.parse_expectations(raw),
                outlier_z=request.outlier_z,
                samples=request.samples,
                label=request.label_column,
            )
            return analysis.assess(frame, options=quality, progress=progress)
        options_ = analysis.AnalysisOptions(
            columns=request.columns,
            families=request.families,
            fit_sample=request.fit_sample,
            seed=request.seed,
            target=request.target or request.label_column,
            relevance_rows=request.relevance_rows,
            permutation_repeats=request.permutation_repeats,
            correlation_sample_rows=request.correlation_sample_rows,
            correlation_max_columns=request.correlation_max_columns,
        )
        body = analysis.analyse(frame, options=options_, scorer=scorer, progress=progress)
        if scorer is not None and request.detector_id is not None:
            body["relevance"]["detector_id"] = request.detector_id
        return body
    except analysis.AnalysisError as exc:
        raise engine_problem(exc) from exc
    except pl.exceptions.ColumnNotFoundError as exc:  # a scorer's features missing from this dataset
        raise InvalidInput("The detector's features are not all columns of this dataset.") from exc


class ReportService:
    def __init__(
        self, *, session: Session, scope: TenantScope, app: AppContext, scorers: ScorerProvider | None = None
    ) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.scorers = scorers
        self.reports = ReportRepository(session=session, scope=scope)
        self.datasets = DatasetService(session=session, scope=scope, app=app)
        self.jobs = JobService(session=session, scope=scope, app=app)

    def frame_of(self, dataset: Dataset) -> pl.LazyFrame:
        return pl.scan_parquet(self.app.blobs.local_path(dataset.blob_key))

    # -- making reports --------------------------------------------------------------------------------------
    def create(
        self, *, dataset_id: str, kind: ReportKind, request: ReportRequest, created_by: str | None
    ) -> ReportPublic | JobPublic:
        """A new version of the report: made now (small data) or by a job (more rows than the inline limit)."""
        dataset = self.datasets.stored(dataset_id=dataset_id)
        frame = self.frame_of(dataset)
        self._check_columns(frame, request)
        scorer = self.scorer(request)  # refuses an unknown or untrained detector before any work
        parameters = request.model_dump(mode="json", exclude_defaults=True)
        report = DatasetReport(
            id=new_id("rep"),
            tenant_id=self.scope.tenant_id,
            dataset_id=dataset.id,
            kind=kind,
            version=self.reports.next_version(dataset_id=dataset.id, kind=kind),
            status="pending",
            parameters=parameters,
            dataset_rows=dataset.n_rows,
            created_by=created_by,
        )
        if dataset.n_rows > self.app.settings.report_inline_max_rows:
            job = self.jobs.enqueue(
                kind=REPORT_JOB,
                subject_id=dataset.id,
                created_by=created_by,
                payload={"report_id": report.id, "dataset_id": dataset.id, "kind": kind, "parameters": parameters},
            )
            report.job_id = job.id
            self._add(report)
            self.jobs.wake_workers()
            return JobPublic.model_validate(job)
        body = compute(kind, frame, request, scorer=scorer)
        report.status, report.body, report.finished_at = "ready", body, utcnow()
        self._add(report)
        return ReportPublic.model_validate(report)

    def scorer(self, request: ReportRequest) -> analysis.Scorer | None:
        if not isinstance(request, AnalysisRequest) or request.detector_id is None:
            return None
        if self.scorers is None:
            raise InvalidInput("Feature relevance by a detector is not available in this deployment.")
        return self.scorers(
            session=self.session,
            scope=self.scope,
            app=self.app,
            detector_id=request.detector_id,
            version=request.detector_version,
        )

    def _check_columns(self, frame: pl.LazyFrame, request: ReportRequest) -> None:
        """Unknown columns are refused at once (422), not discovered by a job later."""
        names = set(frame.collect_schema().names())
        wanted: list[tuple[str, str]] = [("columns", c) for c in request.columns or []]
        if isinstance(request, QualityRequest):
            wanted += [("expectations", c) for c in request.expectations]
        if isinstance(request, AnalysisRequest) and request.target is not None:
            wanted.append(("target", request.target))
        if request.label_column is not None:
            wanted.append(("label_column", request.label_column))
        unknown = [(field, c) for field, c in wanted if c not in names]
        if unknown:
            raise InvalidInput(
                f"The dataset has no column(s) {', '.join(repr(c) for _, c in unknown[:10])}.",
                errors=[
                    {"loc": ["body", field, c], "msg": "no such column in the dataset"} for field, c in unknown[:50]
                ],
            )

    def _add(self, report: DatasetReport) -> None:
        try:
            self.reports.add(report)
            self.session.commit()
        except IntegrityError as exc:  # another request took this version number at the same moment
            self.session.rollback()
            raise Conflict("Another report of this dataset was being made at the same time; retry.") from exc

    # -- reading reports -------------------------------------------------------------------------------------
    def get(self, *, dataset_id: str, kind: ReportKind, version: int | None) -> ReportPublic:
        return ReportPublic.model_validate(self._report(dataset_id, kind, version))

    def versions(self, *, dataset_id: str, kind: ReportKind) -> list[ReportVersionPublic]:
        self.datasets.stored(dataset_id=dataset_id)
        rows = self.reports.versions(dataset_id=dataset_id, kind=kind)
        return [ReportVersionPublic.model_validate(r) for r in rows]

    def html(self, *, dataset_id: str, kind: ReportKind, version: int | None) -> str:
        report = self._report(dataset_id, kind, version)
        if report.status != "ready" or report.body is None:
            raise NotFound(f"ready {kind} report", f"{dataset_id}@{report.version}")
        dataset = self.datasets.stored(dataset_id=dataset_id)
        title = f"{kind.capitalize()} of {dataset.name} (v{report.version})"
        render = {
            "profile": analysis.render_profile,
            "quality": analysis.render_quality,
            "analysis": analysis.render_analysis,
        }[kind]
        return render(report.body, title=title)

    def _report(self, dataset_id: str, kind: ReportKind, version: int | None) -> DatasetReport:
        self.datasets.stored(dataset_id=dataset_id)  # 404 for an unknown (or another tenant's) dataset
        if version is None:
            report = self.reports.latest(dataset_id=dataset_id, kind=kind)
        else:
            report = self.reports.version(dataset_id=dataset_id, kind=kind, version=version)
        if report is None:
            label = f"{dataset_id}@{version}" if version is not None else dataset_id
            raise NotFound(f"{kind} report", label)
        return report

    # -- used by the job handler -----------------------------------------------------------------------------
    def finish(self, *, report_id: str, body: dict[str, Any]) -> None:
        report = self.reports.get(report_id)
        if report is not None:
            report.status, report.body, report.finished_at = "ready", body, utcnow()


def mark_report_unsuccessful(
    *, session: Session, scope: TenantScope, report_id: str, status: str, error: dict[str, Any]
) -> None:
    """A report whose job failed or was cancelled must not stay `pending` forever."""
    report = ReportRepository(session=session, scope=scope).get(report_id)
    if report is not None and report.status == "pending":
        report.status, report.error, report.finished_at = "failed", {"job_status": status, **error}, utcnow()
