"""The SDK's stream client against a real server: the REST calls, the synchronous and the asyncio WebSocket
connections (pipelined, one answer per batch in order), problem answers, and final close codes."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from tests.client.conftest import SdkTenant
from vigil.client import StreamClosed, VigilAPIError, VigilClient

FEATURES = ["a", "b", "c"]


def batches(count: int, size: int = 50, seed: int = 0) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    events = [{"seq": s, "values": {f: rng.gauss(0, 1) for f in FEATURES}} for s in range(1, count * size + 1)]
    return [events[i : i + size] for i in range(0, len(events), size)]


def _stream(client: VigilClient, name: str) -> str:
    return str(client.streams.create(name=name, features=FEATURES, parameters={"seed": 3}, warmup=20)["id"])


def test_rest_sync_and_async_connections_agree(sdk_tenant: SdkTenant) -> None:
    client = sdk_tenant.analyst
    data = batches(12)
    over_http = _stream(client, "http")
    expected = [r for batch in data for r in client.streams.send(over_http, batch)["results"]]

    over_ws = _stream(client, "ws")
    with client.streams.connect(over_ws) as connection:
        first = connection.send(data[0])
        answers = [first, *connection.send_all(data[1:])]
        assert connection.last_seq == data[-1][-1]["seq"]
        assert connection.reconnects == 0
    assert [r for a in answers for r in a["results"]] == expected

    async def run() -> list[dict[str, Any]]:
        async with client.streams.connect_async(_stream(client, "async")) as connection:
            return [answer async for answer in connection.send_all(data)]

    assert [r for a in asyncio.run(run()) for r in a["results"]] == expected
    details = client.streams.get(over_ws)
    assert details["events_seen"] == 600
    assert client.streams.metrics(over_ws)["events_seen"] == 600
    assert client.streams.list()["items"][0]["name"] == "async"
    assert client.streams.update(over_ws, name="renamed")["name"] == "renamed"
    assert isinstance(client.streams.anomalies(over_ws)["items"], list)


def test_http_batches_are_made_idempotent_by_seq_not_by_a_key(sdk_tenant: SdkTenant) -> None:
    """The SDK may send a batch again (a lost answer): the server answers it by seq, so no `Idempotency-Key` (and
    no stored answer) is needed — and the fast encoder still sends a NaN as NaN, for the server to name it."""
    client = sdk_tenant.analyst
    stream_id = _stream(client, "keyless")
    sent: list[httpx.Request] = []
    client._http.event_hooks["request"].append(sent.append)
    data = batches(2)
    first = client.streams.send(stream_id, data[0])
    again = client.streams.send(stream_id, data[0])
    assert [r.headers.get("idempotency-key") for r in sent] == [None, None]
    assert {r["status"] for r in again["results"]} == {"duplicate"}
    assert [r["score"] for r in again["results"]] == [r["score"] for r in first["results"]]
    data[1][2]["values"]["b"] = float("nan")
    with pytest.raises(VigilAPIError) as refused:
        client.streams.send(stream_id, data[1])
    assert (refused.value.body["errors"][0]["seq"], refused.value.body["errors"][0]["type"]) == (53, "finite_number")
    assert client.streams.get(stream_id)["last_seq"] == 50


def test_problems_and_final_closes(sdk_tenant: SdkTenant) -> None:
    client = sdk_tenant.analyst
    stream_id = _stream(client, "bad")
    with client.streams.connect(stream_id) as connection:
        bad = batches(1)[0]
        bad[3]["values"]["a"] = "x"
        with pytest.raises(VigilAPIError) as refused:
            connection.send(bad)
        assert refused.value.status == 422
        assert refused.value.errors[0]["seq"] == 4
        assert connection.send(batches(1)[0])["accepted"] == 50  # the connection goes on
    with pytest.raises(StreamClosed) as closed, sdk_tenant.viewer.streams.connect(stream_id):
        pass
    assert closed.value.code == 4403
    with pytest.raises(StreamClosed) as unknown, client.streams.connect("str_nothing"):
        pass
    assert unknown.value.code == 4404
    client.streams.delete(stream_id)
    with pytest.raises(VigilAPIError) as gone:
        client.streams.get(stream_id)
    assert gone.value.status == 404
