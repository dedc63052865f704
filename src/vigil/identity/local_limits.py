"""Fixed-window counters in this process: what `limits`' `MemoryStorage` with `FixedWindowRateLimiter` gives, for
the request path. That storage starts a timer thread to expire keys on every hit that finds none running — on
the path of every request, several times — while these windows expire lazily and are swept now and then."""

from __future__ import annotations

import threading
import time

from limits import RateLimitItem, WindowStats

SWEEP_EVERY_S = 30.0


class LocalFixedWindow:
    """`hit` and `get_window_stats` as `limits.strategies.FixedWindowRateLimiter` has them: a window opens at its
    first hit and lasts the item's expiry; a hit over the limit is refused and not counted."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, time.time(); hits)
        self._lock = threading.Lock()
        self._next_sweep = time.time() + SWEEP_EVERY_S

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        key = item.key_for(*identifiers)
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            end, count = self._windows.get(key, (0.0, 0))
            if end <= now:
                end, count = now + item.get_expiry(), 0
            allowed = count + cost <= item.amount
            self._windows[key] = (end, count + cost if allowed else count)
            return allowed

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = time.time()
        with self._lock:
            end, count = self._windows.get(item.key_for(*identifiers), (0.0, 0))
        if end <= now:
            return WindowStats(now + item.get_expiry(), item.amount)
        return WindowStats(end, max(0, item.amount - count))

    def _sweep(self, now: float) -> None:
        self._windows = {key: window for key, window in self._windows.items() if window[0] > now}
        self._next_sweep = now + SWEEP_EVERY_S
