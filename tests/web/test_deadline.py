"""The request deadline: a request blocked on a dependency is answered 503 with Retry-After (and finishes in the
background); quick requests and responses already under way are untouched. And a database outage raised outside
the routes (e.g. by the idempotency claim) is a 503 too, not a 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from vigil.web.deadline import RequestDeadlineMiddleware
from vigil.web.problems import UnhandledErrorMiddleware

DEADLINE_S = 0.3
WAIT_S = 30.0  # bounds how long a broken build could hang the test; never reached when it works


class _OutageMiddleware:
    """Raises what SQLAlchemy raises when the database refuses connections, outside any route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/outage":
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
        await self.app(scope, receive, send)


@pytest.fixture
def blocked() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()  # whatever happened, free the blocked thread


@pytest.fixture
def client(blocked: threading.Event) -> Iterator[TestClient]:
    app = FastAPI()
    finished: list[str] = []
    app.state.finished = finished

    @app.get("/quick")
    def quick() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/blocked")
    def blocked_route() -> dict[str, str]:
        blocked.wait(WAIT_S)
        finished.append("blocked")
        return {"ok": "late"}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        def body() -> Iterator[bytes]:
            yield b"first "
            blocked.wait(WAIT_S)
            yield b"last"

        return StreamingResponse(body())

    app.add_middleware(_OutageMiddleware)
    app.add_middleware(RequestDeadlineMiddleware, seconds=DEADLINE_S)
    app.add_middleware(UnhandledErrorMiddleware)
    with TestClient(app) as test_client:
        yield test_client


def test_a_blocked_request_gets_a_503_and_finishes_in_the_background(
    client: TestClient, blocked: threading.Event
) -> None:
    response = client.get("/blocked")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "/problems/service-unavailable"
    assert client.app.state.finished == []  # type: ignore[attr-defined]
    blocked.set()
    assert client.get("/quick").json() == {"ok": "yes"}


def test_quick_requests_are_untouched(client: TestClient) -> None:
    assert client.get("/quick").status_code == 200


def test_a_started_response_is_not_cut(client: TestClient, blocked: threading.Event) -> None:
    threading.Timer(DEADLINE_S * 3, blocked.set).start()
    response = client.get("/stream")
    assert response.status_code == 200
    assert response.text == "first last"


def test_a_database_outage_outside_the_routes_is_a_503(client: TestClient) -> None:
    response = client.get("/outage")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["dependency"] == "database"
