"""The streaming contract: HTTP problems of the stream routes, duplicate and out-of-order `seq`, and the WebSocket's
frames (`ack`, `scores`, `pong`, RFC 9457-shaped `problem`), its authentication (never the URL) and close codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.targets import Target

FEATURES = ["a", "b"]
ACK_MEMBERS = {"type", "stream_id", "last_seq", "max_batch_events", "max_frame_bytes", "max_in_flight"}
SCORES_MEMBERS = {"type", "id", "results", "last_seq", "accepted", "duplicates", "threshold"}
RESULT_MEMBERS = {"seq", "score", "is_anomaly", "status"}
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "request_id"}


def events(start: int, count: int) -> list[dict[str, Any]]:
    return [{"seq": s, "values": {"a": (s % 7) / 7, "b": (s % 5) / 5}} for s in range(start, start + count)]


def new_stream(client: VigilClient) -> str:
    created = client.streams.create(name="contract", features=FEATURES, parameters={"seed": 1}, warmup=5)
    return str(created["id"])


def token(client: VigilClient) -> str:
    assert client.token is not None
    return client.token


@contextmanager
def socket(target: Target, stream_id: str, *, query: str = "") -> Iterator[ClientConnection]:
    url = target.url.replace("http", "ws", 1) + f"/api/v1/streams/{stream_id}/ws{query}"
    with connect(url, open_timeout=10, proxy=None) as ws:
        yield ws


def frame(ws: ClientConnection) -> dict[str, Any]:
    received = json.loads(ws.recv(timeout=30))
    assert isinstance(received, dict)
    return received


def assert_problem_frame(received: dict[str, Any], status: int) -> dict[str, Any]:
    assert received["type"] == "problem", received
    problem = received["problem"]
    assert set(problem) >= PROBLEM_MEMBERS, problem
    assert problem["status"] == status, problem
    assert problem["type"].startswith("/problems/"), problem
    return dict(problem)


def close_code(ws: ClientConnection) -> tuple[int, dict[str, Any] | None]:
    problem = None
    try:
        while True:
            received = frame(ws)
            if received["type"] == "problem":
                problem = received["problem"]
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd is not None else 1006), problem  # 1006: no close frame at all


def test_http_problems_of_the_stream_routes(tenant: ProvisionedTenant) -> None:
    client = tenant.analyst
    assert_problem(client.send("GET", "/api/v1/streams/str_doesnotexist0000000000000"), 404, "not-found")
    batch = client.send("POST", "/api/v1/streams", json={"name": "x", "algorithm": "iforest", "features": FEATURES})
    assert_problem(batch, 422, "invalid-input")
    stream_id = new_stream(client)
    bad = events(1, 3)
    bad[1]["values"]["b"] = "high"
    refused = assert_problem(client.send("POST", f"/api/v1/streams/{stream_id}/events", json={"events": bad}), 422)
    assert refused["errors"][0]["seq"] == 2
    assert refused["errors"][0]["field"] == "b"
    assert_problem(client.send("POST", f"/api/v1/streams/{stream_id}/events", json={"events": events(1, 100_001)}), 413)
    assert_problem(
        tenant.viewer.send("POST", f"/api/v1/streams/{stream_id}/events", json={"events": events(1, 1)}), 403
    )
    assert client.streams.get(stream_id)["events_seen"] == 0


def test_duplicate_and_out_of_order_seq(tenant: ProvisionedTenant) -> None:
    client = tenant.analyst
    stream_id = new_stream(client)
    first = client.streams.send(stream_id, events(1, 10))
    assert set(first) >= {"results", "last_seq", "accepted", "duplicates", "threshold"}
    assert all(set(r) == RESULT_MEMBERS for r in first["results"])
    again = client.streams.send(stream_id, events(6, 7))  # 6..10 seen, 11..12 new
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 5 + ["new"] * 2
    assert [r["score"] for r in again["results"][:5]] == [r["score"] for r in first["results"][5:]]
    assert (again["accepted"], again["duplicates"], again["last_seq"]) == (2, 5, 12)
    backwards = [events(30, 1)[0], events(20, 1)[0]]
    assert_problem(client.send("POST", f"/api/v1/streams/{stream_id}/events", json={"events": backwards}), 422)
    client.streams.send(stream_id, events(30, 1))
    late = client.streams.send(stream_id, events(25, 1))
    assert late["results"] == [{"seq": 25, "score": None, "is_anomaly": None, "status": "late"}]
    assert client.streams.get(stream_id)["events_seen"] == 13


def test_websocket_frames(tenant: ProvisionedTenant, target: Target) -> None:
    stream_id = new_stream(tenant.analyst)
    with socket(target, stream_id) as ws:
        ws.send(json.dumps({"type": "auth", "token": token(tenant.analyst)}))
        ack = frame(ws)
        assert set(ack) == ACK_MEMBERS
        assert ack["type"] == "ack"
        assert ack["last_seq"] is None
        ws.send(json.dumps({"type": "events", "id": "one", "events": events(1, 20)}))
        scores = frame(ws)
        assert set(scores) == SCORES_MEMBERS
        assert scores["type"] == "scores"
        assert scores["id"] == "one"
        assert all(set(r) == RESULT_MEMBERS for r in scores["results"])
        assert scores["last_seq"] == 20
        ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert frame(ws) == {"type": "pong", "id": "p"}
        ws.send(json.dumps({"type": "events", "id": "dup", "events": events(15, 10)}))
        dup = frame(ws)
        assert (dup["accepted"], dup["duplicates"], dup["last_seq"]) == (4, 6, 24)
        # Problem frames answer the frame and keep the connection.
        ws.send("not json")
        assert_problem_frame(frame(ws), 400)
        ws.send(json.dumps({"type": "teleport"}))
        assert_problem_frame(frame(ws), 422)
        bad = events(25, 2)
        bad[1]["values"].pop("a")
        ws.send(json.dumps({"type": "events", "id": "bad", "events": bad}))
        received = frame(ws)
        problem = assert_problem_frame(received, 422)
        assert received["id"] == "bad"
        assert problem["errors"][0]["seq"] == 26
        ws.send(json.dumps({"type": "events", "events": events(25, ack["max_batch_events"] + 1)}))
        assert_problem_frame(frame(ws), 413)
        ws.send(" " * (ack["max_frame_bytes"] + 1))
        assert assert_problem_frame(frame(ws), 413)["limit_bytes"] == ack["max_frame_bytes"]
        ws.send(json.dumps({"type": "sync"}))
        assert frame(ws)["last_seq"] == 24
    assert tenant.analyst.streams.get(stream_id)["events_seen"] == 24


def test_websocket_close_codes(tenant_factory: Any, target: Target) -> None:
    owner, other = tenant_factory(), tenant_factory()
    stream_id = new_stream(owner.analyst)
    cases = [
        ({"type": "auth", "token": "not-a-token"}, 4401, 401),
        ({"type": "events", "events": events(1, 1)}, 4401, 401),  # events before any auth
        ({"type": "auth", "token": token(owner.viewer)}, 4403, 403),  # no streams:write
        ({"type": "auth", "token": token(other.admin)}, 4404, 404),  # another tenant's stream is unknown
    ]
    for first, code, status in cases:
        with socket(target, stream_id) as ws:
            ws.send(json.dumps(first))
            got, problem = close_code(ws)
        assert got == code, (first, got)
        assert problem is not None, first
        assert problem["status"] == status, (first, problem)
    assert owner.viewer.streams.get(stream_id)["events_seen"] == 0


def test_websocket_credentials_never_come_from_the_url(tenant: ProvisionedTenant, target: Target) -> None:
    stream_id = new_stream(tenant.analyst)
    with socket(target, stream_id, query=f"?token={token(tenant.analyst)}&access_token={token(tenant.analyst)}") as ws:
        ws.send(json.dumps({"type": "events", "events": events(1, 1)}))
        assert close_code(ws)[0] == 4401
    with socket(target, "str_doesnotexist0000000000000") as ws:
        ws.send(json.dumps({"type": "auth", "token": token(tenant.analyst)}))
        assert close_code(ws)[0] == 4404
