"""Identity queries. Users are tenant-scoped; tenants and the login lookup are platform-level by nature."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.database import TenantScope
from vigil.identity.models import Tenant, User


class UserRepository:
    def __init__(self, *, session: Session, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope

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

    def count_admins(self) -> int:
        return int(
            self.session.scalar(
                select(func.count()).where(User.tenant_id == self.scope.tenant_id, User.role == "admin")
            )
            or 0
        )


class PlatformRepository:
    """Tenants, and finding a user by email at login: the only queries that cross tenants (superadmin, auth)."""

    def __init__(self, *, session: Session) -> None:
        self.session = session

    def user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def user_by_id(self, user_id: str) -> User | None:
        return self.session.get(User, user_id)

    def email_taken(self, email: str) -> bool:
        return self.user_by_email(email) is not None

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    def tenant_by_name(self, name: str) -> Tenant | None:
        return self.session.scalar(select(Tenant).where(Tenant.name == name))

    def platform_tenant(self) -> Tenant | None:
        return self.session.scalar(select(Tenant).where(Tenant.is_platform.is_(True)))

    def tenants(self, *, limit: int, after_id: str | None) -> Sequence[Tenant]:
        query = select(Tenant)
        if after_id is not None:
            query = query.where(Tenant.id < after_id)
        return self.session.scalars(query.order_by(Tenant.id.desc()).limit(limit + 1)).all()

    def add_tenant(self, tenant: Tenant) -> Tenant:
        self.session.add(tenant)
        self.session.flush()
        return tenant

    def add_user(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def delete_tenant(self, tenant: Tenant) -> None:
        self.session.delete(tenant)
