"""Authentication use cases: log in (a session), rotate refresh tokens, log out, resolve a credential (access token
or API key) to a principal, list and end one's sessions, change one's password."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.core.clientinfo import ClientInfo
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import InvalidInput, NotFound, Unauthorized
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.identity import audit
from vigil.identity.credentials import api_key_prefix, hash_secret, new_refresh_token, same_hash
from vigil.identity.models import AuthSession, RefreshToken, Tenant, User
from vigil.identity.passwords import Passwords
from vigil.identity.permissions import Permission, Role, permissions_of
from vigil.identity.principal import Principal
from vigil.identity.quotas import TenantPolicy
from vigil.identity.repository import PlatformRepository, SessionRepository
from vigil.identity.schemas import (
    ApiKeyRef,
    MePublic,
    PasswordChange,
    SessionPublic,
    TenantRef,
    TokenPublic,
    UserPublic,
)
from vigil.identity.throttle import LoginThrottle
from vigil.identity.tokens import TokenService

log = logging.getLogger("vigil.identity")
BAD_CREDENTIALS = "Invalid email or password."
BAD_REFRESH = "The refresh token is invalid, expired or already used."
SESSION_ENDED = "The session has ended; log in again."
BAD_API_KEY = "The API key is invalid, expired or revoked."


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """A tenant's session and token lifetimes: its own settings, never looser than the server's."""

    session_idle_timeout_s: int
    session_lifetime_s: int
    access_token_ttl_s: int

    @classmethod
    def of(cls, tenant: Tenant, settings: Settings) -> SecurityPolicy:
        own: dict[str, Any] = (tenant.settings or {}).get("security", {})

        def pick(name: str, platform: int) -> int:
            value = own.get(name)
            return min(int(value), platform) if isinstance(value, int) and value > 0 else platform

        return cls(
            session_idle_timeout_s=pick("session_idle_timeout_s", settings.session_idle_timeout_s),
            session_lifetime_s=pick("session_lifetime_s", settings.session_lifetime_s),
            access_token_ttl_s=pick("access_token_ttl_s", settings.access_token_ttl_s),
        )


def _idle_deadline(auth_session: AuthSession) -> datetime:
    return auth_session.last_used_at + timedelta(seconds=auth_session.idle_timeout_s)


def session_is_live(auth_session: AuthSession, now: datetime) -> bool:
    return auth_session.revoked_at is None and now < auth_session.expires_at and now < _idle_deadline(auth_session)


class AuthService:
    def __init__(
        self, *, session: Session, passwords: Passwords, tokens: TokenService, settings: Settings, key: bytes
    ) -> None:
        self.session = session
        self.platform = PlatformRepository(session=session)
        self.passwords = passwords
        self.tokens = tokens
        self.settings = settings
        self.key = key

    # -- logging in and out ------------------------------------------------------------------------------
    def login(self, *, email: str, password: str, client: ClientInfo) -> TokenPublic:
        email = email.lower()
        throttle = LoginThrottle(session=self.session, settings=self.settings, key=self.key)
        throttle.check(email=email, ip=client.ip)
        user = self.platform.user_by_email(email)
        # Verify even when the user is unknown: same work, same answer, so the response never tells which.
        valid = self.passwords.verify(user.password_hash if user else None, password)
        tenant = self.platform.tenant(user.tenant_id) if user else None
        if user is None or tenant is None or not valid or not user.is_active or tenant.status != "active":
            self._record_login_failure(throttle, email=email, user=user, client=client)
            raise Unauthorized(BAD_CREDENTIALS)
        throttle.record_success(email=email, ip=client.ip)
        tokens = self._start_session(user=user, tenant=tenant, client=client)
        self.session.commit()
        return tokens

    def _record_login_failure(
        self, throttle: LoginThrottle, *, email: str, user: User | None, client: ClientInfo
    ) -> None:
        for attempt in range(2):
            throttle.record_failure(email=email, ip=client.ip)
            audit.record(
                self.session,
                action="auth.login",
                outcome="failure",
                tenant_id=user.tenant_id if user else None,
                actor_id=user.id if user else None,
                actor=user.email if user else None,
                client=client,
            )
            try:
                self.session.commit()
                return
            except IntegrityError:  # a concurrent failure created the same counter first: count again
                self.session.rollback()
                if attempt:
                    raise

    def _start_session(self, *, user: User, tenant: Tenant, client: ClientInfo) -> TokenPublic:
        now = utcnow()
        policy = SecurityPolicy.of(tenant, self.settings)
        sessions = SessionRepository(session=self.session, scope=TenantScope(tenant.id))
        live = [s for s in sessions.active_of_user(user.id, now=now) if session_is_live(s, now)]
        for oldest in live[self.settings.max_sessions_per_user - 1 :]:
            oldest.revoked_at, oldest.revoked_reason = now, "session-limit"
        auth_session = sessions.add(
            AuthSession(
                id=new_id("ses"),
                tenant_id=tenant.id,
                user_id=user.id,
                user_agent=client.user_agent,
                ip=client.ip,
                idle_timeout_s=policy.session_idle_timeout_s,
                created_at=now,
                last_used_at=now,
                expires_at=now + timedelta(seconds=policy.session_lifetime_s),
                revoked_at=None,
            )
        )
        audit.record(
            self.session,
            action="auth.login",
            tenant_id=tenant.id,
            actor_id=user.id,
            actor=user.email,
            client=client,
            target_type="session",
            target_id=auth_session.id,
        )
        return self._issue(sessions, auth_session=auth_session, user=user, policy=policy)

    def _issue(
        self, sessions: SessionRepository, *, auth_session: AuthSession, user: User, policy: SecurityPolicy
    ) -> TokenPublic:
        refresh = new_refresh_token()
        sessions.add_refresh_token(
            RefreshToken(
                id=new_id("rft"),
                session_id=auth_session.id,
                token_hash=hash_secret(refresh),
                created_at=utcnow(),
                used_at=None,
            )
        )
        access, ttl = self.tokens.issue(
            user_id=user.id,
            tenant_id=user.tenant_id,
            role=user.role,
            session_id=auth_session.id,
            ttl_s=policy.access_token_ttl_s,
        )
        return TokenPublic(access_token=access, refresh_token=refresh, expires_in=ttl)

    def refresh(self, *, refresh_token: str, client: ClientInfo) -> TokenPublic:
        """Rotates: the presented token is spent and a new pair issued. A spent token presented again means it was
        copied — by a thief or from a thief — so the whole session (the token family) is revoked."""
        now = utcnow()
        stored = self.platform.refresh_token(hash_secret(refresh_token))
        if stored is None:
            raise Unauthorized(BAD_REFRESH)
        owner = self.platform.session_with_owner(stored.session_id)
        if owner is None:
            raise Unauthorized(BAD_REFRESH)
        auth_session, user, tenant = owner
        sessions = SessionRepository(session=self.session, scope=TenantScope(tenant.id))
        if stored.used_at is not None or not sessions.claim_refresh_token(stored.id, now=now):
            self._revoke_family(auth_session, user=user, client=client, now=now)
            raise Unauthorized(BAD_REFRESH)
        if not session_is_live(auth_session, now) or not user.is_active or tenant.status != "active":
            self.session.rollback()
            raise Unauthorized(BAD_REFRESH)
        auth_session.last_used_at = now
        tokens = self._issue(
            sessions, auth_session=auth_session, user=user, policy=SecurityPolicy.of(tenant, self.settings)
        )
        self.session.commit()
        return tokens

    def _revoke_family(self, auth_session: AuthSession, *, user: User, client: ClientInfo, now: datetime) -> None:
        if auth_session.revoked_at is None:
            auth_session.revoked_at, auth_session.revoked_reason = now, "refresh-token-reuse"
            log.warning("refresh token reused: session %s of user %s revoked", auth_session.id, user.id)
        audit.record(
            self.session,
            action="auth.refresh_token_reuse",
            outcome="failure",
            tenant_id=auth_session.tenant_id,
            actor_id=user.id,
            actor=user.email,
            client=client,
            target_type="session",
            target_id=auth_session.id,
        )
        self.session.commit()

    def logout(self, *, principal: Principal, client: ClientInfo) -> None:
        if principal.session_id is None:
            raise InvalidInput("An API key has no session to log out of; revoke the key instead.")
        self._end(principal, principal.session_id, reason="logout", client=client)

    # -- resolving credentials ---------------------------------------------------------------------------
    def authenticate(self, token: str) -> Principal:
        """An access token's principal: valid signature and claims, and its session still live (one query)."""
        claims = self.tokens.decode(token)
        owner = self.platform.session_with_owner(claims.session_id)
        now = utcnow()
        if owner is None:
            raise Unauthorized(SESSION_ENDED)
        auth_session, user, tenant = owner
        if auth_session.user_id != claims.user_id or user.tenant_id != claims.tenant_id:
            raise Unauthorized("The access token is invalid.")
        if not session_is_live(auth_session, now):
            raise Unauthorized(SESSION_ENDED)
        if not user.is_active:
            raise Unauthorized("The account behind this token no longer exists or is disabled.")
        if tenant.status != "active":
            raise Unauthorized("The tenant is suspended.")
        # Record use now and then, not on every request: often enough for the idle timeout, cheap enough to ignore.
        touch_every = timedelta(seconds=min(self.settings.session_touch_interval_s, auth_session.idle_timeout_s / 2))
        used_at = auth_session.last_used_at
        if now - used_at >= touch_every:
            self.platform.touch_session(auth_session.id, now=now)
            self.session.commit()
            used_at = now
        return Principal(
            user_id=user.id,
            email=user.email,
            tenant_id=user.tenant_id,
            role=Role(user.role),
            session_id=auth_session.id,
            tenant_calls_per_hour=TenantPolicy.of(tenant, self.settings).quotas["api_calls_per_hour"],
            # Believed no longer than until its use is next due to be recorded: requests answered from the
            # credential cache record nothing, and unrecorded use would let a busy session idle out.
            credential_expires_at=min(claims.expires_at, auth_session.expires_at, used_at + touch_every),
        )

    def authenticate_api_key(self, key: str) -> Principal:
        prefix = api_key_prefix(key)
        found = self.platform.api_key_with_tenant(prefix) if prefix else None
        if found is None:
            hash_secret(key)  # the same work as for a known prefix
            raise Unauthorized(BAD_API_KEY)
        api_key, tenant, creator = found
        now = utcnow()
        if (
            not same_hash(api_key.key_hash, hash_secret(key))
            or api_key.revoked_at is not None
            or (api_key.expires_at is not None and api_key.expires_at <= now)
            or tenant.status != "active"
            # A key acts for its creator: it stops with them (disabled, deleted) and never outranks them.
            or creator is None
            or not creator.is_active
        ):
            raise Unauthorized(BAD_API_KEY)
        last = api_key.last_used_at
        if last is None or (now - last).total_seconds() >= self.settings.session_touch_interval_s:
            self.platform.touch_api_key(api_key.id, now=now)
            self.session.commit()
        return Principal(
            user_id=api_key.id,
            email=f"api-key:{api_key.prefix}",
            tenant_id=api_key.tenant_id,
            role=Role.VIEWER,  # unused: a key's permissions are its scopes
            api_key_id=api_key.id,
            # At most the creator's *current* role: a demotion narrows every key they made at once.
            scopes=frozenset(Permission(s) for s in api_key.scopes) & permissions_of(Role(creator.role)),
            key_rate_limit=(
                (int(api_key.rate_limit["requests"]), int(api_key.rate_limit["window_s"]))
                if api_key.rate_limit
                else None
            ),
            tenant_calls_per_hour=TenantPolicy.of(tenant, self.settings).quotas["api_calls_per_hour"],
            credential_expires_at=api_key.expires_at,
        )

    # -- one's own sessions and password -----------------------------------------------------------------
    def list_sessions(
        self, *, principal: Principal, limit: int, cursor: str | None
    ) -> tuple[list[SessionPublic], str | None]:
        now = utcnow()
        sessions = SessionRepository(session=self.session, scope=principal.scope)
        after = decode_cursor(cursor)
        live = [
            s
            for s in sessions.active_of_user(principal.user_id, now=now)
            if session_is_live(s, now) and (after is None or s.id < after)
        ]
        items, next_cursor = page_of(live[: limit + 1], limit=limit, id_of=lambda s: s.id)
        return [
            SessionPublic(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                idle_expires_at=min(_idle_deadline(s), s.expires_at),
                ip=s.ip,
                user_agent=s.user_agent,
                current=s.id == principal.session_id,
            )
            for s in items
        ], next_cursor

    def end_session(self, *, principal: Principal, session_id: str, client: ClientInfo) -> None:
        self._end(principal, session_id, reason="ended-by-user", client=client)

    def _end(self, principal: Principal, session_id: str, *, reason: str, client: ClientInfo) -> None:
        sessions = SessionRepository(session=self.session, scope=principal.scope)
        auth_session = sessions.get(session_id)
        if auth_session is None or auth_session.user_id != principal.user_id or auth_session.revoked_at is not None:
            raise NotFound("session", session_id)
        auth_session.revoked_at, auth_session.revoked_reason = utcnow(), reason
        audit.record(
            self.session,
            action="auth.logout" if reason == "logout" else "auth.session_end",
            tenant_id=principal.tenant_id,
            principal=principal,
            client=client,
            target_type="session",
            target_id=session_id,
        )
        self.session.commit()

    def change_password(self, *, principal: Principal, data: PasswordChange, client: ClientInfo) -> None:
        """Needs the current password; ends every session of the user (this one too): log in again."""
        user = self.platform.user_by_id(principal.user_id)
        if user is None or principal.is_api_key:
            raise Unauthorized(SESSION_ENDED)
        throttle = LoginThrottle(session=self.session, settings=self.settings, key=self.key)
        throttle.check(email=user.email, ip=client.ip)
        if not self.passwords.verify(user.password_hash, data.current_password):
            self._record_login_failure(throttle, email=user.email, user=user, client=client)
            raise InvalidInput(
                "The current password is wrong.",
                errors=[{"loc": ["body", "current_password"], "msg": "does not match", "type": "wrong_password"}],
            )
        violations = self.passwords.policy_violations(data.new_password, email=user.email)
        if data.new_password == data.current_password:
            violations.append("must differ from the current password")
        if violations:
            raise InvalidInput(
                "The new password does not meet the policy.",
                errors=[
                    {"loc": ["body", "new_password"], "msg": f"password {v}", "type": "password_policy"}
                    for v in violations
                ],
            )
        user.password_hash = self.passwords.hash(data.new_password)
        ended = SessionRepository(session=self.session, scope=principal.scope).revoke_all_of_user(
            user.id, now=utcnow(), reason="password-changed"
        )
        audit.record(
            self.session,
            action="user.password_change",
            tenant_id=user.tenant_id,
            principal=principal,
            client=client,
            target_type="user",
            target_id=user.id,
            details={"sessions_ended": ended},
        )
        self.session.commit()

    def describe(self, principal: Principal) -> MePublic:
        key = self.platform.api_key_by_id(principal.api_key_id) if principal.api_key_id else None
        acting_for = key.created_by if key is not None else principal.user_id
        user = self.platform.user_by_id(acting_for) if acting_for else None
        tenant = self.platform.tenant(principal.tenant_id)
        if user is None or tenant is None:
            raise Unauthorized("The account behind this token no longer exists.")
        return MePublic(
            user=UserPublic.model_validate(user),
            tenant=TenantRef(id=tenant.id, name=tenant.name),
            role=Role(user.role) if key else principal.role,
            permissions=sorted(principal.permissions),
            api_key=ApiKeyRef(id=key.id, name=key.name, prefix=key.prefix) if key else None,
        )
