"""Quotas are checked in the transaction that adds, with the tenant held: two uploads racing for the last slot
cannot both win — on either backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.context import AppContext
from vigil.core.database import Database, TenantScope, bind_platform, build_engine
from vigil.core.errors import QuotaExceeded
from vigil.core.metrics import Metrics
from vigil.datasets.models import Dataset
from vigil.datasets.service import DatasetService
from vigil.identity.models import Tenant
from vigil.migrations.runner import upgrade_database

TENANT = "tnt_race"


@pytest.fixture
def app(any_db_settings: Settings) -> Iterator[AppContext]:
    owner = build_engine(any_db_settings, admin=True)
    upgrade_database(owner)
    owner.dispose()
    database = Database(any_db_settings)
    with database.session() as session:
        session.add(Tenant(id=TENANT, name="race", status="active", settings={"quotas": {"datasets": 1}}))
    yield AppContext(
        settings=any_db_settings,
        database=database,
        blobs=BlobStore(any_db_settings.blob_root),
        secret_key=b"k" * 32,
        metrics=Metrics(),
    )
    database.dispose()


def test_two_uploads_cannot_share_the_last_slot(app: AppContext) -> None:
    table = pa.table({"x": list(range(1000))})
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def upload(n: int) -> None:
        barrier.wait()
        with app.database.sessions() as session:
            try:
                DatasetService(session=session, scope=TenantScope(TENANT), app=app).create_from_table(
                    table=table, name=f"d{n}", description=None, source_format="csv", created_by=None
                )
                outcomes.append("stored")
            except QuotaExceeded:
                outcomes.append("quota")

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["quota", "stored"]
    with app.database.session() as session:
        bind_platform(session)
        assert session.query(Dataset).filter(Dataset.tenant_id == TENANT).count() == 1
    files = list(app.blobs.path(app.blobs.key(TenantScope(TENANT), "datasets")).iterdir())
    assert len(files) == 1, "the refused upload left its file"
