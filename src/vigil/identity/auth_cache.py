"""Short-lived caches of resolved credentials, so a request's authentication needs no database round trip — and of
what `GET /me` says of a principal, so the caller's own description needs none either.

What is cached is exactly what the database said when a credential was last resolved — the `Principal` (user or
key, tenant, role or scopes, the tenant's call quota) — and for how long it may be believed:

- at most `ttl_s` (`VIGIL_AUTH_CACHE_TTL_S`, 2 s by default; 0 turns the cache off). That is the **bound**: a
  logout, a revoked key or session, a disabled, deleted or demoted user, a suspended tenant or a changed quota takes
  effect within it in every process, whichever process made the change;
- in the process that made the change, at once: every commit that changed an identity table (users, sessions,
  refresh tokens, API keys, tenants) empties the cache, and a resolution that started before such a commit is not
  kept (`vigil.core.caching`), so it cannot put back what the commit made stale;
- never past the credential's own end: a session's absolute or idle expiry, a token's or a key's expiry.

Entries are keyed by a digest of the whole presented credential, so a forged token or a wrong key secret never
finds another's entry, and no credential is kept in clear. Descriptions are keyed by the principal itself (one that
was authenticated first), and follow the same rules: the rows they come from are the same identity tables.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from vigil.core.caching import CommitInvalidatedCache, invalidate_on_commit
from vigil.identity.models import ApiKey, AuthSession, RefreshToken, Tenant, User
from vigil.identity.principal import Principal
from vigil.identity.schemas import MePublic

IDENTITY_MODELS = (User, AuthSession, RefreshToken, ApiKey, Tenant)


class AuthCache(CommitInvalidatedCache[str, Principal]):
    """Credential digest → principal."""

    @staticmethod
    def key(credential: str) -> str:
        return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


class DescriptionCache(CommitInvalidatedCache[Principal, MePublic]):
    """Principal → its description (the user it acts for, the tenant, the key), as `GET /me` answers it."""


def watch(sessions: sessionmaker[Session], *caches: CommitInvalidatedCache[Any, Any]) -> None:
    """Empties each cache after every commit, on sessions made by `sessions`, that wrote an identity table."""
    for cache in caches:
        invalidate_on_commit(sessions, IDENTITY_MODELS, cache)
