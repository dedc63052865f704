"""The stream WebSocket: authentication (first frame, API key, subprotocol — never the URL), frames, problem
frames that keep the connection usable, close codes, and the same scores as over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, make_settings
from tests.streams.conftest import create_stream, make_events, send
from vigil.app import create_app


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].split(" ", 1)[1]


def connect(client: TestClient, stream_id: str, **kwargs: Any) -> Any:
    return client.websocket_connect(f"/api/v1/streams/{stream_id}/ws", **kwargs)


def closed_with(ws: Any) -> tuple[int, dict[str, Any] | None]:
    """Reads to the end: the close code, and the problem frame sent before it (if any)."""
    problem = None
    try:
        while True:
            frame = ws.receive_json()
            if frame["type"] == "problem":
                problem = frame["problem"]
    except WebSocketDisconnect as closed:
        return closed.code, problem


def test_events_in_scores_out_like_http(client: TestClient, tenant: Tenant) -> None:
    over_ws = create_stream(client, tenant.analyst)
    over_http = create_stream(client, tenant.analyst, name="http")
    events = make_events(150, anomalies=(90, 120))
    expected = send(client, over_http["id"], events, tenant.analyst)["results"]
    with connect(client, over_ws["id"]) as ws:
        ws.send_json({"type": "auth", "token": token_of(tenant.analyst)})
        hello = ws.receive_json()
        assert hello["type"] == "ack"
        assert hello["last_seq"] is None
        assert hello["max_in_flight"] >= 1
        for start in range(0, 150, 50):
            ws.send_json({"type": "events", "id": f"b{start}", "events": events[start : start + 50]})
        got = [ws.receive_json() for _ in range(3)]
        assert [f["type"] for f in got] == ["scores"] * 3
        assert [f["id"] for f in got] == ["b0", "b50", "b100"]
        assert [r for f in got for r in f["results"]] == expected
        assert got[-1]["last_seq"] == 150
        # A resend of acknowledged events: answered as before, not learnt again.
        ws.send_json({"type": "events", "events": events[140:]})
        again = ws.receive_json()
        assert again["accepted"] == 0
        assert again["results"] == [{**r, "status": "duplicate"} for r in expected[140:]]
        ws.send_json({"type": "ping", "id": "p1"})
        assert ws.receive_json() == {"type": "pong", "id": "p1"}
        ws.send_json({"type": "sync"})
        assert ws.receive_json()["last_seq"] == 150
    assert client.get(f"/api/v1/streams/{over_ws['id']}", headers=tenant.viewer).json()["events_seen"] == 150


def test_pipelined_frames_keep_their_order_and_their_own_answers(client: TestClient, tenant: Tenant) -> None:
    # Frames read while a batch is applied are applied together (one commit): each still gets its own answer, in
    # the order sent, a refused one its problem, and a ping between them its pong in its turn.
    over_ws = create_stream(client, tenant.analyst)
    over_http = create_stream(client, tenant.analyst, name="http")
    events = make_events(200)
    bad = make_events(5, start=101)
    bad[2]["values"]["f1"] = None
    frames: list[dict[str, Any]] = [
        {"type": "events", "id": "a", "events": events[:50]},
        {"type": "events", "id": "b", "events": events[50:100]},
        {"type": "events", "id": "bad", "events": bad},
        {"type": "ping", "id": "p"},
        {"type": "events", "id": "c", "events": events[90:150]},
        {"type": "events", "id": "d", "events": events[150:]},
    ]
    with connect(client, over_ws["id"]) as ws:
        ws.send_json({"type": "auth", "token": token_of(tenant.analyst)})
        ws.receive_json()
        for frame in frames:
            ws.send_json(frame)
        got = [ws.receive_json() for _ in frames]
    assert [(f["type"], f["id"]) for f in got] == [
        ("scores", "a"),
        ("scores", "b"),
        ("problem", "bad"),
        ("pong", "p"),
        ("scores", "c"),
        ("scores", "d"),
    ]
    assert got[2]["problem"]["errors"][0]["seq"] == 103
    expected = [send(client, over_http["id"], b, tenant.analyst) for b in (events[:50], events[50:100])]
    expected += [send(client, over_http["id"], b, tenant.analyst) for b in (events[90:150], events[150:])]
    assert [f["results"] for f in got if f["type"] == "scores"] == [e["results"] for e in expected]
    assert client.get(f"/api/v1/streams/{over_ws['id']}", headers=tenant.viewer).json()["events_seen"] == 200


def test_bad_frames_get_problem_frames_and_the_connection_goes_on(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    with connect(client, stream["id"]) as ws:
        ws.send_json({"type": "auth", "token": token_of(tenant.analyst)})
        ws.receive_json()
        bad = make_events(3)
        bad[2]["values"]["f1"] = "high"
        ws.send_json({"type": "events", "id": "bad", "events": bad})
        problem = ws.receive_json()
        assert problem["type"] == "problem"
        assert problem["id"] == "bad"
        assert problem["problem"]["status"] == 422
        assert problem["problem"]["type"] == "/problems/invalid-input"
        assert problem["problem"]["errors"][0]["seq"] == 3
        assert problem["problem"]["errors"][0]["field"] == "f1"
        ws.send_text("{not json")
        assert ws.receive_json()["problem"]["status"] == 400
        ws.send_json({"type": "dance"})
        assert ws.receive_json()["problem"]["status"] == 422
        ws.send_json({"type": "events", "events": make_events(2000)})
        too_many = ws.receive_json()["problem"]
        assert too_many["status"] == 413
        assert too_many["limit_events"] == 1000
        ws.send_text("[" + " " * 1024 * 1024 + "]")
        assert ws.receive_json()["problem"] == {
            "type": "/problems/payload-too-large",
            "title": "Payload too large",
            "status": 413,
            "detail": "A frame holds at most 1048576 bytes.",
            "request_id": problem["problem"]["request_id"],
            "limit_bytes": 1048576,
        }
        ws.send_json({"type": "events", "events": make_events(3)})
        assert ws.receive_json()["last_seq"] == 3  # nothing of the refused batches was learnt; this one was


@pytest.mark.parametrize("how", ["api_key", "subprotocol"])
def test_other_ways_to_authenticate(client: TestClient, tenant: Tenant, how: str) -> None:
    stream = create_stream(client, tenant.analyst)
    key = client.post(
        "/api/v1/api-keys", json={"name": "sensor", "scopes": ["streams:write"]}, headers=tenant.admin
    ).json()["key"]
    if how == "api_key":
        with connect(client, stream["id"]) as ws:
            ws.send_json({"type": "auth", "api_key": key})
            assert ws.receive_json()["type"] == "ack"
            ws.send_json({"type": "events", "events": make_events(5)})
            assert ws.receive_json()["accepted"] == 5
        return
    with connect(client, stream["id"], subprotocols=["vigil.v1", f"vigil.bearer.{key}"]) as ws:
        assert ws.accepted_subprotocol == "vigil.v1"  # the credential is never echoed
        assert ws.receive_json()["type"] == "ack"
        ws.send_json({"type": "events", "events": make_events(5)})
        assert ws.receive_json()["accepted"] == 5


def test_refusals_close_with_documented_codes(client: TestClient, make_tenant: Any) -> None:
    a, b = make_tenant(), make_tenant()
    stream = create_stream(client, a.analyst)
    cases = [
        ({"type": "auth", "token": "not-a-token"}, 4401, 401),
        ({"type": "events", "events": make_events(1)}, 4401, 401),  # no auth frame first
        ({"type": "auth", "token": token_of(a.viewer)}, 4403, 403),
        ({"type": "auth", "token": token_of(b.admin)}, 4404, 404),  # another tenant's stream: unknown
    ]
    for first, code, status in cases:
        with connect(client, stream["id"]) as ws:
            ws.send_json(first)
            got_code, problem = closed_with(ws)
        assert (got_code, problem and problem["status"]) == (code, status), first
    with connect(client, "str_doesnotexist") as ws:
        ws.send_json({"type": "auth", "token": token_of(a.analyst)})
        assert closed_with(ws)[0] == 4404
    # A token in the URL is not a credential.
    url = f"/api/v1/streams/{stream['id']}/ws?token={token_of(a.analyst)}&access_token={token_of(a.analyst)}"
    with client.websocket_connect(url) as ws:
        ws.send_json({"type": "events", "events": make_events(1)})
        assert closed_with(ws)[0] == 4401
    assert client.get(f"/api/v1/streams/{stream['id']}", headers=a.viewer).json()["events_seen"] == 0


def test_auth_timeout_and_rate_limit_close_the_socket(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d", stream_ws_auth_timeout_s=0.5)
    with TestClient(create_app(settings, run_workers=False)) as client:
        root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        stream = create_stream(client, root)
        with connect(client, stream["id"]) as ws:
            assert closed_with(ws)[0] == 4401  # said nothing in time
        tenant_id = client.get("/api/v1/me", headers=root).json()["tenant"]["id"]
        limits = {"quotas": {"stream_events_per_second": 50}}
        assert client.patch(f"/api/v1/tenants/{tenant_id}", json=limits, headers=root).status_code == 200
        with connect(client, stream["id"]) as ws:
            ws.send_json({"type": "auth", "token": token_of(root)})
            ws.receive_json()
            for start in range(1, 200, 40):
                ws.send_json({"type": "events", "events": make_events(40, start=start)})
            code, problem = closed_with(ws)
        assert code == 4429
        assert problem is not None
        assert problem["quota"] == "stream_events_per_second"
        assert client.get(f"/api/v1/streams/{stream['id']}", headers=root).json()["events_seen"] < 200
