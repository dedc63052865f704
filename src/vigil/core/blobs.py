"""The blob store: tenant-prefixed objects in a local directory or an S3-compatible bucket, through `pyarrow.fs`.

Keys are built here from tenant and object ids (never from user input), so a key cannot escape its tenant.
Writes are all-or-nothing: a local file is written beside its target and renamed; an object appears in S3 only
when its upload completes (a failed upload is deleted again). Blobs are immutable once written (every key names a
new id), so readers that need a file on disk (Parquet scans) get a local copy that stays valid: the file itself
for a local store, a cached download for object storage.

An object store that cannot be reached raises `BlobStoreUnavailable` (503 with `Retry-After`), never a half-made
resource: callers record rows only after the bytes are stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from vigil.config import Settings
from vigil.core.database import TenantScope
from vigil.core.errors import ServiceUnavailable

log = logging.getLogger("vigil.blobs")
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
_CHUNK = 1024 * 1024
# A cached copy used this recently is never evicted: a reader may be about to open it.
_CACHE_GRACE_S = 120.0


class BlobStoreUnavailable(ServiceUnavailable):
    """The object store did not answer (or refused us): nothing was written."""

    def __init__(self, operation: str, exc: BaseException) -> None:
        super().__init__(
            f"The object store is unavailable ({operation}: {type(exc).__name__}); nothing was stored. Retry later.",
            retry_after_s=5,
            dependency="object_store",
        )


@dataclass(frozen=True)
class S3Options:
    bucket_path: str  # bucket/prefix, no slashes around it
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    connect_timeout_s: float = 3.0
    request_timeout_s: float = 30.0

    def filesystem(self) -> pafs.S3FileSystem:
        scheme, endpoint = None, None
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            scheme, endpoint = parts.scheme or "https", parts.netloc or parts.path
        return pafs.S3FileSystem(
            access_key=self.access_key_id,
            secret_key=self.secret_access_key,
            region=self.region,
            scheme=scheme,
            endpoint_override=endpoint,
            connect_timeout=self.connect_timeout_s,
            request_timeout=self.request_timeout_s,
            # One retry: an unreachable store must answer 503 in seconds, not after minutes of back-off.
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=2),
        )


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: float  # Unix time of the write (the upload's completion in S3)


class BlobStore:
    def __init__(
        self,
        root: Path | None = None,
        *,
        s3: S3Options | None = None,
        work_dir: Path | None = None,
        cache_bytes: int = 2 * 1024**3,
    ) -> None:
        if (root is None) == (s3 is None):
            raise ValueError("a blob store is either a local root or an S3 location")
        self.root = root.resolve() if root is not None else None
        self.s3 = s3
        # Object storage needs local room: uploads are staged here, reads are cached here.
        self.work_dir = (work_dir or Path(tempfile.gettempdir()) / "vigil-blobs").resolve()
        self.cache_bytes = cache_bytes
        self._fs: pafs.FileSystem | None = None
        self._fs_pid = 0
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        location = settings.blob_location
        work_dir = settings.blob_cache_dir
        if location.startswith("s3://"):
            parts = urlsplit(location)
            bucket_path = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
            secret = settings.blob_s3_secret_access_key
            options = S3Options(
                bucket_path=bucket_path,
                endpoint_url=settings.blob_s3_endpoint_url,
                region=settings.blob_s3_region,
                access_key_id=settings.blob_s3_access_key_id,
                secret_access_key=secret.get_secret_value() if secret else None,
                connect_timeout_s=settings.blob_connect_timeout_s,
                request_timeout_s=settings.blob_request_timeout_s,
            )
            return cls(s3=options, work_dir=work_dir, cache_bytes=settings.blob_cache_bytes)
        return cls(Path(location.removeprefix("file://")), work_dir=work_dir, cache_bytes=settings.blob_cache_bytes)

    @property
    def description(self) -> str:
        return f"s3://{self.s3.bucket_path}" if self.s3 is not None else str(self.root)

    # -- keys -----------------------------------------------------------------------------------------------
    @staticmethod
    def key(scope: TenantScope, *parts: str) -> str:
        for part in (scope.tenant_id, *parts):
            if not _SAFE.match(part) or part in (".", ".."):
                raise ValueError(f"unsafe blob key part {part!r}")
        return "/".join(("tenants", scope.tenant_id, *parts))

    def path(self, key: str) -> Path:
        """The file of `key` in a local store (tests and local tooling; readers use `local_path`)."""
        if self.root is None:
            raise ValueError("an object store has no local paths; use local_path()")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("blob key escapes the store")
        return path

    def _location(self, key: str) -> str:
        if self.s3 is None:
            return str(self.path(key))
        if ".." in key.split("/"):
            raise ValueError("blob key escapes the store")
        return f"{self.s3.bucket_path}/{key}"

    def _filesystem(self) -> pafs.FileSystem:
        # Made per process: the AWS SDK's connections do not survive a fork (Celery's prefork children).
        if self._fs is None or self._fs_pid != os.getpid():
            self._fs = self.s3.filesystem() if self.s3 is not None else pafs.LocalFileSystem()
            self._fs_pid = os.getpid()
        return self._fs

    # -- writing --------------------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> int:
        if self.s3 is None:
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
        self._upload(key, lambda out: out.write(data))
        return len(data)

    def put_file(self, key: str, source: Path) -> int:
        """Moves a finished local file into the store (a rename in a local store, an upload otherwise); returns
        its size in bytes. The source is gone afterwards only if the store has the file."""
        size = source.stat().st_size
        if self.s3 is None:
            target = self.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
            return size

        def copy(out: pa.NativeFile) -> None:
            with source.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    out.write(chunk)

        self._upload(key, copy)
        source.unlink(missing_ok=True)
        return size

    def _upload(self, key: str, write: Callable[[pa.NativeFile], object]) -> None:
        location = self._location(key)
        fs = self._filesystem()
        try:
            out = fs.open_output_stream(location)
        except OSError as exc:
            raise BlobStoreUnavailable("upload", exc) from exc
        try:
            write(out)
            out.close()  # the object appears only now, whole
        except BaseException as exc:
            # Closing completes a multipart upload, so an interrupted one must be deleted again, not kept short.
            with contextlib.suppress(Exception):
                out.close()
            with contextlib.suppress(Exception):
                fs.delete_file(location)
            if isinstance(exc, OSError):
                raise BlobStoreUnavailable("upload", exc) from exc
            raise

    def staging_path(self, scope: TenantScope) -> Path:
        """A new empty local file to receive an upload before `put_file` (in a local store, inside it, so that
        `put_file` is a rename)."""
        if self.s3 is None:
            directory = self.path(self.key(scope, "staging"))
        else:
            directory = self.work_dir / "staging" / scope.tenant_id
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="up-")
        os.close(fd)
        return Path(tmp)

    # -- reading --------------------------------------------------------------------------------------------
    def get_bytes(self, key: str) -> bytes:
        if self.s3 is None:
            return self.path(key).read_bytes()
        try:
            with self._filesystem().open_input_stream(self._location(key)) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._classified("read", exc) from exc

    def local_path(self, key: str) -> Path:
        """A local file holding the blob's bytes (blobs are immutable, so a cached copy stays valid)."""
        if self.s3 is None:
            return self.path(key)
        cached = self.work_dir / "cache" / key
        if cached.exists():
            with contextlib.suppress(OSError):
                os.utime(cached)
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".dl-")
        try:
            with os.fdopen(fd, "wb") as fh, self._filesystem().open_input_stream(self._location(key)) as stream:
                while chunk := stream.read(_CHUNK):
                    fh.write(chunk)
            Path(tmp).replace(cached)
        except FileNotFoundError:
            Path(tmp).unlink(missing_ok=True)
            raise
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise self._classified("read", exc) from exc
        self._evict()
        return cached

    def size(self, key: str) -> int:
        info = self._info(key)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(key)
        return int(info.size or 0)

    def exists(self, key: str) -> bool:
        return bool(self._info(key).type != pafs.FileType.NotFound)

    def _info(self, key: str) -> pafs.FileInfo:
        try:
            return self._filesystem().get_file_info(self._location(key))
        except OSError as exc:
            raise self._classified("stat", exc) from exc

    # -- listing --------------------------------------------------------------------------------------------
    def subdirectories(self, prefix: str) -> list[str]:
        """The names of the directories right under `prefix` (e.g. the tenants under "tenants"), sorted."""
        return sorted(info.base_name for info in self._listed(prefix) if info.type == pafs.FileType.Directory)

    def walk(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob under `prefix`, depth first, one directory listed at a time (a delimited LIST in S3): what is
        held is the directories on the way down, never the whole store. A blob of unknown age reads as new."""
        pending = [prefix.strip("/")]
        while pending:
            directory = pending.pop()
            below = []
            for info in self._listed(directory):
                key = f"{directory}/{info.base_name}"
                if info.type == pafs.FileType.Directory:
                    below.append(key)
                elif info.type == pafs.FileType.File:
                    modified = info.mtime.timestamp() if info.mtime is not None else time.time()
                    yield BlobInfo(key=key, size=int(info.size or 0), modified=modified)
            pending.extend(sorted(below, reverse=True))

    def _listed(self, prefix: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self._location(prefix), recursive=False, allow_not_found=True)
        try:
            return sorted(self._filesystem().get_file_info(selector), key=lambda info: info.base_name)
        except OSError as exc:
            raise self._classified("list", exc) from exc

    def stat(self, key: str) -> BlobInfo | None:
        """The blob's size and age now, or None when it is gone."""
        info = self._info(key)
        if info.type != pafs.FileType.File:
            return None
        modified = info.mtime.timestamp() if info.mtime is not None else time.time()
        return BlobInfo(key=key, size=int(info.size or 0), modified=modified)

    # -- deleting -------------------------------------------------------------------------------------------
    def delete(self, key: str, *, best_effort: bool = False) -> None:
        """Deletes a blob (a missing one is fine). `best_effort`: clean-up after the rows are gone — a store that
        is down leaves an orphan object (logged), never an error for a change already committed."""
        if best_effort:
            try:
                self.delete(key)
            except Exception:
                log.warning("blob %s could not be deleted; it is left as an orphan", key, exc_info=True)
            return
        self._forget_cached(key)
        if self.s3 is None:
            self.path(key).unlink(missing_ok=True)
            return
        try:
            self._filesystem().delete_file(self._location(key))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._classified("delete", exc) from exc

    def delete_prefix(self, prefix: str, *, best_effort: bool = False) -> None:
        if best_effort:
            try:
                self.delete_prefix(prefix)
            except Exception:
                log.warning("blobs under %s could not be deleted; they are left as orphans", prefix, exc_info=True)
            return
        self._forget_cached(prefix)
        if self.s3 is None:
            shutil.rmtree(self.path(prefix), ignore_errors=True)
            return
        try:
            self._filesystem().delete_dir_contents(self._location(prefix), missing_dir_ok=True)
        except OSError as exc:
            raise self._classified("delete", exc) from exc

    def _forget_cached(self, key: str) -> None:
        if self.s3 is None:
            return
        cached = self.work_dir / "cache" / key
        if cached.is_dir():
            shutil.rmtree(cached, ignore_errors=True)
        else:
            cached.unlink(missing_ok=True)

    def _evict(self) -> None:
        """Keeps the cache under its bound, least recently used first."""
        files = []
        for path in (self.work_dir / "cache").rglob("*"):
            with contextlib.suppress(OSError):
                if path.is_file():
                    stat = path.stat()
                    files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        now = time.time()
        for mtime, size, path in sorted(files):
            if total <= self.cache_bytes:
                return
            if now - mtime < _CACHE_GRACE_S:
                continue
            path.unlink(missing_ok=True)
            total -= size

    # -- health ---------------------------------------------------------------------------------------------
    def ping(self) -> None:
        """Writes and removes a probe object: the store is reachable *and* writable."""
        if self.s3 is None:
            assert self.root is not None
            probe = self.root / ".ready-probe"
            probe.write_bytes(b"ok")
            probe.unlink()
            return
        key = f".ready-probe-{os.getpid()}"
        self.put_bytes(key, b"ok")
        self.delete(key)

    @staticmethod
    def _classified(operation: str, exc: OSError) -> Exception:
        if isinstance(exc, FileNotFoundError):
            return exc
        return BlobStoreUnavailable(operation, exc)
