"""Hot stream state, per process: each stream's model in memory with the version it is at, and a lock per stream.

The database is the truth (the stream's `state_version`, its snapshots and its write-ahead log); this is a cache
of it. A process uses its cached model only when its version equals the stored one, and otherwise catches up by
replaying the batches it missed (or reloads from the latest snapshot), so any process may serve any stream. The lock
orders the batches of one stream inside this process; across processes the stored version orders them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from vigil import ml
from vigil.core.database import TenantScope, utcnow
from vigil.streams.models import Stream, StreamSnapshot

log = logging.getLogger("vigil.streams")


@dataclass
class StreamHead:
    """What applying a batch needs of the stream's row. Only batches change it, so it is kept with the hot model and
    is exactly the row whenever the model's version is the stored one."""

    id: str
    features: list[str]
    last_seq: int | None
    events_seen: int
    anomaly_count: int
    drift_count: int
    current_threshold: float | None
    snapshot_version: int
    snapshot_events: int
    snapshot_at: datetime | None

    @classmethod
    def of(cls, stream: Stream) -> StreamHead:
        return cls(
            id=stream.id,
            features=list(stream.features),
            last_seq=stream.last_seq,
            events_seen=stream.events_seen,
            anomaly_count=stream.anomaly_count,
            drift_count=stream.drift_count,
            current_threshold=stream.current_threshold,
            snapshot_version=stream.snapshot_version,
            snapshot_events=stream.snapshot_events,
            snapshot_at=stream.snapshot_at,
        )


@dataclass
class HotState:
    """A stream's model at `version`. `compacting`: its compacted copy at the same version, being loaded from the
    snapshot just taken in the background (`compact_later`); `settle` swaps it in before the model is used again."""

    version: int
    model: ml.OnlineModel
    head: StreamHead
    compacting: Future[ml.OnlineModel] | None = None

    def settle(self) -> None:
        """Waits for the compacted copy, if one is on its way, and makes it the model. It is an equal copy at this
        same version: nothing was applied to `model` since it was dumped (the copy is pending until the next batch,
        which calls this first). If loading it failed, the live model goes on (slower, equally right)."""
        pending, self.compacting = self.compacting, None
        if pending is None:
            return
        try:
            self.model = pending.result()
        except Exception:
            log.exception("stream %s: compacting the model after its snapshot failed", self.head.id)


# One thread a process: compactions are short (a few ms) and rare (one every N events per stream).
_COMPACTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-stream-compact")


def compact_later(state: bytes, *, key: bytes, scorer: ml.FittedDetector | None) -> Future[ml.OnlineModel]:
    """Loads a snapshot just dumped (`state`, signed with `key`) in the background: the live model's compacted copy
    (`ml.OnlineModel.compacted`), off the request path. It overlaps the answer, the client's turn and the next
    request's parsing; the next batch waits for what is left (`HotState.settle`).

    Measured with the benchmark, interleaved: leaving the copy to the next batch, done there synchronously, made that
    batch pay all of it (HTTP: the batch after a snapshot 21-32 ms against 11-21 here, p50 9-14). Unpickling holds
    this process's interpreter lock for its whole few ms (it runs no Python code: `_InlinePickler`'s format), which
    the event loop notices far less than a thread that gives the lock up and takes it back at every Python call (a
    Python state setter per object: WebSocket batch p99 196-318 ms against 108-236 ms without the thread)."""
    return _COMPACTOR.submit(ml.load_state, state, key=key, scorer=scorer)


QUOTA_TTL_S = 5.0


class StreamRuntime:
    """At most `capacity` models are kept (least recently used go first; they reload from the database)."""

    def __init__(self, *, capacity: int) -> None:
        self._quotas: dict[str, tuple[float, int]] = {}
        self.capacity = capacity
        self._hot: OrderedDict[str, HotState] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.loads = 0  # models rebuilt from a snapshot (a restart, an eviction, a failed batch)
        self.catch_ups = 0  # models brought forward by replaying batches another process applied

    def lock(self, stream_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(stream_id)
            if lock is None:
                lock = self._locks[stream_id] = threading.Lock()
            return lock

    def take(self, stream_id: str) -> HotState | None:
        """The cached state, removed from the cache: the caller owns it until it `keep`s it again (a batch that
        fails half-way must not leave a model that learnt part of it)."""
        with self._guard:
            return self._hot.pop(stream_id, None)

    def keep(self, stream_id: str, state: HotState) -> None:
        with self._guard:
            self._hot[stream_id] = state
            self._hot.move_to_end(stream_id)
            while len(self._hot) > self.capacity:
                self._hot.popitem(last=False)

    def forget(self, stream_id: str) -> None:
        with self._guard:
            self._hot.pop(stream_id, None)
            self._locks.pop(stream_id, None)

    def quota(self, tenant_id: str, load: Callable[[], int]) -> int:
        """A tenant's events-per-second quota, read at most every `QUOTA_TTL_S` (a change applies within it): one
        query less on every batch."""
        now = time.monotonic()
        cached = self._quotas.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        value = load()
        with self._guard:
            self._quotas[tenant_id] = (now + QUOTA_TTL_S, value)
        return value

    def __len__(self) -> int:
        return len(self._hot)


def snapshot(
    stream_id: str,
    model: ml.OnlineModel,
    *,
    scope: TenantScope,
    key: bytes,
    version: int,
    last_seq: int | None,
    events_seen: int,
) -> StreamSnapshot:
    """The model's signed state at `version`: recovery starts from the latest one and replays the log after it."""
    return StreamSnapshot(
        stream_id=stream_id,
        state_version=version,
        tenant_id=scope.tenant_id,
        last_seq=last_seq,
        events_seen=events_seen,
        state=ml.dump_state(model, key=key),
        created_at=utcnow(),
    )
