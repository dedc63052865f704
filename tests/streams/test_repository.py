"""Stream queries (`streams/repository.py`): the hot path's plain INSERTs still write only the scope's tenant's rows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import Tenant
from tests.streams.conftest import create_stream
from vigil.core.database import TenantScope, utcnow
from vigil.streams.models import StreamAnomaly, StreamDrift
from vigil.streams.repository import StreamRepository


def _rows(stream_id: str, tenant_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    now = utcnow()
    anomaly = {"id": "anm_t1", "tenant_id": tenant_id, "stream_id": stream_id, "seq": 7, "score": 0.9,
               "threshold": 0.5, "values": {"f0": 1.0}, "created_at": now}  # fmt: skip
    drift = {"id": "drf_t1", "tenant_id": tenant_id, "stream_id": stream_id, "seq": 7, "detector": "adwin",
             "details": {"width": 3.0}, "created_at": now}  # fmt: skip
    return anomaly, drift


def test_flagged_and_drift_rows_of_another_tenant_are_refused(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    context = client.app.state.context  # type: ignore[attr-defined]
    with context.database.sessions() as session:
        streams = StreamRepository(session=session, scope=TenantScope(tenant.id))
        anomaly, drift = _rows(stream["id"], "ten_someone_else")
        with pytest.raises(ValueError, match="scope's tenant"):
            streams.add_anomalies([anomaly])
        with pytest.raises(ValueError, match="scope's tenant"):
            streams.add_drifts([drift])
        session.commit()
        anomaly, drift = _rows(stream["id"], tenant.id)
        streams.add_anomalies([anomaly])
        streams.add_drifts([drift])
        session.commit()
        stored = [session.scalar(select(func.count()).select_from(t)) for t in (StreamAnomaly, StreamDrift)]
    assert stored == [1, 1]  # the tenant's own rows, and nothing of the refused ones
    listed = client.get(f"/api/v1/streams/{stream['id']}/anomalies", headers=tenant.viewer).json()["items"]
    assert [(a["seq"], a["values"]) for a in listed] == [(7, {"f0": 1.0})]
