"""When the SDK tries a request again, and how long it waits first.

A request is retried only when doing it twice cannot do the work twice: when the connection was never made, when
the server refused the work (429), or — for idempotent methods and for POSTs carrying an `Idempotency-Key`, which
the client adds itself — when the answer was lost or the server was briefly unavailable (502/503/504). Waits grow
exponentially with full jitter (so many clients do not retry in step), and a server's `Retry-After` is honoured.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REFUSED = frozenset({429})
UNAVAILABLE = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all (1: never retry); waits of up to `backoff_s · 2^n` (at most `max_backoff_s`), or
    what `Retry-After` asks if that is longer (at most `max_retry_after_s`, beyond which the answer is returned)."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 60.0

    def wait_s(self, attempt: int, retry_after: str | None = None) -> float | None:
        """How long to wait before try `attempt + 1` (counting from 0); None: give up."""
        if attempt + 1 >= self.attempts:
            return None
        jitter = random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))
        asked = parse_retry_after(retry_after)
        if asked is None:
            return jitter
        if asked > self.max_retry_after_s:
            return None
        return max(asked, jitter)


NO_RETRY = RetryPolicy(attempts=1)


def may_repeat(method: str, *, keyed: bool) -> bool:
    """Whether the request may be sent again after it may have reached the server."""
    return method.upper() in IDEMPOTENT_METHODS or (method.upper() == "POST" and keyed)


def retryable_status(status: int, method: str, *, keyed: bool) -> bool:
    return status in REFUSED or (status in UNAVAILABLE and may_repeat(method, keyed=keyed))


def retryable_error(exc: httpx.TransportError, method: str, *, keyed: bool) -> bool:
    # A refused or timed-out connect sent nothing: any request may go again.
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) or may_repeat(method, keyed=keyed)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
