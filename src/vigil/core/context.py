"""What one running app shares across requests and workers: settings, database, blobs, secret, metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.database import Database
from vigil.core.metrics import Metrics


@dataclass
class AppContext:
    settings: Settings
    database: Database
    blobs: BlobStore
    secret_key: bytes
    metrics: Metrics
    # Set when work is queued, so idle job workers wake at once instead of at their next poll.
    job_wakeup: threading.Event = field(default_factory=threading.Event)
