"""Streaming throughput and batch latency: the streaming workflow's synthetic stream sent as fast as one client can,
in batches over HTTP (one request after the other) and over one WebSocket (pipelined up to the server's in-flight
bound). Events per second and the per-batch latency percentiles go to the reports; every batch must be answered,
in order, each event once (`benchmarks/bench_stream.py` sets these figures against River's own loop)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from vigil.client import VigilClient
from vigil_validation.config import ValidationConfig
from vigil_validation.load.histogram import LatencyStats
from vigil_validation.plugin import ProvisionedTenant, Recorder
from vigil_validation.streamdata import SyntheticStream, synthetic_stream


def _stream(client: VigilClient, stream: SyntheticStream, name: str) -> str:
    created = client.streams.create(name=name, features=stream.features, parameters={"seed": 7}, warmup=500)
    return str(created["id"])


def _report(record: Recorder, how: str, events: int, seconds: float, latency: LatencyStats) -> None:
    record(f"stream {how} throughput", events / seconds, "events/s")
    for name, percentile in (("p50", 50.0), ("p99", 99.0)):
        record(f"stream {how} batch latency {name}", latency.percentile_ms(percentile), "ms")
    record(f"stream {how} batch latency max", latency.max_ms, "ms")


def _check(stream: SyntheticStream, results: list[dict[str, Any]]) -> None:
    assert [r["seq"] for r in results] == [e["seq"] for e in stream.events], "every event answered once, in order"
    assert {r["status"] for r in results} == {"new"}


def test_stream_throughput_over_http(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    stream = synthetic_stream(validation_config.streaming, seed=3)
    client = tenant.analyst
    stream_id = _stream(client, stream, "throughput http")
    latency, results = LatencyStats(), []
    started = time.perf_counter()
    for batch in stream.batches(validation_config.streaming.batch_size):
        sent = time.perf_counter()
        answer = client.streams.send(stream_id, batch)
        latency.record(time.perf_counter() - sent)
        results += answer["results"]
    _report(record, "http", len(results), time.perf_counter() - started, latency)
    _check(stream, results)
    assert client.streams.get(stream_id)["events_seen"] == len(stream.events)


def test_stream_throughput_over_websocket(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    stream = synthetic_stream(validation_config.streaming, seed=4)
    client = tenant.analyst
    stream_id = _stream(client, stream, "throughput websocket")
    latency, results, sent_at = LatencyStats(), [], []

    def timed() -> Iterator[list[dict[str, Any]]]:
        for batch in stream.batches(validation_config.streaming.batch_size):
            sent_at.append(time.perf_counter())
            yield batch

    started = time.perf_counter()
    with client.streams.connect(stream_id) as connection:
        for index, answer in enumerate(connection.send_all(timed())):
            # From the batch's send to its answer: a pipelined batch also waits for those ahead of it.
            latency.record(time.perf_counter() - sent_at[index])
            results += answer["results"]
        assert connection.reconnects == 0
    _report(record, "websocket", len(results), time.perf_counter() - started, latency)
    _check(stream, results)
    assert client.streams.get(stream_id)["events_seen"] == len(stream.events)
