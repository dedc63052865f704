"""Identity use cases: log in, resolve a token to a principal, manage tenants and users, bootstrap the superadmin."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.core.blobs import BlobStore
from vigil.core.database import TenantScope
from vigil.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from vigil.core.ids import new_id
from vigil.core.pagination import decode_cursor, page_of
from vigil.identity.models import Tenant, User
from vigil.identity.passwords import Passwords
from vigil.identity.permissions import Role
from vigil.identity.principal import Principal
from vigil.identity.repository import PlatformRepository, UserRepository
from vigil.identity.schemas import (
    MePublic,
    TenantCreate,
    TenantPublic,
    TenantRef,
    TenantUpdate,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from vigil.identity.tokens import TokenService

log = logging.getLogger("vigil.identity")
PLATFORM_TENANT_NAME = "platform"
BAD_CREDENTIALS = "Invalid email or password."


class AuthService:
    def __init__(self, *, session: Session, passwords: Passwords, tokens: TokenService) -> None:
        self.platform = PlatformRepository(session=session)
        self.passwords = passwords
        self.tokens = tokens

    def login(self, *, email: str, password: str) -> TokenPublic:
        user = self.platform.user_by_email(email.lower())
        # Verify even when the user is unknown: same work, same answer, so the response never tells which.
        valid = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not valid or not user.is_active or not self._tenant_active(user.tenant_id):
            raise Unauthorized(BAD_CREDENTIALS)
        token, ttl = self.tokens.issue(user_id=user.id, tenant_id=user.tenant_id, role=user.role)
        return TokenPublic(access_token=token, expires_in=ttl)

    def authenticate(self, token: str) -> Principal:
        claims = self.tokens.decode(token)
        user = self.platform.user_by_id(claims.user_id)
        if user is None or not user.is_active or user.tenant_id != claims.tenant_id:
            raise Unauthorized("The account behind this token no longer exists or is disabled.")
        if not self._tenant_active(user.tenant_id):
            raise Unauthorized("The tenant is suspended.")
        return Principal(user_id=user.id, email=user.email, tenant_id=user.tenant_id, role=Role(user.role))

    def describe(self, principal: Principal) -> MePublic:
        user = self.platform.user_by_id(principal.user_id)
        tenant = self.platform.tenant(principal.tenant_id)
        if user is None or tenant is None:
            raise Unauthorized("The account behind this token no longer exists.")
        return MePublic(
            user=UserPublic.model_validate(user),
            tenant=TenantRef(id=tenant.id, name=tenant.name),
            role=principal.role,
            permissions=sorted(principal.permissions),
        )

    def _tenant_active(self, tenant_id: str) -> bool:
        tenant = self.platform.tenant(tenant_id)
        return tenant is not None and tenant.status == "active"


class TenantService:
    """Superadmin's view of the platform's tenants."""

    def __init__(self, *, session: Session, blobs: BlobStore) -> None:
        self.session = session
        self.platform = PlatformRepository(session=session)
        self.blobs = blobs

    def create(self, *, data: TenantCreate) -> TenantPublic:
        if self.platform.tenant_by_name(data.name) is not None:
            raise Conflict(f"A tenant named {data.name!r} already exists.")
        tenant = self.platform.add_tenant(Tenant(id=new_id("tnt"), name=data.name, status="active", settings={}))
        self.session.commit()
        return TenantPublic.model_validate(tenant)

    def list(self, *, limit: int, cursor: str | None) -> tuple[list[TenantPublic], str | None]:
        rows = self.platform.tenants(limit=limit, after_id=decode_cursor(cursor))
        items, next_cursor = page_of(rows, limit=limit, id_of=lambda t: t.id)
        return [TenantPublic.model_validate(t) for t in items], next_cursor

    def get(self, *, tenant_id: str) -> TenantPublic:
        return TenantPublic.model_validate(self._get(tenant_id))

    def update(self, *, tenant_id: str, data: TenantUpdate) -> TenantPublic:
        tenant = self._get(tenant_id)
        if tenant.is_platform and data.status == "suspended":
            raise Conflict("The platform tenant cannot be suspended.")
        if data.name is not None and data.name != tenant.name:
            if self.platform.tenant_by_name(data.name) is not None:
                raise Conflict(f"A tenant named {data.name!r} already exists.")
            tenant.name = data.name
        if data.status is not None:
            tenant.status = data.status
        self.session.commit()
        return TenantPublic.model_validate(tenant)

    def delete(self, *, tenant_id: str) -> None:
        tenant = self._get(tenant_id)
        if tenant.is_platform:
            raise Conflict("The platform tenant cannot be deleted.")
        self.platform.delete_tenant(tenant)  # rows of every domain go with it (ON DELETE CASCADE)
        self.session.commit()
        self.blobs.delete_prefix(self.blobs.key(TenantScope(tenant_id)))

    def _get(self, tenant_id: str) -> Tenant:
        tenant = self.platform.tenant(tenant_id)
        if tenant is None:
            raise NotFound("tenant", tenant_id)
        return tenant


class UserService:
    def __init__(self, *, session: Session, principal: Principal, passwords: Passwords) -> None:
        self.session = session
        self.principal = principal
        self.passwords = passwords
        self.platform = PlatformRepository(session=session)
        self.users = UserRepository(session=session, scope=principal.scope)

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
        if data.role is not None:
            user.role = data.role.value
        if data.is_active is not None:
            user.is_active = data.is_active
        self.session.commit()
        return UserPublic.model_validate(user)

    def delete(self, *, user_id: str) -> None:
        user = self._get(user_id)
        if user.id == self.principal.user_id:
            raise Conflict("You cannot delete yourself.")
        if user.role == Role.SUPERADMIN:
            raise Forbidden("The superadmin cannot be deleted through the API.")
        self.users.delete(user)
        self.session.commit()

    def _get(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user


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
