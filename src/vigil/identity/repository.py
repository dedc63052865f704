"""Identity queries. Users, sessions, API keys and audit reads are tenant-scoped; tenants, the login lookup and
resolving a presented credential (token, refresh token, API key) are platform-level by nature."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from vigil.core.caching import NEUTRAL_WRITE
from vigil.core.database import TenantScope, bind_tenant, platform_access, platform_query
from vigil.identity.models import ApiKey, AuditEvent, AuthSession, LoginFailure, RefreshToken, Tenant, User


class SessionOwner(NamedTuple):
    auth_session: AuthSession
    user: User
    tenant: Tenant


class UserRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def get(self, user_id: str) -> User | None:
        return self.session.scalar(select(User).where(User.id == user_id, User.tenant_id == self.scope.tenant_id))

    def list(self, *, limit: int, after_id: str | None) -> Sequence[User]:
        query = select(User).where(User.tenant_id == self.scope.tenant_id)
        if after_id is not None:
            query = query.where(User.id < after_id)
        return self.session.scalars(query.order_by(User.id.desc()).limit(limit + 1)).all()

    def add(self, user: User) -> User:
        if user.tenant_id != self.scope.tenant_id:
            raise ValueError("a user belongs to the scope's tenant")
        self.session.add(user)
        self.session.flush()
        return user

    def delete(self, user: User) -> None:
        self.session.delete(user)

    def count_active_admins(self, *, other_than: str) -> int:
        """Active admins of the tenant besides `other_than`, read fresh (call it with the tenant's row locked)."""
        return int(
            self.session.scalar(
                select(func.count()).where(
                    User.tenant_id == self.scope.tenant_id,
                    User.role == "admin",
                    User.is_active.is_(True),
                    User.id != other_than,
                )
            )
            or 0
        )

    def get_fresh(self, user_id: str) -> User | None:
        """The user as committed now (after a lock was taken), not as this session first loaded it."""
        return self.session.scalar(
            select(User)
            .where(User.id == user_id, User.tenant_id == self.scope.tenant_id)
            .execution_options(populate_existing=True)
        )


class PlatformRepository:
    """Tenants, and finding a user by email at login: the only queries that cross tenants (superadmin, auth)."""

    def __init__(self, *, session: Session) -> None:
        self.session = session

    @platform_query
    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    @platform_query
    def user_by_id(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    @platform_query
    def api_key_by_id(self, key_id: str) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    @platform_query
    def session_with_owner(self, session_id: str) -> SessionOwner | None:
        """A session with its user and tenant, in one query: what every request with an access token checks."""
        row = self.session.execute(
            select(AuthSession, User, Tenant)
            .join(User, User.id == AuthSession.user_id)
            .join(Tenant, Tenant.id == AuthSession.tenant_id)
            .where(AuthSession.id == session_id)
        ).first()
        return SessionOwner(row[0], row[1], row[2]) if row is not None else None

    @platform_query
    def refresh_token(self, token_hash: str) -> RefreshToken | None:
        return self.session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))

    @platform_query
    def api_key_with_tenant(self, prefix: str) -> tuple[ApiKey, Tenant, User | None] | None:
        """The key, its tenant and its creator (None once the creator is deleted), in one query."""
        row = self.session.execute(
            select(ApiKey, Tenant, User)
            .join(Tenant, Tenant.id == ApiKey.tenant_id)
            .outerjoin(User, User.id == ApiKey.created_by)
            .where(ApiKey.prefix == prefix)
        ).first()
        return (row[0], row[1], row[2]) if row is not None else None

    @platform_query
    def touch_session(self, session_id: str, *, now: datetime) -> None:
        self.session.execute(
            update(AuthSession).where(AuthSession.id == session_id).values(last_used_at=now),
            execution_options={NEUTRAL_WRITE: True},  # a session's last use changes no one's authority
        )

    @platform_query
    def touch_api_key(self, key_id: str, *, now: datetime) -> None:
        self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now), execution_options={NEUTRAL_WRITE: True}
        )

    @platform_query
    def email_taken(self, email: str) -> bool:
        return self.user_by_email(email) is not None

    @platform_query
    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    @platform_query
    def tenant_for_update(self, tenant_id: str) -> Tenant | None:
        """The tenant's row, locked until the transaction ends: `FOR UPDATE` on PostgreSQL; on SQLite, which
        ignores it, a no-op write takes the database's write lock, which serialises the checks the same way."""
        if self.session.get_bind().dialect.name == "sqlite":
            self.session.execute(
                update(Tenant).where(Tenant.id == tenant_id).values(updated_at=Tenant.updated_at),
                execution_options={NEUTRAL_WRITE: True},  # a no-op write for its lock: nothing changes
            )
        return self.session.scalar(
            select(Tenant).where(Tenant.id == tenant_id).with_for_update().execution_options(populate_existing=True)
        )

    @platform_query
    def all_tenants(self) -> Sequence[Tenant]:
        return self.session.scalars(select(Tenant).order_by(Tenant.id)).all()

    @platform_query
    def tenants_by_id(self, tenant_ids: list[str]) -> Sequence[Tenant]:
        return self.session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids))).all() if tenant_ids else []

    @platform_query
    def tenant_by_name(self, name: str) -> Tenant | None:
        return self.session.scalar(select(Tenant).where(Tenant.name == name))

    @platform_query
    def platform_tenant(self) -> Tenant | None:
        return self.session.scalar(select(Tenant).where(Tenant.is_platform.is_(True)))

    @platform_query
    def tenants(self, *, limit: int, after_id: str | None) -> Sequence[Tenant]:
        query = select(Tenant)
        if after_id is not None:
            query = query.where(Tenant.id < after_id)
        return self.session.scalars(query.order_by(Tenant.id.desc()).limit(limit + 1)).all()

    @platform_query
    def add_tenant(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        self.session.flush()
        return tenant

    @platform_query
    def add_user(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    @platform_query
    def delete_tenant(self, tenant: Tenant) -> None:
        self.session.delete(tenant)


class SessionRepository:
    """A tenant's login sessions and their refresh tokens."""

    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def add(self, auth_session: AuthSession) -> AuthSession:
        if auth_session.tenant_id != self.scope.tenant_id:
            raise ValueError("a session belongs to the scope's tenant")
        self.session.add(auth_session)
        self.session.flush()
        return auth_session

    def get(self, session_id: str) -> AuthSession | None:
        return self.session.scalar(
            select(AuthSession).where(AuthSession.id == session_id, AuthSession.tenant_id == self.scope.tenant_id)
        )

    def active_of_user(self, user_id: str, *, now: datetime) -> Sequence[AuthSession]:
        return self.session.scalars(
            select(AuthSession)
            .where(
                AuthSession.tenant_id == self.scope.tenant_id,
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .order_by(AuthSession.id.desc())
        ).all()

    def revoke_all_of_user(self, user_id: str, *, now: datetime, reason: str) -> int:
        result = self.session.execute(
            update(AuthSession)
            .where(
                AuthSession.tenant_id == self.scope.tenant_id,
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason=reason)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def add_refresh_token(self, token: RefreshToken) -> None:
        self.session.add(token)
        self.session.flush()

    def claim_refresh_token(self, token_id: str, *, now: datetime) -> bool:
        """Marks a refresh token used; False if it already was (compare-and-set: two racing uses, one wins)."""
        result = self.session.execute(
            update(RefreshToken).where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None)).values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


class ApiKeyRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope
        bind_tenant(session, scope)

    def add(self, key: ApiKey) -> ApiKey:
        if key.tenant_id != self.scope.tenant_id:
            raise ValueError("an API key belongs to the scope's tenant")
        self.session.add(key)
        self.session.flush()
        return key

    def get(self, key_id: str) -> ApiKey | None:
        return self.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == self.scope.tenant_id))

    def revoke_all_of_creator(self, user_id: str, *, now: datetime) -> int:
        """Revokes the live keys a user made; returns how many."""
        revoked = self.session.execute(
            update(ApiKey)
            .where(ApiKey.tenant_id == self.scope.tenant_id, ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(getattr(revoked, "rowcount", 0) or 0)

    def list(self, *, limit: int, after_id: str | None) -> Sequence[ApiKey]:
        query = select(ApiKey).where(ApiKey.tenant_id == self.scope.tenant_id)
        if after_id is not None:
            query = query.where(ApiKey.id < after_id)
        return self.session.scalars(query.order_by(ApiKey.id.desc()).limit(limit + 1)).all()


class AuditRepository:
    """Writing goes through `record` on any session (a failed login belongs to no tenant); reading is scoped."""

    def __init__(self, *, session: Session) -> None:
        self.session = session

    def record(self, event: AuditEvent) -> None:
        # Written under platform access: an event may belong to another tenant than the session's (a superadmin's
        # tenant operations are kept with the platform tenant) or to none (a login to no account).
        with platform_access(self.session):
            self.session.add(event)
            self.session.flush()

    def list(self, *, scope: TenantScope, limit: int, after_id: str | None, action: str | None) -> Sequence[AuditEvent]:
        bind_tenant(self.session, scope)
        query = select(AuditEvent).where(AuditEvent.tenant_id == scope.tenant_id)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        if after_id is not None:
            query = query.where(AuditEvent.id < after_id)
        return self.session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)).all()


class LoginFailureRepository:
    """Failure counters keyed by an opaque subject (a keyed hash of an account and/or address): platform-level."""

    def __init__(self, *, session: Session) -> None:
        self.session = session

    def get_many(self, subjects: list[str]) -> dict[str, LoginFailure]:
        rows = self.session.scalars(select(LoginFailure).where(LoginFailure.subject.in_(subjects))).all()
        return {row.subject: row for row in rows}

    def add(self, row: LoginFailure) -> None:
        self.session.add(row)

    def clear(self, subjects: list[str]) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.subject.in_(subjects)))
