"""Job routes: read, list and cancel the caller's jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from vigil.core.pagination import Page
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic, JobStatus
from vigil.jobs.service import JobService
from vigil.web.deps import ContextDep, SessionDep

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", summary="List jobs, newest first")
def list_jobs(
    principal: Annotated[Principal, require(Permission.JOBS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[JobPublic]:
    items, next_cursor = JobService(session=session, scope=principal.scope, app=app).list(
        limit=limit, cursor=cursor, status=status, kind=kind
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{job_id}", summary="A job's status, progress, result or error")
def get_job(
    job_id: str,
    principal: Annotated[Principal, require(Permission.JOBS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> JobPublic:
    return JobService(session=session, scope=principal.scope, app=app).get(job_id=job_id)


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(
    job_id: str,
    principal: Annotated[Principal, require(Permission.JOBS_MANAGE)],
    session: SessionDep,
    app: ContextDep,
) -> JobPublic:
    return JobService(session=session, scope=principal.scope, app=app).cancel(job_id=job_id)
