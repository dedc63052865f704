"""Detector routes, one module per purpose, joined here in the order the API lists them: the catalog and detector
CRUD with training (`detectors`), model versions (`versions`), feedback labels (`feedback`), and detection
(`detection`)."""

from __future__ import annotations

from fastapi import APIRouter

from vigil.detectors.router import detection, detectors, feedback, versions
from vigil.detectors.router.detection import TABLE_MEDIA_TYPES

__all__ = ["TABLE_MEDIA_TYPES", "router"]

router = APIRouter()
for _part in (detectors, versions, feedback, detection):
    router.include_router(_part.router)
