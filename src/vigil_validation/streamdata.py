"""A synthetic event stream whose answers are known: Gaussian events, planted point anomalies far out on every
feature, and a concept drift half way (half the features move); with the measures the streaming workflow needs."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from vigil_validation.config import StreamingConfig


@dataclass(frozen=True)
class SyntheticStream:
    features: list[str]
    events: list[dict[str, Any]]  # {seq, values}
    planted: frozenset[int]  # seqs of the planted anomalies
    drift_seq: int  # the first seq after the drift

    def batches(self, size: int) -> list[list[dict[str, Any]]]:
        return [self.events[i : i + size] for i in range(0, len(self.events), size)]


def synthetic_stream(config: StreamingConfig, *, seed: int = 0) -> SyntheticStream:
    rng = random.Random(seed)
    features = [f"sensor_{i}" for i in range(config.features)]
    drift_seq = config.events // 2 + 1
    events, planted = [], set()
    for seq in range(1, config.events + 1):
        shift = config.drift_shift if seq >= drift_seq else 0.0
        values = {f: rng.gauss(0.0, 1.0) + (shift if i < len(features) // 2 else 0.0) for i, f in enumerate(features)}
        if seq > config.warmup + 100 and rng.random() < config.anomaly_rate:
            planted.add(seq)
            values = {f: v + rng.choice((-1.0, 1.0)) * rng.uniform(6.0, 8.0) for f, v in values.items()}
        events.append({"seq": seq, "values": values})
    return SyntheticStream(features=features, events=events, planted=frozenset(planted), drift_seq=drift_seq)


@dataclass(frozen=True)
class Detection:
    recall: float
    false_positive_rate: float
    flagged: frozenset[int]


def measure(stream: SyntheticStream, flags: dict[int, bool], *, warmup: int) -> Detection:
    """Recall on the planted anomalies and the false-positive rate on the other events, both after warm-up."""
    scored = [seq for seq in flags if seq > warmup]
    planted = [seq for seq in scored if seq in stream.planted]
    normal = [seq for seq in scored if seq not in stream.planted]
    return Detection(
        recall=sum(flags[s] for s in planted) / len(planted) if planted else 0.0,
        false_positive_rate=sum(flags[s] for s in normal) / len(normal) if normal else 0.0,
        flagged=frozenset(s for s, flag in flags.items() if flag),
    )
