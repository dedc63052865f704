"""The server secret that signs tokens and model artifacts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from vigil.config import Settings

MIN_SECRET_BYTES = 32


class MissingSecretError(RuntimeError):
    """Production refuses to start without an explicit secret: a default one would be a shared one."""


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
