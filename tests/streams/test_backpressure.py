"""Backpressure on a real server: a WebSocket client that sends without reading its answers is not buffered without
limit — the server stops reading beyond its in-flight bound, ends the session when an answer cannot be sent in
time, and the connection closes once the client has read what was already written — while the server stays healthy
and the stream consistent."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, backend
from tests.streams.conftest import make_events
from tests.streams.server import ServerProcess
from vigil.client import VigilClient
from vigil.config import Settings

BATCH, FRAMES = 1000, 300
pytestmark = pytest.mark.skipif(
    backend() != "sqlite", reason="the WebSocket's flow control is the same on any database: run in the SQLite pass"
)


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerProcess]:
    process = ServerProcess(
        settings,
        VIGIL_STREAM_WS_SEND_TIMEOUT_S="1",
        VIGIL_STREAM_WS_MAX_IN_FLIGHT="2",
        VIGIL_QUOTA_STREAM_EVENTS_PER_SECOND="100000000",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def _stable(counter: list[int], quiet_s: float, limit_s: float) -> int:
    """Waits until `counter[0]` has not moved for `quiet_s`; returns it."""
    deadline = time.monotonic() + limit_s
    last, since = counter[0], time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if counter[0] != last:
            last, since = counter[0], time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return last
    raise AssertionError("the client was never pushed back: the server read everything it sent")


async def _drain(ws: ClientConnection) -> int:
    """Scores frames read until the server closes; a server that keeps the connection open fails (time-out)."""
    answers = 0
    while True:
        try:
            message = await asyncio.wait_for(ws.recv(), 20)
        except ConnectionClosed:
            return answers
        answers += json.loads(message)["type"] == "scores"


async def _firehose(url: str, port: int, token: str, frame: str) -> tuple[int, int]:
    """Sends `FRAMES` frames without reading, until pushed back; then reads: (frames sent, answers read)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: it sets the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    sent = [0]
    # max_queue=1: the client library itself stops reading the socket once a frame waits to be read.
    async with connect(url, sock=sock, max_queue=1, compression=None, proxy=None) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await ws.recv())["type"] == "ack"

        async def firehose() -> None:
            for _ in range(FRAMES):
                await ws.send(frame)
                sent[0] += 1

        task = asyncio.create_task(firehose())
        try:
            stalled = await _stable(sent, quiet_s=3, limit_s=120)  # pushed back: the client's sends block
            assert stalled < FRAMES
            await asyncio.sleep(3)  # well past the server's send time-out (1 s): its session is over
            answers = await _drain(ws)  # reading now gets what was written, then the end
        finally:
            task.cancel()
    return sent[0], answers


@pytest.mark.timeout(180)
def test_a_client_that_does_not_read_is_cut_off(server: ServerProcess) -> None:
    with VigilClient(server.url) as client:
        client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        stream_id = client.streams.create(name="firehose", features=["f0", "f1", "f2", "f3"])["id"]
        batch = make_events(BATCH)
        client.streams.send(stream_id, batch)
        # Resending one acknowledged batch: each answer is ~70 KB of duplicates, cheap for the server to produce.
        frame = json.dumps({"type": "events", "events": batch})
        url = server.url.replace("http", "ws", 1) + f"/api/v1/streams/{stream_id}/ws"
        assert client.token is not None
        sent, answers = asyncio.run(_firehose(url, server.port, client.token, frame))
        assert answers < sent, f"all {answers} batches were answered: the slow client was never cut off"
        assert httpx.get(f"{server.url}/ready", timeout=10).status_code == 200
        stream = client.streams.get(stream_id)
        assert (stream["events_seen"], stream["last_seq"]) == (BATCH, BATCH)
        assert client.streams.send(stream_id, make_events(1, start=BATCH + 1))["accepted"] == 1
