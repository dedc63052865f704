"""Retention: a tenant's `retention_days` deletes its datasets (uploads and detection results) once older.

Run by the job runner's housekeeping at start-up and every `VIGIL_RETENTION_SWEEP_INTERVAL_S`; each tenant is
swept in its own scope, rows first and then files, as any dataset deletion."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.datasets.repository import DatasetRepository
from vigil.datasets.service import DatasetService
from vigil.identity.quotas import policies_with_retention

log = logging.getLogger("vigil.datasets")


def sweep_expired(app: AppContext, *, now: datetime | None = None) -> int:
    """Deletes every dataset older than its tenant's retention; returns how many."""
    now = now or utcnow()
    with app.database.session() as session:
        policies = policies_with_retention(session, app.settings)
    deleted = 0
    for policy in policies:
        assert policy.retention_days is not None
        scope = TenantScope(policy.tenant_id)
        with app.database.session() as session:
            expired = DatasetRepository(session=session, scope=scope).expired(
                before=now - timedelta(days=policy.retention_days)
            )
            ids = [d.id for d in expired]
        for dataset_id in ids:
            with app.database.session() as session:
                DatasetService(session=session, scope=scope, app=app).delete(dataset_id=dataset_id)
            deleted += 1
    if deleted:
        log.info("retention: deleted %d expired dataset(s)", deleted)
    return deleted
