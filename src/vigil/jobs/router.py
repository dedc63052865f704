"""Job routes: read, list and cancel the caller's jobs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Query
from fastapi.responses import StreamingResponse

from vigil.core.pagination import Page
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic, JobStatus
from vigil.jobs.service import MAX_FOLLOW_S, MAX_WAIT_S, JobService, follow_job, wait_for_job
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import quick_read
from vigil.web.idempotency_applied import replay_from
from vigil.web.paging import Cursor, Limit
from vigil.web.routing import IndexedRouter

router = IndexedRouter(prefix="/jobs", tags=["jobs"])


@router.get("", summary="List jobs, newest first")
@quick_read
def list_jobs(
    principal: Annotated[Principal, require(Permission.JOBS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[JobPublic]:
    items, next_cursor = JobService(session=session, scope=principal.scope, app=app).list(
        limit=limit, cursor=cursor, status=status, kind=kind
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{job_id}",
    summary="A job's status, progress, stage and ETA, result or error — at once, or when it ends (`wait`)",
)
async def get_job(
    job_id: str,
    principal: Annotated[Principal, require(Permission.JOBS_READ)],
    session: SessionDep,
    app: ContextDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Long-poll: answer as soon as the job has ended, or after this many seconds with its state "
            "then (0: at once).",
        ),
    ] = 0,
) -> JobPublic:
    if session.in_transaction():
        # Authenticating may have begun a transaction: end it, so no connection is held while the request waits
        # (what is left uncommitted at the end of a request is rolled back anyway).
        await anyio.to_thread.run_sync(session.rollback)
    # Held at most to a second short of the request deadline: a long-poll past it was cut with a 503 (found by the
    # disaster-recovery suite, whose server has a 3 s deadline). Answering early with the job's state is allowed.
    wait = min(wait, max(0.0, app.settings.request_timeout_s - 1.0))
    return await wait_for_job(app=app, scope=principal.scope, job_id=job_id, wait_s=wait)


# A comment line this often keeps an idle stream open through proxies that close silent connections.
KEEPALIVE_S = 10.0
EVENT_STREAM = "text/event-stream"
_EVENTS_DOC = (
    "Server-sent events: `event: job` with the job (as `GET /jobs/{id}` answers it) at once and each time its "
    "status, progress or stage changes; a `: keep-alive` comment when nothing changed for 10 s; last, `event: end` "
    'with `{"reason": "finished"}` once the job has ended, or `{"reason": "timeout"}` after `timeout` seconds '
    "(reconnect to follow on). Unknown jobs and other tenants' jobs are a 404 problem, before any event."
)


@router.get(
    "/{job_id}/events",
    summary="Follow a job: a stream of its updates (server-sent events) until it ends",
    description=_EVENTS_DOC,
    response_class=StreamingResponse,
    responses={200: {"content": {EVENT_STREAM: {"schema": {"type": "string"}}}, "description": _EVENTS_DOC}},
)
async def job_events(
    job_id: str,
    principal: Annotated[Principal, require(Permission.JOBS_READ)],
    session: SessionDep,
    app: ContextDep,
    timeout: Annotated[
        float, Query(gt=0, le=MAX_FOLLOW_S, description="The longest the stream stays open, in seconds.")
    ] = MAX_FOLLOW_S,
) -> StreamingResponse:
    if session.in_transaction():
        await anyio.to_thread.run_sync(session.rollback)  # no connection held for the stream's life
    first = await wait_for_job(app=app, scope=principal.scope, job_id=job_id, wait_s=0)
    updates = follow_job(app=app, scope=principal.scope, first=first, max_s=timeout, idle_s=KEEPALIVE_S)
    return StreamingResponse(
        _event_stream(updates),
        media_type=EVENT_STREAM,
        # Not cached, not buffered by a proxy (nginx honours X-Accel-Buffering): each event is sent as it comes.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_stream(updates: AsyncIterator[JobPublic | None]) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    last: JobPublic | None = None
    sent = 0
    async for job in updates:
        if job is None:
            yield b": keep-alive\n\n"
            continue
        last, sent = job, sent + 1
        yield f"event: job\nid: {sent}\ndata: {job.model_dump_json()}\n\n".encode()
    reason = "finished" if last is not None and last.status in ("succeeded", "failed", "cancelled") else "timeout"
    yield f"event: end\ndata: {json.dumps({'reason': reason})}\n\n".encode()


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(
    job_id: str,
    principal: Annotated[Principal, require(Permission.JOBS_MANAGE)],
    session: SessionDep,
    app: ContextDep,
) -> JobPublic:
    replay_from(f"/api/v1/jobs/{job_id}")
    return JobService(session=session, scope=principal.scope, app=app).cancel(job_id=job_id)
