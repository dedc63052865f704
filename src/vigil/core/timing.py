"""Named phases of one request's work, timed and rendered as a `Server-Timing` header (W3C Server Timing), so a
client sees where the time of a slow request went without access to the server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

HEADER = "Server-Timing"


class PhaseTimer:
    """Collects `(phase, seconds)` in order; a phase entered twice adds up."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def header(self) -> str:
        """`auth;dur=0.04, model;dur=0.21, score;dur=6.90` (milliseconds, as the specification has it).

        >>> timer = PhaseTimer()
        >>> timer.add("score", 0.0069)
        >>> timer.header()
        'score;dur=6.900'
        """
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in self.phases.items())
