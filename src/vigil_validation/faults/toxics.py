"""The faults a proxy link can suffer, as plain values (toxiproxy's vocabulary): the link reads its current toxics
for every chunk it forwards, so setting or clearing one takes effect on live connections at once."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """Each chunk waits `ms` ± `jitter_ms` (uniform) before it is forwarded, in both directions, order kept."""

    ms: float
    jitter_ms: float = 0.0

    def delay_s(self, rng: random.Random) -> float:
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.ms + jitter) / 1000.0


@dataclass(frozen=True)
class Bandwidth:
    """At most `bytes_per_s` in each direction of each connection."""

    bytes_per_s: int

    def __post_init__(self) -> None:
        if self.bytes_per_s <= 0:
            raise ValueError("bandwidth must be positive (use Blackhole for none)")


@dataclass(frozen=True)
class Blackhole:
    """Connections are accepted (new ones too) but nothing is forwarded either way: a silent partition, the
    fault that makes clients without timeouts hang."""


@dataclass(frozen=True)
class ResetPeer:
    """Every live connection is reset (TCP RST) at once, and each new one right after it is accepted."""


@dataclass(frozen=True)
class SlowClose:
    """When one side closes, the other side's close is delayed by `delay_s` (a peer slow to notice)."""

    delay_s: float


@dataclass(frozen=True)
class Down:
    """The link refuses connections (its listening socket is closed) and cuts the live ones: the server is gone."""


Toxic = Latency | Bandwidth | Blackhole | ResetPeer | SlowClose | Down
