"""Body limits are per route and hold before the body is parsed: whatever the Content-Type says, chunked or not,
and a compressed body is refused rather than expanded."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, make_settings
from tests.web.test_problems import assert_problem
from vigil.app import create_app

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
