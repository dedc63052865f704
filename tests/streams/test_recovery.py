"""Crash equivalence against a real server process: SIGKILL it mid-stream, start it again on the same database,
resend everything unacknowledged — and every score after that equals an uninterrupted twin stream's. Once over HTTP,
once with the SDK's WebSocket connection, which resumes from the last acknowledged seq by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, backend
from tests.streams.conftest import FEATURES, make_events
from tests.streams.server import ServerProcess
from vigil.client import VigilAPIError, VigilClient, VigilConnectionError
from vigil.config import Settings

N_EVENTS, BATCH = 1600, 40
PLANTED = tuple(range(500, N_EVENTS, 97))
STREAM = {
    "features": FEATURES,
    "algorithm": "hst",
    "parameters": {"seed": 5, "window_size": 100},
    "warmup": 100,
    "threshold": {"kind": "quantile", "q": 0.98},
}


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerProcess]:
    # Snapshots every 400 events: recovery is a snapshot plus a replay of the log after it.
    process = ServerProcess(settings, VIGIL_STREAM_SNAPSHOT_EVERY_EVENTS="400")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _client(server: ServerProcess) -> VigilClient:
    client = VigilClient(server.url, timeout=30)
    client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def _twin_scores(client: VigilClient, events: list[dict[str, Any]]) -> tuple[list[Any], dict[str, Any]]:
    twin = client.streams.create(name="twin", **STREAM)
    results = []
    for start in range(0, len(events), 500):
        results += client.streams.send(twin["id"], events[start : start + 500])["results"]
    return [(r["score"], r["is_anomaly"]) for r in results], client.streams.get(twin["id"])


def test_sigkill_mid_stream_then_resend_equals_an_uninterrupted_twin(server: ServerProcess) -> None:
    events = make_events(N_EVENTS, seed=21, anomalies=PLANTED)
    client = _client(server)
    expected, twin = _twin_scores(client, events)
    stream = client.streams.create(name="victim", **STREAM)

    answered: dict[int, tuple[Any, Any]] = {}
    stop = threading.Event()

    def sender() -> None:  # sends batch after batch until the server dies under it
        for start in range(0, N_EVENTS, BATCH):
            if stop.is_set():
                return
            try:
                reply = client.streams.send(stream["id"], events[start : start + BATCH])
            except (VigilConnectionError, VigilAPIError):
                return
            for r in reply["results"]:
                answered[r["seq"]] = (r["score"], r["is_anomaly"])

    thread = threading.Thread(target=sender)
    thread.start()
    while len(answered) < 700:  # past a snapshot, with log records after it
        assert thread.is_alive(), "the sender stopped before the crash"
        time.sleep(0.005)
    server.kill()  # mid-stream: a batch is almost surely in flight
    stop.set()
    thread.join(timeout=60)
    acknowledged = max(answered)
    server.start()

    client = _client(server)
    resumed = client.streams.get(stream["id"])
    assert resumed["last_seq"] >= acknowledged, "an acknowledged event was lost"
    assert resumed["last_seq"] <= acknowledged + BATCH  # at most the batch in flight was committed unanswered
    # Resend everything not acknowledged; what the server had committed comes back as duplicates, first answer.
    for start in range(acknowledged, N_EVENTS, BATCH):
        for r in client.streams.send(stream["id"], events[start : start + BATCH])["results"]:
            assert r["status"] in ("new", "duplicate")
            answered[r["seq"]] = (r["score"], r["is_anomaly"])
    assert [answered[seq] for seq in range(1, N_EVENTS + 1)] == expected
    after = client.streams.get(stream["id"])
    for field in ("events_seen", "anomaly_count", "drift_count", "last_seq", "current_threshold"):
        assert after[field] == twin[field], field
    flagged = client.streams.anomalies(stream["id"], limit=500)["items"]
    assert {a["seq"] for a in flagged} == {
        seq for seq, (_, flag) in zip(range(1, N_EVENTS + 1), expected, strict=False) if flag
    }


@pytest.mark.skipif(
    backend() != "sqlite", reason="the SDK's resumption is the same on any database: run in the SQLite pass"
)
def test_the_sdk_websocket_resumes_after_a_restart(server: ServerProcess) -> None:
    events = make_events(N_EVENTS, seed=22, anomalies=PLANTED)
    client = _client(server)
    expected, _ = _twin_scores(client, events)
    stream = client.streams.create(name="victim", **STREAM)
    batches = [events[start : start + BATCH] for start in range(0, N_EVENTS, BATCH)]
    answers: list[dict[str, Any]] = []
    with client.streams.connect(stream["id"], reconnect_timeout_s=120) as conn:
        for answer in conn.send_all(batches):
            answers.append(answer)
            if len(answers) == 15:  # SIGKILL with batches in flight, then a restart on the same database
                server.kill()
                server.start()
        assert conn.reconnects >= 1
    results = [r for answer in answers for r in answer["results"]]
    assert [r["seq"] for r in results] == list(range(1, N_EVENTS + 1))
    assert [(r["score"], r["is_anomaly"]) for r in results] == expected
    assert client.streams.get(stream["id"])["events_seen"] == N_EVENTS
