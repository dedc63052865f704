"""Stream fixtures: seeded multivariate events with planted anomalies, and helpers to create streams and send."""

from __future__ import annotations

import random
from typing import Any

from fastapi.testclient import TestClient

FEATURES = ["f0", "f1", "f2", "f3"]


def make_events(
    n: int, *, start: int = 1, seed: int = 0, features: list[str] = FEATURES, anomalies: tuple[int, ...] = ()
) -> list[dict[str, Any]]:
    """`n` events with seqs from `start`; the seqs in `anomalies` are planted 8 units out on every feature."""
    rng = random.Random(seed)
    events = []
    for seq in range(start, start + n):
        far = seq in anomalies
        events.append({"seq": seq, "values": {f: (8.0 if far else 0.0) + rng.gauss(0.0, 1.0) for f in features}})
    return events


def create_stream(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "sensors",
        "algorithm": "hst",
        "parameters": {"seed": 11, "window_size": 50},
        "features": FEATURES,
        "warmup": 50,
        **overrides,
    }
    response = client.post("/api/v1/streams", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def send(client: TestClient, stream_id: str, events: list[dict[str, Any]], headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(f"/api/v1/streams/{stream_id}/events", json={"events": events}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())
