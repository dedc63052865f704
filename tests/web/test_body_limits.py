"""Body limits are per route and hold before the body is parsed: whatever the Content-Type says, chunked or not,
and a compressed body is refused rather than expanded."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, make_settings, provision_tenant
from tests.detectors.test_workflow import breastw, trained_detector, upload
from tests.web.test_problems import assert_problem
from vigil.app import create_app
from vigil.core.bounds import json_cost

PARQUET = "application/vnd.apache.parquet"

JSON_LIMIT = 4096
AUTH_LIMIT = 1024
UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(
        tmp_path / "data",
        max_json_body_bytes=JSON_LIMIT,
        max_auth_body_bytes=AUTH_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        token = client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        yield client, {"Authorization": f"Bearer {token.json()['access_token']}"}


def _chunks(total: int, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


@pytest.mark.parametrize("media", ["text/plain", "application/merge-patch+json", None])
def test_credential_routes_have_a_tiny_limit_whatever_the_media_type(
    small_limits: tuple[TestClient, dict[str, str]], media: str | None
) -> None:
    client, _ = small_limits
    headers = {"Content-Type": media} if media else {}
    body = b'{"email": "a@b.example", "password": "' + b"p" * AUTH_LIMIT + b'"}'
    response = client.post("/api/v1/auth/token", content=body, headers=headers)
    assert_problem(response, 413, "payload-too-large")
    assert response.json()["limit_bytes"] == AUTH_LIMIT


@pytest.mark.parametrize("media", ["text/plain", "application/vnd.api+json", "application/octet-stream"])
def test_json_routes_get_the_json_limit_whatever_the_media_type(
    small_limits: tuple[TestClient, dict[str, str]], media: str
) -> None:
    client, auth = small_limits
    body = b'{"name": "' + b"t" * JSON_LIMIT + b'"}'
    response = client.post("/api/v1/tenants", content=body, headers={**auth, "Content-Type": media})
    assert_problem(response, 413, "payload-too-large")
    assert response.json()["limit_bytes"] == JSON_LIMIT


def test_a_chunked_body_past_the_limit_is_413(small_limits: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = small_limits
    response = client.post(
        "/api/v1/tenants", content=_chunks(JSON_LIMIT * 3), headers={**auth, "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # really chunked
    assert_problem(response, 413, "payload-too-large")
    login = client.post("/api/v1/auth/token", content=_chunks(AUTH_LIMIT * 2), headers={"Content-Type": "text/plain"})
    assert_problem(login, 413, "payload-too-large")


def test_a_chunked_upload_past_the_upload_limit_is_413_and_stores_nothing(
    small_limits: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = small_limits
    lines = (b"a,b\n", *(b"1,2\n" for _ in range(UPLOAD_LIMIT // 4 + 10)))
    response = client.post(
        "/api/v1/datasets?name=big", content=iter(lines), headers={**auth, "Content-Type": "text/csv"}
    )
    assert_problem(response, 413, "payload-too-large")
    assert response.json()["limit_bytes"] == UPLOAD_LIMIT
    assert client.get("/api/v1/datasets", headers=auth).json()["items"] == []


def test_uploads_keep_their_larger_limit(small_limits: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = small_limits
    body = b"a,b\n" + b"1,2\n" * (JSON_LIMIT // 2)  # past the JSON limit, within the upload limit
    response = client.post("/api/v1/datasets?name=mid", content=body, headers={**auth, "Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == JSON_LIMIT // 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_bodies_are_refused_with_415_never_expanded(
    small_limits: tuple[TestClient, dict[str, str]], encoding: str
) -> None:
    client, auth = small_limits
    bomb = gzip.compress(b"a,b\n" + b"1,2\n" * 1_000_000)  # ~4 MB of CSV in a few KB
    response = client.post(
        "/api/v1/datasets?name=bomb",
        content=bomb,
        headers={**auth, "Content-Type": "text/csv", "Content-Encoding": encoding},
    )
    assert_problem(response, 415, "unsupported-media-type")
    assert client.get("/api/v1/datasets", headers=auth).json()["items"] == []


def test_json_that_would_parse_into_too_much_is_413_before_parsing(tmp_path: Path) -> None:
    """100 KB of `{}` is 33,000 dicts: under the byte limit, over what the route may parse into."""
    settings = make_settings(tmp_path / "data", max_json_body_bytes=1024 * 1024, max_decoded_bytes=1024 * 1024)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        token = client.post("/api/v1/auth/token", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        bomb = b"[" + b",".join([b"{}"] * 33_000) + b"]"
        for body in (bomb, b'{"name": ' + bomb + b"}"):
            response = client.post(
                "/api/v1/tenants", content=body, headers={**auth, "Content-Type": "application/json"}
            )
            assert_problem(response, 413, "payload-too-large")
            assert response.json()["limit_bytes"] == 1024 * 1024
        assert client.post("/api/v1/tenants", json={"name": "fine"}, headers=auth).status_code == 201
        # Uploads are streamed to disk, not parsed whole on the way in: the same bytes as CSV are just data.
        csv = b"a\n" + b"{}\n" * 33_000
        upload = client.post("/api/v1/datasets?name=c", content=csv, headers={**auth, "Content-Type": "text/csv"})
        assert upload.status_code in (201, 422), upload.text  # 422: the admin's own tenant may refuse; never 413


def test_a_table_detect_body_is_charged_as_a_table_and_only_json_as_json(tmp_path: Path) -> None:
    """Detection reads a Parquet body as a table (the reader charges what it decodes to, from its metadata), so the
    JSON estimate, which a text column of braces would blow, must not refuse it; the same bytes labelled JSON, or
    labelled JSON by the first of two Content-Type headers (the one the route reads), are still charged as JSON."""
    settings = make_settings(tmp_path / "data", max_decoded_bytes=1024 * 1024)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        tenant = provision_tenant(client)
        frame, _ = breastw()
        detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
        rows = frame.head(3).with_columns(pl.lit("{" * 6_000).alias("note"))  # ~6 KB decoded; JSON cost > 1 MiB
        sink = io.BytesIO()
        rows.write_parquet(sink, compression="uncompressed", statistics=False)
        body = sink.getvalue()
        assert json_cost(body) > settings.max_decoded_bytes
        url = f"/api/v1/detectors/{detector_id}/detect"
        scored = client.post(url, content=body, headers={**tenant.analyst, "Content-Type": PARQUET})
        assert scored.status_code == 200, scored.text
        assert scored.json()["total"] == 3
        as_json = client.post(url, content=body, headers={**tenant.analyst, "Content-Type": "application/json"})
        assert_problem(as_json, 413, "payload-too-large")
        two_labels = [
            *tenant.analyst.items(),
            ("Content-Type", "application/json"),
            ("Content-Type", PARQUET),
        ]
        smuggled = client.post(url, content=body, headers=two_labels)
        assert_problem(smuggled, 413, "payload-too-large")


def test_a_table_detect_body_has_its_own_byte_limit(tmp_path: Path) -> None:
    """Bulk scoring sends Parquet: past the JSON limit, within the table limit, it is scored; past the table limit
    it is a 413 before it is read; the same bytes labelled JSON get the JSON limit."""
    json_limit, table_limit = 8 * 1024, 256 * 1024
    settings = make_settings(tmp_path / "data", max_json_body_bytes=json_limit, max_detect_table_bytes=table_limit)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        tenant = provision_tenant(client)
        frame, _ = breastw()
        detector_id = trained_detector(client, tenant, upload(client, tenant.analyst, frame))
        url = f"/api/v1/detectors/{detector_id}/detect"

        def parquet(copies: int) -> bytes:
            sink = io.BytesIO()
            pl.concat([frame] * copies).write_parquet(sink, compression="uncompressed", statistics=False)
            return sink.getvalue()

        bulk = parquet(4)
        assert json_limit < len(bulk) < table_limit
        scored = client.post(url, content=bulk, headers={**tenant.analyst, "Content-Type": PARQUET})
        assert scored.status_code == 200, scored.text
        assert scored.json()["total"] == 4 * frame.height
        as_json = client.post(url, content=bulk, headers={**tenant.analyst, "Content-Type": "application/json"})
        assert_problem(as_json, 413, "payload-too-large")
        too_big = parquet(256)
        assert len(too_big) > table_limit
        refused = client.post(url, content=too_big, headers={**tenant.analyst, "Content-Type": PARQUET})
        assert_problem(refused, 413, "payload-too-large")
        assert refused.json()["limit_bytes"] == table_limit
