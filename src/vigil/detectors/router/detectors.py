"""Detector routes: the algorithm catalog, detector CRUD and training a new model version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from vigil.core.pagination import Page
from vigil.detectors.schemas import AlgorithmList, DetectorCreate, DetectorPublic, DetectorUpdate, TrainRequest
from vigil.detectors.service import DetectorService, catalog
from vigil.identity.dependencies import require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.jobs.schemas import JobPublic
from vigil.web.created import ACCEPTED, CREATED, JOB, created
from vigil.web.deps import ContextDep, SessionDep
from vigil.web.endpoints import quick_read
from vigil.web.idempotency_applied import replay_created
from vigil.web.paging import Cursor, Limit

DETECTOR = "/api/v1/detectors/{id}"
router = APIRouter(tags=["detectors"])


def _service(session: SessionDep, principal: Principal, app: ContextDep) -> DetectorService:
    return DetectorService(session=session, scope=principal.scope, app=app)


@router.get("/algorithms", summary="The detector catalog with parameter schemas")
def list_algorithms(_: Annotated[Principal, require(Permission.ALGORITHMS_READ)]) -> AlgorithmList:
    return catalog()


@router.post("/detectors", status_code=status.HTTP_201_CREATED, responses=CREATED, summary="Create a detector")
def create_detector(
    data: DetectorCreate,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    response: Response,
) -> DetectorPublic:
    replay_created("detectors", DETECTOR)
    return created(
        response, DETECTOR, _service(session, principal, app).create(data=data, created_by=principal.user_id)
    )


@router.get("/detectors", summary="List detectors, newest first")
@quick_read
def list_detectors(
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DetectorPublic]:
    items, next_cursor = _service(session, principal, app).list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/detectors/{detector_id}", summary="Get a detector")
def get_detector(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_READ)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    return _service(session, principal, app).get(detector_id=detector_id)


@router.patch("/detectors/{detector_id}", summary="Change a detector (applies to the next training)")
def update_detector(
    detector_id: str,
    data: DetectorUpdate,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> DetectorPublic:
    return _service(session, principal, app).update(detector_id=detector_id, data=data)


@router.delete("/detectors/{detector_id}", status_code=204, summary="Delete a detector and its models")
def delete_detector(
    detector_id: str,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
) -> Response:
    _service(session, principal, app).delete(detector_id=detector_id)
    return Response(status_code=204)


@router.post(
    "/detectors/{detector_id}/train",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ACCEPTED,
    summary="Train a new model version",
)
def train_detector(
    detector_id: str,
    data: TrainRequest,
    principal: Annotated[Principal, require(Permission.DETECTORS_WRITE)],
    session: SessionDep,
    app: ContextDep,
    response: Response,
) -> JobPublic:
    replay_created("jobs", JOB, status=202)
    job = _service(session, principal, app).train(
        detector_id=detector_id, dataset_id=data.dataset_id, created_by=principal.user_id, promote=data.promote
    )
    return created(response, JOB, job)
