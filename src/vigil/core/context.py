"""What one running app shares across requests and workers: settings, database, blobs, secret, metrics."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.caching import CommitInvalidatedCache
from vigil.core.database import Database
from vigil.core.metrics import Metrics


@dataclass
class AppContext:
    settings: Settings
    database: Database
    blobs: BlobStore
    secret_key: bytes
    metrics: Metrics
    # Short-lived answers of the request path's lookups (e.g. a detector's current model version), keyed by the
    # domain with its tenant, emptied by commits to the tables they come from (wired in `create_app`).
    lookups: CommitInvalidatedCache[Hashable, Any] = field(default_factory=lambda: CommitInvalidatedCache(ttl_s=0))
    # Set when work is queued, so idle job workers wake at once instead of at their next poll.
    job_wakeup: threading.Event = field(default_factory=threading.Event)
