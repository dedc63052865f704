"""Feedback routes: label rows of a dataset as anomaly or normal for a detector, list and delete the labels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from vigil.core.pagination import Page
from vigil.detectors.feedback import FeedbackService
from vigil.detectors.schemas import FeedbackCreate, FeedbackDeleted, FeedbackLabelPublic, FeedbackSummary
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.web.created import CREATED, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import quick_read
from vigil.web.paging import Cursor, Limit

router = APIRouter(tags=["detectors"])


def _feedback(session: SessionDep, principal: Principal, app: ContextDep) -> FeedbackService:
    return FeedbackService(session=session, scope=principal.scope, app=app)


@router.post(
    "/detectors/{detector_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    responses=CREATED,
    summary="Label rows of a dataset as anomaly or normal (by index, or a label column)",
)
def add_feedback(
    detector_id: str,
    data: FeedbackCreate,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    response: Response,
) -> FeedbackSummary:
    summary = _feedback(session, principal, app).add(detector_id=detector_id, data=data, created_by=principal.user_id)
    # The labels are many rows: where they are read, the detector's feedback.
    return created(response, "/api/v1/detectors/{detector_id}/feedback", summary, detector_id=detector_id)


@router.get("/detectors/{detector_id}/feedback", summary="A detector's feedback labels, newest first")
@quick_read
def list_feedback(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
    dataset_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[FeedbackLabelPublic]:
    items, next_cursor = _feedback(session, principal, app).list(
        detector_id=detector_id, dataset_id=dataset_id, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/detectors/{detector_id}/feedback/{label_id}", status_code=204, summary="Delete one label")
def delete_feedback(
    detector_id: str,
    label_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    _feedback(session, principal, app).delete(detector_id=detector_id, label_id=label_id)
    return Response(status_code=204)


@router.delete("/detectors/{detector_id}/feedback", summary="Delete every label of one dataset")
def delete_dataset_feedback(
    detector_id: str,
    dataset_id: Annotated[str, Query(min_length=1, max_length=64)],
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> FeedbackDeleted:
    return _feedback(session, principal, app).delete_for_dataset(detector_id=detector_id, dataset_id=dataset_id)
