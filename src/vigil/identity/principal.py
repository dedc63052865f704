"""Who is calling: the authenticated user, their tenant, role and permissions."""

from __future__ import annotations

from dataclasses import dataclass

from vigil.core.database import TenantScope
from vigil.identity.permissions import Permission, Role, permissions_of


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    email: str
    tenant_id: str
    role: Role

    @property
    def scope(self) -> TenantScope:
        return TenantScope(self.tenant_id)

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.role)

    @property
    def is_superadmin(self) -> bool:
        return self.role is Role.SUPERADMIN

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions
