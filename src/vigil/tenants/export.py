"""A tenant's data as one zip, before it is deleted (or to move it): its datasets as the Parquet files they are
stored as, with metadata JSON for datasets, detectors and their model versions, and users (without secrets).

Model artifacts are not included: they are signed with this server's key and would not load elsewhere; the
detector configuration and the datasets are what is needed to train them again."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.datasets.repository import DatasetRepository
from vigil.datasets.service import to_public as dataset_public
from vigil.detectors.models import ModelVersion
from vigil.detectors.repository import DetectorRepository
from vigil.detectors.schemas import DetectorPublic, ModelVersionPublic
from vigil.identity.repository import PlatformRepository, UserRepository
from vigil.identity.schemas import UserPublic
from vigil.identity.tenant_service import tenant_public

CHUNK = 1024 * 1024
_T = TypeVar("_T")


def _every(fetch: Callable[[int, str | None], Sequence[_T]], id_of: Callable[[_T], str]) -> Iterator[_T]:
    """All rows of a keyset-paginated repository listing."""
    after: str | None = None
    while True:
        rows = fetch(500, after)
        yield from rows[:500]
        if len(rows) <= 500:
            return
        after = id_of(rows[499])


def _json(model: BaseModel | list[Any] | dict[str, Any]) -> str:
    if isinstance(model, BaseModel):
        return model.model_dump_json(indent=2)
    return json.dumps(model, indent=2, default=str)


def _versions_of(
    detectors: DetectorRepository, detector_id: str
) -> Callable[[int, str | None], Sequence[ModelVersion]]:
    def fetch(limit: int, after: str | None) -> Sequence[ModelVersion]:
        return detectors.versions(detector_id, limit=limit, after_id=after)

    return fetch


def write_export(session: Session, app: AppContext, tenant_id: str, out: IO[bytes]) -> None:
    scope = TenantScope(tenant_id)
    tenant = PlatformRepository(session=session).tenant(tenant_id)
    assert tenant is not None
    datasets = DatasetRepository(session=session, scope=scope)
    detectors = DetectorRepository(session=session, scope=scope)
    users = UserRepository(session=session, scope=scope)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tenant.json", _json(tenant_public(tenant, app.settings)))
        listed = []
        for dataset in _every(lambda n, a: datasets.list(limit=n, after_id=a), lambda d: d.id):
            listed.append(json.loads(dataset_public(dataset).model_dump_json()))
            path = app.blobs.path(dataset.blob_key)
            if path.exists():
                zf.write(path, f"datasets/{dataset.id}.parquet", compress_type=zipfile.ZIP_STORED)
        zf.writestr("datasets.json", _json(listed))
        described = []
        for detector in _every(lambda n, a: detectors.list(limit=n, after_id=a), lambda d: d.id):
            versions = _every(_versions_of(detectors, detector.id), lambda v: v.id)
            described.append(
                {
                    **json.loads(DetectorPublic.model_validate(detector).model_dump_json()),
                    "versions": [json.loads(ModelVersionPublic.model_validate(v).model_dump_json()) for v in versions],
                }
            )
        zf.writestr("detectors.json", _json(described))
        people = _every(lambda n, a: users.list(limit=n, after_id=a), lambda u: u.id)
        zf.writestr("users.json", _json([json.loads(UserPublic.model_validate(u).model_dump_json()) for u in people]))


def build_export(session: Session, app: AppContext, tenant_id: str) -> Path:
    """The zip in a temporary file (built before the response starts, so a failure is still a problem document)."""
    fd, name = tempfile.mkstemp(prefix="vigil-export-", suffix=".zip")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            write_export(session, app, tenant_id, out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def stream_then_delete(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    finally:
        path.unlink(missing_ok=True)
