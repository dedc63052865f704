"""Identity administration: users, API keys, the audit log and tenant security settings (tenant admins), and the
superadmin made at first start. Tenants are in `tenant_service`; logging in and sessions in `auth_service`."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.core.clientinfo import ClientInfo
from vigil.core.database import TenantScope, utcnow
from vigil.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.identity import audit
from vigil.identity.credentials import new_api_key
from vigil.identity.models import ApiKey, Tenant, User
from vigil.identity.passwords import Passwords
from vigil.identity.permissions import READ_ONLY_SCOPE, READ_ONLY_SCOPES, Permission, Role
from vigil.identity.principal import Principal
from vigil.identity.repository import (
    ApiKeyRepository,
    AuditRepository,
    PlatformRepository,
    SessionRepository,
    UserRepository,
)
from vigil.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeyRateLimit,
    AuditEventPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from vigil.identity.throttle import LoginThrottle

log = logging.getLogger("vigil.identity")
PLATFORM_TENANT_NAME = "platform"


class UserService:
    def __init__(self, *, session: Session, principal: Principal, passwords: Passwords, client: ClientInfo) -> None:
        self.session = session
        self.principal = principal
        self.passwords = passwords
        self.client = client
        self.platform = PlatformRepository(session=session)
        self.users = UserRepository(session=session, scope=principal.scope)

    def _audit(self, action: str, user: User, **details: object) -> None:
        audit.record(
            self.session,
            action=action,
            tenant_id=user.tenant_id,
            principal=self.principal,
            client=self.client,
            target_type="user",
            target_id=user.id,
            details={"email": user.email, **details},
        )

    def create(self, *, data: UserCreate) -> UserPublic:
        tenant_id = self.principal.tenant_id
        if data.tenant_id is not None and data.tenant_id != tenant_id:
            if not self.principal.is_superadmin:
                raise Forbidden("Only a superadmin may create users in another tenant.")
            if self.platform.tenant(data.tenant_id) is None:
                raise NotFound("tenant", data.tenant_id)
            tenant_id = data.tenant_id
        if data.role is Role.SUPERADMIN:
            raise Forbidden("The superadmin role cannot be granted through the API.")
        email = data.email.lower()
        violations = self.passwords.policy_violations(data.password, email=email)
        if violations:
            raise InvalidInput(
                "The password does not meet the policy.",
                errors=[
                    {"loc": ["body", "password"], "msg": f"password {v}", "type": "password_policy"} for v in violations
                ],
            )
        if self.platform.email_taken(email):
            raise Conflict("A user with this email already exists.")
        repo = UserRepository(session=self.session, scope=TenantScope(tenant_id))
        user = User(
            id=new_id("usr"),
            tenant_id=tenant_id,
            email=email,
            role=data.role.value,
            password_hash=self.passwords.hash(data.password),
            is_active=True,
        )
        try:
            repo.add(user)
            self._audit("user.create", user, role=user.role)
            self.session.commit()
        except IntegrityError as exc:
            self.session.rollback()
            raise Conflict("A user with this email already exists.") from exc
        return UserPublic.model_validate(user)

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[UserPublic], str | None]:
        rows = self.users.list(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda u: u.id)
        return [UserPublic.model_validate(u) for u in items], next_cursor

    def get(self, *, user_id: str) -> UserPublic:
        return UserPublic.model_validate(self._get(user_id))

    def update(self, *, user_id: str, data: UserUpdate) -> UserPublic:
        user = self._get(user_id)
        if data.role is Role.SUPERADMIN or user.role == Role.SUPERADMIN:
            raise Forbidden("The superadmin role cannot be changed through the API.")
        if user.id == self.principal.user_id and (data.role not in (None, Role(user.role)) or data.is_active is False):
            raise Conflict("You cannot demote or disable yourself.")
        if (data.role not in (None, Role.ADMIN)) or data.is_active is False:
            user = self._keep_an_admin(user, "demote or disable")
        if data.role is not None and data.role.value != user.role:
            self._audit("user.role_change", user, old_role=user.role, new_role=data.role.value)
            user.role = data.role.value
        if data.is_active is not None and data.is_active != user.is_active:
            user.is_active = data.is_active
            ended = 0
            if not data.is_active:  # a disabled user's sessions end with it, not at their next expiry
                ended = SessionRepository(session=self.session, scope=TenantScope(user.tenant_id)).revoke_all_of_user(
                    user.id, now=utcnow(), reason="user-disabled"
                )
            self._audit("user.enable" if data.is_active else "user.disable", user, sessions_ended=ended)
        self.session.commit()
        return UserPublic.model_validate(user)

    def delete(self, *, user_id: str) -> None:
        user = self._get(user_id)
        if user.id == self.principal.user_id:
            raise Conflict("You cannot delete yourself.")
        if user.role == Role.SUPERADMIN:
            raise Forbidden("The superadmin cannot be deleted through the API.")
        user = self._keep_an_admin(user, "delete")
        # The keys they made stop with them (authentication refuses a key without a creator anyway); revoking them
        # here makes the key list say so.
        keys = ApiKeyRepository(session=self.session, scope=TenantScope(user.tenant_id))
        revoked = keys.revoke_all_of_creator(user.id, now=utcnow())
        self._audit("user.delete", user, api_keys_revoked=revoked)
        self.users.delete(user)
        self.session.commit()

    def _get(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user

    def _keep_an_admin(self, user: User, what: str) -> User:
        """A tenant always keeps an active admin. Checked with the tenant's row locked (`FOR UPDATE`; SQLite's write
        lock) and the user and the count read after the lock, so two admins demoting each other at once are
        serialised: the second sees the first's change and is refused. Returns the user as read under the lock."""
        if user.role != Role.ADMIN or not user.is_active:
            return user
        self.platform.tenant_for_update(user.tenant_id)
        fresh = self.users.get_fresh(user.id)
        if fresh is None:
            raise NotFound("user", user.id)
        if fresh.role == Role.ADMIN and fresh.is_active and self.users.count_active_admins(other_than=fresh.id) == 0:
            raise Conflict(f"Cannot {what} the tenant's last active admin: make another user admin first.")
        return fresh


class ApiKeyService:
    """A tenant's API keys: created by its admins, shown once, stored hashed, revocable."""

    def __init__(self, *, session: Session, principal: Principal, client: ClientInfo) -> None:
        self.session = session
        self.principal = principal
        self.client = client
        self.keys = ApiKeyRepository(session=session, scope=principal.scope)

    def create(self, *, data: ApiKeyCreate) -> ApiKeyCreated:
        scopes: set[Permission] = set()
        for scope in data.scopes:
            scopes |= READ_ONLY_SCOPES if scope == READ_ONLY_SCOPE else {Permission(scope)}
        beyond = sorted(p.value for p in scopes - self.principal.permissions)
        if beyond:
            raise Forbidden(f"A key cannot have permissions its creator lacks: {', '.join(beyond)}.")
        if data.expires_at is not None and data.expires_at <= utcnow():
            raise InvalidInput(
                "The expiry is in the past.",
                errors=[{"loc": ["body", "expires_at"], "msg": "must be in the future", "type": "value_error"}],
            )
        made = new_api_key()
        key = self.keys.add(
            ApiKey(
                id=new_id("key"),
                tenant_id=self.principal.tenant_id,
                created_by=None if self.principal.is_api_key else self.principal.user_id,
                name=data.name,
                prefix=made.prefix,
                key_hash=made.key_hash,
                scopes=sorted(p.value for p in scopes),
                rate_limit=data.rate_limit.model_dump() if data.rate_limit else None,
                expires_at=data.expires_at,
                last_used_at=None,
                revoked_at=None,
                created_at=utcnow(),
            )
        )
        self._audit("api_key.create", key, scopes=key.scopes)
        self.session.commit()
        return ApiKeyCreated(**_key_public(key).model_dump(), key=made.key)

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[ApiKeyPublic], str | None]:
        rows = self.keys.list(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda k: k.id)
        return [_key_public(k) for k in items], next_cursor

    def revoke(self, *, key_id: str) -> None:
        key = self.keys.get(key_id)
        if key is None or key.revoked_at is not None:
            raise NotFound("API key", key_id)
        key.revoked_at = utcnow()
        self._audit("api_key.revoke", key)
        self.session.commit()

    def _audit(self, action: str, key: ApiKey, **details: object) -> None:
        audit.record(
            self.session,
            action=action,
            tenant_id=key.tenant_id,
            principal=self.principal,
            client=self.client,
            target_type="api_key",
            target_id=key.id,
            details={"name": key.name, "prefix": key.prefix, **details},
        )


def _key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        rate_limit=ApiKeyRateLimit.model_validate(key.rate_limit) if key.rate_limit else None,
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


class AuditService:
    def __init__(self, *, session: Session, principal: Principal) -> None:
        self.events = AuditRepository(session=session)
        self.principal = principal

    def list(self, *, limit: int, cursor: str | None, action: str | None) -> tuple[list[AuditEventPublic], str | None]:
        rows = self.events.list(scope=self.principal.scope, limit=limit, after_id=decode_cursor(cursor), action=action)
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda e: e.id)
        return [AuditEventPublic.model_validate(e) for e in items], next_cursor


def bootstrap_superadmin(
    *, session: Session, passwords: Passwords, email: str | None, password: str | None
) -> tuple[str, str] | None:
    """Makes the platform tenant and its superadmin on first start.

    Returns (email, password) when the password was generated here — to be shown once — else None.
    """
    platform = PlatformRepository(session=session)
    tenant = platform.platform_tenant()
    if tenant is not None:
        return None
    tenant = platform.add_tenant(
        Tenant(id=new_id("tnt"), name=PLATFORM_TENANT_NAME, status="active", is_platform=True, settings={})
    )
    generated = password is None
    email = (email or "admin@vigil.local").lower()
    password = password or secrets.token_urlsafe(18)
    platform.add_user(
        User(
            id=new_id("usr"),
            tenant_id=tenant.id,
            email=email,
            role=Role.SUPERADMIN.value,
            password_hash=passwords.hash(password),
            is_active=True,
        )
    )
    session.commit()
    log.info("created the platform tenant and superadmin %s", email)
    return (email, password) if generated else None


def reset_password(
    *, session: Session, passwords: Passwords, throttle: LoginThrottle, email: str, password: str | None
) -> tuple[str, bool]:
    """Sets a user's password from the server's console (`vigil admin reset-password`): for a lost superadmin
    password, with no current password asked — whoever runs it already holds the database. Every session of the
    user ends and the account's lock-out is lifted. Returns (the password, whether it was generated here)."""
    email = email.strip().lower()
    platform = PlatformRepository(session=session)
    user = platform.user_by_email(email)
    if user is None:
        raise NotFound("user", email)
    generated = password is None
    password = password or secrets.token_urlsafe(18)
    violations = passwords.policy_violations(password, email=email)
    if violations:
        raise InvalidInput(
            "The new password does not meet the policy.",
            errors=[{"loc": ["password"], "msg": f"password {v}", "type": "password_policy"} for v in violations],
        )
    user.password_hash = passwords.hash(password)
    ended = SessionRepository(session=session, scope=TenantScope(user.tenant_id)).revoke_all_of_user(
        user.id, now=utcnow(), reason="password-reset"
    )
    throttle.clear_account(email=email)
    audit.record(
        session,
        action="user.password_reset",
        tenant_id=user.tenant_id,
        client=None,
        actor="console",
        target_type="user",
        target_id=user.id,
        details={"sessions_ended": ended},
    )
    session.commit()
    log.info("password of %s reset from the console; %d session(s) ended", email, ended)
    return password, generated
