"""Opaque credentials: refresh tokens and API keys. High-entropy random strings, stored only as SHA-256 hashes
(a slow password hash adds nothing to 256 random bits), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

REFRESH_PREFIX = "vrt_"
API_KEY_PREFIX = "vgl_"
# vgl_<12-character public id>_<43-character secret>: the public part finds the key and names it in lists.
_API_KEY_SHAPE = re.compile(r"vgl_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: str  # shown once
    prefix: str  # public: stored, listed, and what finds the key
    key_hash: str


def new_api_key() -> NewApiKey:
    public = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    key = f"{API_KEY_PREFIX}{public}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=f"{API_KEY_PREFIX}{public}", key_hash=hash_secret(key))


def api_key_prefix(candidate: str) -> str | None:
    """The public prefix of something shaped like an API key, else None (then it is not one)."""
    match = _API_KEY_SHAPE.fullmatch(candidate)
    return f"{API_KEY_PREFIX}{match.group(1)}" if match else None


def looks_like_api_key(candidate: str) -> bool:
    return candidate.startswith(API_KEY_PREFIX)
