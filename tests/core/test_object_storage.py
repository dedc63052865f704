"""Blobs in an S3 bucket (moto's S3 API server in a real process; no fake of the storage interface): the whole
workflow keeps its data there, and a store that cannot be reached answers 503 with Retry-After and leaves nothing
half-written — no dataset row, no object."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, make_settings, provision_tenant
from tests.detectors.test_workflow import breastw, trained_detector, upload
from tests.support.cluster import create_bucket, moto_server
from tests.support.tcp_proxy import TcpForwarder
from vigil.app import create_app
from vigil.config import Settings
from vigil.core import blob_sweep
from vigil.core.blob_sweep import BlobFamilies, SweepReport, sweep_orphan_blobs
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.ids import new_id
from vigil.datasets.service import DatasetService

BUCKET = "vigil-test"
pytestmark = pytest.mark.scaleout


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as (endpoint, _):
        create_bucket(endpoint, BUCKET)
        yield endpoint


def s3_settings(data_dir: Path, endpoint: str, prefix: str) -> Settings:
    return make_settings(
        data_dir,
        blob_url=f"s3://{BUCKET}/{prefix}",
        blob_s3_endpoint_url=endpoint,
        blob_s3_region="us-east-1",
        blob_s3_access_key_id="testing",
        blob_s3_secret_access_key="testing",
        blob_request_timeout_s=3,
    )


def objects(endpoint: str, prefix: str) -> list[str]:
    fs = pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        scheme="http",
        endpoint_override=endpoint.removeprefix("http://"),
    )
    infos = fs.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def new_tenant(client: TestClient) -> Tenant:
    return provision_tenant(client, bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD)))


def test_datasets_and_models_live_in_the_bucket(s3: str, tmp_path: Path) -> None:
    settings = s3_settings(tmp_path / "data", s3, "workflow")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/ready").json()["checks"]["blob_store"] == "ok"
        tenant = new_tenant(client)
        frame, _ = breastw()
        dataset_id = upload(client, tenant.analyst, frame)
        detector_id = trained_detector(client, tenant, dataset_id)
        stored = objects(s3, "workflow")
        assert f"{BUCKET}/workflow/tenants/{tenant.id}/datasets/{dataset_id}.parquet" in stored
        assert any(p.startswith(f"{BUCKET}/workflow/tenants/{tenant.id}/models/{detector_id}/") for p in stored)
        assert not (settings.blob_root).exists() or not any(settings.blob_root.rglob("*.parquet"))
        rows = client.get(f"/api/v1/datasets/{dataset_id}/rows?limit=3", headers=tenant.viewer)
        assert rows.status_code == 200
        assert len(rows.json()["rows"]) == 3
        detect = client.post(
            f"/api/v1/detectors/{detector_id}/detect",
            json={"records": rows.json()["rows"]},
            headers=tenant.analyst,
        )
        assert detect.status_code == 200, detect.text
        assert client.delete(f"/api/v1/datasets/{dataset_id}", headers=tenant.admin).status_code == 204
        assert f"{BUCKET}/workflow/tenants/{tenant.id}/datasets/{dataset_id}.parquet" not in objects(s3, "workflow")


def test_an_unreachable_store_answers_503_and_keeps_nothing(s3: str, tmp_path: Path) -> None:
    port = int(s3.rsplit(":", 1)[1])
    with TcpForwarder(port) as link:
        link.up()
        settings = s3_settings(tmp_path / "data", f"http://127.0.0.1:{link.port}", "outage")
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            tenant = new_tenant(client)
            frame, _ = breastw()
            body = io.BytesIO()
            frame.write_parquet(body)
            headers = {**tenant.analyst, "Content-Type": "application/vnd.apache.parquet"}
            link.down()
            answer = client.post("/api/v1/datasets?name=lost", content=body.getvalue(), headers=headers)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert int(answer.headers["Retry-After"]) > 0
            assert answer.json()["dependency"] == "object_store"
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["blob_store"].startswith("unavailable")
            assert ready.json()["checks"]["database"] == "ok"
            link.up()
            assert client.get("/api/v1/datasets", headers=tenant.viewer).json()["items"] == []
            assert objects(s3, "outage") == [], "a half-written upload was left in the bucket"
            assert not list((tmp_path / "data").rglob("up-*")), "a staged upload was left on disk"
            assert (
                client.post("/api/v1/datasets?name=back", content=body.getvalue(), headers=headers).status_code == 201
            )
            assert client.get("/ready").status_code == 200


def test_the_orphan_sweep_works_on_the_bucket(s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blobs put and never recorded (as a crash between the two leaves them) go once past the grace; what rows
    refer to stays. The bucket's ages are its own (no clock to set in S3): the sweep's clock is moved instead."""
    monkeypatch.setattr(blob_sweep, "PAGE", 2)  # several pages (and delimited listings) per directory
    settings = s3_settings(tmp_path / "data", s3, "sweep")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        context: AppContext = client.app.state.context  # type: ignore[attr-defined]
        tenant = new_tenant(client)
        scope = TenantScope(tenant.id)
        frame, _ = breastw()
        dataset_id = upload(client, tenant.analyst, frame)
        referenced = set(objects(s3, "sweep"))
        with context.database.session() as session:
            service = DatasetService(session=session, scope=scope, app=context)
            orphans = {service.put_table(pa.table({"x": [float(n)]})).key for n in range(3)}
        artifact = context.blobs.key(scope, "models", new_id("det"), f"{new_id('job')}.vmdl")
        context.blobs.put_bytes(artifact, b"artifact of a killed training")
        orphans.add(artifact)

        def sweep(**options: object) -> SweepReport:
            values: dict[str, object] = {
                "database": context.database,
                "blobs": context.blobs,
                "families": context.component(BlobFamilies).families,
                "grace_s": 3600.0,
                **options,
            }
            return sweep_orphan_blobs(**values)  # type: ignore[arg-type]

        young = sweep()
        assert (young.orphans, young.kept_young) == (0, len(orphans))
        later = time.time() + 7200
        assert sweep(clock=lambda: later, dry_run=True).orphans == len(orphans)
        assert set(objects(s3, "sweep")) == referenced | {f"{BUCKET}/sweep/{key}" for key in orphans}
        report = sweep(clock=lambda: later)
        assert report.orphans == len(orphans)
        assert report.scanned == len(orphans) + len(referenced)
        assert set(objects(s3, "sweep")) == referenced
        rows = client.get(f"/api/v1/datasets/{dataset_id}/rows?limit=3", headers=tenant.viewer)
        assert rows.status_code == 200, rows.text
