"""A tenant's data as one zip, before it is deleted (or to move it): its datasets as the Parquet files they are
stored as, with metadata JSON for datasets, detectors and their model versions, and users (without secrets).

Model artifacts are not included: they are signed with this server's key and would not load elsewhere; the
detector configuration and the datasets are what is needed to train them again."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.datasets.service import DatasetService
from vigil.detectors.service import DetectorService
from vigil.identity.tenant_service import TenantDirectory
from vigil.tenants.schemas import TenantPublic

CHUNK = 1024 * 1024
PAGE = 500
_T = TypeVar("_T")


def _every(fetch: Callable[..., tuple[list[_T], str | None]]) -> Iterator[_T]:
    """All items of a cursor-paginated service listing (`fetch(limit=…, cursor=…)`)."""
    cursor: str | None = None
    while True:
        items, cursor = fetch(limit=PAGE, cursor=cursor)
        yield from items
        if cursor is None:
            return


def _json(model: BaseModel | list[Any] | dict[str, Any]) -> str:
    if isinstance(model, BaseModel):
        return model.model_dump_json(indent=2)
    return json.dumps(model, indent=2, default=str)


def _plain(model: BaseModel) -> Any:
    return json.loads(model.model_dump_json())


def write_export(session: Session, app: AppContext, tenant: TenantPublic, out: IO[bytes]) -> None:
    scope = TenantScope(tenant.id)
    datasets = DatasetService(session=session, scope=scope, app=app)
    detectors = DetectorService(session=session, scope=scope, app=app)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tenant.json", _json(tenant))
        listed = []
        for dataset in _every(datasets.list):
            listed.append(_plain(dataset))
            path = datasets.stored_file(dataset_id=dataset.id)
            if path.exists():
                zf.write(path, f"datasets/{dataset.id}.parquet", compress_type=zipfile.ZIP_STORED)
        zf.writestr("datasets.json", _json(listed))
        described = []
        for detector in _every(detectors.list):
            versions = _every(partial(detectors.versions, detector_id=detector.id))
            described.append({**_plain(detector), "versions": [_plain(v) for v in versions]})
        zf.writestr("detectors.json", _json(described))
        people = TenantDirectory(session=session, settings=app.settings).users(tenant_id=tenant.id)
        zf.writestr("users.json", _json([_plain(u) for u in people]))


def build_export(session: Session, app: AppContext, tenant: TenantPublic) -> Path:
    """The zip in a temporary file (built before the response starts, so a failure is still a problem document)."""
    fd, name = tempfile.mkstemp(prefix="vigil-export-", suffix=".zip")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            write_export(session, app, tenant, out)
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
