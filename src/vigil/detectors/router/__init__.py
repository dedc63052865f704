"""Detector routes, one module per purpose, joined here in the order the API lists them: the catalog and detector
CRUD with training (`detectors`), model versions (`versions`), feedback labels (`feedback`), and detection
(`detection`)."""

from __future__ import annotations

from vigil.detectors.router import detection, detectors, feedback, versions
from vigil.detectors.router.detection import TABLE_MEDIA_TYPES
from vigil.web.routing import IndexedRouter

__all__ = ["TABLE_MEDIA_TYPES", "router"]

router = IndexedRouter()
for _part in (detectors, versions, feedback, detection):
    router.include_router(_part.router)
