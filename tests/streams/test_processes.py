"""Several API processes on one database: any of them may serve any stream, in any order of routing, and the
stream still learns each event once, in seq order (the stored version is checked before every batch). A process
that keeps serving a stream (sticky routing) never reloads it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, bearer, login
from tests.streams.conftest import create_stream, make_events, send
from vigil.app import create_app
from vigil.config import Settings
from vigil.streams.state import StreamRuntime


@pytest.fixture
def two_processes(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps — two engines, two hot-state caches — on the same database, as two server processes would be."""
    with (
        TestClient(create_app(settings, run_workers=False)) as first,
        TestClient(create_app(settings, run_workers=False)) as second,
    ):
        yield first, second


def runtime(client: TestClient) -> StreamRuntime:
    found: StreamRuntime = client.app.state.streams  # type: ignore[attr-defined]
    return found


def test_any_routing_gives_the_uninterrupted_answer(two_processes: tuple[TestClient, TestClient]) -> None:
    first, second = two_processes
    headers = bearer(login(first, ADMIN_EMAIL, ADMIN_PASSWORD))
    stream = create_stream(first, headers)
    twin = create_stream(first, headers, name="twin")
    events = make_events(1000, seed=4, anomalies=(300, 600, 900))
    expected = send(first, twin["id"], events, headers)["results"]

    got = []
    routing = [first, second, second, first, second, first, first, second, first, second]
    for index, client in enumerate(routing):
        got += send(client, stream["id"], events[index * 100 : (index + 1) * 100], headers)["results"]
    assert got == expected
    # The second process caught up from the log each time it took over; neither rebuilt from a snapshot more than
    # once (its first sight of the stream).
    assert runtime(second).catch_ups >= 3
    assert runtime(first).loads == 0
    assert runtime(second).loads <= 1
    # A resend through the other process is a duplicate there too.
    again = send(second, stream["id"], events[950:], headers)
    assert again["accepted"] == 0
    assert [r["score"] for r in again["results"]] == [r["score"] for r in expected[950:]]


def test_sticky_routing_never_reloads(two_processes: tuple[TestClient, TestClient]) -> None:
    first, _ = two_processes
    headers = bearer(login(first, ADMIN_EMAIL, ADMIN_PASSWORD))
    stream = create_stream(first, headers)
    for start in range(1, 1001, 100):
        send(first, stream["id"], make_events(100, start=start), headers)
    assert (runtime(first).loads, runtime(first).catch_ups) == (0, 0)
