"""Short-lived caches of what the database said, for the request path, with a stated bound on staleness.

A `CommitInvalidatedCache` keeps an answer for at most `ttl_s` seconds, and `invalidate_on_commit` empties it
after every commit, on the app's sessions, that wrote one of the tables the answers come from. So a change made
by this process applies at once, and a change made by another process sharing the database within `ttl_s`. An
answer resolved while such a commit happened is not kept (a generation counter), so a slow reader cannot put back
what the commit made stale.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Delete, Update, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

# Execution option marking a write that changes nothing a cache holds (recording a last use, a lock's no-op write).
NEUTRAL_WRITE = "vigil_cache_neutral"
DEFAULT_MAX_ENTRIES = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float  # time.monotonic()
    generation: int


class CommitInvalidatedCache(Generic[K, V]):
    """Thread-safe, bounded (least recently used out first), expiring; `ttl_s` 0 turns it off."""

    def __init__(self, *, ttl_s: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @property
    def generation(self) -> int:
        """Read before asking the database, handed back to `put`: a change committed in between wins."""
        return self._generation

    def get(self, key: K) -> V | None:
        if not self.enabled:
            return None
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= now or entry.generation != self._generation:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.value

    def put(self, key: K, value: V, *, generation: int, valid_for_s: float | None = None) -> None:
        """Keeps `value` for the TTL, or less when what it describes ends sooner by itself (`valid_for_s`)."""
        if not self.enabled:
            return
        ttl = self.ttl_s if valid_for_s is None else min(self.ttl_s, valid_for_s)
        if ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return  # the tables changed while this was being read: the answer may already be stale
            self._entries[key] = _Entry(value, time.monotonic() + ttl, generation)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def invalidate_on_commit(
    sessions: sessionmaker[Session], models: Iterable[type[Any]], cache: CommitInvalidatedCache[Any, Any]
) -> None:
    """Empties `cache` after every commit, on sessions made by `sessions`, that wrote a table of `models` (ORM
    changes, and `update()`/`delete()` statements not marked `NEUTRAL_WRITE`)."""
    watched = tuple(models)
    tables = frozenset(model.__tablename__ for model in watched)
    flag = f"vigil.cache-dirty.{id(cache)}"

    def after_flush(session: Session, _context: Any) -> None:
        if any(isinstance(obj, watched) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info[flag] = True

    def on_execute(state: ORMExecuteState) -> None:
        statement = state.statement
        if not isinstance(statement, Update | Delete) or state.execution_options.get(NEUTRAL_WRITE):
            return
        if getattr(getattr(statement, "table", None), "name", None) in tables:
            state.session.info[flag] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(flag, False):
            cache.invalidate_all()

    def after_soft_rollback(session: Session, _previous: Any) -> None:
        session.info.pop(flag, None)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "do_orm_execute", on_execute)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_soft_rollback", after_soft_rollback)
