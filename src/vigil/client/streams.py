"""Streams in the SDK: the REST calls (`vigil.streams`), and WebSocket connections, synchronous and asyncio, that
resume by themselves after a dropped connection or a server restart.

>>> with VigilClient("http://127.0.0.1:8000") as vigil:  # doctest: +SKIP
...     vigil.login("ana@acme.example", "a long analyst passphrase")
...     stream = vigil.streams.create(name="pumps", features=["rpm", "temp"])
...     with vigil.streams.connect(stream["id"]) as conn:
...         answer = conn.send([{"seq": 1, "values": {"rpm": 1480.0, "temp": 61.2}}])

A connection keeps every batch it sent until the server answers it. When the connection drops (network, server
restart, a client too slow, the tenant's events-per-second limit), it reconnects with back-off, reads the server's
acknowledged `last_seq`, and sends the unanswered batches again: events the server had already committed are
answered as duplicates with their first scores, never learnt twice; the others are scored now. The caller sees one
answer per batch, in order, whatever happened in between.

The connections are `stream_sync.StreamConnection` and `stream_async.AsyncStreamConnection`; what they share (frames,
close codes, resuming) is `stream_protocol`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from vigil.client.stream_async import AsyncStreamConnection
from vigil.client.stream_protocol import API, Events, StreamClosed, dumps
from vigil.client.stream_sync import StreamConnection
from vigil.client.types import JSON

if TYPE_CHECKING:
    from vigil.client.client import VigilClient

__all__ = ["AsyncStreamConnection", "StreamClosed", "StreamConnection", "Streams", "dumps"]


class Streams:
    """`vigil.streams`: create, list, read, rename, delete streams; send events over HTTP; read flagged events,
    drift events and metrics; and open WebSocket connections (`connect`, `connect_async`)."""

    def __init__(self, client: VigilClient) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        features: list[str] | None = None,
        algorithm: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        threshold: Mapping[str, Any] | None = None,
        warmup: int | None = None,
        detector_id: str | None = None,
        **extra: Any,
    ) -> JSON:
        body = {
            "name": name,
            "features": features,
            "algorithm": algorithm,
            "parameters": dict(parameters) if parameters is not None else None,
            "threshold": dict(threshold) if threshold is not None else None,
            "warmup": warmup,
            "detector_id": detector_id,
            **extra,
        }
        return self._client.call("POST", f"{API}/streams", json={k: v for k, v in body.items() if v is not None})

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call("GET", f"{API}/streams", params={"limit": limit, "cursor": cursor})

    def get(self, stream_id: str) -> JSON:
        return self._client.call("GET", f"{API}/streams/{stream_id}")

    def update(self, stream_id: str, **changes: Any) -> JSON:
        return self._client.call("PATCH", f"{API}/streams/{stream_id}", json=changes)

    def delete(self, stream_id: str) -> None:
        self._client.request("DELETE", f"{API}/streams/{stream_id}")

    def send(self, stream_id: str, events: Events) -> JSON:
        """One batch over HTTP: ``{results: [{seq, score, is_anomaly, status}], last_seq, …}``. Sent without an
        `Idempotency-Key`: a retried batch is answered by seq (its events as duplicates, with their first scores),
        never learnt twice, so the server need not store the answer."""
        response = self._client.request(
            "POST",
            f"{API}/streams/{stream_id}/events",
            content=dumps({"events": list(events)}),
            headers={"Content-Type": "application/json"},
            repeatable=True,
        )
        answer: JSON = orjson.loads(response.content)
        return answer

    def anomalies(self, stream_id: str, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call(
            "GET", f"{API}/streams/{stream_id}/anomalies", params={"limit": limit, "cursor": cursor}
        )

    def drifts(self, stream_id: str, *, limit: int | None = None, cursor: str | None = None) -> JSON:
        return self._client.call("GET", f"{API}/streams/{stream_id}/drifts", params={"limit": limit, "cursor": cursor})

    def metrics(self, stream_id: str) -> JSON:
        return self._client.call("GET", f"{API}/streams/{stream_id}/metrics")

    def connect(self, stream_id: str, **options: Any) -> StreamConnection:
        """A synchronous WebSocket connection (a context manager); see `StreamConnection`."""
        return StreamConnection(self._client, stream_id, **options)

    def connect_async(self, stream_id: str, **options: Any) -> AsyncStreamConnection:
        """An asyncio WebSocket connection (`async with`); see `AsyncStreamConnection`."""
        return AsyncStreamConnection(self._client, stream_id, **options)
