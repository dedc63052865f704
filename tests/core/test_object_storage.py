"""Blobs in an S3 bucket (moto's S3 API server in a real process; no fake of the storage interface): the whole
workflow keeps its data there, and a store that cannot be reached answers 503 with Retry-After and leaves nothing
half-written — no dataset row, no object."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, make_settings, provision_tenant
from tests.detectors.test_workflow import breastw, trained_detector, upload
from tests.support.cluster import create_bucket, moto_server
from tests.support.tcp_proxy import TcpForwarder
from vigil.app import create_app
from vigil.config import Settings

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
