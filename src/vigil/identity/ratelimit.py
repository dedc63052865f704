"""Rate limits per API key, per user and per client address (the `limits` library): counters in Redis when
`VIGIL_REDIS_URL` is set, so every server shares them, in memory otherwise.

A Redis outage must not take the API down with it: the limiter then counts in memory on this server (logged) and
tries Redis again after `rate_limit_redis_retry_s` — it fails open to local limits, never closed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from vigil.config import Settings
from vigil.identity.local_limits import LocalFixedWindow

log = logging.getLogger("vigil.ratelimit")
REDIS_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the window resets
    window_s: int

    def headers(self) -> dict[str, str]:
        """IETF draft `RateLimit-*` fields (draft-ietf-httpapi-ratelimit-headers)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": f"{self.limit};w={self.window_s}",
        }


def per_seconds(requests: int, window_s: int) -> RateLimitItem:
    return RateLimitItemPerSecond(requests, window_s)


class QuotaWindow(RateLimitItemPerSecond):
    """A tenant quota's fixed window. `limits` keys a counter by its limit too, so changing a tenant's quota would
    start a fresh count mid-window (raising it from 1,000 to 1,001 would hand out another 1,001 calls); this
    window's counter is keyed by the window alone, so a new limit applies to the calls already counted."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return "/".join([self.namespace, "quota", *(str(k) for k in identifiers), str(self.multiples), "window"])


def per_hour(requests: int) -> RateLimitItem:
    """A tenant's hourly quota (its counter survives a change of the quota)."""
    return QuotaWindow(requests, 3600)


def quota_per_seconds(requests: int, window_s: int) -> RateLimitItem:
    """A tenant's quota over `window_s` seconds (its counter survives a change of the quota)."""
    return QuotaWindow(requests, window_s)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.prefix = settings.rate_limit_key_prefix
        self.retry_s = settings.rate_limit_redis_retry_s
        self.per_user = parse(settings.rate_limit_per_user)
        self.per_api_key = parse(settings.rate_limit_per_api_key)
        self.per_ip = parse(settings.rate_limit_per_ip)
        self.login_per_ip = parse(settings.rate_limit_login_per_ip)
        self._local = LocalFixedWindow()
        self._shared: FixedWindowRateLimiter | None = None
        self._redis_url = settings.redis_url
        self._down_until = 0.0
        self._lock = threading.Lock()
        if settings.redis_url:
            storage = storage_from_string(
                settings.redis_url,
                key_prefix=f"{self.prefix}-limits",
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            if not isinstance(storage, Storage):
                raise ValueError(f"VIGIL_REDIS_URL must be a synchronous redis:// URL, not {settings.redis_url!r}")
            self._shared = FixedWindowRateLimiter(storage)

    @property
    def backend(self) -> str:
        return "redis" if self._shared is not None else "memory"

    @property
    def is_local(self) -> bool:
        """Counting does no I/O (no Redis configured): safe to call on the event loop."""
        return self._shared is None

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> Decision | None:
        """Counts `cost` (one request, or a batch's events) against `item` for the identifiers; None when rate
        limiting is off. A refused hit counts nothing."""
        if not self.enabled:
            return None
        limiter = self._limiter()
        try:
            allowed = limiter.hit(item, self.prefix, *identifiers, cost=cost)
            stats = limiter.get_window_stats(item, self.prefix, *identifiers)
        except Exception as exc:  # any storage failure: fail open to local counting, never to an error
            if limiter is self._local:
                raise
            self._mark_down(exc)
            limiter = self._local
            allowed = limiter.hit(item, self.prefix, *identifiers, cost=cost)
            stats = limiter.get_window_stats(item, self.prefix, *identifiers)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        if limiter is not self._local:  # Redis's TTL is whole seconds, rounded: a second more, never past the window
            reset = min(reset + 1, item.get_expiry())
        return Decision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_s=max(1, reset) if not allowed else reset,
            window_s=item.get_expiry(),
        )

    def used(self, item: RateLimitItem, *identifiers: str) -> int:
        """How many requests the current window of `item` has counted (0 when off or unknown)."""
        if not self.enabled:
            return 0
        try:
            stats = self._limiter().get_window_stats(item, self.prefix, *identifiers)
        except Exception:  # a usage report is no reason to fail
            return 0
        return max(0, item.amount - stats.remaining)

    def _limiter(self) -> FixedWindowRateLimiter | LocalFixedWindow:
        if self._shared is None or time.monotonic() < self._down_until:
            return self._local
        return self._shared

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_until == 0.0 or time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + self.retry_s
        if first:
            log.error(
                "rate-limit storage unavailable (%s); counting locally for %.0fs", type(exc).__name__, self.retry_s
            )
