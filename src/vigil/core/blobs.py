"""The blob store: tenant-prefixed files on local disk, written atomically.

Keys are built here from tenant and object ids (never from user input), so a key cannot escape its tenant.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from vigil.core.database import TenantScope

_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(scope: TenantScope, *parts: str) -> str:
        for part in (scope.tenant_id, *parts):
            if not _SAFE.match(part) or part in (".", ".."):
                raise ValueError(f"unsafe blob key part {part!r}")
        return "/".join(("tenants", scope.tenant_id, *parts))

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("blob key escapes the store")
        return path

    def put_bytes(self, key: str, data: bytes) -> int:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(data)

    def put_file(self, key: str, source: Path) -> int:
        """Moves a finished local file into the store (same filesystem: an atomic rename)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = source.stat().st_size
        shutil.move(source, target)
        return size

    def staging_path(self, scope: TenantScope) -> Path:
        """A temporary file inside the store, so that `put_file` is a rename."""
        directory = self.path(self.key(scope, "staging"))
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="up-")
        os.close(fd)
        return Path(tmp)

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def ping(self) -> None:
        probe = self.root / ".ready-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
