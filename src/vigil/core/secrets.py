"""The server secret, and the keys derived from it: one secret to configure, a separate key per use.

Access tokens, model artifacts (and stream states) and login-throttle subjects are keyed by HKDF-SHA256 (RFC 5869)
derivations of `VIGIL_SECRET_KEY` with a distinct `info` each, never by the secret's own bytes: a key that leaks
from one use (a JWT brute-forced offline, a throttle hash) says nothing about the others. The model-export signing
key was already its own derivation (`ml.exchange.signing_seed`) and is unchanged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vigil.config import Settings

MIN_SECRET_BYTES = 32


class MissingSecretError(RuntimeError):
    """Production refuses to start without an explicit secret: a default one would be a shared one."""


ACCESS_TOKENS = "access-tokens"
ARTIFACTS = "artifacts"
LOGIN_THROTTLE = "login-throttle"


def derive_key(secret: bytes, purpose: str) -> bytes:
    """The 32-byte key for one `purpose`, derived from the server secret (HKDF-SHA256, no salt: the secret is
    already uniformly random or long; `info` names the purpose and a version)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"vigil/{purpose}/v1".encode()).derive(secret)


def resolve_secret_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
        if len(key) < MIN_SECRET_BYTES:
            raise MissingSecretError(f"VIGIL_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long.")
        return key
    if settings.environment == "production":
        raise MissingSecretError("VIGIL_SECRET_KEY is required when VIGIL_ENVIRONMENT=production.")
    # Embedded/dev mode: one random secret per data directory, kept so tokens and models survive a restart.
    path = settings.data_dir / "secret.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return Path(path).read_text().strip().encode()
