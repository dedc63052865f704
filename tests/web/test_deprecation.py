"""Deprecated operations announce themselves (RFC 9745 `Deprecation`, RFC 8594 `Sunset`) in every answer, success
or problem, and the document says so. No real operation is deprecated yet, so the app gets a test route of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from vigil.app import create_app
from vigil.config import Settings
from vigil.core.errors import NotFound
from vigil.web.deprecation import Deprecation

SINCE = datetime(2026, 6, 1, tzinfo=UTC)
SUNSET = datetime(2027, 1, 1, tzinfo=UTC)
OLD = Deprecation(since=SINCE, sunset=SUNSET, link="https://vigil.example/docs/migrate")


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    legacy = APIRouter()

    @legacy.get("/legacy/ping", **OLD.route())
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    @legacy.get("/legacy/missing", **OLD.route())
    def missing() -> dict[str, str]:
        raise NotFound("thing", "x")

    app.include_router(legacy, prefix="/api/v1")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_deprecated_operation_says_since_when_and_until_when(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/legacy/ping")
    assert response.status_code == 200
    assert response.headers["Deprecation"] == f"@{int(SINCE.timestamp())}"
    assert parsedate_to_datetime(response.headers["Sunset"]) == SUNSET
    assert response.headers["Link"] == '<https://vigil.example/docs/migrate>; rel="deprecation"'


def test_its_problems_say_so_too(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/legacy/missing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["Deprecation"] == f"@{int(SINCE.timestamp())}"
    assert "Sunset" in response.headers


def test_other_operations_do_not(app_client: TestClient) -> None:
    response = app_client.get("/health")
    assert response.status_code == 200
    assert "Deprecation" not in response.headers
    assert "Sunset" not in response.headers


def test_the_document_marks_it_and_its_headers(app_client: TestClient) -> None:
    operation = app_client.get("/openapi.json").json()["paths"]["/api/v1/legacy/ping"]["get"]
    assert operation["deprecated"] is True
    assert operation["x-sunset"] == SUNSET.isoformat()
    for status, response in operation["responses"].items():
        assert {"Deprecation", "Sunset"} <= set(response.get("headers", {})), status


def test_every_deprecated_operation_of_the_api_announces_its_sunset(client: TestClient) -> None:
    """Marking a route `deprecated=True` by hand would document it without sending the headers: use `route()`."""
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("deprecated"):
                assert "x-sunset" in operation, f"{method.upper()} {path} is deprecated without Deprecation.route()"
