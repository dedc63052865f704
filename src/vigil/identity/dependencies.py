"""Who is calling, as FastAPI dependencies: `require(permission)`, which each route declares and which gives it its
authenticated principal (an access token or an API key), the caller's address (`ClientDep`), and the rate limits that
come with them.

The dependencies are `async def`: on the common path (a cached principal, in-memory rate limits) they do no I/O,
and a plain `def` would cost a hop to the thread pool and back each. Whatever may wait on the database or Redis
(resolving a credential the cache does not hold, Redis counters) runs in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection, Request

from vigil.config import Settings
from vigil.core.clientinfo import ClientInfo, Networks, parse_networks
from vigil.core.database import bind_tenant, utcnow
from vigil.core.errors import Forbidden, RateLimited, Unauthorized
from vigil.core.secrets import ACCESS_TOKENS, LOGIN_THROTTLE, derive_key
from vigil.identity.auth_cache import AuthCache, DescriptionCache, watch
from vigil.identity.auth_service import AuthService
from vigil.identity.credentials import looks_like_api_key
from vigil.identity.passwords import Passwords
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.identity.ratelimit import Decision, RateLimiter, per_hour, per_seconds
from vigil.identity.schemas import MePublic
from vigil.identity.tokens import TokenService
from vigil.web import idempotency
from vigil.web.deps import SessionDep, client_info
from vigil.web.security_headers import RATE_LIMIT_STATE


@dataclass
class IdentityRuntime:
    """Identity's per-app singletons (the password hasher is costly to build, the limiter holds counters)."""

    settings: Settings
    key: bytes
    passwords: Passwords
    tokens: TokenService
    limiter: RateLimiter
    trusted_proxies: Networks
    cache: AuthCache
    descriptions: DescriptionCache

    @classmethod
    def build(cls, *, settings: Settings, key: bytes, sessions: sessionmaker[Session] | None = None) -> IdentityRuntime:
        """`sessions`: the app's session factory, whose commits to identity tables empty the caches."""
        cache = AuthCache(ttl_s=settings.auth_cache_ttl_s)
        descriptions = DescriptionCache(ttl_s=settings.auth_cache_ttl_s)
        if sessions is not None:
            watch(sessions, cache, descriptions)
        return cls(
            settings=settings,
            key=derive_key(key, LOGIN_THROTTLE),
            passwords=Passwords(settings),
            tokens=TokenService(settings=settings, key=derive_key(key, ACCESS_TOKENS)),
            limiter=RateLimiter(settings),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            cache=cache,
            descriptions=descriptions,
        )

    def auth(self, session: Session) -> AuthService:
        return AuthService(
            session=session, passwords=self.passwords, tokens=self.tokens, settings=self.settings, key=self.key
        )

    def resolve(self, session: Session, presented: str) -> Principal:
        """The principal behind a presented access token or API key: from the cache while it may be believed (see
        `auth_cache`), else from the database (and then cached). Blocking: call it from a worker thread on a miss."""
        key = AuthCache.key(presented)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        generation = self.cache.generation
        auth = self.auth(session)
        principal = (
            auth.authenticate_api_key(presented) if looks_like_api_key(presented) else auth.authenticate(presented)
        )
        self.cache.put(
            key, principal, generation=generation, valid_for_s=_seconds_until(principal.credential_expires_at)
        )
        return principal

    async def describe(self, session: Session, principal: Principal) -> MePublic:
        """What `GET /me` says of an authenticated principal: from the cache, with the principal's own bound, else
        read in a worker thread (and then cached)."""
        described = self.descriptions.get(principal)
        if described is None:
            generation = self.descriptions.generation
            described = await anyio.to_thread.run_sync(self.auth(session).describe, principal)
            self.descriptions.put(principal, described, generation=generation)
        return described


def _seconds_until(moment: datetime | None) -> float | None:
    return None if moment is None else (moment - utcnow()).total_seconds()


def identity_of(connection: HTTPConnection) -> IdentityRuntime:
    runtime: IdentityRuntime = connection.app.state.identity
    return runtime


async def get_identity(connection: HTTPConnection) -> IdentityRuntime:
    return identity_of(connection)


IdentityDep = Annotated[IdentityRuntime, Depends(get_identity)]
_bearer = HTTPBearer(
    auto_error=False, description="An access token from POST /api/v1/auth/token, or an API key (vgl_…)"
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (vgl_…)")


async def get_client(request: Request, identity: IdentityDep) -> ClientInfo:
    return client_info(request, identity.trusted_proxies)


ClientDep = Annotated[ClientInfo, Depends(get_client)]


def enforce(request: Request, decision: Decision | None, what: str) -> None:
    """Leaves the `RateLimit-*` headers for the response, or refuses with 429 and `Retry-After`."""
    if decision is None:
        return
    setattr(request.state, RATE_LIMIT_STATE, decision.headers())
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit of {decision.limit} requests per {decision.window_s}s {what} reached.",
            retry_after_s=decision.reset_s,
            headers=decision.headers(),
        )


async def limit_by_ip(request: Request) -> None:
    """Every API route: a generous per-address limit that bounds what any one address can ask of the server.

    It reads the identity runtime and the caller's address itself rather than through `IdentityDep` and `ClientDep`:
    FastAPI's solving of each sub-dependency costs more than what these do, on every API request."""
    identity = identity_of(request)
    ip = client_info(request, identity.trusted_proxies).ip
    limiter = identity.limiter
    if limiter.is_local:
        decision = limiter.hit(limiter.per_ip, "ip", ip)
    else:
        decision = await anyio.to_thread.run_sync(limiter.hit, limiter.per_ip, "ip", ip)
    enforce(request, decision, "per client address")


def authenticate_presented(*, session: Session, identity: IdentityRuntime, credential: str) -> Principal:
    """The principal of a credential presented outside the usual headers (a WebSocket's first frame or
    subprotocol): an access token or an API key, checked exactly as `get_principal` checks them, with the caller's
    rate limit counted; the session is bound to the caller's tenant."""
    principal = identity.resolve(session, credential)
    bind_tenant(session, principal.scope)
    limiter = identity.limiter
    item = limiter.per_api_key if principal.is_api_key else limiter.per_user
    decision = limiter.hit(item, principal.rate_limit_subject)
    if decision is not None and not decision.allowed:
        raise RateLimited(
            f"Rate limit of {decision.limit} requests per {decision.window_s}s per caller reached.",
            retry_after_s=decision.reset_s,
        )
    return principal


async def get_principal(
    request: Request,
    session: Session,
    credentials: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    """The caller, authenticated and rate-limited; `require` calls it (a plain call, not a sub-dependency: one
    level less for FastAPI to solve on every request). The session is bound to the caller's tenant."""
    identity = identity_of(request)
    token = credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else None
    if token is not None and api_key is not None and token != api_key:
        raise Unauthorized("Send one credential: an Authorization header or an X-API-Key header, not both.")
    presented = token or api_key
    if not presented:
        raise Unauthorized("Send an access token as 'Authorization: Bearer <token>', or an API key.")
    principal = identity.cache.get(AuthCache.key(presented))
    if principal is None:
        principal = await anyio.to_thread.run_sync(_resolve_and_bind, identity, session, presented)
    else:
        # A cached principal touched no database: the session has no transaction yet, so binding does no I/O.
        bind_tenant(session, principal.scope)
    if identity.limiter.is_local:
        _limit_principal(request, identity.limiter, principal)
    else:
        await anyio.to_thread.run_sync(_limit_principal, request, identity.limiter, principal)
    return principal


def _resolve_and_bind(identity: IdentityRuntime, session: Session, presented: str) -> Principal:
    principal = identity.resolve(session, presented)
    # From here on the request's session sees only the caller's tenant (PostgreSQL RLS), whatever the route does.
    bind_tenant(session, principal.scope)
    return principal


def _limit_principal(request: Request, limiter: RateLimiter, principal: Principal) -> None:
    """The tenant's hourly quota, then the caller's own limits."""
    if principal.tenant_calls_per_hour is not None:  # the tenant's quota: all its users and keys together
        quota = per_hour(principal.tenant_calls_per_hour)
        decision = limiter.hit(quota, "tenant", principal.tenant_id)
        if decision is not None and not decision.allowed:
            raise RateLimited(
                f"The tenant's quota of {decision.limit} API calls per hour is spent.",
                retry_after_s=decision.reset_s,
                headers=decision.headers(),
                quota="api_calls_per_hour",
                limit=decision.limit,
                used=decision.limit,
            )
    item = limiter.per_api_key if principal.is_api_key else limiter.per_user
    enforce(request, limiter.hit(item, principal.rate_limit_subject), "per caller")
    if principal.key_rate_limit is not None:  # a key's own, tighter limit: checked last, so its headers show
        own = per_seconds(*principal.key_rate_limit)
        enforce(request, limiter.hit(own, "own", principal.rate_limit_subject), "set for this key")


def require(permission: Permission) -> Any:
    """`principal: Annotated[Principal, require(Permission.X)]` — the route's declared permission, and the one way a
    route gets its caller (so the caller is authenticated and counted once per request)."""

    async def check(
        request: Request,
        session: SessionDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        api_key: Annotated[str | None, Security(_api_key)],
    ) -> Principal:
        principal = await get_principal(request, session, credentials, api_key)
        if not principal.can(permission):
            raise Forbidden(f"This needs the {permission.value!r} permission, which {principal.describe()} lacks.")
        # Only now — authenticated, rate-limited, authorized — may an Idempotency-Key replay a stored answer.
        await idempotency.admit(request, principal=principal.rate_limit_subject)
        return principal

    check.required_permission = permission  # type: ignore[attr-defined]  # read by the route-permission test
    return Depends(check)
