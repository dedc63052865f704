"""Streaming detection as a monitoring team runs it: create a stream with an online detector, send a synthetic
multivariate stream (planted point anomalies, a concept drift half way) in batches — over HTTP, and over the
WebSocket with the SDK — and check what the platform found: recall on the planted anomalies at a bounded
false-positive rate after warm-up, the drift reported soon after it starts, the flagged events kept with their
values, and the stream's counters and metrics."""

from __future__ import annotations

import time
from typing import Any

import pytest

from vigil.client import VigilClient
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant, Recorder
from vigil_validation.streamdata import SyntheticStream, measure, synthetic_stream


def _create(client: VigilClient, stream: SyntheticStream, config: ValidationConfig, name: str) -> dict[str, Any]:
    settings = config.streaming
    created = client.streams.create(
        name=name,
        algorithm="hst",
        features=stream.features,
        parameters={"seed": 42},
        warmup=settings.warmup,
        # Point anomalies are rare: learning them costs nothing, and learning everything adapts to the drift.
        threshold={"kind": "quantile", "q": settings.quantile, "protect": False},
    )
    assert created["algorithm"] == "hst"
    assert created["features"] == stream.features
    assert created["last_seq"] is None
    assert created["events_seen"] == 0
    return created


def _check(
    client: VigilClient,
    stream_id: str,
    stream: SyntheticStream,
    results: list[dict[str, Any]],
    config: ValidationConfig,
    record: Recorder,
    how: str,
) -> None:
    settings = config.streaming
    assert [r["seq"] for r in results] == [e["seq"] for e in stream.events], "every event answered once, in order"
    assert {r["status"] for r in results} == {"new"}
    flags = {r["seq"]: bool(r["is_anomaly"]) for r in results}
    found = measure(stream, flags, warmup=settings.warmup)
    record(f"stream_recall_{how}", found.recall)
    record(f"stream_false_positive_rate_{how}", found.false_positive_rate)
    assert found.recall >= settings.min_recall, f"recall {found.recall:.3f} < {settings.min_recall}"
    assert found.false_positive_rate <= settings.max_false_positive_rate, (
        f"false-positive rate {found.false_positive_rate:.3f} > {settings.max_false_positive_rate}"
    )
    assert not any(flags[seq] for seq in range(1, settings.warmup + 1)), "an event was flagged during warm-up"

    details = client.streams.get(stream_id)
    drifts = [d["seq"] for d in client.streams.drifts(stream_id, limit=500)["items"]]
    after = sorted(seq for seq in drifts if seq >= stream.drift_seq)
    assert after, f"the drift at seq {stream.drift_seq} was not reported (drift events at {drifts})"
    delay = after[0] - stream.drift_seq
    record(f"stream_drift_delay_{how}", delay, "events")
    record(f"stream_false_drifts_{how}", len(drifts) - len(after))
    assert delay <= settings.max_drift_delay_events, f"drift reported {delay} events after it started"
    assert details["drift_count"] == len(drifts)
    assert {d["seq"] for d in details["drift_events"]} <= set(drifts)
    assert details["events_seen"] == len(stream.events)
    assert details["last_seq"] == stream.events[-1]["seq"]
    assert details["anomaly_count"] == len(found.flagged)
    assert details["last_snapshot"] is not None

    kept: dict[int, dict[str, Any]] = {}
    cursor = None
    while True:
        page = client.streams.anomalies(stream_id, limit=200, cursor=cursor)
        kept.update({a["seq"]: a for a in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(kept) == set(found.flagged), "the flagged events kept are not the ones answered"
    by_seq = {e["seq"]: e["values"] for e in stream.events}
    assert all(a["values"] == pytest.approx(by_seq[seq]) for seq, a in kept.items())
    metrics = client.streams.metrics(stream_id)
    assert metrics["events_seen"] == len(stream.events)
    assert metrics["anomalies"] == len(found.flagged)
    assert metrics["drift_events"] == len(drifts)
    assert metrics["events_per_second"] > 0


@pytest.mark.smoke
def test_streaming_over_http(tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder) -> None:
    stream = synthetic_stream(validation_config.streaming, seed=1)
    client = tenant.analyst
    created = _create(client, stream, validation_config, "http sensors")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for batch in stream.batches(validation_config.streaming.batch_size):
        answer = client.streams.send(created["id"], batch)
        assert answer["last_seq"] == batch[-1]["seq"]
        assert answer["accepted"] == len(batch)
        results += answer["results"]
    record("stream_http_events_per_s", len(results) / (time.perf_counter() - started), "events/s")
    _check(client, created["id"], stream, results, validation_config, record, "http")


def test_streaming_over_websocket(
    tenant: ProvisionedTenant, validation_config: ValidationConfig, record: Recorder
) -> None:
    stream = synthetic_stream(validation_config.streaming, seed=2)
    client = tenant.analyst
    created = _create(client, stream, validation_config, "websocket sensors")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with client.streams.connect(created["id"]) as connection:
        for answer in connection.send_all(stream.batches(validation_config.streaming.batch_size)):
            assert answer["type"] == "scores"
            results += answer["results"]
        assert connection.last_seq == stream.events[-1]["seq"]
    record("stream_websocket_events_per_s", len(results) / (time.perf_counter() - started), "events/s")
    _check(client, created["id"], stream, results, validation_config, record, "websocket")
