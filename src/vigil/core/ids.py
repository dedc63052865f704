"""Opaque, sortable identifiers: a type prefix and a ULID (time-ordered, so keyset pagination is stable)."""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as ``ds_01j9z...``: ids made later in this process sort after earlier ones.

    >>> a, b = new_id("ds"), new_id("ds")
    >>> a < b and a.startswith("ds_") and len(a) == 29
    True
    """
    global _last  # noqa: PLW0603 - a per-process monotonic clock is the point
    with _lock:
        millis = time.time_ns() // 1_000_000
        last_ms, last_rand = _last
        rand = last_rand + 1 if millis <= last_ms else secrets.randbits(79)
        millis = max(millis, last_ms)
        _last = (millis, rand)
    return f"{prefix}_{_encode(millis, 10)}{_encode(rand, 16)}"
