"""A short-lived cache of resolved credentials, so a request's authentication needs no database round trip.

What is cached is exactly what the database said when a credential was last resolved — the `Principal` (user or
key, tenant, role or scopes, the tenant's call quota) — and for how long it may be believed:

- at most `ttl_s` (`VIGIL_AUTH_CACHE_TTL_S`, 2 s by default; 0 turns the cache off). That is the **bound**: a
  logout, a revoked key or session, a disabled, deleted or demoted user, a suspended tenant or a changed quota takes
  effect within it in every process, whichever process made the change;
- in the process that made the change, at once: every commit that changed an identity table (users, sessions,
  refresh tokens, API keys, tenants) empties the cache (`watch`), and a resolution that started before such a
  commit is not kept (a generation counter), so it cannot put back what the commit made stale;
- never past the credential's own end: a session's absolute or idle expiry, a key's expiry.

Entries are keyed by a digest of the whole presented credential, so a forged token or a wrong key secret never
finds another's entry; an access token's signature and claims are still checked on every request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, Update, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from vigil.identity.models import ApiKey, AuthSession, RefreshToken, Tenant, User
from vigil.identity.principal import Principal

DEFAULT_MAX_ENTRIES = 10_000
# Execution option that marks a write as irrelevant to authority (recording a session's or key's last use).
NEUTRAL = "vigil_auth_cache_neutral"
_WATCHED = (User, AuthSession, RefreshToken, ApiKey, Tenant)
_WATCHED_TABLES = frozenset(model.__tablename__ for model in _WATCHED)
_CHANGED = "vigil.identity_changed"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires: float  # time.monotonic()
    generation: int


class AuthCache:
    """Thread-safe, bounded (LRU), expiring map from a credential's digest to its principal."""

    def __init__(self, *, ttl_s: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    @property
    def generation(self) -> int:
        """Read before resolving a credential and handed back to `put`: a change committed in between wins."""
        return self._generation

    @staticmethod
    def key(credential: str) -> str:
        return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Principal | None:
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
            return entry.principal

    def put(self, key: str, principal: Principal, *, generation: int, valid_for_s: float | None = None) -> None:
        """Keeps `principal` for the TTL, or less when the credential itself ends sooner (`valid_for_s`)."""
        if not self.enabled:
            return
        ttl = self.ttl_s if valid_for_s is None else min(self.ttl_s, valid_for_s)
        if ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return  # identity changed while this was being resolved: the answer may already be stale
            self._entries[key] = _Entry(principal, time.monotonic() + ttl, generation)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def watch(sessions: sessionmaker[Session], cache: AuthCache) -> None:
    """Empties `cache` after every commit, on sessions made by `sessions`, that wrote an identity table."""

    def after_flush(session: Session, _context: Any) -> None:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if isinstance(obj, _WATCHED):
                session.info[_CHANGED] = True
                return

    def on_execute(state: ORMExecuteState) -> None:
        statement = state.statement
        if not isinstance(statement, Update | Delete) or state.execution_options.get(NEUTRAL):
            return
        table = getattr(statement, "table", None)
        if getattr(table, "name", None) in _WATCHED_TABLES:
            state.session.info[_CHANGED] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            cache.invalidate_all()

    def after_rollback(session: Session) -> None:
        session.info.pop(_CHANGED, None)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "do_orm_execute", on_execute)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_soft_rollback", lambda session, _tx: after_rollback(session))
