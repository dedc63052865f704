"""What one running app shares across requests and workers: settings, database, blobs, secret, metrics — and the
components that domains lend each other through the app (the job registry, the broker), looked up by type."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.caching import CommitInvalidatedCache
from vigil.core.database import Database
from vigil.core.metrics import Metrics
from vigil.core.secrets import ARTIFACTS, derive_key

_C = TypeVar("_C")


@dataclass
class AppContext:
    settings: Settings
    database: Database
    blobs: BlobStore
    secret_key: bytes
    metrics: Metrics
    # Short-lived answers of the request path's lookups (e.g. a detector's current model version), keyed by the
    # domain with its tenant, emptied by commits to the tables they come from (wired in `build_context`).
    lookups: CommitInvalidatedCache[Hashable, Any] = field(default_factory=lambda: CommitInvalidatedCache(ttl_s=0))
    # Set when work is queued, so idle job workers (and the dispatcher) wake at once instead of at their next poll.
    job_wakeup: threading.Event = field(default_factory=threading.Event)
    # Components wired by `vigil.app` (or `vigil worker`): plumbing cannot import the packages that define them,
    # so they are kept by type, and `component(JobRegistry)` is typed as a `JobRegistry`.
    components: dict[type, object] = field(default_factory=dict)
    # What `/ready` checks, by name (the database, the blob store, the broker when there is one).
    probes: dict[str, Callable[[], None]] = field(default_factory=dict)

    @functools.cached_property
    def artifact_key(self) -> bytes:
        """Signs model artifacts and stream states (`secret_key` itself still verifies older ones)."""
        return derive_key(self.secret_key, ARTIFACTS)

    def provide(self, component: object) -> None:
        self.components[type(component)] = component

    def find(self, kind: type[_C]) -> _C | None:
        value = self.components.get(kind)
        return value if isinstance(value, kind) else None

    def component(self, kind: type[_C]) -> _C:
        value = self.find(kind)
        if value is None:
            raise LookupError(f"no {kind.__name__} was provided to this app")
        return value
